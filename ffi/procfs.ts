// Small /proc files read without allocating, for threads that look at every event's opener: the effective
// uid (/proc/PID/status) and the start time that tells a process from a later one with the same PID
// (/proc/PID/stat). procfs reads never wait on a disk or a server.
import { AT_FDCWD, O_CLOEXEC, O_RDONLY } from "./fcntl.ts";
import { cstr, libc, structBuffer } from "./libc.ts";

const BUFFER = 4096;

export class ProcReader {
  private readonly buf = structBuffer(BUFFER);
  private readonly path = new Uint8Array(new ArrayBuffer(64));

  /** Reads /proc/<pid>/<name> into the shared buffer; the bytes read, or -1 (process gone). */
  private read(pid: number, name: string): number {
    const text = `/proc/${pid}/${name}`;
    for (let i = 0; i < text.length; i++) this.path[i] = text.charCodeAt(i);
    this.path[text.length] = 0;
    const fd = libc.openat(AT_FDCWD, this.path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    const n = libc.read(fd, this.buf, BUFFER);
    libc.close(fd);
    return n;
  }

  /** The effective uid ("Uid:\treal\teffective\t..."), or -1 when the process is gone or unknown. */
  effectiveUid(pid: number): number {
    if (pid <= 0) return -1;
    const n = this.read(pid, "status");
    if (n <= 0) return -1;
    const b = this.buf;
    // Find "\nUid:", skip the real uid, parse the effective one.
    for (let i = 0; i + 5 < n; i++) {
      if (b[i] === 0x0a && b[i + 1] === 0x55 && b[i + 2] === 0x69 && b[i + 3] === 0x64 && b[i + 4] === 0x3a) {
        let j = i + 5;
        let field = 0;
        let value = -1;
        while (j < n && b[j] !== 0x0a) {
          const c = b[j]!;
          if (c >= 0x30 && c <= 0x39) {
            if (value < 0) value = 0;
            value = value * 10 + (c - 0x30);
          } else if (value >= 0) {
            if (field === 1) return value;
            field++;
            value = -1;
          }
          j++;
        }
        return field === 1 && value >= 0 ? value : -1;
      }
    }
    return -1;
  }

  /**
   * Field 22 of /proc/PID/stat (start time in clock ticks since boot): a PID plus its start time names one
   * process for good. -1 when the process is gone. The command name (field 2) may hold spaces and
   * parentheses, so fields are counted from the last ')'.
   */
  startTime(pid: number): number {
    if (pid <= 0) return -1;
    const n = this.read(pid, "stat");
    if (n <= 0) return -1;
    const b = this.buf;
    let i = n - 1;
    while (i >= 0 && b[i] !== 0x29) i--;
    if (i < 0) return -1;
    // After ") " comes field 3; field 22 is 19 separators further.
    let field = 2;
    i++;
    while (i < n && field < 22) {
      if (b[i] === 0x20) field++;
      i++;
    }
    let value = 0;
    let digits = 0;
    while (i < n && b[i]! >= 0x30 && b[i]! <= 0x39) {
      value = value * 10 + (b[i]! - 0x30);
      digits++;
      i++;
    }
    return digits > 0 ? value : -1;
  }
}

/** The same facts for the main thread, from a path string (tests and start-up code). */
export function readProcText(pid: number | "self", name: string): string | undefined {
  const fd = libc.openat(AT_FDCWD, cstr(`/proc/${pid}/${name}`), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  const chunks: Uint8Array[] = [];
  const buf = structBuffer(BUFFER);
  for (;;) {
    const n = libc.read(fd, buf, BUFFER);
    if (n <= 0) break;
    chunks.push(buf.slice(0, n));
  }
  libc.close(fd);
  return Buffer.concat(chunks).toString("latin1");
}
