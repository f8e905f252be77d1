// Several clamd endpoints as one scanner: each scan goes to the live endpoint with the fewest scans in
// flight, and fails over to the next one within the event's deadline. Health lives in a SharedArrayBuffer
// that every scanner Worker reads and the main thread's async PING checker keeps current.
//
// Threads: the main thread calls createPoolSettings() once and posts the (structured-clonable) settings to
// each scanner Worker, which builds `new ClamdPool(settings)`; the SharedArrayBuffer inside is shared, not
// copied. Workers mark an endpoint down when a scan on it fails in transport; only a PING brings it back
// (startHealthChecks(), with exponential backoff). Without a running checker (its heartbeat goes stale)
// the pool trusts no mark and tries every endpoint, so it still works on its own.
import type { ClamdEndpoint } from "../config/types.ts";
import { ClamdError, type ClamdErrorKind } from "../errors.ts";
import { monotonicMs } from "../../ffi/libc.ts";
import { requestAsync } from "./async-request.ts";
import { ClamdClient } from "./client.ts";
import { describeEndpoint } from "./transport.ts";
import type { ScanOutcome } from "./types.ts";

/** Everything a ClamdPool needs, as plain data plus one SharedArrayBuffer: post it to each Worker. */
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

/** Pool-wide counters for the status: attempts that failed by kind, scans by how the file reached clamd. */
export interface PoolCounters {
  errors: Record<ClamdErrorKind, number>;
  scansByMode: Record<PoolScanMode, number>;
  /** Attempts repeated on another endpoint after a failure. */
  failovers: number;
  /** Scans answered with an error at once because no endpoint was up. */
  allDown: number;
}

export type PoolScanMode = "fdpass" | "stream" | "path";

const ERROR_KINDS: readonly ClamdErrorKind[] = ["connect", "timeout", "protocol", "size-limit", "refused", "io"];
const MODES: readonly PoolScanMode[] = ["fdpass", "stream", "path"];
/** Failures of the conversation, not of the file: the endpoint is suspect and another may answer. */
const ENDPOINT_FAILURES: ReadonlySet<ClamdErrorKind> = new Set(["connect", "timeout", "protocol"]);

const DEFAULT_HEALTH_INTERVAL_MS = 2000;
const DEFAULT_BACKOFF_MIN_MS = 250;
const DEFAULT_BACKOFF_MAX_MS = 30_000;
/** Below this much time left, starting another attempt is pointless. */
const MIN_ATTEMPT_MS = 20;
/** How often the checker looks at marks made by Workers and due probes. */
const CHECK_TICK_MS = 100;

// ---- shared memory layout ------------------------------------------------------------------------
// Int32 words: [0] round-robin counter, then per endpoint: state (0 up, 1 down), in-flight, last error kind.
// BigInt64 words: [0] checker heartbeat (monotonic ms), [1] failovers, [2] all-down, error kinds, modes,
// then per endpoint: scans, failures, down-since (monotonic ms).
const I_RR = 0;
const I_HEADER = 1;
const I_PER_ENDPOINT = 3;
const B_HEARTBEAT = 0;
const B_FAILOVERS = 1;
const B_ALL_DOWN = 2;
const B_KINDS = 3;
const B_MODES = B_KINDS + ERROR_KINDS.length;
const B_HEADER = B_MODES + MODES.length;
const B_PER_ENDPOINT = 3;
const STATE_UP = 0;
const STATE_DOWN = 1;

