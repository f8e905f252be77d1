// The engine's counters, shared by every thread through one SharedArrayBuffer (BigInt64 words, so they
// never wrap). `onacc status` and the metrics endpoint read them; names are the keys.

export const Counter = {
  events: 0, // permission/notification events read
  ownPid: 1, // from onacc itself: allowed at once
  excluded: 2, // excluded pid/uid/path/executable/pattern: allowed at once
  notRegular: 3, // FIFO, device, socket, directory: allowed without a scan
  tooLarge: 4, // over OnAccessMaxFileSize: allowed unscanned
  queued: 5,
  ringFull: 6, // answered by the error policy because the event queue was full
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
  extraScans: 23, // background scans of files that landed in the tree (extra scanning)
  dirsAdded: 24, // directories that appeared and were marked
  dirsRemoved: 25, // directories that left and were unmarked
  extraScansDeferred: 26, // background scans that found the queue full: found again by a re-walk
  emptyFiles: 27, // empty files: nothing to scan, allowed at once
} as const;
export type CounterName = keyof typeof Counter;
const WORDS = 32;
/** The common increment, made once: BigInt(1) per count would be garbage on every event. */
const ONE = 1n;

export class Counters {
  private readonly c: BigInt64Array;
  static create(): Counters {
    return new Counters(new SharedArrayBuffer(WORDS * 8));
  }
  static attach(sab: SharedArrayBuffer): Counters {
    return new Counters(sab);
  }
  private constructor(readonly sab: SharedArrayBuffer) {
    this.c = new BigInt64Array(sab);
  }
  count(name: CounterName, by = 1): void {
    Atomics.add(this.c, Counter[name], by === 1 ? ONE : BigInt(by));
  }
  get(name: CounterName): number {
    return Number(Atomics.load(this.c, Counter[name]));
  }
  snapshot(): Record<CounterName, number> {
    const out = {} as Record<CounterName, number>;
    for (const name of Object.keys(Counter) as CounterName[]) out[name] = this.get(name);
    return out;
  }
}
