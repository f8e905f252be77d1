// Health of a clamd pool: the main thread's checker that PINGs each endpoint (live ones periodically, dead
// ones with exponential backoff) through the asynchronous client, and the health view the status shows.
import { monotonicMs } from "../../ffi/libc.ts";
import { describeEndpoint } from "./address.ts";
import { requestAsync } from "./async-request.ts";
import { HEALTH_TICK_MS, PoolShared, type PoolCounters } from "./pool-shared.ts";
import type { PoolSettings } from "./pool-settings.ts";

/** Per-endpoint health as the status shows it. */
export interface EndpointHealth {
  endpoint: string;
  up: boolean;
  inFlight: number;
  /** Scans this endpoint answered (verdicts). */
  scans: number;
  /** Attempts on it that failed in transport (connect, timeout, broken reply). */
  failures: number;
  /** How long it has been down (0 when up). */
  downForMs: number;
  /** Why it went down, when it is down and the checker knows. */
  lastError?: string;
  /** When the checker PINGs it next (only while a checker runs). */
  nextProbeInMs?: number;
}

/** The pool's health and counters from the shared buffer alone (any thread). */
export function poolHealth(s: PoolSettings): { endpoints: EndpointHealth[]; counters: PoolCounters } {
  const shared = new PoolShared(s.shared, s.endpoints.length);
  const now = monotonicMs();
  return {
    endpoints: s.endpoints.map((e, i) => {
      const up = shared.isUp(i);
      const kind = shared.lastKind(i);
      return {
        endpoint: describeEndpoint(e),
        up,
        inFlight: shared.inFlight(i),
        scans: shared.scans(i),
        failures: shared.failures(i),
        downForMs: up ? 0 : Math.max(0, Math.round(now - shared.downSince(i))),
        ...(!up && kind ? { lastError: `a scan failed (${kind})` } : {}),
      };
    }),
    counters: shared.counters(),
  };
}

export interface HealthChange {
  index: number;
  endpoint: string;
  up: boolean;
  /** For a change to down: the error; for up: how long it was down. */
  reason: string;
}

export interface HealthChecker {
  /** Health of every endpoint, with the checker's own knowledge (last error, next PING). */
  status(): EndpointHealth[];
  /** PINGs every endpoint now (tests, `onacc status` after a change); resolves when all answered or failed. */
  checkNow(): Promise<void>;
  stop(): void;
}

interface _Probe {
  known: "up" | "down";
  probing: boolean;
  nextProbeAt: number;
  backoffMs: number;
  lastError?: string;
  upSince: number;
}

/** Backoff resets once an endpoint has stayed up this long (a flapping one keeps growing its wait). */
const STABLE_UP_MS = 30_000;

/**
 * The main thread's health checker: PINGs live endpoints every healthIntervalMs, dead ones with
 * exponential backoff (backoffMinMs doubling to backoffMaxMs), and notices marks made by scanner Workers
 * within 100 ms. Async sockets only: never blocks the event loop. onChange is called on every up/down.
 */
export function startHealthChecks(s: PoolSettings, onChange: (change: HealthChange) => void): HealthChecker {
  const shared = new PoolShared(s.shared, s.endpoints.length);
  const start = monotonicMs();
  const probes: _Probe[] = s.endpoints.map((_, i) => ({
    known: shared.isUp(i) ? "up" : "down",
    probing: false,
    nextProbeAt: start,
    backoffMs: s.backoffMinMs,
    upSince: start,
  }));
  let stopped = false;
  shared.beat(start);

  const wentDown = (i: number, reason: string, now: number) => {
    const p = probes[i]!;
    const flapping = now - p.upSince < STABLE_UP_MS && p.known === "up" && p.lastError !== undefined;
    p.backoffMs = flapping ? Math.min(p.backoffMs * 2, s.backoffMaxMs) : s.backoffMinMs;
    p.known = "down";
    p.lastError = reason;
    p.nextProbeAt = now + p.backoffMs;
    onChange({ index: i, endpoint: describeEndpoint(s.endpoints[i]!), up: false, reason });
  };

  const probe = async (i: number): Promise<void> => {
    const p = probes[i]!;
    if (p.probing) return;
    p.probing = true;
    let error: string | undefined;
    try {
      const reply = await requestAsync(s.endpoints[i]!, "zPING\0", s.timeoutMs);
      if (reply.trim() !== "PONG") error = `clamd at ${describeEndpoint(s.endpoints[i]!)} answered PING with ${JSON.stringify(reply)}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    } finally {
      p.probing = false;
    }
    if (stopped) return;
    const now = monotonicMs();
    if (error === undefined) {
      if (p.known === "down" || !shared.isUp(i)) {
        const downFor = shared.isUp(i) ? 0 : now - shared.downSince(i);
        shared.markUp(i);
        p.known = "up";
        p.upSince = now;
        onChange({ index: i, endpoint: describeEndpoint(s.endpoints[i]!), up: true, reason: `answered PING after ${(downFor / 1000).toFixed(1)} s down` });
      }
      p.nextProbeAt = now + s.healthIntervalMs;
      return;
    }
    if (p.known === "up") {
      shared.markDown(i, undefined, now);
      wentDown(i, error, now);
      return;
    }
    shared.markDown(i, undefined, now);
    p.lastError = error;
    p.backoffMs = Math.min(p.backoffMs * 2, s.backoffMaxMs);
    p.nextProbeAt = now + p.backoffMs;
  };

  const tick = () => {
    if (stopped) return;
    const now = monotonicMs();
    shared.beat(now);
    for (let i = 0; i < probes.length; i++) {
      const p = probes[i]!;
      if (p.known === "up" && !shared.isUp(i)) {
        const kind = shared.lastKind(i);
        wentDown(i, `a scan on it failed${kind ? ` (${kind})` : ""}`, now);
        // A stable endpoint that failed once is PINGed soon; wentDown() chose the wait.
      }
      if (!p.probing && now >= p.nextProbeAt) void probe(i);
    }
  };
  const timer = setInterval(tick, HEALTH_TICK_MS);
  timer.unref?.();
  tick();

  return {
    status() {
      const base = poolHealth(s).endpoints;
      const now = monotonicMs();
      return base.map((h, i) => {
        const p = probes[i]!;
        const out: EndpointHealth = { ...h, nextProbeInMs: Math.max(0, Math.round(p.nextProbeAt - now)) };
        if (!h.up && p.lastError !== undefined) out.lastError = p.lastError;
        return out;
      });
    },
    async checkNow() {
      await Promise.all(probes.map((_, i) => probe(i)));
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
