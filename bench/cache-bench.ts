// The performance benchmark (run by hand, as root; not part of the test suite):
//   bun bench/cache-bench.ts [--small 2000] [--large 200] [--owner UID] [--json FILE]
// --owner gives the files to that user (mode 0644): onacc then keeps no kernel marks for them (a user may
// write their own file through a shared mapping unseen), and reopens are answered by its userspace cache.
// One run, one private clamd, one test-mounted tmpfs, three setups side by side: no agent, onacc
// (dist/onacc), and clamonacc (Debian's /usr/sbin/clamonacc) when installed, with the same config.
// Prints a table and writes JSON (default .bench-out/cache-bench.json).
// bench/all.ts reuses pass(), concurrent(), makeFiles() and pct() from here.
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeClamd, startClamd } from "../tests/fixtures/clamd.ts";
import { EICAR } from "../tests/fixtures/signatures.ts";
import { mountTmpfs } from "../tests/fixtures/tmpfs.ts";
import { type Agent, CLAMONACC, cpuSeconds, procStatusMiB, ROOT, startClamonacc, startOnacc } from "./agents.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const SMALL = Number(arg("small", "2000"));
const LARGE = Number(arg("large", "200"));
const JSON_OUT = arg("json", join(ROOT, ".bench-out/cache-bench.json"));
const OWNER = process.argv.includes("--owner") ? Number(arg("owner", "")) : undefined;
const READERS = 4;

interface Figures {
  setup: string;
  firstP50: number;
  firstP99: number;
  secondP50: number;
  secondP99: number;
  firstOpsPerSec4: number;
  secondOpsPerSec4: number;
  largeFirstP50: number;
  largeSecondP50: number;
  largeOpsPerSec4: number;
  denyMs: number;
  denied: boolean;
  idleRssMiB?: number;
  peakRssMiB?: number;
  cpuSeconds?: number;
}

const PASS_TIMEOUT_MS = 120_000;
let listSeq = 0;
function writeList(files: string[]): string {
  const p = `/tmp/onacc-bench-list-${process.pid}-${listSeq++}`;
  writeFileSync(p, files.join("\n"));
  return p;
}

/** Opens and reads each file once, in a child process; per-open latencies in ms (empty when it hung). */
export async function pass(files: string[]): Promise<number[]> {
  return (await passDetailed(files)).ms;
}

/** pass(), with each open's error code ("" when it opened; "EPERM" when the agent denied it). */
export async function passDetailed(files: string[], timeoutMs = PASS_TIMEOUT_MS): Promise<{ ms: number[]; errors: string[] }> {
  const list = writeList(files);
  try {
    const p = Bun.spawn(["bun", join(ROOT, "bench/read-files.ts"), list, "--errors"], { stdout: "pipe", stderr: "inherit" });
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    const out = await new Response(p.stdout).text();
    clearTimeout(timer);
    await p.exited;
    return out ? (JSON.parse(out) as { ms: number[]; errors: string[] }) : { ms: [], errors: [] };
  } finally {
    rmSync(list, { force: true });
  }
}

// Hint: the first open of a pass also pays the child's start-up; it is one sample of thousands.
export const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

/** READERS child processes, each reading its share of `files`; opens per second overall (NaN if hung). */
export async function concurrent(files: string[]): Promise<number> {
  const shares = Array.from({ length: READERS }, (_, i) => files.filter((_, j) => j % READERS === i));
  const t0 = performance.now();
  const results = await Promise.all(shares.map((share) => pass(share)));
  if (results.some((r) => r.length === 0)) return NaN;
  // Each reader's own busy time overlaps the others'; the wall clock over all of them is what counts.
  return files.length / ((performance.now() - t0) / 1000);
}

/**
 * `count` files of `size` bytes named `${tag}-${i}.bin`. `salt` goes into every body: clamd's own cache
 * knows a content it scanned before, so each setup gets bodies no earlier setup had.
 */
export function makeFiles(dir: string, count: number, size: number, tag: string, salt = ""): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = join(dir, `${tag}-${i}.bin`);
    const body = Buffer.alloc(size, `${salt}${tag} file ${i} `);
    writeFileSync(p, body);
    files.push(p);
  }
  return files;
}

