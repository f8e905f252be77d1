// openat2(2) with RESOLVE_CACHED: is a path, looked up in this process's own mount namespace, the file an
// event's descriptor refers to? Answered from the dentry cache alone — no I/O, no server round trip, never
// blocking — so the thread that answers fanotify events may ask it (kernel 5.12+; see include/uapi/linux/openat2.h).
import { dlopen, FFIType } from "bun:ffi";
import { AT_FDCWD, O_CLOEXEC, O_PATH } from "./fcntl.ts";
import { AT_STATX_DONT_SYNC, Fstat, emptyStat } from "./fs.ts";
import { errno, libc, libcPath, structBuffer } from "./libc.ts";

const { i32, i64_fast, u64_fast, ptr } = FFIType;
// syscall() with openat2's own argument list: (nr, dirfd, path, struct open_how *, size).
// The same C library ffi/libc.ts found (glibc or musl), bound once more for this call shape.
const lib = dlopen(libcPath(), { syscall: { args: [i64_fast, i64_fast, ptr, ptr, u64_fast], returns: i32 } });

const SYS_openat2 = 437; // the same number on x86_64 and arm64
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_CACHED = 0x20;
const OPEN_HOW_SIZE = 24; // struct open_how { __u64 flags, mode, resolve; }

export type SameFile = "same" | "other" | "unknown";

/** One thread's check of "does this path name that file here?". */
export class PathResolver {
  private readonly how = structBuffer(OPEN_HOW_SIZE);
  private readonly fstat = new Fstat();
  private readonly st = emptyStat();
  /** errno of the last "unknown" answer (EAGAIN: not all in the dentry cache; ENOSYS/EINVAL: old kernel). */
  lastErrno = 0;

  constructor() {
    const v = new DataView(this.how.buffer);
    v.setBigUint64(0, BigInt(O_PATH | O_CLOEXEC), true);
    v.setBigUint64(8, 0n, true);
    v.setBigUint64(16, BigInt(RESOLVE_CACHED | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), true);
  }

  /**
   * Resolves `path` (bytes, NUL-terminated at `path[len]`) without following any symlink and compares the
   * file found with (dev, ino). "other" when the path names another file or nothing; "unknown" when the
   * lookup would need I/O (a component not cached) or the kernel lacks openat2/RESOLVE_CACHED.
   */
  sameFile(path: Uint8Array, dev: number, ino: number): SameFile {
    const fd = lib.symbols.syscall(SYS_openat2, AT_FDCWD, path, this.how, OPEN_HOW_SIZE);
    if (fd < 0) {
      const e = errno();
      if (e === 2 /* ENOENT */ || e === 20 /* ENOTDIR */ || e === 40 /* ELOOP: a symlink on the way */) return "other";
      this.lastErrno = e;
      return "unknown";
    }
    const r = this.fstat.stat(fd, this.st, AT_STATX_DONT_SYNC);
    libc.close(fd);
    if (r !== 0) return "unknown";
    return this.st.dev === dev && this.st.ino === ino ? "same" : "other";
  }
}
