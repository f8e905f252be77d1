// What the directory watchers share. WatcherBase, all three: the notification fd and its read loop, the
// frame of addTree() and drain(), and limit reporting. TreeWatcher, the two that mark every directory
// (fanotify directory marks, inotify): the start-up walk, reacting to a directory entry that changed
// (watch it and report what already landed in it, follow a rename, drop what left), and the resync after a
// lost event; those two classes supply only the kernel side: identify, mark, read, unwatch.
import { Errno, SyscallError, errnoName } from "../../../ffi/errors.ts";
import { DT_DIR, DT_REG, DT_UNKNOWN, DirReader } from "../../../ffi/dirent.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS } from "../../../ffi/fcntl.ts";
import { errno, libc, structBuffer } from "../../../ffi/libc.ts";
import { OnaccError } from "../../errors.ts";
import { isUnderAny } from "../paths.ts";
import { type LandedWhy, Reports } from "./report.ts";
import { DirTree, type DirNode, type NodeKey, bytesToText, excludedDirs, joinPath, normalizeDir, textToBytes } from "./tree.ts";
import type { DirEvents, DirectoryWatcher, WatcherHooks, WatcherKind } from "./types.ts";

/** read() calls per drain(): a steady flood of events must not keep drain() from returning. */
export const MAX_READS_PER_DRAIN = 64;
/** One read() takes up to this many bytes: ~1,000 fanotify records of 24 + 36 + name bytes. */
const READ_BUFFER = 64 * 1024;

export type { LandedWhy } from "./report.ts";

/** A NUL-terminated byte path for libc, built straight from a latin1 string. */
export function pathZ(path: string): Buffer {
  return Buffer.from(`${path}\0`, "latin1");
}

/**
 * `fd` from fanotify_init/inotify_init1, or the error to start with: the limit to raise (EMFILE), or the
 * call that failed. `limit` names the per-user limit ("fanotify group"), `sysctl` the knob.
 */
export function watcherFd(fd: number, limit: string, sysctl: string, syscall: string, detail?: string): number {
  if (fd >= 0) return fd;
  const e = errno();
  if (e === Errno.EMFILE) throw new OnaccError("E_RUNTIME", `${limit} limit reached: raise ${sysctl} (sysctl -w ${sysctl}=N)`);
  throw new SyscallError(syscall, e, detail);
}

/** The message for running out of fanotify marks at `path`: said once, protection goes on with what is marked. */
export function fanotifyMarkLimit(path: string): string {
  return `fanotify mark limit reached at "${path}": raise fs.fanotify.max_user_marks (sysctl -w fs.fanotify.max_user_marks=N); protecting what is already watched`;
}

export abstract class WatcherBase implements DirectoryWatcher {
  abstract readonly kind: WatcherKind;
  abstract readonly fd: number;
  abstract readonly description: string;
  protected readonly reports = new Reports();
  protected readonly lister = new DirReader();
  /** The last read()'s bytes, three views of one buffer. */
  protected readonly buf = structBuffer(READ_BUFFER);
  protected readonly bytes = Buffer.from(this.buf.buffer);
  protected readonly view = new DataView(this.buf.buffer);
  protected closed = false;
  private limitReported = false;

  constructor(protected readonly hooks: WatcherHooks) {}

  /** Watches the tree at `root` (normalized, not excluded itself), leaving out `excluded`; returns how many directories. */
  protected abstract watchTree(root: string, excluded: string[]): number;
  /** Reads and dispatches what the kernel has queued (see readQueued()). */
  protected abstract readEvents(): number;
  /** Called at the start of each addTree, drain and resync: caches that may go stale between them are cleared. */
  protected refresh(): void {}
  /** Called in drain() after the events were read, before the landed files are reported. */
  protected afterEvents(_events: DirEvents): void {}
  /** Called when a drain ends, whatever happened in it. */
  protected drainEnded(): void {}
  /** Called once by close(), after the fd is closed: lets go of what the watcher remembers. */
  protected forgetAll(): void {}
  abstract removeTree(dir: Uint8Array): void;
  abstract resync(events: DirEvents): void;
  abstract watchCount(): number;
  abstract watchedPaths(): Uint8Array[];

  addTree(dir: Uint8Array, excluded: Uint8Array[], events?: DirEvents): number {
    const root = normalizeDir(bytesToText(dir));
    const dirs = excludedDirs(excluded);
    const previous = this.reports.sink;
    this.reports.sink = events ?? null;
    try {
      this.refresh();
      if (isUnderAny(root, dirs)) {
        this.reports.problem(false, `"${root}" lies inside an excluded path: not watched`);
        return 0;
      }
      return this.watchTree(root, dirs);
    } finally {
      this.reports.sink = previous;
    }
  }

