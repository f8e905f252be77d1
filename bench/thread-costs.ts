// What one scan costs onacc, thread by thread (run by hand, as root; not part of the test suite):
//   bun bench/thread-costs.ts [--files 10000] [--verbose]
// Starts dist/onacc (prevention, a private clamd, a tmpfs of its own), reads --files distinct 4 KiB files
// with 4 reader processes, and prints each thread's CPU per scan (user and kernel, from
// /proc/PID/task/TID/stat) and where the resident memory went: anonymous, and the executable's own pages
// (the runtime's code, faulted back in by whatever the threads run). The README's per-scan CPU figures
// and footprint.ts's "resident code after 20,000 scans" come from here.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeClamd, startClamd, type TestClamd } from "../tests/fixtures/clamd.ts";
import { mountTmpfs } from "../tests/fixtures/tmpfs.ts";
import { type Agent, memory, ONACC, startProcess } from "./agents.ts";
import { concurrent, makeFiles } from "./cache-bench.ts";
import { onInterrupt } from "./cleanup.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const FILES = Number(arg("files", "10000"));
const VERBOSE = process.argv.includes("--verbose");
const CLOCK_MS = 10; // USER_HZ = 100

/** Thread name (comm) + TID → [user ms, kernel ms]. */
function threadTimes(pid: number): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
      out.set(`${comm} (${tid})`, [Number(f[11]) * CLOCK_MS, Number(f[12]) * CLOCK_MS]);
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return out;
}

/** Resident MiB of the mappings of onacc's own executable. */
function executableResidentMiB(pid: number): number {
  let kb = 0;
  let inExe = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) inExe = head[1] === ONACC;
    else if (inExe) kb += Number(/^Rss:\s+(\d+)/.exec(line)?.[1] ?? 0);
  }
  return kb / 1024;
}

function describeMemory(pid: number): string {
  const m = memory(pid);
  return m ? `RSS ${m.rssMiB.toFixed(1)} MiB: anonymous ${m.anonMiB.toFixed(1)}, file ${m.fileMiB.toFixed(1)} (executable ${executableResidentMiB(pid).toFixed(1)})` : "gone";
}

const work = mkdtempSync("/tmp/onacc-thread-costs-");
const mount = mountTmpfs("/tmp/onacc-thread-costs-mnt-", "1g");
let clamd: TestClamd | undefined;
let agent: Agent | undefined;
const untrack = onInterrupt(async () => {
  await agent?.stop();
  await disposeClamd(clamd);
  mount.unmount();
});
try {
  clamd = await startClamd();
  const dir = join(mount.path, "files");
  const files = makeFiles(dir, FILES, 4096, "t", `${Date.now()} `);
  const conf = join(work, "onacc.conf");
  writeFileSync(conf, [`LocalSocket ${clamd.socket}`, `OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessExcludeUname clamav", "User clamav", ""].join("\n"));
  const cmd = [ONACC, "--foreground", ...(VERBOSE ? ["--verbose"] : []), `--config-file=${conf}`, `--status-socket=${conf}.sock`];
  agent = await startProcess("onacc", cmd, /protecting \d+ path/);
  await Bun.sleep(2000); // start-up pages handed back, start-up garbage collected
  console.log(`idle:  ${describeMemory(agent.pid)}`);
  const before = threadTimes(agent.pid);
  const opsPerSec = await concurrent(files);
  await Bun.sleep(1000);
  const after = threadTimes(agent.pid);
  console.log(`after ${FILES} scans (${opsPerSec.toFixed(0)} opens/s, 4 readers${VERBOSE ? ", --verbose" : ""}): ${describeMemory(agent.pid)}`);
  console.log("CPU per scan, by thread (µs: user + kernel):");
  let total = 0;
  for (const [name, [user, sys]] of after) {
    const [u0, s0] = before.get(name) ?? [0, 0];
    const du = ((user - u0) * 1000) / FILES;
    const ds = ((sys - s0) * 1000) / FILES;
    total += du + ds;
    if (du + ds >= 1) console.log(`  ${name.padEnd(24)} ${(du + ds).toFixed(0).padStart(5)} = ${du.toFixed(0)} + ${ds.toFixed(0)}`);
  }
  console.log(`  ${"all threads".padEnd(24)} ${total.toFixed(0).padStart(5)}   (clock ticks of 10 ms: ±${((2 * CLOCK_MS * 1000) / FILES).toFixed(0)} µs per thread)`);
} finally {
  untrack();
  await agent?.stop();
  await disposeClamd(clamd);
  mount.unmount();
  rmSync(work, { recursive: true, force: true });
}
