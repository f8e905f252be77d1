// `onacc [clamonacc flags]`: load the configuration, wait for clamd if asked, detach unless --foreground,
// start the agent, and handle SIGHUP (reopen logs) and SIGTERM/SIGINT (answer everything, exit 0).
import { writeSync } from "node:fs";
import { startQuarantineUpkeep } from "../actions/retention.ts";
import { describeEndpoint, resolveEndpoint } from "../clamd/address.ts";
import { ClamdClient } from "../clamd/client.ts";
import { loadConfig, type LoadOptions } from "../config/load.ts";
import type { ClamdEndpoint, OnaccConfig } from "../config/types.ts";
import { logSettingsOf } from "../engine/plan.ts";
import { startAgent, type Agent } from "../engine/runtime.ts";
import { buildStatusSnapshot } from "../status/snapshot.ts";
import { startStatusServer, type StatusServer } from "../status/server.ts";
import type { ReloadOutcome, StatusSource } from "../status/types.ts";
import { ClamdError, formatProblem } from "../errors.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { detachFromTerminal } from "../../ffi/process.ts";
import { sdNotify, watchdogIntervalMs } from "../service/sdnotify.ts";
import type { RunOptions } from "./options.ts";
import { VERSION } from "../version.ts";

/** Status-socket flush requests are honoured at most this often. */
const REMOTE_FLUSH_INTERVAL_MS = 10_000;

/** Set in the environment of the background copy that a non-foreground start launches. */
const DETACHED_ENV = "ONACC_DETACHED_CHILD";
const READY_LINE = "onacc:ready";

function clientFor(config: OnaccConfig, endpoint: ClamdEndpoint) {
  return new ClamdClient({ endpoint, timeoutMs: config.onAccess.timeoutMs, retries: 0, streamMaxLength: config.streamMaxLength });
}

/** PING every endpoint in turn; returns the first that answers, or throws naming why each did not. */
function pingAny(config: OnaccConfig): ClamdEndpoint {
  const why: string[] = [];
  for (const e of config.endpoints) {
    try {
      clientFor(config, e).ping();
      return e;
    } catch (err) {
      why.push(err instanceof Error ? err.message : String(err));
    }
  }
  throw new ClamdError("connect", why.join("; ") || "no clamd endpoint configured");
}

/** --version: clamd's version when reachable (to spot a mismatch), else onacc's own. */
export async function versionText(opts: RunOptions): Promise<string> {
  try {
    const config = await withEndpoints(loadConfig(opts.configFile, {}, loadOptionsOf(opts)).config, opts);
    return `onacc ${VERSION} (clamd: ${clientFor(config, pingAny(config)).version()})`;
  } catch {
    return `onacc ${VERSION}`;
  }
}

/** --ping=N[:I] / --wait: try clamd up to N times, I seconds apart, until one endpoint answers. */
async function waitForClamd(config: OnaccConfig, ping: { attempts: number; intervalSec: number }, log: Logger): Promise<ClamdEndpoint> {
  let last: unknown;
  for (let i = 1; i <= ping.attempts; i++) {
    try {
      const e = pingAny(config);
      log.verbose(`clamd at ${describeEndpoint(e)} answered PING (attempt ${i} of ${ping.attempts})`);
      return e;
    } catch (err) {
      last = err;
      if (i < ping.attempts) await Bun.sleep(ping.intervalSec * 1000);
    }
  }
  throw new ClamdError("connect", `clamd did not answer PING after ${ping.attempts} attempt(s): ${last instanceof Error ? last.message : String(last)}`);
}

/** How the command line shapes reading the configuration: endpoints from --clamd, the --config-dir drop-ins. */
function protectedCount(config: OnaccConfig): number {
  return config.onAccess.includePaths.length + config.onAccess.mountPaths.length;
}

function loadOptionsOf(opts: RunOptions): LoadOptions {
  return { endpointsGiven: Boolean(opts.clamd?.length), ...(opts.configDir !== undefined ? { configDir: opts.configDir } : {}) };
}

