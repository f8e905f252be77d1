// Background scans (OnAccessExtraScanning): files that landed in the tree are scanned once they have been
// quiet for a moment, below permission events in priority, on their own queue. The reader collects landed
// paths and coalesces repeated writes (LandedFiles), hands due paths to the scanner through a
// SharedArrayBuffer queue of path bytes (BackgroundQueue), and when either is full it drops the path and
// later walks the trees again for files changed since (Rewalk): background work is never lost, and it never
// takes a place an open needs.
import { DT_DIR, DT_REG, DT_UNKNOWN, DirReader, openDirectoryAt } from "../../ffi/dirent.ts";
import { AT_FDCWD } from "../../ffi/fcntl.ts";
import { AT_STATX_DONT_SYNC, Fstat, S_IFDIR, S_IFMT, S_IFREG, emptyStat } from "../../ffi/fs.ts";
import { libc } from "../../ffi/libc.ts";
import { isUnderBytes } from "./paths.ts";

// ---- the queue between reader and scanner ---------------------------------------------------------

const H_HEAD = 0; // bytes taken (consumer)
const H_TAIL = 1; // bytes added (producer)
const HEADER_BYTES = 8;
/** A path read back from /proc or a directory walk never exceeds PATH_MAX (4096). */
export const MAX_PATH_BYTES = 4096;

/** Single producer (the reader), single consumer (the scanner): entries are a 2-byte length and the bytes. */
export class BackgroundQueue {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly size: number;

  static create(bytes = 1 << 18): BackgroundQueue {
    if ((bytes & (bytes - 1)) !== 0) throw new RangeError(`background queue size ${bytes} is not a power of two`);
    return new BackgroundQueue(new SharedArrayBuffer(HEADER_BYTES + bytes));
  }
  static attach(sab: SharedArrayBuffer): BackgroundQueue {
    return new BackgroundQueue(sab);
  }
  private constructor(readonly sab: SharedArrayBuffer) {
    this.header = new Int32Array(sab, 0, 2);
    this.bytes = new Uint8Array(sab, HEADER_BYTES);
    this.size = this.bytes.length;
  }

  /** Adds a path; false when there is no room (the caller remembers to walk again later). */
  push(path: Uint8Array): boolean {
    const n = path.length;
    if (n === 0 || n > MAX_PATH_BYTES) return true; // nothing a scanner could open: dropped for good
    const head = Atomics.load(this.header, H_HEAD);
    const tail = Atomics.load(this.header, H_TAIL);
    if (this.size - ((tail - head) | 0) < n + 2) return false;
    this.put(tail, n & 0xff);
    this.put(tail + 1, n >>> 8);
    for (let i = 0; i < n; i++) this.put(tail + 2 + i, path[i]!);
    Atomics.store(this.header, H_TAIL, (tail + 2 + n) | 0);
    return true;
  }

  /** Takes the oldest path into `out` (MAX_PATH_BYTES long at least); its length, or -1 when empty. */
  take(out: Uint8Array): number {
    const head = Atomics.load(this.header, H_HEAD);
    const tail = Atomics.load(this.header, H_TAIL);
    if (head === tail) return -1;
    const n = this.get(head) | (this.get(head + 1) << 8);
    for (let i = 0; i < n; i++) out[i] = this.get(head + 2 + i);
    Atomics.store(this.header, H_HEAD, (head + 2 + n) | 0);
    return n;
  }

  isEmpty(): boolean {
    return Atomics.load(this.header, H_HEAD) === Atomics.load(this.header, H_TAIL);
  }

  private put(pos: number, byte: number): void {
    this.bytes[pos & (this.size - 1)] = byte;
  }
  private get(pos: number): number {
    return this.bytes[pos & (this.size - 1)]!;
  }
}

// ---- coalescing in the reader -------------------------------------------------------------------

/**
 * Paths that landed, each due once it has been quiet for `quietMs` (a file written in several goes, or a
 * tar member written then touched, is scanned once, with its final contents). Bounded: past `max`
 * pending paths, add() refuses and the caller falls back to a re-walk.
 */
