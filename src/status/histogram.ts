// Scan latency as a lock-free histogram in a SharedArrayBuffer: scanner Workers add to log-scale buckets
// with Atomics.add, the status reads p50/p99 from them. Four buckets per doubling, 62.5 µs to ~131 s.
//
// Hint: a bucket spans a factor of 2^(1/4) ≈ 1.19, so a quantile read from it (interpolated inside the
// bucket) is within about ±9% of the true value: plenty for p50/p99 and cheap enough for every scan.

/** Buckets per doubling of the latency. */
const PER_OCTAVE = 4;
/** The first bucket ends at 2^-4 ms = 62.5 µs; the last finite one at 2^17 ms ≈ 131 s. */
const FIRST_EXPONENT = -4;
const LAST_EXPONENT = 17;
const FINITE_BUCKETS = (LAST_EXPONENT - FIRST_EXPONENT) * PER_OCTAVE + 1;
/** Plus one for everything slower (+Inf). */
const BUCKETS = FINITE_BUCKETS + 1;
const COUNT_BYTES = Math.ceil((BUCKETS * 4) / 8) * 8;
// BigInt64 words after the counts: total recordings, sum in microseconds.
const B_COUNT = 0;
const B_SUM_US = 1;

/** Upper bound of bucket i in ms (Infinity for the last). */
export function bucketUpperMs(i: number): number {
  if (i >= FINITE_BUCKETS) return Infinity;
  return 2 ** (FIRST_EXPONENT + i / PER_OCTAVE);
}

function bucketOf(ms: number): number {
  if (!(ms > bucketUpperMs(0))) return 0; // also NaN and negatives
  const i = Math.ceil((Math.log2(ms) - FIRST_EXPONENT) * PER_OCTAVE - 1e-9);
  return Math.min(i, BUCKETS - 1);
}

export interface HistogramSnapshot {
  count: number;
  sumMs: number;
  /** Counts per bucket (not cumulative), bucket i ending at bucketUpperMs(i). */
  buckets: number[];
}

export class LatencyHistogram {
  readonly buffer: SharedArrayBuffer;
  private readonly counts: Int32Array;
  private readonly totals: BigInt64Array;

  /** New shared memory (main thread); hand `buffer` to each Worker and rebuild it with attach(). */
  static create(): LatencyHistogram {
    return new LatencyHistogram(new SharedArrayBuffer(COUNT_BYTES + 16));
  }

  static attach(buffer: SharedArrayBuffer): LatencyHistogram {
    return new LatencyHistogram(buffer);
  }

  private constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength !== COUNT_BYTES + 16) {
      throw new RangeError(`not a latency histogram buffer: ${buffer.byteLength} bytes, expected ${COUNT_BYTES + 16}`);
    }
    this.buffer = buffer;
    this.counts = new Int32Array(buffer, 0, BUCKETS);
    this.totals = new BigInt64Array(buffer, COUNT_BYTES, 2);
  }

  /** One scan took `ms` milliseconds. Safe from any number of threads at once. */
  recordLatency(ms: number): void {
    Atomics.add(this.counts, bucketOf(ms), 1);
    Atomics.add(this.totals, B_COUNT, 1n);
    Atomics.add(this.totals, B_SUM_US, BigInt(Math.max(0, Math.round(ms * 1000)) || 0));
  }

  snapshot(): HistogramSnapshot {
    const buckets: number[] = [];
    // Hint: Int32 counters read as unsigned, so a bucket wraps only after 2^32 scans.
    for (let i = 0; i < BUCKETS; i++) buckets.push(Atomics.load(this.counts, i) >>> 0);
    return {
      count: Number(Atomics.load(this.totals, B_COUNT)),
      sumMs: Number(Atomics.load(this.totals, B_SUM_US)) / 1000,
      buckets,
    };
  }
}

/**
 * The q-quantile (0 < q ≤ 1) in ms from a snapshot, interpolated geometrically inside its bucket;
 * undefined when nothing was recorded. The +Inf bucket reports its lower bound.
 */
export function quantileMs(s: HistogramSnapshot, q: number): number | undefined {
  const total = s.buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < s.buckets.length; i++) {
    const n = s.buckets[i]!;
    if (seen + n < rank) {
      seen += n;
      continue;
    }
    const upper = bucketUpperMs(i);
    const lower = i === 0 ? 0 : bucketUpperMs(i - 1);
    if (upper === Infinity) return lower;
    const within = (rank - seen) / n;
    return lower === 0 ? upper * within : lower * (upper / lower) ** within;
  }
  return bucketUpperMs(FINITE_BUCKETS - 1);
}

/** Cumulative counts at every power of two ms (Prometheus `le` bounds in seconds), then +Inf. */
export function cumulativeBuckets(s: HistogramSnapshot): { leSeconds: number; count: number }[] {
  const out: { leSeconds: number; count: number }[] = [];
  let running = 0;
  for (let i = 0; i < s.buckets.length; i++) {
    running += s.buckets[i]!;
    const upper = bucketUpperMs(i);
    if (upper === Infinity) out.push({ leSeconds: Infinity, count: running });
    else if (i % PER_OCTAVE === 0) out.push({ leSeconds: upper / 1000, count: running });
  }
  return out;
}
