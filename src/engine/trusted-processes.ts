// The clamd processes whose opens onacc never scans (clamd must never wait on onacc), shared by every
// thread. A PID alone is no identity: once clamd stops, any process may get its PID next. Each entry is a
// PID plus its start time (/proc/PID/stat), checked again on every match, so a reused PID never matches;
// PID 0 ("not visible in onacc's PID namespace") is no identity at all and is never stored.
import type { ProcReader } from "../../ffi/procfs.ts";
import { readProcText } from "../../ffi/procfs.ts";

const MAX = 16;
// Layout: Int32 [seq, count, pid × MAX], then Float64 start time × MAX (8-byte aligned).
const I_SEQ = 0;
const I_COUNT = 1;
const I_PIDS = 2;
const INT_WORDS = I_PIDS + MAX;

export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot when it started (field 22 of /proc/PID/stat). */
  startTime: number;
}

/** The identity of a running process as the main thread sees it, or undefined (gone, or pid ≤ 0). */
export function identify(pid: number | undefined): ProcessIdentity | undefined {
  if (pid === undefined || pid <= 0) return undefined;
  const stat = readProcText(pid, "stat");
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]);
  return Number.isFinite(startTime) ? { pid, startTime } : undefined;
}

export class TrustedProcesses {
  private readonly ints: Int32Array;
  private readonly starts: Float64Array;

  static create(): TrustedProcesses {
    return new TrustedProcesses(new SharedArrayBuffer(INT_WORDS * 4 + MAX * 8));
  }
  static attach(sab: SharedArrayBuffer): TrustedProcesses {
    return new TrustedProcesses(sab);
  }
  private constructor(readonly sab: SharedArrayBuffer) {
    this.ints = new Int32Array(sab, 0, INT_WORDS);
    this.starts = new Float64Array(sab, INT_WORDS * 4, MAX);
  }

  /** Replaces the list (main thread). Readers never see a half-written list: a sequence word guards it. */
  set(list: readonly ProcessIdentity[]): void {
    const valid = list.filter((p) => p.pid > 0).slice(0, MAX);
    Atomics.add(this.ints, I_SEQ, 1); // odd: being written
    for (let i = 0; i < valid.length; i++) {
      Atomics.store(this.ints, I_PIDS + i, valid[i]!.pid);
      this.starts[i] = valid[i]!.startTime;
    }
    Atomics.store(this.ints, I_COUNT, valid.length);
    Atomics.add(this.ints, I_SEQ, 1); // even again
  }

  /**
   * True only when `pid` is a listed process that still runs: the process now holding that PID started
   * when the listed one did. Costs one /proc read, and only for a PID on the list.
   */
  matches(pid: number, proc: ProcReader): boolean {
    if (pid <= 0) return false;
    for (;;) {
      const seq = Atomics.load(this.ints, I_SEQ);
      if (seq & 1) continue; // the main thread is writing: a few stores, never blocked
      const n = Atomics.load(this.ints, I_COUNT);
      let start = -1;
      for (let i = 0; i < n; i++) {
        if (Atomics.load(this.ints, I_PIDS + i) === pid) {
          start = this.starts[i]!;
          break;
        }
      }
      if (Atomics.load(this.ints, I_SEQ) !== seq) continue;
      return start >= 0 && proc.startTime(pid) === start;
    }
  }
}
