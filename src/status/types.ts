// What `onacc status` shows and the status socket serves: the snapshot's shape, and the StatusSource the
// agent implements so the server never reaches into the engine itself.
import type { EndpointHealth } from "../clamd/health.ts";

export type { EndpointHealth } from "../clamd/health.ts";

export interface ReloadOutcome {
  /** ISO-8601. */
  at: string;
  ok: boolean;
  message: string;
}

export interface StatusSnapshot {
  version: string;
  /** The last configuration reload (SIGHUP, systemctl reload, onacc reload): when, and what became of it. */
  reload?: ReloadOutcome;
  pid: number;
  /** ISO-8601 start time. */
  startedAt: string;
  uptimeSeconds: number;
  endpoints: EndpointHealth[];
  events: {
    /** Events read from fanotify (permission and notification). */
    seen: number;
    allowed: number;
    denied: number;
    /** Allowed without a scan: onacc's own, excluded pid/uid/path, not a regular file, too large. */
    skipped: number;
  };
  scans: {
    total: number;
    clean: number;
    infected: number;
    errors: number;
    /** How the file reached clamd: fdpass, stream, path. */
    byMode: Record<string, number>;
  };
  cache: { hits: number; misses: number; evictions: number; flushes: number };
  queue: {
    depth: number;
    /** Age of the oldest permission event still waiting for its answer (0 when none). */
    oldestPendingMs: number;
  };
  /** Problems by kind: clamd errors (connect, timeout, protocol, …) and the engine's (ringFull, …). */
  errors: Record<string, number>;
  latency: {
    /** Scans measured. */
    count: number;
    p50Ms: number | null;
    p99Ms: number | null;
    meanMs: number | null;
    /** Total time of the measured scans (Prometheus summary _sum). */
    sumMs: number;
  };
  /** The directory trees the agent protects (include paths and mount paths it watches). */
  protectedTrees?: string[];
  /** ExcludeExe and ExcludePattern rules, each with the opens it skipped. */
  exclusions?: ExclusionCount[];
  /** Scans by executable and by directory over the last minutes (`onacc status --top`). */
  top?: TopTalkers;
}

export interface ExclusionCount {
  /** The configuration line: "ExcludeExe /usr/bin/rsync", "ExcludePattern *.log". */
  rule: string;
  /** Opens allowed without a scan because of this rule. */
  skipped: number;
  /** Pattern hits not honoured: the path, looked up in onacc's namespace, led to another file (or to none). */
  refused: number;
}

export interface TopTalker {
  /** The executable's path (from /proc/PID/exe) or the directory, escaped like the log. */
  name: string;
  scans: number;
  /** Time the openers waited on these scans. */
  scanMs: number;
  denied: number;
  /** True when the bounded table may have counted up to a few scans of other keys here. */
  approximate: boolean;
}

export interface TopTalkers {
  windowMinutes: number;
  /** All scans in the window (exact), and the time and denials they add up to. */
  scans: number;
  scanMs: number;
  denied: number;
  executables: TopTalker[];
  directories: TopTalker[];
}

/** What `onacc status --check` needs to know before it writes its test files. */
export interface SelfTestBegin {
  /** One-time name part of this check's test files; the agent treats only files it registered as tests. */
  nonce: string;
  /** The test file's name in each tree. */
  probeName: string;
  trees: string[];
  prevention: boolean;
  denyOnError: boolean;
  /** Opens by root are not scanned (OnAccessExcludeRootUID and the like): a check run as root proves nothing. */
  rootExcluded: boolean;
  endpoints: EndpointHealth[];
  /** The registration lapses after this long; leftover test files are then removed by the agent. */
  expiresInMs: number;
}

export interface SelfTestProbeResult {
  path: string;
  /** Scans that found the registered test file infected. */
  detections: number;
  /** The agent removed the test file (else the client must). */
  removed: boolean;
}

/** The self-test's three steps, implemented by the agent (src/engine/self-test.ts). */
export interface SelfTestHandler {
  begin(): SelfTestBegin;
  /** Registers `path` as this check's test file; throws an Error saying why it refuses. */
  probe(nonce: string, path: string): void;
  end(nonce: string): SelfTestProbeResult[];
}

/** Implemented by the agent; called on the main thread, once per request. */
export interface StatusSource {
  snapshot(): StatusSnapshot;
  /** `{"cmd":"flush-cache"}`: forget every cached verdict (as SIGUSR2 does). */
  flushCaches(reason: string): void;
  /** `onacc status --check`; absent where the agent offers no self-test. */
  selfTest?: SelfTestHandler;
}

/** One line sent to the status socket. */
export type StatusRequest =
  | { cmd: "status" }
  | { cmd: "flush-cache" }
  | { cmd: "ping" }
  | { cmd: "selftest-begin" }
  | { cmd: "selftest-probe"; nonce: string; path: string }
  | { cmd: "selftest-end"; nonce: string };

/** One line the status socket answers. */
export type StatusReply =
  | { ok: true; status: StatusSnapshot }
  | { ok: true; flushed: true }
  | { ok: true; pong: true; pid: number }
  | { ok: true; selfTest: SelfTestBegin }
  | { ok: true; registered: string }
  | { ok: true; probes: SelfTestProbeResult[] }
  | { ok: false; error: string };

/** Where the control socket lives unless --status-socket says otherwise. */
export const DEFAULT_STATUS_SOCKET = "/run/onacc/status.sock";
