import { describe, expect, test } from "bun:test";
import { formatDuration, renderPrometheus, renderStatusTable } from "../../src/status/format.ts";
import { buildStatusSnapshot } from "../../src/status/snapshot.ts";
import { fakeSnapshot } from "./fake-source.ts";

describe("buildStatusSnapshot()", () => {
  test("buildStatusSnapshot() sums the skipped events, merges clamd and engine errors and reads p50/p99", () => {
    const s = fakeSnapshot();
    expect(s.uptimeSeconds).toBe(3 * 3600 + 25 * 60 + 7);
    expect(s.startedAt).toBe("2026-11-26T10:00:00.000Z");
    expect(s.events).toEqual({ seen: 1500, allowed: 1400, denied: 3, skipped: 37 });
    expect(s.scans).toEqual({ total: 1200, clean: 1190, infected: 3, errors: 7, byMode: { fdpass: 1000, stream: 200, path: 0 } });
    expect(s.errors).toMatchObject({ connect: 5, timeout: 2, watchdogAnswered: 2, allEndpointsDown: 0, logWriteFailures: 0 });
    expect(s.queue).toEqual({ depth: 3, oldestPendingMs: 120 });
    // 98 scans of 2 ms and 2 of 40 ms; a quantile is read inside its bucket, within ±10%.
    expect(s.latency.count).toBe(100);
    expect(s.latency.p50Ms!).toBeGreaterThan(1.8);
    expect(s.latency.p50Ms!).toBeLessThanOrEqual(2.2);
    expect(s.latency.p99Ms!).toBeGreaterThan(36);
    expect(s.latency.p99Ms!).toBeLessThanOrEqual(44);
    expect(s.latency.meanMs).toBe(2.76);
  });

  test("buildStatusSnapshot() without scans reports no latency rather than zero", () => {
    const s = buildStatusSnapshot({ version: "1", pid: 1, startedAtMs: 0, nowMs: 5000, counters: {}, queueDepth: 0, oldestPendingMs: 0, endpoints: [] });
    expect(s.latency).toEqual({ count: 0, p50Ms: null, p99Ms: null, meanMs: null, sumMs: 0 });
    expect(s.uptimeSeconds).toBe(5);
  });
});

describe("renderStatusTable()", () => {
  test("renderStatusTable() shows uptime, each endpoint with its health, and one line per area", () => {
    const text = renderStatusTable(fakeSnapshot());
    const lines = text.split("\n");
    expect(lines[0]).toBe("onacc 9.9.9 (pid 4242), up 3h 25m 7s since 2026-11-26T10:00:00.000Z");
    expect(text).toContain("clamd endpoints:");
    expect(lines.find((l) => l.includes("unix:/run/clamav/clamd.ctl"))).toMatch(/unix:\/run\/clamav\/clamd\.ctl\s+up\s+2\s+1000\s+0$/);
    expect(lines.find((l) => l.includes("tls://"))).toMatch(/DOWN\s+0\s+193\s+7\s+down 12\.5 s: Cannot connect .*ECONNREFUSED.* \(next PING in 4\.0 s\)$/);
    expect(text).toContain("events:   seen 1500, allowed 1400, denied 3, skipped 37");
    expect(text).toContain("scans:    1200 (clean 1190, infected 3, errors 7); by mode: fdpass 1000, stream 200, path 0");
    expect(text).toContain("cache:    hits 300, misses 1200 (20.0% hits), evictions 4, flushes 1");
    expect(text).toContain("queue:    depth 3, oldest pending 120.0 ms");
    expect(text).toMatch(/latency:  p50 \d\.\d\d ms, p99 \d\d\.\d ms over 100 scans/);
    expect(text).toContain("errors:   connect 5, timeout 2, watchdogAnswered 2");
  });

  test("formatDuration() drops leading zero units", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(59)).toBe("59s");
    expect(formatDuration(3600)).toBe("1h 0m 0s");
    expect(formatDuration(2 * 86400 + 5)).toBe("2d 0h 0m 5s");
  });
});

describe("renderPrometheus()", () => {
  test("renderPrometheus() emits HELP/TYPE for every family and one sample per line", () => {
    const text = renderPrometheus(fakeSnapshot());
    const lines = text.trimEnd().split("\n");
    for (const line of lines) {
      expect(line).toMatch(/^(# (HELP|TYPE) onacc_\w+ .+|onacc_\w+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eInfNa]+)$/);
    }
    expect(text).toContain("# TYPE onacc_scan_duration_seconds summary");
    expect(text).toMatch(/onacc_scan_duration_seconds\{quantile="0\.99"\} 0\.0[34]\d*/);
    expect(text).toContain('onacc_errors_total{kind="size-limit"} 0');
    expect(text).toContain('onacc_scans_by_mode_total{mode="fdpass"} 1000');
    expect(text).toContain("onacc_oldest_pending_seconds 0.12");
  });

  test("renderPrometheus() escapes quotes, backslashes and newlines in label values", () => {
    const s = fakeSnapshot();
    s.endpoints = [{ endpoint: 'unix:/run/a"b\\c\nd', up: true, inFlight: 0, scans: 0, failures: 0, downForMs: 0 }];
    expect(renderPrometheus(s)).toContain('onacc_clamd_up{endpoint="unix:/run/a\\"b\\\\c\\nd"} 1');
  });
});