class _Shared {
  readonly ints: Int32Array;
  readonly bigs: BigInt64Array;
  constructor(
    sab: SharedArrayBuffer,
    readonly count: number,
  ) {
    const intBytes = _intWords(count) * 4;
    this.ints = new Int32Array(sab, 0, _intWords(count));
    this.bigs = new BigInt64Array(sab, Math.ceil(intBytes / 8) * 8, _bigWords(count));
  }
  private i(index: number, field: number): number {
    return I_HEADER + index * I_PER_ENDPOINT + field;
  }
  private b(index: number, field: number): number {
    return B_HEADER + index * B_PER_ENDPOINT + field;
  }
  isUp(i: number): boolean {
    return Atomics.load(this.ints, this.i(i, 0)) === STATE_UP;
  }
  /** True when this call took the endpoint down (not already down). */
  markDown(i: number, kind: ClamdErrorKind | undefined, now: number): boolean {
    if (kind !== undefined) Atomics.store(this.ints, this.i(i, 2), ERROR_KINDS.indexOf(kind) + 1);
    if (Atomics.compareExchange(this.ints, this.i(i, 0), STATE_UP, STATE_DOWN) !== STATE_UP) return false;
    Atomics.store(this.bigs, this.b(i, 2), BigInt(Math.round(now)));
    return true;
  }
  /** True when this call brought the endpoint back. */
  markUp(i: number): boolean {
    return Atomics.compareExchange(this.ints, this.i(i, 0), STATE_DOWN, STATE_UP) === STATE_DOWN;
  }
  lastKind(i: number): ClamdErrorKind | undefined {
    return ERROR_KINDS[Atomics.load(this.ints, this.i(i, 2)) - 1];
  }
  inFlight(i: number): number {
    return Atomics.load(this.ints, this.i(i, 1));
  }
  enter(i: number): void {
    Atomics.add(this.ints, this.i(i, 1), 1);
  }
  leave(i: number): void {
    Atomics.sub(this.ints, this.i(i, 1), 1);
  }
  nextTurn(): number {
    return Atomics.add(this.ints, I_RR, 1) >>> 0;
  }
  countScan(i: number): void {
    Atomics.add(this.bigs, this.b(i, 0), 1n);
  }
  countFailure(i: number, kind: ClamdErrorKind): void {
    Atomics.add(this.bigs, this.b(i, 1), 1n);
    this.countKind(kind);
  }
  countKind(kind: ClamdErrorKind): void {
    Atomics.add(this.bigs, B_KINDS + ERROR_KINDS.indexOf(kind), 1n);
  }
  countMode(mode: PoolScanMode): void {
    Atomics.add(this.bigs, B_MODES + MODES.indexOf(mode), 1n);
  }
  countFailover(): void {
    Atomics.add(this.bigs, B_FAILOVERS, 1n);
  }
  countAllDown(): void {
    Atomics.add(this.bigs, B_ALL_DOWN, 1n);
  }
  scans(i: number): number {
    return Number(Atomics.load(this.bigs, this.b(i, 0)));
  }
  failures(i: number): number {
    return Number(Atomics.load(this.bigs, this.b(i, 1)));
  }
  downSince(i: number): number {
    return Number(Atomics.load(this.bigs, this.b(i, 2)));
  }
  heartbeat(): number {
    return Number(Atomics.load(this.bigs, B_HEARTBEAT));
  }
  beat(now: number): void {
    Atomics.store(this.bigs, B_HEARTBEAT, BigInt(Math.round(now)));
  }
  counters(): PoolCounters {
    const big = (k: number) => Number(Atomics.load(this.bigs, k));
    return {
      errors: Object.fromEntries(ERROR_KINDS.map((k, n) => [k, big(B_KINDS + n)])) as Record<ClamdErrorKind, number>,
      scansByMode: Object.fromEntries(MODES.map((m, n) => [m, big(B_MODES + n)])) as Record<PoolScanMode, number>,
      failovers: big(B_FAILOVERS),
      allDown: big(B_ALL_DOWN),
    };
  }
}

function _intWords(count: number): number {
  return I_HEADER + count * I_PER_ENDPOINT;
}
function _bigWords(count: number): number {
  return B_HEADER + count * B_PER_ENDPOINT;
}