  drain(events: DirEvents): number {
    if (this.closed) return 0;
    this.reports.sink = events;
    try {
      this.refresh();
      this.reports.flushProblems(events);
      const n = this.readEvents();
      this.afterEvents(events);
      this.reports.flushLanded(events);
      return n;
    } finally {
      this.drainEnded();
      this.reports.sink = null;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    this.forgetAll();
  }

  /**
   * Reads what the kernel has queued on the fd into `buf`, at most MAX_READS_PER_DRAIN times (EINTR is
   * retried, EAGAIN ends it), and hands each read's length to `parse`; returns what `parse` counted. A
   * failed read is reported as "reading `what` failed".
   */
  protected readQueued(parse: (length: number) => number, what: string): number {
    let total = 0;
    for (let i = 0; i < MAX_READS_PER_DRAIN; i++) {
      const n = libc.read(this.fd, this.buf, READ_BUFFER);
      if (n <= 0) {
        const e = n < 0 ? errno() : 0;
        if (e === Errno.EINTR) continue;
        if (e !== Errno.EAGAIN && e !== 0) this.reports.problem(false, `reading ${what} failed: ${errnoName(e)}`);
        break;
      }
      total += parse(n);
    }
    return total;
  }

  /** Reports a kernel limit once per watcher (later hits stay quiet); returns whether it was said now. */
  protected limitReached(message: string): boolean {
    if (this.limitReported) return false;
    this.limitReported = true;
    this.reports.problem(true, message);
    return true;
  }
}

interface WalkItem {
  parent: DirNode | null;
  name: string;
  path: string;
  /** d_type was DT_UNKNOWN: if it turns out not to be a directory, it may be a file to report. */
  maybeFile: boolean;
  /** An fd (and key) the caller already holds for this directory; not closed by the walk. */
  fd?: number;
  key?: NodeKey;
}

/** A departed node and the path it had when it left. */
export interface Departure {
  node: DirNode;
  path: string;
}

export abstract class TreeWatcher extends WatcherBase {
  protected readonly tree = new DirTree();
  /** errno of the last failed identify(). */
  protected lastErrno = 0;
  private readonly departed = new Map<DirNode, string>();
  private stopWalk = false;

  /** Identifies the directory open at `fd` (inotify: also watches it). Null on failure, errno in lastErrno. */
  protected abstract identify(fd: number, path: Buffer): NodeKey | null;
  /** Places the mark on the directory (inotify: identify already did). Returns 0 or the errno. */
  protected abstract mark(fd: number, path: Buffer): number;
  /** Drops a watch identify() placed on a directory that will not be watched after all. */
  protected abstract forget(key: NodeKey): void;
  /** Removes the kernel watches of departed directories and calls hooks.onDirectoryRemoved for each. */
  protected abstract unwatch(departed: Departure[]): void;
  /** The message for a limit errno (ENOSPC, EMFILE) hit while watching `path`, or null for other errnos. */
  protected abstract limitMessage(err: number, path: string): string | null;

  protected watchTree(root: string, excluded: string[]): number {
    return this.walk({ parent: null, name: root, path: root, maybeFile: false }, excluded, null, null);
  }

  removeTree(dir: Uint8Array): void {
    const node = this.tree.find(bytesToText(dir));
    if (!node) return;
    const path = this.tree.pathOf(node) ?? node.name;
    // A subtree stays out: its parent's next event about it must not bring it back.
    if (!node.root) this.tree.rootOf(node)?.root!.excluded.push(normalizeDir(path));
    this.tree.detach(node);
    const gone: Departure[] = [];
    this.tree.drop(node, path, (n, p) => gone.push({ node: n, path: p }));
    this.unwatch(gone);
  }

  protected override afterEvents(events: DirEvents): void {
    this.settleDepartures(events);
  }

