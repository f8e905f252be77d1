// ClamdMultiplexer against real clamds, from this one thread: 64 scans in flight at once (and clamd working
// on several of them at the same moment), mixed verdicts, INSTREAM over StreamMaxLength, awkward names, a
// silent listener, a clamd killed mid-flight, failover, and the caller's own fd in the same poll().
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { monotonicMs } from "../../ffi/libc.ts";
import { PollSet, WakeFd } from "../../ffi/poll.ts";
import { poolHealth } from "../../src/clamd/health.ts";
import { ClamdMultiplexer } from "../../src/clamd/multiplexer.ts";
import { createPoolSettings } from "../../src/clamd/pool-settings.ts";
import type { ScanMode, ScanOutcome } from "../../src/clamd/types.ts";
import type { ClamdEndpoint } from "../../src/config/types.ts";
import { disposeClamd, rawClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { muxHarness } from "../fixtures/multiplexer.ts";
import { EICAR, MARKER } from "../fixtures/signatures.ts";
import { EICAR_FOUND, MARKER2_FOUND, MARKER_FOUND, writeTestFiles, type TestFiles } from "./helpers.ts";

let clamd: TestClamd;
let files: TestFiles;
/** 1 MiB that matches nothing: clamd takes a while over it, so scans stay in flight together. */
let bulky = "";
/** A name with a newline and bytes that are not UTF-8, holding EICAR. */
let weird: Buffer;

beforeAll(async () => {
  clamd = await startClamd();
  files = writeTestFiles(clamd.dir);
  bulky = join(clamd.dir, "bulky.bin");
  const body = Buffer.alloc(1 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7919 + (i >> 11)) & 0xff;
  writeFileSync(bulky, body);
  weird = Buffer.concat([Buffer.from(`${clamd.dir}/evil\nname `), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(".com")]);
  writeFileSync(weird, EICAR);
});
afterAll(() => disposeClamd(clamd));

function openFds(): Set<number> {
  return new Set(readdirSync("/proc/self/fd").map(Number));
}

/** Descriptors open now that were not open in `before` (others may close meanwhile: the runtime's own). */
function newFds(before: Set<number>, ...allowed: number[]): number[] {
  return [...openFds()].filter((fd) => !before.has(fd) && !allowed.includes(fd));
}

const verdictOf = (o: ScanOutcome) => (o.ok ? (o.verdict.kind === "infected" ? o.verdict.signatures : o.verdict.kind) : `error: ${o.error.kind}`);

describe("many scans in flight from one thread", () => {
  test("64 FILDES scans are in flight at once and clamd works on several of them at the same moment", async () => {
    const h = muxHarness({ endpoints: [{ kind: "unix", path: clamd.socket }], timeoutMs: 20000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["fdpass"] });
    const fds = Array.from({ length: 64 }, () => openSync(bulky, "r"));
    try {
      const t0 = monotonicMs();
      fds.forEach((fd, i) => expect(h.mux.submit(i, fd, t0 + 30000)).toBe(true));
      expect(h.mux.inFlight).toBe(64);
      expect(h.mux.submit(64, fds[0]!, t0 + 30000)).toBe(false); // full: the caller's backpressure
      expect(poolHealth(h.settings).endpoints[0]!.inFlight).toBe(64);
      // clamd's STATS lists the tasks its threads are running; asked while ours are in flight.
      let stats = "";
      const asked = rawClamd(clamd.socket, "zSTATS\0").then((s) => (stats = s));
      while (h.reports.length < 64) {
        h.turn();
        await Bun.sleep(0); // lets the STATS request progress
      }
      await asked;
      const running = stats.split("\n").filter((l) => l.startsWith("\tFILDES")).length;
      expect(running).toBeGreaterThanOrEqual(2);
      expect(h.reports.map((r) => r.token).sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
      for (const r of h.reports) expect(r.outcome).toEqual({ ok: true, verdict: { kind: "clean" }, attempts: 1 });
      expect(poolHealth(h.settings).endpoints[0]).toMatchObject({ inFlight: 0, scans: 64 });
      expect(poolHealth(h.settings).counters.scansByMode.fdpass).toBe(64);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }, 60000);

  test("400 mixed scans kept 64 in flight: every token gets its file's verdict exactly once; the caller's own fd shares the poll()", () => {
    const h = muxHarness({ endpoints: [{ kind: "unix", path: clamd.socket }], timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["fdpass"] });
    const kinds: { path: string | Buffer; want: string | string[] }[] = [
      { path: files.clean, want: "clean" },
      { path: files.eicar, want: [EICAR_FOUND] },
      { path: files.marked, want: [MARKER_FOUND] },
      { path: files.empty, want: "clean" },
      { path: weird, want: [EICAR_FOUND] },
    ];
    const wake = new WakeFd();
    let wakes = 0;
    let woken = false;
    const fdsBefore = openFds();
    const open = new Map<number, number>();
    let next = 0;
    const total = 400;
    const t0 = monotonicMs();
    try {
      while (h.reports.length < total) {
        while (next < total && h.mux.inFlight < h.mux.capacity) {
          const fd = openSync(kinds[next % kinds.length]!.path, "r");
          open.set(next, fd);
          expect(h.mux.submit(next, fd, monotonicMs() + 10000)).toBe(true);
          next++;
        }
        if (h.reports.length >= 100 && !woken) {
          wake.wake(); // as the fanotify reader would
          woken = true;
        }
        h.turn({
          fd: wake.fd,
          seen: () => {
            wake.drain();
            wakes++;
          },
        });
        for (const r of h.reports.slice(-64)) {
          const fd = open.get(r.token);
          if (fd !== undefined) {
            closeSync(fd);
            open.delete(r.token);
          }
        }
        if (monotonicMs() - t0 > 30000) throw new Error("too slow");
      }
      expect(wakes).toBe(1);
      expect(new Set(h.reports.map((r) => r.token)).size).toBe(total);
      for (const r of h.reports) expect({ token: r.token, verdict: verdictOf(r.outcome) }).toEqual({ token: r.token, verdict: kinds[r.token % kinds.length]!.want });
      // Nothing held after the run: every socket closed, every event fd still the caller's.
      expect(open.size).toBe(0);
      expect(newFds(fdsBefore, wake.fd)).toEqual([]);
    } finally {
      for (const fd of open.values()) closeSync(fd);
    }
  }, 60000);

  test("descriptor, stream and path scans over the unix socket and over TCP, one poll() for both: every scan gets its file's verdict", () => {
    // One multiplexer per transport, sharing the caller's poll(); each job asks for its own mode.
    const want = new Map<string, string | string[]>([
      [files.eicar, [EICAR_FOUND]],
      [files.marked, [MARKER_FOUND]],
      [files.clean, "clean"],
    ]);
    const lanes = (
      [
        [{ kind: "unix", path: clamd.socket }, ["fdpass", "stream", "path"]],
        [{ kind: "tcp", host: "127.0.0.1", port: clamd.port }, ["stream", "path"]],
      ] satisfies [ClamdEndpoint, ScanMode[]][]
    ).map(([endpoint, modes]) => {
      const jobs = Array.from({ length: 8 }, () => [...want.keys()].flatMap((file) => modes.map((mode) => ({ file, mode })))).flat();
      const outcomes: { file: string; mode: ScanMode; verdict: unknown }[] = [];
      const fds = new Map<number, number>();
      const mux = new ClamdMultiplexer({
        pool: createPoolSettings({ endpoints: [endpoint], timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 }),
        modes: [modes[0]!],
        capacity: 12,
        onDone: (token, outcome) => {
          outcomes.push({ ...jobs[token]!, verdict: verdictOf(outcome) });
          closeSync(fds.get(token)!);
          fds.delete(token);
        },
      });
      return { jobs, outcomes, fds, mux, next: 0, polled: 0 };
    });
    const set = new PollSet(lanes.reduce((n, l) => n + l.mux.capacity, 0));
    const t0 = monotonicMs();
    while (lanes.some((l) => l.outcomes.length < l.jobs.length)) {
      if (monotonicMs() - t0 > 30000) throw new Error("too slow");
      let first = 0;
      let wait = 50;
      for (const l of lanes) {
        while (l.next < l.jobs.length && l.mux.inFlight < l.mux.capacity) {
          const { file, mode } = l.jobs[l.next]!;
          const fd = openSync(file, "r");
          l.fds.set(l.next, fd);
          l.mux.submit(l.next++, fd, monotonicMs() + 10000, Buffer.from(file), mode);
        }
        l.polled = l.mux.prepare(set, first);
        first += l.polled;
        const t = l.mux.timeoutMs();
        if (t >= 0) wait = Math.min(wait, t);
      }
      set.wait(wait, first);
      first = 0;
      for (const l of lanes) {
        l.mux.dispatch(set, first, l.polled);
        first += l.polled;
      }
    }
    for (const l of lanes) {
      expect(l.outcomes).toHaveLength(l.jobs.length);
      for (const o of l.outcomes) expect(o).toEqual({ ...o, verdict: want.get(o.file)! });
      expect(l.fds.size).toBe(0);
    }
    expect(lanes.map((l) => new Set(l.outcomes.map((o) => o.mode)).size)).toEqual([3, 2]);
  });

  test("onPeerPid reports clamd's PID for every unix connection", () => {
    const pids: (number | undefined)[] = [];
    const h = muxHarness({ endpoints: [{ kind: "unix", path: clamd.socket }], timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["fdpass"], onPeerPid: (_i, pid) => pids.push(pid) });
    const fd = openSync(files.clean, "r");
    try {
      for (let i = 0; i < 5; i++) h.mux.submit(i, fd, monotonicMs() + 5000);
      h.runUntil(() => h.reports.length === 5);
    } finally {
      closeSync(fd);
    }
    expect(pids).toEqual([clamd.pid, clamd.pid, clamd.pid, clamd.pid, clamd.pid]);
  });
});

describe("streams and paths", () => {
  test("INSTREAM of a file over clamd's StreamMaxLength is a size-limit error; the streams in flight with it get their verdicts", () => {
    const big = join(clamd.dir, "big-mux.bin");
    writeFileSync(big, Buffer.alloc(3 * 1024 * 1024, 0x61));
    for (const endpoint of [{ kind: "unix", path: clamd.socket }, { kind: "tcp", host: "127.0.0.1", port: clamd.port }] satisfies ClamdEndpoint[]) {
      const h = muxHarness({ endpoints: [endpoint], timeoutMs: 10000, retries: 2, streamMaxLength: 1 << 20 }, { modes: ["stream"] });
      const order = [big, files.eicar, big, files.marked, files.clean, big, files.eicar, files.clean];
      const fds = order.map((p) => openSync(p, "r"));
      try {
        fds.forEach((fd, i) => h.mux.submit(i, fd, monotonicMs() + 10000));
        h.runUntil(() => h.reports.length === order.length);
      } finally {
        for (const fd of fds) closeSync(fd);
      }
      for (const r of h.reports) {
        const path = order[r.token]!;
        if (path === big) {
          expect(r.outcome).toMatchObject({ ok: false, attempts: 1 });
          if (!r.outcome.ok) expect(r.outcome.error.kind).toBe("size-limit");
        } else {
          expect(verdictOf(r.outcome)).toEqual(path === files.eicar ? [EICAR_FOUND] : path === files.marked ? [MARKER_FOUND] : "clean");
        }
      }
      // Not clamd's fault: the endpoint stays up, and the errors are counted by kind.
      expect(poolHealth(h.settings).endpoints[0]!.up).toBe(true);
      expect(poolHealth(h.settings).counters.errors["size-limit"]).toBe(3);
    }
  });

  test("16 streams of 900 KiB in flight at once: frames sent in pieces through one shared buffer still carry each file's bytes", () => {
    // Each file differs (a marker at a different place, late in the file): a frame resent from another
    // file's bytes would lose or move its marker.
    const big = Array.from({ length: 16 }, (_, i) => {
      const p = join(clamd.dir, `late-marker-${i}.bin`);
      const body = Buffer.alloc(900 * 1024, `filler ${i} `);
      body.write(MARKER, 800 * 1024 + i * 4099, "latin1");
      writeFileSync(p, body);
      return p;
    });
    for (const endpoint of [{ kind: "unix", path: clamd.socket }, { kind: "tcp", host: "127.0.0.1", port: clamd.port }] satisfies ClamdEndpoint[]) {
      const h = muxHarness({ endpoints: [endpoint], timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["stream"] });
      const fds = big.map((p) => openSync(p, "r"));
      try {
        fds.forEach((fd, i) => h.mux.submit(i, fd, monotonicMs() + 20000));
        h.runUntil(() => h.reports.length === fds.length);
      } finally {
        for (const fd of fds) closeSync(fd);
      }
      for (const r of h.reports) expect({ token: r.token, verdict: verdictOf(r.outcome) }).toEqual({ token: r.token, verdict: [MARKER_FOUND] });
    }
  });

  test("path mode: a name clamd cannot be sent is refused before any endpoint is tried; the caller's fdpass override scans it", () => {
    const h = muxHarness({ endpoints: [{ kind: "unix", path: clamd.socket }], timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["path"], allmatch: true });
    const fd = openSync(weird, "r");
    try {
      h.mux.submit(1, fd, monotonicMs() + 5000, weird);
      h.mux.submit(2, fd, monotonicMs() + 5000, weird, "fdpass");
      h.mux.submit(3, -1, monotonicMs() + 5000, Buffer.from(files.both));
      h.mux.submit(4, fd, monotonicMs() + 5000); // no path at all
      h.runUntil(() => h.reports.length === 4);
    } finally {
      closeSync(fd);
    }
    const by = new Map(h.reports.map((r) => [r.token, r]));
    expect(by.get(1)).toMatchObject({ endpoint: -1, outcome: { ok: false, attempts: 0 } });
    const refused = by.get(1)!.outcome;
    if (!refused.ok) {
      expect(refused.error.kind).toBe("refused");
      expect(refused.error.message).toBe(`Cannot scan "${clamd.dir}/evil\\nname \ufffd\ufffd\ufffd.com" by path: it contains a line break (clamd writes paths unescaped into its log and VirusEvent)`);
    }
    expect(verdictOf(by.get(2)!.outcome)).toEqual([EICAR_FOUND]);
    // ALLMATCHSCAN: every signature in the file.
    expect((verdictOf(by.get(3)!.outcome) as string[]).sort()).toEqual([MARKER2_FOUND, MARKER_FOUND].sort());
    expect(by.get(4)!.outcome).toMatchObject({ ok: false, attempts: 0, error: { kind: "refused", message: `Cannot scan fd ${fd} by path: no path was given` } });
    expect(poolHealth(h.settings).counters.scansByMode).toEqual({ fdpass: 1, stream: 0, path: 1 });
  });
});

describe("when clamd fails", () => {
  test("a silent TCP listener: its jobs end at their deadline; the jobs on the real clamd in the same multiplexer are answered meanwhile", () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const fdsBefore = openFds();
    try {
      const h = muxHarness(
        { endpoints: [{ kind: "unix", path: clamd.socket }, { kind: "tcp", host: "127.0.0.1", port: silent.port }], timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 },
        { modes: ["fdpass", "stream"] },
      );
      const fd = openSync(files.eicar, "r");
      const t0 = monotonicMs();
      const deadline = t0 + 600;
      try {
        for (let i = 0; i < 20; i++) h.mux.submit(i, fd, deadline);
        h.runUntil(() => h.reports.length === 20, 5000);
      } finally {
        closeSync(fd);
      }
      expect(new Set(h.reports.map((r) => r.token)).size).toBe(20);
      const answered = h.reports.filter((r) => r.endpoint === 0);
      const hung = h.reports.filter((r) => r.endpoint === 1);
      // Scans spread by scans in flight: both endpoints got some.
      expect(answered.length).toBeGreaterThan(0);
      expect(hung.length).toBeGreaterThan(0);
      for (const r of answered) expect(verdictOf(r.outcome)).toEqual([EICAR_FOUND]);
      for (const r of hung) {
        expect(r.outcome.ok).toBe(false);
        // The budget is what was left of the 600 ms when the job was submitted.
        const m = r.outcome.ok ? null : /^No clamd endpoint answered within the scan deadline of (\d+) ms; last error: Timed out after (\d+) ms waiting for a reply from clamd at tcp:\/\//.exec(r.outcome.error.message);
        expect(m).not.toBeNull();
        expect(Number(m![1])).toBeLessThanOrEqual(600);
        expect(Number(m![2])).toBe(Number(m![1]));
        expect(r.at).toBeGreaterThanOrEqual(deadline - 1);
      }
      // Every verdict came while the silent endpoint's scans were still waiting.
      expect(Math.max(...answered.map((r) => r.at))).toBeLessThan(Math.min(...hung.map((r) => r.at)));
      expect(poolHealth(h.settings).endpoints.map((e) => e.up)).toEqual([true, false]);
      // A conversation that timed out let go of its socket at once.
      expect(newFds(fdsBefore)).toEqual([]);
    } finally {
      silent.stop(true);
    }
  });

  test("a clamd killed with scans in flight: every job is reported once, with a verdict or an error, none lost", async () => {
    const doomed = await startClamd();
    const h = muxHarness({ endpoints: [{ kind: "unix", path: doomed.socket }], timeoutMs: 10000, retries: 1, streamMaxLength: 1 << 20 }, { modes: ["fdpass"] });
    const fds = Array.from({ length: 64 }, (_, i) => openSync(i % 8 === 0 ? files.eicar : bulky, "r"));
    const fdsBefore = openFds();
    try {
      fds.forEach((fd, i) => h.mux.submit(i, fd, monotonicMs() + 20000));
      h.runUntil(() => h.reports.length >= 4);
      process.kill(doomed.pid, "SIGKILL");
      h.runUntil(() => h.mux.inFlight === 0, 20000);
      expect(newFds(fdsBefore)).toEqual([]);
    } finally {
      for (const fd of fds) closeSync(fd);
      await disposeClamd(doomed);
    }
    expect(h.reports.map((r) => r.token).sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
    const errors = h.reports.filter((r) => !r.outcome.ok);
    expect(errors.length).toBeGreaterThan(0);
    for (const r of errors) if (!r.outcome.ok) expect(["connect", "protocol"]).toContain(r.outcome.error.kind);
    for (const r of h.reports) if (r.outcome.ok) expect(verdictOf(r.outcome)).toEqual(r.token % 8 === 0 ? [EICAR_FOUND] : "clean");
    expect(poolHealth(h.settings).endpoints[0]).toMatchObject({ up: false, inFlight: 0 });
  }, 60000);

  test("failover between two clamds: with one killed, every scan is answered by the other", async () => {
    const [a, b] = await Promise.all([startClamd(), startClamd()]);
    try {
      const h = muxHarness(
        { endpoints: [{ kind: "unix", path: a.socket }, { kind: "unix", path: b.socket }], timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 },
        { modes: ["fdpass", "fdpass"] },
      );
      const fd = openSync(files.eicar, "r");
      try {
        for (let i = 0; i < 8; i++) h.mux.submit(i, fd, monotonicMs() + 5000);
        h.runUntil(() => h.reports.length === 8);
        expect(new Set(h.reports.map((r) => r.endpoint))).toEqual(new Set([0, 1])); // both used while both live
        process.kill(a.pid, "SIGKILL");
        await a.stop();
        h.reports.length = 0;
        for (let i = 0; i < 32; i++) h.mux.submit(i, fd, monotonicMs() + 5000);
        h.runUntil(() => h.reports.length === 32);
      } finally {
        closeSync(fd);
      }
      for (const r of h.reports) expect({ endpoint: r.endpoint, verdict: verdictOf(r.outcome) }).toEqual({ endpoint: 1, verdict: [EICAR_FOUND] });
      // The first scans found the dead one (attempt 1 failed, attempt 2 answered); no checker runs, so it stays a candidate.
      expect(h.reports.some((r) => r.outcome.attempts === 2)).toBe(true);
      const health = poolHealth(h.settings);
      expect(health.endpoints.map((e) => e.up)).toEqual([false, true]);
      expect(health.counters.failovers).toBeGreaterThan(0);
      expect(health.counters.errors.connect).toBeGreaterThan(0);
    } finally {
      await Promise.all([disposeClamd(a), disposeClamd(b)]);
    }
  }, 60000);

  test("close() reports every job still in flight once, with an error, and releases their sockets", () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const fdsBefore = openFds();
    try {
      const h = muxHarness({ endpoints: [{ kind: "tcp", host: "127.0.0.1", port: silent.port }], timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["stream"] });
      const fd = openSync(files.clean, "r");
      try {
        for (let i = 0; i < 5; i++) h.mux.submit(i, fd, monotonicMs() + 10000);
        for (let i = 0; i < 5; i++) h.turn(undefined, 20);
        expect(h.reports).toHaveLength(0);
        h.mux.close();
        expect(h.reports.map((r) => r.token).sort()).toEqual([0, 1, 2, 3, 4]);
        for (const r of h.reports) expect(r.outcome).toMatchObject({ ok: false, error: { message: "Scan abandoned: the scanner is stopping" } });
        expect(() => h.mux.submit(9, fd, monotonicMs() + 1000)).toThrow("after close()");
        expect(poolHealth(h.settings).endpoints[0]!.inFlight).toBe(0);
      } finally {
        closeSync(fd);
      }
      expect(newFds(fdsBefore)).toEqual([]);
    } finally {
      silent.stop(true);
    }
  });
});

describe("the modes table", () => {
  test("is decided by the caller: fdpass for a TCP endpoint is refused at construction, not silently streamed", () => {
    const pool = createPoolSettings({ endpoints: [{ kind: "tcp", host: "127.0.0.1", port: clamd.port }], timeoutMs: 1000, retries: 0, streamMaxLength: 1 << 20 });
    const onDone = () => {};
    expect(() => new ClamdMultiplexer({ pool, modes: ["fdpass"], capacity: 4, onDone })).toThrow(
      `clamd endpoint tcp://127.0.0.1:${clamd.port} cannot take descriptors (fdpass needs a unix socket): give it "stream"`,
    );
    expect(() => new ClamdMultiplexer({ pool, modes: [], capacity: 4, onDone })).toThrow("0 scan modes given for 1 clamd endpoints");
    expect(() => new ClamdMultiplexer({ pool, modes: ["stream"], capacity: 0, onDone })).toThrow("scans in flight must be a whole number ≥ 1, got 0");
  });

  test("a job's fdpass override with no unix endpoint is refused with the reason, attempts 0", () => {
    const h = muxHarness({ endpoints: [{ kind: "tcp", host: "127.0.0.1", port: clamd.port }], timeoutMs: 1000, retries: 0, streamMaxLength: 1 << 20 }, { modes: ["stream"] });
    h.mux.submit(1, 0, monotonicMs() + 1000, undefined, "fdpass");
    expect(h.reports).toHaveLength(0); // never from inside submit()
    expect(h.mux.timeoutMs()).toBe(0);
    h.runUntil(() => h.reports.length === 1);
    expect(h.reports[0]).toMatchObject({
      endpoint: -1,
      outcome: { ok: false, attempts: 0, error: { kind: "refused", message: `Cannot pass fd 0 to clamd at tcp://127.0.0.1:${clamd.port}: descriptor passing needs a unix socket (use stream mode)` } },
    });
  });
});
