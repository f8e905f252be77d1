// The reader: one thread that drains the fanotify group, answers at once what needs no scan (onacc's own
// opens, clamd, excluded users and paths, non-regular, empty and oversized files, versions found clean
// before) and queues the rest into the ring for the scanner. It also keeps the marks: the start-up walk,
// new folders (folders.ts), the re-marking after a cache flush, and the background work of extra scanning
// (background.ts) — long jobs a slice at a time, so an open never waits long behind them.
//
// It never blocks on slow work and never opens a file: anything it waited on could be waiting on it. Its
// only syscalls on an event's file are statx with AT_STATX_DONT_SYNC (never a trip to a network or FUSE
// server) and, on local file systems, the writer probe of a cache hit.
import {
  FAN_ALL_PERM_EVENTS,
  FAN_ALLOW,
  FAN_CLOSE_WRITE,
  FAN_Q_OVERFLOW,
  FAN_MARK_FILESYSTEM,
  FAN_MARK_FLUSH,
  FAN_MARK_MOUNT,
  ResponseWriter,
  fanotifyMarkErrno,
  forEachEvent,
} from "../../ffi/fanotify.ts";
import { Errno, errnoName } from "../../ffi/errors.ts";
import { AT_STATX_DONT_SYNC, FdPath, Fstat, S_IFMT, S_IFREG, WriterProbe, emptyStat } from "../../ffi/fs.ts";
import { errno, libc, monotonicMs, structBuffer } from "../../ffi/libc.ts";
import { POLLIN, PollSet, WakeFd } from "../../ffi/poll.ts";
import { ProcReader } from "../../ffi/procfs.ts";
import { PathResolver } from "../../ffi/resolve.ts";
import { afterStartupBurst, collectGarbage, GC_BACKSTOP_FACTOR, GC_EVERY_EVENTS, startupBurst } from "./footprint.ts";
import { BackgroundQueue, LandedFiles, Rewalk } from "./background.ts";
import { VerdictCache } from "./cache.ts";
import { noWriters } from "./cache-rules.ts";
import { Control } from "./control.ts";
import { Counters } from "./counters.ts";
import { Exclusions } from "./exclusions.ts";
import { Folders } from "./folders.ts";
import { FsLocality } from "./fs-locality.ts";
import { KernelCache, KernelFlush } from "./kernel-cache.ts";
import { IncludeMarker, markMounts, usableIncludePaths, type MarkReport } from "./marks.ts";
import { dirPrefixes } from "./paths.ts";
import { errorResponse } from "./policy.ts";
import { RateLimit, withSuppressed } from "./ratelimit.ts";
import { EventRing, SlotFlag } from "./ring.ts";
import type { EngineSettings, WorkerMessage } from "./settings.ts";
import { TrustedProcesses } from "./trusted-processes.ts";
import { ExtraExclusions } from "./extra-exclusions.ts"; // onacc ops (issue 14)
import type { OpsShared } from "./ops.ts"; // onacc ops (issue 14)

const READ_BUFFER = 64 * 1024; // ~2,700 event records per read()
/** Reads of the fanotify fd before slices of other work get their turn. */
const READS_PER_ROUND = 16;
/** /proc/self/fd links are at most PATH_MAX (4096) bytes. */
const PATH_BYTES_MAX = 4096;
/** How long one slice of a long job (re-marking, re-walk) may hold the thread. */
const SLICE_MS = 4;
/** A landed file is scanned once it has been quiet this long (repeated writes coalesce). */
const QUIET_MS = 200;
const MAX_PENDING_LANDED = 16_384;
const FLUSH_RETRY_MS = 5000;

/** What the start-up marking found: posted with "ready". */
export interface ReaderReady {
  directories: number;
  mounts: number;
  problems: string[];
  following: boolean;
}

