// The verdict cache against a real clamd and real fanotify: a clean file's reopen costs no scan until the
// file changes, a file written during its scan is scanned again, and a signature reload invalidates it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { startRelay } from "../fixtures/proxy.ts";
import { EICAR, ndbLine } from "../fixtures/signatures.ts";
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

/** Clean scans clamd has logged so far (LogClean is on in the test clamd). */
const cleanScans = (c: TestClamd) => c.log().filter((l) => / OK$/.test(l)).length;

async function waitForCount(read: () => number, atLeast: number) {
  for (let i = 0; i < 100 && read() < atLeast; i++) await Bun.sleep(20);
}

let n = 0;
function freshDir(files: Record<string, string>): string {
  const dir = join(mount.path, `cache-${n++}`);
  mkdirSync(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

async function done() {
  await disposeAgent(agent);
  agent = undefined;
}

describe("kernel and userspace verdict caches", () => {
  for (const [label, args] of [
    ["kernel ignore marks alone", ["--cache-size=0"]],
    ["userspace cache alone", ["--kernel-cache=no"]],
  ] as const) {
    test(`${label}: a clean file's second open does not reach clamd; a write makes the next open scan again`, async () => {
      const dir = freshDir({ "a.txt": "hello\n" });
      const f = join(dir, "a.txt");
      agent = await startAgent({
        clamd,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
        args: ["--foreground", "--verbose", ...args, "--config-file=CONFIG", "--log=LOG"],
      });
      try {
        const before = cleanScans(clamd);
        expect(openInChild(f).ok).toBe(true);
        await waitForCount(() => cleanScans(clamd), before + 1);
        expect(cleanScans(clamd)).toBe(before + 1);
        for (let i = 0; i < 5; i++) expect(openInChild(f).ok).toBe(true);
        await Bun.sleep(200);
        expect(cleanScans(clamd)).toBe(before + 1);
        // The write itself opens the file (one scan), and the next open must scan the new content.
        Bun.spawnSync(["sh", "-c", `echo more >> '${f}'`]);
        const afterWrite = cleanScans(clamd);
        expect(openInChild(f).ok).toBe(true);
        await waitForCount(() => cleanScans(clamd), afterWrite + 1);
        expect(cleanScans(clamd)).toBe(afterWrite + 1);
      } finally {
        await done();
      }
    });
  }

  test("a file written while its scan is in flight is scanned again on the next open", async () => {
    const dir = freshDir({ "b.txt": "version one\n" });
    const f = join(dir, "b.txt");
    // Opened for writing before the agent starts: writes through it raise no open event at all.
    const writer = openSync(f, "r+");
    let writerOpen = true;
    const relay = await startRelay(clamd.port);
    try {
      agent = await startAgent({
        clamd: { ...clamd, port: relay.port },
        tcp: true,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
        args: ["--foreground", "--verbose", "--stream", "--config-file=CONFIG", "--log=LOG"],
      });
      await relay.setMode("slow");
      const opening = Bun.spawn(["cat", f], { stdout: "ignore" });
      await Bun.sleep(300); // the scan is now held up in the relay
      writeSync(writer, "version two, written during the scan\n", 0);
      expect(await opening.exited).toBe(0);
      await relay.setMode("relay");
      const scansBefore = relay.accepted();
      expect(openInChild(f).ok).toBe(true);
      await Bun.sleep(100);
      expect(relay.accepted()).toBe(scansBefore + 1);
      // While the writer holds it open, nothing about it is cached (it could change without a trace)...
      expect(openInChild(f).ok).toBe(true);
      await Bun.sleep(100);
      expect(relay.accepted()).toBe(scansBefore + 2);
      // ...and once the writer is gone and the file stays put, its verdict is cached.
      closeSync(writer);
      writerOpen = false;
      expect(openInChild(f).ok).toBe(true);
      expect(openInChild(f).ok).toBe(true);
      await Bun.sleep(100);
      expect(relay.accepted()).toBe(scansBefore + 3);
    } finally {
      if (writerOpen) closeSync(writer);
      await done();
      await relay.stop();
    }
  });

  test("a signature reload invalidates cached clean verdicts (DatabaseDirectory watched)", async () => {
    const own = await startClamd();
    const dir = freshDir({ "c.txt": "harmless until ONACC-LATER-SIGNATURE-91 gets a signature\n" });
    const f = join(dir, "c.txt");
    try {
      agent = await startAgent({
        clamd: own,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", `DatabaseDirectory ${own.databaseDir}`],
      });
      expect(openInChild(f).ok).toBe(true);
      expect(openInChild(f).ok).toBe(true); // cached
      await own.addSignatures("later.ndb", `${ndbLine("Onacc.Test.Later", "ONACC-LATER-SIGNATURE-91")}\n`);
      expect(openInChild(f).error).toBe("EPERM");
      await agent.waitFor(/c\.txt: Onacc\.Test\.Later\.UNOFFICIAL FOUND/);
    } finally {
      await done();
      await disposeClamd(own);
    }
  });

  test("SIGUSR2 flushes the caches by hand when onacc cannot see the database", async () => {
    const own = await startClamd();
    const dir = freshDir({ "d.txt": "fine until ONACC-MANUAL-FLUSH-77 is known\n" });
    const f = join(dir, "d.txt");
    // clamd behind a relay: onacc meets the relay, not clamd, so it cannot find clamd's database.
    const relay = await startRelay(own.port);
    try {
      agent = await startAgent({ clamd: { ...own, port: relay.port }, tcp: true, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"] });
      await Bun.sleep(100);
      expect(openInChild(f).ok).toBe(true);
      await own.addSignatures("manual.ndb", `${ndbLine("Onacc.Test.Manual", "ONACC-MANUAL-FLUSH-77")}\n`);
      // The cached verdict survives the reload...
      expect(openInChild(f).ok).toBe(true);
      agent.signal("SIGUSR2");
      await agent.waitFor(/verdict caches flushed: SIGUSR2/);
      expect(openInChild(f).error).toBe("EPERM");
    } finally {
      await done();
      await relay.stop();
      await disposeClamd(own);
    }
  });

  test("a cache flush keeps OnAccessMountPath's filesystem mark (the flush's bridge must not remove it)", async () => {
    const inside = freshDir({ "x.txt": "x\n" });
    const elsewhere = freshDir({});
    agent = await startAgent({
      clamd,
      config: [`OnAccessMountPath ${mount.path}`, `OnAccessIncludePath ${inside}`, "OnAccessPrevention yes"],
    });
    try {
      agent.signal("SIGUSR2");
      await agent.waitFor(/verdict caches flushed: SIGUSR2/);
      // A file outside the include path, anywhere on the mount, is still covered by the mount path.
      writeFileSync(join(elsewhere, "late.com"), EICAR);
      expect(openInChild(join(elsewhere, "late.com")).error).toBe("EPERM");
    } finally {
      await done();
    }
  });

  test("--cache-size bounds the userspace cache: the least recently used verdict is evicted", async () => {
    const dir = freshDir({ "1.txt": "one\n", "2.txt": "two\n", "3.txt": "three\n" });
    agent = await startAgent({
      clamd,
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
      args: ["--foreground", "--verbose", "--kernel-cache=no", "--cache-size=2", "--config-file=CONFIG", "--log=LOG"],
    });
    try {
      const base = cleanScans(clamd);
      for (const name of ["1.txt", "2.txt", "3.txt"]) expect(openInChild(join(dir, name)).ok).toBe(true);
      await waitForCount(() => cleanScans(clamd), base + 3);
      expect(openInChild(join(dir, "3.txt")).ok).toBe(true); // cached
      expect(openInChild(join(dir, "1.txt")).ok).toBe(true); // evicted: scanned again
      await waitForCount(() => cleanScans(clamd), base + 4);
      await Bun.sleep(200);
      expect(cleanScans(clamd)).toBe(base + 4);
    } finally {
      await done();
    }
  });
});
