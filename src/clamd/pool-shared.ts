// The layout of a clamd pool's SharedArrayBuffer: each endpoint's health mark (up/down), scans in flight,
// last error kind and counters, plus pool-wide counters and the health checker's heartbeat. Any thread.
import type { ClamdErrorKind } from "../errors.ts";

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

/**
 * How often the health checker beats and looks at marks made by scanners. Scanners trust the marks only
 * while the beat is fresh: without a running checker nothing would ever bring an endpoint back up.
 */
export const HEALTH_TICK_MS = 100;

/** Bytes of the SharedArrayBuffer for `count` endpoints. */
export function sharedBytes(count: number): number {
  return Math.ceil((intWords(count) * 4) / 8) * 8 + bigWords(count) * 8;
}

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

/** Typed views of a pool's SharedArrayBuffer; every thread that scans or checks health makes its own. */
export class PoolShared {
  readonly ints: Int32Array;
  readonly bigs: BigInt64Array;
  constructor(
    sab: SharedArrayBuffer,
    readonly count: number,
  ) {
    const intBytes = intWords(count) * 4;
    this.ints = new Int32Array(sab, 0, intWords(count));
    this.bigs = new BigInt64Array(sab, Math.ceil(intBytes / 8) * 8, bigWords(count));
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
  /** True when a checker beat recently enough for the marks to be trusted. */
  supervised(healthIntervalMs: number, now: number): boolean {
    const beat = this.heartbeat();
    return beat > 0 && now - beat < Math.max(3 * healthIntervalMs, 3 * HEALTH_TICK_MS, 1000);
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

function intWords(count: number): number {
  return I_HEADER + count * I_PER_ENDPOINT;
}
function bigWords(count: number): number {
  return B_HEADER + count * B_PER_ENDPOINT;
}
