// The load test (run by hand, as root; bounded in time and count):
//   bun bench/load-test.ts [--seconds 60] [--readers 4] [--files 5000]
// Several reader processes open random files for a minute while one writer keeps changing some of them
// (so they are scanned again) and the status counters are read every second. Prints opens/s, latency,
// the agent's RSS and descriptor count over the run, and checks them against stated bounds.
import { appendFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeClamd, startClamd } from "../tests/fixtures/clamd.ts";
import { EICAR } from "../tests/fixtures/signatures.ts";
import { mountTmpfs } from "../tests/fixtures/tmpfs.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg("seconds", 60);
const READERS = arg("readers", 4);
const FILES = arg("files", 5000);
const MAX_OPENS_PER_READER = 2_000_000;
// Bounds, after a 10 s warm-up: the agent's RSS may grow by at most this much, its fds not at all (±16).
const RSS_GROWTH_BOUND_MIB = 16;
const FD_GROWTH_BOUND = 16;

const kb = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

async function main() {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  const clamd = await startClamd();
  const mount = mountTmpfs("/tmp/onacc-load-", "1g");
  let agent: ReturnType<typeof Bun.spawn> | undefined;
  try {
    const dir = join(mount.path, "data");
    const files: string[] = [];
    for (let d = 0; d < 50; d++) mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let i = 0; i < FILES; i++) {
      const p = join(dir, `d${i % 50}`, `f${i}`);
      writeFileSync(p, i % 100 === 0 ? EICAR : Buffer.alloc(4096, `file ${i} `));
      files.push(p);
    }
    const list = join(mount.path, "list.txt");
    writeFileSync(list, files.join("\n"));
    const conf = join(mount.path, "onacc.conf");
    const statusSocket = join(mount.path, "status.sock");
    writeFileSync(conf, `LocalSocket ${clamd.socket}\nUser clamav\nOnAccessIncludePath ${dir}\nOnAccessPrevention yes\n`);
    agent = Bun.spawn([join(ROOT, "dist/onacc"), "--foreground", `--config-file=${conf}`, `--status-socket=${statusSocket}`], { stdout: "pipe", stderr: "inherit" });
    let out = "";
    void (async () => {
      for await (const c of agent!.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(c);
    })();
    for (let i = 0; i < 400 && !/protecting/.test(out); i++) await Bun.sleep(25);
    const pid = agent.pid;

    const samples: { t: number; rssMiB: number; fds: number }[] = [];
    const sample = () => samples.push({ t: (Date.now() - t0) / 1000, rssMiB: kb(pid, "VmRSS") / 1024, fds: fds(pid) });
    const t0 = Date.now();
    sample();
    const readers = Array.from({ length: READERS }, (_, i) =>
      Bun.spawn(["bun", join(ROOT, "bench/load-reader.ts"), list, String(SECONDS * 1000), String(MAX_OPENS_PER_READER), String(i + 1)], { stdout: "pipe" }),
    );
    const results = readers.map((r) => new Response(r.stdout).text());
    let statusReads = 0;
    let statusFailures = 0;
    let writes = 0;
    while (readers.some((r) => r.exitCode === null)) {
      await Bun.sleep(1000);
      // The writer: 50 files change each second, so they are scanned again on their next open.
      for (let k = 0; k < 50; k++) {
        const i = 1 + Math.floor(Math.random() * (FILES - 1));
        if (i % 100 !== 0) {
          appendFileSync(files[i]!, "x");
          writes++;
        }
      }
      const s = Bun.spawnSync([join(ROOT, "dist/onacc"), "status", "--json", `--status-socket=${statusSocket}`], { stdout: "pipe", timeout: 5000 });
      if (s.exitCode === 0) statusReads++;
      else statusFailures++;
      if ((Date.now() - t0) % 5000 < 1000) sample();
    }
    sample();
    const parsed = (await Promise.all(results)).map((r) => JSON.parse(r) as { opens: number; denied: number; latencies: number[] });
    const elapsed = (Date.now() - t0) / 1000;
    const all = parsed.flatMap((p) => p.latencies).sort((a, b) => a - b);
    const pct = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))]!;
    const opens = parsed.reduce((n, p) => n + p.opens, 0);
    const status = JSON.parse(Bun.spawnSync([join(ROOT, "dist/onacc"), "status", "--json", `--status-socket=${statusSocket}`], { stdout: "pipe" }).stdout.toString());

    const warm = samples.filter((s) => s.t >= 10);
    const base = warm[0] ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    const rssGrowth = last.rssMiB - base.rssMiB;
    const fdGrowth = last.fds - samples[0]!.fds;
    console.log(`load: ${READERS} readers × ${SECONDS} s over ${FILES} files (1% EICAR), ${writes} writes, status read ${statusReads}× (${statusFailures} failed)`);
    console.log(`  opens: ${opens} in ${elapsed.toFixed(1)} s = ${(opens / elapsed).toFixed(0)}/s; denied ${parsed.reduce((n, p) => n + p.denied, 0)}`);
    console.log(`  open latency: p50 ${pct(0.5).toFixed(3)} ms, p99 ${pct(0.99).toFixed(3)} ms, max ${all[all.length - 1]!.toFixed(1)} ms`);
    console.log(`  agent: scans ${status.scans.total}, cache hits ${status.cache.hits}, scan p50 ${status.latency.p50Ms} ms, p99 ${status.latency.p99Ms} ms`);
    console.log(`  agent RSS MiB: ${samples.map((s) => s.rssMiB.toFixed(1)).join(" → ")} (peak ${(kb(pid, "VmHWM") / 1024).toFixed(1)})`);
    console.log(`  agent fds: ${samples.map((s) => s.fds).join(" → ")}`);
    console.log(`  bounds: RSS growth after warm-up ${rssGrowth.toFixed(1)} MiB (≤ ${RSS_GROWTH_BOUND_MIB}): ${rssGrowth <= RSS_GROWTH_BOUND_MIB ? "ok" : "EXCEEDED"}; fd growth ${fdGrowth} (≤ ${FD_GROWTH_BOUND}): ${fdGrowth <= FD_GROWTH_BOUND ? "ok" : "EXCEEDED"}`);
  } finally {
    if (agent) {
      agent.kill("SIGTERM");
      await agent.exited;
    }
    mount.unmount();
    await disposeClamd(clamd);
  }
}

await main();
