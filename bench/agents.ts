// The agents the benchmarks compare, started and stopped by PID: onacc (dist/onacc) and clamonacc 1.4.6
// (--fdpass) against one test clamd, plus what the benchmarks read about them from /proc and onacc's status.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestClamd } from "../tests/fixtures/clamd.ts";
import { onInterrupt } from "./cleanup.ts";
import { queryStatus } from "../src/status/client.ts";
import type { StatusSnapshot } from "../src/status/types.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const ONACC = join(ROOT, "dist/onacc");
export const CLAMONACC = "/usr/sbin/clamonacc";

export interface Agent {
  kind: "onacc" | "clamonacc";
  pid: number;
  /** onacc only: its private control socket. */
  statusSocket?: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export interface AgentConfig {
  clamd: TestClamd;
  /** Where its config file (and onacc's status socket) go: a private directory of the benchmark. */
  work: string;
  /** Protected directories (OnAccessIncludePath). */
  include: string[];
  /** OnAccess* lines on top of the common ones (e.g. "OnAccessExtraScanning yes"). */
  extra?: string[];
  /** Default yes. */
  prevention?: boolean;
  startTimeoutMs?: number;
}

let configSeq = 0;
function writeConfig(c: AgentConfig, name: string, own: string[]): string {
  const file = join(c.work, `${name}-${process.pid}-${configSeq++}.conf`);
  const lines = [
    `LocalSocket ${c.clamd.socket}`,
    ...own,
    ...c.include.map((d) => `OnAccessIncludePath ${d}`),
    `OnAccessPrevention ${c.prevention === false ? "no" : "yes"}`,
    // clamd runs as clamav; clamonacc insists on excluding it, onacc gets the same line for a like config.
    "OnAccessExcludeUname clamav",
    ...(c.extra ?? []),
  ];
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

export async function startOnacc(c: AgentConfig): Promise<Agent> {
  if (!existsSync(ONACC)) throw new Error(`${ONACC} missing: run \`bun run build\` first`);
  const conf = writeConfig(c, "onacc", ["User clamav"]);
  // A private control socket: the default /run/onacc/status.sock may belong to another agent on this host.
  const statusSocket = `${conf}.status.sock`;
  const a = await startProcess("onacc", [ONACC, "--foreground", "--verbose", `--config-file=${conf}`, `--status-socket=${statusSocket}`], /protecting \d+ path/, c.startTimeoutMs);
  return { ...a, statusSocket };
}

export async function startClamonacc(c: AgentConfig): Promise<Agent> {
  if (!existsSync(CLAMONACC)) throw new Error(`${CLAMONACC} missing (Debian package clamav-daemon)`);
  const conf = writeConfig(c, "clamonacc", []);
  const a = await startProcess("clamonacc", [CLAMONACC, "--foreground", "--verbose", "--fdpass", `--config-file=${conf}`], /waiting to consume events/, c.startTimeoutMs);
  await Bun.sleep(1000); // its inotify thread places the fanotify marks after this line
  return a;
}

export async function startProcess(kind: Agent["kind"], cmd: string[], ready: RegExp, timeoutMs = 30_000): Promise<Agent> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) out += d.decode(c, { stream: true });
  };
  void pump(p.stdout);
  void pump(p.stderr);
  let untrack = () => {};
  const stop = async () => {
    untrack();
    if (p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGTERM");
    if (!(await Promise.race([p.exited.then(() => true), Bun.sleep(5000).then(() => false)]))) p.kill("SIGKILL");
    await p.exited;
  };
  untrack = onInterrupt(stop);
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(out)) {
    if (p.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${cmd[0]} did not print ${ready} within ${timeoutMs} ms:\n${out.slice(-2000)}`);
    }
    await Bun.sleep(20);
  }
  return { kind, pid: p.pid, output: () => out, stop };
}

/** A field of /proc/PID/status in MiB (VmRSS, VmHWM, RssAnon, …); undefined when the process is gone. */
export function procStatusMiB(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Memory {
  rssMiB: number;
  hwmMiB: number;
  /** smaps_rollup "Anonymous": the heaps, stacks and the SharedArrayBuffers. */
  anonMiB: number;
  /** Rss − Anonymous − shmem: pages of mapped files, for onacc mostly the Bun runtime's code in the binary. */
  fileMiB: number;
  shmemMiB: number;
  /** smaps_rollup Pss: what the process costs when the file pages are shared with others. */
  pssMiB: number;
  threads: number;
}

export function memory(pid: number): Memory | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN) / 1024;
    const rss = kb(rollup, "Rss");
    const anon = kb(rollup, "Anonymous");
    const shmem = kb(status, "RssShmem");
    return {
      rssMiB: rss,
      hwmMiB: kb(status, "VmHWM"),
      anonMiB: anon,
      fileMiB: rss - anon - shmem,
      shmemMiB: shmem,
      pssMiB: kb(rollup, "Pss"),
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
    };
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in seconds (USER_HZ = 100). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** onacc's status snapshot over its control socket; undefined when it did not answer within 2 s. */
export async function onaccStatus(agent: Agent): Promise<StatusSnapshot | undefined> {
  if (!agent.statusSocket) return undefined;
  try {
    const r = await queryStatus(agent.statusSocket, { cmd: "status" }, 2000);
    return r.ok && "status" in r ? r.status : undefined;
  } catch {
    return undefined;
  }
}
