// ExcludeExe: does an opener run one of the excluded executables? Decided by the identity (device, inode)
// of the file /proc/PID/exe leads to, never by a name a process picks for itself (comm, argv[0]): a copy
// of the binary is another inode and is not excluded; a hard link is the same inode and is.
//
// The main thread resolves the configured paths (at start, on reload, and every few seconds: a package
// upgrade replaces a binary with a new inode) into a shared table; the reader thread matches openers
// against it on every event, reading /proc into reusable buffers.
import { statSync } from "node:fs";

/** What the matcher reads about processes: ffi/procfs-process.ts ProcessFacts, or a fake in tests. */
export interface ProcessSource {
  readonly exe: { dev: number; ino: number };
  ppid: number;
  startTime: number;
  open(pid: number): number;
  close(handle: number): void;
  readExe(handle: number): boolean;
  readExeOf(pid: number): boolean;
  readStat(handle: number): boolean;
}

export interface ExeIdentity {
  dev: number;
  ino: number;
}

/** A change the main thread noticed while resolving, for the log. */
export interface ExeChange {
  path: string;
  /** undefined: the path cannot be resolved now (missing, not a regular file). */
  now: ExeIdentity | undefined;
  why: string;
}

// Layout: Int32 [seq], then Float64 [dev, ino] per path. NaN marks a path that resolves to nothing: it equals no number.
const I_SEQ = 0;
const HEADER_BYTES = 8;

/** The configured executables' identities, shared by the main thread (writer) and the reader (reader). */
export class ExeTable {
  private readonly seq: Int32Array;
  private readonly ids: Float64Array;
  private readonly last: (ExeIdentity | undefined)[];

  static create(paths: readonly string[]): ExeTable {
    const t = new ExeTable(new SharedArrayBuffer(HEADER_BYTES + paths.length * 16), paths);
    t.ids.fill(Number.NaN);
    return t;
  }
  static attach(sab: SharedArrayBuffer): ExeTable {
    return new ExeTable(sab, []);
  }
  private constructor(
    readonly sab: SharedArrayBuffer,
    readonly paths: readonly string[],
  ) {
    this.seq = new Int32Array(sab, 0, 1);
    this.ids = new Float64Array(sab, HEADER_BYTES, (sab.byteLength - HEADER_BYTES) / 8);
    this.last = paths.map(() => undefined);
  }

  get size(): number {
    return this.ids.length / 2;
  }

  /**
   * Main thread: stats every configured path (following symlinks: /proc/PID/exe names the real file) and
   * publishes what changed. The old identity of a replaced binary is dropped at once: processes still
   * running the old file are scanned again, and the freed inode number cannot exclude whatever file gets
   * it next. Returns the changes (the first call reports every path).
   */
  resolve(stat: (path: string) => ExeIdentity | undefined = statExecutable): ExeChange[] {
    const changes: ExeChange[] = [];
    const next = this.paths.map((p, i) => {
      const id = stat(p);
      const before = this.last[i];
      const first = this.seqValue() === 0;
      if (first || id?.dev !== before?.dev || id?.ino !== before?.ino) {
        const why = id === undefined ? "not found, or not a regular file: nothing is excluded for it until it appears" : first ? "resolved" : before === undefined ? "appeared" : "replaced (a new inode)";
        changes.push({ path: p, now: id, why });
      }
      return id;
    });
    if (changes.length === 0) return changes;
    // Odd while writing: the reader retries, so it never mixes old and new halves of an entry.
    Atomics.add(this.seq, I_SEQ, 1);
    next.forEach((id, i) => {
      this.ids[2 * i] = id ? id.dev : Number.NaN;
      this.ids[2 * i + 1] = id ? id.ino : Number.NaN;
      this.last[i] = id;
    });
    Atomics.add(this.seq, I_SEQ, 1);
    return changes;
  }

  /** Changes whenever the table does: caches of answers drawn from it must be dropped then. */
  generation(): number {
    return this.seqValue();
  }

  /** The index of the path whose file is (dev, ino), or -1. */
  find(dev: number, ino: number): number {
    for (;;) {
      const seq = Atomics.load(this.seq, I_SEQ);
      if (seq & 1) continue; // a few stores on the main thread; never blocked
      let hit = -1;
      for (let i = 0; i < this.ids.length; i += 2) {
        if (this.ids[i] === dev && this.ids[i + 1] === ino) {
          hit = i / 2;
          break;
        }
      }
      if (Atomics.load(this.seq, I_SEQ) === seq) return hit;
    }
  }

