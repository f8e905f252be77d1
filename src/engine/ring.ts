// The event ring: a bounded queue in a SharedArrayBuffer between the reader Worker (producer) and the
// scanner Worker (consumer), plus each pending event's state so the watchdog can answer late ones.
//
// Events live in slots; free slots are kept on a stack, and the queue holds slot numbers in arrival
// order. So a slow scan holds only its own slot: the ring is full only when every slot is in use.
//
// Slot state machine (one Int32 per slot, changed only with compareExchange):
//   FREE → QUEUED (producer) → SCANNING (the scanner took it) → ANSWERING → ANSWERED → CLOSING → FREE
//   QUEUED/SCANNING → ANSWERING → ANSWERED (the watchdog or shutdown answered it first)
// Whoever moves a slot to ANSWERING writes the one fanotify response; the slot's owner (the scanner that
// took it) alone closes the fd, after moving the slot to CLOSING (never while a response is being
// written), so an fd number is never answered after it was closed and reused. Each slot also carries a
// generation, bumped on every reuse, which lets the watchdog tell a late event from a new one in the same
// slot. Only events of the fanotify group travel here; background scans have their own queue
// (background.ts), so no amount of background work can take a slot from an open.

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

// Header words (Int32).
const H_HEAD = 0; // next queue position to take
const H_TAIL = 1; // next queue position to fill
const H_LOCK = 2; // guards the free stack and the tail
const H_FREE_TOP = 3; // slots on the free stack
const HEADER_WORDS = 8;

// Per-slot Int32 fields.
const F_STATE = 0;
const F_FD = 1;
const F_PID = 2;
const F_FLAGS = 3;
const F_GEN = 4;
const SLOT_WORDS = 5;

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

  /** Creates the shared memory; pass `buffers` to each Worker and rebuild with `EventRing.attach`. */
  static create(capacity: number): EventRing {
    if (capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`ring capacity ${capacity} is not a power of two`);
    const bytes = HEADER_WORDS * 4 + capacity * SLOT_WORDS * 4 + capacity * 4 * 2 + capacity * 8 + 8;
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
    off = (off + 7) & ~7; // Float64Array needs 8-byte alignment
    this.enqueuedAt = new Float64Array(sab, off, capacity);
  }

  // ---- producer side -------------------------------------------------------------------------

  /**
   * Queues one event. Returns false when the ring is full (every slot holds an event not yet finished);
   * the caller then answers the event itself by the overload policy.
   */
  push(fd: number, pid: number, flags: number, now: number): boolean {
    const h = this.header;
    this.lock();
    try {
      const top = h[H_FREE_TOP]!;
      if (top === 0) return false;
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
    return true;
  }

  // The lock guards the free stack and the queue tail: held for a handful of stores by the producer and by
  // the scanner putting its slot back.
  private lock(): void {
    while (Atomics.compareExchange(this.header, H_LOCK, 0, 1) !== 0) {
      /* spin: the holder is never blocked inside */
    }
  }
  private unlock(): void {
    Atomics.store(this.header, H_LOCK, 0);
  }

  // ---- consumer side -------------------------------------------------------------------------

  /** Takes the next queued slot without waiting: the slot index, or -1 when none is queued. */
  tryTake(): number {
    const h = this.header;
    for (;;) {
      const head = Atomics.load(h, H_HEAD);
      if (head === Atomics.load(h, H_TAIL)) return -1;
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

  /** Number of events waiting in the ring (not yet taken). */
  depth(): number {
    return (Atomics.load(this.header, H_TAIL) - Atomics.load(this.header, H_HEAD)) | 0;
  }
  /** Slots holding an event not finished yet. */
  inUse(): number {
    return this.capacity - Atomics.load(this.header, H_FREE_TOP);
  }
}
