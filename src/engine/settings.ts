// Everything a Worker needs to do its part, as one structured-clonable object posted at start. The plan
// (plan.ts) decides every value; the runtime (runtime.ts) adds the shared buffers and descriptors.
import type { PoolSettings } from "../clamd/pool-settings.ts";
import type { ScanMode } from "../clamd/types.ts";
import type { ActionOnFound } from "../actions/types.ts";
import type { CacheBuffers } from "./cache.ts";
import type { ExclusionSettings } from "./exclusions.ts";
import type { RingBuffers } from "./ring.ts";
import type { LogSettings } from "../log/logger.ts";

/** What the kernel is asked to report, and which trees. */
export interface MarkSettings {
  /** FAN_OPEN_PERM with prevention, FAN_OPEN | FAN_CLOSE_WRITE without. */
  mask: number;
  includePaths: string[];
  excludePaths: string[];
  mountPaths: string[];
  /** Follow folders created or moved in after start (OnAccessDisableDDD no). */
  follow: boolean;
  /** OnAccessExtraScanning: scan files that land in the tree, in the background. */
  extraScanning: boolean;
}

export interface ScanSettings {
  /** How file contents reach each endpoint (same order as pool.endpoints), decided once by the plan. */
  modes: ScanMode[];
  /** --allmatch: after an infected verdict, ask a local clamd by path for every matching signature. */
  listAllSignatures: boolean;
  /** OnAccessMaxThreads: scans in flight at once. */
  inFlight: number;
  /** Whole budget of one scan (failovers included), ms after the event was queued. */
  deadlineMs: number;
  pool: PoolSettings;
  /** Scan latency histogram shared with the status interface. */
  latency: SharedArrayBuffer;
}

export interface EngineSettings {
  /** The fanotify group fd (shared by all threads of the process). */
  group: number;
  /** eventfds that wake the reader and the scanner out of poll(). */
  readerWakeFd: number;
  scannerWakeFd: number;
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  ring: RingBuffers;
  /** Paths of files to scan in the background (background.ts). */
  background: SharedArrayBuffer;
  ownPid: number;
  /** clamd's processes on this host (trusted-processes.ts): never scanned. */
  clamdProcesses: SharedArrayBuffer;
  prevention: boolean;
  denyOnError: boolean;
  /** Bytes; 0 = no limit. */
  maxFileSize: number;
  exclusions: ExclusionSettings;
  /** Mount marks see the whole mount: the reader checks excluded paths itself. */
  checkPathsInReader: boolean;
  marks: MarkSettings;
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
  /** With --copy: the infected file versions already copied (a VerdictCache used as a bounded set). */
  copiedFiles?: CacheBuffers;
  log: LogSettings;
}

/** Messages Workers post to the main thread. */
export type WorkerMessage =
  | { type: "ready"; worker: string; detail?: string }
  | { type: "log"; level: "error" | "warn" | "info" | "verbose"; message: string }
  | { type: "fatal"; worker: string; message: string }
  /** The scanner met a clamd process on a unix socket (SO_PEERCRED) that may be new: the main thread checks it. */
  | { type: "clamd-pid"; pid: number };
