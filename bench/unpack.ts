// The unpack measurement of bench/all.ts: `tar xf` of a real source tree into a fresh directory of a
// protected tree, then (once the agent's background work is done) `grep -r` over what was extracted.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestClamd } from "../tests/fixtures/clamd.ts";
import type { StatusSnapshot } from "../src/status/types.ts";
import { type Agent, cpuSeconds, onaccStatus } from "./agents.ts";
import { clamdScans, waitSettled } from "./settle.ts";

export interface Tarball {
  path: string;
  source: string;
  ref: string;
  commit: string;
  /** Regular files and symlinks in it. */
  files: number;
  directories: number;
  /** Sum of the files' sizes. */
  contentBytes: number;
  tarBytes: number;
}

const git = (dir: string, args: string[]) => {
  const r = Bun.spawnSync(["git", "-C", dir, ...args], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  if (r.exitCode !== 0) throw new Error(`git -C ${dir} ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout;
};

/** `git archive --format=tar REF` of the repository at `source`, written to `out`; with its census. */
export function makeTarball(source: string, ref: string, out: string): Tarball {
  if (!existsSync(source)) throw new Error(`unpack: no repository at "${source}" (--tar-source)`);
  const commit = git(source, ["rev-parse", `${ref}^{commit}`]).toString().trim();
  writeFileSync(out, git(source, ["archive", "--format=tar", commit]));
  let files = 0;
  let contentBytes = 0;
  const dirs = new Set<string>();
  // "<mode> blob <sha> <size>\t<path>": submodules (commit entries) are not in an archive.
  for (const line of git(source, ["ls-tree", "-r", "-l", commit]).toString().split("\n")) {
    const m = /^\d+ blob \S+\s+(\d+)\t(.*)$/.exec(line);
    if (!m) continue;
    files++;
    contentBytes += Number(m[1]);
    const parts = m[2]!.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return { path: out, source, ref, commit, files, directories: dirs.size, contentBytes, tarBytes: Bun.file(out).size };
}

export interface Timed {
  ms: number;
  code: number | null;
  signal: string | null;
  stderr: string;
}

/** Runs `cmd` in a child, killed after `timeoutMs`; the wall time from spawn to exit. */
export async function timed(cmd: string[], timeoutMs: number): Promise<Timed> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stderr] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - t0;
  clearTimeout(timer);
  return { ms, code: p.exitCode, signal: p.signalCode === null ? null : String(p.signalCode), stderr: stderr.trim().slice(0, 500) };
}

export interface UnpackRun {
  tarMs: number;
  /** Background work after tar returned: until clamd's log and onacc's counters stopped moving. */
  settleMs: number;
  settled: boolean;
  grepMs: number;
  /** Scans clamd logged during tar, during the settle, during grep. */
  clamdScans: { tar: number; settle: number; grep: number };
  /** onacc's counters, deltas over tar + settle. */
  onacc?: { events: number; skipped: number; scans: number; cacheHits: number };
  problems: string[];
}

export interface UnpackOptions {
  clamd: TestClamd;
  agent?: Agent;
  tarball: Tarball;
  /** The protected directory (or any directory, for the no-agent baseline); run i extracts into run-i. */
  dir: string;
  runs: number;
  quietMs: number;
  timeoutMs: number;
}

const delta = (a: StatusSnapshot | undefined, b: StatusSnapshot | undefined) =>
  a && b
    ? {
        events: b.events.seen - a.events.seen,
        skipped: b.events.skipped - a.events.skipped,
        scans: b.scans.total - a.scans.total,
        cacheHits: b.cache.hits - a.cache.hits,
      }
    : undefined;

/** `runs` × (mkdir, tar xf, wait for the agent to settle, grep -r), each into a fresh directory. */
export async function unpackRuns(o: UnpackOptions): Promise<{ runs: UnpackRun[]; agentCpuS?: number }> {
  const runs: UnpackRun[] = [];
  const cpu0 = o.agent ? cpuSeconds(o.agent.pid) : undefined;
  for (let i = 0; i < o.runs; i++) {
    const dest = join(o.dir, `run-${i}`);
    mkdirSync(dest, { recursive: true });
    // A protected directory that exists before the unpack, as a project directory would: give the agent
    // time to mark the new folder, then let its reaction to it finish.
    await waitSettled(o.clamd, o.agent, 300, 10_000);
    const problems: string[] = [];
    const s0 = o.agent ? await onaccStatus(o.agent) : undefined;
    const tarScans = clamdScans(o.clamd);
    const tar = await timed(["tar", "xf", o.tarball.path, "-C", dest], o.timeoutMs);
    const nTar = tarScans();
    if (tar.code !== 0) problems.push(`tar: exit ${tar.code ?? tar.signal}: ${tar.stderr}`);
    const settleScans = clamdScans(o.clamd);
    const settle = await waitSettled(o.clamd, o.agent, o.quietMs, o.timeoutMs);
    const nSettle = settleScans();
    if (!settle.settled) problems.push(`still busy ${o.timeoutMs} ms after tar`);
    const s1 = o.agent ? await onaccStatus(o.agent) : undefined;
    const grepScans = clamdScans(o.clamd);
    // A string no file holds: grep reads every file to the end. Exit 1 = no match, as expected.
    const grep = await timed(["grep", "-r", "-F", "-q", "--", "ONACC-BENCH-NO-SUCH-STRING-5e1f", dest], o.timeoutMs);
    if (grep.code !== 1) problems.push(`grep: exit ${grep.code ?? grep.signal}: ${grep.stderr}`);
    runs.push({
      tarMs: tar.ms,
      settleMs: settle.ms,
      settled: settle.settled,
      grepMs: grep.ms,
      clamdScans: { tar: nTar, settle: nSettle, grep: grepScans() },
      onacc: delta(s0, s1),
      problems,
    });
  }
  const cpu1 = o.agent ? cpuSeconds(o.agent.pid) : undefined;
  return { runs, agentCpuS: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined };
}
