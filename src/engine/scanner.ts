// The scanner: one thread that keeps up to OnAccessMaxThreads scans in flight. It takes events from the
// ring (and, below them in priority, background scans), hands each file to clamd through the multiplexer
// (src/clamd/multiplexer.ts), and when a verdict comes back writes the one fanotify response, remembers a
// clean verdict, logs, acts on detections and closes the event fd exactly once. It sleeps in one poll()
// over its wake-up eventfd and every clamd conversation in flight.
import { FAN_ALLOW, FAN_DENY, ResponseWriter } from "../../ffi/fanotify.ts";
import { FILE_PEEK_FLAGS } from "../../ffi/fcntl.ts";
import { FdPath, Fstat, S_IFMT, S_IFREG, WriterProbe, emptyStat, type FdStat } from "../../ffi/fs.ts";
import { libc, monotonicMs } from "../../ffi/libc.ts";
import { POLLIN, PollSet, WakeFd } from "../../ffi/poll.ts";
import { ClamdError } from "../errors.ts";
import { ClamdMultiplexer } from "../clamd/multiplexer.ts";
import type { ScanOutcome } from "../clamd/types.ts";
import { displayPath } from "../log/display-path.ts";
import { LatencyHistogram } from "../status/histogram.ts";
import { BackgroundQueue, MAX_PATH_BYTES } from "./background.ts";
import { VerdictCache } from "./cache.ts";
import { changedRecently, noWriters, sameVersion } from "./cache-rules.ts";
import { Control } from "./control.ts";
import { Counters } from "./counters.ts";
import { FsLocality } from "./fs-locality.ts";
import { KernelCache } from "./kernel-cache.ts";
import { errorResponse, responseFor } from "./policy.ts";
import { RateLimit, withSuppressed } from "./ratelimit.ts";
import { EventRing, SlotFlag, SlotState } from "./ring.ts";
import type { EngineSettings } from "./settings.ts";
import { BACKGROUND_PID } from "./top-talkers.ts"; // onacc ops (issue 14)

/** What the scanner needs from the outside world; the Worker wires the real log and actions. */
export interface ScannerDeps {
  /** An infected file: log its signatures and take the configured action (the fd is still open). */
  found(path: Uint8Array | null, fd: number, signatures: string[]): void;
  error(message: string): void;
  verbose(message: string): void;
  /** Called when the log generation changed (SIGHUP). */
  reopenLog(): void;
  /** A clamd process met on a unix socket (SO_PEERCRED) that was not known yet. */
  clamdPid?(pid: number): void;
  /** Called when no scan ran for a while, and every GC_EVERY_SCANS scans under steady load. */
  idle?(): void;
  /** onacc ops (issue 14): top talkers: begin() when a job's scan starts, end() once answered (top-talkers.ts). */
  talkers?: { begin(job: number, pid: number, fd: number): void; end(job: number, denied: boolean): void };
  /**
   * onacc ops (issue 14): true when an infected file is a registered self-test file (self-test.ts); the
   * hook logs it, and it is neither counted as infected nor handed to found().
   */
  selfTest?(fd: number, path: Uint8Array | null, signatures: string[]): boolean;
}

/** Under steady load the scanner collects its garbage this often (see the Worker's idle()). */
const GC_EVERY_SCANS = 2000;
const IDLE_MS = 1000;

const enum JobKind {
  /** An event from the ring: a permission event to answer, or a notification to act on. */
  Event,
  /** A file that landed in the tree (extra scanning): no one waits for it. */
  Background,
  /** --allmatch: the path asked for every signature of a file already found infected. */
  Listing,
}

/** One scan in flight. Preallocated: a scan allocates nothing of its own. */
class Job {
  kind = JobKind.Event;
  /** A listing job's kind before it became one (done() ends it as that). */
  origin = JobKind.Event;
  slot = -1;
  fd = -1;
  perm = false;
  local = true;
  statOk = false;
  flushGen = 0;
  startedAt = 0;
  readonly before: FdStat = emptyStat();
  /** Background jobs: the path they were opened by. */
  path: Uint8Array | null = null;
  /** Listing jobs: the signatures of the verdict that started them. */
  signatures: string[] = [];
  constructor(readonly index: number) {}
}

