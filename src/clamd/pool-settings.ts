// The settings of a pool of clamd endpoints, checked once on the main thread: plain data plus the
// SharedArrayBuffer (src/clamd/pool-shared.ts) that every scanning thread and the health checker share.
import type { ClamdEndpoint } from "../config/types.ts";
import { describeEndpoint } from "./address.ts";
import { sharedBytes } from "./pool-shared.ts";

/** Everything a pool needs, as plain data plus one SharedArrayBuffer: post it to each Worker. */
export interface PoolSettings {
  endpoints: ClamdEndpoint[];
  /** OnAccessCurlTimeout: bound on each connect/send/receive of one attempt. */
  timeoutMs: number;
  /** OnAccessRetryAttempts: extra rounds over the live endpoints after every one failed. */
  retries: number;
  /** StreamMaxLength in bytes (0 = no limit). */
  streamMaxLength: number;
  /** The whole budget of one scan, failovers included; no attempt starts or lasts beyond it. */
  deadlineMs: number;
  /** PING period of a live endpoint. */
  healthIntervalMs: number;
  /** First and longest wait between PINGs of a dead endpoint (doubling in between). */
  backoffMinMs: number;
  backoffMaxMs: number;
  shared: SharedArrayBuffer;
}

export interface PoolOptions {
  endpoints: ClamdEndpoint[];
  timeoutMs: number;
  retries: number;
  streamMaxLength: number;
  /** Default: timeoutMs × (retries + 1), i.e. what a single endpoint would get. */
  deadlineMs?: number;
  healthIntervalMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

const DEFAULT_HEALTH_INTERVAL_MS = 2000;
const DEFAULT_BACKOFF_MIN_MS = 250;
const DEFAULT_BACKOFF_MAX_MS = 30_000;

/** Validates the options and allocates the shared health buffer (main thread, once). Throws RangeError naming the value. */
export function createPoolSettings(o: PoolOptions): PoolSettings {
  if (o.endpoints.length === 0) throw new RangeError("a clamd pool needs at least one endpoint");
  if (!(o.timeoutMs > 0)) throw new RangeError(`clamd timeout must be positive, got ${o.timeoutMs}`);
  if (!Number.isInteger(o.retries) || o.retries < 0) throw new RangeError(`clamd retries must be a whole number ≥ 0, got ${o.retries}`);
  if (!Number.isInteger(o.streamMaxLength) || o.streamMaxLength < 0) {
    throw new RangeError(`StreamMaxLength must be a whole number of bytes ≥ 0, got ${o.streamMaxLength}`);
  }
  const deadlineMs = o.deadlineMs ?? o.timeoutMs * (o.retries + 1);
  if (!(deadlineMs > 0)) throw new RangeError(`scan deadline must be positive, got ${deadlineMs}`);
  const seen = new Set<string>();
  for (const e of o.endpoints) {
    const d = describeEndpoint(e);
    if (seen.has(d)) throw new RangeError(`clamd endpoint ${d} is listed twice`);
    seen.add(d);
  }
  return {
    endpoints: o.endpoints,
    timeoutMs: o.timeoutMs,
    retries: o.retries,
    streamMaxLength: o.streamMaxLength,
    deadlineMs,
    healthIntervalMs: o.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
    backoffMinMs: o.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS,
    backoffMaxMs: Math.max(o.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS, o.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS),
    shared: new SharedArrayBuffer(sharedBytes(o.endpoints.length)),
  };
}
