// What `onacc status` shows and the status socket serves: the snapshot's shape, and the StatusSource the
// agent implements so the server never reaches into the engine itself.
import type { EndpointHealth } from "../clamd/health.ts";

export type { EndpointHealth } from "../clamd/health.ts";

export interface StatusSnapshot {
  version: string;
  pid: number;
  /** ISO-8601 start time. */
  startedAt: string;
  uptimeSeconds: number;
  endpoints: EndpointHealth[];
  events: {
    /** Events read from fanotify (permission and notification). */
    seen: number;
    allowed: number;
    denied: number;
    /** Allowed without a scan: onacc's own, excluded pid/uid/path, not a regular file, too large. */
    skipped: number;
  };
  scans: {
    total: number;
    clean: number;
    infected: number;
    errors: number;
    /** How the file reached clamd: fdpass, stream, path. */
    byMode: Record<string, number>;
  };
  cache: { hits: number; misses: number; evictions: number; flushes: number };
  queue: {
    depth: number;
    /** Age of the oldest permission event still waiting for its answer (0 when none). */
    oldestPendingMs: number;
  };
  /** Problems by kind: clamd errors (connect, timeout, protocol, …) and the engine's (ringFull, …). */
  errors: Record<string, number>;
  latency: {
    /** Scans measured. */
    count: number;
    p50Ms: number | null;
    p99Ms: number | null;
    meanMs: number | null;
    /** Total time of the measured scans (Prometheus summary _sum). */
    sumMs: number;
  };
}

/** Implemented by the agent; called on the main thread, once per request. */
export interface StatusSource {
  snapshot(): StatusSnapshot;
  /** `{"cmd":"flush-cache"}`: forget every cached verdict (as SIGUSR2 does). */
  flushCaches(reason: string): void;
}

/** One line sent to the status socket. */
export type StatusRequest = { cmd: "status" } | { cmd: "flush-cache" } | { cmd: "ping" };

/** One line the status socket answers. */
export type StatusReply =
  | { ok: true; status: StatusSnapshot }
  | { ok: true; flushed: true }
  | { ok: true; pong: true; pid: number }
  | { ok: false; error: string };

/** Where the control socket lives unless --status-socket says otherwise. */
export const DEFAULT_STATUS_SOCKET = "/run/onacc/status.sock";