  resync(events: DirEvents): void {
    this.reports.sink = events;
    try {
      this.refresh();
      const seen = new Set<DirNode>();
      for (const root of this.tree.rootNodes()) {
        const excluded = root.root!.excluded;
        const fd = libc.openat(AT_FDCWD, pathZ(root.name), DIR_OPEN_FLAGS, 0);
        const key = fd >= 0 ? this.identify(fd, pathZ(root.name)) : null;
        if (fd >= 0) libc.close(fd);
        if (key !== root.key) {
          // The root itself is gone or was replaced: drop it, and watch what stands there now.
          this.depart(root);
          this.settleDepartures(events);
          if (fd >= 0) this.walk({ parent: null, name: root.name, path: root.name, maybeFile: false }, excluded, events, null);
          continue;
        }
        this.walk({ parent: null, name: root.name, path: root.name, maybeFile: false, key }, excluded, events, seen);
      }
      // Whatever the walk did not meet has left (its parent was met, so it is not merely below a move).
      const unseen: DirNode[] = [];
      this.tree.forEach((n) => {
        if (!seen.has(n) && (n.parent === null || seen.has(n.parent))) unseen.push(n);
      });
      for (const n of unseen) this.depart(n);
      this.settleDepartures(events);
      this.reports.flushLanded(events);
    } finally {
      this.reports.sink = null;
    }
  }

  watchCount(): number {
    return this.tree.size;
  }

  watchedPaths(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.tree.forEach((_n, path) => out.push(textToBytes(path)));
    return out;
  }

  protected override forgetAll(): void {
    this.tree.clear();
    this.departed.clear();
  }

  // ---- called by the kernel side while reading events -------------------------------------------------

  /** Something happened to entry `name` of the watched directory `parentKey`. */
  protected entryChanged(parentKey: NodeKey, name: string, isDir: boolean, why: LandedWhy | null): void {
    const parent = this.tree.get(parentKey);
    if (!parent) return; // a directory already dropped; its last events are still queued
    const parentPath = this.tree.pathOf(parent);
    if (parentPath === null) return; // it left the tree in this same drain
    if (isDir || parent.children?.has(name)) this.reconcile(parent, parentPath, name);
    else if (why !== null) this.land(parent, name, why);
  }

  /** The watched directory itself was deleted (or, for `deleted` false, moved: only roots care). */
  protected selfChanged(key: NodeKey, deleted: boolean): void {
    const node = this.tree.get(key);
    if (!node) return;
    if (deleted || node.root) this.depart(node);
  }

  protected overflowed(): void {
    this.reports.sink?.overflow();
  }

  // ---- internals --------------------------------------------------------------------------------------

  /**
   * Brings the tree in line with what now stands at `parent`/`name`. Works from the filesystem's present
   * state rather than the event's mask: fanotify merges queued events for one name (CREATE|MOVED_FROM
   * could be either order), and a name may have changed again since.
   */
  private reconcile(parent: DirNode, parentPath: string, name: string): void {
    const path = joinPath(parentPath, name);
    const existing = parent.children?.get(name);
    const root = this.tree.rootOf(parent);
    if (!root) return;
    const excluded = root.root!.excluded;
    if (isUnderAny(path, excluded)) {
      if (existing) this.depart(existing);
      return;
    }
    const z = pathZ(path);
    const fd = libc.openat(AT_FDCWD, z, DIR_OPEN_FLAGS, 0);
    if (fd < 0) {
      const e = errno();
      if (existing && (e === Errno.ENOENT || e === Errno.ENOTDIR || e === Errno.ELOOP)) this.depart(existing);
      else if (e === Errno.ENOTDIR) this.land(parent, name, "created");
      else if (e !== Errno.ENOENT && e !== Errno.ELOOP) this.problem(false, `cannot watch "${path}": ${errnoName(e)}`);
      return;
    }
    try {
      const key = this.identify(fd, z);
      if (key === null) {
        this.reportFailure(path, this.lastErrno);
        return;
      }
      if (existing?.key === key) return;
      if (existing) this.depart(existing);
      const known = this.tree.get(key);
      if (known) {
        if (!known.root) this.moveHere(known, parent, name, path);
        return;
      }
      this.walk({ parent, name, path, maybeFile: false, fd, key }, excluded, this.reports.sink, null);
    } finally {
      libc.close(fd);
    }
  }

  /** A known directory now stands at `path`: a rename or move inside the watched trees. */
  private moveHere(node: DirNode, parent: DirNode, name: string, path: string): void {
    const from = this.departed.get(node) ?? this.tree.pathOf(node);
    this.departed.delete(node);
    this.tree.detach(node);
    this.tree.attach(node, parent, name);
    if (from !== null && from !== path) this.reports.sink?.directoryMoved?.(textToBytes(from), textToBytes(path));
  }

  /** Takes `node` out of the tree; settleDepartures() drops it unless it reappears first (a move). */
  private depart(node: DirNode): void {
    if (this.departed.has(node)) return;
    const path = this.tree.pathOf(node);
    this.tree.detach(node);
    this.departed.set(node, path ?? node.name);
  }

