// inotify(7) through bun:ffi: constants with the names of <sys/inotify.h>, the event record layout, and
// wrappers for inotify_init1 / inotify_add_watch / inotify_rm_watch. Used where fanotify lacks FID events.
import { errno, libc } from "./libc.ts";

// Events (mask bits).
export const IN_ACCESS = 0x1;
export const IN_MODIFY = 0x2;
export const IN_ATTRIB = 0x4;
export const IN_CLOSE_WRITE = 0x8;
export const IN_CLOSE_NOWRITE = 0x10;
export const IN_OPEN = 0x20;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const IN_MOVE_SELF = 0x800;
// Reported by the kernel without being asked for.
export const IN_UNMOUNT = 0x2000;
export const IN_Q_OVERFLOW = 0x4000;
export const IN_IGNORED = 0x8000;
// inotify_add_watch flags.
export const IN_ONLYDIR = 0x01000000;
export const IN_DONT_FOLLOW = 0x02000000;
export const IN_EXCL_UNLINK = 0x04000000;
export const IN_MASK_CREATE = 0x10000000;
export const IN_MASK_ADD = 0x20000000;
export const IN_ISDIR = 0x40000000;

// inotify_init1 flags.
export const IN_NONBLOCK = 0x800;
export const IN_CLOEXEC = 0x80000;

/**
 * struct inotify_event { s32 wd @0; u32 mask @4; u32 cookie @8; u32 len @12; char name[len] @16 }
 * Hint: `len` counts the NUL padding too; the name ends at its first NUL.
 */
export const INOTIFY_EVENT_HEADER_LEN = 16;

/** inotify_add_watch on a byte path (NUL-terminated, see cstr()). Returns the wd, or -errno. */
export function inotifyAddWatch(fd: number, path: Uint8Array, mask: number): number {
  const wd = libc.inotify_add_watch(fd, path, mask);
  return wd < 0 ? -errno() : wd;
}

/** Returns 0 or the errno (EINVAL: the watch is already gone, e.g. its directory was deleted). */
export function inotifyRmWatch(fd: number, wd: number): number {
  return libc.inotify_rm_watch(fd, wd) === 0 ? 0 : errno();
}

/**
 * Calls `onEvent(wd, mask, cookie, nameOffset, nameLength)` for each record in `view[0..len)`; the name is
 * `bytes[nameOffset .. nameOffset + nameLength)` (length 0 for events on the watched directory itself).
 * Returns the number of records.
 */
export function forEachInotifyEvent(
  view: DataView,
  len: number,
  onEvent: (wd: number, mask: number, cookie: number, nameOffset: number, nameLength: number) => void,
): number {
  let off = 0;
  let n = 0;
  while (off + INOTIFY_EVENT_HEADER_LEN <= len) {
    const nameLen = view.getUint32(off + 12, true);
    const nameOffset = off + INOTIFY_EVENT_HEADER_LEN;
    if (nameOffset + nameLen > len) break;
    let e = nameOffset;
    while (e < nameOffset + nameLen && view.getUint8(e) !== 0) e++;
    onEvent(view.getInt32(off, true), view.getUint32(off + 4, true), view.getUint32(off + 8, true), nameOffset, e - nameOffset);
    off = nameOffset + nameLen;
    n++;
  }
  return n;
}

