// What issue 14's per-event work costs (run by hand, as root; not part of the test suite):
//   bun bench/ops-bench.ts [--calls 20000]
// In-process, against the real /proc: the reader's ExcludeExe check (the opener's own executable, and the
// parent chain with and without its cache), the ExcludePattern check (a miss, and a hit confirmed by a
// cached-only lookup), and a scanner's top-talker record; an fstat of the event's fd for scale. Prints
// microseconds per call and the shared memory each part takes.
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fstat, emptyStat } from "../ffi/fs.ts";
import { createExtraExclusions, ExtraExclusions } from "../src/engine/extra-exclusions.ts";
import { CACHE_TTL_MS } from "../src/engine/exclude-exe.ts";
import { TalkerRecorder, createTopTalkers } from "../src/engine/top-talkers.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const CALLS = Number(arg("calls", "20000"));

function time(label: string, fn: (i: number) => void): void {
  for (let i = 0; i < 1000; i++) fn(i); // warm-up: JIT and caches
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) fn(i);
  const us = ((performance.now() - t0) * 1000) / CALLS;
  console.log(`${label.padEnd(62)} ${us.toFixed(2).padStart(7)} µs`);
}

const dir = mkdtempSync("/tmp/onacc-ops-bench-");
const shell = join(dir, "excluded-shell");
copyFileSync(Bun.which("bash")!, shell);
chmodSync(shell, 0o755);
mkdirSync(join(dir, "srv/site/cache"), { recursive: true });
const plain = join(dir, "plain.txt");
const cached = join(dir, "srv/site/cache/x.bin");
writeFileSync(plain, "x");
writeFileSync(cached, "x");

// An opener three levels below the excluded shell: shell → bash → bash → sleep.
const tree = Bun.spawn([shell, "-c", "bash -c 'bash -c \"sleep 30; true\"; true'; true"]);
await Bun.sleep(300);
const chainPids = [tree.pid];
for (let i = 0; i < 3; i++) {
  const p = chainPids[chainPids.length - 1]!;
  chainPids.push(Number(readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/)[0]));
}
const opener = chainPids[3]!;

try {
  const fd = openSync(plain, "r");
  const hitFd = openSync(cached, "r");
  const fstat = new Fstat();
  const st = emptyStat();
  const hitSt = emptyStat();
  fstat.stat(fd, st);
  fstat.stat(hitFd, hitSt);
  time("fstat of the event fd (for scale)", () => fstat.stat(fd, st));

  const patterns = ["*.log", "*.tmp", "core.[0-9]*", `${dir}/srv/*/cache/**`, "/var/lib/docker/**"];
  const exe = (children: boolean, withPatterns: boolean) => {
    const ex = createExtraExclusions({ excludeExe: children || !withPatterns ? [shell] : [], children, patterns: withPatterns ? patterns : [] });
    ex.table?.resolve(); // as the agent does at start (ops.ts)
    return ex;
  };
  const direct = new ExtraExclusions(exe(false, false).shared);
  time("ExcludeExe, opener's own executable (no match)", () => direct.skip(opener, fd, st, 0));
  const chain = new ExtraExclusions(exe(true, false).shared);
  time("ExcludeExeChildren, match 3 levels up, cached answer", () => chain.skip(opener, fd, st, 0));
  // A clock that jumps past the cache's lifetime on every call: each call walks the parent chain.
  let clock = 0;
  const later = () => (clock += CACHE_TTL_MS + 1);
  time("ExcludeExeChildren, match 3 levels up, walk every time", () => chain.skip(opener, fd, st, later()));
  time("ExcludeExeChildren, no match (walk to PID 1), walk every time", () => chain.skip(process.pid, fd, st, later()));
  const pat = new ExtraExclusions(exe(false, true).shared);
  time(`ExcludePattern, ${patterns.length} patterns, no match (readlink + match)`, () => pat.skip(0, fd, st, 0));
  time(`ExcludePattern, ${patterns.length} patterns, a hit (+ openat2 RESOLVE_CACHED, fstat)`, () => pat.skip(0, hitFd, hitSt, 0));

  const sab = createTopTalkers(1);
  const rec = new TalkerRecorder(sab, 0, 1);
  time("top talkers: begin() + end() per scan (scanner thread)", () => {
    rec.begin(0, opener, fd);
    rec.end(0, false);
  });
  closeSync(fd);
  closeSync(hitFd);

  const counts = createExtraExclusions({ excludeExe: [shell], children: false, patterns }).shared.counts.byteLength;
  console.log(`shared memory: top talkers ${(createTopTalkers(1).byteLength / 1024).toFixed(0)} KiB (one scanner thread); rule counts ${counts} bytes for ${1 + patterns.length} rules`);
} finally {
  for (const pid of chainPids.reverse()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
