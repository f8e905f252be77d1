// The control block every thread of the engine shares: one SharedArrayBuffer of Int32 words for what the
// main thread asks of the Workers (stop, reopen logs, flush the caches) and what they report back
// (scans in progress, scans done, whether the scanner sleeps). Counters live in counters.ts.

const W_STOP = 0; // 1 at shutdown
const W_LOG_GEN = 1; // bumped on SIGHUP: every thread reopens its log file
const W_FLUSH_GEN = 2; // bumped when the verdict caches must be flushed
const W_NO_CACHE = 3; // 1 while nothing may be cached (a signature reload may be under way)
const W_PATH_FILTER = 4; // 1 while the flush's temporary filesystem marks are up: the reader filters by path
const W_ACTIVE = 5; // scans in progress (the watchdog asks: are they progressing?)
const W_SCANS_DONE = 6; // scans finished: the service watchdog checks that it moves
const W_KERNEL_FLUSH_ASKED = 7; // bumped by the main thread: the reader flushes the kernel marks
const W_KERNEL_FLUSH_DONE = 8; // the reader's answer: the last request it finished
const W_SCANNER_ASLEEP = 9; // 1 while the scanner waits in poll(): the reader then wakes it
const W_RETIRE = 10; // 1: the reader removes every mark and reads what is left (a reload replaces this engine)
const W_RETIRED = 11; // 1: no mark is left and every event the kernel had is in the ring
const WORDS = 16;

export class Control {
  private readonly w: Int32Array;

  static create(): Control {
    return new Control(new SharedArrayBuffer(WORDS * 4));
  }
  static attach(sab: SharedArrayBuffer): Control {
    return new Control(sab);
  }
  private constructor(readonly sab: SharedArrayBuffer) {
    this.w = new Int32Array(sab);
  }

  stop(): void {
    Atomics.store(this.w, W_STOP, 1);
  }
  stopping(): boolean {
    return Atomics.load(this.w, W_STOP) !== 0;
  }

  bumpLogGeneration(): void {
    Atomics.add(this.w, W_LOG_GEN, 1);
  }
  logGeneration(): number {
    return Atomics.load(this.w, W_LOG_GEN);
  }

  bumpFlushGeneration(): void {
    Atomics.add(this.w, W_FLUSH_GEN, 1);
  }
  flushGeneration(): number {
    return Atomics.load(this.w, W_FLUSH_GEN);
  }

  /** While set, scanners add nothing to the verdict caches (a signature reload may be under way). */
  setCachingSuspended(on: boolean): void {
    Atomics.store(this.w, W_NO_CACHE, on ? 1 : 0);
  }
  cachingSuspended(): boolean {
    return Atomics.load(this.w, W_NO_CACHE) !== 0;
  }

  /** While set, the reader allows at once events outside the include paths (see kernel-cache.ts). */
  setPathFilter(on: boolean): void {
    Atomics.store(this.w, W_PATH_FILTER, on ? 1 : 0);
  }
  pathFilter(): boolean {
    return Atomics.load(this.w, W_PATH_FILTER) !== 0;
  }

  scanEntered(): void {
    Atomics.add(this.w, W_ACTIVE, 1);
  }
  scanLeft(): void {
    Atomics.sub(this.w, W_ACTIVE, 1);
    Atomics.add(this.w, W_SCANS_DONE, 1);
  }
  activeScans(): number {
    return Atomics.load(this.w, W_ACTIVE);
  }
  scansDone(): number {
    return Atomics.load(this.w, W_SCANS_DONE);
  }

  /** Main thread: asks the reader to flush the kernel's ignore marks; returns the request number. */
  askKernelFlush(): number {
    return Atomics.add(this.w, W_KERNEL_FLUSH_ASKED, 1) + 1;
  }
  kernelFlushAsked(): number {
    return Atomics.load(this.w, W_KERNEL_FLUSH_ASKED);
  }
  /** Reader: every request up to `request` is done. */
  kernelFlushDone(request: number): void {
    Atomics.store(this.w, W_KERNEL_FLUSH_DONE, request);
  }
  kernelFlushedUpTo(): number {
    return Atomics.load(this.w, W_KERNEL_FLUSH_DONE);
  }

  /** Main thread: this engine is being replaced; the reader takes its marks off and empties the kernel queue. */
  askRetire(): void {
    Atomics.store(this.w, W_RETIRE, 1);
  }
  retireAsked(): boolean {
    return Atomics.load(this.w, W_RETIRE) !== 0;
  }
  setRetired(): void {
    Atomics.store(this.w, W_RETIRED, 1);
  }
  retired(): boolean {
    return Atomics.load(this.w, W_RETIRED) !== 0;
  }

  /** Scanner: about to sleep in poll(), or awake again. It looks at its queues once more after setting it. */
  setScannerAsleep(on: boolean): void {
    Atomics.store(this.w, W_SCANNER_ASLEEP, on ? 1 : 0);
  }
  /** Reader: true when the scanner was asleep (it now counts as woken: one wake-up per sleep). */
  takeScannerAsleep(): boolean {
    return Atomics.exchange(this.w, W_SCANNER_ASLEEP, 0) === 1;
  }
}
