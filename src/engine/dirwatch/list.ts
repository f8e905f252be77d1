// Directory listings for the watchers: getdents64 with names as latin1 strings (one char per byte, so any
// name round-trips), plus a byte-name listing for callers outside the watcher (e.g. the prevention marks).
import { DirReader, openDirectory } from "../../../ffi/dirent.ts";
import { errno, libc, structBuffer } from "../../../ffi/libc.ts";

export const DT_UNKNOWN = 0;
export const DT_DIR = 4;
export const DT_REG = 8;

// struct linux_dirent64 { u64 d_ino @0; s64 d_off @8; u16 d_reclen @16; u8 d_type @18; char d_name[] @19 }
const D_RECLEN = 16;
const D_TYPE = 18;
const D_NAME = 19;
const BUF_SIZE = 32 * 1024;

/** Reusable getdents64 loop for one thread. */
export class LatinLister {
  private readonly buf = structBuffer(BUF_SIZE);
  private readonly bytes = Buffer.from(this.buf.buffer);
  private readonly view = new DataView(this.buf.buffer);

  /**
   * Calls `onEntry(name, type)` for each entry of the open directory `fd` ("." and ".." left out). Names are
   * decoded only for entries `want(type)` accepts. Returns 0 or the errno of a failed getdents64.
   */
  list(fd: number, want: (type: number) => boolean, onEntry: (name: string, type: number) => void): number {
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
          if (!dot) onEntry(this.bytes.toString("latin1", start, end), type);
        }
        off += reclen;
      }
    }
  }
}

export interface DirectoryEntry {
  name: Uint8Array;
  /** d_type: DT_DIR, DT_REG, ... (DT_UNKNOWN on filesystems that do not fill it in). */
  type: number;
}

/**
 * The direct children of the directory at `path` (files, directories and the rest), names as bytes.
 * Opens only the directory itself (O_DIRECTORY|O_NOFOLLOW|O_NONBLOCK). Throws SyscallError when it
 * cannot be opened or read.
 */
export function listDirectory(path: Uint8Array | string): DirectoryEntry[] {
  const fd = openDirectory(path);
  try {
    const out: DirectoryEntry[] = [];
    new DirReader().list(fd, (name, type) => out.push({ name, type }));
    return out;
  } finally {
    libc.close(fd);
  }
}
