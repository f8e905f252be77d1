// The flat-start directory watcher: one fanotify FAN_MARK_FILESYSTEM mark per filesystem instead of one mark
// per directory, so start-up costs the same for 10 or 1,000,000 directories. Events name the parent by
// file handle; each handle is resolved to a path once (open_by_handle_at + readlink) and cached, and a
// directory found outside the watched trees gets an evictable ignore mark so the kernel stops reporting
// its file events. Needs Linux 6.0+ (FAN_RENAME, FAN_MARK_IGNORE, FAN_MARK_EVICTABLE) and CAP_SYS_ADMIN.
import { Errno, errnoName } from "../../../ffi/errors.ts";
import {
  FAN_CLASS_NOTIF,
  FAN_CLOEXEC,
  FAN_CLOSE_WRITE,
  FAN_CREATE,
  FAN_EVENT_INFO_TYPE_DFID_NAME,
  FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
  FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
  FAN_EVENT_ON_CHILD,
  FAN_MARK_ADD,
  FAN_MARK_EVICTABLE,
  FAN_MARK_FILESYSTEM,
  FAN_MARK_FLUSH,
  FAN_MARK_IGNORE_SURV,
  FAN_MARK_REMOVE,
  FAN_NONBLOCK,
  FAN_ONDIR,
  FAN_Q_OVERFLOW,
  FAN_RENAME,
  FAN_REPORT_DFID_NAME,
  FAN_UNLIMITED_MARKS,
  FAN_UNLIMITED_QUEUE,
  FileHandles,
  type FidRecord,
  forEachFidEvent,
} from "../../../ffi/fanotify.ts";
import { DT_DIR, DT_REG, DT_UNKNOWN } from "../../../ffi/dirent.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS, O_CLOEXEC, O_RDONLY } from "../../../ffi/fcntl.ts";
import { cstr, errno, libc, structBuffer } from "../../../ffi/libc.ts";
import { isUnder, isUnderAny } from "../paths.ts";
import { WatcherBase, fanotifyMarkLimit, pathZ, watcherFd } from "./base.ts";
import type { LandedWhy } from "./report.ts";
import { bytesToText, joinPath, normalizeDir, textToBytes } from "./tree.ts";
import type { DirEvents, WatcherOptions } from "./types.ts";

/** Files created or closed after writing, and renames (one event with both ends), files and directories. */
export const DIRWATCH_FS_MASK = FAN_CREATE | FAN_CLOSE_WRITE | FAN_RENAME | FAN_ONDIR;
/**
 * What a directory outside the trees stops reporting: its files' creations and writes. Not renames (the
 * ignore masks of both ends apply to a rename, so a file moved in would be lost) and not directory events
 * (a tree moving in or out must be seen).
 */
const IGNORE_MASK = FAN_CREATE | FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD;
const FS_MASK_BIG = BigInt(DIRWATCH_FS_MASK);
const IGNORE_MASK_BIG = BigInt(IGNORE_MASK);
/** Resolved directories kept; the cache starts over beyond this (ignore marks stay in the kernel). */
const CACHE_MAX = 200_000;
const PATH_MAX = 4096;
const DELETED_SUFFIX = " (deleted)";

interface FsRoot {
  path: string;
  /** Excluded directories (normalized). */
  excluded: string[];
  fsid: string;
}

export class FanotifyFsWatcher extends WatcherBase {
  readonly kind = "fanotify-fs" as const;
  readonly fd: number;
  readonly description: string;
  private readonly handles = new FileHandles();
  private readonly roots: FsRoot[] = [];
  /**
   * fsid → paths on that filesystem to open as open_by_handle_at's mount fd: the topmost directory of the
   * filesystem above the first tree (its mount point: not renamable while mounted), then that tree's root.
   * Opened on demand, never held: an open fd would keep the filesystem from being unmounted.
   */
  private readonly marked = new Map<string, string[]>();
  /** Directory key (fsid + handle type + handle) → its path, for directories inside a tree... */
  private readonly insideDirs = new Map<string, string>();
  /** ...and for directories outside (or excluded): kept to see a tree's root appear or move. */
  private readonly outsideDirs = new Map<string, string>();
  /** Mount fds for open_by_handle_at, opened on demand and closed at the end of each drain. */
  private readonly mountFds = new Map<string, number>();
  /** Directories reported as added in this drain (events and walks can both meet one). */
  private readonly addedThisDrain = new Set<string>();
  private readonly link = structBuffer(PATH_MAX);
  private readonly linkText = Buffer.from(this.link.buffer);
  private ignoreMarks = 0;

