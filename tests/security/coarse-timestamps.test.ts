// Attack: a rewrite the cache key cannot see. On ext4 with 128-byte inodes (FAT and HFS+ alike) times have
// whole seconds: a same-size rewrite within the second of the file's last change keeps size, mtime and
// ctime. A version that could still change unseen must never be cached.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { mountExt4Image, type LoopMount } from "../fixtures/loopfs.ts";
import { markedBody } from "../fixtures/signatures.ts";
import { ATTACKER_UID, asAttacker, run } from "./helpers.ts";

let clamd: TestClamd;
let disk: LoopMount;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  clamd = await startClamd();
  disk = mountExt4Image({ inodeSize: 128 });
});
afterAll(async () => {
  await disposeAgent(agent);
  disk?.unmount();
  await disposeClamd(clamd);
});

const SIZE = 16 * 1024;
const clean = () => Buffer.alloc(SIZE, "plain text\n");

/** Waits until the wall clock is early in a second, so the steps below fit in the same second. */
async function startOfSecond(): Promise<void> {
  while (Date.now() % 1000 > 20) await Bun.sleep(1);
}

describe("file systems with one-second timestamps (ext4 -I 128)", () => {
  test("a same-size rewrite within the same second after a clean scan is scanned again", async () => {
    const dir = join(disk.path, "coarse");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"] });
    const marked = markedBody(SIZE).toString("hex");
    let tried = 0;
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        // A fresh file each time (an infected one cannot be opened again to be rewritten).
        const file = join(dir, `report-${attempt}.txt`);
        writeFileSync(file, clean());
        chownSync(file, ATTACKER_UID, ATTACKER_UID);
        // The attacker writes a clean version; root reads it 100 ms later (past any "just changed" guard
        // that assumes fine timestamps); the attacker rewrites it with the same size in the same second.
        await startOfSecond();
        run(asAttacker(["/usr/bin/python3", "-c", `open(${JSON.stringify(file)},"r+b").write(bytes.fromhex(${JSON.stringify(clean().toString("hex"))}))`]));
        const before = statSync(file);
        await Bun.sleep(100);
        expect(openInChild(file)).toMatchObject({ ok: true });
        run(asAttacker(["/usr/bin/python3", "-c", `open(${JSON.stringify(file)},"r+b").write(bytes.fromhex(${JSON.stringify(marked)}))`]));
        const after = statSync(file);
        const outcome = openInChild(file);
        if (after.mtimeMs !== before.mtimeMs || after.ctimeMs !== before.ctimeMs || after.size !== before.size) continue; // a second boundary fell in between
        tried++;
        expect(outcome.error).toBe("EPERM");
      }
      expect(tried).toBeGreaterThan(0);
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
