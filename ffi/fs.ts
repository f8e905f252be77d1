// File-descriptor facts the engine needs per event: fstat (type, size, times) and the path behind an fd
// (readlink of /proc/self/fd/N, as raw bytes: names may hold newlines or invalid UTF-8).
import { cstr, errno, libc, structBuffer } from "./libc.ts";

// struct stat offsets for x86_64 and aarch64 (asm-generic) differ; both are described here.
// Hint: x86_64 puts st_nlink before st_mode; asm-generic (arm64) puts st_mode first.
const isX64 = process.arch === "x64";
const ST = isX64
  ? { size: 144, dev: 0, ino: 8, mode: 24, uid: 28, fsize: 48, mtimeSec: 88, mtimeNsec: 96, ctimeSec: 104, ctimeNsec: 112 }
  : { size: 128, dev: 0, ino: 8, mode: 16, uid: 24, fsize: 48, mtimeSec: 88, mtimeNsec: 96, ctimeSec: 104, ctimeNsec: 112 };

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;

/** The fields of struct stat onacc uses. Numbers: dev/ino fit in 53 bits on every filesystem seen here. */
export interface FdStat {
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  size: number;
  // Seconds and nanoseconds apart: a double of sec*1e9+nsec would lose the last bits.
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

/** Reusable fstat for one thread. Returns errno (0 on success) and fills `out`. */
export class Fstat {
  private readonly buf = structBuffer(ST.size);
  private readonly view = new DataView(this.buf.buffer);
  stat(fd: number, out: FdStat): number {
    if (libc.fstat(fd, this.buf) !== 0) return errno();
    const v = this.view;
    out.dev = Number(v.getBigUint64(ST.dev, true));
    out.ino = Number(v.getBigUint64(ST.ino, true));
    out.mode = v.getUint32(ST.mode, true);
    out.uid = v.getUint32(ST.uid, true);
    out.size = Number(v.getBigInt64(ST.fsize, true));
    out.mtimeSec = Number(v.getBigInt64(ST.mtimeSec, true));
    out.mtimeNsec = Number(v.getBigInt64(ST.mtimeNsec, true));
    out.ctimeSec = Number(v.getBigInt64(ST.ctimeSec, true));
    out.ctimeNsec = Number(v.getBigInt64(ST.ctimeNsec, true));
    return 0;
  }
}

export function emptyStat(): FdStat {
  return { dev: 0, ino: 0, mode: 0, uid: 0, size: 0, mtimeSec: 0, mtimeNsec: 0, ctimeSec: 0, ctimeNsec: 0 };
}

const PATH_MAX = 4096;

/** Reusable readlink("/proc/self/fd/N") for one thread. */
export class FdPath {
  private readonly out = structBuffer(PATH_MAX);
  /** The path bytes (a fresh copy), or null when the fd has no path (errno in `lastErrno`). */
  lastErrno = 0;
  path(fd: number): Uint8Array | null {
    const n = libc.readlink(cstr(`/proc/self/fd/${fd}`), this.out, PATH_MAX);
    if (n < 0) {
      this.lastErrno = errno();
      return null;
    }
    return this.out.slice(0, n);
  }
}

export function closeFd(fd: number): void {
  libc.close(fd);
}

/**
 * Closes what `fd` refers to but keeps the number occupied by /dev/null, so a thread that still holds the
 * number (a scanner finishing during shutdown) writes into /dev/null instead of a reused descriptor.
 */
export function retireFd(fd: number): void {
  const devnull = libc.openat(-100, cstr("/dev/null"), 2 /* O_RDWR */ | 0x80000 /* O_CLOEXEC */, 0);
  if (devnull < 0) {
    libc.close(fd);
    return;
  }
  libc.dup2(devnull, fd);
  libc.close(devnull);
}

// struct statfs: __fsword_t f_type at offset 0 (x86_64 and aarch64); 120 bytes in all.
const STATFS_SIZE = 120;

/** Reusable fstatfs(2) for one thread: the file system's magic number (f_type), or -errno. */
export class FsType {
  private readonly buf = structBuffer(STATFS_SIZE);
  private readonly view = new DataView(this.buf.buffer);
  of(fd: number): number {
    if (libc.fstatfs(fd, this.buf) !== 0) return -errno();
    return Number(this.view.getBigInt64(0, true));
  }
}

/**
 * Local file systems whose writes always reach fsnotify (f_type magic numbers from <linux/magic.h>).
 * Network and FUSE file systems change under onacc's feet without an event, so no ignore mark is trusted
 * there.
 */
export const LOCAL_FS_MAGIC: ReadonlySet<number> = new Set([
  0xef53, // EXT2/3/4_SUPER_MAGIC
  0x58465342, // XFS_SUPER_MAGIC
  0x9123683e, // BTRFS_SUPER_MAGIC
  0x01021994, // TMPFS_MAGIC
  0xf2f52010, // F2FS_SUPER_MAGIC
  0x2fc12fc1, // ZFS
  0x4d44, // MSDOS_SUPER_MAGIC
  0x2011bab0, // EXFAT_SUPER_MAGIC
  0x3153464a, // JFS_SUPER_MAGIC
  0x52654973, // REISERFS_SUPER_MAGIC
]);

const O_PATH = 0x200000;
const O_DIRECTORY_ = process.arch === "arm64" ? 0x4000 : 0x10000;
const O_NOFOLLOW_ = process.arch === "arm64" ? 0x8000 : 0x20000;
const O_CLOEXEC_ = 0x80000;
const PIN_FLAGS = O_PATH | O_DIRECTORY_ | O_NOFOLLOW_ | O_CLOEXEC_;

/**
 * Opens the directory holding `path` (an absolute path) one component at a time, refusing every symlink
 * on the way (O_PATH|O_DIRECTORY|O_NOFOLLOW). Acting on `/proc/self/fd/<fd>/<name>` afterwards cannot be
 * redirected by someone who swaps a parent directory for a symlink between the scan and the action.
 * Returns the directory fd, or -errno (ELOOP/ENOTDIR for a symlink on the way).
 */
export function openParentNoSymlinks(path: Uint8Array): number {
  if (path[0] !== 0x2f) return -22; // EINVAL: not absolute
  let end = path.length;
  while (end > 1 && path[end - 1] !== 0x2f) end--;
  let cur = libc.openat(-100, cstr("/"), PIN_FLAGS, 0);
  if (cur < 0) return -errno();
  let start = 1;
  while (start < end) {
    let stop = start;
    while (stop < end && path[stop] !== 0x2f) stop++;
    if (stop > start) {
      const comp = path.subarray(start, stop);
      if (comp.length === 2 && comp[0] === 0x2e && comp[1] === 0x2e) {
        libc.close(cur);
        return -22; // ".." has no place in a path read back from /proc
      }
      const next = libc.openat(cur, cstr(comp), PIN_FLAGS, 0);
      const e = next < 0 ? errno() : 0;
      libc.close(cur);
      if (next < 0) return -e;
      cur = next;
    }
    start = stop + 1;
  }
  return cur;
}