  private seqValue(): number {
    return Atomics.load(this.seq, I_SEQ);
  }
}

function statExecutable(path: string): ExeIdentity | undefined {
  try {
    const st = statSync(path);
    return st.isFile() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}

/** Ancestors looked at above the opener. Deeper trees are not excluded (the safe side). */
export const MAX_ANCESTORS = 32;
const CACHE_SIZE = 256; // a power of two
/** A cached answer about ancestors is trusted this long (a parent may exec another program meanwhile). */
export const CACHE_TTL_MS = 1000;

/**
 * The reader's matcher. Without `children`: the opener's own executable only (one O_PATH open and one
 * statx per event). With `children`: also its ancestors', walking the parent chain.
 *
 * Race safety: each process is read through one /proc/PID handle, so its executable and start time belong
 * to the same process. A parent must have started no later than its child: a PID in the chain that was
 * reused after the parent exited (the child then has another parent) belongs to a process started later,
 * and ends the walk. PID 0 (an opener onacc cannot see) and PID 1 (everyone's ancestor) never count.
 *
 * With `children`, answers are cached per process: keyed on PID, start time and the opener's executable,
 * so a later process on the same PID, or the same process after an execve, never gets an old answer;
 * kept CACHE_TTL_MS at most, and dropped when the table changes.
 */
export class ExeMatcher {
  private readonly cPid = new Int32Array(CACHE_SIZE);
  private readonly cStart = new Float64Array(CACHE_SIZE);
  private readonly cDev = new Float64Array(CACHE_SIZE);
  private readonly cIno = new Float64Array(CACHE_SIZE);
  private readonly cRule = new Int32Array(CACHE_SIZE);
  private readonly cUntil = new Float64Array(CACHE_SIZE);
  private cacheGeneration = -1;

  constructor(
    private readonly table: ExeTable,
    private readonly children: boolean,
    private readonly proc: ProcessSource,
  ) {}

  /** The index of the excluded executable `pid` (or, with children, an ancestor) runs, or -1. */
  match(pid: number, nowMs: number): number {
    if (pid <= 0) return -1;
    if (!this.children) return this.proc.readExeOf(pid) ? this.table.find(this.proc.exe.dev, this.proc.exe.ino) : -1;
    const h = this.proc.open(pid);
    if (h < 0) return -1;
    let dev: number;
    let ino: number;
    let start: number;
    let ppid: number;
    try {
      if (!this.proc.readExe(h)) return -1;
      dev = this.proc.exe.dev;
      ino = this.proc.exe.ino;
      const own = this.table.find(dev, ino);
      if (own >= 0) return own;
      if (!this.proc.readStat(h)) return -1;
      start = this.proc.startTime;
      ppid = this.proc.ppid;
    } finally {
      this.proc.close(h);
    }

    const gen = this.table.generation();
    if (gen !== this.cacheGeneration) {
      this.cUntil.fill(0);
      this.cacheGeneration = gen;
    }
    const slot = pid & (CACHE_SIZE - 1);
    if (this.cPid[slot] === pid && this.cStart[slot] === start && this.cDev[slot] === dev && this.cIno[slot] === ino && this.cUntil[slot]! > nowMs) {
      return this.cRule[slot]!;
    }
    const rule = this._ancestors(ppid, start);
    this.cPid[slot] = pid;
    this.cStart[slot] = start;
    this.cDev[slot] = dev;
    this.cIno[slot] = ino;
    this.cRule[slot] = rule;
    this.cUntil[slot] = nowMs + CACHE_TTL_MS;
    return rule;
  }

  private _ancestors(ppid: number, childStart: number): number {
    for (let depth = 0; depth < MAX_ANCESTORS; depth++) {
      if (ppid <= 1) return -1;
      const h = this.proc.open(ppid);
      if (h < 0) return -1;
      let rule = -1;
      try {
        if (!this.proc.readStat(h)) return -1;
        // Started after the child: not the process that forked it, but a later one on a reused PID.
        if (this.proc.startTime > childStart) return -1;
        childStart = this.proc.startTime;
        ppid = this.proc.ppid;
        // A process without an executable (a kernel thread, a zombie) matches nothing; its parents may.
        if (this.proc.readExe(h)) rule = this.table.find(this.proc.exe.dev, this.proc.exe.ino);
      } finally {
        this.proc.close(h);
      }
      if (rule >= 0) return rule;
    }
    return -1;
  }
}
