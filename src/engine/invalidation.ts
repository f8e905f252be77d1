// When the verdict caches must forget, and who clamd is. Every clamd endpoint is polled with VERSION: its
// reply carries the database version of official databases, a clamd that comes back may have new
// signatures, and the peer of a local one tells clamd's PID (never scanned). A local clamd's own config
// (found from its command line) names its DatabaseDirectory, watched for new files (custom and third-party
// databases leave VERSION alone), and its LogFile, which says when clamd has really loaded them: until then
// nothing new is cached, however long clamd takes (its SelfCheck may come round only every hour).
import { closeSync, existsSync, fstatSync, openSync, readSync, watch, type FSWatcher } from "node:fs";
import { requestAsync } from "../clamd/async-request.ts";
import { describeEndpoint } from "../clamd/address.ts";
import { describeLocalClamd, isDirectory, pidListeningOn, type LocalClamd } from "../clamd/local-clamd.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { identify, type ProcessIdentity } from "./trusted-processes.ts";

export interface InvalidationOptions {
  endpoints: ClamdEndpoint[];
  /** DatabaseDirectory from onacc's own config, when it names one (watched besides every local clamd's). */
  databaseDirectory?: string;
  timeoutMs: number;
  /** VERSION poll interval of every endpoint. */
  pollMs?: number;
  /** Extra wait after a clamd's SelfCheck interval before a reload it never reported is taken as done. */
  reloadMarginMs?: number;
  flush(reason: string): void;
  suspendCaching(on: boolean): void;
  /** Owners a loopback TCP listener must have to be taken for clamd (root, clamd's User). */
  trustedUids: readonly number[];
  /** The clamd processes on this host, whenever the list changes (they are never scanned). */
  clamdProcesses(list: ProcessIdentity[]): void;
  warn(message: string): void;
  verbose(message: string): void;
}

interface EndpointState {
  endpoint: ClamdEndpoint;
  description: string;
  version?: string;
  reachable: boolean;
  process?: ProcessIdentity;
  clamd?: LocalClamd;
}

/** A change in a database directory that some clamd still has to load. */
interface PendingReload {
  since: number;
  deadline: number;
  /** clamd log files to hear "loaded" from, with the offset where the change began. */
  logs: Map<string, number>;
  heard: boolean;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
// clamd 1.x logs these when a reload ends (server-th.c); "Activating…" comes right before the switch.
const RELOAD_DONE = /Activating the newly loaded database|Database reload completed|Database reload failed, keeping the previous instance/;
const RELOAD_LOADED = /Database correctly reloaded/;
/** After "loaded" without "activating" (older clamd), the switch is taken as done after this. */
const ACTIVATE_GRACE_MS = 5000;

export class Invalidation {
  private readonly states: EndpointState[];
  private poller: ReturnType<typeof setInterval> | undefined;
  private readonly dirWatchers = new Map<string, FSWatcher>();
  private readonly logWatchers = new Map<string, FSWatcher>();
  private pending: PendingReload | undefined;
  private pendingTimer: ReturnType<typeof setTimeout> | undefined;
  private polling = false;
  private stopped = false;
  private published = "";

  constructor(private readonly o: InvalidationOptions) {
    this.states = o.endpoints.map((endpoint) => ({ endpoint, description: describeEndpoint(endpoint), reachable: false }));
  }

  start(): Promise<void> {
    this.poller = setInterval(() => void this.poll(), this.o.pollMs ?? 2000);
    this.poller.unref?.();
    if (this.o.databaseDirectory) this.watchDatabase(this.o.databaseDirectory);
    return this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.poller);
    clearTimeout(this.pendingTimer);
    for (const w of [...this.dirWatchers.values(), ...this.logWatchers.values()]) w.close();
    this.dirWatchers.clear();
    this.logWatchers.clear();
  }

