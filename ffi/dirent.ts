// Directory listing with getdents64(2): names as raw bytes (Bun's readdir cannot return byte names with
// file types) and no per-entry stat. Used by the mark walk, which must never open anything but directories.
import { check, cstr, errno, libc, structBuffer } from "./libc.ts";
import { SyscallError } from "./errors.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS } from "./fcntl.ts";

/** d_type values of struct linux_dirent64. */
export const DT_UNKNOWN = 0;
export const DT_DIR = 4;

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

/** Entry names and types of an open directory ("." and ".." left out). */
export class DirReader {
  private readonly buf = structBuffer(BUF_SIZE);
  private readonly view = new DataView(this.buf.buffer);

  /** Calls `onEntry(name, type)` for each entry; `name` is a fresh copy. */
  list(fd: number, onEntry: (name: Uint8Array, type: number) => void): void {
    for (;;) {
      const n = libc.getdents64(fd, this.buf, BUF_SIZE);
      if (n < 0) throw new SyscallError("getdents64", errno());
      if (n === 0) return;
      let off = 0;
      while (off < n) {
        const reclen = this.view.getUint16(off + D_RECLEN, true);
        const type = this.view.getUint8(off + D_TYPE);
        let end = off + D_NAME;
        while (this.buf[end] !== 0) end++;
        const len = end - (off + D_NAME);
        const first = this.buf[off + D_NAME];
        const dot = first === 0x2e && (len === 1 || (len === 2 && this.buf[off + D_NAME + 1] === 0x2e));
        if (!dot) onEntry(this.buf.slice(off + D_NAME, end), type);
        off += reclen;
      }
    }
  }
}
