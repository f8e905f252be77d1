// The reader: drains the fanotify group, answers at once what needs no scan (onacc's own opens, clamd,
// excluded users and paths, non-regular and oversized files, versions found clean before) and queues the
// rest into the ring. It never blocks on slow work and never opens a file: anything it waited on could be
// waiting on it. Its only syscalls on an event's file are statx with AT_STATX_DONT_SYNC (never a trip to a
// network or FUSE server) and, on local file systems, the writer probe of a cache hit.
import {
  FAN_ALL_PERM_EVENTS,
  FAN_ALLOW,
  FAN_CLOSE_WRITE,
  FAN_Q_OVERFLOW,
  ResponseWriter,
  forEachEvent,
} from "../../ffi/fanotify.ts";
import { Errno, errnoName } from "../../ffi/errors.ts";
import { AT_STATX_DONT_SYNC, FdPath, Fstat, S_IFMT, S_IFREG, WriterProbe, emptyStat } from "../../ffi/fs.ts";
import { errno, libc, monotonicMs, structBuffer } from "../../ffi/libc.ts";
import { POLLIN, PollSet, WakeFd } from "../../ffi/poll.ts";
import { ProcReader } from "../../ffi/procfs.ts";
import { VerdictCache } from "./cache.ts";
import { noWriters } from "./cache-rules.ts";
import { FsLocality } from "./fs-locality.ts";
import { Exclusions } from "./exclusions.ts";
import { KernelCache } from "./kernel-cache.ts";
import { errorResponse } from "./policy.ts";
import { RateLimit, withSuppressed } from "./ratelimit.ts";
import { EventRing, SlotFlag } from "./ring.ts";
import type { EngineSettings, WorkerMessage } from "./settings.ts";
import { TrustedProcesses } from "./trusted-processes.ts";

const READ_BUFFER = 64 * 1024; // ~2,700 event records per read()

