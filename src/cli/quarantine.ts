// `onacc quarantine list|restore|delete`: the quarantine vault from the command line. Takes the agent's own
// flags (--move/--copy, -c, --clamd…) to find the quarantine directory and, for restore's rescan, clamd.
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { restoreFile, RestoreRefused } from "../actions/restore.ts";
import { deleteEntry, listRecords, publicRecord, readRecord, recordState, VaultError, type VaultRecord } from "../actions/vault.ts";
import { describeEndpoint, resolveEndpoint } from "../clamd/address.ts";
import { ClamdClient } from "../clamd/client.ts";
import type { ScanOutcome } from "../clamd/types.ts";
import { loadConfig } from "../config/load.ts";
import { closestName } from "../config/suggest.ts";
import { ClamdError, ExitCode, OnaccError, UsageError } from "../errors.ts";
import { displayPath } from "../log/display-path.ts";
import { DEFAULT_QUARANTINE } from "../setup/answers.ts";
import { queryStatus } from "../status/client.ts";
import { RUN_FLAGS, parseRunArgs } from "./args.ts";
import { DEFAULT_CONFIG_FILE, type RunOptions } from "./options.ts";

/** The configuration `onacc setup` writes, used by restore when nothing else names one. */
const SETUP_CONFIG_FILE = "/etc/onacc/onacc.conf";

const _COMMANDS = ["list", "restore", "delete"] as const;
type _Command = (typeof _COMMANDS)[number];

const _OWN_FLAGS: ReadonlyArray<{ long: string; value?: string; for: _Command[]; description: string }> = [
  { long: "json", for: ["list"], description: "Print the records as JSON (names also as base64: bytes kept exactly)" },
  { long: "to", value: "PATH", for: ["restore"], description: "Restore to PATH (a new file, or an existing directory to put it in) instead of where it was" },
  { long: "force", for: ["restore"], description: "Restore even when clamd still finds something, cannot scan it, or it changed in the quarantine" },
  { long: "help", for: [...(_COMMANDS as readonly _Command[])], description: "Show this help" },
];

export interface QuarantineArgs {
  command: _Command | undefined;
  id?: string;
  json: boolean;
  to?: string;
  force: boolean;
  help: boolean;
  /** The agent's flags, parsed as the agent parses them. */
  agent: RunOptions;
  /** Long names of the agent flags that were given (to tell a default from a choice). */
  given: Set<string>;
}

export function quarantineHelpText(): string {
  const width = Math.max(...[..._OWN_FLAGS.map((f) => `--${f.long}${f.value ? `=${f.value}` : ""}`), "--move=DIR, --copy=DIR"].map((s) => s.length));
  const row = (left: string, text: string) => `  ${left.padEnd(width)}  ${text}`;
  return [
    "Usage: onacc quarantine list [--json] [agent flags]",
    "       onacc quarantine restore ID [--to=PATH] [--force] [agent flags]",
    "       onacc quarantine delete ID [agent flags]",
    "",
    "The files --move/--copy put in the quarantine directory, each with a record (original path, owner, mode,",
    "signatures, time, SHA-256, size). restore rescans the file through clamd first and refuses an infected",
    "one unless --force; it never overwrites a file, and puts back the owner and mode.",
    "",
    ..._OWN_FLAGS.map((f) => row(`--${f.long}${f.value ? `=${f.value}` : ""}`, f.description)),
    row("--move=DIR, --copy=DIR", "The quarantine directory, as given to the agent"),
    row("-c, --config-file=FILE", "The agent's configuration: clamd's socket for restore's rescan"),
    "",
    "Any other flag of the agent is accepted too (e.g. --clamd, --status-socket), so its command line can be",
    "pasted. Without --move/--copy, the directory is the running agent's (asked over --status-socket),",
    `else ${DEFAULT_QUARANTINE}. Without -c, restore uses the running agent's configuration, else`,
    `${SETUP_CONFIG_FILE} when it exists, else ${DEFAULT_CONFIG_FILE}.`,
    "",
  ].join("\n");
}

const _FLAG_BY_LONG = new Map(RUN_FLAGS.map((f) => [f.long, f]));
const _FLAG_BY_SHORT = new Map(RUN_FLAGS.filter((f) => f.short).map((f) => [f.short!, f]));

