// The load test (run by hand, as root; bounded in time and count):
//   bun bench/load-test.ts [--seconds 60] [--readers 4] [--files 5000] [--agent onacc|clamonacc]
// Several reader processes open random files for a minute while one writer keeps changing some of them
// (so they are scanned again) and, for onacc, the status counters are read every second. Prints opens/s,
// latency, the agent's RSS and descriptor count over the run, and checks them against stated bounds.
// bench/all.ts runs runLoad() for its "peak RSS in the load test" row.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeClamd, startClamd, type TestClamd } from "../tests/fixtures/clamd.ts";
import { EICAR } from "../tests/fixtures/signatures.ts";
import { mountTmpfs } from "../tests/fixtures/tmpfs.ts";
import { onInterrupt } from "./cleanup.ts";
import { type Agent, onaccStatus, openFds, procStatusMiB, ROOT, startClamonacc, startOnacc } from "./agents.ts";

const MAX_OPENS_PER_READER = 2_000_000;
// Bounds, after a 10 s warm-up: the agent's RSS may grow by at most this much, its fds not at all (±16).
const RSS_GROWTH_BOUND_MIB = 16;
const FD_GROWTH_BOUND = 16;

export interface LoadOptions {
  agent: "onacc" | "clamonacc";
  seconds: number;
  readers: number;
  files: number;
  /** A clamd to use (all.ts shares one); else the test starts its own. */
  clamd?: TestClamd;
}

export interface LoadResult {
  agent: string;
  seconds: number;
  readers: number;
  files: number;
  opens: number;
  elapsedS: number;
  denied: number;
  writes: number;
  statusReads: number;
  statusFailures: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: { t: number; rssMiB: number; anonMiB: number; fds: number }[];
  peakRssMiB: number;
  /** onacc only. */
  scans?: number;
  cacheHits?: number;
  scanP50Ms?: number | null;
  scanP99Ms?: number | null;
  rssGrowthMiB: number;
  fdGrowth: number;
  withinBounds: boolean;
  /** A reader or the writer still waited on an open long after the end: it was killed. */
  hung: boolean;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const clamd = o.clamd ?? (await startClamd());
  const mount = mountTmpfs("/tmp/onacc-load-", "1g");
  const work = mkdtempSync("/tmp/onacc-load-work-");
  const untrack = onInterrupt(() => {
    mount.unmount();
    rmSync(work, { recursive: true, force: true });
  });
  let agent: Agent | undefined;
  const readers: ReturnType<typeof Bun.spawn>[] = [];
  try {
    const dir = join(mount.path, "data");
    const files: string[] = [];
    for (let d = 0; d < 50; d++) mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let i = 0; i < o.files; i++) {
      const p = join(dir, `d${i % 50}`, `f${i}`);
      writeFileSync(p, i % 100 === 0 ? EICAR : Buffer.alloc(4096, `${o.agent} file ${i} `));
      files.push(p);
    }
    const list = join(work, "list.txt");
    writeFileSync(list, files.join("\n"));
    agent = o.agent === "onacc" ? await startOnacc({ clamd, work, include: [dir] }) : await startClamonacc({ clamd, work, include: [dir] });
    const pid = agent.pid;

