// Many clamd scans in flight from one thread: a fixed set of conversation slots over non-blocking sockets,
// whose fds the caller's own poll loop waits on together with its own. Each job goes to an endpoint chosen
// by src/clamd/failover.ts, fails over and is retried there within its deadline, and is reported once.
//
// The caller's loop, with its own fds first:
//   const set = new PollSet(1 + mux.capacity);
//   for (;;) {
//     set.set(0, eventFd, POLLIN);
//     const n = mux.prepare(set, 1);
//     set.wait(mux.timeoutMs(), 1 + n);
//     if (set.revents(0)) { /* take new work; mux.submit(...) */ }
//     mux.dispatch(set, 1, n);           // calls onDone for every job that ended
//   }
import { monotonicMs } from "../../ffi/libc.ts";
import { ClamdError } from "../errors.ts";
import { describeEndpoint } from "./address.ts";
import { targetOf, type Target } from "./connection.ts";
import { Conversation, isScan, Request, SharedIo } from "./conversation.ts";
import { isEndpointFailure, NO_ENDPOINT, OUT_OF_TIME, Route } from "./failover.ts";
import { quotePath, scanPathProblem, CLAMD_COMMAND_BUFFER } from "./protocol.ts";
import type { PoolSettings } from "./pool-settings.ts";
import { PoolShared, type PoolScanMode } from "./pool-shared.ts";
import type { PollSet } from "../../ffi/poll.ts";
import type { ScanMode, ScanOutcome, Verdict } from "./types.ts";

/** What a PING or VERSION request came back with (the blocking client's requests). */
export type RequestOutcome = { ok: true; reply: string; attempts: number } | { ok: false; error: ClamdError; attempts: number };

export interface MultiplexerOptions {
  pool: PoolSettings;
  /**
   * How file contents reach each endpoint, one entry per pool endpoint (same order): decided once, by
   * the caller. "fdpass" needs a unix endpoint; "path" needs a clamd that sees this file system.
   */
  modes: readonly ScanMode[];
  /** Path mode reports every matching signature (zALLMATCHSCAN) instead of the first (zCONTSCAN). */
  allmatch?: boolean;
  /** Jobs in flight at once (OnAccessMaxThreads); submit() refuses more. */
  capacity: number;
  /**
   * Called once per submitted scan, from dispatch() (or close()): its token, the outcome (shared
   * objects: read, never change), and the endpoint that gave it (-1 when none was tried).
   */
  onDone(token: number, outcome: ScanOutcome, endpoint: number): void;
  /** Called once per request (PING, VERSION) submitted with submitRequest(), like onDone. */
  onReply?(token: number, outcome: RequestOutcome, endpoint: number): void;
  /**
   * Who listens on a unix endpoint, from SO_PEERCRED of each connection as it connects (also from
   * inside submit()): clamd's PID, or undefined when it cannot be known (0: outside this PID namespace;
   * 1: a socket systemd holds for clamd).
   */
  onPeerPid?(endpoint: number, pid: number | undefined): void;
}

const MODE_OF_REQUEST: readonly PoolScanMode[] = ["fdpass", "stream", "path", "path"];

const CLEAN_VERDICT: Verdict = Object.freeze({ kind: "clean" });
/** Clean after one attempt: by far the most common outcome, shared. */
const CLEAN_ONCE: ScanOutcome = Object.freeze({ ok: true, verdict: CLEAN_VERDICT, attempts: 1 });

class _Slot {
  busy = false;
  /** Bumped whenever the slot's job ends: poll entries of an older job are ignored. */
  gen = 0;
  token = 0;
  request: Request = Request.fildes;
  /** The request comes from the modes table, per endpoint tried (not from the job). */
  byTable = true;
  fd = -1;
  deadline = Infinity;
  submittedAt = 0;
  pathLength = 0;
  path: Uint8Array | undefined;
  endpoint = -1;
  attempts = 0;
  /** An outcome decided inside submit(), reported by the next dispatch(). */
  settled: ScanOutcome | RequestOutcome | undefined;
  readonly route: Route;
  readonly conversation: Conversation;
  constructor(
    readonly index: number,
    io: SharedIo,
    shared: PoolShared,
    settings: PoolSettings,
    onPeerPid: (slot: _Slot, pid: number) => void,
  ) {
    this.route = new Route(shared, settings);
    this.conversation = new Conversation(io, (pid) => onPeerPid(this, pid));
  }
}