/** Parses the argv after "quarantine". Throws UsageError. */
export function parseQuarantineArgs(argv: readonly string[], cwd: string = process.cwd()): QuarantineArgs {
  const positional: string[] = [];
  const agentArgs: string[] = [];
  const given = new Set<string>();
  const own = { json: false, force: false, help: false, to: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") {
      own.help = true;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const mine = _OWN_FLAGS.find((f) => f.long === name);
      if (mine) {
        if (mine.value === undefined) {
          if (eq >= 0) throw new UsageError(`--${name} takes no value`);
          own[name as "json" | "force" | "help"] = true;
        } else {
          const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
          if (value === undefined || value === "" || (eq < 0 && value.startsWith("-"))) throw new UsageError(`--${name} needs a ${mine.value} value`);
          own.to = value;
        }
        continue;
      }
      const flag = _FLAG_BY_LONG.get(name);
      if (!flag) {
        const suggestion = closestName(name, [..._OWN_FLAGS.map((f) => f.long), ..._FLAG_BY_LONG.keys()]);
        throw new UsageError(`Unknown option "--${name}" for onacc quarantine${suggestion ? `: did you mean --${suggestion}?` : ""} (see onacc quarantine --help)`);
      }
      given.add(flag.long);
      agentArgs.push(arg);
      if (flag.value !== undefined && eq < 0 && i + 1 < argv.length) agentArgs.push(argv[++i]!);
      continue;
    }
    // Short agent flags, bundled as the agent allows (-Fv, -c FILE, -cFILE).
    agentArgs.push(arg);
    for (let j = 1; j < arg.length; j++) {
      const flag = _FLAG_BY_SHORT.get(arg[j]!);
      if (!flag) break; // parseRunArgs names the problem
      given.add(flag.long);
      if (flag.value !== undefined) {
        if (j === arg.length - 1 && i + 1 < argv.length) agentArgs.push(argv[++i]!);
        break;
      }
    }
  }
  const agent = parseRunArgs(agentArgs, cwd);
  const [command, id, ...extra] = positional;
  if (command !== undefined && !(_COMMANDS as readonly string[]).includes(command)) {
    const suggestion = closestName(command, _COMMANDS);
    throw new UsageError(`Unknown quarantine command "${command}"${suggestion ? `: did you mean ${suggestion}?` : ""} (list, restore or delete)`);
  }
  const out: QuarantineArgs = { command: command as _Command | undefined, json: own.json, force: own.force, help: own.help, agent, given };
  if (out.help) return out;
  if (command === undefined) throw new UsageError("onacc quarantine needs a command: list, restore ID or delete ID");
  const cmd = command as _Command;
  for (const f of _OWN_FLAGS) {
    const used = f.long === "to" ? own.to !== undefined : f.long !== "help" && own[f.long as "json" | "force"];
    if (used && !f.for.includes(cmd)) throw new UsageError(`--${f.long} does not apply to onacc quarantine ${cmd}`);
  }
  if (cmd === "list") {
    if (id !== undefined) throw new UsageError(`onacc quarantine list takes no argument, but "${id}" was given`);
  } else {
    if (id === undefined) throw new UsageError(`onacc quarantine ${cmd} needs the ID of a quarantined file (see onacc quarantine list)`);
    if (extra.length > 0) throw new UsageError(`onacc quarantine ${cmd} takes one ID, but "${extra[0]}" was given too`);
    out.id = id;
  }
  if (own.to !== undefined) out.to = resolve(cwd, own.to);
  return out;
}

/** What the subcommand works with: the quarantine directory and how it was found. */
interface _Where {
  dir: string;
  /** For messages: "--move", "the running onacc, pid N", "the default". */
  source: string;
  /** The agent's flags to take clamd's endpoints from (restore). */
  agent: RunOptions;
  configGiven: boolean;
}

/**
 * --move/--copy given: that directory. Else the running agent's (its status socket gives its pid, and its
 * command line in /proc the flags it runs with). Else onacc setup's default.
 */
async function _locate(args: QuarantineArgs): Promise<_Where> {
  const a = args.agent.action;
  const configGiven = args.given.has("config-file");
  if (a.kind === "move" || a.kind === "copy") return { dir: a.dir, source: `--${a.kind}`, agent: args.agent, configGiven };
  const running = await _runningAgent(args.agent.statusSocket);
  if (running) {
    const ra = running.options.action;
    if (ra.kind !== "move" && ra.kind !== "copy") {
      throw new OnaccError("E_RUNTIME", `The running onacc (pid ${running.pid}) has no --move or --copy: name the quarantine directory with --move=DIR`);
    }
    // Its clamd and configuration, unless this command line names them.
    const agent = configGiven || args.given.has("clamd") ? args.agent : running.options;
    return { dir: ra.dir, source: `the running onacc, pid ${running.pid}`, agent, configGiven: configGiven || agent === running.options };
  }
  return { dir: DEFAULT_QUARANTINE, source: "the default", agent: args.agent, configGiven };
}

async function _runningAgent(socket: string | null): Promise<{ pid: number; options: RunOptions } | undefined> {
  if (socket === null) return undefined;
  let pid: number;
  try {
    const reply = await queryStatus(socket, { cmd: "ping" }, 2000);
    if (!reply.ok || !("pong" in reply)) return undefined;
    pid = reply.pid;
  } catch {
    return undefined;
  }
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s, i, all) => i < all.length - 1 || s !== "");
    // The compiled binary: [onacc, flags…]; from source: [bun, …/main.ts, flags…].
    let start = 1;
    if (argv[1]?.endsWith("main.ts")) start = 2;
    if (argv[start] === "run") start++;
    return { pid, options: parseRunArgs(argv.slice(start), readlinkSync(`/proc/${pid}/cwd`)) };
  } catch {
    return undefined;
  }
}

