// The agent: turns a configuration into running protection. Creates the fanotify group, starts the reader
// and scanner Workers, places the marks, runs the watchdog, and shuts everything down cleanly.
import { statSync } from "node:fs";
import { ClamdClient, describeEndpoint } from "../clamd/client.ts";
import { createPoolSettings, poolHealth, startHealthChecks, type EndpointHealth, type PoolCounters } from "../clamd/pool.ts";
import { LatencyHistogram, type HistogramSnapshot } from "../status/histogram.ts";
import type { ScanMode } from "../clamd/types.ts";
import type { RunOptions } from "../cli/options.ts";
import type { ClamdEndpoint, OnaccConfig } from "../config/types.ts";
import { ClamdError, OnaccError, UsageError } from "../errors.ts";
import type { LogSettings, Logger } from "../log/logger.ts";
import {
  FAN_ALLOW,
  FAN_CLASS_CONTENT,
  FAN_CLASS_NOTIF,
  FAN_CLOEXEC,
  FAN_CLOSE_WRITE,
  FAN_NONBLOCK,
  FAN_OPEN,
  FAN_OPEN_PERM,
  FAN_UNLIMITED_MARKS,
  FAN_UNLIMITED_QUEUE,
  O_CLOEXEC,
  O_RDONLY,
  fanotifyInit,
} from "../../ffi/fanotify.ts";
import { retireFd } from "../../ffi/fs.ts";
import { libc, monotonicMs } from "../../ffi/libc.ts";
import { WakeFd } from "../../ffi/poll.ts";
import { getpid, ignoreLeaseBreaks, raiseNofileLimit, uidOfUser } from "../../ffi/process.ts";
import { pidListeningOn } from "../clamd/local-clamd.ts";
import { TrustedProcesses, identify, type ProcessIdentity } from "./trusted-processes.ts";
import { VerdictCache } from "./cache.ts";
import { Invalidation } from "./invalidation.ts";
import { flushKernelCache } from "./kernel-cache.ts";
import { isUnder, placeMarks, type MarkReport } from "./marks.ts";
import { errorResponse } from "./policy.ts";
import { EventRing, type CounterName } from "./ring.ts";
import type { EngineSettings, WorkerMessage } from "./settings.ts";
import { DIRWATCH_WORKER, READER_WORKER, SCANNER_WORKER } from "../worker-entries.ts";
import type { DddSettings } from "./ddd.ts";
import { Watchdog } from "./watchdog.ts";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
/** Slack on top of OnAccessCurlTimeout × attempts before the watchdog answers for a scan. */
const DEADLINE_MARGIN_MS = 1000;
const WATCHDOG_INTERVAL_MS = 100;
/** Longest wait between health PINGs to a clamd that is down. */
const HEALTH_BACKOFF_MAX_MS = 5000;
/** Event fds kept free for everything else the process opens (sockets, log files, quarantine copies). */
const FD_RESERVE = 1024;
const READ_BATCH_FDS = 2800; // one 64 KiB read() can hand over this many event fds

export interface Agent {
  readonly settings: EngineSettings;
  readonly marks: MarkReport;
  counters(): Record<CounterName, number>;
  queueDepth(): number;
  oldestPendingMs(): number;
  /** SIGHUP: every thread reopens its log file. */
  reopenLogs(): void;
  /** SIGUSR2: forget every cached verdict now. */
  flushCaches(reason: string): void;
  /** Each clamd endpoint: up or down, in-flight scans, last error. */
  health(): EndpointHealth[];
  poolCounters(): PoolCounters;
  latency(): HistogramSnapshot;
  /**
   * True while the agent keeps up: no permission event is older than its deadline, or scans are still
   * finishing. The systemd watchdog is fed only while this holds.
   */
  healthy(): boolean;
  /** Answers every pending event, closes the group, stops the Workers. */
  stop(): Promise<void>;
}