  constructor(options: WatcherOptions = {}, group?: number) {
    super(options);
    const flags = FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC | FAN_NONBLOCK | (options.unlimited === false ? 0 : FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS);
    const fd = group ?? libc.fanotify_init(flags, O_RDONLY | O_CLOEXEC);
    this.fd = watcherFd(fd, "fanotify group", "fs.fanotify.max_user_groups", "fanotify_init", "(FAN_REPORT_DFID_NAME)");
    this.description = "fanotify filesystem marks with directory-entry events (FAN_MARK_FILESYSTEM, FAN_REPORT_DFID_NAME, evictable ignore marks)";
  }

  /**
   * Marks the filesystem holding `root` (once per filesystem) and remembers the tree. With an onDirectory
   * hook, walks the tree to call it for each directory and returns how many; otherwise returns 1: the
   * whole tree is covered by the filesystem mark.
   */
  protected watchTree(root: string, excluded: string[]): number {
    const fd = libc.openat(AT_FDCWD, pathZ(root), DIR_OPEN_FLAGS, 0);
    if (fd < 0) {
      this.reports.problem(false, `cannot watch "${root}": ${errnoName(errno())}`);
      return 0;
    }
    try {
      const fsid = this.handles.fsid(fd);
      if (typeof fsid === "number") {
        this.reports.problem(false, `cannot watch "${root}": fstatfs ${errnoName(fsid)}`);
        return 0;
      }
      const fsidText = Buffer.from(fsid).toString("latin1");
      if (!this.marked.has(fsidText)) {
        if (libc.fanotify_mark(this.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FS_MASK_BIG, fd, null) !== 0) {
          this.failed(root, errno());
          return 0;
        }
        this.marked.set(fsidText, [this.topOfFilesystem(root, fsidText), root]);
      }
      this.roots.push({ path: root, excluded, fsid: fsidText });
      // A directory ignored as "outside" may lie inside the new tree.
      this.forgetOutside();
      return this.hooks.onDirectory ? this.walk(root, excluded, null) : 1;
    } finally {
      libc.close(fd);
    }
  }

  removeTree(dir: Uint8Array): void {
    const path = normalizeDir(bytesToText(dir));
    const i = this.roots.findIndex((r) => r.path === path);
    if (i < 0) return;
    const [gone] = this.roots.splice(i, 1);
    if (!this.roots.some((r) => r.fsid === gone!.fsid)) {
      const fd = this.openOnFilesystem(gone!.fsid, [gone!.path]);
      if (fd >= 0) {
        libc.fanotify_mark(this.fd, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, FS_MASK_BIG, fd, null);
        libc.close(fd);
      }
      this.marked.delete(gone!.fsid);
    }
    this.forgetOutside();
  }

  protected readEvents(): number {
    return this.readQueued(this.parse, "fanotify events");
  }

  private readonly parse = (length: number): number => forEachFidEvent(this.view, length, this.onEvent);

  protected override drainEnded(): void {
    for (const fd of this.mountFds.values()) libc.close(fd);
    this.mountFds.clear();
    this.addedThisDrain.clear();
  }

  /**
   * After lost events: the caches start over and, with an onDirectory hook, every tree is walked again so
   * the hook meets directories whose creation was lost (it must be idempotent: fanotify_mark ADD is).
   * Files whose events were lost are not recovered (nothing records them).
   */
  resync(events: DirEvents): void {
    this.forgetOutside();
    if (!this.hooks.onDirectory) return;
    const previous = this.reports.sink;
    this.reports.sink = events;
    try {
      for (const r of [...this.roots]) this.walk(r.path, r.excluded, null);
    } finally {
      this.reports.sink = previous;
    }
  }

  /** Filesystem marks (each covers every tree on its filesystem). */
  watchCount(): number {
    return this.marked.size;
  }

  /** Ignore marks placed on directories outside the trees so far (the kernel may evict them). */
  ignoredDirectories(): number {
    return this.ignoreMarks;
  }

  watchedPaths(): Uint8Array[] {
    return this.roots.map((r) => textToBytes(r.path));
  }

  protected override forgetAll(): void {
    this.insideDirs.clear();
    this.outsideDirs.clear();
  }

  // ---- events ---------------------------------------------------------------------------------------------

