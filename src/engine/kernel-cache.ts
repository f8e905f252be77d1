// The kernel-side verdict cache: after a clean verdict, an evictable ignore mark for the open event on
// that inode, added through the event's fd. Later opens raise no event at all; the kernel drops the mark
// by itself on the next write (no FAN_MARK_IGNORED_SURV_MODIFY). Writes through a shared mapping raise no
// event, so only files no untrusted user can write get a mark (cache-rules.ts). Flushing it when
// signatures change keeps every watched directory covered throughout (see flushKernelCache).
import { readFileSync, statSync } from "node:fs";
import { Errno } from "../../ffi/errors.ts";
import {
  FAN_MARK_ADD,
  FAN_MARK_EVICTABLE,
  FAN_MARK_FLUSH,
  FAN_MARK_FILESYSTEM,
  FAN_MARK_IGNORED_MASK,
  FAN_MARK_REMOVE,
  fanotifyMark,
  fanotifyMarkErrno,
} from "../../ffi/fanotify.ts";
import type { FdStat, Fstat, WriterProbe } from "../../ffi/fs.ts";
import { AT_FDCWD } from "../../ffi/fcntl.ts";
import { kernelMarkAllowed, noWriters, sameVersion } from "./cache-rules.ts";
import type { Control } from "./control.ts";
import { IncludeMarker, usableIncludePaths, type MarkReport, type MarkTargets } from "./marks.ts";
import { isUnder } from "./paths.ts";


/** Per-thread helper that adds ignore marks for clean files. The caller decides the file is on a local file system. */
export class KernelCache {
  private enabled = true;
  constructor(
    private readonly group: number,
    /** FAN_OPEN_PERM with prevention, FAN_OPEN without. */
    private readonly ignoreMask: number,
  ) {}

  /**
   * Marks the file behind `fd` clean. `before` is its stat from before the scan: if the file changed since
   * (a write before the mark shows in ctime), or anyone holds it open for writing, the mark is taken off
   * again. A write after the mark clears it. Returns "marked", "undone" or "off" (not allowed here).
   */
  markClean(fd: number, before: FdStat, fstat: Fstat, after: FdStat, probe: WriterProbe): "marked" | "undone" | "off" {
    if (!this.enabled || !kernelMarkAllowed(before, fd)) return "off";
    const e = fanotifyMarkErrno(this.group, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE, this.ignoreMask, fd, null);
    if (e !== 0) {
      // Kernels before 5.19 have no evictable marks; pinning every clean inode in memory is not worth
      // it, so the kernel cache turns itself off there and the userspace cache carries on alone.
      if (e === Errno.EINVAL) this.enabled = false;
      return "off";
    }
    // Checked after the mark is in place: a writer that came before it shows here, one after it must open
    // the file anew, which only root can (kernelMarkAllowed).
    if (fstat.stat(fd, after) !== 0 || !sameVersion(before, after) || !kernelMarkAllowed(after, fd) || !noWriters(fd, probe)) {
      this.unmark(fd);
      return "undone";
    }
    return "marked";
  }

  /** Takes a mark off again (a flush overlapped it). */
  unmark(fd: number): void {
    fanotifyMarkErrno(this.group, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, this.ignoreMask, fd, null);
  }
}

function deviceOf(path: string): number | undefined {
  try {
    return statSync(path).dev;
  } catch {
    return undefined;
  }
}

/** Mount points under which `paths` lie (from /proc/self/mountinfo), longest match for each path. */
function mountPointsOf(paths: string[]): string[] {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    // Field 5 is the mount point, with spaces and the like octal-escaped.
    .map((l) => l.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  const found = new Set<string>();
  for (const p of paths) {
    let best = "/";
    for (const m of mounts) {
      if (m.length > best.length && isUnder(p, m)) best = m;
    }
    found.add(best);
  }
  return [...found];
}

/**
 * Removes every ignore mark (signatures changed), on the reader thread, a slice at a time. FAN_MARK_FLUSH
 * takes all inode marks, the directory marks too, so until the trees are marked again a temporary
 * filesystem mark covers each filesystem holding an include path, and the reader lets through at once what
 * lies outside the watched trees. A filesystem mark, not a mount mark: a mount mark only sees opens
 * through that very mount, and under systemd's hardening or in a container onacc's mounts are private copies.
 */
export class KernelFlush {
  private readonly bridges: string[] = [];
  private readonly marker: IncludeMarker;

  constructor(
    private readonly group: number,
    private readonly mask: number,
    t: MarkTargets,
    private readonly control: Control,
  ) {
    // A file system that OnAccessMountPath already marks needs no bridge, and must not get one: adding merges
    // into that very mark, and removing the bridge would remove it.
    const marked = new Set(t.mountPaths.map(deviceOf));
    marked.delete(undefined);
    const wanted = mountPointsOf(t.includePaths).filter((m) => !marked.has(deviceOf(m)));
    control.setPathFilter(true);
    try {
      for (const m of wanted) {
        fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, m);
        this.bridges.push(m);
      }
      fanotifyMark(group, FAN_MARK_FLUSH, 0, AT_FDCWD, null);
    } catch (err) {
      this.end();
      throw err;
    }
    const { usable } = usableIncludePaths(t.includePaths, t.excludePaths);
    this.marker = new IncludeMarker(group, mask, usable, t.excludePaths);
  }

  get report(): MarkReport {
    return this.marker.report;
  }

  /** Marks the trees again until `deadline`; true (bridges gone) when done. */
  step(now: () => number, deadline: number): boolean {
    if (!this.marker.step(now, deadline)) return false;
    this.end();
    return true;
  }

  private end(): void {
    for (const m of this.bridges.splice(0)) fanotifyMarkErrno(this.group, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, this.mask, AT_FDCWD, m);
    this.control.setPathFilter(false);
  }
}
