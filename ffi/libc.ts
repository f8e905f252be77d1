// The libc functions onacc calls directly, opened once per thread (each Worker dlopens its own handle),
// plus the small helpers every binding needs: C strings, errno, and checked return values.
import { readFileSync } from "node:fs";
import { dlopen, FFIType, read as readPtr, type Pointer } from "bun:ffi";
import { SyscallError } from "./errors.ts";

const { i32, u32, u64, i64_fast, u64_fast, ptr, cstring } = FFIType;

/**
 * The C library this process already runs on. glibc's is "libc.so.6", mapped under that name. musl has no
 * such file: there the dynamic loader is the C library, so its path is the mapping at the interpreter's
 * base address (AT_BASE in /proc/self/auxv), whatever the distribution calls it (/lib/ld-musl-x86_64.so.1
 * on Alpine, /usr/lib/x86_64-linux-musl/libc.so on Debian). Opening a second, different libc would give two
 * errno locations and two heaps. Only /proc is read: nothing here can open a file onacc watches.
 */
export function libcPath(maps: string = _readProc("/proc/self/maps").toString("latin1"), auxv: Uint8Array = _readProc("/proc/self/auxv")): string {
  if (maps === "" || /\/libc\.so\.6$/m.test(maps)) return "libc.so.6";
  const base = _auxvValue(auxv, AT_BASE);
  if (base === undefined || base === 0n) return "libc.so.6";
  const start = base.toString(16);
  const line = maps.split("\n").find((l) => l.startsWith(`${start}-`));
  const path = line === undefined ? undefined : /\s(\/\S.*)$/.exec(line)?.[1];
  return path ?? "libc.so.6";
}

// Hint: <elf.h> auxiliary vector: (type, value) pairs of u64 on LP64; AT_BASE is the interpreter's base.
const AT_BASE = 7n;

function _auxvValue(auxv: Uint8Array, type: bigint): bigint | undefined {
  const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
  for (let off = 0; off + 16 <= auxv.byteLength; off += 16) {
    const key = view.getBigUint64(off, true);
    if (key === 0n) return undefined;
    if (key === type) return view.getBigUint64(off + 8, true);
  }
  return undefined;
}

