// Does clamd read this file? An onacc-only option must never be written where clamd reads it (clamd
// refuses to start on an option it does not know): clamd's default configuration, and the file each clamd
// running on this host was started with (found through /proc).
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { posix } from "node:path";
import { CLAMD_COMMAND_LINE_NAMES, CLAMD_DEFAULT_CONFIG } from "./clamd-options.ts";

/**
 * Why clamd reads `file`, as words for a message ("clamd (pid 812) was started with -c on it"), or
 * undefined when no clamd is known to. Files are compared by device and inode, so a symbolic or hard
 * link counts as the file itself. A clamd started later with another file cannot be known here.
 */
export function whyClamdReads(file: string, proc = "/proc"): string | undefined {
  const id = _identity(file);
  if (id === undefined) return undefined;
  if (_identity(CLAMD_DEFAULT_CONFIG) === id) {
    return file === CLAMD_DEFAULT_CONFIG ? "it is clamd's default configuration" : `it is clamd's default configuration ${CLAMD_DEFAULT_CONFIG}`;
  }
  for (const pid of _clamdPids(proc)) {
    const config = _configOf(proc, pid);
    if (config !== undefined && _identity(config) === id) return `clamd (pid ${pid}) was started with it`;
  }
  return undefined;
}

/**
 * The configuration file named on a clamd command line (without argv[0]), or undefined (clamd then reads
 * its default). Reads the forms clamd's getopt accepts: `-c FILE`, `-cFILE`, `-Fc FILE`, `--config-file
 * FILE`, `--config-file=FILE` and unambiguous abbreviations (`--config`); the first one wins, as in clamd.
 */
export function clamdConfigArgument(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") break;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      if (_longOptionOf(name) !== "config-file") continue;
      return eq < 0 ? args[i + 1] : arg.slice(eq + 1);
    }
    if (!arg.startsWith("-")) continue;
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j];
      if (letter === "c") return j + 1 < arg.length ? arg.slice(j + 1) : args[i + 1];
      // -l FILE and -p FILE: the rest of the word, or the next word, is their value.
      if (letter === "l" || letter === "p") {
        if (j + 1 === arg.length) i++;
        break;
      }
    }
  }
  return undefined;
}

/** The long option a `--name` means: exact, or the one option it abbreviates (getopt's rule). */
function _longOptionOf(name: string): string | undefined {
  if (CLAMD_COMMAND_LINE_NAMES.has(name)) return name;
  const matches = [...CLAMD_COMMAND_LINE_NAMES.keys()].filter((long) => long.startsWith(name));
  return name !== "" && matches.length === 1 ? matches[0] : undefined;
}

/** PIDs of the processes running a program named clamd. */
function _clamdPids(proc: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let program: string | undefined;
    try {
      program = readlinkSync(`${proc}/${entry}/exe`).replace(/ \(deleted\)$/, "");
    } catch {
      // exe is unreadable for kernel threads and, without privileges, for other users' processes.
      program = _argv(proc, entry)?.[0];
    }
    if (program !== undefined && posix.basename(program) === "clamd") pids.push(Number(entry));
  }
  return pids;
}

/** The configuration file a running clamd reads, as a path through its own root (containers too). */
function _configOf(proc: string, pid: number): string | undefined {
  const argv = _argv(proc, String(pid));
  if (argv === undefined) return undefined;
  let file = clamdConfigArgument(argv.slice(1)) ?? CLAMD_DEFAULT_CONFIG;
  if (!file.startsWith("/")) {
    try {
      file = posix.join(readlinkSync(`${proc}/${pid}/cwd`), file);
    } catch {
      return undefined;
    }
  }
  return `${proc}/${pid}/root${file}`;
}

function _argv(proc: string, pid: string): string[] | undefined {
  try {
    const words = readFileSync(`${proc}/${pid}/cmdline`, "utf8").split("\0");
    if (words.at(-1) === "") words.pop();
    return words;
  } catch {
    return undefined;
  }
}

function _identity(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
