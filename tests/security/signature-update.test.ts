// Attack window: a verdict cached before clamd learned a new signature. Every cached verdict must die when
// clamd's database changes, also when clamd's VERSION stays the same (custom or third-party databases),
// also when onacc's config names only clamd's socket, and also when clamd reloads long after the change.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { ndbLine } from "../fixtures/signatures.ts";
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

/** Opens `file` every 250 ms until it is denied; the time that took, or undefined after `limitMs`. */
async function deniedWithin(file: string, limitMs: number): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if (openInChild(file).error === "EPERM") return Date.now() - t0;
    await Bun.sleep(250);
  }
  return undefined;
}

async function readCleanTwice(file: string) {
  await Bun.sleep(100); // old enough to be cached
  expect(openInChild(file)).toMatchObject({ ok: true });
  expect(openInChild(file)).toMatchObject({ ok: true });
}

describe("signature updates reach every cached verdict", () => {
  test("a new signature plus RELOAD denies a file read clean within 30 s, with only clamd's socket configured", async () => {
    const dir = join(mount.path, "reload");
    mkdirSync(dir);
    const marker = "ONACC-NEW-SIGNATURE-4d1f";
    const file = join(dir, "soon-known.txt");
    writeFileSync(file, `harmless until today: ${marker}\n`.repeat(50));
    // The fixture's config holds clamd's socket (and User), no DatabaseDirectory: onacc must learn where
    // clamd's database lives from clamd itself.
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"] });
    try {
      await readCleanTwice(file);
      await clamd.addSignatures("late.ndb", `${ndbLine("Onacc.Test.Late", marker)}\n`);
      expect(await deniedWithin(file, 30_000)).toBeDefined();
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });

  test("a database change that clamd loads only a minute later still reaches the cache", async () => {
    const dir = join(mount.path, "slow-reload");
    mkdirSync(dir);
    const marker = "ONACC-SLOW-SIGNATURE-93b2";
    const file = join(dir, "later-known.txt");
    writeFileSync(file, `harmless until clamd reloads: ${marker}\n`.repeat(50));
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", `DatabaseDirectory ${clamd.databaseDir}`] });
    try {
      await readCleanTwice(file);
      // The new database lands (as freshclam writes it) but clamd does not reload yet: its SelfCheck comes
      // round only every hour here. Meanwhile the file is read as before: clamd still calls it clean.
      const sig = join(clamd.databaseDir, "slow.ndb");
      writeFileSync(sig, `${ndbLine("Onacc.Test.Slow", marker)}\n`);
      chownSync(sig, Number(Bun.spawnSync(["id", "-u", "clamav"]).stdout.toString().trim()), 0);
      const t0 = Date.now();
      while (Date.now() - t0 < 65_000) {
        expect(openInChild(file)).toMatchObject({ ok: true });
        await Bun.sleep(1000);
      }
      expect((await clamd.raw("zRELOAD\0")).startsWith("RELOADING")).toBe(true);
      expect(await deniedWithin(file, 30_000)).toBeDefined();
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  }, 150_000);
});
