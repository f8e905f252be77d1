// Top talkers: which executables and which directories cause the scans, how long openers waited on them
// and how many were denied, over the last few minutes, in bounded memory. Each scanner thread owns one
// region of a SharedArrayBuffer (no two writers ever touch the same bytes; the engine has one scanner
// thread, with many scans in flight); the main thread merges the regions for `onacc status --top` and the
// metrics.
//
// A region holds one bucket per minute (a ring of BUCKETS); a bucket holds, per kind, a space-saving
// table of ENTRIES keys: a key not in a full table replaces the one with the fewest scans and inherits
// that count as its error. So every key with more than total/ENTRIES scans in a bucket is in it, and a
// reported count is at most its error above the truth.
import { ProcLink } from "../../ffi/procfs-process.ts";
import { monotonicMs } from "../../ffi/libc.ts";
import { displayPath } from "../log/display-path.ts";
import type { TopTalker, TopTalkers } from "../status/types.ts";

const BUCKETS = 6;
/** Minutes shown: the current one (partly) and the four before it. The sixth bucket is being reused. */
export const WINDOW_MINUTES = 5;
const ENTRIES = 32;
const KINDS = 2; // 0: executable, 1: directory
/** Key bytes kept per entry; longer keys are told apart by length and hash, shown cut with "…". */
const KEY_BYTES = 240;
const MINUTE_MS = 60_000;

// Per-region layout. Int32 header: [seq, minute × BUCKETS]; Float64 totals: [scans, ms, denied] × BUCKETS;
// Float64 entries: [count, error, ms, denied] × ENTRIES × KINDS × BUCKETS; Int32 entries: [hash, length];
// then the key bytes.
const SLOTS = BUCKETS * KINDS * ENTRIES;
const HDR_WORDS = 1 + BUCKETS;
const HDR_BYTES = Math.ceil((HDR_WORDS * 4) / 8) * 8;
const TOTAL_F = 3;
const ENTRY_F = 4;
const OFF_TOTALS = HDR_BYTES;
const OFF_NUMS = OFF_TOTALS + BUCKETS * TOTAL_F * 8;
const OFF_META = OFF_NUMS + SLOTS * ENTRY_F * 8;
const OFF_KEYS = OFF_META + SLOTS * 2 * 4;
const REGION_BYTES = Math.ceil((OFF_KEYS + SLOTS * KEY_BYTES) / 8) * 8;

class _Region {
  readonly hdr: Int32Array;
  readonly totals: Float64Array;
  readonly nums: Float64Array;
  readonly meta: Int32Array;
  readonly keys: Uint8Array;
  constructor(buf: ArrayBufferLike, base: number) {
    this.hdr = new Int32Array(buf, base, HDR_WORDS);
    this.totals = new Float64Array(buf, base + OFF_TOTALS, BUCKETS * TOTAL_F);
    this.nums = new Float64Array(buf, base + OFF_NUMS, SLOTS * ENTRY_F);
    this.meta = new Int32Array(buf, base + OFF_META, SLOTS * 2);
    this.keys = new Uint8Array(buf, base + OFF_KEYS, SLOTS * KEY_BYTES);
  }
}

/** Main thread: one region per scanner thread. */
export function createTopTalkers(scanners: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(Math.max(1, scanners) * REGION_BYTES);
  for (let i = 0; i < scanners; i++) new _Region(sab, i * REGION_BYTES).hdr.fill(-1, 1);
  return sab;
}

function fnv1a(b: Uint8Array, start: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + len; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h | 0;
}

const enc = new TextEncoder();
const NOT_VISIBLE = enc.encode("(not visible: another PID namespace)");
const EXITED = enc.encode("(exited before the scan)");
/** A background scan (extra scanning): onacc opened the file itself. */
export const BACKGROUND = enc.encode("(onacc: extra scanning)");
const NO_PATH = enc.encode("(no path)");

/**
 * The scanner thread's recorder, for many scans in flight at once. begin() runs when a scan starts, while a
 * permission event's opener still waits (its executable can be read then): it counts the scan for its
 * executable and directory at once and keeps, per job, only where: the two entries, their keys' hashes
 * and the minute. end() adds the waiting time and the denial to those entries if they still hold the same
 * keys (a busier key may have taken an entry meanwhile: the time then counts in the totals only). Two
 * readlinks of /proc and a few dozen comparisons per scan; nothing allocated.
 */
export class TalkerRecorder {
  private readonly r: _Region;
  private readonly exeLink = new ProcLink();
  private readonly fdLink = new ProcLink();
  // Per job: [exe entry, dir entry], [exe hash, dir hash], minute, start time.
  private readonly entries: Int32Array;
  private readonly hashes: Int32Array;
  private readonly minutes: Float64Array;
  private readonly started: Float64Array;

