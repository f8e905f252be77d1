// `onacc reload [--status-socket PATH]`: tells a running onacc to read its configuration again (as
// SIGHUP and `systemctl reload` do) and says what became of it: applied, or refused with the reason (the
// running configuration then stays in force). Exit 0 when applied, 1 otherwise.
import { resolve } from "node:path";
import { ExitCode, UsageError } from "../errors.ts";
import { queryStatus } from "../status/client.ts";
import { DEFAULT_STATUS_SOCKET, type StatusSnapshot } from "../status/types.ts";

const WAIT_MS = 60_000;

export function parseReloadArgs(argv: readonly string[], cwd: string = process.cwd()): { socketPath: string; help: boolean } {
  const out = { socketPath: DEFAULT_STATUS_SOCKET, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") out.help = true;
    else if (arg.startsWith("--status-socket=")) out.socketPath = resolve(cwd, arg.slice("--status-socket=".length));
    else if (arg === "--status-socket" && argv[i + 1] !== undefined) out.socketPath = resolve(cwd, argv[++i]!);
    else throw new UsageError(`Unexpected argument "${arg}" for onacc reload (usage: onacc reload [--status-socket=PATH])`);
  }
  return out;
}

async function snapshot(socketPath: string): Promise<StatusSnapshot> {
  const reply = await queryStatus(socketPath, { cmd: "status" });
  if (!reply.ok || !("status" in reply)) throw new Error(`the status socket "${socketPath}" answered: ${reply.ok ? "no status" : reply.error}`);
  return reply.status;
}

export async function runReload(argv: readonly string[]): Promise<number> {
  const opts = parseReloadArgs(argv);
  if (opts.help) {
    process.stdout.write("Usage: onacc reload [--status-socket=PATH]\n\nRe-reads the running onacc's configuration; a bad one is refused and the running one stays.\n");
    return ExitCode.ok;
  }
  try {
    const before = await snapshot(opts.socketPath);
    process.kill(before.pid, "SIGHUP");
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      await Bun.sleep(100);
      const now = await snapshot(opts.socketPath);
      if (now.reload && now.reload.at !== before.reload?.at) {
        process.stdout.write(`onacc (pid ${now.pid}): configuration ${now.reload.ok ? "reloaded" : "NOT reloaded"}: ${now.reload.message}\n`);
        return now.reload.ok ? ExitCode.ok : ExitCode.runtime;
      }
      if (Date.now() > deadline) throw new Error(`onacc (pid ${now.pid}) did not report a reload within ${WAIT_MS / 1000} s`);
    }
  } catch (err) {
    process.stderr.write(`onacc: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.runtime;
  }
}
