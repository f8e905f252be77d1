// Many scans in flight at once: several Bun Workers, each with its own synchronous ClamdClient, released
// together against the same clamd over the unix socket and TCP; every verdict must be right.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";
import { clean, EICAR_FOUND, endpointOf, infected, MARKER_FOUND, writeTestFiles, type TestFiles, type Transport } from "./helpers.ts";
import type { ScanJob, ScanReport } from "./scan-worker.ts";

let clamd: TestClamd;
let files: TestFiles;
beforeAll(async () => {
  clamd = await startClamd();
  files = writeTestFiles(clamd.dir);
});
afterAll(() => disposeClamd(clamd));

describe("concurrent Workers", () => {
  test("six Workers scanning at the same time all get the right verdicts", async () => {
    const transports: Transport[] = ["unix", "unix", "unix", "tcp", "tcp", "tcp"];
    const rounds = 8;
    const go = new Int32Array(new SharedArrayBuffer(4));
    const expected = new Map<string, string[]>([
      [files.eicar, [EICAR_FOUND]],
      [files.marked, [MARKER_FOUND]],
      [files.clean, []],
    ]);
    const workers = transports.map(() => new Worker(new URL("./scan-worker.ts", import.meta.url)));
    try {
      const waiting = workers.map((w) => new Promise<void>((resolve) => (w.onmessage = () => resolve())));
      workers.forEach((w, i) => w.postMessage({ endpoint: endpointOf(clamd, transports[i]!), go, files: [...expected.keys()], rounds } satisfies ScanJob));
      await Promise.all(waiting);
      const reports = workers.map((w) => new Promise<ScanReport>((resolve) => (w.onmessage = (e: MessageEvent<ScanReport>) => resolve(e.data))));
      // Every Worker is parked in Atomics.wait; release them together.
      Atomics.store(go, 0, 1);
      Atomics.notify(go, 0);
      const done = await Promise.all(reports);

      done.forEach((report, i) => {
        const modes = transports[i] === "unix" ? 3 : 2;
        expect(report.outcomes.length).toBe(rounds * expected.size * modes);
        for (const { file, mode, outcome } of report.outcomes) {
          const signatures = expected.get(file)!;
          const want: ScanOutcome = signatures.length ? infected(...signatures) : clean;
          expect({ worker: i, file, mode, outcome }).toEqual({ worker: i, file, mode, outcome: want });
        }
      });
    } finally {
      for (const w of workers) w.terminate();
    }
  }, 30000);
});
