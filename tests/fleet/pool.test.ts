// The pool of clamd endpoints as the scanner uses it, from one thread through ClamdMultiplexer: failover
// while a clamd is killed and rejoins, every clamd down, a silent clamd, load spread by scans in flight,
// counting by mode, and the health checker's PINGs with backoff.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, chmodSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { monotonicMs } from "../../ffi/libc.ts";
import { poolHealth, startHealthChecks, type HealthChange } from "../../src/clamd/health.ts";
import { createPoolSettings, type PoolSettings } from "../../src/clamd/pool-settings.ts";
import type { ScanMode } from "../../src/clamd/types.ts";
import type { ClamdEndpoint } from "../../src/config/types.ts";
import { disposeClamd, freeTcpPort, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { muxHarness, startLoad } from "../fixtures/multiplexer.ts";
import { startRelay, type ClamdRelay } from "../fixtures/proxy.ts";
import { EICAR, EICAR_SIGNATURE } from "../fixtures/signatures.ts";

const EICAR_FOUND = `${EICAR_SIGNATURE}.UNOFFICIAL`;
let clamds: TestClamd[] = [];
let dir = "";
let eicar = "";

beforeAll(async () => {
  clamds = await Promise.all([startClamd(), startClamd(), startClamd()]);
  dir = mkdtempSync("/tmp/onacc-pool-");
  chmodSync(dir, 0o755);
  eicar = join(dir, "eicar.com");
  writeFileSync(eicar, EICAR);
});

afterAll(async () => {
  await Promise.all(clamds.map(disposeClamd));
  rmSync(dir, { recursive: true, force: true });
});

/** A unix socket, then TCP: the pool mixes kinds; descriptors go to the unix one, contents to TCP. */
function endpointsOf(list: TestClamd[]): ClamdEndpoint[] {
  return list.map((c, i) => (i === 0 ? { kind: "unix", path: c.socket } : { kind: "tcp", host: "127.0.0.1", port: c.port }));
}

/** One scan of EICAR through a one-slot multiplexer: by the table (fdpass where it can), or streamed to every endpoint. */
function scanOnce(h: ReturnType<typeof muxHarness>, mode?: ScanMode) {
  const fd = openSync(eicar, "r");
  try {
    return h.scan(fd, { mode });
  } finally {
    closeSync(fd);
  }
}

const oneAtATime = (settings: PoolSettings) => muxHarness(settings, { capacity: 1 });

async function waitFor(what: string, check: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("createPoolSettings()", () => {
  test("createPoolSettings() rejects an empty list, a listed-twice endpoint and a zero timeout", () => {
    const tcp: ClamdEndpoint = { kind: "tcp", host: "127.0.0.1", port: 3310 };
    expect(() => createPoolSettings({ endpoints: [], timeoutMs: 1000, retries: 0, streamMaxLength: 0 })).toThrow("at least one endpoint");
    expect(() => createPoolSettings({ endpoints: [tcp, { ...tcp }], timeoutMs: 1000, retries: 0, streamMaxLength: 0 })).toThrow(
      "clamd endpoint tcp://127.0.0.1:3310 is listed twice",
    );
    expect(() => createPoolSettings({ endpoints: [tcp], timeoutMs: 0, retries: 0, streamMaxLength: 0 })).toThrow("timeout must be positive");
  });

  test("createPoolSettings() gives a single endpoint the deadline of OnAccessCurlTimeout × attempts by default", () => {
    const s = createPoolSettings({ endpoints: [{ kind: "unix", path: "/run/x.sock" }], timeoutMs: 700, retries: 2, streamMaxLength: 0 });
    expect(s.deadlineMs).toBe(2100);
    expect(s.shared).toBeInstanceOf(SharedArrayBuffer);
  });
});

describe("the pool against three real clamds", () => {
  test("four scans in flight keep finding EICAR while one clamd is killed mid-run; it rejoins after a restart", async () => {
    const settings = createPoolSettings({
      endpoints: endpointsOf(clamds),
      timeoutMs: 1000,
      retries: 0,
      streamMaxLength: 1 << 20,
      deadlineMs: 2500,
      healthIntervalMs: 200,
      backoffMinMs: 50,
      backoffMaxMs: 400,
    });
    const changes: HealthChange[] = [];
    const checker = startHealthChecks(settings, (c) => changes.push(c));
    const run = startLoad(settings, eicar, { width: 4 });
    try {
      await Bun.sleep(300);
      const victim = clamds[1]!;
      process.kill(victim.pid, "SIGKILL");
      await waitFor("the killed clamd to be marked down", () => changes.some((c) => c.index === 1 && !c.up));
      await Bun.sleep(300);
      const whileDown = poolHealth(settings).endpoints[1]!.scans;
      await victim.restart();
      await waitFor("the restarted clamd to rejoin", () => changes.some((c) => c.index === 1 && c.up));
      await waitFor("the restarted clamd to scan again", () => poolHealth(settings).endpoints[1]!.scans > whileDown + 5);
      const report = await run.stop();

      // No scan may end without a verdict while two clamds answer: every EICAR scan reports it.
      expect(report.errors).toEqual([]);
      expect(report.infected).toBe(report.scans);
      expect(report.maxMs).toBeLessThan(settings.deadlineMs);
      const health = poolHealth(settings);
      expect(health.endpoints.map((e) => e.up)).toEqual([true, true, true]);
      for (const e of health.endpoints) expect(e.scans).toBeGreaterThan(5);
      // Unix gets fd passing, the two TCP endpoints the stream.
      expect(health.counters.scansByMode.fdpass).toBeGreaterThan(0);
      expect(health.counters.scansByMode.stream).toBeGreaterThan(0);
      expect(changes.find((c) => c.index === 1 && !c.up)!.reason).toMatch(/connect|refused|reset|closed|failed/i);
    } finally {
      await run.stop();
      checker.stop();
    }
  }, 30000);

  test("with every clamd down a scan reports an error at once (refusing endpoints are retried, silent ones not); the first clamd back rejoins", async () => {
    const trio = await Promise.all([startClamd(), startClamd(), startClamd()]);
    const settings = createPoolSettings({
      endpoints: endpointsOf(trio),
      timeoutMs: 1000,
      retries: 1,
      streamMaxLength: 1 << 20,
      healthIntervalMs: 200,
      backoffMinMs: 50,
      backoffMaxMs: 200,
    });
    const changes: HealthChange[] = [];
    const checker = startHealthChecks(settings, (c) => changes.push(c));
    const pool = oneAtATime(settings);
    try {
      expect(scanOnce(pool).outcome).toMatchObject({ ok: true, verdict: { kind: "infected", signatures: [EICAR_FOUND] } });
      await Promise.all(trio.map((c) => c.stop()));
      // The first scan finds out (each endpoint not yet marked refuses). With all of them down, endpoints
      // that refused are tried again by each scan — a refusal costs nothing, and a clamd that comes back is
      // used at once instead of after the next health PING.
      const first = scanOnce(pool);
      expect(first.outcome.ok).toBe(false);
      await waitFor("all three marked down", () => poolHealth(settings).endpoints.every((e) => !e.up));
      const second = scanOnce(pool);
      expect(second.outcome.ok).toBe(false);
      if (!second.outcome.ok) expect(second.outcome.error.kind).toBe("connect");
      expect(second.ms).toBeLessThan(settings.timeoutMs);

      await trio[2]!.restart();
      await waitFor("the restarted clamd to rejoin", () => changes.some((c) => c.index === 2 && c.up));
      const after = scanOnce(pool).outcome;
      expect(after).toMatchObject({ ok: true, verdict: { kind: "infected", signatures: [EICAR_FOUND] } });
      expect(checker.status()[2]).toMatchObject({ up: true, endpoint: `tcp://127.0.0.1:${trio[2]!.port}` });
      expect(checker.status()[0]!.up).toBe(false);
      // Whichever noticed last, a health PING (names the socket) or a scan (names the kind).
      expect(checker.status()[0]!.lastError).toMatch(/unix:|\(connect\)/);
    } finally {
      checker.stop();
      await Promise.all(trio.map(disposeClamd));
    }
  }, 30000);
});

describe("the pool's scan modes", () => {
  test("scans by path (all matches) and streamed scans reach clamd through the pool and are counted by mode", () => {
    const settings = createPoolSettings({ endpoints: endpointsOf(clamds.slice(0, 2)), timeoutMs: 2000, retries: 0, streamMaxLength: 1 << 20 });
    const pool = muxHarness(settings, { capacity: 1, allmatch: true });
    expect(pool.scan(-1, { path: eicar, mode: "path" }).outcome).toMatchObject({ ok: true, verdict: { kind: "infected", signatures: [EICAR_FOUND] }, attempts: 1 });
    expect(scanOnce(pool, "stream").outcome).toMatchObject({ ok: true, verdict: { kind: "infected" } });
    expect(poolHealth(settings).counters.scansByMode).toEqual({ fdpass: 0, stream: 1, path: 1 });
    // A path clamd cannot be sent is refused before any endpoint is tried, and not held against one.
    const refused = pool.scan(-1, { path: "relative/name", mode: "path" }).outcome;
    expect(refused).toMatchObject({ ok: false, attempts: 0 });
    expect(poolHealth(settings).endpoints.every((e) => e.up)).toBe(true);
  });
});

describe("the pool with a clamd that hangs or is slow", () => {
  let relay: ClamdRelay | undefined;
  beforeAll(async () => {
    relay = await startRelay(clamds[0]!.port);
  });
  afterAll(async () => {
    await relay?.stop();
  });

  test("a clamd that accepts and never answers: the scan fails over to the next one within the deadline", async () => {
    await relay!.setMode("blackhole");
    const hung: ClamdEndpoint = { kind: "tcp", host: "127.0.0.1", port: relay!.port };
    // No checker: the first pick is index 0, the silent one.
    const settings = createPoolSettings({
      endpoints: [hung, { kind: "tcp", host: "127.0.0.1", port: clamds[2]!.port }],
      timeoutMs: 500,
      retries: 0,
      streamMaxLength: 1 << 20,
      deadlineMs: 2000,
    });
    const { outcome, ms } = scanOnce(oneAtATime(settings));
    expect(outcome).toMatchObject({ ok: true, verdict: { kind: "infected", signatures: [EICAR_FOUND] }, attempts: 2 });
    expect(ms).toBeGreaterThanOrEqual(500);
    expect(ms).toBeLessThan(settings.deadlineMs);
    const health = poolHealth(settings);
    expect(health.endpoints[0]).toMatchObject({ up: false, failures: 1, lastError: "a scan failed (timeout)" });
    expect(health.counters.errors.timeout).toBe(1);
    expect(health.counters.failovers).toBe(1);
  });

  test("a silent clamd alone: the scan ends with a timeout error before the deadline", async () => {
    await relay!.setMode("blackhole");
    const settings = createPoolSettings({
      endpoints: [{ kind: "tcp", host: "127.0.0.1", port: relay!.port }],
      timeoutMs: 300,
      retries: 1,
      streamMaxLength: 1 << 20,
      deadlineMs: 1000,
    });
    const { outcome, ms } = scanOnce(oneAtATime(settings));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.error.kind).toBe("timeout");
      expect(outcome.error.message).toContain(`tcp://127.0.0.1:${relay!.port}`);
    }
    expect(outcome.attempts).toBe(2);
    expect(ms).toBeLessThanOrEqual(settings.deadlineMs + 100);
  });

  test("scans go to the endpoint with fewer scans in flight, so a slow clamd gets few of them", async () => {
    await relay!.setMode("slow");
    const settings = createPoolSettings({
      endpoints: [
        { kind: "tcp", host: "127.0.0.1", port: relay!.port },
        { kind: "tcp", host: "127.0.0.1", port: clamds[2]!.port },
      ],
      timeoutMs: 3000,
      retries: 0,
      streamMaxLength: 1 << 20,
    });
    const run = startLoad(settings, eicar, { width: 4 });
    await Bun.sleep(1500);
    const report = await run.stop();
    expect(report.errors).toEqual([]);
    const [slow, fast] = poolHealth(settings).endpoints;
    // Round-robin alone would give the slow one about half; in-flight counting keeps it to a few.
    expect(fast!.scans).toBeGreaterThan(5 * slow!.scans);
    expect(slow!.scans).toBeGreaterThan(0);
    await relay!.setMode("relay");
  }, 20000);
});