  private readonly onEvent = (mask: number, _pid: number, records: readonly FidRecord[], count: number): void => {
    if (mask & FAN_Q_OVERFLOW) {
      this.reports.sink?.overflow();
      return;
    }
    const isDir = (mask & FAN_ONDIR) !== 0;
    if (mask & FAN_RENAME) {
      let from: FidRecord | undefined;
      let to: FidRecord | undefined;
      for (let i = 0; i < count; i++) {
        const r = records[i]!;
        if (r.infoType === FAN_EVENT_INFO_TYPE_OLD_DFID_NAME) from = r;
        else if (r.infoType === FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) to = r;
      }
      if (from && to) this.renamed(from, to, isDir);
      if (!(mask & (FAN_CREATE | FAN_CLOSE_WRITE))) return;
    }
    for (let i = 0; i < count; i++) {
      const r = records[i]!;
      if (r.infoType !== FAN_EVENT_INFO_TYPE_DFID_NAME || r.nameLength <= 0) continue;
      const key = this.keyOf(r);
      const parent = this.resolve(key);
      const name = this.nameOf(r);
      if (parent === null) {
        // Outside: only a tree's root being created matters (its parent lies outside by definition).
        if (isDir && mask & FAN_CREATE) {
          const raw = this.outsideDirs.get(key);
          const path = raw === undefined ? null : joinPath(raw, name);
          if (path !== null && this.roots.some((root) => root.path === path)) this.directoryAppeared(path, true);
        }
        continue;
      }
      if (isDir) {
        const path = this.insidePath(joinPath(parent, name));
        if (mask & FAN_CREATE && path !== null) this.directoryAppeared(path, false);
      } else {
        const why: LandedWhy | null = mask & FAN_CLOSE_WRITE ? "close-write" : mask & FAN_CREATE ? "created" : null;
        if (why) this.land(key, name, why);
      }
    }
  };

  /** A file `name` landed in the directory `key`; its path is resolved when the drain ends (it may move first). */
  private land(key: string, name: string, why: LandedWhy): void {
    this.reports.land(`${key}\0${name}`, why, () => {
      const dir = this.resolve(key);
      return dir === null ? null : this.insidePath(joinPath(dir, name));
    });
  }

  /** A rename: both ends are resolved, and it counts as a file moved in, a tree moved in, out, or within. */
  private renamed(from: FidRecord, to: FidRecord, isDir: boolean): void {
    const toKey = this.keyOf(to);
    const toName = this.nameOf(to);
    if (!isDir) {
      const toParent = this.resolve(toKey);
      if (toParent !== null && this.insidePath(joinPath(toParent, toName)) !== null) this.land(toKey, toName, "moved-to");
      return;
    }
    // Directory renames are rare next to file events: both ends are looked up afresh, since a cached path
    // may predate an earlier rename of an ancestor outside the trees.
    const fromKey = this.keyOf(from);
    this.insideDirs.delete(fromKey);
    this.outsideDirs.delete(fromKey);
    this.insideDirs.delete(toKey);
    this.outsideDirs.delete(toKey);
    this.resolve(fromKey);
    this.resolve(toKey);
    const fromRaw = this.rawPath(fromKey);
    const toRaw = this.rawPath(toKey);
    const fromFull = fromRaw === null ? null : joinPath(fromRaw, this.nameOf(from));
    const toFull = toRaw === null ? null : joinPath(toRaw, toName);
    const fromPath = fromFull === null ? null : this.insidePath(fromFull);
    const toPath = toFull === null ? null : this.insidePath(toFull);
    // The moved directory may hold a tree's root below it (an ancestor of an include path was renamed).
    const below = (dir: string | null) => (dir === null ? [] : this.roots.filter((r) => r.path !== dir && isUnder(r.path, dir)));
    const rootsLeft = below(fromFull);
    const rootsArrived = below(toFull);
    if (fromPath === null && toPath === null && rootsLeft.length === 0 && rootsArrived.length === 0) return;
    // Paths below the moved directory changed; a tree moving in may carry ignore marks from outside.
    if (fromPath === null || rootsArrived.length > 0) this.forgetOutside();
    else this.insideDirs.clear();
    const sink = this.reports.sink;
    if (fromPath !== null && toPath !== null) sink?.directoryMoved?.(textToBytes(fromPath), textToBytes(toPath));
    else if (toPath !== null) this.directoryAppeared(toPath, true);
    else if (fromPath !== null) {
      sink?.directoryRemoved(textToBytes(fromPath));
      if (this.hooks.onDirectoryRemoved) this.departed(to, fromPath);
    }
    for (const r of rootsLeft) sink?.directoryRemoved(textToBytes(r.path));
    for (const r of rootsArrived) this.directoryAppeared(r.path, true);
  }

