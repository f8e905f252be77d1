// The userspace verdict cache: (dev, ino, size, mtime, ctime) → "clean", a bounded LRU shared by every
// thread through a SharedArrayBuffer. It backs the kernel's ignore marks for what they miss: notification
// mode, marks the kernel evicted, writes through mmap. Only clean verdicts are cached.
//
// Storage is typed arrays only (no per-entry objects): a hash table of chains over entry indexes, and a
// doubly linked LRU list. One spinlock guards it; every operation is a handful of array reads.
import type { FdStat } from "../../ffi/fs.ts";

// Header words (Int32).
const H_LOCK = 0;
const H_USED = 1; // entries in use
const H_HEAD = 2; // most recently used entry, -1 when empty
const H_TAIL = 3; // least recently used entry
const HEADER = 8;

const NONE = -1;

export interface CacheBuffers {
  sab: SharedArrayBuffer;
  capacity: number;
  buckets: number;
}

export class VerdictCache {
  readonly capacity: number;
  private readonly buckets: number;
  private readonly header: Int32Array;
  private readonly bucketHead: Int32Array; // entry index + 1; 0 = empty bucket
  private readonly chainNext: Int32Array; // entry index + 1 of the next entry in the same bucket
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  // Key fields. Seconds and sizes as doubles (exact below 2^53); nanoseconds as int32.
  private readonly keyF: Float64Array; // [dev, ino, size, mtimeSec, ctimeSec] per entry
  private readonly keyI: Int32Array; // [mtimeNsec, ctimeNsec] per entry