/** Picks how file contents reach clamd (see README "Scan modes"). */
export function chooseScanMode(opts: RunOptions, endpoints: ClamdEndpoint[], log: Logger): ScanMode {
  const anyUnix = endpoints.some((e) => e.kind === "unix");
  const allUnix = endpoints.every((e) => e.kind === "unix");
  if (opts.scanMode === "fdpass" && !anyUnix) {
    throw new UsageError(`--fdpass needs clamd on a LocalSocket; ${endpoints.map(describeEndpoint).join(", ")} ${endpoints.length > 1 ? "are" : "is"} not (use --stream)`);
  }
  // fd passing where a LocalSocket is at hand; the pool streams to TCP and TLS endpoints by itself.
  const base: ScanMode = opts.scanMode === "auto" ? (anyUnix ? "fdpass" : "stream") : opts.scanMode;
  if (!opts.allmatch) return base;
  // clamd offers all-match only as ALLMATCHSCAN by path, which only a clamd on this host can open (its
  // own opens are excluded, so it never waits on onacc). Streaming has no all-match form.
  if (base === "stream" || !allUnix) {
    log.warn("--allmatch has no effect here: clamd reports all matches only for files it opens by path itself, on this host");
    return base;
  }
  return "path";
}

/** The logger settings every thread builds its own Logger from. */
export function logSettingsOf(opts: RunOptions): LogSettings {
  return { logFile: opts.logFile, foreground: opts.foreground, verbose: opts.verbose, format: opts.logFormat, maxSize: opts.logMaxSize, keep: opts.logKeep };
}

