// The event ring: a bounded queue in a SharedArrayBuffer between the reader Worker (producer) and the
// scanner Workers (consumers), plus each pending event's state so the watchdog can answer late ones.
//
// Events live in slots; free slots are kept on a stack, and the queue holds slot numbers in arrival
// order. So a slow scan holds only its own slot: the ring is full only when every slot is in use.
//
// Slot state machine (one Int32 per slot, changed only with compareExchange):
//   FREE → QUEUED (producer) → SCANNING (a scanner took it) → ANSWERING → ANSWERED → CLOSING → FREE
//   QUEUED/SCANNING → ANSWERING → ANSWERED (the watchdog or shutdown answered it first)
// Whoever moves a slot to ANSWERING writes the one fanotify response; the slot's owner (the scanner that
// took it) alone closes the fd, after moving the slot to CLOSING (never while a response is being
// written), so an fd number is never answered after it was closed and reused. Each slot also carries a
// generation, bumped on every reuse, which lets the watchdog tell a late event from a new one in the same
// slot.

export const SlotState = { FREE: 0, QUEUED: 1, SCANNING: 2, ANSWERING: 3, ANSWERED: 4, CLOSING: 5 } as const;

/** Event flags stored with each slot. */
export const SlotFlag = {
  /** A permission event: it must be answered. */
  PERM: 1,
  /** The file was written (FAN_CLOSE_WRITE): scan even if a cache says clean. */
  WRITTEN: 2,
  /** On a file system whose writes onacc may not see (network, FUSE): never cached, never stat()ed by a scanner. */
  NOT_LOCAL: 4,
} as const;

/**
 * Background work (extra scans, files found in new folders) may fill at most this share of the slots:
 * the rest is kept for permission events, so no flood of created files can push an open out of the queue.
 */
const BACKGROUND_SHARE = 0.5;

// Header words (Int32).
const H_HEAD = 0; // next queue position to take
const H_TAIL = 1; // next queue position to fill; consumers futex-wait on it
const H_LOCK = 2; // producer lock (reader, and later other producers)
const H_STOP = 3; // set to 1 at shutdown
const H_LOG_GEN = 4; // bumped on SIGHUP: Workers reopen their log file
const H_FLUSH_GEN = 5; // bumped when the verdict cache must be flushed
const H_ACTIVE = 6; // scanner Workers currently inside a scan (watchdog: are they progressing?)
const H_NO_CACHE = 7; // 1 while verdicts must not be cached (signatures may be changing)
const H_PATH_FILTER = 8; // 1 while temporary mount marks are up: the reader filters events by path
const H_SCANS_DONE = 9; // scans finished: the service watchdog checks that it moves
const H_FREE_TOP = 10; // slots on the free stack (guarded by H_LOCK)
const HEADER_WORDS = 16;

// Per-slot Int32 fields.
const F_STATE = 0;
const F_FD = 1;
const F_PID = 2;
const F_FLAGS = 3;
const F_GEN = 4;
const SLOT_WORDS = 5;

/** Counters, in a BigInt64Array so they never wrap. Names are the keys. */
export const Counter = {
  events: 0, // permission/notification events read
  ownPid: 1, // from onacc itself: allowed at once
  excluded: 2, // excluded pid/uid/path: allowed at once
  notRegular: 3, // FIFO, device, socket, directory: allowed without a scan
  tooLarge: 4, // over OnAccessMaxFileSize: allowed unscanned
  queued: 5,
  ringFull: 6, // answered by the error policy because the ring was full
  scanned: 7,
  clean: 8,
  infected: 9,
  scanErrors: 10, // clamd unreachable, timed out, or reported an error
  allowed: 11,
  denied: 12,
  watchdogAnswered: 13, // answered by the watchdog after the deadline
  vanished: 14, // file gone before it could be scanned or acted on
  overflow: 15, // FAN_Q_OVERFLOW
  cacheHits: 16,
  cacheMisses: 17,
  cacheEvictions: 18,
  cacheFlushes: 19,
  actionsFailed: 20,
  kernelMarks: 21, // ignore marks added for files found clean
  kernelMarksUndone: 22, // removed again: the file changed during its scan
  extraScans: 23, // files queued because they landed in the tree (extra scanning, new folders)
  dirsAdded: 24, // directories that appeared and were marked
  dirsRemoved: 25, // directories that left and were unmarked
  extraScansDeferred: 26, // background scans that found no room (permission events first): re-walked later
} as const;
export type CounterName = keyof typeof Counter;
const COUNTERS = 32;

export interface RingBuffers {
  sab: SharedArrayBuffer;
  capacity: number;
}

export class EventRing {
  readonly capacity: number;
  private readonly mask: number;
  private readonly header: Int32Array;
  private readonly slots: Int32Array;
  private readonly queue: Int32Array; // slot numbers in arrival order, indexed by position & mask
  private readonly freeStack: Int32Array;
  private readonly enqueuedAt: Float64Array;
  private readonly counters: BigInt64Array;