  static create(capacity: number): VerdictCache {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`cache capacity ${capacity} must be a positive integer`);
    let buckets = 1;
    while (buckets < capacity * 2) buckets *= 2;
    const bytes = HEADER * 4 + buckets * 4 + capacity * 4 * 4 + capacity * 5 * 8 + capacity * 2 * 4;
    const c = new VerdictCache({ sab: new SharedArrayBuffer(bytes + 8), capacity, buckets });
    c.clearUnlocked();
    return c;
  }

  static attach(b: CacheBuffers): VerdictCache {
    return new VerdictCache(b);
  }

  private constructor(readonly buffers: CacheBuffers) {
    const { sab, capacity, buckets } = buffers;
    this.capacity = capacity;
    this.buckets = buckets;
    let off = 0;
    this.header = new Int32Array(sab, off, HEADER);
    off += HEADER * 4;
    this.bucketHead = new Int32Array(sab, off, buckets);
    off += buckets * 4;
    this.chainNext = new Int32Array(sab, off, capacity);
    off += capacity * 4;
    this.prev = new Int32Array(sab, off, capacity);
    off += capacity * 4;
    this.next = new Int32Array(sab, off, capacity);
    off += capacity * 4;
    this.keyI = new Int32Array(sab, off, capacity * 2);
    off += capacity * 2 * 4;
    off = (off + 7) & ~7; // Float64Array needs 8-byte alignment
    this.keyF = new Float64Array(sab, off, capacity * 5);
  }

  get size(): number {
    return Atomics.load(this.header, H_USED);
  }

  /** True (and the entry becomes most recent) when this exact file version was found clean. */
  has(st: FdStat): boolean {
    this.lock();
    try {
      const i = this.find(st);
      if (i === NONE) return false;
      this.moveToFront(i);
      return true;
    } finally {
      this.unlock();
    }
  }

  /** Records a clean verdict. Returns true when an older entry was evicted to make room. */
  add(st: FdStat): boolean {
    this.lock();
    try {
      const found = this.find(st);
      if (found !== NONE) {
        this.moveToFront(found);
        return false;
      }
      let i: number;
      let evicted = false;
      const used = this.header[H_USED]!;
      if (used < this.capacity) {
        i = used;
        this.header[H_USED] = used + 1;
      } else {
        i = this.header[H_TAIL]!;
        this.unlinkLru(i);
        this.unlinkBucket(i);
        evicted = true;
      }
      this.writeKey(i, st);
      const b = this.bucketOf(st.dev, st.ino);
      this.chainNext[i] = this.bucketHead[b]!;
      this.bucketHead[b] = i + 1;
      this.pushFront(i);
      return evicted;
    } finally {
      this.unlock();
    }
  }

  /** Forgets this file version (a flush overlapped the insert). */
  remove(st: FdStat): void {
    this.lock();
    try {
      const i = this.find(st);
      if (i === NONE) return;
      this.unlinkBucket(i);
      this.unlinkLru(i);
      // Keep entries dense: move the last used entry into the freed index.
      const last = this.header[H_USED]! - 1;
      if (i !== last) this.moveEntry(last, i);
      this.header[H_USED] = last;
    } finally {
      this.unlock();
    }
  }

  /** Forgets every verdict (signatures changed). */
  clear(): void {
    this.lock();
    try {
      this.clearUnlocked();
    } finally {
      this.unlock();
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private clearUnlocked(): void {
    this.bucketHead.fill(0);
    this.header[H_USED] = 0;
    this.header[H_HEAD] = NONE;
    this.header[H_TAIL] = NONE;
  }

  private lock(): void {
    while (Atomics.compareExchange(this.header, H_LOCK, 0, 1) !== 0) {
      /* held for a few array operations only */
    }
  }
  private unlock(): void {
    Atomics.store(this.header, H_LOCK, 0);
  }

  private bucketOf(dev: number, ino: number): number {
    // Hint: inode numbers exceed 32 bits on some filesystems; mix both halves.
    const lo = ino >>> 0;
    const hi = Math.floor(ino / 4294967296) >>> 0;
    let h = Math.imul(lo ^ Math.imul(hi, 0x27d4eb2d), 0x9e3779b1) ^ Math.imul(dev >>> 0, 0x85ebca6b);
    h ^= h >>> 15;
    return h & (this.buckets - 1);
  }

  private find(st: FdStat): number {
    let j = this.bucketHead[this.bucketOf(st.dev, st.ino)]!;
    while (j !== 0) {
      const i = j - 1;
      const f = i * 5;
      const k = i * 2;
      if (
        this.keyF[f + 1] === st.ino &&
        this.keyF[f] === st.dev &&
        this.keyF[f + 2] === st.size &&
        this.keyF[f + 3] === st.mtimeSec &&
        this.keyI[k] === st.mtimeNsec &&
        this.keyF[f + 4] === st.ctimeSec &&
        this.keyI[k + 1] === st.ctimeNsec
      ) {
        return i;
      }
      j = this.chainNext[i]!;
    }
    return NONE;
  }

  private writeKey(i: number, st: FdStat): void {
    const f = i * 5;
    const k = i * 2;
    this.keyF[f] = st.dev;
    this.keyF[f + 1] = st.ino;
    this.keyF[f + 2] = st.size;
    this.keyF[f + 3] = st.mtimeSec;
    this.keyF[f + 4] = st.ctimeSec;
    this.keyI[k] = st.mtimeNsec;
    this.keyI[k + 1] = st.ctimeNsec;
  }

  /** Moves entry `from` to the free index `to`, fixing its bucket chain and LRU neighbours. */
  private moveEntry(from: number, to: number): void {
    this.unlinkBucket(from);
    const p = this.prev[from]!;
    const n = this.next[from]!;
    const f = from * 5;
    const t = to * 5;
    for (let k = 0; k < 5; k++) this.keyF[t + k] = this.keyF[f + k]!;
    this.keyI[to * 2] = this.keyI[from * 2]!;
    this.keyI[to * 2 + 1] = this.keyI[from * 2 + 1]!;
    this.prev[to] = p;
    this.next[to] = n;
    if (p !== NONE) this.next[p] = to;
    else this.header[H_HEAD] = to;
    if (n !== NONE) this.prev[n] = to;
    else this.header[H_TAIL] = to;
    const b = this.bucketOf(this.keyF[t]!, this.keyF[t + 1]!);
    this.chainNext[to] = this.bucketHead[b]!;
    this.bucketHead[b] = to + 1;
  }

  private unlinkBucket(i: number): void {
    const f = i * 5;
    const b = this.bucketOf(this.keyF[f]!, this.keyF[f + 1]!);
    let j = this.bucketHead[b]!;
    if (j === i + 1) {
      this.bucketHead[b] = this.chainNext[i]!;
      return;
    }
    while (j !== 0) {
      const p = j - 1;
      if (this.chainNext[p] === i + 1) {
        this.chainNext[p] = this.chainNext[i]!;
        return;
      }
      j = this.chainNext[p]!;
    }
  }

  private unlinkLru(i: number): void {
    const p = this.prev[i]!;
    const n = this.next[i]!;
    if (p !== NONE) this.next[p] = n;
    else this.header[H_HEAD] = n;
    if (n !== NONE) this.prev[n] = p;
    else this.header[H_TAIL] = p;
  }

  private pushFront(i: number): void {
    const head = this.header[H_HEAD]!;
    this.prev[i] = NONE;
    this.next[i] = head;
    if (head !== NONE) this.prev[head] = i;
    this.header[H_HEAD] = i;
    if (this.header[H_TAIL] === NONE) this.header[H_TAIL] = i;
  }

  private moveToFront(i: number): void {
    if (this.header[H_HEAD] === i) return;
    this.unlinkLru(i);
    this.pushFront(i);
  }
}
