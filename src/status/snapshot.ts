// Builds a StatusSnapshot from what the agent has at hand: the ring's counters, the pool's health and
// counters, the latency histogram. The agent's StatusSource.snapshot() is one call to this.
import type { EndpointHealth } from "../clamd/health.ts";
import type { PoolCounters } from "../clamd/pool-shared.ts";
import type { CounterName } from "../engine/counters.ts";
import { quantileMs, type HistogramSnapshot } from "./histogram.ts";
import type { ExclusionCount, StatusSnapshot, TopTalkers, ReloadOutcome } from "./types.ts";

export interface SnapshotInputs {
  version: string;
  reload?: ReloadOutcome;
  pid: number;
  /** Date.now() when the agent started. */
  startedAtMs: number;
  /** Date.now() now (tests pass a fixed one). */
  nowMs?: number;
  counters: Partial<Record<CounterName, number>>;
  queueDepth: number;
  oldestPendingMs: number;
  endpoints: EndpointHealth[];
  pool?: PoolCounters;
  latency?: HistogramSnapshot;
  /** Log lines that could not be written (Logger.writeFailures). */
  logWriteFailures?: number;
  protectedTrees?: string[];
  exclusions?: ExclusionCount[];
  top?: TopTalkers;
}

/** Engine counters that count a problem, reported under "errors" with these names. */
const ENGINE_PROBLEMS: readonly CounterName[] = ["ringFull", "watchdogAnswered", "overflow", "actionsFailed"];

export function buildStatusSnapshot(i: SnapshotInputs): StatusSnapshot {
  const c = (name: CounterName) => i.counters[name] ?? 0;
  const now = i.nowMs ?? Date.now();
  const errors: Record<string, number> = {};
  if (i.pool) {
    for (const [kind, n] of Object.entries(i.pool.errors)) errors[kind] = n;
    errors.allEndpointsDown = i.pool.allDown;
  }
  for (const name of ENGINE_PROBLEMS) errors[name] = c(name);
  if (i.logWriteFailures !== undefined) errors.logWriteFailures = i.logWriteFailures;
  const lat = i.latency;
  const p = (q: number) => (lat ? round3(quantileMs(lat, q)) : null);
  return {
    version: i.version,
    ...(i.reload ? { reload: i.reload } : {}),
    pid: i.pid,
    startedAt: new Date(i.startedAtMs).toISOString(),
    uptimeSeconds: Math.max(0, Math.floor((now - i.startedAtMs) / 1000)),
    endpoints: i.endpoints,
    events: {
      seen: c("events"),
      allowed: c("allowed"),
      denied: c("denied"),
      skipped: c("ownPid") + c("excluded") + c("notRegular") + c("tooLarge"),
    },
    scans: {
      total: c("scanned"),
      clean: c("clean"),
      infected: c("infected"),
      errors: c("scanErrors"),
      byMode: { ...(i.pool?.scansByMode ?? {}) },
    },
    cache: { hits: c("cacheHits"), misses: c("cacheMisses"), evictions: c("cacheEvictions"), flushes: c("cacheFlushes") },
    queue: { depth: i.queueDepth, oldestPendingMs: Math.max(0, Math.round(i.oldestPendingMs)) },
    errors,
    latency: {
      count: lat?.count ?? 0,
      p50Ms: p(0.5),
      p99Ms: p(0.99),
      meanMs: lat && lat.count > 0 ? round3(lat.sumMs / lat.count) : null,
      sumMs: lat ? round3(lat.sumMs)! : 0,
    },
    ...(i.protectedTrees ? { protectedTrees: i.protectedTrees } : {}),
    ...(i.exclusions ? { exclusions: i.exclusions } : {}),
    ...(i.top ? { top: i.top } : {}),
  };
}

function round3(v: number | undefined): number | null {
  return v === undefined ? null : Math.round(v * 1000) / 1000;
}
