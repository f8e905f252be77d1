// `onacc [clamonacc flags]`: load the configuration, wait for clamd if asked, detach unless --foreground,
// start the agent, and handle SIGHUP (reopen logs) and SIGTERM/SIGINT (answer everything, exit 0).
import { writeSync } from "node:fs";
import { ClamdClient, describeEndpoint } from "../clamd/client.ts";
import { loadConfig } from "../config/load.ts";
import type { OnaccConfig } from "../config/types.ts";
import { startAgent } from "../engine/agent.ts";
import { ClamdError, formatProblem } from "../errors.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { detachFromTerminal } from "../../ffi/process.ts";
import { sdNotify, watchdogIntervalMs } from "../service/sdnotify.ts";
import type { RunOptions } from "./options.ts";
import { VERSION } from "../version.ts";

/** Set in the environment of the background copy that a non-foreground start launches. */
const DETACHED_ENV = "ONACC_DETACHED_CHILD";
const READY_LINE = "onacc:ready";

function clientFor(config: OnaccConfig) {
  const endpoint = config.endpoints[0]!;
  return new ClamdClient({
    endpoint,
    timeoutMs: config.onAccess.timeoutMs,
    retries: 0,
    streamMaxLength: config.streamMaxLength,
  });
}

/** --version: clamd's version when reachable (to spot a mismatch), else onacc's own. */
export function versionText(configFile: string): string {
  try {
    const { config } = loadConfig(configFile);
    const v = clientFor(config).version();
    return `onacc ${VERSION} (clamd: ${v})`;
  } catch {
    return `onacc ${VERSION}`;
  }
}

/** --ping=N[:I] / --wait: try clamd up to N times, I seconds apart. */
async function waitForClamd(config: OnaccConfig, ping: { attempts: number; intervalSec: number }, log: Logger): Promise<void> {
  const client = clientFor(config);
  let last: unknown;
  for (let i = 1; i <= ping.attempts; i++) {
    try {
      client.ping();
      log.verbose(`clamd answered PING (attempt ${i} of ${ping.attempts})`);
      return;
    } catch (err) {
      last = err;
      if (i < ping.attempts) await Bun.sleep(ping.intervalSec * 1000);
    }
  }
  throw new ClamdError(
    "connect",
    `clamd at ${describeEndpoint(config.endpoints[0]!)} did not answer PING after ${ping.attempts} attempt(s): ${last instanceof Error ? last.message : String(last)}`,
  );
}

export async function runAgent(opts: RunOptions, argv: string[]): Promise<number> {
  const detachedChild = process.env[DETACHED_ENV] === "1";
  const { config, warnings } = loadConfig(opts.configFile, { watchList: opts.watchList, excludeList: opts.excludeList });
  const log = createLogger({ logFile: opts.logFile, foreground: opts.foreground, verbose: opts.verbose });
  for (const w of warnings) log.verbose(formatProblem(w));

  if (opts.ping) await waitForClamd(config, opts.ping, log);

  if (!opts.foreground && !detachedChild) {
    // Everything that can fail has been checked where the user can see it; the background copy repeats the
    // start and reports "ready" or its error through a pipe before this process exits.
    clientFor(config).ping();
    log.close();
    return await launchDetached(argv);
  }

  const agent = await startAgent(config, opts, log);
  // Under systemd (Type=notify): ready once the marks are placed; the watchdog is fed only while the
  // agent keeps up, so a wedged agent gets restarted instead of leaving opens waiting.
  sdNotify(`READY=1\nSTATUS=protecting ${config.onAccess.includePaths.length + config.onAccess.mountPaths.length} path(s)`);
  const watchdogMs = watchdogIntervalMs();
  const feeder = watchdogMs ? setInterval(() => agent.healthy() && sdNotify("WATCHDOG=1"), watchdogMs) : undefined;
  log.info(`onacc ${VERSION} protecting ${config.onAccess.includePaths.length + config.onAccess.mountPaths.length} path(s) (pid ${process.pid})`);
  if (detachedChild) {
    writeSync(1, `${READY_LINE}\n`);
    detachFromTerminal();
  }

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.verbose(`${signal}: stopping`);
      sdNotify("STOPPING=1");
      clearInterval(feeder);
      await agent.stop();
      if (opts.verbose) log.verbose(`counters: ${JSON.stringify(agent.counters())}`);
      log.close();
      resolve(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.reopen();
      agent.reopenLogs();
    });
    process.on("SIGUSR2", () => agent.flushCaches("SIGUSR2"));
  });
}

/** Starts the background copy and waits for its ready line or its failure. */
async function launchDetached(argv: string[]): Promise<number> {
  const compiled = Bun.main.startsWith("/$bunfs/");
  const cmd = compiled ? [process.execPath, ...argv] : [process.execPath, Bun.main, ...argv];
  const child = Bun.spawn(cmd, {
    env: { ...process.env, [DETACHED_ENV]: "1" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  // Read until the ready line rather than to EOF: the background copy's threads may keep a duplicate of
  // its stdout after it points fds 0-2 at /dev/null.
  let out = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      if (out.includes(READY_LINE)) break;
    }
  } catch {
    /* the child went away: its stderr says why */
  }
  if (out.includes(READY_LINE)) {
    child.unref();
    return 0;
  }
  const err = await new Response(child.stderr).text().catch(() => "");
  const code = await child.exited;
  process.stderr.write(err || `onacc: the background process exited with ${code} before it was ready\n`);
  return code || 1;
}

/** -p/--ping without --wait: clamonacc's "is clamd up?" check. Exit 0 on PONG, 1 when it never answers. */
export async function pingClamd(opts: RunOptions): Promise<number> {
  const { config } = loadConfig(opts.configFile);
  const log = createLogger({ foreground: true, verbose: opts.verbose });
  try {
    await waitForClamd(config, opts.ping!, log);
    log.info(`clamd at ${describeEndpoint(config.endpoints[0]!)} answered PONG`);
    return 0;
  } catch (err) {
    log.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
}