    const samples: LoadResult["samples"] = [];
    const t0 = Date.now();
    const sample = () => samples.push({ t: (Date.now() - t0) / 1000, rssMiB: procStatusMiB(pid, "VmRSS") ?? NaN, anonMiB: procStatusMiB(pid, "RssAnon") ?? NaN, fds: openFds(pid) });
    sample();
    for (let i = 0; i < o.readers; i++) {
      readers.push(Bun.spawn(["bun", join(ROOT, "bench/load-reader.ts"), list, String(o.seconds * 1000), String(MAX_OPENS_PER_READER), String(i + 1)], { stdout: "pipe" }));
    }
    const writer = Bun.spawn(["bun", join(ROOT, "bench/load-writer.ts"), list, String(o.seconds * 1000)], { stdout: "pipe" });
    readers.push(writer);
    const results = readers.map((r) => new Response(r.stdout as ReadableStream).text());
    // The readers and the writer stop by themselves after o.seconds; this bound only matters when an open
    // hangs (clamonacc can deadlock when all its threads wait on clamd): then they are killed.
    let hung = false;
    const killer = setTimeout(() => {
      hung = true;
      readers.forEach((r) => r.kill("SIGKILL"));
    }, (o.seconds + 30) * 1000);
    let statusReads = 0;
    let statusFailures = 0;
    while (readers.some((r) => r.exitCode === null && r.signalCode === null)) {
      await Bun.sleep(1000);
      if (agent.kind === "onacc") {
        if (await onaccStatus(agent)) statusReads++;
        else statusFailures++;
      }
      if ((Date.now() - t0) % 5000 < 1000) sample();
    }
    clearTimeout(killer);
    sample();
    const outputs = await Promise.all(results);
    const writes = Number(outputs.pop() || NaN);
    const parsed = outputs.map((r) => (r ? (JSON.parse(r) as { opens: number; denied: number; latencies: number[] }) : { opens: 0, denied: 0, latencies: [] }));
    const elapsedS = (Date.now() - t0) / 1000;
    const all = parsed.flatMap((p) => p.latencies).sort((a, b) => a - b);
    const pct = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))] ?? NaN;
    const status = await onaccStatus(agent);
    const warm = samples.filter((s) => s.t >= 10);
    const base = warm[0] ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    const rssGrowthMiB = last.rssMiB - base.rssMiB;
    const fdGrowth = last.fds - samples[0]!.fds;
    return {
      agent: agent.kind,
      seconds: o.seconds,
      readers: o.readers,
      files: o.files,
      opens: parsed.reduce((n, p) => n + p.opens, 0),
      elapsedS,
      denied: parsed.reduce((n, p) => n + p.denied, 0),
      writes,
      statusReads,
      statusFailures,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      maxMs: all[all.length - 1] ?? NaN,
      samples,
      peakRssMiB: procStatusMiB(pid, "VmHWM") ?? NaN,
      scans: status?.scans.total,
      cacheHits: status?.cache.hits,
      scanP50Ms: status?.latency.p50Ms,
      scanP99Ms: status?.latency.p99Ms,
      rssGrowthMiB,
      fdGrowth,
      withinBounds: rssGrowthMiB <= RSS_GROWTH_BOUND_MIB && fdGrowth <= FD_GROWTH_BOUND,
      hung,
    };
  } finally {
    for (const r of readers) if (r.exitCode === null) r.kill("SIGKILL");
    await agent?.stop();
    untrack();
    mount.unmount();
    rmSync(work, { recursive: true, force: true });
    if (!o.clamd) await disposeClamd(clamd);
  }
}

export function printLoad(r: LoadResult): void {
  console.log(`load: ${r.agent}, ${r.readers} readers × ${r.seconds} s over ${r.files} files (1% EICAR), ${r.writes} writes${r.agent === "onacc" ? `, status read ${r.statusReads}× (${r.statusFailures} failed)` : ""}`);
  if (r.hung) console.log("  HUNG: a reader or the writer still waited on an open 30 s after the end and was killed");
  console.log(`  opens: ${r.opens} in ${r.elapsedS.toFixed(1)} s = ${(r.opens / r.elapsedS).toFixed(0)}/s; denied ${r.denied}`);
  console.log(`  open latency: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, max ${r.maxMs.toFixed(1)} ms`);
  if (r.scans !== undefined) console.log(`  agent: scans ${r.scans}, cache hits ${r.cacheHits}, scan p50 ${r.scanP50Ms} ms, p99 ${r.scanP99Ms} ms`);
  console.log(`  agent RSS MiB: ${r.samples.map((s) => s.rssMiB.toFixed(1)).join(" → ")} (peak ${r.peakRssMiB.toFixed(1)})`);
  console.log(`  of which anonymous: ${r.samples.map((s) => s.anonMiB.toFixed(1)).join(" → ")}`);
  console.log(`  agent fds: ${r.samples.map((s) => s.fds).join(" → ")}`);
  console.log(
    `  bounds: RSS growth after warm-up ${r.rssGrowthMiB.toFixed(1)} MiB (≤ ${RSS_GROWTH_BOUND_MIB}): ${r.rssGrowthMiB <= RSS_GROWTH_BOUND_MIB ? "ok" : "EXCEEDED"}; fd growth ${r.fdGrowth} (≤ ${FD_GROWTH_BOUND}): ${r.fdGrowth <= FD_GROWTH_BOUND ? "ok" : "EXCEEDED"}`,
  );
}

if (import.meta.main) {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1]! : fallback;
  };
  const agent = arg("agent", "onacc");
  if (agent !== "onacc" && agent !== "clamonacc") throw new Error(`load-test: --agent ${JSON.stringify(agent)}: onacc or clamonacc`);
  printLoad(await runLoad({ agent, seconds: Number(arg("seconds", "60")), readers: Number(arg("readers", "4")), files: Number(arg("files", "5000")) }));
}