/** Validates the options and allocates the shared health buffer (main thread, once). */
export function createPoolSettings(o: PoolOptions): PoolSettings {
  if (o.endpoints.length === 0) throw new RangeError("a clamd pool needs at least one endpoint");
  if (!(o.timeoutMs > 0)) throw new RangeError(`clamd timeout must be positive, got ${o.timeoutMs}`);
  if (!Number.isInteger(o.retries) || o.retries < 0) throw new RangeError(`clamd retries must be a whole number ≥ 0, got ${o.retries}`);
  const deadlineMs = o.deadlineMs ?? o.timeoutMs * (o.retries + 1);
  if (!(deadlineMs > 0)) throw new RangeError(`scan deadline must be positive, got ${deadlineMs}`);
  const seen = new Set<string>();
  for (const e of o.endpoints) {
    const d = describeEndpoint(e);
    if (seen.has(d)) throw new RangeError(`clamd endpoint ${d} is listed twice`);
    seen.add(d);
  }
  const count = o.endpoints.length;
  const bytes = Math.ceil((_intWords(count) * 4) / 8) * 8 + _bigWords(count) * 8;
  return {
    endpoints: o.endpoints,
    timeoutMs: o.timeoutMs,
    retries: o.retries,
    streamMaxLength: o.streamMaxLength,
    deadlineMs,
    healthIntervalMs: o.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
    backoffMinMs: o.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS,
    backoffMaxMs: Math.max(o.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS, o.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS),
    shared: new SharedArrayBuffer(bytes),
  };
}

/** True when a checker beat recently enough for the Workers to trust its marks. */
function _supervised(s: PoolSettings, shared: _Shared, now: number): boolean {
  const beat = shared.heartbeat();
  return beat > 0 && now - beat < Math.max(3 * s.healthIntervalMs, 3 * CHECK_TICK_MS, 1000);
}

