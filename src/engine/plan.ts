// The start-up plan: configuration + command line + a few facts about the host → every decision the engine
// runs by. The one place where the scan mode of each clamd, the deadlines, the queue sizes, the
// exclusions and the marks are decided. Pure (no I/O): the facts come in as arguments, so it is tested
// without root, clamd or fanotify.
import type { ActionOnFound } from "../actions/types.ts";
import { describeEndpoint } from "../clamd/address.ts";
import type { PoolOptions } from "../clamd/pool-settings.ts";
import type { ScanMode } from "../clamd/types.ts";
import type { ClamdEndpoint, OnaccConfig } from "../config/types.ts";
import { OnaccError, UsageError } from "../errors.ts";
import type { LogSettings } from "../log/logger.ts";
import { FAN_CLOSE_WRITE, FAN_OPEN, FAN_OPEN_PERM } from "../../ffi/fanotify.ts";
import type { ExclusionSettings } from "./exclusions.ts";
import type { MarkSettings } from "./settings.ts";

/** Slack on top of the scan's own budget before the watchdog answers for it. */
export const DEADLINE_MARGIN_MS = 1000;
/** Longest wait between health PINGs to a clamd that is down: a clamd that comes back rejoins within it. */
export const HEALTH_BACKOFF_MAX_MS = 5000;
/** Event fds kept free for everything else the process opens (sockets, log files, quarantine copies). */
const FD_RESERVE = 1024;
const READ_BATCH_FDS = 2800; // one 64 KiB read() can hand over this many event fds
const MAX_RING = 4096;
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** What the plan reads of the command line (src/cli/options.ts RunOptions has these and more). */
export interface EngineOptions {
  /** -F/--foreground: stay attached, print to the console. */
  foreground: boolean;
  /** -v/--verbose. */
  verbose: boolean;
  /** -l/--log=FILE. */
  logFile?: string;
  /** --log-format: the --log file's lines (and the console's when there is no --log). */
  logFormat: "text" | "json";
  /** --log-max-size in bytes: rotate the --log file before it grows past this. */
  logMaxSize?: number;
  /** --log-keep: rotated files kept (FILE.1 … FILE.N); default 5. */
  logKeep: number;
  /** --remove, --move=DIR, --copy=DIR. */
  action: ActionOnFound;
  /** -z/--allmatch. */
  allmatch: boolean;
  /** --fdpass / --stream; "auto" = fd passing over a local socket, streaming over TCP. */
  scanMode: ScanMode | "auto";
  /** --cache-size=N: entries of the userspace verdict cache; 0 = off. */
  cacheSize: number;
  /** --kernel-cache=yes|no: fanotify ignore marks for files found clean. */
  kernelCache: boolean;
}

/** What the plan needs to know about the host. */
export interface HostFacts {
  /** RLIMIT_NOFILE in force (after raising the soft limit): every pending event holds an fd. */
  nofileLimit: number;
  /** A user name's uid through NSS, undefined when there is no such user. */
  uidOf(name: string): number | undefined;
}

export interface EnginePlan {
  prevention: boolean;
  denyOnError: boolean;
  maxFileSize: number;
  /** Events queued or being scanned at once (a power of two); each holds an fd. */
  ringCapacity: number;
  marks: MarkSettings;
  exclusions: ExclusionSettings;
  /** Mount marks see whole file systems: the reader checks excluded paths itself. */
  checkPathsInReader: boolean;
  /** Owners a loopback TCP listener must have to be taken for clamd (root, clamd's User). */
  clamdOwnerUids: number[];
  scan: {
    endpoints: ClamdEndpoint[];
    modes: ScanMode[];
    listAllSignatures: boolean;
    inFlight: number;
    /** The scan's whole budget (failovers included), from the moment the event was queued. */
    deadlineMs: number;
    pool: PoolOptions;
  };
  /** The watchdog answers a permission event this long after it was queued. */
  watchdogMs: number;
  cache: { size: number; kernel: boolean; ignoreMask: number };
  action: ActionOnFound;
  log: LogSettings;
  /** Said once at start (--verbose or a warning). */
  warnings: string[];
}

/** The logger settings every thread builds its own Logger from. */
export function logSettingsOf(opts: EngineOptions): LogSettings {
  return { logFile: opts.logFile, foreground: opts.foreground, verbose: opts.verbose, format: opts.logFormat, maxSize: opts.logMaxSize, keep: opts.logKeep };
}

/**
 * How file contents reach each clamd, decided here once: descriptors over a unix socket, the contents
 * streamed to a TCP or TLS one (a descriptor cannot cross a network). --fdpass needs at least one unix
 * endpoint; --stream streams to all.
 */
