// The fanotify directory watcher: a notification-class group reporting directory-entry events by parent
// file handle + name (FAN_REPORT_DFID_NAME, Linux 5.9+), one inode mark per watched directory. Events
// carry no fds, so nothing is opened per event; handles are matched against a map filled while marking.
import { Errno } from "../../../ffi/errors.ts";
import {
  AT_HANDLE_FID,
  FAN_CLASS_NOTIF,
  FAN_CLOEXEC,
  FAN_CLOSE_WRITE,
  FAN_CREATE,
  FAN_DELETE_SELF,
  FAN_EVENT_INFO_TYPE_DFID_NAME,
  FAN_EVENT_ON_CHILD,
  FAN_MARK_ADD,
  FAN_MARK_ONLYDIR,
  FAN_MARK_REMOVE,
  FAN_MOVE_SELF,
  FAN_MOVED_FROM,
  FAN_MOVED_TO,
  FAN_NONBLOCK,
  FAN_ONDIR,
  FAN_Q_OVERFLOW,
  FAN_REPORT_DFID_NAME,
  FAN_UNLIMITED_MARKS,
  FAN_UNLIMITED_QUEUE,
  FileHandles,
  type FidRecord,
  fanotifyMarkErrno,
  forEachFidEvent,
} from "../../../ffi/fanotify.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS, O_CLOEXEC, O_RDONLY } from "../../../ffi/fcntl.ts";
import { errno, libc } from "../../../ffi/libc.ts";
import { type Departure, type LandedWhy, TreeWatcher, fanotifyMarkLimit, pathZ, watcherFd } from "./base.ts";
import type { NodeKey } from "./tree.ts";
import { textToBytes } from "./tree.ts";
import type { WatcherOptions } from "./types.ts";

/**
 * Entries created, moved in or out, files closed after writing; the directory's own deletion and move.
 * No FAN_DELETE: every file deletion would raise an event; a deleted directory reports DELETE_SELF itself.
 */
export const DIRWATCH_FAN_MASK =
  FAN_CREATE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_CLOSE_WRITE | FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR | FAN_EVENT_ON_CHILD;

const MASK_BIG = BigInt(DIRWATCH_FAN_MASK);

export const DIRWATCH_FAN_INIT_FLAGS = FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC | FAN_NONBLOCK;
export const DIRWATCH_FAN_UNLIMITED = FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;

export class FanotifyWatcher extends TreeWatcher {
  readonly kind = "fanotify" as const;
  readonly fd: number;
  readonly description: string;
  private readonly handles = new FileHandles();
  /** AT_HANDLE_FID: the encoding fanotify itself uses (it differs from plain handles on e.g. overlayfs). */
  private fidFlag = AT_HANDLE_FID;
  // Keys start with a one-char filesystem index: handles are unique only within one filesystem.
  private readonly fsByMountId = new Map<number, number>();
  private readonly fsByFsid = new Map<string, number>();
  private readonly fsids: string[] = [];
  /** A directory seen on each filesystem: opened on demand as open_by_handle_at's mount fd. */
  private readonly fsPaths: string[] = [];

  /** Takes over `group` (made with DIRWATCH_FAN_INIT_FLAGS [| DIRWATCH_FAN_UNLIMITED]) or creates one. */
  constructor(options: WatcherOptions = {}, group?: number) {
    super(options);
    const flags = DIRWATCH_FAN_INIT_FLAGS | (options.unlimited === false ? 0 : DIRWATCH_FAN_UNLIMITED);
    const fd = group ?? libc.fanotify_init(flags, O_RDONLY | O_CLOEXEC);
    this.fd = watcherFd(fd, "fanotify group", "fs.fanotify.max_user_groups", "fanotify_init", "(FAN_REPORT_DFID_NAME)");
    this.description = `fanotify directory-entry events (FAN_REPORT_DFID_NAME${options.unlimited === false ? ", bounded queue and marks" : ""})`;
  }

  protected override refresh(): void {
    // A mount id can be reused by another filesystem after an unmount: look each one up again.
    this.fsByMountId.clear();
  }

  protected identify(fd: number, path: Buffer): NodeKey | null {
    let e = this.handles.encode(fd, this.fidFlag);
    if (e === Errno.EINVAL && this.fidFlag !== 0) {
      // Before Linux 6.5: plain handles, which are what fanotify reports for directories anyway.
      this.fidFlag = 0;
      e = this.handles.encode(fd, 0);
    }
    if (e !== 0) {
      this.lastErrno = e;
      return null;
    }
    const mountId = this.handles.mountIdOf();
    let fs = this.fsByMountId.get(mountId);
    if (fs === undefined) {
      const fsid = this.handles.fsid(fd);
      if (typeof fsid === "number") {
        this.lastErrno = fsid;
        return null;
      }
      const fsidText = Buffer.from(fsid).toString("latin1");
      fs = this.fsByFsid.get(fsidText);
      if (fs === undefined) {
        fs = this.fsids.length;
        this.fsids.push(fsidText);
        this.fsByFsid.set(fsidText, fs);
        this.fsPaths.push(path.toString("latin1", 0, path.length - 1));
      }
      this.fsByMountId.set(mountId, fs);
    }
    return String.fromCharCode(fs, this.handles.type() & 0xffff) + this.handles.text();
  }

