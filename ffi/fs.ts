// File-descriptor facts the engine needs per event: fstat (type, size, times) and the path behind an fd
// (readlink of /proc/self/fd/N, as raw bytes: names may hold newlines or invalid UTF-8).
import { AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDWR } from "./fcntl.ts";
import { cstr, errno, libc, structBuffer } from "./libc.ts";

// statx(2) through syscall(): one struct layout on every architecture, exported by every C library (glibc
// exports `fstat` only since 2.33, musl has no statx wrapper before 1.2.5), and AT_STATX_DONT_SYNC lets a
// thread that must never block (the fanotify reader) ask NFS, CIFS or FUSE for cached attributes only.
// Hint: struct statx (linux/stat.h) is 256 bytes; the offsets below are the kernel's.
const SYS_statx = process.arch === "arm64" ? 291 : 332;
export const AT_STATX_DONT_SYNC = 0x4000;
const STATX_BASIC_STATS = 0x7ff;
const STATX_MNT_ID = 0x1000;
const STX = {
  size: 256, mask: 0, blksize: 4, nlink: 16, uid: 20, gid: 24, mode: 28, ino: 32, fsize: 40,
  ctime: 96, mtime: 112, devMajor: 136, devMinor: 140, mntId: 144,
} as const;

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;

/** The fields of struct statx onacc uses. Numbers: dev/ino fit in 53 bits on every filesystem seen here. */
export interface FdStat {
  /** st_dev as stat(2) and node's fs.statSync report it (glibc's makedev of major:minor). */
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  // Seconds and nanoseconds apart: a double of sec*1e9+nsec would lose the last bits.
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
  /** The mount the fd was opened through (0 when the kernel does not report it: before 5.8). */
  mntId: number;
}

// 64-bit fields read as two 32-bit halves: a BigInt per field would be garbage on every event.
// Exact below 2^53, which inode numbers, sizes and times stay within.
function u64(v: DataView, off: number): number {
  return v.getUint32(off + 4, true) * 4294967296 + v.getUint32(off, true);
}
function s64(v: DataView, off: number): number {
  return v.getInt32(off + 4, true) * 4294967296 + v.getUint32(off, true);
}

/** glibc's makedev(): the st_dev encoding of stat(2). */
export function makeDev(major: number, minor: number): number {
  const lo = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & 0xfff00) << 12);
  const hi = (major >>> 12) & 0xfffff;
  return hi * 4294967296 + (lo >>> 0);
}

/** Reusable fstat (statx on the fd) for one thread. Returns errno (0 on success) and fills `out`. */
export class Fstat {
  private readonly buf = structBuffer(STX.size);
  private readonly view = new DataView(this.buf.buffer);
  private readonly empty = structBuffer(1);
  /**
   * `flags` may add AT_STATX_DONT_SYNC: on a network or FUSE file system the attributes then come from
   * the client's cache, so the call cannot wait on a stalled server (they may be stale there).
   */
  stat(fd: number, out: FdStat, flags = 0): number {
    return this._statx(fd, this.empty, AT_EMPTY_PATH | flags, out);
  }

  /**
   * fstatat(dirFd, name, AT_SYMLINK_NOFOLLOW): the entry `name` (one component, bytes) of the directory
   * behind `dirFd` (an O_PATH descriptor will do), never following a symlink. Returns errno (0 on success).
   */
  statAt(dirFd: number, name: Uint8Array, out: FdStat, flags = 0): number {
    return this._statx(dirFd, cstr(name), AT_SYMLINK_NOFOLLOW | flags, out);
  }

