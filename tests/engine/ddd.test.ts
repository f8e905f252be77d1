// New folders and new files, against a real clamd and real fanotify: folders created or moved in after
// start are protected at once, files that land in the tree are scanned without anyone opening them, and
// departed folders leave no marks behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
});

let n = 0;
async function start(config: string[], args: string[] = []) {
  const dir = join(mount.path, `ddd-${n++}`);
  mkdirSync(dir);
  agent = await startAgent({
    clamd,
    config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", ...config],
    args: ["--foreground", "--verbose", ...args, "--config-file=CONFIG", "--log=LOG"],
  });
  return dir;
}
async function done() {
  await disposeAgent(agent);
  agent = undefined;
}

async function gone(path: string, ms = 5000): Promise<boolean> {
  for (let t = 0; t < ms; t += 20) {
    if (!existsSync(path)) return true;
    await Bun.sleep(20);
  }
  return false;
}

/** Directory marks (FAN_OPEN_PERM | FAN_EVENT_ON_CHILD) the agent's prevention group holds. */
function directoryMarks(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      continue;
    }
    count += info.split("\n").filter((l) => /^fanotify ino:.* mask:8010000 /.test(l)).length;
  }
  return count;
}

describe("dynamic directories", () => {
  test("a folder created after start, three levels deep, has its EICAR file denied on open", async () => {
    const dir = await start([]);
    try {
      const deep = join(dir, "a", "b", "c");
      mkdirSync(deep, { recursive: true });
      await Bun.sleep(200);
      writeFileSync(join(deep, "eicar.com"), EICAR);
      expect(openInChild(join(deep, "eicar.com")).error).toBe("EPERM");
    } finally {
      await done();
    }
  });

  test("a folder tree moved into the watched tree is protected at once: its files' first open is denied", async () => {
    const dir = await start([], ["--remove"]);
    const outside = join(mount.path, `outside-${n}`);
    try {
      mkdirSync(join(outside, "x", "y"), { recursive: true });
      writeFileSync(join(outside, "x", "y", "eicar.com"), EICAR);
      renameSync(outside, join(dir, "moved-in"));
      await Bun.sleep(200);
      const f = join(dir, "moved-in", "x", "y", "eicar.com");
      // Without extra scanning nothing is scanned until it is opened (the tree's marks are in place first).
      expect(existsSync(f)).toBe(true);
      expect(openInChild(f).error).toBe("EPERM");
      expect(await gone(f)).toBe(true);
    } finally {
      await done();
    }
  });

  test("with extra scanning, files inside a folder tree moved into the watched tree are scanned without an open", async () => {
    const dir = await start(["OnAccessExtraScanning yes"], ["--remove"]);
    const outside = join(mount.path, `outside-${n}`);
    try {
      mkdirSync(join(outside, "x", "y"), { recursive: true });
      writeFileSync(join(outside, "x", "y", "eicar.com"), EICAR);
      renameSync(outside, join(dir, "moved-in"));
      const ok = await gone(join(dir, "moved-in", "x", "y", "eicar.com"));
      if (!ok) console.log(agent!.output());
      expect(ok).toBe(true);
    } finally {
      await done();
    }
  });

  test("an excluded new folder is not scanned", async () => {
    const dir = join(mount.path, `ddd-${n++}`);
    mkdirSync(dir);
    agent = await startAgent({
      clamd,
      config: [`OnAccessIncludePath ${dir}`, `OnAccessExcludePath ${join(dir, "skip")}`, "OnAccessPrevention yes"],
    });
    try {
      mkdirSync(join(dir, "skip", "inner"), { recursive: true });
      mkdirSync(join(dir, "scan", "inner"), { recursive: true });
      await Bun.sleep(200);
      writeFileSync(join(dir, "skip", "inner", "eicar.com"), EICAR);
      writeFileSync(join(dir, "scan", "inner", "eicar.com"), EICAR);
      expect(openInChild(join(dir, "skip", "inner", "eicar.com")).ok).toBe(true);
      expect(openInChild(join(dir, "scan", "inner", "eicar.com")).error).toBe("EPERM");
    } finally {
      await done();
    }
  });

  test("renamed folders stay protected, deleted ones leave no marks behind", async () => {
    const dir = await start([]);
    try {
      const base = directoryMarks(agent!.pid);
      mkdirSync(join(dir, "p", "q", "r"), { recursive: true });
      await Bun.sleep(300);
      expect(directoryMarks(agent!.pid)).toBe(base + 3);
      renameSync(join(dir, "p"), join(dir, "p2"));
      await Bun.sleep(300);
      expect(directoryMarks(agent!.pid)).toBe(base + 3);
      writeFileSync(join(dir, "p2", "q", "r", "eicar.com"), EICAR);
      expect(openInChild(join(dir, "p2", "q", "r", "eicar.com")).error).toBe("EPERM");
      rmSync(join(dir, "p2"), { recursive: true, force: true });
      await Bun.sleep(300);
      expect(directoryMarks(agent!.pid)).toBe(base);
    } finally {
      await done();
    }
  });

  test("a folder moved out of the tree loses its marks", async () => {
    const dir = await start([]);
    const away = join(mount.path, `away-${n}`);
    try {
      const base = directoryMarks(agent!.pid);
      mkdirSync(join(dir, "m", "n"), { recursive: true });
      await Bun.sleep(300);
      expect(directoryMarks(agent!.pid)).toBe(base + 2);
      renameSync(join(dir, "m"), away);
      await Bun.sleep(300);
      expect(directoryMarks(agent!.pid)).toBe(base);
      writeFileSync(join(away, "n", "eicar.com"), EICAR);
      expect(openInChild(join(away, "n", "eicar.com")).ok).toBe(true);
    } finally {
      await done();
      rmSync(away, { recursive: true, force: true });
    }
  });
});

describe("OnAccessExtraScanning", () => {
  test("an EICAR file written into a new folder and never opened by a reader is removed", async () => {
    const dir = await start(["OnAccessExtraScanning yes"], ["--remove"]);
    try {
      const deep = join(dir, "new", "deeper");
      mkdirSync(deep, { recursive: true });
      await Bun.sleep(200);
      const f = join(deep, "dropped.com");
      writeFileSync(f, EICAR);
      expect(await gone(f)).toBe(true);
      await agent!.waitFor(/dropped\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
    } finally {
      await done();
    }
  });

  test("a file moved in from outside the tree is detected", async () => {
    const dir = await start(["OnAccessExtraScanning yes"], ["--remove"]);
    try {
      const outsideFile = join(mount.path, `lone-${n}.com`);
      writeFileSync(outsideFile, EICAR);
      renameSync(outsideFile, join(dir, "arrived.com"));
      expect(await gone(join(dir, "arrived.com"))).toBe(true);
    } finally {
      await done();
    }
  });

  test("without extra scanning a dropped file waits for its first open", async () => {
    const dir = await start([], ["--remove"]);
    try {
      const f = join(dir, "waits.com");
      writeFileSync(f, EICAR);
      await Bun.sleep(500);
      expect(existsSync(f)).toBe(true);
      expect(openInChild(f).error).toBe("EPERM");
      expect(await gone(f)).toBe(true);
    } finally {
      await done();
    }
  });
});
