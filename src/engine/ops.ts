// onacc's operator features (issue 14) as one object for the agent to wire: ExcludeExe and ExcludePattern
// (extra-exclusions.ts), top talkers (top-talkers.ts) and the self-test (self-test.ts). The agent creates
// it, posts `shared` to the reader and every scanner, and serves the status socket from it.
import { openSync, readSync, closeSync } from "node:fs";
import type { OnaccOnlyOptions } from "../config/types.ts";
import type { EndpointHealth, ExclusionCount, SelfTestHandler, TopTalkers } from "../status/types.ts";
import { createExtraExclusions, type ExtraExclusionShared } from "./extra-exclusions.ts";
import type { ExeChange } from "./exclude-exe.ts";
import { ProbeRegistry, SelfTest } from "./self-test.ts";
import { createTopTalkers, readTopTalkers } from "./top-talkers.ts";

/** How often the configured executables are stat()ed again (a package upgrade gives a binary a new inode). */
export const EXE_RESOLVE_INTERVAL_MS = 2000;
/** Top-talker buffers of earlier engines (reloads) still read: their minutes may be in the window. */
const TALKER_HISTORY = 3;

/** What a reload's new engine takes over from the one it replaces. */
export interface OpsCarried {
  /** Top-talker buffers, this engine's first: read, never written, by the new one. */
  talkers: SharedArrayBuffer[];
  /** Each rule's counts so far, by rule text: a rule kept over the reload keeps counting on. */
  counts: ExclusionCount[];
  /** The self-test service with the checks in progress and its registry. */
  selfTest: SelfTest;
}

/** What the Workers receive, next to the EngineSettings. */
export interface OpsShared {
  exclusions: ExtraExclusionShared;
  /** Top-talker regions, one per scanner (its index). */
  talkers: SharedArrayBuffer;
  /** Registered self-test files. */
  probes: SharedArrayBuffer;
}

export interface OpsStatus {
  protectedTrees: string[];
  exclusions: ExclusionCount[];
  top: TopTalkers;
}

export interface AgentOps {
  readonly shared: OpsShared;
  readonly selfTest: SelfTestHandler;
  /** For a reload's new engine (runtime.ts Carried). */
  carried(): OpsCarried;
  /** The status snapshot's additions. */
  status(): OpsStatus;
  /** The trees actually protected, once the marks are placed. */
  setTrees(trees: readonly string[]): void;
  /** Starts the timers: ExcludeExe re-resolution and the self-test's sweep. */
  start(): void;
  /** Stops the timers; lets go of the self-test service (stopped when no engine holds it). Idempotent. */
  stop(): void;
}

export interface OpsOptions {
  options: OnaccOnlyOptions;
  /** Scanner threads (one region of top talkers each). */
  scanners: number;
  /** Scans in flight per scanner thread. */
  scansInFlight: number;
  prevention: boolean;
  denyOnError: boolean;
  /** Opens by uid 0 are never scanned (OnAccessExcludeRootUID, ExcludeUID 0, ExcludeUname root). */
  rootExcluded: boolean;
  endpoints(): EndpointHealth[];
  log: { warn(message: string): void; info(message: string): void; verbose(message: string): void };
}

export function createOps(o: OpsOptions, carried?: OpsCarried): AgentOps {
  const ex = createExtraExclusions({ excludeExe: o.options.excludeExe, children: o.options.excludeExeChildren, patterns: o.options.excludePatterns });
  // Each engine writes a buffer of its own: during a reload the old scanner still finishes its scans.
  const talkers = createTopTalkers(o.scanners);
  const readTalkers = [talkers, ...(carried?.talkers ?? [])].slice(0, TALKER_HISTORY);
  const countedBefore = new Map((carried?.counts ?? []).map((c) => [c.rule, c]));
  let trees: string[] = [];
  const context = {
    trees: () => trees,
    prevention: o.prevention,
    denyOnError: o.denyOnError,
    rootExcluded: o.rootExcluded,
    endpoints: o.endpoints,
    log: o.log,
  };
  // Taken over from the engine a reload replaces: its checks in progress keep their files known. The new
  // engine's facts apply once it runs (start()): a refused reload leaves the old one's in force.
  const selfTest = carried?.selfTest ?? new SelfTest({ ...context, registry: ProbeRegistry.create() });
  selfTest.acquire();
  let released = false;
  if (ex.table) reportExeChanges(ex.table.resolve(), o.log, true);
  if (o.options.excludeExeChildren && !ex.table) o.log.warn("ExcludeExeChildren yes has no effect without ExcludeExe");
  let timer: ReturnType<typeof setInterval> | undefined;

  const exclusions = (): ExclusionCount[] =>
    ex.rules.map((r, i) => {
      const rule = `${r.option} ${r.value}`;
      const now = ex.counts.read(i);
      const before = countedBefore.get(rule);
      return { rule, skipped: now.skipped + (before?.skipped ?? 0), refused: now.refused + (before?.refused ?? 0) };
    });

  return {
    shared: { exclusions: ex.shared, talkers, probes: selfTest.registry.sab },
    selfTest,
    carried: () => ({ talkers: readTalkers, counts: exclusions(), selfTest }),
    status: () => ({
      protectedTrees: [...trees],
      exclusions: exclusions(),
      top: readTopTalkers(readTalkers),
    }),
    setTrees(t) {
      trees = [...t];
    },
    start() {
      selfTest.retarget(context);
      selfTest.start();
      if (ex.table && !timer) {
        const table = ex.table;
        timer = setInterval(() => reportExeChanges(table.resolve(), o.log, false), EXE_RESOLVE_INTERVAL_MS);
        timer.unref?.();
      }
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      if (!released) selfTest.release();
      released = true;
    },
  };
}

function reportExeChanges(changes: ExeChange[], log: OpsOptions["log"], atStart: boolean): void {
  for (const c of changes) {
    if (!c.now) log.warn(`ExcludeExe "${c.path}": ${c.why}`);
    else if (atStart) log.verbose(`ExcludeExe "${c.path}": ${c.why} (device ${c.now.dev}, inode ${c.now.ino})`);
    else log.info(`ExcludeExe "${c.path}": ${c.why}: now device ${c.now.dev}, inode ${c.now.ino}; processes still running the old file are scanned`);
    if (c.now && isScript(c.path)) {
      log.warn(`ExcludeExe "${c.path}" is a script (#!): its processes run the interpreter named on its first line, so this rule never matches`);
    }
  }
}

function isScript(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x23 && head[1] === 0x21;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
