// When a clean verdict may be remembered, and where. A cached verdict is a skipped scan: it must die with
// any change to the file, including the changes no event or timestamp shows.
import { hasAccessAcl, type FdStat, type WriterProbe } from "../../ffi/fs.ts";

/**
 * Timestamps are only as fine as the file system keeps them. Most keep nanoseconds (a change lands in a
 * later clock tick, a few ms at most); ext4 with 128-byte inodes, FAT and HFS+ keep whole seconds (FAT's
 * mtime even two), and a same-size rewrite within that time leaves size, mtime and ctime as they were. A
 * version changed more recently than its file system can tell apart is scanned but never cached.
 */
export const FINE_RACY_MS = 50;
export const COARSE_RACY_MS = 3000;

/** Both times on a whole second: a file system that keeps seconds only (nanoseconds are never 0 by chance twice). */
export function coarseTimes(st: FdStat): boolean {
  return st.mtimeNsec === 0 && st.ctimeNsec === 0;
}

export function changedRecently(st: FdStat, nowMs = Date.now()): boolean {
  const window = coarseTimes(st) ? COARSE_RACY_MS : FINE_RACY_MS;
  return nowMs - (st.ctimeSec * 1000 + st.ctimeNsec / 1e6) < window;
}

export function sameVersion(a: FdStat, b: FdStat): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeSec === b.mtimeSec &&
    a.mtimeNsec === b.mtimeNsec &&
    a.ctimeSec === b.ctimeSec &&
    a.ctimeNsec === b.ctimeNsec
  );
}

/**
 * A kernel ignore mark survives writes through a shared mapping (they raise no modify event), so it may
 * only sit on files that nobody but root can open for writing: owned by root, no write bit for others, and
 * a group write bit only for the root group on a file without an ACL (with an ACL the group bits are its
 * mask, which may stand for a named user's write permission). Other files use the userspace cache, which
 * checks for writers on every hit. (`git archive` writes 0664 files: root:root 0664 counts as root's.)
 */
export function kernelMarkAllowed(st: FdStat, fd: number): boolean {
  if (st.uid !== 0 || (st.mode & 0o002) !== 0) return false;
  if ((st.mode & 0o020) === 0) return true;
  return st.gid === 0 && !hasAccessAcl(fd);
}

/**
 * Nobody holds the file open for writing right now (no descriptor, no shared writable mapping): the only
 * state in which a version seen by stat is the version that will be read. Anything else, including "cannot
 * tell", means no caching.
 */
export function noWriters(fd: number, probe: WriterProbe): boolean {
  return probe.writers(fd) === "none";
}
