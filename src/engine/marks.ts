// Where the kernel reports events: a filesystem mark per OnAccessMountPath, and a directory mark with
// FAN_EVENT_ON_CHILD on every directory of each OnAccessIncludePath tree (excluded subtrees are never
// marked). Limits reached are reported once, naming the sysctl; onacc keeps what it could mark.
import { statSync } from "node:fs";
import { DT_DIR, DT_UNKNOWN, DirReader, openDirectory } from "../../ffi/dirent.ts";
import { libc } from "../../ffi/libc.ts";
import { Errno, SyscallError } from "../../ffi/errors.ts";
import {
  FAN_EVENT_ON_CHILD,
  FAN_MARK_ADD,
  FAN_MARK_FILESYSTEM,
  FAN_MARK_ONLYDIR,
  fanotifyMark,
} from "../../ffi/fanotify.ts";
import { AT_FDCWD } from "../../ffi/process.ts";

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

export function isUnder(path: string, dirs: string[]): boolean {
  return dirs.some((d) => path === d || path.startsWith(d.endsWith("/") ? d : `${d}/`));
}

export function placeMarks(group: number, mask: number, t: MarkTargets): MarkReport {
  const report: MarkReport = { mounts: 0, directories: 0, problems: [] };
  const dirs = new DirReader();
  let limitReported = false;
  const fail = (path: string, err: unknown) => {
    if (err instanceof SyscallError && err.errno === Errno.ENOSPC) {
      if (!limitReported) {
        report.problems.push(
          `fanotify mark limit reached at "${path}": raise fs.fanotify.max_user_marks (sysctl -w fs.fanotify.max_user_marks=N); protecting what is already marked`,
        );
      }
      limitReported = true;
      return;
    }
    report.problems.push(`cannot watch "${path}": ${err instanceof Error ? err.message : String(err)}`);
  };

  for (const mount of t.mountPaths) {
    try {
      // A filesystem mark rather than clamonacc's mount mark: a mount mark sees only opens made through that
      // very mount, so it misses containers and services with their own mount namespace (and onacc's own
      // service sandbox would leave it blind).
      fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, mount);
      report.mounts++;
    } catch (err) {
      fail(mount, err);
    }
  }

  for (const root of t.includePaths) {
    if (isUnder(root, t.excludePaths)) {
      report.problems.push(`include path "${root}" lies inside an excluded path: not watched`);
      continue;
    }
    try {
      if (!statSync(root).isDirectory()) {
        report.problems.push(`include path "${root}" is not a directory: not watched`);
        continue;
      }
    } catch (err) {
      report.problems.push(`include path "${root}" cannot be watched: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      continue;
    }
    // Iterative walk over byte paths (names need not be UTF-8): deep trees cannot overflow the stack, only
    // directories are ever opened (O_DIRECTORY|O_NOFOLLOW|O_NONBLOCK), symlinks are never followed.
    const excluded = t.excludePaths.map((p) => Buffer.from(p.endsWith("/") ? p : `${p}/`));
    const stack: Buffer[] = [Buffer.from(root)];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let fd: number;
      try {
        fd = openDirectory(dir);
      } catch (err) {
        // Gone or replaced since it was listed: nothing to watch there.
        if (!(err instanceof SyscallError && (err.errno === Errno.ENOENT || err.errno === Errno.ENOTDIR || err.errno === Errno.ELOOP))) {
          fail(dir.toString(), err);
        }
        continue;
      }
      try {
        fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_ONLYDIR, mask | FAN_EVENT_ON_CHILD, fd, null);
        report.directories++;
        dirs.list(fd, (name, type) => {
          if (type !== DT_DIR && type !== DT_UNKNOWN) return;
          const child = Buffer.concat([dir, dir[dir.length - 1] === SLASH_BYTE ? EMPTY : SLASH, name]);
          const withSlash = Buffer.concat([child, SLASH]);
          if (!excluded.some((x) => withSlash.subarray(0, x.length).equals(x))) stack.push(child);
        });
      } catch (err) {
        fail(dir.toString(), err);
        if (limitReported) break;
      } finally {
        libc.close(fd);
      }
    }
  }
  return report;
}
