// Attack: a verdict made on another file than the one opened. With --allmatch, clamd is asked about a
// path; the path can name another file by the time clamd opens it (a name swap), and clamd's own
// ExcludePath can answer "Excluded" for it. Neither may let infected content through, or be cached.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR, MARKER, markedBody } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { ATTACKER_UID, asAttacker, run } from "./helpers.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  mount = mountTmpfs();
  // clamd itself skips this subtree when asked about paths (its ExcludePath rule), as a site may set it.
  clamd = await startClamd({ extra: [`ExcludePath ^${mount.path}/clamd-excluded/`] });
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
});

const SWAPPER = new URL("./exchange-loop.py", import.meta.url).pathname;
const VICTIM = new URL("./victim-reads.py", import.meta.url).pathname;

describe("--allmatch (clamd scans by path)", () => {
  test("a name swapped during the scan never gets infected content served, nor cached clean", async () => {
    const dir = join(mount.path, "swap");
    mkdirSync(dir);
    chownSync(dir, ATTACKER_UID, ATTACKER_UID);
    const evil = join(dir, "x");
    const decoy = join(dir, "y");
    writeFileSync(evil, markedBody(16 * 1024));
    writeFileSync(decoy, Buffer.alloc(16 * 1024, "plain text\n"));
    chownSync(evil, ATTACKER_UID, ATTACKER_UID);
    chownSync(decoy, ATTACKER_UID, ATTACKER_UID);
    agent = await startAgent({
      clamd,
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
      args: ["--foreground", "--verbose", "--config-file=CONFIG", "--log=LOG", "--allmatch"],
    });
    const swapper = Bun.spawn(asAttacker(["/usr/bin/python3", SWAPPER, evil, decoy]), { stdin: "pipe", stdout: "pipe" });
    let swapping = true;
    const stopSwapper = async () => {
      if (!swapping) return;
      swapping = false;
      swapper.stdin.end();
      await Promise.race([swapper.exited, Bun.sleep(5000)]);
      if (swapper.exitCode === null) swapper.kill("SIGKILL");
    };
    try {
      await Bun.sleep(200);
      const r = run(["/usr/bin/python3", VICTIM, evil, "300", MARKER], 60_000);
      const [infected, denied, clean] = r.stdout.trim().split(" ").map(Number);
      expect(r.code).toBe(0);
      expect(denied! + clean!).toBeGreaterThan(0);
      expect(infected).toBe(0);
      await stopSwapper();
      // Whichever name the marked file has now, it is denied: no clean verdict was cached for it.
      const results = [openInChild(evil), openInChild(decoy)];
      expect(results.filter((o) => o.error === "EPERM").length).toBe(1);
    } finally {
      await stopSwapper();
      await disposeAgent(agent);
      agent = undefined;
    }
  });

  test("clamd's \"Excluded\" for a path is no clean verdict: EICAR under clamd's ExcludePath is denied", async () => {
    const dir = join(mount.path, "clamd-excluded");
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const eicar = join(dir, "eicar.com");
    writeFileSync(eicar, EICAR);
    await Bun.sleep(100);
    agent = await startAgent({
      clamd,
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
      args: ["--foreground", "--verbose", "--config-file=CONFIG", "--log=LOG", "--allmatch"],
    });
    try {
      expect(openInChild(eicar).error).toBe("EPERM");
      expect(openInChild(eicar).error).toBe("EPERM");
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