/** The configuration with --clamd endpoints (when given) in place of the file's, host names resolved once. */
async function withEndpoints(config: OnaccConfig, opts: RunOptions): Promise<OnaccConfig> {
  const endpoints = await Promise.all((opts.clamd?.length ? opts.clamd : config.endpoints).map((e) => resolveEndpoint(e)));
  return { ...config, endpoints };
}

export async function runAgent(opts: RunOptions, argv: string[]): Promise<number> {
  const detachedChild = process.env[DETACHED_ENV] === "1";
  const loaded = loadConfig(opts.configFile, { watchList: opts.watchList, excludeList: opts.excludeList }, loadOptionsOf(opts));
  let config = await withEndpoints(loaded.config, opts);
  const log = createLogger(logSettingsOf(opts));
  for (const w of loaded.warnings) log.verbose(formatProblem(w));
  for (const n of loaded.notices) log.warn(formatProblem(n));

  if (opts.ping) await waitForClamd(config, opts.ping, log);

  if (!opts.foreground && !detachedChild) {
    // Everything that can fail has been checked where the user can see it; the background copy repeats the
    // start and reports "ready" or its error through a pipe before this process exits.
    pingAny(config);
    log.close();
    return await launchDetached(argv);
  }

  // Signals are taken from here on, before the agent exists: a SIGHUP from logrotate or a SIGTERM during
  // start-up must not kill onacc with the default action. They act once the agent is up.
  let agent: Agent | undefined;
  let pendingStop: { why: string; code: number } | undefined;
  const requestStop = (why: string, code: number) => {
    pendingStop ??= { why, code };
    if (agent) void stopAll(pendingStop.why, pendingStop.code);
  };
  let stopping = false;
  let feeder: ReturnType<typeof setInterval> | undefined;
  let upkeep: { stop(): void } | undefined;
  let status: StatusServer | undefined;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (resolveExit = r));
  const stopAll = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    if (code === 0) log.verbose(`${why}: stopping`);
    else log.error(`${why}: answering every pending open and exiting`);
    sdNotify("STOPPING=1");
    clearInterval(feeder);
    upkeep?.stop();
    await reloading;
    await status?.stop();
    await agent?.stop();
    if (opts.verbose && agent) log.verbose(`counters: ${JSON.stringify(agent.counters())}`);
    log.close();
    resolveExit(code);
  };
  process.on("SIGTERM", () => requestStop("SIGTERM", 0));
  process.on("SIGINT", () => requestStop("SIGINT", 0));
  // SIGHUP (logrotate, `systemctl reload`): reopen the logs, then read the configuration again.
  let reloading: Promise<void> | undefined;
  let lastReload: ReloadOutcome | undefined;
  const reload = (why: string) => {
    reloading ??= reloadAgent(why).finally(() => (reloading = undefined));
    return reloading;
  };
  const reloadAgent = async (why: string) => {
    if (!agent || stopping) return;
    let next: Agent;
    let nextConfig: OnaccConfig;
    try {
      // Everything is checked before anything changes: a bad file keeps the running engine as it is.
      const again = loadConfig(opts.configFile, { watchList: opts.watchList, excludeList: opts.excludeList }, loadOptionsOf(opts));
      nextConfig = await withEndpoints(again.config, opts);
      for (const n of again.notices) log.warn(formatProblem(n));
      // The new engine protects before the old one lets go: for a moment both have their marks.
      next = await startAgent(nextConfig, opts, log, (reason) => requestStop(reason, 1), agent.carried());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      lastReload = { at: new Date().toISOString(), ok: false, message };
      log.error(`reload (${why}) refused, the running configuration stays in force: ${message}`);
      return;
    }
    const old = agent;
    agent = next;
    config = nextConfig;
    upkeep?.stop();
    upkeep = startQuarantineUpkeep(opts.action, config.onaccOnly.quarantineRetentionSec * 1000, log);
    await old.retire();
    if (stopping) await next.stop();
    lastReload = { at: new Date().toISOString(), ok: true, message: `protecting ${protectedCount(config)} path(s)` };
    log.info(`configuration reloaded (${why}): protecting ${protectedCount(config)} path(s)`);
  };
  process.on("SIGHUP", () => {
    log.reopen();
    agent?.reopenLogs();
    void reload("SIGHUP");
  });
  process.on("SIGUSR2", () => agent?.flushCaches("SIGUSR2"));

  agent = await startAgent(config, opts, log, (reason) => requestStop(reason, 1));
  status = await startStatus(() => agent!, opts, log, () => lastReload);
  upkeep = startQuarantineUpkeep(opts.action, config.onaccOnly.quarantineRetentionSec * 1000, log);
  // Under systemd (Type=notify): ready once the marks are placed; the watchdog is fed only while the
  // agent keeps up, so a wedged agent gets restarted instead of leaving opens waiting.
  sdNotify(`READY=1\nSTATUS=protecting ${config.onAccess.includePaths.length + config.onAccess.mountPaths.length} path(s)`);
  const watchdogMs = watchdogIntervalMs();
  if (watchdogMs) feeder = setInterval(() => agent?.healthy() && sdNotify("WATCHDOG=1"), watchdogMs);
  log.info(`onacc ${VERSION} protecting ${config.onAccess.includePaths.length + config.onAccess.mountPaths.length} path(s) (pid ${process.pid})`);
  if (detachedChild) {
    writeSync(1, `${READY_LINE}\n`);
    detachFromTerminal();
  }
  if (pendingStop) void stopAll(pendingStop.why, pendingStop.code);
  return await exited;
}