export function scanModes(opts: EngineOptions, endpoints: ClamdEndpoint[]): ScanMode[] {
  const anyUnix = endpoints.some((e) => e.kind === "unix");
  if (opts.scanMode === "fdpass" && !anyUnix) {
    throw new UsageError(`--fdpass needs clamd on a LocalSocket; ${endpoints.map(describeEndpoint).join(", ")} ${endpoints.length > 1 ? "are" : "is"} not (use --stream)`);
  }
  return endpoints.map((e) => (opts.scanMode !== "stream" && e.kind === "unix" ? "fdpass" : "stream"));
}

/** The event queue: as large as the descriptor limit allows, a power of two between 64 and 4096. */
export function ringCapacityFor(nofileLimit: number): number {
  const room = Math.max(64, nofileLimit - FD_RESERVE - READ_BATCH_FDS);
  let cap = 64;
  while (cap * 2 <= Math.min(room, MAX_RING)) cap *= 2;
  return cap;
}

export function planEngine(config: OnaccConfig, opts: EngineOptions, host: HostFacts): EnginePlan {
  const oa = config.onAccess;
  const endpoints = config.endpoints;
  const warnings: string[] = [];
  if (endpoints.length === 0) throw new OnaccError("E_CONFIG", `${config.file}: no clamd endpoint (set LocalSocket or TCPSocket/TCPAddr, or pass --clamd)`);
  if (oa.includePaths.length === 0 && oa.mountPaths.length === 0) {
    throw new OnaccError("E_CONFIG", `${config.file}: nothing to watch (set OnAccessIncludePath or OnAccessMountPath, or pass --watch-list)`);
  }
  const modes = scanModes(opts, endpoints);
  // clamd offers all-match only for a path it opens itself, so only a clamd on this host can list them.
  const listAllSignatures = opts.allmatch && endpoints.every((e) => e.kind === "unix");
  if (opts.allmatch && !listAllSignatures) {
    warnings.push("--allmatch has no effect here: clamd reports all matches only for files it opens by path itself, on this host");
  }

  // Who is never scanned by uid. clamd's User only when clamd runs here (elsewhere that uid means nothing);
  // a root clamd is excluded by its processes only: excluding uid 0 would leave every root process unscanned.
  const uids = new Set(oa.excludeUids);
  if (oa.excludeRootUid) uids.add(0);
  const clamdLocal = endpoints.some((e) => e.kind === "unix" || LOOPBACK.has(e.host));
  const clamdUid = config.clamdUser ? host.uidOf(config.clamdUser) : undefined;
  if (config.clamdUser && clamdUid === undefined) warnings.push(`User "${config.clamdUser}": no such user on this host`);
  if (clamdLocal && clamdUid !== undefined && clamdUid !== 0) uids.add(clamdUid);
  for (const name of oa.excludeUnames) {
    const uid = host.uidOf(name);
    if (uid === undefined) warnings.push(`OnAccessExcludeUname "${name}": no such user, ignored`);
    else uids.add(uid);
  }

  const ringCapacity = ringCapacityFor(host.nofileLimit);
  const inFlight = Math.max(1, Math.min(oa.maxThreads, ringCapacity));
  // One full failover (a try on a second clamd) must fit before the watchdog answers for the scan.
  const scanBudget = oa.timeoutMs * (oa.retryAttempts + 1) * Math.min(endpoints.length, 2) + DEADLINE_MARGIN_MS / 2;
  const prevention = oa.prevention;
  return {
    prevention,
    denyOnError: oa.denyOnError,
    maxFileSize: oa.maxFileSize,
    ringCapacity,
    marks: {
      mask: prevention ? FAN_OPEN_PERM : FAN_OPEN | FAN_CLOSE_WRITE,
      includePaths: oa.includePaths,
      excludePaths: oa.excludePaths,
      mountPaths: oa.mountPaths,
      follow: !oa.disableDDD,
      extraScanning: oa.extraScanning,
    },
    exclusions: { uids: [...uids], paths: oa.excludePaths, watched: [...oa.includePaths, ...oa.mountPaths] },
    checkPathsInReader: oa.mountPaths.length > 0,
    clamdOwnerUids: clamdUid === undefined ? [0] : [...new Set([0, clamdUid])],
    scan: {
      endpoints,
      modes,
      listAllSignatures,
      inFlight,
      deadlineMs: scanBudget,
      pool: {
        endpoints,
        timeoutMs: oa.timeoutMs,
        retries: oa.retryAttempts,
        streamMaxLength: config.streamMaxLength,
        deadlineMs: scanBudget,
        backoffMaxMs: HEALTH_BACKOFF_MAX_MS,
      },
    },
    watchdogMs: scanBudget + DEADLINE_MARGIN_MS / 2,
    cache: { size: opts.cacheSize, kernel: opts.kernelCache, ignoreMask: prevention ? FAN_OPEN_PERM : FAN_OPEN },
    action: opts.action,
    log: logSettingsOf(opts),
    warnings,
  };
}