export class ClamdMultiplexer {
  readonly capacity: number;
  private readonly settings: PoolSettings;
  private readonly shared: PoolShared;
  private readonly targets: Target[];
  private readonly slots: _Slot[];
  private readonly free: Int32Array;
  private freeCount: number;
  private settledCount = 0;
  private readonly polledSlot: Int32Array;
  private readonly polledGen: Int32Array;
  /** Per endpoint, the request its table mode becomes. */
  private readonly defaultRequest: Request[];
  private readonly anyEndpoint: Uint8Array;
  private readonly unixEndpoints: Uint8Array;
  /** Endpoints whose table mode is not "path": where a job goes when its path cannot be sent. */
  private readonly notByPath: Uint8Array;
  private readonly tableUsesPath: boolean;
  private inSubmit = false;
  private closed = false;

  constructor(private readonly o: MultiplexerOptions) {
    const s = o.pool;
    if (!Number.isInteger(o.capacity) || o.capacity < 1) throw new RangeError(`scans in flight must be a whole number ≥ 1, got ${o.capacity}`);
    if (o.modes.length !== s.endpoints.length) throw new RangeError(`${o.modes.length} scan modes given for ${s.endpoints.length} clamd endpoints`);
    s.endpoints.forEach((e, i) => {
      if (o.modes[i] === "fdpass" && e.kind !== "unix") {
        throw new RangeError(`clamd endpoint ${describeEndpoint(e)} cannot take descriptors (fdpass needs a unix socket): give it "stream"`);
      }
    });
    this.capacity = o.capacity;
    this.settings = s;
    this.shared = new PoolShared(s.shared, s.endpoints.length);
    this.targets = s.endpoints.map(targetOf);
    const io = new SharedIo(s.streamMaxLength);
    const hook = (slot: _Slot, pid: number) => this.o.onPeerPid?.(slot.endpoint, pid > 1 ? pid : undefined);
    this.slots = Array.from({ length: o.capacity }, (_, i) => new _Slot(i, io, this.shared, s, hook));
    this.free = new Int32Array(o.capacity).map((_, i) => o.capacity - 1 - i);
    this.freeCount = o.capacity;
    this.polledSlot = new Int32Array(o.capacity);
    this.polledGen = new Int32Array(o.capacity);
    this.defaultRequest = o.modes.map((m) => this.requestOf(m, o.allmatch === true));
    this.anyEndpoint = new Uint8Array(s.endpoints.length).fill(1);
    this.unixEndpoints = Uint8Array.from(s.endpoints, (e) => (e.kind === "unix" ? 1 : 0));
    this.notByPath = Uint8Array.from(o.modes, (m) => (m === "path" ? 0 : 1));
    this.tableUsesPath = o.modes.includes("path");
  }

  /** Jobs submitted and not reported yet. */
  get inFlight(): number {
    return this.capacity - this.freeCount;
  }

  /**
   * Starts a scan of the file behind `fd` (the caller's: never closed here, and read only with pread) in
   * the mode the table gives each endpoint tried, until `deadline` (monotonic ms, like monotonicMs()).
   * `path` (bytes, copied) is needed where the mode is "path". `mode` overrides the table for this one
   * job (e.g. "fdpass" for a file whose path clamd cannot be sent); endpoints that cannot carry it are
   * skipped. Returns false, doing nothing, when `capacity` jobs are in flight. Never calls onDone itself:
   * the outcome comes from a later dispatch(), even when it is known at once.
   */
  submit(token: number, fd: number, deadline: number, path?: Uint8Array, mode?: ScanMode): boolean {
    return this.start(token, mode === undefined ? -1 : this.requestOf(mode, this.o.allmatch === true), fd, deadline, path, path?.length ?? 0);
  }

