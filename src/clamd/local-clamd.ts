// What onacc can learn about a clamd that runs on this host, from the process itself: its PID (peer
// credentials of its unix socket, or the owner of its loopback TCP listener), the config file on its
// command line, and from that file where its signatures live, where it logs, and how often it checks
// them (SelfCheck). onacc's own config need not repeat any of it. Paths are read through /proc/PID/root,
// so a clamd in another mount namespace (a container) is understood too.
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { readProcText } from "../../ffi/procfs.ts";

/** clamd's built-in defaults (clamd.conf(5)) where its config file says nothing. */
export const CLAMD_DEFAULTS = { configFile: "/etc/clamav/clamd.conf", databaseDirectory: "/var/lib/clamav", selfCheckSeconds: 600 } as const;

export interface LocalClamd {
  pid: number;
  /** The config file as clamd names it, and the same file as onacc can open it. */
  configFile: string;
  /** Directories and files as seen from onacc (through /proc/PID/root when clamd has its own mounts). */
  databaseDirectory: string;
  logFile?: string;
  selfCheckSeconds: number;
}

/** The config file named on clamd's command line (-c FILE, --config-file=FILE), else clamd's default. */
export function configFileFromCmdline(argv: string[]): string {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === "-c" || a === "--config-file") && i + 1 < argv.length) return argv[i + 1]!;
    if (a.startsWith("--config-file=")) return a.slice("--config-file=".length);
    if (a.startsWith("-c") && a.length > 2) return a.slice(2);
  }
  return CLAMD_DEFAULTS.configFile;
}

/**
 * The first value of each single-valued option clamd would use (clamd keeps the first of repeated
 * options), read leniently: only the few options onacc needs, nothing is judged here.
 */
export function clamdSettings(text: string): { databaseDirectory?: string; logFile?: string; selfCheck?: string } {
  const out: { databaseDirectory?: string; logFile?: string; selfCheck?: string } = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const value = m[2]!.trim().replace(/^"(.*)"$/, "$1");
    if (m[1] === "DatabaseDirectory") out.databaseDirectory ??= value;
    else if (m[1] === "LogFile") out.logFile ??= value;
    else if (m[1] === "SelfCheck") out.selfCheck ??= value;
  }
  return out;
}

function sameMountNamespace(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`) === readlinkSync("/proc/self/ns/mnt");
  } catch {
    return false;
  }
}

/** What a running clamd (by PID) uses; undefined when the process is gone or not readable. */
export function describeLocalClamd(pid: number): LocalClamd | undefined {
  if (pid <= 0) return undefined;
  const cmdline = readProcText(pid, "cmdline");
  if (cmdline === undefined) return undefined;
  const argv = cmdline.split("\0").filter(Boolean);
  const root = sameMountNamespace(pid) ? "" : `/proc/${pid}/root`;
  const configFile = configFileFromCmdline(argv);
  let text = "";
  try {
    text = readFileSync(`${root}${configFile}`, "latin1");
  } catch {
    /* clamd runs on its defaults */
  }
  const s = clamdSettings(text);
  const selfCheck = Number(s.selfCheck ?? CLAMD_DEFAULTS.selfCheckSeconds);
  return {
    pid,
    configFile: `${root}${configFile}`,
    databaseDirectory: `${root}${s.databaseDirectory ?? CLAMD_DEFAULTS.databaseDirectory}`,
    ...(s.logFile ? { logFile: `${root}${s.logFile}` } : {}),
    // SelfCheck 0 turns the check off: clamd then reloads only when told to.
    selfCheckSeconds: Number.isFinite(selfCheck) && selfCheck >= 0 ? selfCheck : CLAMD_DEFAULTS.selfCheckSeconds,
  };
}

const LOOPBACK_V4 = new Set(["0100007F", "00000000"]); // 127.0.0.1 and 0.0.0.0 as /proc/net/tcp shows them

/**
 * The PID of the process listening on a loopback TCP port: the listener's socket inode from
 * /proc/net/tcp{,6}, then the process holding that socket. Used for a clamd reached over TCP on this host.
 * Any user may listen on a free port above 1023 (clamd's 3310 is one): only a listener owned by one of
 * `trustedUids` (root, clamd's User) is taken for clamd.
 */
export function pidListeningOn(port: number, trustedUids: readonly number[]): number | undefined {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A") continue; // TCP_LISTEN
      const [addr, p] = f[1]!.split(":");
      if (p !== hexPort) continue;
      if (table.endsWith("tcp") && !LOOPBACK_V4.has(addr!)) continue;
      if (!trustedUids.includes(Number(f[7]))) continue;
      inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (wanted.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return undefined;
}

/** True when `path` exists and is a directory (for a database directory that may not exist yet). */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