export function runScanner(s: EngineSettings, deps: ScannerDeps): void {
  const control = Control.attach(s.control);
  const counters = Counters.attach(s.counters);
  const ring = EventRing.attach(s.ring);
  const background = BackgroundQueue.attach(s.background);
  const responder = new ResponseWriter(s.group);
  const wake = new WakeFd(s.scannerWakeFd);
  const fdPath = new FdPath();
  const fstat = new Fstat();
  const after = emptyStat();
  const cache = s.cache.user ? VerdictCache.attach(s.cache.user) : undefined;
  const kernelCache = s.cache.kernel ? new KernelCache(s.group, s.cache.ignoreMask) : undefined;
  const probe = new WriterProbe();
  const locality = new FsLocality();
  const latency = LatencyHistogram.attach(s.scan.latency);
  const errorLimit = new RateLimit(10_000);
  const probeLimit = new RateLimit(3_600_000);
  const capacity = s.scan.inFlight;
  // Background work fills at most half of the scans in flight (at least one): opens keep the rest.
  const backgroundCapacity = Math.max(1, capacity >> 1);
  const jobs = Array.from({ length: capacity }, (_, i) => new Job(i));
  const freeJobs = jobs.map((j) => j.index).reverse();
  let backgroundInFlight = 0;
  const pathBuf = new Uint8Array(new ArrayBuffer(MAX_PATH_BYTES + 1));
  const knownPeers = new Set<number>();
  let logGen = control.logGeneration();
  let scansSinceIdle = 0;

  const mux = new ClamdMultiplexer({
    pool: s.scan.pool,
    modes: s.scan.modes,
    allmatch: s.scan.listAllSignatures,
    capacity,
    onDone: (token, outcome) => finish(jobs[token]!, outcome),
    onPeerPid: (_endpoint, pid) => {
      if (pid === undefined || knownPeers.has(pid)) return;
      knownPeers.add(pid);
      deps.clamdPid?.(pid);
    },
  });

  const closeFd = (fd: number) => void libc.close(fd);
  const freeJob = (job: Job) => {
    job.path = null;
    job.signatures = [];
    freeJobs.push(job.index);
  };

  /**
   * Remembers a clean verdict before the opener goes on (it may write next): both caches are keyed to the
   * file version that was scanned. Not cached: a version that changed during the scan, one anybody holds
   * open for writing, one changed more recently than its file system's timestamps can tell apart, and a
   * scan that overlapped a cache flush (it may have used the old signatures). The flush check comes again
   * after the insert: a flush that began in between may have missed the new entry, which is then taken back.
   */
  const remember = (fd: number, before: FdStat, flushGen: number) => {
    if (control.cachingSuspended() || control.flushGeneration() !== flushGen || changedRecently(before)) return;
    let unchanged = false;
    let marked = false;
    if (kernelCache) {
      const r = kernelCache.markClean(fd, before, fstat, after, probe);
      if (r === "marked") counters.count("kernelMarks");
      else if (r === "undone") counters.count("kernelMarksUndone");
      marked = r === "marked";
      unchanged = marked || (r === "off" && fstat.stat(fd, after) === 0 && sameVersion(before, after) && noWriters(fd, probe));
    } else {
      unchanged = fstat.stat(fd, after) === 0 && sameVersion(before, after) && noWriters(fd, probe);
    }
    if (!unchanged && probe.lastErrno === 13 /* EACCES */) {
      const n = probeLimit.hit(monotonicMs());
      if (n !== null) deps.error("cannot tell whether files are open for writing (no CAP_LEASE?): verdicts for files root does not own are not cached");
    }
    const added = cache !== undefined && unchanged;
    if (added && cache.add(before)) counters.count("cacheEvictions");
    if (control.flushGeneration() !== flushGen || control.cachingSuspended()) {
      if (marked) kernelCache!.unmark(fd);
      if (added) cache.remove(before);
    }
  };

  // ---- starting scans ----------------------------------------------------------------------------

  const submit = (job: Job, deadline: number) => {
    control.scanEntered();
    job.startedAt = monotonicMs();
    if (!mux.submit(job.index, job.fd, deadline)) {
      // Cannot happen (a job is free only while the multiplexer has room), and still must not lose the event.
      finish(job, { ok: false, error: new ClamdError("protocol", "no room for another scan in flight"), attempts: 0 });
    }
  };

  const startEvent = (slot: number) => {
    if (!ring.startScan(slot)) {
      // The watchdog answered it while it waited in the ring.
      ring.release(slot, closeFd);
      return;
    }
    const job = jobs[freeJobs.pop()!]!;
    const flags = ring.flags(slot);
    job.kind = JobKind.Event;
    job.slot = slot;
    job.fd = ring.fd(slot);
    job.perm = (flags & SlotFlag.PERM) !== 0;
    job.local = (flags & SlotFlag.NOT_LOCAL) === 0;
    // Network and FUSE files get no stat here (it may hang on a dead server) and are never cached.
    job.statOk = job.local && fstat.stat(job.fd, job.before) === 0;
    job.flushGen = control.flushGeneration();
    deps.talkers?.begin(job.index, ring.pid(slot), job.fd); // onacc ops (issue 14)
    submit(job, ring.enqueued(slot) + s.scan.deadlineMs);
  };

  /** A background scan: opened here by path (the reader answers onacc's own open at once). */
  const startBackground = (): void => {
    const n = background.take(pathBuf);
    if (n < 0) return;
    pathBuf[n] = 0;
    const fd = libc.openat(-100, pathBuf, FILE_PEEK_FLAGS, 0);
    if (fd < 0) return; // gone again, or a symlink: nothing to scan
    const job = jobs[freeJobs.pop()!]!;
    job.kind = JobKind.Background;
    job.slot = -1;
    job.fd = fd;
    job.perm = false;
    job.statOk = fstat.stat(fd, job.before) === 0;
    const st = job.before;
    if (!job.statOk || (st.mode & S_IFMT) !== S_IFREG || st.size === 0 || (s.maxFileSize > 0 && st.size > s.maxFileSize)) {
      libc.close(fd);
      freeJob(job);
      return;
    }
    job.local = locality.isLocal(st.mntId, s.ownPid, monotonicMs());
    // Already found clean in this very version (and nobody can change it unseen): nothing to do.
    if (job.local && cache?.has(st) && noWriters(fd, probe)) {
      libc.close(fd);
      freeJob(job);
      return;
    }
    if (!job.local) job.statOk = false;
    job.path = pathBuf.slice(0, n);
    job.flushGen = control.flushGeneration();
    backgroundInFlight++;
    deps.talkers?.begin(job.index, BACKGROUND_PID, fd); // onacc ops (issue 14)
    submit(job, monotonicMs() + s.scan.deadlineMs);
  };

  // ---- a verdict ---------------------------------------------------------------------------------

  const finish = (job: Job, outcome: ScanOutcome) => {
    if (job.kind === JobKind.Listing) return finishListing(job, outcome);
    latency.recordLatency(monotonicMs() - job.startedAt);
    control.scanLeft();
    counters.count("scanned");
    if (job.kind === JobKind.Background) backgroundInFlight--;
    try {
      const clean = outcome.ok && outcome.verdict.kind === "clean";
      if (job.statOk && clean) remember(job.fd, job.before, job.flushGen);
      const isInfected = outcome.ok && outcome.verdict.kind === "infected";
      // A registered self-test file (onacc ops, issue 14) is denied like any other but not reported. It is
      // counted before its opener learns the verdict: the check asks for the count right after its open.
      const selfTest = isInfected && deps.selfTest?.(job.fd, job.path ?? fdPath.path(job.fd), (outcome.verdict as { signatures: string[] }).signatures) === true;
      let response = FAN_ALLOW;
      if (job.perm) {
        response = responseFor(outcome, s);
        if (ring.claimAnswer(job.slot, SlotState.SCANNING)) {
          responder.respond(job.fd, response);
          ring.answered(job.slot);
          counters.count(response === FAN_DENY ? "denied" : "allowed");
        } else {
          deps.verbose(`verdict arrived after the deadline (${Math.round(monotonicMs() - ring.enqueued(job.slot))} ms): already answered by the error policy`);
        }
      }
      deps.talkers?.end(job.index, job.perm && response === FAN_DENY); // onacc ops (issue 14)
      if (outcome.ok && outcome.verdict.kind === "infected") {
        if (selfTest) return done(job, null);
        counters.count("infected");
        // --allmatch: the open is answered already; ask for every signature before logging and acting.
        if (s.scan.listAllSignatures && startListing(job, outcome.verdict.signatures)) return;
        return done(job, outcome.verdict.signatures);
      }
      if (clean) {
        counters.count("clean");
        if (s.log.verbose) deps.verbose(`${where(job)}: OK`);
      } else {
        counters.count("scanErrors");
        const reason = outcome.ok ? (outcome.verdict.kind === "error" ? outcome.verdict.message : "") : outcome.error.message;
        const n = errorLimit.hit(monotonicMs());
        if (n !== null) {
          const decision = job.perm ? (response === FAN_ALLOW ? "allowed" : "denied") : "not scanned";
          deps.error(withSuppressed(`${where(job)}: scan failed, ${decision}: ${reason}`, n));
        }
      }
    } catch (err) {
      deps.error(`scanner failed on fd ${job.fd}: ${err instanceof Error ? err.message : String(err)}`);
    }
    done(job, null);
  };

  const where = (job: Job) => {
    const p = job.path ?? fdPath.path(job.fd);
    return p ? displayPath(p) : `fd ${job.fd}`;
  };

  /** Ends a job: detections logged and acted on, the opener answered (whatever happened), the fd closed. */
  const done = (job: Job, signatures: string[] | null) => {
    try {
      if (signatures) deps.found(job.path ?? fdPath.path(job.fd), job.fd, signatures);
    } catch (err) {
      deps.error(`acting on fd ${job.fd} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (job.kind === JobKind.Background) {
      libc.close(job.fd);
    } else {
      if (job.perm && ring.claimAnswer(job.slot, SlotState.SCANNING)) {
        responder.respond(job.fd, errorResponse(s));
        ring.answered(job.slot);
      }
      ring.release(job.slot, closeFd);
    }
    freeJob(job);
    if (++scansSinceIdle >= GC_EVERY_SCANS) {
      scansSinceIdle = 0;
      deps.idle?.();
    }
  };

  /** Turns the job into a path listing (ALLMATCHSCAN) of the infected file; false when it cannot. */
  const startListing = (job: Job, signatures: string[]): boolean => {
    const p = job.path ?? fdPath.path(job.fd);
    if (!p || isDeletedPath(p)) return false;
    job.origin = job.kind;
    job.kind = JobKind.Listing;
    job.signatures = signatures;
    job.path = p;
    if (mux.submit(job.index, job.fd, monotonicMs() + s.scan.deadlineMs, p, "path")) return true;
    job.kind = job.origin;
    return false;
  };

  const finishListing = (job: Job, outcome: ScanOutcome) => {
    let signatures = job.signatures;
    if (outcome.ok && outcome.verdict.kind === "infected") signatures = [...new Set([...signatures, ...outcome.verdict.signatures])];
    job.kind = job.origin; // back to a ring event or a background file, for done()
    done(job, signatures);
  };

  // ---- the loop ----------------------------------------------------------------------------------

  const polls = new PollSet(1 + capacity);
  try {
    while (!control.stopping()) {
      // Opens first; background files only with room to spare.
      while (freeJobs.length > 0) {
        const slot = ring.tryTake();
        if (slot < 0) break;
        startEvent(slot);
      }
      while (freeJobs.length > 0 && backgroundInFlight < backgroundCapacity && !background.isEmpty()) startBackground();

      polls.set(0, s.scannerWakeFd, POLLIN);
      const n = mux.prepare(polls, 1);
      let timeout = mux.timeoutMs();
      if (timeout < 0 || timeout > IDLE_MS) timeout = IDLE_MS;
      // Tell the reader to wake us, then look once more: an event queued before the flag was seen is taken now.
      control.setScannerAsleep(true);
      if ((freeJobs.length > 0 && ring.depth() > 0) || (freeJobs.length > 0 && backgroundInFlight < backgroundCapacity && !background.isEmpty())) timeout = 0;
      const ready = polls.wait(timeout, 1 + n);
      control.setScannerAsleep(false);
      if (polls.revents(0)) wake.drain();
      mux.dispatch(polls, 1, n);
      if (control.logGeneration() !== logGen) {
        logGen = control.logGeneration();
        deps.reopenLog();
      }
      if (ready === 0 && mux.inFlight === 0 && scansSinceIdle > 0) {
        scansSinceIdle = 0;
        deps.idle?.();
      }
    }
  } finally {
    // Every scan still in flight ends now (with an error outcome): its opener is answered, its fd closed.
    mux.close();
  }
}

// readlink gives "/dir/name (deleted)" for an unlinked file: clamd could not open that path.
const DELETED = new TextEncoder().encode(" (deleted)");
function isDeletedPath(p: Uint8Array): boolean {
  if (p.length < DELETED.length) return false;
  for (let i = 0; i < DELETED.length; i++) if (p[p.length - DELETED.length + i] !== DELETED[i]) return false;
  return true;
}