export class LandedFiles {
  // Insertion order = order of the last change: the front is always the next one due.
  private readonly pending = new Map<string, { path: Uint8Array; due: number }>();
  constructor(
    private readonly quietMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  add(path: Uint8Array, now: number): boolean {
    const key = Buffer.from(path.buffer, path.byteOffset, path.length).toString("latin1");
    const had = this.pending.get(key);
    if (had) this.pending.delete(key);
    else if (this.pending.size >= this.max) return false;
    this.pending.set(key, { path: had?.path ?? path, due: now + this.quietMs });
    return true;
  }

  /** Hands due paths to `take` in order until it refuses one (queue full): that one stays pending. */
  flushDue(now: number, take: (path: Uint8Array) => boolean): void {
    for (const [key, entry] of this.pending) {
      if (entry.due > now) return;
      if (!take(entry.path)) return;
      this.pending.delete(key);
    }
  }

  /** Milliseconds until the next path is due (-1 when none is pending). */
  nextDueIn(now: number): number {
    for (const entry of this.pending.values()) return Math.max(0, entry.due - now);
    return -1;
  }

  clear(): void {
    this.pending.clear();
  }
}

// ---- the re-walk after a drop -------------------------------------------------------------------

const SLASH = 0x2f;

/**
 * Walks the include trees again, a slice at a time, for regular files changed since `since` (wall-clock
 * ms): what a dropped background scan may have missed. Only directories are opened (O_DIRECTORY|
 * O_NOFOLLOW|O_NONBLOCK); files are looked at with statx relative to their directory, without following
 * symlinks and without waiting on a network server (AT_STATX_DONT_SYNC).
 */
export class Rewalk {
  private readonly stack: Uint8Array[];
  private readonly dirs = new DirReader();
  private readonly fstat = new Fstat();
  private readonly st = emptyStat();
  private readonly found: Uint8Array[] = [];

  constructor(
    roots: string[],
    private readonly excluded: Uint8Array[],
    readonly since: number,
  ) {
    this.stack = roots.map((r) => Buffer.from(r));
  }

  /**
   * Works for about `budgetMs`, handing changed files to `emit` until it refuses one (queue full: the walk
   * pauses there). Returns true when the walk is complete.
   */
  step(budgetMs: number, now: () => number, emit: (path: Uint8Array) => boolean): boolean {
    const end = now() + budgetMs;
    for (;;) {
      while (this.found.length > 0) {
        if (!emit(this.found[this.found.length - 1]!)) return false;
        this.found.pop();
      }
      if (this.stack.length === 0) return true;
      if (now() > end) return false;
      this.visit(this.stack.pop()!);
    }
  }

  private visit(dir: Uint8Array): void {
    const fd = openDirectoryAt(AT_FDCWD, dir);
    if (fd < 0) return; // gone since: nothing left to scan there
    try {
      const since = this.since;
      this.dirs.list(fd, (name, type) => {
        if (type !== DT_DIR && type !== DT_UNKNOWN && type !== DT_REG) return;
        if (this.fstat.statAt(fd, name, this.st, AT_STATX_DONT_SYNC) !== 0) return;
        const path = joinBytes(dir, name);
        const kind = this.st.mode & S_IFMT;
        if (kind === S_IFDIR) {
          if (!this.excluded.some((x) => isUnderBytes(path, x))) this.stack.push(path);
        } else if (kind === S_IFREG && this.st.ctimeSec * 1000 + this.st.ctimeNsec / 1e6 >= since) {
          this.found.push(path);
        }
      });
    } catch {
      /* unreadable directory: skipped, as the first walk would */
    } finally {
      libc.close(fd);
    }
  }
}

function joinBytes(dir: Uint8Array, name: Uint8Array): Uint8Array {
  const slash = dir[dir.length - 1] === SLASH ? 0 : 1;
  const out = new Uint8Array(dir.length + slash + name.length);
  out.set(dir);
  if (slash) out[dir.length] = SLASH;
  out.set(name, dir.length + slash);
  return out;
}

