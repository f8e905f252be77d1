// Dynamic directory determination and extra scanning, on their own thread: a directory watcher keeps the
// prevention group's directory marks in step with the tree (new folders marked at once, departed ones
// unmarked), and files that land in the tree are queued for a scan without anyone opening them.
import { Errno } from "../../ffi/errors.ts";
import { FAN_EVENT_ON_CHILD, FAN_MARK_ADD, FAN_MARK_ONLYDIR, FAN_MARK_REMOVE, fanotifyMarkErrno } from "../../ffi/fanotify.ts";
import { Fstat, S_IFMT, S_IFREG, emptyStat } from "../../ffi/fs.ts";
import { FILE_PEEK_FLAGS } from "../../ffi/dirent.ts";
import { cstr, libc, monotonicMs } from "../../ffi/libc.ts";
import { WakeFd } from "../../ffi/poll.ts";
import { chooseDirectoryWatcher, runDirectoryWatcher, type DirEvents } from "./dirwatch/index.ts";
import { RateLimit, withSuppressed } from "./ratelimit.ts";
import { EventRing, SlotFlag } from "./ring.ts";
import type { EngineSettings, WorkerMessage } from "./settings.ts";


export interface DddSettings {
  /** Follow new directories (OnAccessDisableDDD no). */
  follow: boolean;
  /** OnAccessExtraScanning: scan files created, written or moved in without waiting for an open. */
  extraScanning: boolean;
  includePaths: string[];
  excludePaths: string[];
  /** The event mask of the prevention group's directory marks. */
  markMask: number;
  wakeFd: number;
}

const text = (p: Uint8Array) => new TextDecoder().decode(p);

export function runDdd(s: EngineSettings, d: DddSettings, post: (m: WorkerMessage) => void): void {
  const ring = EventRing.attach(s.ring);
  const wake = new WakeFd(d.wakeFd);
  const fstat = new Fstat();
  const st = emptyStat();
  const overflowLimit = new RateLimit(60_000);
  const fullLimit = new RateLimit(60_000);
  const log = (level: "error" | "warn" | "info" | "verbose", message: string) => post({ type: "log", level, message });
  let initial = true; // the start-up walk marks every directory, whether or not new ones are followed

  // The prevention group's marks follow the watcher's: marked before the directory is listed, so nothing
  // lands in a new folder unseen.
  const { watcher, reason } = chooseDirectoryWatcher({
    probePaths: d.includePaths.map((p) => Buffer.from(p)),
    onDirectory(fd) {
      if (!d.follow && !initial) return;
      const e = fanotifyMarkErrno(s.group, FAN_MARK_ADD | FAN_MARK_ONLYDIR, d.markMask | FAN_EVENT_ON_CHILD, fd, null);
      if (e === Errno.ENOSPC) reportLimit("fanotify mark limit reached: raise fs.fanotify.max_user_marks; protecting what is already marked");
    },
    onDirectoryRemoved(fd) {
      if (fd >= 0) fanotifyMarkErrno(s.group, FAN_MARK_REMOVE | FAN_MARK_ONLYDIR, d.markMask | FAN_EVENT_ON_CHILD, fd, null);
    },
  });
  let limitReported = false;
  const reportLimit = (message: string) => {
    if (limitReported) return;
    limitReported = true;
    log("error", message);
  };
  log("verbose", reason);

  const queueLanded = (path: Uint8Array) => {
    const fd = libc.openat(-100, cstr(path), FILE_PEEK_FLAGS, 0);
    if (fd < 0) return; // gone again, or a symlink / FIFO that would block: nothing to scan
    if (fstat.stat(fd, st) !== 0 || (st.mode & S_IFMT) !== S_IFREG || st.size === 0 || (s.maxFileSize > 0 && st.size > s.maxFileSize)) {
      libc.close(fd);
      return;
    }
    // Opened by onacc itself: the reader answers that open at once. Queued without the PERM flag: there
    // is nobody to answer, only a verdict and the action to take.
    if (ring.push(fd, s.ownPid, SlotFlag.WRITTEN, monotonicMs())) {
      ring.count("extraScans");
      return;
    }
    // Background scans may fill only their share of the queue: opens come first.
    libc.close(fd);
    ring.count("extraScansDeferred");
    const n = fullLimit.hit(monotonicMs());
    if (n !== null) log("warn", withSuppressed(`event queue busy with opens: ${text(path)} landed but is scanned only when it is opened`, n));
  };

  // Folders that appeared in the last few seconds: files found in them are scanned even without extra
  // scanning (they landed before the folder had its mark). The watcher reports a drain's files right after
  // its directories, so a short memory is enough.
  const recentDirs = new Map<string, number>();
  const RECENT_MS = 5000;
  const inRecentDir = (path: string) => {
    for (const dir of recentDirs.keys()) if (path.startsWith(`${dir}/`)) return true;
    return false;
  };

  const events: DirEvents = {
    directoryAdded(path) {
      ring.count("dirsAdded");
      const now = monotonicMs();
      for (const [dir, at] of recentDirs) if (now - at > RECENT_MS) recentDirs.delete(dir);
      recentDirs.set(text(path), now);
      if (s.log.verbose) log("verbose", `watching new directory ${JSON.stringify(text(path))}`);
    },
    directoryRemoved(path) {
      ring.count("dirsRemoved");
      if (s.log.verbose) log("verbose", `directory left the watched tree: ${JSON.stringify(text(path))}`);
    },
    fileLanded(path) {
      // Without extra scanning only files inside a folder that just appeared are scanned here; everything
      // else is scanned when it is opened.
      if (d.extraScanning || (recentDirs.size > 0 && inRecentDir(text(path)))) queueLanded(path);
    },
    overflow() {
      ring.count("overflow");
      const n = overflowLimit.hit(monotonicMs());
      if (n !== null) log("warn", withSuppressed("directory event queue overflowed: walking the watched trees again", n));
      watcher.resync(events);
    },
    limit: reportLimit,
    warning: (m) => log("warn", m),
  };

  const excluded = d.excludePaths.map((p) => Buffer.from(p));
  let dirs = 0;
  // A tree the watcher cannot take (a file system its kind of mark does not support) still needs its
  // prevention marks: the agent places them itself.
  const unwatched: string[] = [];
  for (const root of d.includePaths) {
    const n = watcher.addTree(Buffer.from(root), excluded, events);
    if (n === 0) unwatched.push(root);
    dirs += n;
  }
  initial = false;
  post({ type: "ready", worker: "dirwatch", detail: JSON.stringify({ dirs, unwatched }) });
  if (!d.follow && !d.extraScanning) {
    watcher.close();
    return;
  }
  try {
    runDirectoryWatcher(watcher, events, wake, () => ring.stopping());
  } finally {
    watcher.close();
  }
}