  /**
   * `jobs`: scans in flight at most (job indexes 0..jobs-1). `clock`: CLOCK_MONOTONIC in ms, the same in
   * every thread (tests pass their own).
   */
  constructor(sab: SharedArrayBuffer, index: number, jobs: number, private readonly clock: () => number = monotonicMs) {
    this.r = new _Region(sab, index * REGION_BYTES);
    this.entries = new Int32Array(jobs * 2).fill(-1);
    this.hashes = new Int32Array(jobs * 2);
    this.minutes = new Float64Array(jobs).fill(-1);
    this.started = new Float64Array(jobs);
  }

  /** A scan starts for `job`: the opener `pid` (0: not visible; BACKGROUND: onacc's own) and the event's `fd`. */
  begin(job: number, pid: number, fd: number): void {
    const now = this.clock();
    this.started[job] = now;
    let exe: Uint8Array;
    let exeLen: number;
    if (pid === BACKGROUND_PID) {
      exe = BACKGROUND;
      exeLen = BACKGROUND.length;
    } else {
      const n = pid > 0 ? this.exeLink.exePath(pid) : -1;
      exe = n > 0 ? this.exeLink.bytes : pid > 0 ? EXITED : NOT_VISIBLE;
      exeLen = n > 0 ? n : exe.length;
    }
    let m = this.fdLink.fdPath(fd);
    const b = this.fdLink.bytes;
    while (m > 0 && b[m - 1] !== 0x2f) m--; // the directory: up to the last "/"
    if (m > 1) m--; // without that "/", except for "/" itself
    const dir = m > 0 ? b : NO_PATH;
    const dirLen = m > 0 ? m : NO_PATH.length;

    const minute = Math.floor(now / MINUTE_MS);
    const bucket = minute % BUCKETS;
    const r = this.r;
    Atomics.add(r.hdr, 0, 1); // odd: the main thread retries its copy
    if (r.hdr[1 + bucket] !== minute) {
      r.hdr[1 + bucket] = minute;
      r.totals.fill(0, bucket * TOTAL_F, (bucket + 1) * TOTAL_F);
      const first = bucket * KINDS * ENTRIES;
      r.nums.fill(0, first * ENTRY_F, (first + KINDS * ENTRIES) * ENTRY_F);
    }
    r.totals[bucket * TOTAL_F]! += 1;
    this.entries[2 * job] = this._count((bucket * KINDS + 0) * ENTRIES, exe, exeLen);
    this.hashes[2 * job] = _lastHash;
    this.entries[2 * job + 1] = this._count((bucket * KINDS + 1) * ENTRIES, dir, dirLen);
    this.hashes[2 * job + 1] = _lastHash;
    this.minutes[job] = minute;
    Atomics.add(r.hdr, 0, 1);
  }

  /** The scan of `job` is answered (`denied`: its open was refused). */
  end(job: number, denied: boolean): void {
    const minute = this.minutes[job]!;
    if (minute < 0) return;
    this.minutes[job] = -1;
    const ms = Math.max(0, this.clock() - this.started[job]!);
    const bucket = minute % BUCKETS;
    const r = this.r;
    if (r.hdr[1 + bucket] !== minute) return; // the bucket went round meanwhile (a scan of over five minutes)
    Atomics.add(r.hdr, 0, 1);
    r.totals[bucket * TOTAL_F + 1]! += ms;
    if (denied) r.totals[bucket * TOTAL_F + 2]! += 1;
    for (let k = 0; k < 2; k++) {
      const e = this.entries[2 * job + k]!;
      if (e < 0 || r.meta[e * 2] !== this.hashes[2 * job + k] || r.nums[e * ENTRY_F] === 0) continue;
      r.nums[e * ENTRY_F + 2]! += ms;
      if (denied) r.nums[e * ENTRY_F + 3]! += 1;
    }
    Atomics.add(r.hdr, 0, 1);
  }