async function measure(setup: string, root: string, start?: (dir: string) => Promise<Agent>): Promise<Figures> {
  const dir = join(root, setup);
  const small = makeFiles(join(dir, "small"), SMALL, 4096, "s", setup);
  const smallConc = makeFiles(join(dir, "small-conc"), SMALL, 4096, "c", setup);
  const large = makeFiles(join(dir, "large"), LARGE, 1 << 20, "l", setup);
  const largeConc = makeFiles(join(dir, "large-conc"), LARGE, 1 << 20, "m", setup);
  const eicar = join(dir, "eicar.com");
  writeFileSync(eicar, EICAR);
  if (OWNER !== undefined) for (const f of [...small, ...smallConc, ...large, ...largeConc, eicar]) chownSync(f, OWNER, OWNER);

  const agent = start ? await start(dir) : undefined;
  try {
    await Bun.sleep(1000);
    const idle = agent ? procStatusMiB(agent.pid, "VmRSS") : undefined;
    const cpu0 = agent ? cpuSeconds(agent.pid) : undefined;
    const first = await pass(small);
    const second = await pass(small);
    const firstOps = await concurrent(smallConc);
    const secondOps = await concurrent(smallConc);
    const lFirst = await pass(large);
    const lSecond = await pass(large);
    const lOps = await concurrent(largeConc);
    const t0 = performance.now();
    const deny = Bun.spawnSync(["cat", eicar], { stdout: "ignore", stderr: "pipe", timeout: 30_000 });
    const denyMs = performance.now() - t0;
    const denied = /Operation not permitted/.test(deny.stderr.toString());
    const cpu1 = agent ? cpuSeconds(agent.pid) : undefined;
    return {
      setup,
      firstP50: pct(first, 0.5),
      firstP99: pct(first, 0.99),
      secondP50: pct(second, 0.5),
      secondP99: pct(second, 0.99),
      firstOpsPerSec4: firstOps,
      secondOpsPerSec4: secondOps,
      largeFirstP50: pct(lFirst, 0.5),
      largeSecondP50: pct(lSecond, 0.5),
      largeOpsPerSec4: lOps,
      denyMs,
      denied,
      idleRssMiB: idle,
      peakRssMiB: agent ? procStatusMiB(agent.pid, "VmHWM") : undefined,
      cpuSeconds: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined,
    };
  } finally {
    await agent?.stop();
  }
}

const f2 = (x: number | undefined, d = 3) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));

async function main() {
  if (process.getuid?.() !== 0) throw new Error("run as root: fanotify needs CAP_SYS_ADMIN");
  const clamd = await startClamd({ extra: ["MaxThreads 12"] });
  const mount = mountTmpfs("/tmp/onacc-bench-", "2g");
  const results: Figures[] = [];
  try {
    results.push(await measure("none", mount.path));
    results.push(await measure("onacc", mount.path, (dir) => startOnacc({ clamd, work: clamd.dir, include: [dir] })));
    if (existsSync(CLAMONACC)) {
      results.push(await measure("clamonacc", mount.path, (dir) => startClamonacc({ clamd, work: clamd.dir, include: [dir] })));
    }
  } finally {
    mount.unmount();
    await disposeClamd(clamd);
  }

  const base = results[0]!;
  const rows: [string, (r: Figures) => string][] = [
    [`first open+read p50, ${SMALL} × 4 KiB (ms)`, (r) => f2(r.firstP50)],
    ["first open+read p99 (ms)", (r) => f2(r.firstP99)],
    ["second pass p50 (ms)", (r) => f2(r.secondP50)],
    ["second pass p99 (ms)", (r) => f2(r.secondP99)],
    [`first pass opens/s, ${READERS} readers`, (r) => f2(r.firstOpsPerSec4, 0)],
    [`second pass opens/s, ${READERS} readers`, (r) => f2(r.secondOpsPerSec4, 0)],
    [`first open+read p50, ${LARGE} × 1 MiB (ms)`, (r) => f2(r.largeFirstP50)],
    ["second pass p50, 1 MiB (ms)", (r) => f2(r.largeSecondP50)],
    [`1 MiB opens/s, ${READERS} readers, first pass`, (r) => f2(r.largeOpsPerSec4, 0)],
    ["time to deny EICAR (ms)", (r) => (r.denied ? f2(r.denyMs, 2) : "not denied")],
    ["idle RSS (MiB)", (r) => f2(r.idleRssMiB, 1)],
    ["peak RSS (MiB)", (r) => f2(r.peakRssMiB, 1)],
    ["agent CPU during the run (s)", (r) => f2(r.cpuSeconds, 2)],
  ];
  const w = Math.max(...rows.map(([n]) => n.length));
  console.log(`| ${"".padEnd(w)} | ${results.map((r) => r.setup.padStart(10)).join(" | ")} |`);
  console.log(`|${"-".repeat(w + 2)}|${results.map(() => "-".repeat(12)).join("|")}|`);
  for (const [name, get] of rows) console.log(`| ${name.padEnd(w)} | ${results.map((r) => get(r).padStart(10)).join(" | ")} |`);
  console.log("\nRatios to no agent (p50 latency; lower is better):");
  for (const r of results.slice(1)) {
    console.log(`  ${r.setup}: first pass ${(r.firstP50 / base.firstP50).toFixed(1)}×, second pass ${(r.secondP50 / base.secondP50).toFixed(2)}×`);
  }
  const onacc = results.find((r) => r.setup === "onacc");
  const co = results.find((r) => r.setup === "clamonacc");
  if (onacc && co) {
    console.log("onacc vs clamonacc:");
    console.log(`  first-pass p50 ${(onacc.firstP50 / co.firstP50).toFixed(2)}× (target ≤ 0.75), 4-reader first pass ${(onacc.firstOpsPerSec4 / co.firstOpsPerSec4).toFixed(2)}× (target ≥ 1.8)`);
    console.log(`  4-reader second pass ${(onacc.secondOpsPerSec4 / co.secondOpsPerSec4).toFixed(1)}× (target ≥ 50), second-pass p50 vs no agent ${(onacc.secondP50 / base.secondP50).toFixed(2)}× (target ≤ 1.2)`);
  }
  mkdirSync(join(JSON_OUT, ".."), { recursive: true });
  writeFileSync(JSON_OUT, JSON.stringify({ date: new Date().toISOString(), small: SMALL, large: LARGE, readers: READERS, results }, null, 2));
  console.log(`\nJSON: ${JSON_OUT}`);
}

if (import.meta.main) await main();
