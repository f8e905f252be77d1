import { describe, expect, test } from "bun:test";
import { bucketUpperMs, cumulativeBuckets, LatencyHistogram, quantileMs } from "../../src/status/histogram.ts";

describe("LatencyHistogram", () => {
  test("quantileMs() of 1…1000 ms is within a bucket's ±10% of the true p50 and p99", () => {
    const h = LatencyHistogram.create();
    for (let ms = 1; ms <= 1000; ms++) h.recordLatency(ms);
    const s = h.snapshot();
    expect(s.count).toBe(1000);
    expect(s.sumMs).toBeCloseTo(500500, 0);
    expect(quantileMs(s, 0.5)!).toBeGreaterThan(450);
    expect(quantileMs(s, 0.5)!).toBeLessThan(550);
    expect(quantileMs(s, 0.99)!).toBeGreaterThan(900);
    expect(quantileMs(s, 0.99)!).toBeLessThan(1090);
  });

  test("quantileMs() of nothing is undefined; sub-bucket and beyond-range values land in the end buckets", () => {
    const h = LatencyHistogram.create();
    expect(quantileMs(h.snapshot(), 0.5)).toBeUndefined();
    h.recordLatency(0);
    h.recordLatency(-3);
    h.recordLatency(Number.NaN);
    h.recordLatency(10 * 60 * 1000);
    const s = h.snapshot();
    expect(s.buckets[0]).toBe(3);
    expect(s.buckets[s.buckets.length - 1]).toBe(1);
    expect(quantileMs(s, 1)).toBe(bucketUpperMs(s.buckets.length - 2));
  });

  test("a value on a bucket bound belongs to that bucket (Prometheus le semantics)", () => {
    const h = LatencyHistogram.create();
    h.recordLatency(1);
    h.recordLatency(2);
    const c = cumulativeBuckets(h.snapshot());
    expect(c.find((b) => b.leSeconds === 0.001)!.count).toBe(1);
    expect(c.find((b) => b.leSeconds === 0.002)!.count).toBe(2);
    expect(c[c.length - 1]).toEqual({ leSeconds: Infinity, count: 2 });
    for (let i = 1; i < c.length; i++) expect(c[i]!.count).toBeGreaterThanOrEqual(c[i - 1]!.count);
  });

  test("four Workers recording at once lose no count", async () => {
    const h = LatencyHistogram.create();
    const workers = [0, 1, 2, 3].map(() => new Worker(new URL("./histogram-worker.ts", import.meta.url).href));
    await Promise.all(
      workers.map(
        (w, i) =>
          new Promise<void>((resolve) => {
            w.onmessage = () => resolve();
            w.postMessage({ buffer: h.buffer, from: 1 + i * 10, to: 10 + i * 10, rounds: 2500 });
          }),
      ),
    );
    for (const w of workers) w.terminate();
    const s = h.snapshot();
    expect(s.count).toBe(4 * 10 * 2500);
    expect(s.buckets.reduce((a, b) => a + b, 0)).toBe(100000);
    // 1…40 ms evenly: the median is about 20 ms.
    expect(quantileMs(s, 0.5)!).toBeGreaterThan(18);
    expect(quantileMs(s, 0.5)!).toBeLessThan(22.5);
  });

  test("attach() refuses a buffer that is not a histogram's", () => {
    expect(() => LatencyHistogram.attach(new SharedArrayBuffer(64))).toThrow("not a latency histogram buffer: 64 bytes");
  });
});
