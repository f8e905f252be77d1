// Machine noise for the benchmarks: the load average, the CPU other processes used while a phase ran
// (this 2-core machine is shared with other sessions), the hypervisor's steal time, and who was busy.
import { readFileSync, readdirSync } from "node:fs";

const HZ = 100; // USER_HZ: /proc/stat and /proc/PID/stat count in these ticks

export interface NoiseWindow {
  /** /proc/loadavg's 1-, 5- and 15-minute figures at the end of the window. */
  loadAvg: [number, number, number];
  seconds: number;
  /** CPU used by processes outside this benchmark's own tree, in cores (2 = the whole machine). */
  otherCores: number;
  /** CPU used by this benchmark's tree (agents, clamd, readers, tar, grep), in cores. */
  ownCores: number;
  /** Time the hypervisor ran something else while a CPU here wanted to run, in cores. */
  stealCores: number;
}

interface Mark {
  wall: number;
  busy: number;
  steal: number;
  own: number;
}

/** [pid, ppid, utime+stime+cutime+cstime in ticks, comm] of every process. */
function processes(): { pid: number; ppid: number; ticks: number; comm: string }[] {
  const out: { pid: number; ppid: number; ticks: number; comm: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let s: string;
    try {
      s = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
    const f = s.slice(s.lastIndexOf(") ") + 2).split(" ");
    // After the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    out.push({ pid: Number(name), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), comm });
  }
  return out;
}

function descendantsOf(root: number, all: { pid: number; ppid: number }[]): Set<number> {
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return tree;
}

function mark(): Mark {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …
  const busy = cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!;
  const all = processes();
  const tree = descendantsOf(process.pid, all);
  // Children that exited and were reaped count in our cutime/cstime; live ones with their own figures.
  const own = all.filter((p) => tree.has(p.pid)).reduce((n, p) => n + p.ticks, 0);
  return { wall: performance.now(), busy, steal: cpu[7] ?? 0, own };
}

export function loadAvg(): [number, number, number] {
  const f = readFileSync("/proc/loadavg", "utf8").split(" ").map(Number);
  return [f[0]!, f[1]!, f[2]!];
}

/** Starts a window; the returned function ends it and says how busy the machine was meanwhile. */
export function noiseWindow(): () => NoiseWindow {
  const a = mark();
  return () => {
    const b = mark();
    const seconds = (b.wall - a.wall) / 1000;
    const cores = (ticks: number) => (seconds > 0 ? Math.max(0, ticks) / HZ / seconds : 0);
    return {
      loadAvg: loadAvg(),
      seconds,
      otherCores: cores(b.busy - a.busy - (b.own - a.own)),
      ownCores: cores(b.own - a.own),
      stealCores: cores(b.steal - a.steal),
    };
  };
}

/** Processes outside this benchmark's tree that used more than `minPct` % of a core over `ms`. */
export async function busyOthers(ms = 1000, minPct = 5): Promise<{ pid: number; comm: string; pct: number }[]> {
  const before = new Map(processes().map((p) => [p.pid, p.ticks]));
  await Bun.sleep(ms);
  const all = processes();
  const tree = descendantsOf(process.pid, all);
  return all
    .filter((p) => !tree.has(p.pid))
    .map((p) => ({ pid: p.pid, comm: p.comm, pct: ((p.ticks - (before.get(p.pid) ?? p.ticks)) / HZ / (ms / 1000)) * 100 }))
    .filter((p) => p.pct >= minPct)
    .sort((x, y) => y.pct - x.pct);
}

export function describeNoise(n: NoiseWindow): string {
  return `load ${n.loadAvg.map((x) => x.toFixed(2)).join(" ")}; over ${n.seconds.toFixed(0)} s other processes used ${n.otherCores.toFixed(2)} cores, this bench ${n.ownCores.toFixed(2)}, steal ${n.stealCores.toFixed(2)}`;
}
