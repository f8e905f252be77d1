// The inotify directory watcher, for kernels without fanotify directory-entry events (before 5.9) or
// filesystems without file handles: one watch per directory, the watch descriptor is the node's key.
import { Errno } from "../../../ffi/errors.ts";
import {
  IN_CLOEXEC,
  IN_CLOSE_WRITE,
  IN_CREATE,
  IN_DELETE_SELF,
  IN_DONT_FOLLOW,
  IN_EXCL_UNLINK,
  IN_IGNORED,
  IN_ISDIR,
  IN_MOVE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_NONBLOCK,
  IN_ONLYDIR,
  IN_Q_OVERFLOW,
  forEachInotifyEvent,
  inotifyAddWatch,
  inotifyRmWatch,
} from "../../../ffi/inotify.ts";
import { libc } from "../../../ffi/libc.ts";
import { type Departure, type LandedWhy, TreeWatcher, watcherFd } from "./base.ts";
import { type NodeKey, textToBytes } from "./tree.ts";
import type { WatcherHooks } from "./types.ts";

/**
 * Entries created, moved in or out, files closed after writing; the directory's own deletion and move.
 * IN_ONLYDIR|IN_DONT_FOLLOW: a path swapped for a file or symlink since it was listed is refused.
 */
export const DIRWATCH_IN_MASK =
  IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_EXCL_UNLINK | IN_ONLYDIR | IN_DONT_FOLLOW;

export class InotifyWatcher extends TreeWatcher {
  readonly kind = "inotify" as const;
  readonly fd: number;
  readonly description = "inotify (one watch per directory)";

  constructor(hooks: WatcherHooks = {}) {
    super(hooks);
    this.fd = watcherFd(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify instance", "fs.inotify.max_user_instances", "inotify_init1");
  }

  /** inotify_add_watch both identifies (same inode, same wd) and watches. */
  protected identify(_fd: number, path: Buffer): NodeKey | null {
    const wd = inotifyAddWatch(this.fd, path, DIRWATCH_IN_MASK);
    if (wd < 0) {
      this.lastErrno = -wd;
      return null;
    }
    return wd;
  }

  protected mark(_fd: number, _path: Buffer): number {
    return 0;
  }

  protected forget(key: NodeKey): void {
    inotifyRmWatch(this.fd, key as number);
  }

  /** Removing a watch that is already gone (deleted directory) fails with EINVAL: nothing to do then. */
  protected unwatch(departed: Departure[]): void {
    for (const { node, path } of departed) {
      inotifyRmWatch(this.fd, node.key as number);
      this.hooks.onDirectoryRemoved?.(-1, textToBytes(path));
    }
  }

  protected readEvents(): number {
    return this.readQueued(this.parse, "inotify events");
  }

  private readonly parse = (length: number): number => forEachInotifyEvent(this.view, length, this.onEvent);

  private readonly onEvent = (wd: number, mask: number, _cookie: number, nameOffset: number, nameLength: number): void => {
    if (mask & IN_Q_OVERFLOW) {
      this.overflowed();
      return;
    }
    if (mask & IN_IGNORED) {
      // The kernel dropped the watch (directory deleted, filesystem unmounted, or we removed it).
      this.selfChanged(wd, true);
      return;
    }
    if (nameLength > 0) {
      const name = this.bytes.toString("latin1", nameOffset, nameOffset + nameLength);
      this.entryChanged(wd, name, (mask & IN_ISDIR) !== 0, landedWhy(mask));
      return;
    }
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) this.selfChanged(wd, (mask & IN_DELETE_SELF) !== 0);
  };

  protected limitMessage(err: number, path: string): string | null {
    if (err === Errno.ENOSPC) {
      return `inotify watch limit reached at "${path}": raise fs.inotify.max_user_watches (sysctl -w fs.inotify.max_user_watches=N); protecting what is already watched`;
    }
    if (err === Errno.ENOMEM) return `out of kernel memory for inotify watches at "${path}"; protecting what is already watched`;
    return null;
  }
}

function landedWhy(mask: number): LandedWhy | null {
  if (mask & IN_CLOSE_WRITE) return "close-write";
  if (mask & IN_MOVED_TO) return "moved-to";
  if (mask & IN_CREATE) return "created";
  return null;
}