  /** Counts one scan for the key in the table starting at `first`; returns its entry (hash in _lastHash). */
  private _count(first: number, key: Uint8Array, len: number): number {
    const r = this.r;
    const hash = fnv1a(key, 0, len);
    _lastHash = hash;
    const stored = Math.min(len, KEY_BYTES);
    let min = -1;
    let minCount = Infinity;
    for (let e = first; e < first + ENTRIES; e++) {
      const count = r.nums[e * ENTRY_F]!;
      if (count === 0) {
        if (min < 0 || minCount > 0) {
          min = e;
          minCount = 0;
        }
        continue;
      }
      if (r.meta[e * 2] === hash && r.meta[e * 2 + 1] === len && _sameKey(r.keys, e * KEY_BYTES, key, stored)) {
        r.nums[e * ENTRY_F] = count + 1;
        return e;
      }
      if (count < minCount) {
        min = e;
        minCount = count;
      }
    }
    // Not there: take an empty entry, or the one with the fewest scans (space-saving).
    const n = min * ENTRY_F;
    r.nums[n] = minCount + 1;
    r.nums[n + 1] = minCount;
    r.nums[n + 2] = 0;
    r.nums[n + 3] = 0;
    r.meta[min * 2] = hash;
    r.meta[min * 2 + 1] = len;
    for (let i = 0; i < stored; i++) r.keys[min * KEY_BYTES + i] = key[i]!;
    return min;
  }
}

/** The `pid` begin() takes for a background scan (no opener: onacc opened the file itself). */
export const BACKGROUND_PID = -1;
let _lastHash = 0;

function _sameKey(keys: Uint8Array, at: number, key: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (keys[at + i] !== key[i]) return false;
  return true;
}

interface _Sum {
  name: string;
  scans: number;
  error: number;
  scanMs: number;
  denied: number;
}

/**
 * Main thread: the last WINDOW_MINUTES of every region of every buffer (an engine replaced by a reload
 * leaves its buffer to be read until its minutes are past), merged, the `limit` biggest of each kind by
 * scans. Each region is copied under its sequence word, so a scanner updating it meanwhile is never read
 * half-way (after a few retries the last copy is taken: the numbers are estimates anyway).
 */
export function readTopTalkers(buffers: readonly SharedArrayBuffer[], limit = 10, nowMs = monotonicMs()): TopTalkers {
  const current = Math.floor(nowMs / MINUTE_MS);
  const kinds = [new Map<string, _Sum>(), new Map<string, _Sum>()];
  const totals = { scans: 0, scanMs: 0, denied: 0 };
  const copy = new ArrayBuffer(REGION_BYTES);
  const regions: { live: Int32Array; base: number }[] = [];
  for (const sab of buffers) for (let base = 0; base < sab.byteLength; base += REGION_BYTES) regions.push({ live: new Int32Array(sab), base });
  for (const { live, base } of regions) {
    const seqIndex = base / 4;
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = Atomics.load(live, seqIndex);
      new Uint8Array(copy).set(new Uint8Array(live.buffer, base, REGION_BYTES));
      if (!(before & 1) && Atomics.load(live, seqIndex) === before) break;
    }
    const r = new _Region(copy, 0);
    for (let b = 0; b < BUCKETS; b++) {
      const minute = r.hdr[1 + b]!;
      if (minute < 0 || minute > current || minute <= current - WINDOW_MINUTES) continue;
      totals.scans += r.totals[b * TOTAL_F]!;
      totals.scanMs += r.totals[b * TOTAL_F + 1]!;
      totals.denied += r.totals[b * TOTAL_F + 2]!;
      for (let k = 0; k < KINDS; k++) {
        const first = (b * KINDS + k) * ENTRIES;
        for (let e = first; e < first + ENTRIES; e++) {
          const count = r.nums[e * ENTRY_F]!;
          if (count === 0) continue;
          const len = r.meta[e * 2 + 1]!;
          const bytes = r.keys.subarray(e * KEY_BYTES, e * KEY_BYTES + Math.min(len, KEY_BYTES));
          const name = displayPath(bytes) + (len > KEY_BYTES ? "…" : "");
          // Long keys cut to the same prefix are different keys: the hash keeps them apart.
          const id = len > KEY_BYTES ? `${name}\0${r.meta[e * 2]}` : name;
          const sum = kinds[k]!.get(id) ?? { name, scans: 0, error: 0, scanMs: 0, denied: 0 };
          sum.scans += count;
          sum.error += r.nums[e * ENTRY_F + 1]!;
          sum.scanMs += r.nums[e * ENTRY_F + 2]!;
          sum.denied += r.nums[e * ENTRY_F + 3]!;
          kinds[k]!.set(id, sum);
        }
      }
    }
  }
  const top = (m: Map<string, _Sum>): TopTalker[] =>
    [...m.values()]
      .sort((a, b) => b.scans - a.scans || b.scanMs - a.scanMs || (a.name < b.name ? -1 : 1))
      .slice(0, limit)
      .map((x) => ({ name: x.name, scans: x.scans, scanMs: round(x.scanMs), denied: x.denied, approximate: x.error > 0 }));
  return {
    windowMinutes: WINDOW_MINUTES,
    scans: totals.scans,
    scanMs: round(totals.scanMs),
    denied: totals.denied,
    executables: top(kinds[0]!),
    directories: top(kinds[1]!),
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
