// The clamd layer's benchmark (run by hand; not part of the test suite): FILDES scans of one small file
// against one private clamd, one thread keeping N scans in flight (src/clamd/multiplexer.ts) against
// scans one at a time (the blocking ClamdClient, the shape of the old scanner Workers) in one thread and
// in W Workers.
//   bun bench/clamd-inflight.ts [--scans 20000] [--inflight 1,8,32,64] [--workers 5] [--heap-scans 100000]
//                               [--clamd-threads 8] [--old-root DIR]
// --old-root DIR: also run the one-at-a-time rows with the client (src/clamd/client.ts) of another checkout (e.g. the commit
// before this layer changed: `git archive REV | tar -x -C DIR`). Each row runs in its own process, so
// RSS and heap are that scenario's own. Heap figures are Bun's (bun:jsc heapStats) after a full GC.
import { heapStats } from "bun:jsc";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SELF = new URL(import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};

interface Row {
  scenario: string;
  scans: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  /** This process's CPU (user + system, every thread) per scan: the client's own cost, whatever clamd's. */
  cpuUsPerScan: number;
  rssMiB: number;
  peakRssMiB: number;
  heapMiB: number;
  /** Heap after a full GC at the end minus the same after the warm-up, and live objects likewise. */
  heapGrowthKiB: number;
  objectGrowth: number;
}

interface ChildJob {
  kind: "mux" | "blocking" | "workers";
  /** Scans in flight (mux) or Workers (workers). */
  width: number;
  scans: number;
  socket: string;
  file: string;
  /** Checkout whose src/clamd/client.ts the one-at-a-time rows use. */
  root: string;
  label: string;
}

const WARMUP = 2000;

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

function statusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : NaN;
}

function heapNow(): { bytes: number; objects: number } {
  Bun.gc(true);
  const h = heapStats();
  return { bytes: h.heapSize, objects: h.objectCount };
}

/** The one-request-at-a-time client of the checkout at `root` (this one, or --old-root's). */
async function blockingClient(root: string, socket: string): Promise<{ scanFd(fd: number): { ok: boolean } }> {
  const { ClamdClient } = await import(join(root, "src/clamd/client.ts"));
  return new ClamdClient({ endpoint: { kind: "unix", path: socket }, timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 });
}

// ---- child: one scenario ---------------------------------------------------------------------------

