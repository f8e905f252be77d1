// Everything a Worker needs to do its part, as one structured-clonable object posted at start.
import type { PoolSettings } from "../clamd/pool.ts";
import type { ScanMode } from "../clamd/types.ts";
import type { ActionOnFound } from "../cli/options.ts";
import type { ExclusionSettings } from "./exclusions.ts";
import type { RingBuffers } from "./ring.ts";
import type { CacheBuffers } from "./cache.ts";

export type { LogSettings } from "../log/logger.ts";
import type { LogSettings } from "../log/logger.ts";

export interface ScanSettings {
  mode: ScanMode;
  allmatch: boolean;
  /** The clamd endpoints, their shared health and in-flight counts (src/clamd/pool.ts). */
  pool: PoolSettings;
  /** Scan latency histogram shared with the status interface. */
  latency: SharedArrayBuffer;
}

export interface EngineSettings {
  /** The fanotify group fd (shared by all threads of the process). */
  group: number;
  /** eventfd that wakes the reader out of poll(). */
  readerWakeFd: number;
  ring: RingBuffers;
  ownPid: number;
  prevention: boolean;
  denyOnError: boolean;
  /** Bytes; 0 = no limit. */
  maxFileSize: number;
  exclusions: ExclusionSettings;
  /** clamd's processes on this host (trusted-processes.ts): never scanned. */
  clamdProcesses: SharedArrayBuffer;
  /** Mount marks see the whole mount: the reader checks excluded paths itself. */
  checkPathsInReader: boolean;
  scan: ScanSettings;
  cache: {
    /** The shared userspace LRU; absent with --cache-size=0. */
    user?: CacheBuffers;
    /** Ignore marks for clean files (--kernel-cache). */
    kernel: boolean;
    /** The open event the group reports: FAN_OPEN_PERM with prevention, FAN_OPEN without. */
    ignoreMask: number;
  };
  action: ActionOnFound;
  /** With --copy: the file versions already copied (a VerdictCache used as a bounded set). */
  copiedFiles?: CacheBuffers;
  log: LogSettings;
}

/** Messages Workers post to the main thread. */
export type WorkerMessage =
  | { type: "ready"; worker: string; detail?: string }
  | { type: "log"; level: "error" | "warn" | "info" | "verbose"; message: string }
  | { type: "fatal"; worker: string; message: string };