/**
 * The status socket (`onacc status`) and optional Prometheus endpoint. Auxiliary: a failure to start it is
 * a warning, and protection goes on.
 */
async function startStatus(current: () => Agent, opts: RunOptions, log: Logger, lastReload: () => ReloadOutcome | undefined): Promise<StatusServer | undefined> {
  if (opts.statusSocket === null && !opts.metricsListen) return undefined;
  const startedAtMs = Date.now();
  let lastRemoteFlush = 0;
  const source: StatusSource = {
    snapshot: () =>
      buildStatusSnapshot({
        version: VERSION,
        pid: process.pid,
        startedAtMs,
        counters: current().counters(),
        queueDepth: current().queueDepth(),
        oldestPendingMs: current().oldestPendingMs(),
        endpoints: current().health(),
        pool: current().poolCounters(),
        latency: current().latency(),
        logWriteFailures: log.writeFailures,
        ...current().ops.status(), // onacc ops (issue 14): protected trees, exclusion counts, top talkers
        reload: lastReload(),
      }),
    // onacc ops (issue 14): `onacc status --check`. One service across reloads (the engines hand it on).
    selfTest: {
      begin: () => current().ops.selfTest.begin(),
      probe: (nonce, path) => current().ops.selfTest.probe(nonce, path),
      end: (nonce) => current().ops.selfTest.end(nonce),
    },
    // A flush re-walks the protected trees on the main thread: a client asking in a loop gets one per 10 s.
    flushCaches: (reason) => {
      const now = Date.now();
      if (now - lastRemoteFlush < REMOTE_FLUSH_INTERVAL_MS) {
        log.warn(`flush-cache request ignored: the last one was ${Math.round((now - lastRemoteFlush) / 1000)} s ago`);
        return;
      }
      lastRemoteFlush = now;
      current().flushCaches(reason);
    },
  };
  try {
    const server = await startStatusServer({ socketPath: opts.statusSocket, source, metrics: opts.metricsListen, log });
    log.verbose(`status socket ${server.socketPath ?? "off"}${server.metricsUrl ? `, metrics at ${server.metricsUrl}` : ""}`);
    return server;
  } catch (err) {
    log.warn(`status interface not started: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
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
  const config = await withEndpoints(loadConfig(opts.configFile, {}, loadOptionsOf(opts)).config, opts);
  const log = createLogger({ foreground: true, verbose: opts.verbose });
  try {
    const e = await waitForClamd(config, opts.ping!, log);
    log.info(`clamd at ${describeEndpoint(e)} answered PONG`);
    return 0;
  } catch (err) {
    log.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
}