  /** Creates the shared memory; pass `buffers` to each Worker and rebuild with `EventRing.attach`. */
  static create(capacity: number): EventRing {
    if (capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`ring capacity ${capacity} is not a power of two`);
    const bytes = HEADER_WORDS * 4 + capacity * SLOT_WORDS * 4 + capacity * 4 * 2 + capacity * 8 + COUNTERS * 8 + 8;
    const ring = new EventRing({ sab: new SharedArrayBuffer(bytes), capacity });
    for (let i = 0; i < capacity; i++) ring.freeStack[i] = capacity - 1 - i;
    Atomics.store(ring.header, H_FREE_TOP, capacity);
    return ring;
  }

  static attach(buffers: RingBuffers): EventRing {
    return new EventRing(buffers);
  }

  private constructor(readonly buffers: RingBuffers) {
    const { sab, capacity } = buffers;
    this.capacity = capacity;
    this.mask = capacity - 1;
    let off = 0;
    this.header = new Int32Array(sab, off, HEADER_WORDS);
    off += HEADER_WORDS * 4;
    this.slots = new Int32Array(sab, off, capacity * SLOT_WORDS);
    off += capacity * SLOT_WORDS * 4;
    this.queue = new Int32Array(sab, off, capacity);
    off += capacity * 4;
    this.freeStack = new Int32Array(sab, off, capacity);
    off += capacity * 4;
    off = (off + 7) & ~7; // Float64Array and BigInt64Array need 8-byte alignment
    this.enqueuedAt = new Float64Array(sab, off, capacity);
    off += capacity * 8;
    this.counters = new BigInt64Array(sab, off, COUNTERS);
  }

  // ---- producer side -------------------------------------------------------------------------

  /**
   * Queues one event. Returns false when the ring is full (every slot holds an event not yet finished);
   * the caller then answers the event itself by the overload policy. Background work (`flags` without
   * PERM) is refused once it would take more than its share of the slots.
   */
  push(fd: number, pid: number, flags: number, now: number): boolean {
    const h = this.header;
    const reserve = flags & SlotFlag.PERM ? 0 : Math.ceil(this.capacity * (1 - BACKGROUND_SHARE));
    this.lock();
    try {
      const top = h[H_FREE_TOP]!;
      if (top <= reserve) return false;
      const slot = this.freeStack[top - 1]!;
      h[H_FREE_TOP] = top - 1;
      const base = slot * SLOT_WORDS;
      this.slots[base + F_FD] = fd;
      this.slots[base + F_PID] = pid;
      this.slots[base + F_FLAGS] = flags;
      this.enqueuedAt[slot] = now;
      Atomics.add(this.slots, base + F_GEN, 1);
      Atomics.store(this.slots, base + F_STATE, SlotState.QUEUED);
      const tail = Atomics.load(h, H_TAIL);
      Atomics.store(this.queue, tail & this.mask, slot);
      Atomics.add(h, H_TAIL, 1);
    } finally {
      this.unlock();
    }
    Atomics.notify(h, H_TAIL, 1);
    return true;
  }

  // The lock guards the free stack and the queue tail: held for a handful of stores by the producer and by
  // a scanner putting its slot back.
  private lock(): void {
    while (Atomics.compareExchange(this.header, H_LOCK, 0, 1) !== 0) {
      /* spin: the holder is never blocked inside */
    }
  }
  private unlock(): void {
    Atomics.store(this.header, H_LOCK, 0);
  }

  // ---- consumer side -------------------------------------------------------------------------

  /**
   * Takes the next queued slot, waiting up to `timeoutMs`. Returns the slot index, -1 on timeout, -2 when
   * stopping. The caller owns the slot afterwards (see claim/finish).
   */
  take(timeoutMs: number): number {
    const h = this.header;
    for (;;) {
      if (Atomics.load(h, H_STOP) !== 0) return -2;
      const head = Atomics.load(h, H_HEAD);
      const tail = Atomics.load(h, H_TAIL);
      if (head === tail) {
        if (Atomics.wait(h, H_TAIL, tail, timeoutMs) === "timed-out") return -1;
        continue;
      }
      // The queue entry at `head` was stored before the tail moved past it.
      if (Atomics.compareExchange(h, H_HEAD, head, head + 1) === head) return Atomics.load(this.queue, head & this.mask);
    }
  }

  fd(slot: number): number {
    return this.slots[slot * SLOT_WORDS + F_FD]!;
  }
  pid(slot: number): number {
    return this.slots[slot * SLOT_WORDS + F_PID]!;
  }
  flags(slot: number): number {
    return this.slots[slot * SLOT_WORDS + F_FLAGS]!;
  }
  enqueued(slot: number): number {
    return this.enqueuedAt[slot]!;
  }
  state(slot: number): number {
    return Atomics.load(this.slots, slot * SLOT_WORDS + F_STATE);
  }
  /** Bumped each time the slot takes a new event. */
  generation(slot: number): number {
    return Atomics.load(this.slots, slot * SLOT_WORDS + F_GEN);
  }

  /** Scanner: QUEUED → SCANNING. False when the watchdog answered it while it waited in the ring. */
  startScan(slot: number): boolean {
    return this.transition(slot, SlotState.QUEUED, SlotState.SCANNING);
  }

