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
  /** The status snapshot's additions. */
  status(): OpsStatus;
  /** The trees actually protected, once the marks are placed. */
  setTrees(trees: readonly string[]): void;
  /** Starts the timers: ExcludeExe re-resolution and the self-test's sweep. */
  start(): void;
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

export function createOps(o: OpsOptions): AgentOps {
  const ex = createExtraExclusions({ excludeExe: o.options.excludeExe, children: o.options.excludeExeChildren, patterns: o.options.excludePatterns });
  const talkers = createTopTalkers(o.scanners);
  const registry = ProbeRegistry.create();
  let trees: string[] = [];
  const selfTest = new SelfTest({
    registry,
    trees: () => trees,
    prevention: o.prevention,
    denyOnError: o.denyOnError,
    rootExcluded: o.rootExcluded,
    endpoints: o.endpoints,
    log: o.log,
  });
  if (ex.table) reportExeChanges(ex.table.resolve(), o.log, true);
  if (o.options.excludeExeChildren && !ex.table) o.log.warn("ExcludeExeChildren yes has no effect without ExcludeExe");
  let timer: ReturnType<typeof setInterval> | undefined;

  return {
    shared: { exclusions: ex.shared, talkers, probes: registry.sab },
    selfTest,
    status: () => ({
      protectedTrees: [...trees],
      exclusions: ex.rules.map((r, i) => ({ rule: `${r.option} ${r.value}`, ...ex.counts.read(i) })),
      top: readTopTalkers(talkers, o.scanners),
    }),
    setTrees(t) {
      trees = [...t];
    },
    start() {
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
      selfTest.stop();
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