export function runReader(s: EngineSettings, post: (m: WorkerMessage) => void, ops?: OpsShared): void {
  const control = Control.attach(s.control);
  const counters = Counters.attach(s.counters);
  const ring = EventRing.attach(s.ring);
  const background = BackgroundQueue.attach(s.background);
  const exclusions = new Exclusions(s.exclusions);
  const responder = new ResponseWriter(s.group);
  const wake = new WakeFd(s.readerWakeFd);
  const scannerWake = new WakeFd(s.scannerWakeFd);
  const fstat = new Fstat();
  const st = emptyStat();
  const after = emptyStat();
  const fdPath = new FdPath();
  const buf = structBuffer(READ_BUFFER);
  const view = new DataView(buf.buffer);
  const overloadResponse = errorResponse(s);
  const fullLimit = new RateLimit(60_000);
  const overflowLimit = new RateLimit(60_000);
  const readErrorLimit = new RateLimit(60_000);
  const deferLimit = new RateLimit(60_000);
  const checkUids = exclusions.hasUids;
  const checkPaths = s.checkPathsInReader && exclusions.hasPaths;
  const cache = s.cache.user ? VerdictCache.attach(s.cache.user) : undefined;
  const kernelCache = s.cache.kernel ? new KernelCache(s.group, s.cache.ignoreMask) : undefined;
  const proc = new ProcReader();
  const clamd = TrustedProcesses.attach(s.clamdProcesses);
  const locality = new FsLocality();
  const probe = new WriterProbe();
  // onacc ops (issue 14): ExcludeExe and ExcludePattern, counted per rule (extra-exclusions.ts).
  const extra = ops ? new ExtraExclusions(ops.exclusions) : undefined;
  const checkExtra = extra?.active === true;
  const log = (level: "error" | "warn" | "info" | "verbose", message: string) => post({ type: "log", level, message });

  const wakeScanner = () => {
    if (control.takeScannerAsleep()) scannerWake.wake();
  };

  const resolver = new PathResolver();
  const pathZ = new Uint8Array(PATH_BYTES_MAX + 1); // reused: no allocation per event
  const sameFileHere = (p: Uint8Array) => {
    if (p.length > PATH_BYTES_MAX) return false; // cannot be checked here: scanned
    pathZ.set(p);
    pathZ[p.length] = 0;
    return resolver.sameFile(pathZ, st.dev, st.ino) === "same";
  };

  const answer = (fd: number, perm: boolean, response: number) => {
    if (perm) responder.respond(fd, response);
    libc.close(fd);
  };

  // ---- one fanotify event ------------------------------------------------------------------------

  const onEvent = (mask: number, fd: number, pid: number) => {
    if (mask & FAN_Q_OVERFLOW) {
      counters.count("overflow");
      const n = overflowLimit.hit(monotonicMs());
      if (n !== null) log("warn", withSuppressed("fanotify queue overflowed: some events were lost", n));
      return;
    }
    if (fd < 0) return;
    counters.count("events");
    const perm = (mask & FAN_ALL_PERM_EVENTS) !== 0;
    if (pid === s.ownPid && pid > 0) {
      counters.count("ownPid");
      return answer(fd, perm, FAN_ALLOW);
    }
    const now = monotonicMs();
    // clamd never waits on onacc (its PID checked against its start time: a reused PID is someone else);
    // an opener onacc cannot see (pid 0) matches no exclusion.
    if (clamd.matches(pid, proc) || (checkUids && exclusions.uid(pid, proc))) {
      counters.count("excluded");
      return answer(fd, perm, FAN_ALLOW);
    }
    if (fstat.stat(fd, st, AT_STATX_DONT_SYNC) !== 0) {
      counters.count("vanished");
      return answer(fd, perm, FAN_ALLOW);
    }
    if ((st.mode & S_IFMT) !== S_IFREG) {
      counters.count("notRegular");
      return answer(fd, perm, FAN_ALLOW);
    }
    // Nothing to scan in an empty file (most often one just created: its writer opens it empty).
    if (st.size === 0) {
      counters.count("emptyFiles");
      return answer(fd, perm, FAN_ALLOW);
    }
    if (s.maxFileSize > 0 && st.size > s.maxFileSize) {
      counters.count("tooLarge");
      if (s.log.verbose) {
        const p = fdPath.path(fd);
        log("verbose", `skipped (size ${st.size} > OnAccessMaxFileSize ${s.maxFileSize}): ${p ? pathText(p) : `fd ${fd}`}`);
      }
      return answer(fd, perm, FAN_ALLOW);
    }
    // onacc ops (issue 14): the opener's executable (and its parents'), then the file's path pattern.
    if (checkExtra && extra!.skip(pid, fd, st, now)) {
      counters.count("excluded");
      return answer(fd, perm, FAN_ALLOW);
    }
    const filter = control.pathFilter();
    if (checkPaths || filter) {
      const p = fdPath.path(fd);
      // While the cache flush's temporary filesystem marks are up, events from outside the watched trees
      // arrive too: they are none of onacc's business. The path is the opener's, as its mount namespace shows
      // it: a bind mount of the attacker's own could make any file read as excluded. So a skip by path holds
      // only when that path, looked up here, is the very same file.
      if (p && (exclusions.path(p) || (filter && !exclusions.watched(p))) && sameFileHere(p)) {
        counters.count("excluded");
        return answer(fd, perm, FAN_ALLOW);
      }
    }
    // Network and FUSE files: their attributes above came from a cache, and their writes may come from
    // elsewhere. No verdict is cached for them, and the scanner treats them without a stat.
    const local = locality.isLocal(st.mntId, pid, now);
    // A file just written (FAN_CLOSE_WRITE) is scanned whatever the cache says; a hit counts only while
    // nobody holds the file open for writing (a shared mapping can change it without a trace).
    if (cache && local && !(mask & FAN_CLOSE_WRITE)) {
      if (cache.has(st) && noWriters(fd, probe)) {
        counters.count("cacheHits");
        // The kernel's mark for it was evicted (or this is notification mode): put it back where allowed.
        if (kernelCache && kernelCache.markClean(fd, st, fstat, after, probe) === "marked") counters.count("kernelMarks");
        return answer(fd, perm, FAN_ALLOW);
      }
      counters.count("cacheMisses");
    }
    const flags = (perm ? SlotFlag.PERM : 0) | (mask & FAN_CLOSE_WRITE ? SlotFlag.WRITTEN : 0) | (local ? 0 : SlotFlag.NOT_LOCAL);
    if (ring.push(fd, pid, flags, now)) {
      counters.count("queued");
      wakeScanner();
      return;
    }
    // Ring full: every scan slot is busy and the backlog is at its bound. Answer now by the error policy
    // rather than make the opener wait for a slot (see README: "When onacc is overloaded").
    counters.count("ringFull");
    counters.count(overloadResponse === FAN_ALLOW ? "allowed" : "denied");
    const n = fullLimit.hit(now);
    if (n !== null) log("warn", withSuppressed(`event queue full (${ring.capacity} pending): answered without a scan by the error policy`, n));
    answer(fd, perm, overloadResponse);
  };

  // ---- start-up marks ----------------------------------------------------------------------------

  startupBurst();
  const m = s.marks;
  const marks: MarkReport = { mounts: 0, directories: 0, problems: [] };
  markMounts(s.group, m.mask, m.mountPaths, marks);
  const { usable, problems } = usableIncludePaths(m.includePaths, m.excludePaths);
  marks.problems.push(...problems);
  const landed = new LandedFiles(QUIET_MS, MAX_PENDING_LANDED);
  let rewalkSince = -1; // wall-clock ms of the first dropped background scan, -1 when none
  const drop = () => {
    counters.count("extraScansDeferred");
    if (rewalkSince < 0) rewalkSince = Date.now() - 1000;
    const n = deferLimit.hit(monotonicMs());
    if (n !== null) log("warn", withSuppressed("background scans are behind: the files concerned are found again by a re-walk once the queue drains", n));
  };
  let folders: Folders | undefined;
  let unfollowed = usable;
  if (usable.length > 0 && (m.follow || m.extraScanning)) {
    folders = new Folders(s.group, { ...m, includePaths: usable }, counters, log, s.log.verbose, (path) => {
      if (!landed.add(path, monotonicMs())) drop();
    });
    const r = folders.start();
    marks.directories += r.dirs;
    unfollowed = r.unwatched;
    // A tree the watcher cannot take (a file system its kind of mark does not support) still gets its
    // prevention marks, below; new folders in it are not followed.
    for (const p of r.unwatched) marks.problems.push(`new folders under "${p}" are not followed (the directory watcher cannot take it); its existing folders are protected`);
  }
  if (unfollowed.length > 0) {
    const marker = new IncludeMarker(s.group, m.mask, unfollowed, m.excludePaths);
    const r = marker.runToEnd();
    marks.directories += r.directories;
    marks.problems.push(...r.problems);
  }
  afterStartupBurst();
  const ready: ReaderReady = { ...marks, following: folders?.fd !== undefined && folders.fd >= 0 };
  post({ type: "ready", worker: "reader", detail: JSON.stringify(ready) });

  // ---- the loop ----------------------------------------------------------------------------------

  const excludedBytes = dirPrefixes(m.excludePaths).map((p) => p.subarray(0, p.length - 1));
  const polls = new PollSet(3);
  let flush: KernelFlush | undefined;
  let flushRequest = control.kernelFlushedUpTo();
  let flushRetryAt = 0;
  let rewalk: Rewalk | undefined;
  const now = () => monotonicMs();

  let eventsSinceGc = 0;
  const readEvents = () => {
    for (let reads = 0; reads < READS_PER_ROUND; reads++) {
      const n = libc.read(s.group, buf, READ_BUFFER);
      if (n <= 0) {
        const e = n < 0 ? errno() : 0;
        if (e === Errno.EINTR) continue;
        if (e !== Errno.EAGAIN && e !== 0) {
          // EMFILE/ENFILE: the kernel could not open event fds (it denies those events itself).
          const k = readErrorLimit.hit(monotonicMs());
          if (k !== null) log("error", withSuppressed(`reading fanotify events failed: ${errnoName(e)}`, k));
        }
        // Nothing waits in the kernel now: the moment to collect, as the collection runs on this thread.
        if (eventsSinceGc >= GC_EVERY_EVENTS) {
          eventsSinceGc = 0;
          collectGarbage();
        }
        return false;
      }
      eventsSinceGc += forEachEvent(view, n, onEvent);
      // Under a load that never drains the queue, collect anyway now and then.
      if (eventsSinceGc >= GC_EVERY_EVENTS * GC_BACKSTOP_FACTOR) {
        eventsSinceGc = 0;
        collectGarbage();
      }
    }
    return true; // more may be waiting
  };

  const flushStep = () => {
    const asked = control.kernelFlushAsked();
    if (!flush && asked !== flushRequest && now() >= flushRetryAt) {
      try {
        flush = new KernelFlush(s.group, m.mask, { mountPaths: m.mountPaths, includePaths: usable, excludePaths: m.excludePaths }, control);
        flushRequest = asked;
      } catch (err) {
        flushRetryAt = now() + FLUSH_RETRY_MS;
        log("error", `flushing the kernel's verdict cache failed: ${err instanceof Error ? err.message : String(err)}; trying again in 5 s`);
        return;
      }
    }
    if (flush && flush.step(now, now() + SLICE_MS)) {
      for (const p of flush.report.problems) log("warn", p);
      log("verbose", `kernel verdict cache flushed; ${flush.report.directories} directories marked again`);
      flush = undefined;
      control.kernelFlushDone(flushRequest);
    }
  };

  const backgroundStep = () => {
    if (!m.extraScanning) return;
    let queued = false;
    landed.flushDue(now(), (path) => {
      if (!background.push(path)) return false;
      counters.count("extraScans");
      queued = true;
      return true;
    });
    // The queue drained after a drop: look for what was missed (files changed since the first drop).
    if (rewalkSince >= 0 && !rewalk && landed.size === 0 && background.isEmpty()) {
      rewalk = new Rewalk(usable, excludedBytes, rewalkSince);
      rewalkSince = -1;
    }
    if (rewalk) {
      const done = rewalk.step(SLICE_MS, now, (path) => {
        if (!background.push(path)) return false;
        counters.count("extraScans");
        queued = true;
        return true;
      });
      if (done) rewalk = undefined;
    }
    if (queued) wakeScanner();
  };

  // A reload replaces this engine: no new events (every mark off), then everything the kernel queued is read.
  // The events themselves are scanned and answered as usual; the runtime waits for the ring to drain.
  const retire = () => {
    folders?.close();
    folders = undefined;
    flush = undefined;
    rewalk = undefined;
    landed.clear();
    for (const kind of [0, FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM]) fanotifyMarkErrno(s.group, FAN_MARK_FLUSH | kind, 0, -100, null);
    while (readEvents()) {
      /* until EAGAIN */
    }
    control.setRetired();
  };

  try {
    while (!control.stopping()) {
      let k = 0;
      polls.set(k++, s.group, POLLIN);
      polls.set(k++, s.readerWakeFd, POLLIN);
      const dirFd = folders?.fd ?? -1;
      if (dirFd >= 0) polls.set(k++, dirFd, POLLIN);
      const busy = flush !== undefined || rewalk !== undefined || control.kernelFlushAsked() !== flushRequest;
      const due = landed.nextDueIn(now());
      const timeout = busy ? 0 : due >= 0 ? Math.min(due, 1000) : 1000;
      polls.wait(timeout, k);
      if (polls.revents(1)) wake.drain();
      if (control.stopping()) break;
      if (control.retireAsked() && !control.retired()) {
        retire();
        continue;
      }
      let more = readEvents();
      if (dirFd >= 0 && polls.revents(2)) folders!.drain();
      flushStep();
      backgroundStep();
      // Events first: while the group has more, read again (a few rounds) before the next slice.
      for (let round = 0; more && round < 8 && !control.stopping(); round++) more = readEvents();
    }
  } finally {
    folders?.close();
  }
}

function pathText(p: Uint8Array): string {
  return JSON.stringify(new TextDecoder().decode(p));
}
