// Test Worker: a scanner thread of the fleet tests. Builds its own ClamdPool from the posted settings (as
// the scanner Workers do), scans one file over and over until the test sets stop[0], and reports.
import { closeSync, openSync } from "node:fs";
import { monotonicMs } from "../../ffi/libc.ts";
import { ClamdPool } from "../../src/clamd/pool.ts";
import type { PoolSettings } from "../../src/clamd/pool-settings.ts";

declare const self: Worker;

export interface PoolJob {
  settings: PoolSettings;
  file: string;
  mode: "fd" | "stream";
  /** The Worker stops after the scan during which index 0 became 1. */
  stop: Int32Array;
}

export interface PoolReport {
  scans: number;
  infected: number;
  errors: string[];
  maxMs: number;
  failedOver: number;
}

self.onmessage = (e: MessageEvent<PoolJob>) => {
  const { settings, file, mode, stop } = e.data;
  const pool = new ClamdPool(settings);
  const report: PoolReport = { scans: 0, infected: 0, errors: [], maxMs: 0, failedOver: 0 };
  self.postMessage("started");
  const fd = openSync(file, "r");
  while (Atomics.load(stop, 0) === 0) {
    const t0 = monotonicMs();
    const out = mode === "fd" ? pool.scanFd(fd) : pool.scanStream(fd);
    report.maxMs = Math.max(report.maxMs, monotonicMs() - t0);
    report.scans++;
    if (out.ok && out.verdict.kind === "infected") report.infected++;
    else report.errors.push(out.ok ? JSON.stringify(out.verdict) : out.error.message);
    if (out.attempts > 1) report.failedOver++;
  }
  closeSync(fd);
  self.postMessage(report);
};
