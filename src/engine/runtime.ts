// The running engine: turns a plan (plan.ts) into protection and back. start() probes clamd, creates the
// fanotify group and the shared buffers, starts the reader and scanner Workers, and the main thread's
// helpers (watchdog, clamd health checks, cache invalidation); stop() undoes exactly what start() did, in
// reverse, once — also when start() fails half-way.
import { ClamdClient } from "../clamd/client.ts";
import { describeEndpoint } from "../clamd/address.ts";
import { startHealthChecks, poolHealth, type EndpointHealth } from "../clamd/health.ts";
import type { PoolCounters } from "../clamd/pool-shared.ts";
import { pidListeningOn } from "../clamd/local-clamd.ts";
import { createPoolSettings } from "../clamd/pool-settings.ts";
import type { OnaccConfig } from "../config/types.ts";
import { ClamdError, OnaccError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { LatencyHistogram, type HistogramSnapshot } from "../status/histogram.ts";
import { READER_WORKER, SCANNER_WORKER } from "../worker-entries.ts";
import { FAN_ALLOW, FAN_CLASS_CONTENT, FAN_CLASS_NOTIF, FAN_CLOEXEC, FAN_NONBLOCK, FAN_UNLIMITED_MARKS, FAN_UNLIMITED_QUEUE, fanotifyInit } from "../../ffi/fanotify.ts";
import { O_CLOEXEC, O_RDONLY } from "../../ffi/fcntl.ts";
import { retireFd } from "../../ffi/fs.ts";
import { libc, monotonicMs } from "../../ffi/libc.ts";
import { WakeFd } from "../../ffi/poll.ts";
import { getpid, ignoreLeaseBreaks, raiseNofileLimit, uidOfUser } from "../../ffi/process.ts";
import { BackgroundQueue } from "./background.ts";
import { VerdictCache } from "./cache.ts";
import { Control } from "./control.ts";
import { Counters, type CounterName } from "./counters.ts";
import { Invalidation } from "./invalidation.ts";
import { releaseStartup } from "./footprint.ts";
import { planEngine, type EngineOptions, type EnginePlan } from "./plan.ts";
import { errorResponse } from "./policy.ts";
import type { ReaderReady } from "./reader.ts";
import { EventRing } from "./ring.ts";
import type { EngineSettings, WorkerMessage } from "./settings.ts";
import { TrustedProcesses, identify, type ProcessIdentity } from "./trusted-processes.ts";
import { Watchdog } from "./watchdog.ts";
import { usableIncludePaths } from "./marks.ts";
import { createOps, type AgentOps, type OpsCarried } from "./ops.ts"; // onacc ops (issue 14)

const WATCHDOG_INTERVAL_MS = 100;
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export interface Agent {
  readonly settings: EngineSettings;
  readonly plan: EnginePlan;
  readonly marks: { directories: number; mounts: number };
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
  /** What a replacement (a reload) takes over: counters, latency, and the verdicts found so far. */
  carried(): Carried;
  /**
   * Leaves the stage to a replacement already protecting: every mark comes off (no new events), what the
   * kernel had queued is scanned and answered as usual, then the engine stops. Never answers an open
   * unscanned, unlike stop().
   */
  retire(): Promise<void>;
  /** Answers every pending event, closes the group, stops the Workers. Idempotent. */
  stop(): Promise<void>;
  /** onacc ops (issue 14): ExcludeExe/ExcludePattern counts, top talkers, the self-test (ops.ts). */
  readonly ops: AgentOps;
}

/** Shared buffers a new engine takes over from the one it replaces. */
export interface Carried {
  counters: SharedArrayBuffer;
  latency: SharedArrayBuffer;
  /** The verdict cache, with the clamd endpoints its verdicts came from. */
  userCache?: { buffers: import("./cache.ts").CacheBuffers; endpoints: string };
  /** onacc ops (issue 14): rule counts, top-talker buffers, the self-test with its checks in progress. */
  ops?: OpsCarried;
}

/** Undo steps, run once in reverse order. */
class Teardown {
  private readonly steps: (() => void | Promise<void>)[] = [];
  private done: Promise<void> | undefined;
  add(step: () => void | Promise<void>): void {
    this.steps.push(step);
  }
  run(): Promise<void> {
    this.done ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          await step();
        } catch {
          /* one failed undo must not keep the others from running */
        }
      }
    })();
    return this.done;
  }
}

