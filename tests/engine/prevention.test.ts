// Prevention against a real clamd and real fanotify: infected opens are denied (EPERM), clean ones pass,
// excluded users and paths are never scanned, and awkward files never hang.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { makeFifo, makeNullDevice, testTree, writeTestFiles } from "../fixtures/files.ts";
import { MARKER2, markedBody } from "../fixtures/signatures.ts";
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

/**
 * Runs `body` with an agent watching a fresh directory. Files and folders must exist before the agent
 * starts (`prepare`): folders created later are the dynamic-directory feature's, tested elsewhere.
 */
async function withAgent(
  config: string[],
  prepare: (dir: string) => void,
  body: (dir: string) => Promise<void> | void,
  args?: string[],
) {
  const dir = join(mount.path, `case-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  prepare(dir);
  agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", ...config], args });
  try {
    await body(dir);
  } finally {
    await disposeAgent(agent);
    agent = undefined;
  }
}

describe("prevention (fd passing, the local default)", () => {
  test("denies EICAR and the body marker with EPERM and lets clean files open", async () => {
    await withAgent([], (dir) => void writeTestFiles(join(dir, "sub", "deeper")), (dir) => {
      const t = testTree(join(dir, "sub", "deeper"));
      expect(openInChild(t.eicar).error).toBe("EPERM");
      expect(openInChild(t.marked).error).toBe("EPERM");
      expect(openInChild(t.clean)).toMatchObject({ ok: true });
      expect(agent!.log()).toMatch(/eicar\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
    });
  });

  test("--verbose logs every scanned file with its verdict, clean ones included; without it only detections", async () => {
    await withAgent([], (dir) => void writeTestFiles(join(dir, "v")), async (dir) => {
      const t = testTree(join(dir, "v"));
      expect(openInChild(t.clean)).toMatchObject({ ok: true });
      expect(openInChild(t.eicar).error).toBe("EPERM");
      await agent!.waitFor(/v\/clean\.txt: OK/);
      await agent!.waitFor(/v\/eicar\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
    });
    await withAgent([], (dir) => void writeTestFiles(join(dir, "q")), async (dir) => {
      const t = testTree(join(dir, "q"));
      expect(openInChild(t.clean)).toMatchObject({ ok: true });
      expect(openInChild(t.eicar).error).toBe("EPERM");
      await agent!.waitFor(/q\/eicar\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
      expect(agent!.log()).not.toContain("clean.txt: OK");
    }, ["--foreground", "--config-file=CONFIG", "--log=LOG"]);
  });

  test("a FIFO and a device node in a watched directory open without hanging", async () => {
    await withAgent([], (dir) => {
      makeFifo(join(dir, "pipe"));
      makeNullDevice(join(dir, "null"));
    }, (dir) => {
      const fifo = join(dir, "pipe");
      const writer = Bun.spawn(["sh", "-c", `echo hello > '${fifo}'`]);
      expect(openInChild(fifo, { timeoutMs: 5000 })).toMatchObject({ ok: true });
      writer.kill();
      const dev = join(dir, "null");
      expect(openInChild(dev, { timeoutMs: 5000 })).toMatchObject({ ok: true });
    });
  });

  test("files over OnAccessMaxFileSize are allowed unscanned", async () => {
    await withAgent(["OnAccessMaxFileSize 100K"], (dir) => {
      writeFileSync(join(dir, "big.bin"), markedBody(200 * 1024));
      writeFileSync(join(dir, "small.bin"), markedBody(50 * 1024));
    }, (dir) => {
      const big = join(dir, "big.bin");
      const small = join(dir, "small.bin");
      expect(openInChild(big)).toMatchObject({ ok: true });
      expect(openInChild(small).error).toBe("EPERM");
    });
  });

  test("OnAccessExcludePath subtrees are never scanned", async () => {
    const dirName = `case-excl`;
    const dir = join(mount.path, dirName);
    writeTestFiles(join(dir, "skip", "inner"));
    writeTestFiles(join(dir, "scan"));
    agent = await startAgent({
      clamd,
      config: [`OnAccessIncludePath ${dir}`, `OnAccessExcludePath ${join(dir, "skip")}`, "OnAccessPrevention yes"],
    });
    try {
      expect(openInChild(join(dir, "skip", "inner", "eicar.com"))).toMatchObject({ ok: true });
      expect(openInChild(join(dir, "scan", "eicar.com")).error).toBe("EPERM");
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});

describe("excluded users", () => {
  test("OnAccessExcludeUname matches whole names only", async () => {
    await withAgent(["OnAccessExcludeUname nobody", "OnAccessExcludeUname daemo"], (dir) => void writeTestFiles(dir), (dir) => {
      const t = testTree(dir);
      expect(openInChild(t.eicar, { user: "nobody" })).toMatchObject({ ok: true });
      // "daemo" is a prefix of "daemon", which clamonacc would have excluded too.
      expect(openInChild(t.eicar, { user: "daemon" }).error).toBe("EPERM");
      expect(openInChild(t.eicar).error).toBe("EPERM");
    });
  });

  test("OnAccessExcludeUID excludes that uid", async () => {
    await withAgent(["OnAccessExcludeUID 65534"], (dir) => void writeTestFiles(dir), (dir) => {
      const t = testTree(dir);
      expect(openInChild(t.eicar, { uid: 65534 })).toMatchObject({ ok: true });
      expect(openInChild(t.eicar, { user: "daemon" }).error).toBe("EPERM");
    });
  });

  test("OnAccessExcludeRootUID excludes root and only root", async () => {
    await withAgent(["OnAccessExcludeRootUID yes"], (dir) => void writeTestFiles(dir), (dir) => {
      const t = testTree(dir);
      expect(openInChild(t.eicar)).toMatchObject({ ok: true });
      expect(openInChild(t.eicar, { user: "nobody" }).error).toBe("EPERM");
    });
  });
});

describe("scan modes", () => {
  test("--stream over TCP denies infected files", async () => {
    const dir = join(mount.path, "case-stream");
    const t = writeTestFiles(dir);
    const a = await startAgent({
      clamd,
      tcp: true,
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
      args: ["--foreground", "--verbose", "--stream", "-c", "CONFIG", "--log=LOG"],
    }).catch((e) => {
      throw e;
    });
    agent = a;
    try {
      expect(openInChild(t.eicar).error).toBe("EPERM");
      expect(openInChild(t.marked).error).toBe("EPERM");
      expect(openInChild(t.clean)).toMatchObject({ ok: true });
      expect(a.output()).toMatch(/tcp:\/\/127\.0\.0\.1:\d+ \(stream\)/);
    } finally {
      await disposeAgent(a);
      agent = undefined;
    }
  });

  test("--allmatch lists every signature (ALLMATCHSCAN by path) of a file found infected through its descriptor", async () => {
    await withAgent([], (dir) => {
      const body = markedBody(64 * 1024);
      body.write(MARKER2, 100, "latin1");
      writeFileSync(join(dir, "two.bin"), body);
    }, async (dir) => {
      const f = join(dir, "two.bin");
      expect(openInChild(f).error).toBe("EPERM");
      // One FOUND line per signature, written one after the other.
      await agent!.waitFor(/two\.bin: Onacc\.Test\.Marker2\.UNOFFICIAL FOUND/);
      await agent!.waitFor(/two\.bin: Onacc\.Test\.Marker\.UNOFFICIAL FOUND/);
      expect(agent!.output()).toMatch(/--allmatch: every signature listed by path/);
    }, ["--foreground", "--verbose", "--allmatch", "--config-file=CONFIG", "--log=LOG"]);
  });
});
