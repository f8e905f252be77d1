// Where the kernel reports events: a filesystem mark per OnAccessMountPath, and a directory mark with
// FAN_EVENT_ON_CHILD on every directory of each OnAccessIncludePath tree (excluded subtrees are never
// marked). The tree walk can run a slice at a time (IncludeMarker.step), so the reader thread that does
// it keeps answering opens in between. Limits reached are reported once, naming the sysctl; onacc keeps
// what it could mark.
import { statSync } from "node:fs";
import { DT_DIR, DT_UNKNOWN, DirReader, openDirectory } from "../../ffi/dirent.ts";
import { libc } from "../../ffi/libc.ts";
import { Errno, SyscallError } from "../../ffi/errors.ts";
import { FAN_EVENT_ON_CHILD, FAN_MARK_ADD, FAN_MARK_FILESYSTEM, FAN_MARK_ONLYDIR, fanotifyMark } from "../../ffi/fanotify.ts";
import { AT_FDCWD } from "../../ffi/fcntl.ts";
import { isUnderAny, isUnderBytes } from "./paths.ts";

export interface MarkReport {
  mounts: number;
  directories: number;
  problems: string[];
}

export interface MarkTargets {
  mountPaths: string[];
  includePaths: string[];
  excludePaths: string[];
}

const SLASH = Buffer.from("/");
const SLASH_BYTE = 0x2f;
const EMPTY = Buffer.alloc(0);

/** The include paths that can be watched: existing directories outside the excluded trees (with why not). */
export function usableIncludePaths(paths: string[], excluded: string[]): { usable: string[]; problems: string[] } {
  const usable: string[] = [];
  const problems: string[] = [];
  for (const p of paths) {
    if (isUnderAny(p, excluded)) {
      problems.push(`include path "${p}" lies inside an excluded path: not watched`);
      continue;
    }
    try {
      if (statSync(p).isDirectory()) usable.push(p);
      else problems.push(`include path "${p}" is not a directory: not watched`);
    } catch (err) {
      problems.push(`include path "${p}" cannot be watched: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return { usable, problems };
}

/** Filesystem marks for OnAccessMountPath. */
export function markMounts(group: number, mask: number, mountPaths: string[], report: MarkReport): void {
  for (const mount of mountPaths) {
    try {
      // A filesystem mark rather than clamonacc's mount mark: a mount mark sees only opens made through that
      // very mount, so it misses containers and services with their own mount namespace (and onacc's own
      // service sandbox would leave it blind).
      fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, mount);
      report.mounts++;
    } catch (err) {
      report.problems.push(`cannot watch "${mount}": ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/**
 * Marks every directory of the include trees. Iterative over byte paths (names need not be UTF-8): deep
 * trees cannot overflow the stack, only directories are ever opened (O_DIRECTORY|O_NOFOLLOW|O_NONBLOCK),
 * symlinks are never followed.
 */
export class IncludeMarker {
  readonly report: MarkReport = { mounts: 0, directories: 0, problems: [] };
  private readonly stack: Buffer[];
  private readonly excluded: Buffer[];
  private readonly dirs = new DirReader();
  private limitReported = false;

  constructor(
    private readonly group: number,
    private readonly mask: number,
    includePaths: string[],
    excludePaths: string[],
  ) {
    this.stack = includePaths.map((p) => Buffer.from(p)).reverse();
    this.excluded = excludePaths.map((p) => Buffer.from(p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p));
  }

  /** Marks directories until the walk is done or `deadline` (monotonic ms from `now`) passes; true when done. */
  step(now: () => number, deadline: number): boolean {
    let n = 0;
    while (this.stack.length > 0) {
      // Clock reads cost too: look every 32 directories.
      if ((++n & 31) === 0 && now() > deadline) return false;
      this.visit(this.stack.pop()!);
    }
    return true;
  }

  runToEnd(): MarkReport {
    this.step(() => 0, Infinity);
    return this.report;
  }

  private visit(dir: Buffer): void {
    let fd: number;
    try {
      fd = openDirectory(dir);
    } catch (err) {
      // Gone or replaced since it was listed: nothing to watch there.
      if (!(err instanceof SyscallError && (err.errno === Errno.ENOENT || err.errno === Errno.ENOTDIR || err.errno === Errno.ELOOP))) {
        this.fail(dir.toString(), err);
      }
      return;
    }
    try {
      fanotifyMark(this.group, FAN_MARK_ADD | FAN_MARK_ONLYDIR, this.mask | FAN_EVENT_ON_CHILD, fd, null);
      this.report.directories++;
      this.dirs.list(fd, (name, type) => {
        if (type !== DT_DIR && type !== DT_UNKNOWN) return;
        const child = Buffer.concat([dir, dir[dir.length - 1] === SLASH_BYTE ? EMPTY : SLASH, name]);
        if (!this.excluded.some((x) => isUnderBytes(child, x))) this.stack.push(child);
      });
    } catch (err) {
      this.fail(dir.toString(), err);
      if (this.limitReported) this.stack.length = 0;
    } finally {
      libc.close(fd);
    }
  }

  private fail(path: string, err: unknown): void {
    if (err instanceof SyscallError && err.errno === Errno.ENOSPC) {
      if (!this.limitReported) {
        this.report.problems.push(
          `fanotify mark limit reached at "${path}": raise fs.fanotify.max_user_marks (sysctl -w fs.fanotify.max_user_marks=N); protecting what is already marked`,
        );
      }
      this.limitReported = true;
      return;
    }
    this.report.problems.push(`cannot watch "${path}": ${err instanceof Error ? err.message : String(err)}`);
  }
}
