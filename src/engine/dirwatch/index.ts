// Dynamic directory determination (DDD) and extra scanning: picks the directory watcher the kernel
// supports (fanotify filesystem marks, fanotify directory marks, else inotify). The reader thread waits on
// its fd in its own poll() (src/engine/folders.ts).
import { Errno, errnoName } from "../../../ffi/errors.ts";
import {
  AT_HANDLE_FID,
  FAN_CLASS_NOTIF,
  FAN_CLOEXEC,
  FAN_CLOSE_WRITE,
  FAN_EVENT_ON_CHILD,
  FAN_MARK_ADD,
  FAN_MARK_EVICTABLE,
  FAN_MARK_FILESYSTEM,
  FAN_MARK_IGNORE_SURV,
  FAN_MARK_ONLYDIR,
  FAN_MARK_REMOVE,
  FAN_NONBLOCK,
  FAN_REPORT_DFID_NAME,
  FileHandles,
  fanotifyMarkErrno,
} from "../../../ffi/fanotify.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS, O_CLOEXEC, O_RDONLY } from "../../../ffi/fcntl.ts";
import { errno, libc } from "../../../ffi/libc.ts";
import { pathZ } from "./base.ts";
import { DIRWATCH_FS_MASK, FanotifyFsWatcher } from "./fanotify-fs.ts";
import { DIRWATCH_FAN_INIT_FLAGS, DIRWATCH_FAN_MASK, DIRWATCH_FAN_UNLIMITED, FanotifyWatcher } from "./fanotify.ts";
import { InotifyWatcher } from "./inotify.ts";
import { bytesToText } from "./tree.ts";
import type { DirectoryWatcher, WatcherOptions } from "./types.ts";

export type { DirEvents, DirectoryWatcher } from "./types.ts";

/** The watcher and one line for --verbose saying which implementation and why. */
export interface WatcherChoice {
  watcher: DirectoryWatcher;
  reason: string;
}

/**
 * Picks the preferred implementation if the kernel and every probe path's filesystem support it, else the
 * next one: fanotify-fs (Linux 6.0+) → fanotify (Linux 5.9+; the filesystem needs file handles and an
 * fsid) → inotify. Default preference: fanotify-fs (flat start-up, no per-directory memory; see README).
 */
export function chooseDirectoryWatcher(options: WatcherOptions = {}): WatcherChoice {
  const prefer = options.prefer ?? "fanotify-fs";
  const paths = options.probePaths ?? [];
  const unlimited = options.unlimited !== false;
  const why: string[] = [];
  if (prefer === "fanotify-fs") {
    const probe = probe_(paths, unlimited, true);
    if (probe.group >= 0) {
      const watcher = new FanotifyFsWatcher(options, probe.group);
      return { watcher, reason: `directory watcher: ${watcher.description}` };
    }
    why.push(`no fanotify filesystem marks (${probe.why})`);
  }
  if (prefer !== "inotify") {
    const probe = probe_(paths, unlimited, false);
    if (probe.group >= 0) {
      const watcher = new FanotifyWatcher(options, probe.group);
      return { watcher, reason: `directory watcher: ${watcher.description}${why.length ? `, because ${why.join("; ")}` : ""}` };
    }
    why.push(probe.why);
  }
  const reason = prefer === "inotify" ? "directory watcher: inotify (as asked)" : `directory watcher: inotify, because ${why.join("; ")}`;
  return { watcher: new InotifyWatcher(options), reason };
}

/** A ready group (the caller owns it) or why fanotify cannot serve in that mode. */
function probe_(paths: Uint8Array[], unlimited: boolean, filesystem: boolean): { group: number; why: string } {
  const flags = (filesystem ? FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC | FAN_NONBLOCK : DIRWATCH_FAN_INIT_FLAGS) | (unlimited ? DIRWATCH_FAN_UNLIMITED : 0);
  const group = libc.fanotify_init(flags, O_RDONLY | O_CLOEXEC);
  if (group < 0) {
    const e = errno();
    const why = e === Errno.EINVAL ? "this kernel has no FAN_REPORT_DFID_NAME (Linux 5.9+)" : `fanotify_init(FAN_REPORT_DFID_NAME) failed: ${errnoName(e)}`;
    return { group: -1, why };
  }
  if (filesystem) {
    // Flags and mask bits are checked before the path is looked up: EINVAL means "not on this kernel",
    // ENOENT (for the empty path) means "supported".
    const ignore = FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD;
    const none = new Uint8Array(new ArrayBuffer(1));
    const a = libc.fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, BigInt(DIRWATCH_FS_MASK), AT_FDCWD, none) === 0 ? 0 : errno();
    const b = libc.fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | FAN_MARK_EVICTABLE, BigInt(ignore), AT_FDCWD, none) === 0 ? 0 : errno();
    if (a === Errno.EINVAL || b === Errno.EINVAL) {
      libc.close(group);
      return { group: -1, why: "this kernel lacks FAN_RENAME or evictable FAN_MARK_IGNORE marks (Linux 6.0+)" };
    }
  }
  const handles = new FileHandles();
  for (const p of paths) {
    const fd = libc.openat(AT_FDCWD, pathZ(bytesToText(p)), DIR_OPEN_FLAGS, 0);
    if (fd < 0) continue; // a missing include path is reported by whoever watches it
    let e = handles.encode(fd, AT_HANDLE_FID);
    if (e === Errno.EINVAL) e = handles.encode(fd);
    if (filesystem) {
      // FAN_RENAME (5.17), evictable (5.19) FAN_MARK_IGNORE (6.0) ignore marks, FAN_MARK_FILESYSTEM.
      const ignore = FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD;
      if (e === 0) e = fanotifyMarkErrno(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, DIRWATCH_FS_MASK, fd, null);
      if (e === 0) e = fanotifyMarkErrno(group, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | FAN_MARK_EVICTABLE, ignore, fd, null);
      if (e === 0) fanotifyMarkErrno(group, FAN_MARK_REMOVE | FAN_MARK_IGNORE_SURV, ignore, fd, null);
      if (e === 0) fanotifyMarkErrno(group, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, DIRWATCH_FS_MASK, fd, null);
    } else {
      if (e === 0) e = fanotifyMarkErrno(group, FAN_MARK_ADD | FAN_MARK_ONLYDIR, DIRWATCH_FAN_MASK, fd, null);
      if (e === 0) fanotifyMarkErrno(group, FAN_MARK_REMOVE | FAN_MARK_ONLYDIR, DIRWATCH_FAN_MASK, fd, null);
    }
    libc.close(fd);
    if (e !== 0) {
      libc.close(group);
      const what = filesystem ? "a fanotify filesystem mark with FAN_RENAME and ignore marks" : "a fanotify FID mark";
      return { group: -1, why: `"${bytesToText(p)}" cannot take ${what} (${errnoName(e)})` };
    }
  }
  return { group, why: "" };
}
