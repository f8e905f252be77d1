// `onacc status [--json] [--top] [--check] [--status-socket PATH]`: asks a running onacc over its control
// socket and prints the answer as a table (or as the JSON snapshot itself); --top adds the top talkers,
// --check runs the self-test (src/status/check.ts). Exit 0 when onacc answered (and the check passed), 1 otherwise.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { closestName } from "../config/suggest.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { renderCheck, runCheck } from "../status/check.ts";
import { queryStatus } from "../status/client.ts";
import { renderStatusTable, renderTopTalkers } from "../status/format.ts";
import { DEFAULT_STATUS_SOCKET } from "../status/types.ts";

/** onacc setup's configuration file: the trees --check names when the agent does not answer. */
const SETUP_CONFIG = "/etc/onacc/onacc.conf";

export interface StatusOptions {
  json: boolean;
  top: boolean;
  check: boolean;
  socketPath: string;
  /** --config-file: where --check finds the trees to name when onacc does not answer. */
  configFile?: string;
  help: boolean;
}

const FLAGS: ReadonlyArray<{ long: string; value?: string; description: string }> = [
  { long: "json", description: "Print the status (or the check's findings) as one JSON object" },
  { long: "top", description: "Also show which executables and directories caused the scans of the last minutes" },
  { long: "check", description: "Self-test: open a fresh test file in each protected tree; exit 1 unless every open is blocked and clamd is up" },
  { long: "status-socket", value: "PATH", description: `onacc's control socket (default ${DEFAULT_STATUS_SOCKET})` },
  { long: "config-file", value: "FILE", description: `with --check: the configuration whose trees to name when onacc does not answer (default ${SETUP_CONFIG} when it exists)` },
  { long: "help", description: "Show this help" },
];

export function statusHelpText(): string {
  const width = Math.max(...FLAGS.map((f) => `--${f.long}${f.value ? `=${f.value}` : ""}`.length));
  return [
    "Usage: onacc status [--json] [--top] [--check] [--status-socket=PATH]",
    "",
    "Shows a running onacc's clamd endpoints and their health, events seen/allowed/denied, scans by mode,",
    "cache hits, queue depth, the oldest pending event, errors by kind, p50/p99 scan latency, the protected",
    "trees and what each ExcludeExe/ExcludePattern rule skipped. Needs root (the control socket is root-only).",
    "",
    ...FLAGS.map((f) => `  ${`--${f.long}${f.value ? `=${f.value}` : ""}`.padEnd(width)}  ${f.description}`),
    "",
  ].join("\n");
}

/** Parses `onacc status`'s own argv (after "status"). Throws UsageError. */
export function parseStatusArgs(argv: readonly string[], cwd: string = process.cwd()): StatusOptions {
  const out: StatusOptions = { json: false, top: false, check: false, socketPath: DEFAULT_STATUS_SOCKET, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") {
      out.help = true;
      continue;
    }
    if (!arg.startsWith("--")) throw new UsageError(`Unexpected argument "${arg}" for onacc status (see onacc status --help)`);
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const flag = FLAGS.find((f) => f.long === name);
    if (!flag) {
      const suggestion = closestName(name, FLAGS.map((f) => f.long));
      throw new UsageError(`Unknown option "--${name}" for onacc status${suggestion ? `: did you mean --${suggestion}?` : ""}`);
    }
    if (flag.value === undefined) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      if (name === "json") out.json = true;
      else if (name === "top") out.top = true;
      else if (name === "check") out.check = true;
      else out.help = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "" || (eq < 0 && value.startsWith("-"))) throw new UsageError(`--${name} needs a ${flag.value} value`);
    if (name === "config-file") out.configFile = resolve(cwd, value);
    else out.socketPath = resolve(cwd, value);
  }
  if (out.check && out.top) throw new UsageError("--check and --top are separate: run onacc status --check, or onacc status --top");
  if (out.configFile !== undefined && !out.check) throw new UsageError("--config-file is used by --check only");
  return out;
}

/** Runs `onacc status`; writes to `out` (stdout) and `err` (stderr); returns the exit code. */
export async function runStatus(
  argv: readonly string[],
  io: { out: (text: string) => void; err: (text: string) => void } = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
  },
): Promise<number> {
  const opts = parseStatusArgs(argv);
  if (opts.help) {
    io.out(statusHelpText());
    return ExitCode.ok;
  }
  if (opts.check) return await _check(opts, io);
  let reply;
  try {
    reply = await queryStatus(opts.socketPath, { cmd: "status" });
  } catch (e) {
    io.err(`onacc: ${(e as Error).message}\n`);
    return ExitCode.runtime;
  }
  if (!reply.ok || !("status" in reply)) {
    io.err(`onacc: the status socket "${opts.socketPath}" answered: ${reply.ok ? "no status" : reply.error}\n`);
    return ExitCode.runtime;
  }
  if (opts.json) io.out(`${JSON.stringify(reply.status, null, 2)}\n`);
  else if (!opts.top) io.out(renderStatusTable(reply.status));
  else io.out(`${renderStatusTable(reply.status)}\n${reply.status.top ? renderTopTalkers(reply.status.top) : "this onacc reports no top talkers\n"}`);
  return ExitCode.ok;
}

async function _check(opts: StatusOptions, io: { out: (text: string) => void }): Promise<number> {
  const configFile = opts.configFile ?? (existsSync(SETUP_CONFIG) ? SETUP_CONFIG : undefined);
  const { loadConfig } = await import("../config/load.ts");
  const result = await runCheck({
    socketPath: opts.socketPath,
    configuredTrees: configFile
      ? () => {
          const oa = loadConfig(configFile).config.onAccess;
          return [...oa.includePaths, ...oa.mountPaths];
        }
      : undefined,
  });
  io.out(opts.json ? `${JSON.stringify(result, null, 2)}\n` : renderCheck(result));
  return result.ok ? ExitCode.ok : ExitCode.runtime;
}
