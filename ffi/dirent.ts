// Directory listing with getdents64(2): names as raw bytes or latin1 text (Bun's readdir cannot return byte
// names with file types) and no per-entry stat. Used by the walks that must never open anything but
// directories: the mark walk, the directory watchers, the extra-scanning re-walk.
import { check, cstr, errno, libc, structBuffer } from "./libc.ts";
import { SyscallError } from "./errors.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS } from "./fcntl.ts";

/** d_type values of struct linux_dirent64 (DT_UNKNOWN: the file system does not say; stat to find out). */
export const DT_UNKNOWN = 0;
export const DT_DIR = 4;
export const DT_REG = 8;

/**
 * struct linux_dirent64 { u64 d_ino @0; s64 d_off @8; u16 d_reclen @16; u8 d_type @18; char d_name[] @19 }
 */
const D_RECLEN = 16;
const D_TYPE = 18;
const D_NAME = 19;

const BUF_SIZE = 32 * 1024;

/** Opens a directory (never a symlink, FIFO or device: O_DIRECTORY|O_NOFOLLOW|O_NONBLOCK). */
export function openDirectory(path: Uint8Array | string, dirfd = AT_FDCWD): number {
  return check("open", libc.openat(dirfd, cstr(path), DIR_OPEN_FLAGS, 0), typeof path === "string" ? JSON.stringify(path) : undefined);
}

/** Same, returning -errno instead of throwing. */
export function openDirectoryAt(dirfd: number, name: Uint8Array): number {
  const fd = libc.openat(dirfd, cstr(name), DIR_OPEN_FLAGS, 0);
  return fd < 0 ? -errno() : fd;
}

/** Reusable getdents64 loop for one thread: the entries of an open directory ("." and ".." left out). */
export class DirReader {
  private readonly buf = structBuffer(BUF_SIZE);
  private readonly bytes = Buffer.from(this.buf.buffer);
  private readonly view = new DataView(this.buf.buffer);

  /** Calls `onEntry(name, type)` for each entry, `name` a fresh copy of its bytes. Throws SyscallError when getdents64 fails. */
  list(fd: number, onEntry: (name: Uint8Array, type: number) => void): void {
    const e = this.each(fd, () => true, (start, end, type) => onEntry(this.buf.slice(start, end), type));
    if (e !== 0) throw new SyscallError("getdents64", e);
  }

  /**
   * Calls `onEntry(name, type)` for each entry whose type `want` accepts, `name` as latin1 text (one char per
   * byte, so any name round-trips). Returns 0 or the errno of a failed getdents64.
   */
  listLatin(fd: number, want: (type: number) => boolean, onEntry: (name: string, type: number) => void): number {
    return this.each(fd, want, (start, end, type) => onEntry(this.bytes.toString("latin1", start, end), type));
  }

  /** The name of each wanted entry lies at buf[start, end). */
  private each(fd: number, want: (type: number) => boolean, onEntry: (start: number, end: number, type: number) => void): number {
    for (;;) {
      const n = libc.getdents64(fd, this.buf, BUF_SIZE);
      if (n < 0) return errno();
      if (n === 0) return 0;
      let off = 0;
      while (off < n) {
        const reclen = this.view.getUint16(off + D_RECLEN, true);
        const type = this.buf[off + D_TYPE]!;
        if (want(type)) {
          const start = off + D_NAME;
          let end = start;
          while (this.buf[end] !== 0) end++;
          const dot = this.buf[start] === 0x2e && (end - start === 1 || (end - start === 2 && this.buf[start + 1] === 0x2e));
          if (!dot) onEntry(start, end, type);
        }
        off += reclen;
      }
    }
  }
}