  /**
   * Like submit() with the request given outright: a scan (fildes, instream, contscan, allmatch) or
   * PING/VERSION (reported to onReply). For the blocking clients in this folder.
   */
  submitRequest(token: number, request: Request, fd: number, deadline: number, path?: Uint8Array): boolean {
    return this.start(token, request, fd, deadline, path, path?.length ?? 0);
  }

  /**
   * Writes the fds to wait on into `set` from entry `first` on; returns how many (at most `capacity`).
   * Conversations waiting only for a time are left out: timeoutMs() covers them.
   */
  prepare(set: PollSet, first: number): number {
    let k = 0;
    for (const slot of this.slots) {
      if (!slot.busy || slot.settled !== undefined) continue;
      const c = slot.conversation;
      const fd = c.pollFd;
      if (fd < 0) continue;
      set.set(first + k, fd, c.pollEvents);
      this.polledSlot[k] = slot.index;
      this.polledGen[k] = slot.gen;
      k++;
    }
    return k;
  }

  /** How long the caller's poll() may wait before dispatch() has work: -1 with nothing in flight, 0 with outcomes to report. */
  timeoutMs(now = monotonicMs()): number {
    if (this.settledCount > 0) return 0;
    if (this.freeCount === this.capacity) return -1;
    let wake = Infinity;
    for (const slot of this.slots) if (slot.busy) wake = Math.min(wake, slot.conversation.wakeAt);
    if (wake === Infinity) return -1;
    return Math.max(0, Math.ceil(wake - now));
  }

  /**
   * After poll(): goes on with every conversation whose fd (entries first..first+count of `set`, as
   * prepare() wrote them) is ready or whose time has come, and reports every job that ended.
   */
  dispatch(set: PollSet, first: number, count: number): void {
    const now = monotonicMs();
    if (this.settledCount > 0) this.reportSettled();
    for (let k = 0; k < count; k++) {
      const revents = set.revents(first + k);
      if (revents === 0) continue;
      const slot = this.slots[this.polledSlot[k]!]!;
      if (!slot.busy || slot.gen !== this.polledGen[k] || slot.settled !== undefined) continue;
      slot.conversation.advance(revents, now);
      if (slot.conversation.done && this.attemptEnded(slot)) this.nextAttempt(slot, monotonicMs());
    }
    for (const slot of this.slots) {
      if (!slot.busy || slot.settled !== undefined) continue;
      const c = slot.conversation;
      if (c.wakeAt > now) continue;
      c.advance(0, now);
      if (c.done && this.attemptEnded(slot)) this.nextAttempt(slot, monotonicMs());
    }
  }

  /** Ends every job in flight with an error outcome (reported now) and closes their sockets. */
  close(reason = "the scanner is stopping"): void {
    this.closed = true;
    for (const slot of this.slots) {
      if (!slot.busy) continue;
      if (slot.settled === undefined) {
        slot.conversation.abort();
        if (slot.endpoint >= 0) this.shared.leave(slot.endpoint);
        slot.settled = this.failure(slot, new ClamdError("connect", `Scan abandoned: ${reason}`));
        this.settledCount++;
      }
    }
    this.reportSettled();
  }

  // ---- jobs ---------------------------------------------------------------------------------------

  private requestOf(mode: ScanMode, allmatch: boolean): Request {
    if (mode === "fdpass") return Request.fildes;
    if (mode === "stream") return Request.instream;
    return allmatch ? Request.allmatch : Request.contscan;
  }