  /** Polls every endpoint once (also the periodic tick). */
  async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      await Promise.all(this.states.map((s) => this.pollOne(s)));
      this.publishProcesses();
    } finally {
      this.polling = false;
    }
  }

  private async pollOne(s: EndpointState): Promise<void> {
    let peerPid: number | undefined;
    let version: string;
    try {
      version = await requestAsync(s.endpoint, "zVERSION\0", this.o.timeoutMs, (pid) => (peerPid = pid));
    } catch {
      // Unreachable: scans report it. When it answers again it may have other signatures (see below).
      s.reachable = false;
      return;
    }
    if (this.stopped) return;
    const cameBack = !s.reachable && s.version !== undefined;
    const changed = s.version !== undefined && version !== s.version;
    s.reachable = true;
    s.version = version;
    this.learnProcess(s, peerPid);
    if (changed) this.settled(`clamd at ${s.description} now reports ${JSON.stringify(version)}`);
    else if (cameBack) this.o.flush(`clamd at ${s.description} answers again (it may have loaded other signatures)`);
  }

  /** Keeps the endpoint's clamd process current: a new PID means a restarted clamd, with its own config. */
  private learnProcess(s: EndpointState, peerPid: number | undefined): void {
    const alive = s.process && identify(s.process.pid)?.startTime === s.process.startTime;
    let pid = peerPid;
    if (pid === undefined && s.endpoint.kind === "tcp" && LOOPBACK.has(s.endpoint.host)) {
      pid = alive ? s.process!.pid : pidListeningOn(s.endpoint.port, this.o.trustedUids);
    }
    const id = identify(pid);
    if (!id) {
      if (!alive) s.process = undefined;
      return;
    }
    if (s.process && s.process.pid === id.pid && s.process.startTime === id.startTime) return;
    s.process = id;
    s.clamd = describeLocalClamd(id.pid);
    if (s.clamd) {
      this.o.verbose(`clamd at ${s.description} is pid ${id.pid}; config ${s.clamd.configFile}, signatures in ${s.clamd.databaseDirectory}`);
      this.watchDatabase(s.clamd.databaseDirectory);
      if (s.clamd.logFile) this.watchLog(s.clamd.logFile);
    }
  }

  private publishProcesses(): void {
    const list: ProcessIdentity[] = [];
    for (const s of this.states) if (s.process && !list.some((p) => p.pid === s.process!.pid)) list.push(s.process);
    const key = JSON.stringify(list);
    if (key === this.published) return;
    this.published = key;
    this.o.clamdProcesses(list);
  }

  private watchDatabase(dir: string): void {
    if (this.dirWatchers.has(dir)) return;
    if (!isDirectory(dir)) {
      this.o.warn(`clamd's DatabaseDirectory "${dir}" is not a directory onacc can watch: signature updates there are seen only through clamd's VERSION`);
      return;
    }
    try {
      const w = watch(dir, () => this.databaseChanged(dir));
      w.on("error", () => undefined);
      this.dirWatchers.set(dir, w);
    } catch (err) {
      this.o.warn(`cannot watch DatabaseDirectory "${dir}" for signature updates: ${(err as Error).message}; relying on clamd's VERSION`);
    }
  }

  // ---- a database change, until clamd has loaded it --------------------------------------------

  private databaseChanged(dir: string): void {
    if (this.stopped) return;
    const now = Date.now();
    const first = this.pending === undefined;
    const clamds = this.states.map((s) => s.clamd).filter((c): c is LocalClamd => c !== undefined && c.databaseDirectory === dir);
    // The latest a clamd reloads by itself is its next SelfCheck; SelfCheck 0 never does (only on RELOAD).
    const selfCheck = Math.max(0, ...clamds.map((c) => (c.selfCheckSeconds > 0 ? c.selfCheckSeconds : 600)));
    const deadline = now + (clamds.length > 0 ? selfCheck : 600) * 1000 + (this.o.reloadMarginMs ?? 60_000);
    // Only what clamd logs after this change counts as having loaded it.
    const logs = this.pending?.logs ?? new Map<string, number>();
    for (const c of clamds) if (c.logFile) logs.set(c.logFile, sizeOf(c.logFile));
    this.pending = { since: now, deadline: Math.max(deadline, this.pending?.deadline ?? 0), logs, heard: false };
    if (first) {
      this.o.suspendCaching(true);
      this.o.flush(`clamd's database directory ${dir} changed; nothing is cached until clamd has loaded it`);
    }
    this.armDeadline();
  }

  private armDeadline(): void {
    clearTimeout(this.pendingTimer);
    const p = this.pending;
    if (!p) return;
    this.pendingTimer = setTimeout(() => {
      if (this.pending !== p) return;
      this.o.warn("no clamd reported loading the changed database (no LogFile to read, or it did not reload): caching again after its SelfCheck interval");
      this.settled("database change settled");
    }, Math.max(0, p.deadline - Date.now()));
    this.pendingTimer.unref?.();
  }

  private watchLog(file: string): void {
    if (this.logWatchers.has(file) || !existsSync(file)) return;
    try {
      const w = watch(file, () => this.logGrew(file));
      w.on("error", () => undefined);
      this.logWatchers.set(file, w);
    } catch {
      /* without the log, the SelfCheck deadline decides */
    }
  }

  private logGrew(file: string): void {
    const p = this.pending;
    if (!p) return;
    const from = p.logs.get(file);
    if (from === undefined) return;
    const { text, end } = readFrom(file, from);
    p.logs.set(file, end);
    if (RELOAD_DONE.test(text)) {
      // The new engine is switched in right after this line: give it a moment.
      setTimeout(() => this.pending === p && this.settled(`clamd loaded the new database (${file})`), 500).unref?.();
    } else if (RELOAD_LOADED.test(text) && !p.heard) {
      p.heard = true;
      setTimeout(() => this.pending === p && this.settled(`clamd loaded the new database (${file})`), ACTIVATE_GRACE_MS).unref?.();
    }
  }

  /** The reload is over (or the version moved): forget what was cached with the old signatures. */
  private settled(reason: string): void {
    const wasPending = this.pending !== undefined;
    this.pending = undefined;
    clearTimeout(this.pendingTimer);
    this.o.flush(reason);
    if (wasPending) this.o.suspendCaching(false);
  }
}

function sizeOf(file: string): number {
  try {
    const fd = openSync(file, "r");
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0;
  }
}

/** The bytes appended to `file` since `offset` (from the start again when the file was rotated). */
function readFrom(file: string, offset: number): { text: string; end: number } {
  try {
    const fd = openSync(file, "r");
    try {
      const size = fstatSync(fd).size;
      const start = size < offset ? 0 : offset;
      const length = Math.min(size - start, 1 << 20);
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, size - length);
      return { text: buf.toString("latin1"), end: size };
    } finally {
      closeSync(fd);
    }
  } catch {
    return { text: "", end: offset };
  }
}