  protected mark(fd: number, _path: Buffer): number {
    return libc.fanotify_mark(this.fd, FAN_MARK_ADD | FAN_MARK_ONLYDIR, MASK_BIG, fd, null) === 0 ? 0 : errno();
  }

  protected forget(_key: NodeKey): void {
    // identify() placed nothing.
  }

  /**
   * Marks live on inodes: a deleted directory's mark is gone with it (open_by_handle_at says ESTALE); a
   * directory that moved out is reopened by its handle and unmarked through that fd.
   */
  protected unwatch(departed: Departure[]): void {
    const mountFds = new Map<number, number>();
    try {
      for (const { node, path } of departed) {
        const key = node.key as string;
        const fs = key.charCodeAt(0);
        let mountFd = mountFds.get(fs);
        if (mountFd === undefined) {
          mountFd = this.openMountFd(fs);
          mountFds.set(fs, mountFd);
        }
        const fd = mountFd < 0 ? -1 : this.handles.open(mountFd, key.charCodeAt(1), Buffer.from(key.slice(2), "latin1"), DIR_OPEN_FLAGS);
        if (fd >= 0) fanotifyMarkErrno(this.fd, FAN_MARK_REMOVE | FAN_MARK_ONLYDIR, DIRWATCH_FAN_MASK, fd, null);
        try {
          this.hooks.onDirectoryRemoved?.(fd < 0 ? -1 : fd, textToBytes(path));
        } finally {
          if (fd >= 0) libc.close(fd);
        }
      }
    } finally {
      for (const fd of mountFds.values()) if (fd >= 0) libc.close(fd);
    }
  }

  /** An fd on filesystem `fs` (checked by fsid: a handle decoded on the wrong filesystem names another inode). */
  private openMountFd(fs: number): number {
    const candidates = [this.fsPaths[fs]!, ...this.tree.rootNodes().map((r) => r.name)];
    for (const p of candidates) {
      const fd = libc.openat(AT_FDCWD, pathZ(p), DIR_OPEN_FLAGS, 0);
      if (fd < 0) continue;
      const fsid = this.handles.fsid(fd);
      if (typeof fsid !== "number" && Buffer.from(fsid).toString("latin1") === this.fsids[fs]) return fd;
      libc.close(fd);
    }
    return -1;
  }

  protected readEvents(): number {
    return this.readQueued(this.parse, "fanotify directory events");
  }

  private readonly parse = (length: number): number => forEachFidEvent(this.view, length, this.onEvent);

  private readonly onEvent = (mask: number, _pid: number, records: readonly FidRecord[], count: number): void => {
    if (mask & FAN_Q_OVERFLOW) {
      this.overflowed();
      return;
    }
    for (let i = 0; i < count; i++) {
      const r = records[i]!;
      if (r.infoType !== FAN_EVENT_INFO_TYPE_DFID_NAME || r.nameLength <= 0) continue;
      const fsid = this.bytes.toString("latin1", r.fsidOffset, r.fsidOffset + 8);
      const fs = this.fsByFsid.get(fsid);
      if (fs === undefined) continue; // nothing of ours lives on that filesystem any more
      const key = String.fromCharCode(fs, r.handleType & 0xffff) + this.bytes.toString("latin1", r.handleOffset, r.handleOffset + r.handleLength);
      // Events on the marked directory itself name it as ".".
      if (r.nameLength === 1 && this.buf[r.nameOffset] === 0x2e) {
        if (mask & (FAN_DELETE_SELF | FAN_MOVE_SELF)) this.selfChanged(key, (mask & FAN_DELETE_SELF) !== 0);
        continue;
      }
      const name = this.bytes.toString("latin1", r.nameOffset, r.nameOffset + r.nameLength);
      this.entryChanged(key, name, (mask & FAN_ONDIR) !== 0, landedWhy(mask));
    }
  };

  protected limitMessage(err: number, path: string): string | null {
    if (err === Errno.ENOSPC) return fanotifyMarkLimit(path);
    if (err === Errno.ENOMEM) return `out of kernel memory for fanotify marks at "${path}"; protecting what is already watched`;
    return null;
  }
}

/** Merged events carry several bits; the most telling one names why the file is reported. */
function landedWhy(mask: number): LandedWhy | null {
  if (mask & FAN_CLOSE_WRITE) return "close-write";
  if (mask & FAN_MOVED_TO) return "moved-to";
  if (mask & FAN_CREATE) return "created";
  return null;
}
