// Knowing when an agent's background work is done: scans clamd logged since a point (the test clamd logs
// one line per scanned file), and a wait until neither clamd's log nor onacc's counters move any more.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { TestClamd } from "../tests/fixtures/clamd.ts";
import { type Agent, onaccStatus } from "./agents.ts";

/** Counts the scans clamd logs from now on ("…: OK" and "…: <name> FOUND" lines). */
export function clamdScans(clamd: TestClamd): () => number {
  const start = size(clamd.logFile);
  return () => {
    const end = size(clamd.logFile);
    if (end <= start) return 0;
    const buf = Buffer.alloc(end - start);
    const fd = openSync(clamd.logFile, "r");
    try {
      readSync(fd, buf, 0, buf.length, start);
    } finally {
      closeSync(fd);
    }
    let n = 0;
    for (const line of buf.toString("utf8").split("\n")) if (/: OK$|FOUND$/.test(line)) n++;
    return n;
  };
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export interface Settled {
  /** From the call until the last change seen (0 when nothing moved). */
  ms: number;
  /** False when things still moved after maxMs. */
  settled: boolean;
}

/**
 * Polls every 50 ms until clamd's log and (for onacc) its scan and event counters and queue depth have
 * not moved for `quietMs`; the figure is the time of the last change, so the quiet wait itself is not
 * counted.
 */
export async function waitSettled(clamd: TestClamd, agent: Agent | undefined, quietMs: number, maxMs: number): Promise<Settled> {
  const t0 = performance.now();
  let last = "";
  let lastChange = t0;
  for (;;) {
    const s = agent ? await onaccStatus(agent) : undefined;
    const busy = s ? s.queue.depth > 0 : false;
    const state = `${size(clamd.logFile)} ${s ? `${s.scans.total} ${s.events.seen} ${s.queue.depth}` : ""}`;
    const now = performance.now();
    if (state !== last || busy) {
      if (last !== "") lastChange = now;
      last = state;
    } else if (now - lastChange >= quietMs) {
      return { ms: lastChange - t0, settled: true };
    }
    if (now - t0 > maxMs) return { ms: now - t0, settled: false };
    await Bun.sleep(50);
  }
}