function _readProc(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

// Every symbol here must be exported by glibc 2.17 and later and by musl (tests/ffi/libc-symbols.test.ts
// checks both). Not bound on purpose: getdents64 and gettid (glibc 2.30+: RHEL 8 has 2.28) and the LFS64
// names such as pread64 (gone from musl 1.2.4): syscall() and the plain names serve instead, see below.
// Hint: size_t/ssize_t use the *_fast types so results come back as numbers, not BigInts.
export const LIBC_SYMBOLS = {
  __errno_location: { args: [], returns: ptr },
  read: { args: [i32, ptr, u64_fast], returns: i64_fast },
  write: { args: [i32, ptr, u64_fast], returns: i64_fast },
  // off_t is 64 bits on LP64 (x86_64, arm64) in both C libraries: pread is pread64.
  pread: { args: [i32, ptr, u64_fast, i64_fast], returns: i64_fast },
  close: { args: [i32], returns: i32 },
  openat: { args: [i32, ptr, i32, u32], returns: i32 },
  unlinkat: { args: [i32, ptr, i32], returns: i32 },
  // syscall(2): for calls without a wrapper in every C library onacc runs on (statx; see fs.ts).
  syscall: { args: [i64_fast, i64_fast, ptr, i32, u32, ptr], returns: i32 },
  readlink: { args: [ptr, ptr, u64_fast], returns: i64_fast },
  fsync: { args: [i32], returns: i32 },
  poll: { args: [ptr, u64_fast, i32], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  fanotify_init: { args: [u32, u32], returns: i32 },
  fanotify_mark: { args: [i32, u32, u64, i32, ptr], returns: i32 },
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, ptr, u32], returns: i32 },
  inotify_rm_watch: { args: [i32, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  send: { args: [i32, ptr, u64_fast, i32], returns: i64_fast },
  recv: { args: [i32, ptr, u64_fast, i32], returns: i64_fast },
  sendmsg: { args: [i32, ptr, i32], returns: i64_fast },
  sendto: { args: [i32, ptr, u64_fast, i32, ptr, u32], returns: i64_fast },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  getpid: { args: [], returns: i32 },
  getrlimit: { args: [i32, ptr], returns: i32 },
  setrlimit: { args: [i32, ptr], returns: i32 },
  getpwnam: { args: [ptr], returns: ptr },
  setsid: { args: [], returns: i32 },
  dup2: { args: [i32, i32], returns: i32 },
  clock_gettime: { args: [i32, ptr], returns: i32 },
  // File handles and filesystem ids: fanotify FID events name directories by (fsid, file handle).
  name_to_handle_at: { args: [i32, ptr, ptr, ptr, i32], returns: i32 },
  open_by_handle_at: { args: [i32, ptr, i32], returns: i32 },
  fstatfs: { args: [i32, ptr], returns: i32 },
  // Advisory whole-file locks: log rotation by several threads renames a file only under its lock.
  flock: { args: [i32, i32], returns: i32 },
  // fcntl(F_SETLEASE): the probe for writers a cached verdict must not outlive (see fs.ts WriterProbe).
  fcntl: { args: [i32, i32, i64_fast], returns: i32 },
  // fgetxattr(system.posix_acl_access): does a file carry an access ACL (see fs.ts hasAccessAcl)?
  fgetxattr: { args: [i32, ptr, ptr, u64_fast], returns: i64_fast },
  // madvise(MADV_PAGEOUT): start-up code pages handed back (see memory.ts).
  madvise: { args: [u64_fast, u64_fast, i32], returns: i32 },
  // signal(SIGIO, SIG_IGN): a lease break signals the lease holder (see process.ts).
  signal: { args: [i32, u64_fast], returns: u64_fast },
} as const;

const lib = dlopen(libcPath(), LIBC_SYMBOLS);

// *_fast results are typed number | bigint; sizes and counts here never exceed 2^53, so call them numbers.
type _NumberResults<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => bigint extends R ? Exclude<R, bigint> : R : T[K];
};
const _symbols = lib.symbols as _NumberResults<typeof lib.symbols>;

// Hint: <asm/unistd.h> numbers differ per architecture (x86_64 | aarch64's generic table).
const SYS_getdents64 = process.arch === "arm64" ? 61 : 217;
const SYS_gettid = process.arch === "arm64" ? 178 : 186;

export const libc = {
  ..._symbols,
  /** pread(2) under the name callers know; the symbol bound is `pread` (see LIBC_SYMBOLS). */
  pread64: _symbols.pread,
  /** getdents64(2) through syscall(): the glibc wrapper exists only since 2.30, musl 1.2.4 dropped the name. */
  getdents64: (fd: number, buf: Uint8Array, count: number): number => _symbols.syscall(SYS_getdents64, fd, buf, count, 0, null),
  /** gettid(2) through syscall(): the glibc wrapper exists only since 2.30. */
  gettid: (): number => _symbols.syscall(SYS_gettid, 0, null, 0, 0, null),
};
void cstring;

/** errno of the calling thread; read it right after the failing call. */
export function errno(): number {
  const p = libc.__errno_location();
  return p ? readPtr.i32(p as Pointer, 0) : 0;
}

/** A NUL-terminated copy of a string or byte path, in its own ArrayBuffer (see the ptr() pitfall). */
export function cstr(value: string | Uint8Array): Uint8Array {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  const out = new Uint8Array(new ArrayBuffer(bytes.length + 1));
  out.set(bytes);
  return out;
}

/** Throws SyscallError when a libc call returned -1; returns the result otherwise. */
export function check(name: string, ret: number, detail?: string): number {
  if (ret === -1) throw new SyscallError(name, errno(), detail);
  return ret;
}

/** A zeroed buffer with its own ArrayBuffer, safe to hand to the kernel. */
export function structBuffer(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

const CLOCK_MONOTONIC = 1;
const timespec = structBuffer(16);
const timespecView = new DataView(timespec.buffer);

/** CLOCK_MONOTONIC in milliseconds: the same clock in every Worker (performance.now() is not). */
export function monotonicMs(): number {
  libc.clock_gettime(CLOCK_MONOTONIC, timespec);
  // Two 32-bit reads, no BigInt: this runs several times per event. tv_sec of CLOCK_MONOTONIC (time since
  // boot) fits in 32 bits for 136 years; tv_nsec always does.
  return timespecView.getUint32(0, true) * 1000 + timespecView.getUint32(8, true) / 1e6;
}