async function runChild(job: ChildJob): Promise<Row> {
  const { monotonicMs } = await import("../ffi/libc.ts");
  const latencies = new Float64Array(job.scans);
  let errors = 0;
  let heap0 = { bytes: 0, objects: 0 };
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  const measured = (scans: number, run: (count: number, record: boolean) => Promise<void> | void) => async () => {
    await run(WARMUP, false);
    heap0 = heapNow();
    cpu0 = process.cpuUsage();
    t0 = monotonicMs();
    await run(scans, true);
  };

  if (job.kind === "mux") {
    const { PollSet } = await import("../ffi/poll.ts");
    const { ClamdMultiplexer } = await import("../src/clamd/multiplexer.ts");
    const { createPoolSettings } = await import("../src/clamd/pool-settings.ts");
    const pool = createPoolSettings({ endpoints: [{ kind: "unix", path: job.socket }], timeoutMs: 10000, retries: 0, streamMaxLength: 1 << 20 });
    // One descriptor per slot: clamd reads each passed descriptor on its own.
    const fds = Array.from({ length: job.width }, () => openSync(job.file, "r"));
    const freeFds = new Int32Array(fds);
    let freeCount = fds.length;
    const fdOf = new Int32Array(job.scans + WARMUP);
    const startedAt = new Float64Array(job.scans + WARMUP);
    let done = 0;
    let recording = false;
    const mux = new ClamdMultiplexer({
      pool,
      modes: ["fdpass"],
      capacity: job.width,
      onDone: (token, outcome) => {
        if (recording) latencies[token] = monotonicMs() - startedAt[token]!;
        if (!outcome.ok) errors++;
        freeFds[freeCount++] = fdOf[token]!;
        done++;
      },
    });
    const set = new PollSet(mux.capacity);
    await measured(job.scans, (count, record) => {
      recording = record;
      done = 0;
      let next = 0;
      while (done < count) {
        while (next < count && freeCount > 0) {
          const fd = freeFds[--freeCount]!;
          fdOf[next] = fd;
          startedAt[next] = monotonicMs();
          mux.submit(next++, fd, startedAt[next - 1]! + 10000);
        }
        const n = mux.prepare(set, 0);
        set.wait(mux.timeoutMs(), n);
        mux.dispatch(set, 0, n);
      }
    })();
    for (const fd of fds) closeSync(fd);
  } else if (job.kind === "blocking") {
    const client = await blockingClient(job.root, job.socket);
    const fd = openSync(job.file, "r");
    await measured(job.scans, (count, record) => {
      for (let i = 0; i < count; i++) {
        const start = monotonicMs();
        const out = client.scanFd(fd);
        if (record) latencies[i] = monotonicMs() - start;
        if (!out.ok) errors++;
      }
    })();
    closeSync(fd);
  } else {
    // W Workers, each scanning one at a time: the shape of today's scanner Workers.
    const go = new Int32Array(new SharedArrayBuffer(8));
    const per = Math.ceil(job.scans / job.width);
    const workers = Array.from({ length: job.width }, () => new Worker(SELF));
    const results = workers.map(
      (w) =>
        new Promise<{ latencies: Float64Array; errors: number }>((resolve) => {
          w.onmessage = (e) => {
            if (e.data !== "ready") resolve(e.data);
          };
        }),
    );
    const ready = workers.map((w) => new Promise<void>((resolve) => w.addEventListener("message", (e) => e.data === "ready" && resolve(), { once: false })));
    workers.forEach((w) => w.postMessage({ worker: { root: job.root, socket: job.socket, file: job.file, scans: per, go } }));
    await Promise.all(ready);
    heap0 = heapNow();
    cpu0 = process.cpuUsage();
    t0 = monotonicMs();
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    const all = await Promise.all(results);
    let k = 0;
    for (const r of all) {
      errors += r.errors;
      for (const l of r.latencies) if (k < latencies.length) latencies[k++] = l;
    }
    for (const w of workers) w.terminate();
  }

  const seconds = (monotonicMs() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const heap1 = heapNow();
  latencies.sort();
  return {
    scenario: job.label,
    scans: job.scans,
    errors,
    seconds,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    cpuUsPerScan: (cpu.user + cpu.system) / job.scans,
    rssMiB: statusKiB("VmRSS") / 1024,
    peakRssMiB: statusKiB("VmHWM") / 1024,
    heapMiB: heap1.bytes / 2 ** 20,
    heapGrowthKiB: (heap1.bytes - heap0.bytes) / 1024,
    objectGrowth: heap1.objects - heap0.objects,
  };
}

/** A Worker of the "workers" scenario: warm up, wait for the start, scan one at a time. */
async function runWorker(w: { root: string; socket: string; file: string; scans: number; go: Int32Array }): Promise<void> {
  const { monotonicMs } = await import("../ffi/libc.ts");
  const client = await blockingClient(w.root, w.socket);
  const fd = openSync(w.file, "r");
  for (let i = 0; i < WARMUP / 4; i++) client.scanFd(fd);
  postMessage("ready");
  Atomics.wait(w.go, 0, 0);
  const latencies = new Float64Array(w.scans);
  let errors = 0;
  for (let i = 0; i < w.scans; i++) {
    const start = monotonicMs();
    if (!client.scanFd(fd).ok) errors++;
    latencies[i] = monotonicMs() - start;
  }
  closeSync(fd);
  postMessage({ latencies, errors });
}

// ---- parent: start clamd, run each row in its own process, print the table ---------------------------

async function main(): Promise<void> {
  const { startClamd, disposeClamd } = await import("../tests/fixtures/clamd.ts");
  const scans = Number(arg("scans", "20000"));
  const heapScans = Number(arg("heap-scans", "100000"));
  const inflight = arg("inflight", "1,8,32,64").split(",").map(Number);
  const workers = Number(arg("workers", "5"));
  const oldRoot = arg("old-root", "");
  const clamd = await startClamd({ extra: [`MaxThreads ${arg("clamd-threads", "8")}`] });
  const dir = mkdtempSync("/tmp/onacc-inflight-");
  const file = join(dir, "clean.txt");
  writeFileSync(file, Buffer.alloc(4096, "clean text, nothing to see here\n"));
  const rows: (Row | { scenario: string; error: string })[] = [];
  const run = async (job: Omit<ChildJob, "socket" | "file">) => {
    const p = Bun.spawn(["bun", SELF, "--child", JSON.stringify({ ...job, socket: clamd.socket, file })], { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(p.stdout).text();
    const code = await p.exited;
    rows.push(code === 0 ? (JSON.parse(out) as Row) : { scenario: job.label, error: `exited with ${code}` });
    console.error(`done: ${job.label}`);
  };
  try {
    await run({ kind: "blocking", width: 1, scans, root: ROOT, label: "one at a time, 1 thread (blocking client)" });
    if (oldRoot) await run({ kind: "blocking", width: 1, scans, root: oldRoot, label: "one at a time, 1 thread (old client)" });
    await run({ kind: "workers", width: workers, scans, root: ROOT, label: `one at a time × ${workers} Workers (blocking client)` });
    if (oldRoot) await run({ kind: "workers", width: workers, scans, root: oldRoot, label: `one at a time × ${workers} Workers (old client)` });
    for (const n of inflight) await run({ kind: "mux", width: n, scans, root: ROOT, label: `${n} in flight, 1 thread (multiplexer)` });
    if (heapScans > 0) await run({ kind: "mux", width: 64, scans: heapScans, root: ROOT, label: `64 in flight, 1 thread, ${heapScans} scans` });
  } finally {
    await disposeClamd(clamd);
    rmSync(dir, { recursive: true, force: true });
  }
  const cpus = navigator.hardwareConcurrency;
  console.log(`clamd FILDES scans of one 4 KiB clean file; ${cpus} CPUs; clamd MaxThreads ${arg("clamd-threads", "8")}; latency = submit → outcome`);
  console.log("Heap: Bun's (bun:jsc heapStats) after a full GC, at the end and its change since the warm-up; the Workers rows show the main thread's only.");
  console.log("| scenario | scans | scans/s | p50 ms | p99 ms | client CPU µs/scan | RSS MiB | peak RSS MiB | heap MiB | heap growth KiB | objects growth | errors |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    if ("error" in r) {
      console.log(`| ${r.scenario} | ${r.error} |`);
      continue;
    }
    const f = (n: number, d = 1) => n.toFixed(d);
    console.log(
      `| ${r.scenario} | ${r.scans} | ${f(r.scans / r.seconds, 0)} | ${f(r.p50, 3)} | ${f(r.p99, 3)} | ${f(r.cpuUsPerScan, 0)} | ${f(r.rssMiB)} | ${f(r.peakRssMiB)} | ${f(r.heapMiB)} | ${f(r.heapGrowthKiB, 0)} | ${r.objectGrowth} | ${r.errors} |`,
    );
  }
}

declare const self: Worker | undefined;
const childAt = process.argv.indexOf("--child");
if (typeof self !== "undefined" && !Bun.isMainThread) {
  (self as Worker).onmessage = (e: MessageEvent<{ worker: Parameters<typeof runWorker>[0] }>) => void runWorker(e.data.worker);
} else if (childAt > 0) {
  const row = await runChild(JSON.parse(process.argv[childAt + 1]!) as ChildJob);
  process.stdout.write(JSON.stringify(row));
  process.exit(0);
} else {
  await main();
}