  /** A directory appeared inside a tree: tell the owner; a tree moved in is walked for what it holds. */
  private directoryAppeared(path: string, movedIn: boolean): void {
    const excluded = this.rootOf(path)?.excluded ?? [];
    if (movedIn) {
      this.walk(path, excluded, this.reports.sink);
      return;
    }
    // Events are resolved against the present: a tree made outside and moved in shows its own creations too.
    if (this.addedThisDrain.has(path)) return;
    this.addedThisDrain.add(path);
    this.reports.sink?.directoryAdded(textToBytes(path));
    if (this.hooks.onDirectory) {
      const fd = libc.openat(AT_FDCWD, pathZ(path), DIR_OPEN_FLAGS, 0);
      if (fd >= 0) {
        try {
          this.hooks.onDirectory(fd, textToBytes(path));
        } finally {
          libc.close(fd);
        }
      }
    }
  }

  /** Calls onDirectoryRemoved for a tree that moved out, found at its new place (`to`), named by its old path. */
  private departed(to: FidRecord, oldPath: string): void {
    const parentFd = this.openByKey(this.keyOf(to));
    if (parentFd < 0) return;
    const fd = libc.openat(parentFd, cstr(this.bytes.subarray(to.nameOffset, to.nameOffset + to.nameLength)), DIR_OPEN_FLAGS, 0);
    libc.close(parentFd);
    if (fd < 0) return;
    const stack: [number, string][] = [[fd, oldPath]];
    while (stack.length > 0) {
      const [dfd, path] = stack.pop()!;
      try {
        this.hooks.onDirectoryRemoved!(dfd, textToBytes(path));
        this.lister.listLatin(dfd, (t) => t === DT_DIR, (name) => {
          const child = libc.openat(dfd, pathZ(name), DIR_OPEN_FLAGS, 0);
          if (child >= 0) stack.push([child, joinPath(path, name)]);
        });
      } finally {
        libc.close(dfd);
      }
    }
  }

  /**
   * Walks `start`: calls onDirectory for each directory; with `report`, also reports each directory as
   * added and each file as created (a tree that moved in: its files never raised an event inside).
   */
  private walk(start: string, excluded: string[], report: DirEvents | null): number {
    let count = 0;
    const stack = [start];
    const want = report ? (t: number) => t === DT_DIR || t === DT_UNKNOWN || t === DT_REG : (t: number) => t === DT_DIR || t === DT_UNKNOWN;
    while (stack.length > 0) {
      const path = stack.pop()!;
      const fd = libc.openat(AT_FDCWD, pathZ(path), DIR_OPEN_FLAGS, 0);
      if (fd < 0) {
        if (errno() === Errno.ENOTDIR && report) this.reports.land(path, "created", () => path);
        continue;
      }
      try {
        count++;
        const bytes = textToBytes(path);
        this.hooks.onDirectory?.(fd, bytes);
        if (report && !this.addedThisDrain.has(path)) {
          this.addedThisDrain.add(path);
          report.directoryAdded(bytes);
        }
        this.lister.listLatin(fd, want, (name, type) => {
          const child = joinPath(path, name);
          if (type === DT_REG) this.reports.land(child, "created", () => child);
          else if (!isUnderAny(child, excluded)) stack.push(child);
        });
      } finally {
        libc.close(fd);
      }
    }
    return count;
  }

  // ---- handles → paths ------------------------------------------------------------------------------------

  private keyOf(r: FidRecord): string {
    return (
      this.bytes.toString("latin1", r.fsidOffset, r.fsidOffset + 8) +
      String.fromCharCode(r.handleType & 0xffff) +
      this.bytes.toString("latin1", r.handleOffset, r.handleOffset + r.handleLength)
    );
  }

  private nameOf(r: FidRecord): string {
    return this.bytes.toString("latin1", r.nameOffset, r.nameOffset + r.nameLength);
  }