  private start(token: number, request: Request | -1, fd: number, deadline: number, path: Uint8Array | undefined, pathLength: number): boolean {
    if (this.closed) throw new Error("ClamdMultiplexer.submit() after close()");
    if (this.freeCount === 0) return false;
    const slot = this.slots[this.free[--this.freeCount]!]!;
    slot.busy = true;
    slot.settled = undefined;
    slot.token = token;
    slot.byTable = request === -1;
    slot.request = request === -1 ? this.defaultRequest[0]! : request;
    slot.fd = fd;
    slot.deadline = deadline;
    slot.endpoint = -1;
    slot.attempts = 0;
    slot.pathLength = 0;
    const now = monotonicMs();
    slot.submittedAt = now;
    const endpoints = this.route(slot, path, pathLength);
    if (endpoints instanceof ClamdError) {
      this.settle(slot, this.failure(slot, endpoints));
      return true;
    }
    slot.route.begin(deadline, endpoints);
    this.inSubmit = true;
    try {
      this.nextAttempt(slot, now);
    } finally {
      this.inSubmit = false;
    }
    return true;
  }

  /**
   * The endpoints that can carry the job (1 per endpoint), or why none can — checked before any endpoint
   * is tried, so a path clamd cannot be sent is never held against an endpoint. Copies the path.
   */
  private route(slot: _Slot, path: Uint8Array | undefined, pathLength: number): Uint8Array | ClamdError {
    const byPath = slot.byTable ? this.tableUsesPath : slot.request === Request.contscan || slot.request === Request.allmatch;
    if (byPath) {
      const command = (slot.byTable ? this.o.allmatch === true : slot.request === Request.allmatch) ? "ALLMATCHSCAN" : "CONTSCAN";
      const problem = path === undefined ? undefined : scanPathProblem(path, pathLength, command);
      if (path !== undefined && problem === undefined) {
        slot.path ??= new Uint8Array(new ArrayBuffer(CLAMD_COMMAND_BUFFER));
        slot.path.set(path.subarray(0, pathLength));
        slot.pathLength = pathLength;
      } else if (slot.byTable && this.notByPath.includes(1)) {
        return this.notByPath; // the endpoints that take the file without its path
      } else if (path === undefined) {
        return new ClamdError("refused", `Cannot scan fd ${slot.fd} by path: no path was given`);
      } else {
        return new ClamdError("refused", `Cannot scan ${quotePath(path.subarray(0, pathLength))} by path: it ${problem}`);
      }
    }
    if (slot.byTable) return this.anyEndpoint;
    if (slot.request !== Request.fildes) return this.anyEndpoint;
    if (this.unixEndpoints.includes(1)) return this.unixEndpoints;
    const where = this.targets.length === 1 ? `clamd at ${this.targets[0]!.description}` : `clamd (${this.targets.map((t) => t.description).join(", ")})`;
    return new ClamdError("refused", `Cannot pass fd ${slot.fd} to ${where}: descriptor passing needs a unix socket (use stream mode)`);
  }

  /** Starts the next attempt of the job (failover, retry round), or ends the job when none is left. */
  private nextAttempt(slot: _Slot, now: number): void {
    for (;;) {
      const i = slot.route.next(now);
      if (i === OUT_OF_TIME) return this.end(slot, this.failure(slot, this.outOfTime(slot)));
      if (i === NO_ENDPOINT) {
        if (slot.route.tries === 0) {
          this.shared.countAllDown();
          return this.end(slot, this.failure(slot, this.allDownError(now)));
        }
        return this.end(slot, this.failure(slot, slot.route.last ?? this.allDownError(now)));
      }
      slot.endpoint = i;
      if (slot.byTable) slot.request = this.defaultRequest[i]!;
      if (isScan(slot.request)) this.shared.countMode(MODE_OF_REQUEST[slot.request]!);
      this.shared.enter(i);
      slot.attempts++;
      const s = this.settings;
      // The step timeout as messages show it; the deadline itself stays exact.
      const timeoutMs = Math.max(1, Math.round(Math.min(s.timeoutMs, slot.deadline - now)));
      slot.conversation.start(this.targets[i]!, slot.request, slot.fd, slot.path, slot.pathLength, timeoutMs, s.streamMaxLength, slot.deadline, now);
      if (!slot.conversation.done || !this.attemptEnded(slot)) return;
      now = monotonicMs();
    }
  }

