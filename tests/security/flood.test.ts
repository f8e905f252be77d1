// Attack: drown the opens in background work. With extra scanning, every file written in the tree is
// queued for a scan; a user who creates files faster than clamd scans them must not push a real open out
// of the queue, where it would be answered unscanned (allowed, by the default error policy).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { asAttacker } from "./helpers.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs("/tmp/onacc-tmpfs-", "1g");
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
});

// Prepares COUNT files of SIZE bytes in an unwatched folder of the same file system, then moves them all
// into the watched tree as fast as rename(2) goes: each move queues a background scan, and the mover
// itself never waits for a verdict (a rename raises no permission event).
const FLOODER = `
import os, sys
src, dst, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = b"z" * size
for i in range(count):
    with open(os.path.join(src, "f%06d" % i), "wb") as f:
        f.write(body)
print("prepared", flush=True)
sys.stdin.readline()
for i in range(count):
    os.rename(os.path.join(src, "f%06d" % i), os.path.join(dst, "f%06d" % i))
`;

describe("a flood of created files (OnAccessExtraScanning)", () => {
  test("every open of an infected file during the flood is denied", async () => {
    const dir = join(mount.path, "flood");
    const spam = join(dir, "spam");
    const staging = join(mount.path, "staging");
    mkdirSync(spam, { recursive: true });
    mkdirSync(staging);
    chmodSync(spam, 0o777);
    chmodSync(staging, 0o777);
    const t = writeTestFiles(join(dir, "victim"));
    // A small descriptor limit keeps onacc's queue small, as on a host where it is: the flood fills it fast.
    agent = await startAgent({
      clamd,
      prefix: ["prlimit", "--nofile=3900:3900"],
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessExtraScanning yes", "OnAccessMaxThreads 2"],
    });
    const flood = Bun.spawn(asAttacker(["/usr/bin/python3", "-c", FLOODER, staging, spam, "3000", String(256 * 1024)]), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    const prepared = await flood.stdout.getReader().read();
    expect(new TextDecoder().decode(prepared.value)).toContain("prepared");
    flood.stdin.write("go\n");
    flood.stdin.flush();
    const flooding = () => flood.exitCode === null || Date.now() - t0 < 3000;
    const t0 = Date.now();
    try {
      const outcomes: string[] = [];
      while (flooding() && Date.now() - t0 < 30_000) {
        outcomes.push(openInChild(t.eicar, { timeoutMs: 10_000 }).error ?? "ALLOWED");
        await Bun.sleep(20);
      }
      expect(outcomes.length).toBeGreaterThan(5);
      expect(outcomes.filter((o) => o !== "EPERM")).toEqual([]);
    } finally {
      flood.kill("SIGKILL");
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