  private _statx(dirFd: number, path: Uint8Array, flags: number, out: FdStat): number {
    if (libc.syscall(SYS_statx, dirFd, path, flags, STATX_BASIC_STATS | STATX_MNT_ID, this.buf) !== 0) return errno();
    const v = this.view;
    out.dev = makeDev(v.getUint32(STX.devMajor, true), v.getUint32(STX.devMinor, true));
    out.ino = u64(v, STX.ino);
    out.mode = v.getUint16(STX.mode, true);
    out.uid = v.getUint32(STX.uid, true);
    out.gid = v.getUint32(STX.gid, true);
    out.nlink = v.getUint32(STX.nlink, true);
    out.size = u64(v, STX.fsize);
    out.mtimeSec = s64(v, STX.mtime);
    out.mtimeNsec = v.getUint32(STX.mtime + 8, true);
    out.ctimeSec = s64(v, STX.ctime);
    out.ctimeNsec = v.getUint32(STX.ctime + 8, true);
    out.mntId = (v.getUint32(STX.mask, true) & STATX_MNT_ID) !== 0 ? u64(v, STX.mntId) : 0;
    return 0;
  }
}

// fcntl(2) leases (<fcntl.h>, <asm-generic/fcntl.h>).
const F_SETLEASE = 1024;
const F_RDLCK = 0;
const F_UNLCK = 2;

/**
 * Is anyone able to change this file's contents right now? A read lease is refused (EAGAIN) while any
 * descriptor or shared mapping holds the file open for writing, and a mapping keeps it open for writing
 * after its descriptor is closed. Stores through such a mapping raise no fsnotify event and, once a page is
 * writable, move no timestamp: a verdict must never be cached or trusted while a writer exists. The
 * lease is held for two syscalls only; a writer opening in between gets it broken at once (SIGIO, which
 * the process ignores: see ignoreLeaseBreaks()). Needs CAP_LEASE for files of other owners.
 */
const ACL_ACCESS = new TextEncoder().encode("system.posix_acl_access\0");
const ENODATA = 61;
const EOPNOTSUPP = 95;

/**
 * True when the file behind `fd` has an access ACL (beyond its mode bits), or when that cannot be told.
 * With an ACL the group bits of the mode show the ACL's mask: a "group" write bit may mean a named user.
 */
export function hasAccessAcl(fd: number): boolean {
  if (libc.fgetxattr(fd, ACL_ACCESS, null, 0) >= 0) return true;
  const e = errno();
  return !(e === ENODATA || e === EOPNOTSUPP);
}

export class WriterProbe {
  /** errno of the last probe that could not tell (not EAGAIN): EACCES without CAP_LEASE, EINVAL where leases are off. */
  lastErrno = 0;
  /** "none", "some", or "unknown" (caching must then be off for the file). */
  writers(fd: number): "none" | "some" | "unknown" {
    if (libc.fcntl(fd, F_SETLEASE, F_RDLCK) !== 0) {
      const e = errno();
      if (e === 11 /* EAGAIN */) return "some";
      this.lastErrno = e;
      return "unknown";
    }
    libc.fcntl(fd, F_SETLEASE, F_UNLCK);
    return "none";
  }
}

export function emptyStat(): FdStat {
  return { dev: 0, ino: 0, mode: 0, uid: 0, gid: 0, nlink: 0, size: 0, mtimeSec: 0, mtimeNsec: 0, ctimeSec: 0, ctimeNsec: 0, mntId: 0 };
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

/** unlinkat(dirFd, name, 0): removes the entry `name` (one component, bytes) of that directory. 0 or errno. */
export function unlinkAt(dirFd: number, name: Uint8Array): number {
  return libc.unlinkat(dirFd, cstr(name), 0) === 0 ? 0 : errno();
}

export function closeFd(fd: number): void {
  libc.close(fd);
}

/**
 * Closes what `fd` refers to but keeps the number occupied by /dev/null, so a thread that still holds the
 * number (a scanner finishing during shutdown) writes into /dev/null instead of a reused descriptor.
 */
export function retireFd(fd: number): void {
  const devnull = libc.openat(AT_FDCWD, cstr("/dev/null"), O_RDWR | O_CLOEXEC, 0);
  if (devnull < 0) {
    libc.close(fd);
    return;
  }
  libc.dup2(devnull, fd);
  libc.close(devnull);
}

const PIN_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

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
  let cur = libc.openat(AT_FDCWD, cstr("/"), PIN_FLAGS, 0);
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
