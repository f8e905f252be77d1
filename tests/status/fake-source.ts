// A StatusSource for the status tests: a fixed snapshot built the way the agent builds its own, and a
// record of every cache flush asked for.
import { LatencyHistogram } from "../../src/status/histogram.ts";
import { buildStatusSnapshot } from "../../src/status/snapshot.ts";
import type { SelfTestHandler, StatusSnapshot, StatusSource } from "../../src/status/types.ts";

export const STARTED_AT = Date.parse("2026-11-26T10:00:00.000Z");

export function fakeSnapshot(): StatusSnapshot {
  const latency = LatencyHistogram.create();
  for (let i = 0; i < 98; i++) latency.recordLatency(2);
  latency.recordLatency(40);
  latency.recordLatency(40);
  return buildStatusSnapshot({
    version: "9.9.9",
    pid: 4242,
    startedAtMs: STARTED_AT,
    nowMs: STARTED_AT + (3 * 3600 + 25 * 60 + 7) * 1000,
    counters: {
      events: 1500,
      allowed: 1400,
      denied: 3,
      ownPid: 10,
      excluded: 20,
      notRegular: 5,
      tooLarge: 2,
      scanned: 1200,
      clean: 1190,
      infected: 3,
      scanErrors: 7,
      cacheHits: 300,
      cacheMisses: 1200,
      cacheEvictions: 4,
      cacheFlushes: 1,
      ringFull: 0,
      watchdogAnswered: 2,
      overflow: 0,
      actionsFailed: 0,
    },
    queueDepth: 3,
    oldestPendingMs: 120.4,
    endpoints: [
      { endpoint: "unix:/run/clamav/clamd.ctl", up: true, inFlight: 2, scans: 1000, failures: 0, downForMs: 0 },
      {
        endpoint: "tls://clamd.example@10.0.0.5:3311",
        up: false,
        inFlight: 0,
        scans: 193,
        failures: 7,
        downForMs: 12500,
        lastError: "Cannot connect to clamd at tls://clamd.example@10.0.0.5:3311: ECONNREFUSED (connection refused)",
        nextProbeInMs: 4000,
      },
    ],
    pool: {
      errors: { connect: 5, timeout: 2, protocol: 0, "size-limit": 0, refused: 0, io: 0 },
      scansByMode: { fdpass: 1000, stream: 200, path: 0 },
      failovers: 7,
      allDown: 0,
    },
    latency: latency.snapshot(),
    logWriteFailures: 0,
  });
}

export class FakeSource implements StatusSource {
  flushes: string[] = [];
  failWith: string | undefined;
  selfTest?: SelfTestHandler;
  snapshot(): StatusSnapshot {
    if (this.failWith) throw new Error(this.failWith);
    return fakeSnapshot();
  }
  flushCaches(reason: string): void {
    this.flushes.push(reason);
  }
}
