// `onacc status [--json] [--status-socket PATH]`: asks a running onacc over its control socket and prints
// the answer as a table (or as the JSON snapshot itself). Exit 0 when onacc answered, 1 when it did not.
import { resolve } from "node:path";
import { closestName } from "../config/suggest.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { queryStatus } from "../status/client.ts";
import { renderStatusTable } from "../status/format.ts";
import { DEFAULT_STATUS_SOCKET } from "../status/types.ts";

export interface StatusOptions {
  json: boolean;
  socketPath: string;
  help: boolean;
}

const FLAGS: ReadonlyArray<{ long: string; value?: string; description: string }> = [
  { long: "json", description: "Print the status as one JSON object" },
  { long: "status-socket", value: "PATH", description: `onacc's control socket (default ${DEFAULT_STATUS_SOCKET})` },
  { long: "help", description: "Show this help" },
];

export function statusHelpText(): string {
  const width = Math.max(...FLAGS.map((f) => `--${f.long}${f.value ? `=${f.value}` : ""}`.length));
  return [
    "Usage: onacc status [--json] [--status-socket=PATH]",
    "",
    "Shows a running onacc's clamd endpoints and their health, events seen/allowed/denied, scans by mode,",
    "cache hits, queue depth, the oldest pending event, errors by kind and p50/p99 scan latency.",
    "Needs root (the control socket is root-only).",
    "",
    ...FLAGS.map((f) => `  ${`--${f.long}${f.value ? `=${f.value}` : ""}`.padEnd(width)}  ${f.description}`),
    "",
  ].join("\n");
}

/** Parses `onacc status`'s own argv (after "status"). Throws UsageError. */
export function parseStatusArgs(argv: readonly string[], cwd: string = process.cwd()): StatusOptions {
  const out: StatusOptions = { json: false, socketPath: DEFAULT_STATUS_SOCKET, help: false };
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
      else out.help = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "" || (eq < 0 && value.startsWith("-"))) throw new UsageError(`--${name} needs a ${flag.value} value`);
    out.socketPath = resolve(cwd, value);
  }
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
  io.out(opts.json ? `${JSON.stringify(reply.status, null, 2)}\n` : renderStatusTable(reply.status));
  return ExitCode.ok;
}