/** At least one clamd must answer; the clamd processes on this host (never scanned) are noted on the way. */
function probeClamd(config: OnaccConfig, plan: EnginePlan, log: Logger): ProcessIdentity[] {
  const found: ProcessIdentity[] = [];
  const failures: string[] = [];
  for (const e of config.endpoints) {
    const probe = new ClamdClient({ endpoint: e, timeoutMs: config.onAccess.timeoutMs, retries: config.onAccess.retryAttempts, streamMaxLength: config.streamMaxLength });
    try {
      probe.ping();
      const pid = e.kind === "unix" ? probe.peerPid() : e.kind === "tcp" && LOOPBACK.has(e.host) ? pidListeningOn(e.port, plan.clamdOwnerUids) : undefined;
      const id = identify(pid);
      if (id && !found.some((p) => p.pid === id.pid)) found.push(id);
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (failures.length === config.endpoints.length) throw new ClamdError("connect", failures.join("; "));
  for (const f of failures) log.warn(`${f}; retrying it in the background`);
  return found;
}

/**
 * `onFailure` is called when a Worker ends while the agent runs (a bug): the caller stops the agent, which
 * answers everything pending, and exits non-zero so the service manager restarts it.
 */
export async function startAgent(config: OnaccConfig, opts: EngineOptions, log: Logger, onFailure?: (reason: string) => void, carried?: Carried): Promise<Agent> {
  const plan = planEngine(config, opts, { nofileLimit: raiseNofileLimit(), uidOf: uidOfUser });
  for (const w of plan.warnings) log.warn(w);
  const clamdProcesses = probeClamd(config, plan, log);
  const trusted = TrustedProcesses.create();
  trusted.set(clamdProcesses);
  ignoreLeaseBreaks();

  const teardown = new Teardown();
  const control = Control.create();
  const counters = carried ? Counters.attach(carried.counters) : Counters.create();
  const ring = EventRing.create(plan.ringCapacity);
  const latency = carried ? LatencyHistogram.attach(carried.latency) : LatencyHistogram.create();
  const pool = createPoolSettings(plan.scan.pool);
  // Verdicts carry over a reload when they came from the same clamd endpoints.
  const endpointsKey = JSON.stringify(config.endpoints);
  const userCache =
    plan.cache.size <= 0 ? undefined : carried?.userCache?.endpoints === endpointsKey ? VerdictCache.attach(carried.userCache.buffers) : VerdictCache.create(plan.cache.size);
  const group = fanotifyInit(
    (plan.prevention ? FAN_CLASS_CONTENT : FAN_CLASS_NOTIF) | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS,
    O_RDONLY | O_CLOEXEC,
  );
  const readerWake = new WakeFd();
  const scannerWake = new WakeFd();
  const settings: EngineSettings = {
    group,
    readerWakeFd: readerWake.fd,
    scannerWakeFd: scannerWake.fd,
    control: control.sab,
    counters: counters.sab,
    ring: ring.buffers,
    background: BackgroundQueue.create().sab,
    ownPid: getpid(),
    clamdProcesses: trusted.sab,
    prevention: plan.prevention,
    denyOnError: plan.denyOnError,
    maxFileSize: plan.maxFileSize,
    exclusions: plan.exclusions,
    checkPathsInReader: plan.checkPathsInReader,
    marks: plan.marks,
    scan: { modes: plan.scan.modes, listAllSignatures: plan.scan.listAllSignatures, inFlight: plan.scan.inFlight, deadlineMs: plan.scan.deadlineMs, pool, latency: latency.buffer },
    cache: { user: userCache?.buffers, kernel: plan.cache.kernel, ignoreMask: plan.cache.ignoreMask },
    action: plan.action,
    copiedFiles: plan.action.kind === "copy" ? VerdictCache.create(4096).buffers : undefined,
    log: plan.log,
  };
  const watchdog = new Watchdog(ring, counters, group, plan.watchdogMs, errorResponse(settings));
  // onacc ops (issue 14): shared memory for the reader and the scanner, posted with the settings.
  const ops = createOps({
    options: config.onaccOnly,
    scanners: 1,
    scansInFlight: plan.scan.inFlight,
    prevention: plan.prevention,
    denyOnError: plan.denyOnError,
    rootExcluded: plan.exclusions.uids.includes(0),
    endpoints: () => health.status(), // asked only once running (ops.start()): `health` exists by then
    log,
  }, carried?.ops);
  teardown.add(() => ops.stop());

  const workers: Worker[] = [];
  let running = false; // true between start-up and stop(): a Worker ending then is a failure
  const spawn = (url: URL, name: string) =>
    new Promise<string | undefined>((resolve, reject) => {
      // smol: a smaller JS heap per Worker; these threads hold almost nothing on it.
      const w = new Worker(url, { name, smol: true } as WorkerOptions);
      workers.push(w);
      let ready = false;
      w.onmessage = (e: MessageEvent<WorkerMessage>) => {
        const m = e.data;
        if (m.type === "ready" && !ready) {
          ready = true;
          resolve(m.detail);
        } else if (m.type === "fatal" && !ready) reject(new OnaccError("E_RUNTIME", `${name} failed to start: ${m.message}`));
        else if (m.type === "fatal") log.error(`${m.worker} stopped: ${m.message}`);
        else if (m.type === "log") log[m.level](m.message);
        else if (m.type === "clamd-pid") void invalidation?.poll();
      };
      w.onerror = (e) => {
        log.error(`${name}: ${e.message}`);
        if (!ready) reject(new OnaccError("E_RUNTIME", `${name} failed to start: ${e.message}`));
      };
      // A thread that ends while the agent runs leaves events unread or unscanned: fail loudly (see onFailure).
      w.addEventListener("close", () => {
        if (running) onFailure?.(`${name} stopped unexpectedly`);
      });
      w.postMessage({ settings, ops: ops.shared }); // onacc ops: `ops`
    });
  // Undone in this order (steps run in reverse): nothing may stay waiting. The Workers are told to stop and
  // every pending open is answered (allow — as the kernel does for a closed group); the group is closed so
  // events not yet read are allowed by the kernel, its number kept occupied by /dev/null so no Worker still
  // finishing writes into a reused descriptor; then the Workers are waited for.
  teardown.add(() => {
    libc.close(readerWake.fd);
    libc.close(scannerWake.fd);
  });
  teardown.add(async () => {
    await Promise.race([Bun.sleep(300), Promise.all(workers.map((w) => new Promise((r) => w.addEventListener("close", r))))]);
    for (const w of workers) w.terminate();
  });
  teardown.add(() => retireFd(group));
  teardown.add(() => {
    running = false;
    control.stop();
    readerWake.wake();
    scannerWake.wake();
    watchdog.answerAll(FAN_ALLOW);
  });

  let invalidation: Invalidation | undefined;
  let ready: ReaderReady;
  try {
    await spawn(SCANNER_WORKER, "scanner");
    ready = JSON.parse((await spawn(READER_WORKER, "reader")) ?? "{}") as ReaderReady;
  } catch (err) {
    await teardown.run();
    throw err;
  }
  for (const p of ready.problems) log.warn(p);
  if (ready.directories + ready.mounts === 0) {
    await teardown.run();
    throw new OnaccError("E_CONFIG", `${config.file}: none of the include or mount paths could be watched (see the warnings above)`);
  }
  const m = plan.marks;
  log.verbose(
    `watching ${ready.directories} directories and ${ready.mounts} mounts${ready.following ? (m.follow ? ", following new directories" : "") : ""}${m.extraScanning ? ", extra scanning" : ""}; ` +
      `up to ${plan.scan.inFlight} scans in flight; ${config.endpoints.map((e, i) => `${describeEndpoint(e)} (${plan.scan.modes[i]})`).join(", ")}; ` +
      `prevention ${plan.prevention ? "on" : "off"}, error policy ${errorResponse(settings) === FAN_ALLOW ? "allow" : "deny"}; queue ${ring.capacity}` +
      (plan.scan.listAllSignatures ? "; --allmatch: every signature listed by path" : "") +
      clamdProcesses.map((p) => `; clamd pid ${p.pid} excluded`).join(""),
  );

  const health = startHealthChecks(pool, (c) =>
    c.up ? log.info(`clamd at ${c.endpoint} answers again (${c.reason})`) : log.warn(`clamd at ${c.endpoint} is down: ${c.reason}; retrying in the background`),
  );
  teardown.add(() => health.stop());
  // onacc ops (issue 14): the trees the self-test checks (those the reader could watch), and its timers.
  ops.setTrees([...usableIncludePaths(plan.marks.includePaths, plan.marks.excludePaths).usable, ...plan.marks.mountPaths]);
  ops.start();
  const timer = setInterval(() => {
    const n = watchdog.tick(monotonicMs());
    if (n > 0) log.warn(`${n} event(s) not answered within ${plan.watchdogMs} ms: answered by the error policy`);
  }, WATCHDOG_INTERVAL_MS);
  teardown.add(() => clearInterval(timer));

  const cachesOn = userCache !== undefined || plan.cache.kernel;
  const flushCaches = (reason: string) => {
    if (!cachesOn) return;
    // Scans already under way may have used the old signatures: their verdicts must not be cached.
    control.bumpFlushGeneration();
    userCache?.clear();
    counters.count("cacheFlushes");
    if (!plan.cache.kernel) return log.verbose(`verdict caches flushed: ${reason}`);
    // The kernel's marks are flushed by the reader, a slice at a time: "flushed" is said once it is done.
    const request = control.askKernelFlush();
    readerWake.wake();
    const waitDone = () => {
      if (control.kernelFlushedUpTo() >= request) log.verbose(`verdict caches flushed: ${reason}`);
      else if (!control.stopping()) setTimeout(waitDone, 5);
    };
    waitDone();
  };
  // Always running: besides cache invalidation it keeps clamd's processes (never scanned) current.
  invalidation = new Invalidation({
    endpoints: config.endpoints,
    databaseDirectory: config.databaseDirectory,
    timeoutMs: config.onAccess.timeoutMs,
    trustedUids: plan.clamdOwnerUids,
    flush: flushCaches,
    suspendCaching: (on) => control.setCachingSuspended(on),
    clamdProcesses: (list) => {
      trusted.set(list);
      log.verbose(list.length ? `clamd processes never scanned: ${list.map((p) => `pid ${p.pid}`).join(", ")}` : "no clamd process on this host is known now");
    },
    warn: (w) => log.warn(w),
    verbose: (v) => log.verbose(v),
  });
  void invalidation.start();
  teardown.add(() => invalidation?.stop());

  running = true;
  // Start-up is over: what only it needed goes back to the host.
  setTimeout(() => log.verbose(`start-up memory handed back: ${(releaseStartup() / 1048576).toFixed(0)} MiB of code pages advised out`), 500).unref?.();
  let lastScansDone = control.scansDone();
  return {
    settings,
    plan,
    marks: { directories: ready.directories, mounts: ready.mounts },
    ops,
    counters: () => counters.snapshot(),
    queueDepth: () => ring.depth(),
    oldestPendingMs: () => watchdog.oldestPendingMs(monotonicMs()),
    reopenLogs: () => control.bumpLogGeneration(),
    flushCaches,
    health: () => health.status(),
    poolCounters: () => poolHealth(pool).counters,
    latency: () => latency.snapshot(),
    healthy() {
      const done = control.scansDone();
      const progressed = done !== lastScansDone;
      lastScansDone = done;
      return progressed || watchdog.oldestPendingMs(monotonicMs()) < plan.watchdogMs;
    },
    carried: () => ({
      counters: counters.sab,
      latency: latency.buffer,
      ...(userCache ? { userCache: { buffers: userCache.buffers, endpoints: endpointsKey } } : {}),
      ops: ops.carried(), // onacc ops (issue 14)
    }),
    async retire() {
      running = false;
      control.askRetire();
      readerWake.wake();
      const until = monotonicMs() + plan.watchdogMs + 1000;
      while (!control.retired() && monotonicMs() < until) await Bun.sleep(10);
      // The last events are scanned as usual; the watchdog still answers any that runs late.
      while (ring.inUse() > 0 && monotonicMs() < until) await Bun.sleep(10);
      await teardown.run();
    },
    stop: () => teardown.run(),
  };
}