  /** The attempt in `slot` ended: ends the job with its outcome, or returns true when the job goes on to another attempt. */
  private attemptEnded(slot: _Slot): boolean {
    const error = slot.conversation.error;
    const i = slot.endpoint;
    this.shared.leave(i);
    if (error === undefined) {
      this.shared.countScan(i);
      // Unsupervised, a working endpoint is its own proof of life.
      if (!this.shared.isUp(i) && !this.shared.supervised(this.settings.healthIntervalMs, monotonicMs())) this.shared.markUp(i);
      this.end(slot, this.success(slot));
      return false;
    }
    if (!isEndpointFailure(error.kind)) {
      // About the file or the request (unreadable, too large, refused): another clamd would say the same.
      this.shared.countKind(error.kind);
      this.end(slot, this.failure(slot, error));
      return false;
    }
    slot.route.failed(i, error, monotonicMs());
    return true;
  }

  private success(slot: _Slot): ScanOutcome | RequestOutcome {
    const c = slot.conversation;
    if (!isScan(slot.request)) return { ok: true, reply: c.replyText, attempts: slot.attempts };
    const parsed = c.reply();
    if (!parsed.ok) throw new Error("unreachable: a failed reply is an error");
    if (parsed.verdict.kind === "clean" && slot.attempts === 1) return CLEAN_ONCE;
    return { ok: true, verdict: parsed.verdict, attempts: slot.attempts };
  }

  private failure(slot: _Slot, error: ClamdError): ScanOutcome | RequestOutcome {
    return { ok: false, error, attempts: slot.attempts };
  }

  /** The job is over: reported now from dispatch(), or by the next dispatch() when inside submit(). */
  private end(slot: _Slot, outcome: ScanOutcome | RequestOutcome): void {
    if (this.inSubmit) return this.settle(slot, outcome);
    this.release(slot);
    this.report(slot, outcome);
  }

  private settle(slot: _Slot, outcome: ScanOutcome | RequestOutcome): void {
    slot.settled = outcome;
    this.settledCount++;
  }

  private reportSettled(): void {
    for (const slot of this.slots) {
      const outcome = slot.settled;
      if (!slot.busy || outcome === undefined) continue;
      this.settledCount--;
      this.release(slot);
      this.report(slot, outcome);
    }
  }

  private release(slot: _Slot): void {
    slot.busy = false;
    slot.settled = undefined;
    slot.gen = (slot.gen + 1) | 0;
    this.free[this.freeCount++] = slot.index;
  }

  private report(slot: _Slot, outcome: ScanOutcome | RequestOutcome): void {
    if (isScan(slot.request)) this.o.onDone(slot.token, outcome as ScanOutcome, slot.endpoint);
    else this.o.onReply?.(slot.token, outcome as RequestOutcome, slot.endpoint);
  }

  private outOfTime(slot: _Slot): ClamdError {
    const last = slot.route.last;
    const why = last ? `; last error: ${last.message}` : "";
    const budget = Math.round(slot.deadline - slot.submittedAt);
    return new ClamdError(last?.kind === "connect" ? "connect" : "timeout", `No clamd endpoint answered within the scan deadline of ${budget} ms${why}`, { cause: last });
  }

  private allDownError(now: number): ClamdError {
    const list = this.targets
      .map((t, i) => {
        const kind = this.shared.lastKind(i);
        const since = this.shared.downSince(i);
        return `${t.description} (down ${((now - since) / 1000).toFixed(1)} s${kind ? `, ${kind}` : ""})`;
      })
      .join(", ");
    return new ClamdError("connect", `No clamd endpoint is up: ${list}; they are PINGed in the background and rejoin when they answer`);
  }
}