  /** The directory a key names, as a path inside a tree, or null (outside, excluded, or gone). */
  private resolve(key: string): string | null {
    const hit = this.insideDirs.get(key);
    if (hit !== undefined) return hit;
    if (this.outsideDirs.has(key)) return null;
    const fd = this.openByKey(key);
    if (fd < 0) return null; // deleted (ESTALE) or on a filesystem no longer marked
    try {
      const n = libc.readlink(cstr(`/proc/self/fd/${fd}`), this.link, PATH_MAX);
      if (n <= 0) return null;
      const path = this.linkText.toString("latin1", 0, n);
      if (path.endsWith(DELETED_SUFFIX)) return null;
      if (this.insideDirs.size + this.outsideDirs.size >= CACHE_MAX) {
        this.insideDirs.clear();
        this.outsideDirs.clear();
      }
      if (this.insidePath(path) !== null) {
        this.insideDirs.set(key, path);
        return path;
      }
      this.ignore(fd);
      this.outsideDirs.set(key, path);
      return null;
    } finally {
      libc.close(fd);
    }
  }

  /** The path of a directory resolve() met, inside or not. */
  private rawPath(key: string): string | null {
    return this.insideDirs.get(key) ?? this.outsideDirs.get(key) ?? null;
  }

  /** Keys are fsid (8 chars) + handle type (1 char) + handle bytes, one char per byte. */
  private openByKey(key: string): number {
    const fsid = key.slice(0, 8);
    let mountFd = this.mountFds.get(fsid);
    if (mountFd === undefined) {
      mountFd = this.openOnFilesystem(fsid, []);
      if (mountFd < 0) return -1;
      this.mountFds.set(fsid, mountFd);
    }
    return this.handles.open(mountFd, key.charCodeAt(8), Buffer.from(key.slice(9), "latin1"), DIR_OPEN_FLAGS);
  }

  /** An fd on filesystem `fsid` (checked: a handle decoded on another filesystem names another inode), or -1. */
  private openOnFilesystem(fsid: string, extra: string[]): number {
    const candidates = [...(this.marked.get(fsid) ?? []), ...this.roots.filter((r) => r.fsid === fsid).map((r) => r.path), ...extra];
    for (const p of candidates) {
      const fd = libc.openat(AT_FDCWD, pathZ(p), DIR_OPEN_FLAGS, 0);
      if (fd < 0) continue;
      const id = this.handles.fsid(fd);
      if (typeof id !== "number" && Buffer.from(id).toString("latin1") === fsid) return fd;
      libc.close(fd);
    }
    return -1;
  }

  /** The highest ancestor of `path` on the same filesystem (normally its mount point). */
  private topOfFilesystem(path: string, fsid: string): string {
    let top = path;
    for (let p = parentOf(path); p !== null; p = parentOf(p)) {
      const fd = libc.openat(AT_FDCWD, pathZ(p), DIR_OPEN_FLAGS, 0);
      if (fd < 0) break;
      const id = this.handles.fsid(fd);
      libc.close(fd);
      if (typeof id === "number" || Buffer.from(id).toString("latin1") !== fsid) break;
      top = p;
    }
    return top;
  }

  /** `path` when it lies in a tree and not in its excluded parts, else null. */
  private insidePath(path: string): string | null {
    const root = this.rootOf(path);
    return root && !isUnderAny(path, root.excluded) ? path : null;
  }

  private rootOf(path: string): FsRoot | undefined {
    for (const r of this.roots) {
      if (isUnder(path, r.path)) return r;
    }
    return undefined;
  }

  /** Stops the kernel reporting file events of a directory outside the trees (evictable: memory stays bounded). */
  private ignore(fd: number): void {
    const e = libc.fanotify_mark(this.fd, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | FAN_MARK_EVICTABLE, IGNORE_MASK_BIG, fd, null) === 0 ? 0 : errno();
    if (e === 0) this.ignoreMarks++;
    else if (e === Errno.ENOSPC) this.failed("(ignore mark)", e);
  }

  /** Drops every ignore mark and cached answer: after a tree moved in, or the trees changed. */
  private forgetOutside(): void {
    this.insideDirs.clear();
    this.outsideDirs.clear();
    if (this.ignoreMarks > 0) {
      // Without FAN_MARK_MOUNT/FILESYSTEM, FLUSH removes inode marks only: the filesystem marks stay.
      libc.fanotify_mark(this.fd, FAN_MARK_FLUSH, 0n, AT_FDCWD, null);
      this.ignoreMarks = 0;
    }
  }

  private failed(path: string, err: number): void {
    if (err === Errno.ENOSPC) {
      this.limitReached(fanotifyMarkLimit(path));
      return;
    }
    this.reports.problem(false, `cannot watch "${path}": fanotify_mark(FAN_MARK_FILESYSTEM) ${errnoName(err)}`);
  }
}

function parentOf(path: string): string | null {
  if (path === "/") return null;
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}