/** The include paths that can be watched: existing directories outside the excluded trees. */
function usableIncludePaths(paths: string[], excluded: string[], log: Logger): string[] {
  return paths.filter((p) => {
    if (isUnder(p, excluded)) {
      log.warn(`include path "${p}" lies inside an excluded path: not watched`);
      return false;
    }
    try {
      if (statSync(p).isDirectory()) return true;
      log.warn(`include path "${p}" is not a directory: not watched`);
    } catch (err) {
      log.warn(`include path "${p}" cannot be watched: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return false;
  });
}

function ringCapacity(): number {
  const limit = raiseNofileLimit();
  const room = Math.max(64, limit - FD_RESERVE - READ_BATCH_FDS);
  let cap = 64;
  while (cap * 2 <= Math.min(room, 4096)) cap *= 2;
  return cap;
}

/**
 * `onFailure` is called when a Worker ends while the agent runs (a bug): the caller stops the agent, which
 * answers everything pending, and exits non-zero so the service manager restarts it.
 */
export async function startAgent(config: OnaccConfig, opts: RunOptions, log: Logger, onFailure?: (reason: string) => void): Promise<Agent> {
  const oa = config.onAccess;
  const endpoints = config.endpoints;
  if (endpoints.length === 0) throw new OnaccError("E_CONFIG", `${config.file}: no clamd endpoint (set LocalSocket or TCPSocket/TCPAddr, or pass --clamd)`);
  if (oa.includePaths.length === 0 && oa.mountPaths.length === 0) {
    throw new OnaccError("E_CONFIG", `${config.file}: nothing to watch (set OnAccessIncludePath or OnAccessMountPath, or pass --watch-list)`);
  }
  const mode = chooseScanMode(opts, endpoints, log);

  // At least one clamd must answer. Every clamd on this host (its socket's peer, or its loopback TCP
  // listener) and clamd's User are never scanned, so clamd opening a file can never wait on onacc — the
  // deadlock a root clamd causes in clamonacc. A PID onacc cannot see (0) is no identity.
  const clamdProcesses: ProcessIdentity[] = [];
  const clamdUid = config.clamdUser ? uidOfUser(config.clamdUser) : undefined;
  const trustedUids = clamdUid === undefined ? [0] : [0, clamdUid];
  const failures: string[] = [];
  for (const e of endpoints) {
    const probe = new ClamdClient({ endpoint: e, timeoutMs: oa.timeoutMs, retries: oa.retryAttempts, streamMaxLength: config.streamMaxLength });
    try {
      probe.ping();
      const pid = e.kind === "unix" ? probe.peerPid() : e.kind === "tcp" && LOOPBACK.has(e.host) ? pidListeningOn(e.port, trustedUids) : undefined;
      const id = identify(pid);
      if (id && !clamdProcesses.some((p) => p.pid === id.pid)) clamdProcesses.push(id);
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (failures.length === endpoints.length) throw new ClamdError("connect", failures.join("; "));
  for (const f of failures) log.warn(`${f}; retrying it in the background`);
  const trusted = TrustedProcesses.create();
  trusted.set(clamdProcesses);
  ignoreLeaseBreaks();
  const excludeUids = new Set(oa.excludeUids);
  if (oa.excludeRootUid) excludeUids.add(0);
  const clamdLocal = endpoints.some((e) => e.kind === "unix" || LOOPBACK.has(e.host));
  if (config.clamdUser && clamdLocal) {
    const uid = clamdUid;
    if (uid !== undefined && uid !== 0) excludeUids.add(uid);
    // A root clamd is excluded by PID only: excluding uid 0 would leave every root process unscanned.
  }
  for (const name of oa.excludeUnames) {
    const uid = uidOfUser(name);
    if (uid === undefined) log.warn(`OnAccessExcludeUname "${name}": no such user, ignored`);
    else excludeUids.add(uid);
  }

  // One full failover (a try on a second clamd) must fit before the watchdog answers for the scan.
  const deadlineMs = oa.timeoutMs * (oa.retryAttempts + 1) * Math.min(endpoints.length, 2) + DEADLINE_MARGIN_MS;
  const pool = createPoolSettings({
    endpoints,
    timeoutMs: oa.timeoutMs,
    retries: oa.retryAttempts,
    streamMaxLength: config.streamMaxLength,
    deadlineMs: deadlineMs - DEADLINE_MARGIN_MS / 2,
    // A clamd that comes back is noticed within this: until then the error policy answers for it.
    backoffMaxMs: HEALTH_BACKOFF_MAX_MS,
  });
  const latency = LatencyHistogram.create();

  const prevention = oa.prevention;
  const group = fanotifyInit(
    (prevention ? FAN_CLASS_CONTENT : FAN_CLASS_NOTIF) | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS,
    O_RDONLY | O_CLOEXEC,
  );
  const ring = EventRing.create(ringCapacity());
  const userCache = opts.cacheSize > 0 ? VerdictCache.create(opts.cacheSize) : undefined;
  const wake = new WakeFd();
  const settings: EngineSettings = {
    group,
    readerWakeFd: wake.fd,
    ring: ring.buffers,
    ownPid: getpid(),
    prevention,
    denyOnError: oa.denyOnError,
    maxFileSize: oa.maxFileSize,
    exclusions: { uids: [...excludeUids], paths: oa.excludePaths, watched: [...oa.includePaths, ...oa.mountPaths] },
    clamdProcesses: trusted.sab,
    checkPathsInReader: oa.mountPaths.length > 0,
    scan: { mode, allmatch: opts.allmatch, pool, latency: latency.buffer },
    cache: { user: userCache?.buffers, kernel: opts.kernelCache, ignoreMask: prevention ? FAN_OPEN_PERM : FAN_OPEN },
    action: opts.action,
    copiedFiles: opts.action.kind === "copy" ? VerdictCache.create(4096).buffers : undefined,
    log: logSettingsOf(opts),
  };

  const workers: Worker[] = [];
  let running = false; // true between start-up and stop(): a Worker ending then is a failure
  const onMessage = (m: WorkerMessage) => {
    if (m.type === "log") log[m.level](m.message);
    else if (m.type === "fatal") log.error(`${m.worker} stopped: ${m.message}`);
  };
  const spawn = (url: URL, data: object, name: string) =>
    new Promise<string | undefined>((resolve, reject) => {
      // smol: a smaller JS heap per Worker; these threads hold almost nothing on it.
      const w = new Worker(url, { name, smol: true } as WorkerOptions);
      workers.push(w);
      let ready = false;
      w.onmessage = (e: MessageEvent<WorkerMessage>) => {
        if (e.data.type === "ready" && !ready) {
          ready = true;
          resolve(e.data.detail);
        } else if (e.data.type === "fatal" && !ready) reject(new OnaccError("E_RUNTIME", `${name} failed to start: ${e.data.message}`));
        else onMessage(e.data);
      };
      w.onerror = (e) => {
        log.error(`${name}: ${e.message}`);
        if (!ready) reject(new OnaccError("E_RUNTIME", `${name} failed to start: ${e.message}`));
      };
      // A thread that ends while the agent runs leaves events unread or unscanned: fail loudly (see onFailure).
      w.addEventListener("close", () => {
        if (running) onFailure?.(`${name} stopped unexpectedly`);
      });
      w.postMessage(data);
    });

  try {
    await spawn(READER_WORKER, { settings }, "reader");
    await Promise.all(
      Array.from({ length: oa.maxThreads }, (_, i) => spawn(SCANNER_WORKER, { settings, index: i }, `scanner-${i}`)),
    );
  } catch (err) {
    ring.stop();
    wake.wake();
    for (const w of workers) w.terminate();
    libc.close(group);
    throw err;
  }

  const mask = prevention ? FAN_OPEN_PERM : FAN_OPEN | FAN_CLOSE_WRITE;
  // Include paths are marked by the directory watcher's walk when it runs (one walk, and new folders are
  // marked as they appear); otherwise by placeMarks' walk. Mount paths always by placeMarks.
  const includes = usableIncludePaths(oa.includePaths, oa.excludePaths, log);
  const useWatcher = includes.length > 0 && (!oa.disableDDD || oa.extraScanning);
  const dirWake = useWatcher ? new WakeFd() : undefined;
  let watcherDirs = 0;
  let unwatched: string[] = [];
  if (useWatcher) {
    const ddd: DddSettings = {
      follow: !oa.disableDDD,
      extraScanning: oa.extraScanning,
      includePaths: includes,
      excludePaths: oa.excludePaths,
      markMask: mask,
      wakeFd: dirWake!.fd,
    };
    const report = JSON.parse((await spawn(DIRWATCH_WORKER, { settings, ddd }, "dirwatch")) ?? "{}") as { dirs?: number; unwatched?: string[] };
    watcherDirs = report.dirs ?? 0;
    unwatched = report.unwatched ?? [];
    for (const p of unwatched) log.warn(`new folders under "${p}" are not followed (the directory watcher cannot take it); its existing folders are protected`);
  }
  const marks = placeMarks(group, mask, { mountPaths: oa.mountPaths, includePaths: useWatcher ? unwatched : includes, excludePaths: oa.excludePaths });
  marks.directories += watcherDirs;
  for (const p of marks.problems) log.warn(p);
  if (marks.directories + marks.mounts === 0) {
    ring.stop();
    wake.wake();
    dirWake?.wake();
    for (const w of workers) w.terminate();
    libc.close(group);
    throw new OnaccError("E_CONFIG", `${config.file}: none of the include or mount paths could be watched (see the warnings above)`);
  }
  log.verbose(
    `watching ${marks.directories} directories and ${marks.mounts} mounts${useWatcher ? (oa.disableDDD ? "" : ", following new directories") : ""}${oa.extraScanning ? ", extra scanning" : ""}; ` +
      `${oa.maxThreads} scanners; scan mode ${mode} via ${endpoints.map(describeEndpoint).join(", ")}; ` +
      `prevention ${prevention ? "on" : "off"}, error policy ${errorResponse(settings) === FAN_ALLOW ? "allow" : "deny"}; ring ${ring.capacity}` +
      clamdProcesses.map((p) => `; clamd pid ${p.pid} excluded`).join(""),
  );

  const health = startHealthChecks(pool, (c) =>
    c.up ? log.info(`clamd at ${c.endpoint} answers again (${c.reason})`) : log.warn(`clamd at ${c.endpoint} is down: ${c.reason}; retrying in the background`),
  );
  const watchdog = new Watchdog(ring, group, deadlineMs, errorResponse(settings));
  const timer = setInterval(() => {
    const n = watchdog.tick(monotonicMs());
    if (n > 0) log.warn(`${n} event(s) not answered within ${deadlineMs} ms: answered by the error policy`);
  }, WATCHDOG_INTERVAL_MS);

  const markTargets = { mountPaths: oa.mountPaths, includePaths: oa.includePaths, excludePaths: oa.excludePaths };
  let flushRetry: ReturnType<typeof setTimeout> | undefined;
  const flushCaches = (reason: string) => {
    clearTimeout(flushRetry);
    // Scans already under way may have used the old signatures: their verdicts must not be cached.
    ring.bumpFlushGeneration();
    userCache?.clear();
    try {
      if (opts.kernelCache) {
        const report = flushKernelCache(group, mask, markTargets, ring);
        for (const p of report.problems) log.warn(p);
      }
      ring.count("cacheFlushes");
      log.verbose(`verdict caches flushed: ${reason}`);
    } catch (err) {
      // Old clean marks may still be in the kernel: cache nothing new, and try again shortly.
      ring.setCachingSuspended(true);
      log.error(`flushing the verdict caches failed (${reason}): ${err instanceof Error ? err.message : String(err)}; retrying in 5 s`);
      flushRetry = setTimeout(() => {
        flushCaches(`retry: ${reason}`);
        if (flushRetry === undefined) ring.setCachingSuspended(false);
      }, 5000);
      return;
    }
    flushRetry = undefined;
  };
  // Always running: besides cache invalidation it keeps clamd's processes (never scanned) current.
  const cachesOn = userCache !== undefined || opts.kernelCache;
  const invalidation = new Invalidation({
    endpoints,
    databaseDirectory: config.databaseDirectory,
    timeoutMs: oa.timeoutMs,
    trustedUids,
    flush: (reason) => cachesOn && flushCaches(reason),
    suspendCaching: (on) => ring.setCachingSuspended(on),
    clamdProcesses: (list) => {
      trusted.set(list);
      log.verbose(list.length ? `clamd processes never scanned: ${list.map((p) => `pid ${p.pid}`).join(", ")}` : "no clamd process on this host is known now");
    },
    warn: (m) => log.warn(m),
    verbose: (m) => log.verbose(m),
  });
  void invalidation.start();

  let stopped = false;
  running = true;
  let lastScansDone = ring.scansDone();
  return {
    settings,
    marks,
    counters: () => ring.snapshot(),
    queueDepth: () => ring.depth(),
    oldestPendingMs: () => watchdog.oldestPendingMs(monotonicMs()),
    reopenLogs() {
      ring.bumpLogGeneration();
    },
    flushCaches,
    health: () => health.status(),
    poolCounters: () => poolHealth(pool).counters,
    latency: () => latency.snapshot(),
    healthy() {
      const done = ring.scansDone();
      const progressed = done !== lastScansDone;
      lastScansDone = done;
      return progressed || watchdog.oldestPendingMs(monotonicMs()) < deadlineMs;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      running = false;
      clearInterval(timer);
      clearTimeout(flushRetry);
      invalidation.stop();
      health.stop();
      ring.stop();
      wake.wake();
      dirWake?.wake();
      // Nothing may stay waiting: answer what is pending (allow — as the kernel does for a closed group),
      // then close the group so events not yet read are allowed by the kernel.
      watchdog.answerAll(FAN_ALLOW);
      retireFd(group);
      await Promise.race([Bun.sleep(300), Promise.all(workers.map((w) => new Promise((r) => w.addEventListener("close", r))))]);
      for (const w of workers) w.terminate();
      libc.close(wake.fd);
    },
  };
}