  private settleDepartures(events: DirEvents | null): void {
    if (this.departed.size === 0) return;
    const all = [...this.departed];
    this.departed.clear();
    for (const [node, path] of all) {
      const gone: Departure[] = [];
      this.tree.drop(node, path, (n, p) => gone.push({ node: n, path: p }));
      this.unwatch(gone);
      events?.directoryRemoved(textToBytes(path));
    }
  }

  /**
   * Watches `start` and every directory below it. Each directory is marked first and listed second, so a
   * file landing in it is either seen by the listing or raises an event on the mark — never neither.
   * `report` set: new directories and the files found in them are reported (they appeared after start).
   * `seen` set (resync): known directories are walked through too, and every node met is added to it.
   */
  private walk(start: WalkItem, excluded: string[], report: DirEvents | null, seen: Set<DirNode> | null): number {
    let count = 0;
    this.stopWalk = false;
    const stack: WalkItem[] = [start];
    const wantDirs = (t: number) => t === DT_DIR || t === DT_UNKNOWN;
    const wantAll = (t: number) => t === DT_DIR || t === DT_UNKNOWN || t === DT_REG;
    while (stack.length > 0 && !this.stopWalk) {
      const item = stack.pop()!;
      const z = pathZ(item.path);
      let fd = item.fd ?? -1;
      if (fd < 0) {
        fd = libc.openat(AT_FDCWD, z, DIR_OPEN_FLAGS, 0);
        if (fd < 0) {
          const e = errno();
          if (e === Errno.ENOTDIR && item.maybeFile && item.parent) this.land(item.parent, item.name, "created");
          else if (e === Errno.EMFILE || e === Errno.ENFILE) {
            this.problem(false, `cannot watch "${item.path}": ${errnoName(e)} (too many open files)`);
            this.stopWalk = true;
          } else if (e !== Errno.ENOENT && e !== Errno.ENOTDIR && e !== Errno.ELOOP) {
            this.problem(false, `cannot watch "${item.path}": ${errnoName(e)}`);
          }
          continue;
        }
      }
      try {
        const key = item.key ?? this.identify(fd, z);
        if (key === null) {
          this.reportFailure(item.path, this.lastErrno);
          continue;
        }
        let node = this.tree.get(key);
        let fresh = false;
        if (node) {
          const here = node.root ? item.parent === null : node.parent === item.parent && node.name === item.name;
          if (!here) {
            if (item.parent === null || node.root) continue; // overlapping roots: already covered
            this.moveHere(node, item.parent, item.name, item.path);
          }
          if (!seen) continue; // already watched, with everything below it
        } else {
          const err = this.mark(fd, z);
          if (err !== 0) {
            this.forget(key);
            this.reportFailure(item.path, err);
            continue;
          }
          node = item.parent ? this.tree.addChild(key, item.parent, item.name) : this.tree.addRoot(key, item.path, excluded);
          fresh = true;
          count++;
          const bytes = this.hooks.onDirectory || report ? textToBytes(item.path) : null;
          if (bytes) {
            this.hooks.onDirectory?.(fd, bytes);
            report?.directoryAdded(bytes);
          }
        }
        seen?.add(node);
        const parentNode = node;
        // Files are reported only in directories watched just now: they may have landed before the mark.
        const reportFiles = report !== null && fresh;
        const e = this.lister.listLatin(fd, reportFiles ? wantAll : wantDirs, (name, type) => {
          const childPath = joinPath(item.path, name);
          if (type === DT_REG) {
            this.land(parentNode, name, "created");
            return;
          }
          if (!isUnderAny(childPath, excluded)) stack.push({ parent: parentNode, name, path: childPath, maybeFile: type === DT_UNKNOWN && reportFiles });
        });
        if (e !== 0) this.problem(false, `cannot list "${item.path}": ${errnoName(e)}`);
      } finally {
        if (fd !== item.fd) libc.close(fd);
      }
    }
    return count;
  }

  private reportFailure(path: string, err: number): void {
    const message = this.limitMessage(err, path);
    if (message !== null) {
      this.stopWalk = true;
      this.limitReached(message);
      return;
    }
    if (err === Errno.ENOENT || err === Errno.ENOTDIR) return; // gone since it was listed
    this.problem(false, `cannot watch "${path}": ${errnoName(err)}`);
  }

  private problem(limit: boolean, message: string): void {
    this.reports.problem(limit, message);
  }

  /** A file `name` landed in `parent`; its path is taken when the drain ends (the directory may move first). */
  private land(parent: DirNode, name: string, why: LandedWhy): void {
    this.reports.land(`${parent.key}\0${name}`, why, () => {
      const dir = this.tree.pathOf(parent);
      return dir === null ? null : joinPath(dir, name);
    });
  }
}
