// Process-level libc calls: RLIMIT_NOFILE (each pending event holds an fd), user lookups through NSS
// (getpwnam, so LDAP users resolve too), and detaching from the terminal.
import { read as readPtr, type Pointer } from "bun:ffi";
import { AT_FDCWD, O_RDWR } from "./fcntl.ts";
import { check, cstr, libc, structBuffer } from "./libc.ts";

export const RLIMIT_NOFILE = 7;

/** struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; } */
export function getNofileLimit(): { soft: number; hard: number } {
  const buf = structBuffer(16);
  check("getrlimit", libc.getrlimit(RLIMIT_NOFILE, buf));
  const v = new DataView(buf.buffer);
  return { soft: Number(v.getBigUint64(0, true)), hard: Number(v.getBigUint64(8, true)) };
}

/** Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force. */
export function raiseNofileLimit(): number {
  const { soft, hard } = getNofileLimit();
  if (soft >= hard) return soft;
  const buf = structBuffer(16);
  const v = new DataView(buf.buffer);
  v.setBigUint64(0, BigInt(hard), true);
  v.setBigUint64(8, BigInt(hard), true);
  return libc.setrlimit(RLIMIT_NOFILE, buf) === 0 ? hard : soft;
}

// struct passwd: char *pw_name @0; char *pw_passwd @8; uid_t pw_uid @16; gid_t pw_gid @20; ...
const PW_UID_OFFSET = 16;

/** The uid of a user name, or undefined when there is no such user. Not thread-safe: main thread only. */
export function uidOfUser(name: string): number | undefined {
  const p = libc.getpwnam(cstr(name));
  return p ? readPtr.u32(p as Pointer, PW_UID_OFFSET) : undefined;
}

const SIGIO = 29; // x86_64 and arm64 alike
const SIG_IGN = 1;

/**
 * A probe for writers takes a read lease for a moment (ffi/fs.ts WriterProbe); a writer opening the file
 * in that moment makes the kernel signal SIGIO to the lease holder, whose default action ends the process.
 * Process-wide, once at start-up.
 */
export function ignoreLeaseBreaks(): void {
  libc.signal(SIGIO, SIG_IGN);
}

export function getpid(): number {
  return libc.getpid();
}

/** Starts a new session and points fds 0-2 at /dev/null: the daemon half of detaching. */
export function detachFromTerminal(): void {
  libc.setsid();
  const devnull = check("open", libc.openat(AT_FDCWD, cstr("/dev/null"), O_RDWR, 0), '"/dev/null"');
  for (const fd of [0, 1, 2]) libc.dup2(devnull, fd);
  if (devnull > 2) libc.close(devnull);
}