export function runReader(s: EngineSettings, post: (m: WorkerMessage) => void): void {
  const ring = EventRing.attach(s.ring);
  const exclusions = new Exclusions(s.exclusions);
  const responder = new ResponseWriter(s.group);
  const wake = new WakeFd(s.readerWakeFd);
  const fstat = new Fstat();
  const st = emptyStat();
  const fdPath = new FdPath();
  const buf = structBuffer(READ_BUFFER);
  const view = new DataView(buf.buffer);
  const polls = new PollSet([
    { fd: s.group, events: POLLIN },
    { fd: s.readerWakeFd, events: POLLIN },
  ]);
  const overloadResponse = errorResponse(s);
  const fullLimit = new RateLimit(60_000);
  const overflowLimit = new RateLimit(60_000);
  const readErrorLimit = new RateLimit(60_000);
  const checkUids = exclusions.hasUids;
  const checkPaths = s.checkPathsInReader && exclusions.hasPaths;
  const cache = s.cache.user ? VerdictCache.attach(s.cache.user) : undefined;
  const kernelCache = s.cache.kernel ? new KernelCache(s.group, s.cache.ignoreMask) : undefined;
  const after = emptyStat();
  const proc = new ProcReader();
  const clamd = TrustedProcesses.attach(s.clamdProcesses);
  const locality = new FsLocality();
  const probe = new WriterProbe();

  const answer = (fd: number, perm: boolean, response: number) => {
    if (perm) responder.respond(fd, response);
    libc.close(fd);
  };

  const onEvent = (mask: number, fd: number, pid: number) => {
    if (mask & FAN_Q_OVERFLOW) {
      ring.count("overflow");
      const n = overflowLimit.hit(monotonicMs());
      if (n !== null) post({ type: "log", level: "warn", message: withSuppressed("fanotify queue overflowed: some events were lost", n) });
      return;
    }
    if (fd < 0) return;
    ring.count("events");
    const perm = (mask & FAN_ALL_PERM_EVENTS) !== 0;
    if (pid === s.ownPid && pid > 0) {
      ring.count("ownPid");
      return answer(fd, perm, FAN_ALLOW);
    }
    const now = monotonicMs();
    // clamd never waits on onacc (its PID checked against its start time: a reused PID is someone else);
    // an opener onacc cannot see (pid 0) matches no exclusion.
    if (clamd.matches(pid, proc) || (checkUids && exclusions.uid(pid, proc))) {
      ring.count("excluded");
      return answer(fd, perm, FAN_ALLOW);
    }
    if (fstat.stat(fd, st, AT_STATX_DONT_SYNC) !== 0) {
      ring.count("vanished");
      return answer(fd, perm, FAN_ALLOW);
    }
    if ((st.mode & S_IFMT) !== S_IFREG) {
      ring.count("notRegular");
      return answer(fd, perm, FAN_ALLOW);
    }
    if (s.maxFileSize > 0 && st.size > s.maxFileSize) {
      ring.count("tooLarge");
      if (s.log.verbose) {
        const p = fdPath.path(fd);
        post({ type: "log", level: "verbose", message: `skipped (size ${st.size} > OnAccessMaxFileSize ${s.maxFileSize}): ${p ? pathText(p) : `fd ${fd}`}` });
      }
      return answer(fd, perm, FAN_ALLOW);
    }
    const filter = ring.pathFilter();
    if (checkPaths || filter) {
      const p = fdPath.path(fd);
      // While the cache flush's temporary mount marks are up, events from outside the watched trees arrive
      // too: they are none of onacc's business.
      if (p && (exclusions.path(p) || (filter && !exclusions.watched(p)))) {
        ring.count("excluded");
        return answer(fd, perm, FAN_ALLOW);
      }
    }
    // Network and FUSE files: their attributes above came from a cache, and their writes may come from
    // elsewhere. No verdict is cached for them, and a scanner treats them without a stat.
    const local = locality.isLocal(st.mntId, pid, now);
    // A file just written (FAN_CLOSE_WRITE) is scanned whatever the cache says; a hit counts only while
    // nobody holds the file open for writing (a shared mapping can change it without a trace).
    if (cache && local && !(mask & FAN_CLOSE_WRITE)) {
      if (cache.has(st) && noWriters(fd, probe)) {
        ring.count("cacheHits");
        // The kernel's mark for it was evicted (or this is notification mode): put it back where allowed.
        if (kernelCache && kernelCache.markClean(fd, st, fstat, after, probe) === "marked") ring.count("kernelMarks");
        return answer(fd, perm, FAN_ALLOW);
      }
      ring.count("cacheMisses");
    }
    const flags = (perm ? SlotFlag.PERM : 0) | (mask & FAN_CLOSE_WRITE ? SlotFlag.WRITTEN : 0) | (local ? 0 : SlotFlag.NOT_LOCAL);
    if (ring.push(fd, pid, flags, now)) {
      ring.count("queued");
      return;
    }
    // Ring full: every scanner is busy and the backlog is at its bound. Answer now by the error policy
    // rather than make the opener wait for a slot (see README: "When onacc is overloaded").
    ring.count("ringFull");
    if (overloadResponse === FAN_ALLOW) ring.count("allowed");
    else ring.count("denied");
    const n = fullLimit.hit(now);
    if (n !== null) {
      post({
        type: "log",
        level: "warn",
        message: withSuppressed(`event queue full (${ring.capacity} pending): answered without a scan by the error policy`, n),
      });
    }
    answer(fd, perm, overloadResponse);
  };

  post({ type: "ready", worker: "reader" });
  while (!ring.stopping()) {
    polls.wait(1000);
    if (polls.revents(1)) wake.drain();
    if (ring.stopping()) break;
    for (;;) {
      const n = libc.read(s.group, buf, READ_BUFFER);
      if (n <= 0) {
        const e = n < 0 ? errno() : 0;
        if (e === Errno.EINTR) continue;
        if (e !== Errno.EAGAIN && e !== 0) {
          // EMFILE/ENFILE: the kernel could not open event fds (it denies those events itself).
          const n = readErrorLimit.hit(monotonicMs());
          if (n !== null) post({ type: "log", level: "error", message: withSuppressed(`reading fanotify events failed: ${errnoName(e)}`, n) });
        }
        break;
      }
      forEachEvent(view, n, onEvent);
    }
  }
}

function pathText(p: Uint8Array): string {
  return JSON.stringify(new TextDecoder().decode(p));
}
