// Worker entry for the concurrency test: like a scanner Worker, it blocks in Atomics.wait until released,
// then scans with its own ClamdClient and posts every outcome back.
import { closeSync, openSync } from "node:fs";
import { ClamdClient } from "../../src/clamd/client.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";
import type { ClamdEndpoint } from "../../src/config/types.ts";

declare const self: Worker;

export interface ScanJob {
  endpoint: ClamdEndpoint;
  /** Index 0 stays 0 until the test releases every Worker at once. */
  go: Int32Array;
  files: string[];
  rounds: number;
}

export interface ScanReport {
  outcomes: { file: string; mode: string; outcome: ScanOutcome }[];
}

self.onmessage = (e: MessageEvent<ScanJob>) => {
  const { endpoint, go, files, rounds } = e.data;
  const client = new ClamdClient({ endpoint, timeoutMs: 5000, retries: 0, streamMaxLength: 1024 * 1024 });
  self.postMessage("waiting");
  Atomics.wait(go, 0, 0);
  const outcomes: ScanReport["outcomes"] = [];
  for (let r = 0; r < rounds; r++) {
    for (const file of files) {
      const fd = openSync(file, "r");
      try {
        if (endpoint.kind === "unix") outcomes.push({ file, mode: "fd", outcome: client.scanFd(fd) });
        outcomes.push({ file, mode: "stream", outcome: client.scanStream(fd) });
        outcomes.push({ file, mode: "path", outcome: client.scanPath(file) });
      } finally {
        closeSync(fd);
      }
    }
  }
  // Errors do not survive postMessage as ClamdError; send what the test checks.
  self.postMessage({
    outcomes: outcomes.map((o) => ({ ...o, outcome: o.outcome.ok ? o.outcome : { ...o.outcome, error: String(o.outcome.error.message) } })),
  });
};
