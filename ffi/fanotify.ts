// fanotify(7) through bun:ffi: constants with the names of <linux/fanotify.h>, the event record layout,
// and typed wrappers for fanotify_init, fanotify_mark and writing a permission response.
import { check, cstr, libc, structBuffer, errno } from "./libc.ts";
import { SyscallError } from "./errors.ts";

// Events (mask bits).
export const FAN_ACCESS = 0x1;
export const FAN_MODIFY = 0x2;
export const FAN_CLOSE_WRITE = 0x8;
export const FAN_CLOSE_NOWRITE = 0x10;
export const FAN_OPEN = 0x20;
export const FAN_MOVED_FROM = 0x40;
export const FAN_MOVED_TO = 0x80;
export const FAN_CREATE = 0x100;
export const FAN_DELETE = 0x200;
export const FAN_DELETE_SELF = 0x400;
export const FAN_MOVE_SELF = 0x800;
export const FAN_OPEN_EXEC = 0x1000;
export const FAN_Q_OVERFLOW = 0x4000;
export const FAN_OPEN_PERM = 0x10000;
export const FAN_ACCESS_PERM = 0x20000;
export const FAN_OPEN_EXEC_PERM = 0x40000;
export const FAN_EVENT_ON_CHILD = 0x08000000;
export const FAN_ONDIR = 0x40000000;
/** Any permission event: these must be answered or the opener waits forever. */
export const FAN_ALL_PERM_EVENTS = FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM;

// fanotify_init flags.
export const FAN_CLOEXEC = 0x1;
export const FAN_NONBLOCK = 0x2;
export const FAN_CLASS_NOTIF = 0x0;
export const FAN_CLASS_CONTENT = 0x4;
export const FAN_UNLIMITED_QUEUE = 0x10;
export const FAN_UNLIMITED_MARKS = 0x20;
export const FAN_REPORT_FID = 0x200;
export const FAN_REPORT_DIR_FID = 0x400;
export const FAN_REPORT_NAME = 0x800;
export const FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME;

// fanotify_mark flags.
export const FAN_MARK_ADD = 0x1;
export const FAN_MARK_REMOVE = 0x2;
export const FAN_MARK_DONT_FOLLOW = 0x4;
export const FAN_MARK_ONLYDIR = 0x8;
export const FAN_MARK_MOUNT = 0x10;
export const FAN_MARK_IGNORED_MASK = 0x20;
export const FAN_MARK_IGNORED_SURV_MODIFY = 0x40;
export const FAN_MARK_FLUSH = 0x80;
export const FAN_MARK_FILESYSTEM = 0x100;
export const FAN_MARK_EVICTABLE = 0x200;
export const FAN_MARK_INODE = 0x0;

// Responses.
export const FAN_ALLOW = 0x1;
export const FAN_DENY = 0x2;

export const FANOTIFY_METADATA_VERSION = 3;
export const FAN_NOFD = -1;

// event_f_flags for fanotify_init: how the kernel opens each event's fd. O_LARGEFILE is implied on 64-bit.
export const O_RDONLY = 0;
export const O_CLOEXEC = 0x80000;

/**
 * struct fanotify_event_metadata (24 bytes):
 *   u32 event_len @0, u8 vers @4, u8 reserved @5, u16 metadata_len @6, u64 mask @8, s32 fd @16, s32 pid @20
 * Hint: several records share one read() buffer; step by event_len, not by 24.
 */
export const FAN_EVENT_METADATA_LEN = 24;

export interface FanotifyEvent {
  mask: number;
  fd: number;
  pid: number;
}

/** Calls `onEvent` for each record in `buf[0..len)`. Returns the number of records. */
export function forEachEvent(view: DataView, len: number, onEvent: (mask: number, fd: number, pid: number) => void): number {
  let off = 0;
  let n = 0;
  while (off + FAN_EVENT_METADATA_LEN <= len) {
    const eventLen = view.getUint32(off, true);
    const vers = view.getUint8(off + 4);
    if (vers !== FANOTIFY_METADATA_VERSION) throw new SyscallError("fanotify read", 0, `metadata version ${vers}, expected ${FANOTIFY_METADATA_VERSION}`);
    if (eventLen < FAN_EVENT_METADATA_LEN) break;
    // Mask bits used here fit in 32 bits; read the low word only (no BigInt on the hot path).
    const mask = view.getUint32(off + 8, true);
    onEvent(mask, view.getInt32(off + 16, true), view.getInt32(off + 20, true));
    off += eventLen;
    n++;
  }
  return n;
}

export function fanotifyInit(flags: number, eventFlags: number): number {
  return check("fanotify_init", libc.fanotify_init(flags, eventFlags));
}

/** fanotify_mark on a path (or, with path null, on `dirfd` itself). */
export function fanotifyMark(group: number, flags: number, mask: number, dirfd: number, path: string | Uint8Array | null): void {
  const p = path === null ? null : cstr(path);
  const r = libc.fanotify_mark(group, flags, BigInt(mask), dirfd, p);
  if (r === -1) {
    const where = path === null ? `fd ${dirfd}` : typeof path === "string" ? JSON.stringify(path) : "(path)";
    throw new SyscallError("fanotify_mark", errno(), where);
  }
}

/** Like fanotifyMark but returns errno (0 on success) instead of throwing: for hot paths. */
export function fanotifyMarkErrno(group: number, flags: number, mask: number, dirfd: number, path: Uint8Array | null): number {
  return libc.fanotify_mark(group, flags, BigInt(mask), dirfd, path) === -1 ? errno() : 0;
}

/**
 * A reusable struct fanotify_response { s32 fd; u32 response; } writer. One per thread: the kernel takes
 * exactly one response per write().
 */
export class ResponseWriter {
  private readonly buf = structBuffer(8);
  private readonly view = new DataView(this.buf.buffer);
  constructor(private readonly group: number) {}

  /** Returns 0 or the errno (ENOENT: the event was already answered or its group closed). */
  respond(fd: number, response: number): number {
    this.view.setInt32(0, fd, true);
    this.view.setUint32(4, response, true);
    return libc.write(this.group, this.buf, 8) === 8 ? 0 : errno();
  }
}