/** The pool's health and counters from the shared buffer alone (any thread). */
export function poolHealth(s: PoolSettings): { endpoints: EndpointHealth[]; counters: PoolCounters } {
  const shared = new _Shared(s.shared, s.endpoints.length);
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

/**
 * The scanning side of the pool: synchronous, for scanner Workers. Never throws for clamd's sake: every
 * method returns a ScanOutcome, an error outcome when no endpoint could answer within the deadline.
 */
export class ClamdPool {
  readonly settings: PoolSettings;
  private readonly shared: _Shared;
  private readonly descriptions: string[];
  private _lastEndpoint: string | undefined;

  constructor(settings: PoolSettings) {
    this.settings = settings;
    this.shared = new _Shared(settings.shared, settings.endpoints.length);
    this.descriptions = settings.endpoints.map(describeEndpoint);
  }

  /** The endpoint that gave the last verdict (or the last error), e.g. for a log line. */
  get lastEndpoint(): string | undefined {
    return this._lastEndpoint;
  }

  /** FILDES on unix endpoints; a TCP or TLS endpoint gets the contents streamed instead (same verdict). */
  scanFd(fd: number): ScanOutcome {
    return this.scan((client) => {
      if (client.endpoint.kind === "unix") {
        this.shared.countMode("fdpass");
        return client.scanFd(fd);
      }
      this.shared.countMode("stream");
      return client.scanStream(fd);
    });
  }

  /** INSTREAM: works with every endpoint kind. */
  scanStream(fd: number): ScanOutcome {
    return this.scan((client) => {
      this.shared.countMode("stream");
      return client.scanStream(fd);
    });
  }

  /** CONTSCAN/ALLMATCHSCAN by path: clamd opens the file itself (for clamds that see this filesystem). */
  scanPath(path: string | Uint8Array, opts: { allmatch?: boolean } = {}): ScanOutcome {
    return this.scan((client) => {
      this.shared.countMode("path");
      return client.scanPath(path, opts);
    });
  }

  private scan(run: (client: ClamdClient) => ScanOutcome): ScanOutcome {
    const s = this.settings;
    const start = monotonicMs();
    const deadline = start + s.deadlineMs;
    let attempts = 0;
    let tries = 0;
    let last: ClamdError | undefined;
    // Endpoints this scan saw fail: a retry round (OnAccessRetryAttempts) may try them again, down or not.
    const failedHere = new Set<number>();
    for (let round = 0; round <= s.retries; round++) {
      const tried = new Set<number>();
      for (;;) {
        const now = monotonicMs();
        const left = deadline - now;
        if (left < MIN_ATTEMPT_MS) return this.outOfTime(last, attempts);
        const i = this.pick(tried, round > 0 ? failedHere : undefined, now);
        if (i === undefined) break;
        tried.add(i);
        if (tries++ > 0) this.shared.countFailover();
        const client = new ClamdClient({
          endpoint: s.endpoints[i]!,
          timeoutMs: Math.max(1, Math.min(s.timeoutMs, left)),
          deadlineAt: deadline,
          retries: 0,
          streamMaxLength: s.streamMaxLength,
        });
        this.shared.enter(i);
        let outcome: ScanOutcome;
        try {
          outcome = run(client);
        } catch (err) {
          // The client reports failures as outcomes; a throw is a bug, and still must not end the scan.
          outcome = { ok: false, error: err instanceof ClamdError ? err : new ClamdError("protocol", `scan failed: ${String(err)}`), attempts: 1 };
        } finally {
          this.shared.leave(i);
        }
        attempts += outcome.attempts;
        this._lastEndpoint = this.descriptions[i];
        if (outcome.ok) {
          this.shared.countScan(i);
          // Unsupervised, a working endpoint is its own proof of life.
          if (!this.shared.isUp(i) && !_supervised(s, this.shared, monotonicMs())) this.shared.markUp(i);
          return { ...outcome, attempts };
        }
        const kind = outcome.error.kind;
        if (!ENDPOINT_FAILURES.has(kind)) {
          // About the file or the request (unreadable, too large, refused): another clamd would say the same.
          this.shared.countKind(kind);
          return { ...outcome, attempts };
        }
        this.shared.countFailure(i, kind);
        this.shared.markDown(i, kind, monotonicMs());
        failedHere.add(i);
        last = outcome.error;
      }
      if (tried.size === 0) break;
    }
    if (tries === 0) {
      this.shared.countAllDown();
      return { ok: false, error: this.allDownError(), attempts };
    }
    return { ok: false, error: last ?? this.allDownError(), attempts };
  }

  /**
   * The live endpoint not yet tried in this round with the fewest scans in flight; ties go round-robin.
   * Down endpoints are candidates too (after the live ones) when no checker runs, and in a retry round
   * for the endpoints this scan itself saw fail. When every endpoint is down, those that failed fast
   * (refused, closed: not a timeout) are tried anyway: a clamd that just restarted answers at once, and
   * waiting for the next health PING would leave opens to the error policy meanwhile. A silent one is not
   * retried per scan, or every open would wait out its timeout.
   */
  private pick(tried: Set<number>, retrying: Set<number> | undefined, now: number): number | undefined {
    const n = this.settings.endpoints.length;
    const trustMarks = _supervised(this.settings, this.shared, now);
    let lastResort = false;
    if (trustMarks) {
      let anyUp = false;
      for (let i = 0; i < n && !anyUp; i++) anyUp = this.shared.isUp(i);
      lastResort = !anyUp;
    }
    const offset = this.shared.nextTurn() % n;
    let best: number | undefined;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (offset + k) % n;
      if (tried.has(i)) continue;
      const up = this.shared.isUp(i);
      const fastFailure = lastResort && this.shared.lastKind(i) !== "timeout";
      if (!up && trustMarks && !retrying?.has(i) && !fastFailure) continue;
      const score = this.shared.inFlight(i) + (up ? 0 : 1_000_000);
      if (score < bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return best;
  }

  private outOfTime(last: ClamdError | undefined, attempts: number): ScanOutcome {
    const why = last ? `; last error: ${last.message}` : "";
    return {
      ok: false,
      error: new ClamdError(last?.kind === "connect" ? "connect" : "timeout", `No clamd endpoint answered within the scan deadline of ${this.settings.deadlineMs} ms${why}`, { cause: last }),
      attempts,
    };
  }

  private allDownError(): ClamdError {
    const now = monotonicMs();
    const list = this.descriptions
      .map((d, i) => {
        const kind = this.shared.lastKind(i);
        const since = this.shared.downSince(i);
        return `${d} (down ${((now - since) / 1000).toFixed(1)} s${kind ? `, ${kind}` : ""})`;
      })
      .join(", ");
    return new ClamdError("connect", `No clamd endpoint is up: ${list}; they are PINGed in the background and rejoin when they answer`);
  }
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
  const shared = new _Shared(s.shared, s.endpoints.length);
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
  const timer = setInterval(tick, CHECK_TICK_MS);
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