  /**
   * Claims the right to answer a slot that is `from` (QUEUED or SCANNING). On true, the caller writes the
   * response and then calls `answered(slot)`.
   */
  claimAnswer(slot: number, from: number): boolean {
    return this.transition(slot, from, SlotState.ANSWERING);
  }

  // compareExchange that waits out another thread's short ANSWERING hold (which may end in `unclaim`).
  private transition(slot: number, from: number, to: number): boolean {
    const i = slot * SLOT_WORDS + F_STATE;
    for (;;) {
      const prev = Atomics.compareExchange(this.slots, i, from, to);
      if (prev === from) return true;
      if (prev !== SlotState.ANSWERING) return false;
      Atomics.wait(this.slots, i, SlotState.ANSWERING, 50);
    }
  }

  /** Undoes a claim that turned out not to apply (the slot was reused meanwhile). */
  unclaim(slot: number, to: number): void {
    const i = slot * SLOT_WORDS + F_STATE;
    Atomics.compareExchange(this.slots, i, SlotState.ANSWERING, to);
    Atomics.notify(this.slots, i);
  }

  answered(slot: number): void {
    const i = slot * SLOT_WORDS + F_STATE;
    Atomics.store(this.slots, i, SlotState.ANSWERED);
    Atomics.notify(this.slots, i);
  }

  /**
   * The owner is done with the slot: waits while someone else is still writing its response, closes the
   * event fd (exactly once, here) and puts the slot back on the free stack.
   */
  release(slot: number, closeFd: (fd: number) => void): void {
    const i = slot * SLOT_WORDS + F_STATE;
    // CLOSING first, by compareExchange: from then on the watchdog cannot claim the slot.
    for (;;) {
      const st = Atomics.load(this.slots, i);
      if (st === SlotState.ANSWERING) {
        Atomics.wait(this.slots, i, SlotState.ANSWERING, 50);
        continue;
      }
      if (Atomics.compareExchange(this.slots, i, st, SlotState.CLOSING) === st) break;
    }
    closeFd(this.slots[slot * SLOT_WORDS + F_FD]!);
    Atomics.store(this.slots, i, SlotState.FREE);
    this.lock();
    try {
      const top = this.header[H_FREE_TOP]!;
      this.freeStack[top] = slot;
      this.header[H_FREE_TOP] = top + 1;
    } finally {
      this.unlock();
    }
  }

  // ---- shared control words ------------------------------------------------------------------

  stop(): void {
    Atomics.store(this.header, H_STOP, 1);
    Atomics.notify(this.header, H_TAIL);
  }
  stopping(): boolean {
    return Atomics.load(this.header, H_STOP) !== 0;
  }
  /** Number of events waiting in the ring (not yet taken). */
  depth(): number {
    return (Atomics.load(this.header, H_TAIL) - Atomics.load(this.header, H_HEAD)) | 0;
  }
  bumpLogGeneration(): void {
    Atomics.add(this.header, H_LOG_GEN, 1);
  }
  logGeneration(): number {
    return Atomics.load(this.header, H_LOG_GEN);
  }
  bumpFlushGeneration(): void {
    Atomics.add(this.header, H_FLUSH_GEN, 1);
  }
  flushGeneration(): number {
    return Atomics.load(this.header, H_FLUSH_GEN);
  }
  /** While set, scanners add nothing to the verdict caches (a signature reload may be under way). */
  setCachingSuspended(on: boolean): void {
    Atomics.store(this.header, H_NO_CACHE, on ? 1 : 0);
  }
  cachingSuspended(): boolean {
    return Atomics.load(this.header, H_NO_CACHE) !== 0;
  }
  /** While set, the reader allows at once events outside the include paths (see kernel-cache.ts). */
  setPathFilter(on: boolean): void {
    Atomics.store(this.header, H_PATH_FILTER, on ? 1 : 0);
  }
  pathFilter(): boolean {
    return Atomics.load(this.header, H_PATH_FILTER) !== 0;
  }
  /** Slots holding an event not finished yet. */
  inUse(): number {
    return this.capacity - Atomics.load(this.header, H_FREE_TOP);
  }
  scansDone(): number {
    return Atomics.load(this.header, H_SCANS_DONE);
  }

  scanEntered(): void {
    Atomics.add(this.header, H_ACTIVE, 1);
  }
  scanLeft(): void {
    Atomics.sub(this.header, H_ACTIVE, 1);
    Atomics.add(this.header, H_SCANS_DONE, 1);
  }
  activeScans(): number {
    return Atomics.load(this.header, H_ACTIVE);
  }

  count(name: CounterName, by = 1): void {
    Atomics.add(this.counters, Counter[name], BigInt(by));
  }
  counter(name: CounterName): number {
    return Number(Atomics.load(this.counters, Counter[name]));
  }
  snapshot(): Record<CounterName, number> {
    const out = {} as Record<CounterName, number>;
    for (const name of Object.keys(Counter) as CounterName[]) out[name] = this.counter(name);
    return out;
  }
}