type _Io = { out: (text: string) => void; err: (text: string) => void };

/** Runs `onacc quarantine …`; returns the exit code. */
export async function runQuarantine(
  argv: readonly string[],
  io: _Io = { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t) },
): Promise<number> {
  const args = parseQuarantineArgs(argv);
  if (args.help) {
    io.out(quarantineHelpText());
    return ExitCode.ok;
  }
  const where = await _locate(args);
  try {
    switch (args.command!) {
      case "list":
        return _list(where, args.json, io);
      case "delete":
        return _delete(where, args.id!, io);
      case "restore":
        return await _restore(where, args, io);
    }
  } catch (err) {
    if (err instanceof VaultError || err instanceof RestoreRefused) {
      const what = args.command === "restore" ? `quarantine restore ${args.id} refused: ` : "";
      io.err(`onacc: ${what}${err.message}\n`);
      return ExitCode.runtime;
    }
    throw err;
  }
}

function _list(where: _Where, json: boolean, io: _Io): number {
  const { records, problems } = listRecords(where.dir);
  if (json) {
    io.out(`${JSON.stringify({ directory: where.dir, records: records.map((r) => publicRecord(where.dir, r)), problems }, null, 2)}\n`);
    return ExitCode.ok;
  }
  for (const p of problems) io.err(`onacc: ${p}\n`);
  if (records.length === 0) {
    io.out(`Quarantine ${where.dir} (from ${where.source}): no files\n`);
    return ExitCode.ok;
  }
  const rows = records.map((r) => [
    r.id,
    r.time.replace("T", " ").replace(/\.\d+Z$/, "Z"),
    String(r.size),
    `${r.uid}:${r.gid}`,
    `0${(r.mode & 0o7777).toString(8).padStart(3, "0")}`,
    recordState(where.dir, r),
    r.signatures.map((s) => displayPath(s)).join(",") || "-",
    displayPath(r.originalPath),
  ]);
  const header = ["ID", "QUARANTINED (UTC)", "SIZE", "OWNER", "MODE", "STATE", "SIGNATURE", "ORIGINAL PATH"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")}\n`;
  io.out(`Quarantine ${where.dir} (from ${where.source}): ${records.length} file(s)\n`);
  io.out(line(header));
  for (const row of rows) io.out(line(row));
  return ExitCode.ok;
}

function _delete(where: _Where, id: string, io: _Io): number {
  const record = readRecord(where.dir, id);
  deleteEntry(where.dir, record);
  io.out(`Deleted ${id} (${displayPath(record.originalPath)}) from ${where.dir}\n`);
  return ExitCode.ok;
}

async function _restore(where: _Where, args: QuarantineArgs, io: _Io): Promise<number> {
  const scan = await _scanner(where);
  const result = restoreFile({ quarantineDir: where.dir, id: args.id!, force: args.force, scan, ...(args.to !== undefined ? { to: args.to } : {}) });
  const r: VaultRecord = result.record;
  io.out(`Restored ${r.id} to '${displayPath(result.path)}' (owner ${r.uid}:${r.gid}, mode 0${(r.mode & 0o7777).toString(8).padStart(3, "0")}): ${result.verdict}\n`);
  for (const w of result.warnings) io.err(`onacc: ${w}\n`);
  return ExitCode.ok;
}

/**
 * Scans through the agent's clamd: its configuration's sockets (or --clamd), each tried in turn until one
 * gives a verdict; fd passing on a unix socket, streaming otherwise. A configuration that cannot be read
 * becomes a scan error, which restore refuses unless --force.
 */
async function _scanner(where: _Where): Promise<(fd: number) => ScanOutcome> {
  const opts = where.agent;
  const file = where.configGiven || opts.configFile !== DEFAULT_CONFIG_FILE || !existsSync(SETUP_CONFIG_FILE) ? opts.configFile : SETUP_CONFIG_FILE;
  let clients: ClamdClient[];
  try {
    const config = loadConfig(file, {}, { endpointsGiven: Boolean(opts.clamd?.length) }).config;
    const endpoints = await Promise.all((opts.clamd?.length ? opts.clamd : config.endpoints).map((e) => resolveEndpoint(e)));
    clients = endpoints.map(
      (endpoint) => new ClamdClient({ endpoint, timeoutMs: Math.max(config.onAccess.timeoutMs, 30_000), retries: config.onAccess.retryAttempts, streamMaxLength: config.streamMaxLength }),
    );
  } catch (err) {
    const message = `cannot reach clamd through "${file}": ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
    return () => ({ ok: false, error: new ClamdError("connect", message), attempts: 0 });
  }
  return (fd) => {
    let last: ScanOutcome = { ok: false, error: new ClamdError("connect", `no clamd endpoint in "${file}"`), attempts: 0 };
    for (const client of clients) {
      last = client.endpoint.kind === "unix" ? client.scanFd(fd) : client.scanStream(fd);
      if (last.ok) return last;
      last = { ...last, error: new ClamdError(last.error.kind, `${describeEndpoint(client.endpoint)}: ${last.error.message}`) };
    }
    return last;
  };
}