describe("startHealthChecks()", () => {
  test("a dead endpoint is PINGed with exponential backoff, not at every tick", async () => {
    // Accepts and hangs up at once: every PING is one connection, counted here.
    const probes: number[] = [];
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          probes.push(monotonicMs());
          s.end();
        },
        data() {},
      },
    });
    const settings = createPoolSettings({
      endpoints: [{ kind: "tcp", host: "127.0.0.1", port: listener.port }],
      timeoutMs: 500,
      retries: 0,
      streamMaxLength: 0,
      healthIntervalMs: 100,
      backoffMinMs: 50,
      backoffMaxMs: 800,
    });
    const changes: HealthChange[] = [];
    const checker = startHealthChecks(settings, (c) => changes.push(c));
    try {
      await Bun.sleep(2000);
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ up: false, endpoint: `tcp://127.0.0.1:${listener.port}` });
      expect(changes[0]!.reason).toContain("closed the connection without a reply");
      // 50, 100, 200, 400, 800 ms apart: about 6 PINGs in 2 s (a fixed 100 ms tick would make 20).
      expect(probes.length).toBeGreaterThanOrEqual(4);
      expect(probes.length).toBeLessThanOrEqual(9);
      const gaps = probes.slice(1).map((t, i) => t - probes[i]!);
      expect(gaps[gaps.length - 1]!).toBeGreaterThan(2 * gaps[0]!);
      expect(checker.status()[0]!.nextProbeInMs).toBeLessThanOrEqual(800);
    } finally {
      checker.stop();
      listener.stop(true);
    }
  });

  test("without a checker the pool trusts no down mark: a restarted clamd is used again at once", async () => {
    const solo = await startClamd();
    try {
      const settings = createPoolSettings({ endpoints: [{ kind: "unix", path: solo.socket }], timeoutMs: 1000, retries: 0, streamMaxLength: 1 << 20 });
      const pool = oneAtATime(settings);
      await solo.stop();
      expect(scanOnce(pool).outcome.ok).toBe(false);
      expect(poolHealth(settings).endpoints[0]!.up).toBe(false);
      await solo.restart();
      expect(scanOnce(pool).outcome).toMatchObject({ ok: true, verdict: { kind: "infected" } });
      expect(poolHealth(settings).endpoints[0]!.up).toBe(true);
    } finally {
      await disposeClamd(solo);
    }
  });

  test("the checker marks an endpoint that stops answering PING down and reports why", async () => {
    const port = await freeTcpPort();
    const settings = createPoolSettings({
      endpoints: [{ kind: "tcp", host: "127.0.0.1", port }],
      timeoutMs: 500,
      retries: 0,
      streamMaxLength: 0,
      healthIntervalMs: 100,
    });
    const changes: HealthChange[] = [];
    const checker = startHealthChecks(settings, (c) => changes.push(c));
    try {
      await waitFor("the down report", () => changes.length > 0);
      expect(changes[0]).toMatchObject({ index: 0, up: false });
      expect(changes[0]!.reason).toContain(`tcp://127.0.0.1:${port}`);
      expect(poolHealth(settings).endpoints[0]!.up).toBe(false);
    } finally {
      checker.stop();
    }
  });
});
