// fanotify(7) through bun:ffi: constants with the names of <linux/fanotify.h>, the event record layout,
// and typed wrappers for fanotify_init, fanotify_mark and writing a permission response.
import { check, cstr, libc, structBuffer, errno } from "./libc.ts";
import { SyscallError } from "./errors.ts";
import { AT_EMPTY_PATH } from "./fcntl.ts";

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

// event_f_flags for fanotify_init (how the kernel opens each event's fd) are open flags: ffi/fcntl.ts.
// O_LARGEFILE is implied on 64-bit.

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
export function fanotifyMarkErrno(group: number, flags: number, mask: number, dirfd: number, path: string | Uint8Array | null): number {
  return libc.fanotify_mark(group, flags, BigInt(mask), dirfd, path === null ? null : cstr(path)) === -1 ? errno() : 0;
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

// ---------------------------------------------------------------------------------------------------------
// Directory-entry events (FAN_REPORT_FID / FAN_REPORT_DFID_NAME groups, Linux 5.9+): the event has no fd;
// info records after the metadata name the directory by (fsid, file handle) and the entry by name.

/**
 * An ignore mark that also silences events on a directory's children (with FAN_EVENT_ON_CHILD) and, with
 * FAN_ONDIR, on subdirectories; unlike FAN_MARK_IGNORED_MASK (Linux 6.0+). _SURV: survives modification.
 */
export const FAN_MARK_IGNORE = 0x400;
export const FAN_MARK_IGNORE_SURV = FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY;

/** Rename as one event with old and new directory + name (Linux 5.17+). */
export const FAN_RENAME = 0x10000000;
/** Also report the child's fid on directory-entry events (Linux 5.17+). */
export const FAN_REPORT_TARGET_FID = 0x1000;

// struct fanotify_event_info_header.info_type
export const FAN_EVENT_INFO_TYPE_FID = 1;
export const FAN_EVENT_INFO_TYPE_DFID_NAME = 2;
export const FAN_EVENT_INFO_TYPE_DFID = 3;
export const FAN_EVENT_INFO_TYPE_PIDFD = 4;
export const FAN_EVENT_INFO_TYPE_ERROR = 5;
export const FAN_EVENT_INFO_TYPE_OLD_DFID_NAME = 10;
export const FAN_EVENT_INFO_TYPE_OLD_DFID = 11;
export const FAN_EVENT_INFO_TYPE_NEW_DFID_NAME = 12;
export const FAN_EVENT_INFO_TYPE_NEW_DFID = 13;

/**
 * One info record, as offsets into the read() buffer (no copies on the hot path).
 *   struct fanotify_event_info_header { u8 info_type @0; u8 pad @1; u16 len @2 }
 *   struct fanotify_event_info_fid { header; __kernel_fsid_t fsid @4 (8 bytes);
 *     struct file_handle { u32 handle_bytes @12; s32 handle_type @16; u8 f_handle[] @20 } }
 *   then, for *_DFID_NAME records, the NUL-terminated entry name (records are padded to 4 bytes).
 */
export interface FidRecord {
  infoType: number;
  /** Offset of the 8 fsid bytes. */
  fsidOffset: number;
  handleType: number;
  /** Offset and length of f_handle[]. */
  handleOffset: number;
  handleLength: number;
  /** Offset and length of the name without its NUL; length -1 when the record carries no name. */
  nameOffset: number;
  nameLength: number;
}

const FID_HEADER_LEN = 4;
const FID_FSID_LEN = 8;
const FILE_HANDLE_HEADER_LEN = 8;
const MAX_FID_RECORDS = 4;

function _hasName(infoType: number): boolean {
  return (
    infoType === FAN_EVENT_INFO_TYPE_DFID_NAME ||
    infoType === FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
    infoType === FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
  );
}

/**
 * Walks the records of a FID-reporting group's read() buffer. `onEvent` gets the mask, the pid, and the
 * fid records of that event (`records[0..count)`, reused between calls: copy what must outlive the call).
 * Records of other types (PIDFD, ERROR) are skipped. Returns the number of events.
 */
export function forEachFidEvent(
  view: DataView,
  len: number,
  onEvent: (mask: number, pid: number, records: readonly FidRecord[], count: number) => void,
): number {
  const records: FidRecord[] = Array.from({ length: MAX_FID_RECORDS }, () => ({
    infoType: 0,
    fsidOffset: 0,
    handleType: 0,
    handleOffset: 0,
    handleLength: 0,
    nameOffset: 0,
    nameLength: -1,
  }));
  let off = 0;
  let n = 0;
  while (off + FAN_EVENT_METADATA_LEN <= len) {
    const eventLen = view.getUint32(off, true);
    const vers = view.getUint8(off + 4);
    if (vers !== FANOTIFY_METADATA_VERSION) throw new SyscallError("fanotify read", 0, `metadata version ${vers}, expected ${FANOTIFY_METADATA_VERSION}`);
    if (eventLen < FAN_EVENT_METADATA_LEN || off + eventLen > len) break;
    const metadataLen = view.getUint16(off + 6, true);
    const mask = view.getUint32(off + 8, true);
    const pid = view.getInt32(off + 20, true);
    let count = 0;
    let r = off + metadataLen;
    const end = off + eventLen;
    while (r + FID_HEADER_LEN <= end) {
      const infoType = view.getUint8(r);
      const infoLen = view.getUint16(r + 2, true);
      if (infoLen < FID_HEADER_LEN || r + infoLen > end) break;
      const isFid = infoType === FAN_EVENT_INFO_TYPE_FID || infoType === FAN_EVENT_INFO_TYPE_DFID || infoType === FAN_EVENT_INFO_TYPE_OLD_DFID ||
        infoType === FAN_EVENT_INFO_TYPE_NEW_DFID || _hasName(infoType);
      if (isFid && count < MAX_FID_RECORDS && infoLen >= FID_HEADER_LEN + FID_FSID_LEN + FILE_HANDLE_HEADER_LEN) {
        const rec = records[count++]!;
        rec.infoType = infoType;
        rec.fsidOffset = r + FID_HEADER_LEN;
        const h = rec.fsidOffset + FID_FSID_LEN;
        rec.handleLength = view.getUint32(h, true);
        rec.handleType = view.getInt32(h + 4, true);
        rec.handleOffset = h + FILE_HANDLE_HEADER_LEN;
        rec.nameOffset = rec.handleOffset + rec.handleLength;
        rec.nameLength = -1;
        if (_hasName(infoType)) {
          let e = rec.nameOffset;
          const recEnd = r + infoLen;
          while (e < recEnd && view.getUint8(e) !== 0) e++;
          rec.nameLength = e - rec.nameOffset;
        }
      }
      r += infoLen;
    }
    onEvent(mask, pid, records, count);
    off += eventLen;
    n++;
  }
  return n;
}

// File handles (name_to_handle_at(2), open_by_handle_at(2)) and filesystem ids (fstatfs(2) f_fsid): what a
// FID event's record is matched against.
export const MAX_HANDLE_SZ = 128;
/** Ask for the handle fanotify reports (an identifier, maybe not openable; Linux 6.5+, EINVAL before). */
export const AT_HANDLE_FID = 0x200;

/** struct statfs is 120 bytes on x86_64 and aarch64; f_fsid (two ints) sits at 56 on both. */
const STATFS_SIZE = 120;
const STATFS_FSID = 56;

/** Reusable name_to_handle_at / open_by_handle_at / fstatfs for one thread. */
export class FileHandles {
  /** struct file_handle { u32 handle_bytes @0; s32 handle_type @4; u8 f_handle[] @8 } */
  private readonly handle = structBuffer(FILE_HANDLE_HEADER_LEN + MAX_HANDLE_SZ);
  private readonly handleView = new DataView(this.handle.buffer);
  private readonly handleText = Buffer.from(this.handle.buffer);
  private readonly mountId = structBuffer(4);
  private readonly mountIdView = new DataView(this.mountId.buffer);
  private readonly statfs = structBuffer(STATFS_SIZE);
  private readonly empty = structBuffer(1);

  /**
   * Encodes the handle of the open file `fd` (AT_EMPTY_PATH, plus `flags` such as AT_HANDLE_FID). Returns
   * 0 or the errno; on success
   * `type()`, `bytes()` and `mountIdOf()` describe it until the next call.
   */
  encode(fd: number, flags = 0): number {
    this.handleView.setUint32(0, MAX_HANDLE_SZ, true);
    return libc.name_to_handle_at(fd, this.empty, this.handle, this.mountId, AT_EMPTY_PATH | flags) === 0 ? 0 : errno();
  }
  type(): number {
    return this.handleView.getInt32(4, true);
  }
  /** f_handle[] of the last encode() as a latin1 string (one char per byte): a cheap map key. */
  text(): string {
    return this.handleText.toString("latin1", FILE_HANDLE_HEADER_LEN, FILE_HANDLE_HEADER_LEN + this.handleView.getUint32(0, true));
  }
  /** f_handle[] of the last encode(), as a view into the reusable buffer. */
  bytes(): Uint8Array {
    return this.handle.subarray(FILE_HANDLE_HEADER_LEN, FILE_HANDLE_HEADER_LEN + this.handleView.getUint32(0, true));
  }
  mountIdOf(): number {
    return this.mountIdView.getInt32(0, true);
  }

  /** The 8 fsid bytes of the filesystem holding `fd` (a fresh copy), or the errno when fstatfs failed. */
  fsid(fd: number): Uint8Array | number {
    if (libc.fstatfs(fd, this.statfs) !== 0) return errno();
    return this.statfs.slice(STATFS_FSID, STATFS_FSID + FID_FSID_LEN);
  }

  /**
   * open_by_handle_at(mountFd, handle, flags): an fd for the object a FID record names, or -errno
   * (ESTALE: it was deleted). Needs CAP_DAC_READ_SEARCH.
   */
  open(mountFd: number, handleType: number, handle: Uint8Array, flags: number): number {
    this.handleView.setUint32(0, handle.length, true);
    this.handleView.setInt32(4, handleType, true);
    this.handle.set(handle, FILE_HANDLE_HEADER_LEN);
    const fd = libc.open_by_handle_at(mountFd, this.handle, flags);
    return fd < 0 ? -errno() : fd;
  }
}
