// /proc facts for checks that run on every fanotify event, read into reusable buffers (no allocation per
// call): the identity of the file a process executes (through the /proc/PID/exe magic link), a process's
// parent and start time read through one /proc/PID handle, and the targets of /proc links as bytes.
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY } from "./fcntl.ts";
import { AT_STATX_DONT_SYNC, Fstat, emptyStat, type FdStat } from "./fs.ts";
import { libc, structBuffer } from "./libc.ts";

// An O_PATH open raises no fanotify event and reads nothing: safe on the thread that answers events.
const PATH_MAX = 4096;
/** /proc/PID/stat up to field 22 fits: the command name is at most 64 bytes, each number at most 20. */
const STAT_BYTES = 1024;

const ascii = (s: string) => {
  const out = structBuffer(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out; // NUL-terminated
};
const PROC = ascii("/proc/");
const EXE = ascii("exe");
const STAT = ascii("stat");
const SELF_FD = ascii("/proc/self/fd/");

/** Writes "<prefix><n><suffix>\0" into `buf` (prefix and suffix NUL-terminated). */
function numberedPath(buf: Uint8Array, prefix: Uint8Array, n: number, suffix?: Uint8Array): void {
  let i = 0;
  for (; prefix[i] !== 0; i++) buf[i] = prefix[i]!;
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  for (let d = digits - 1, v = n; d >= 0; d--, v = Math.floor(v / 10)) buf[i + d] = 0x30 + (v % 10);
  i += digits;
  if (suffix) {
    buf[i++] = 0x2f; // "/"
    for (let j = 0; suffix[j] !== 0; j++) buf[i++] = suffix[j]!;
  }
  buf[i] = 0;
}

/**
 * One thread's reader of process facts. A handle from open() keeps naming the process it was opened for:
 * once that process is gone, reads through it fail (ESRCH), even when a new process has its PID, so an
 * executable and a start time read through one handle always belong to one process.
 */
export class ProcessFacts {
  /** The executable of the last readExe()/readExeOf() (dev, ino and the rest of its stat). */
  readonly exe: FdStat = emptyStat();
  /** Parent PID and start time (clock ticks since boot) of the last readStat(); -1 when unknown. */
  ppid = -1;
  startTime = -1;
  private readonly fstat = new Fstat();
  private readonly path = structBuffer(64);
  private readonly buf = structBuffer(STAT_BYTES);

  /** A handle on /proc/PID, or -1 (gone, or pid ≤ 0). Close it with close(). */
  open(pid: number): number {
    if (pid <= 0) return -1;
    numberedPath(this.path, PROC, pid);
    return libc.openat(AT_FDCWD, this.path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  }

  close(handle: number): void {
    if (handle >= 0) libc.close(handle);
  }

  /**
   * Stats the file the process executes (its exe link, followed) into `exe`. False when the process is
   * gone or has no executable (a kernel thread). AT_STATX_DONT_SYNC: a binary on NFS costs no round trip.
   */
  readExe(handle: number): boolean {
    return this._statExe(libc.openat(handle, EXE, O_PATH | O_CLOEXEC, 0));
  }

  /** readExe() by PID, without a handle: one O_PATH open, one statx, one close. */
  readExeOf(pid: number): boolean {
    if (pid <= 0) return false;
    numberedPath(this.path, PROC, pid, EXE);
    return this._statExe(libc.openat(AT_FDCWD, this.path, O_PATH | O_CLOEXEC, 0));
  }

  /**
   * Reads fields 4 (ppid) and 22 (start time) of the process's stat. The command name (field 2) may hold
   * spaces and parentheses, so fields are counted from the last ')'. False when the process is gone.
   */
  readStat(handle: number): boolean {
    this.ppid = -1;
    this.startTime = -1;
    const fd = libc.openat(handle, STAT, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return false;
    const n = libc.read(fd, this.buf, STAT_BYTES);
    libc.close(fd);
    if (n <= 0) return false;
    const b = this.buf;
    let i = n - 1;
    while (i >= 0 && b[i] !== 0x29) i--;
    if (i < 0) return false;
    i += 2; // ") " → field 3
    let field = 3;
    let ppid = -1;
    while (i < n && field <= 22) {
      if (field === 4 || field === 22) {
        let v = 0;
        let digits = 0;
        while (i < n && b[i]! >= 0x30 && b[i]! <= 0x39) {
          v = v * 10 + (b[i]! - 0x30);
          digits++;
          i++;
        }
        if (digits === 0) return false;
        if (field === 4) ppid = v;
        else {
          this.ppid = ppid;
          this.startTime = v;
          return true;
        }
      }
      while (i < n && b[i] !== 0x20) i++;
      i++;
      field++;
    }
    return false;
  }

  private _statExe(fd: number): boolean {
    if (fd < 0) return false;
    const e = this.fstat.stat(fd, this.exe, AT_STATX_DONT_SYNC);
    libc.close(fd);
    return e === 0;
  }
}

/** One thread's readlink() of /proc links into a reusable buffer: the bytes stay valid until the next call. */
export class ProcLink {
  readonly bytes = structBuffer(PATH_MAX);
  private readonly path = structBuffer(64);

  /** The path behind this process's descriptor `fd`; its length in `bytes`, or -1. */
  fdPath(fd: number): number {
    if (fd < 0) return -1;
    numberedPath(this.path, SELF_FD, fd);
    return libc.readlink(this.path, this.bytes, PATH_MAX);
  }

  /** The path of the executable process `pid` runs (" (deleted)" appended once replaced); -1 when unknown. */
  exePath(pid: number): number {
    if (pid <= 0) return -1;
    numberedPath(this.path, PROC, pid, EXE);
    return libc.readlink(this.path, this.bytes, PATH_MAX);
  }
}
