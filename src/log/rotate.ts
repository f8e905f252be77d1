// Size-based rotation of the --log file (--log-max-size, --log-keep) that stays safe while several
// threads and processes append to it, each through its own descriptor.
//
// The rule: only the holder of the file that is still at the path, and still over the limit, renames it,
// and only under an flock() on that file. Another thread that waited for the same lock then finds a new
// file at the path (another inode) and merely reopens. A thread that has not noticed yet keeps appending
// to the renamed file (FILE.1) until its next check, before its next line: its lines are neither lost
// nor written twice, and a renamed file gets no lines after that.
import { fstatSync, renameSync, statSync, unlinkSync, type Stats } from "node:fs";
import { libc, errno } from "../../ffi/libc.ts";
import { errnoName } from "../../ffi/errors.ts";

// <sys/file.h>
const LOCK_EX = 2;
const LOCK_UN = 8;

export interface RotationPolicy {
  /** Rotate before an append would take the file past this many bytes. */
  maxSize: number;
  /** Old files kept: FILE.1 (newest) … FILE.keep; 0 = none. */
  keep: number;
}

/**
 * What to do before appending `incoming` bytes to `fd`, opened on `path` (an fstat and a stat): "rotate"
 * when the file would pass the limit, "reopen" when another thread or process already rotated it (the
 * path names another file now, or none), else "append".
 */
export function beforeAppend(path: string, fd: number, incoming: number, policy: RotationPolicy): "append" | "rotate" | "reopen" {
  let mine: Stats;
  try {
    mine = fstatSync(fd);
  } catch {
    return "append";
  }
  const current = statOrUndefined(path);
  if (current === undefined || current.ino !== mine.ino || current.dev !== mine.dev) return "reopen";
  return mine.size > 0 && mine.size + incoming > policy.maxSize ? "rotate" : "append";
}

/**
 * Rotates `path` if `fd` is still the file there and still too large, then opens the file now at the path
 * (new, or made by whoever rotated first) with `openFile`. Returns the new descriptor, or undefined when the
 * caller should keep writing to `fd`. Throws Error with a reason when renaming fails.
 */
export function rotate(path: string, fd: number, incoming: number, policy: RotationPolicy, openFile: () => number): number | undefined {
  if (libc.flock(fd, LOCK_EX) !== 0) throw new Error(`flock: ${errnoName(errno())}`);
  try {
    const mine = fstatSync(fd);
    const current = statOrUndefined(path);
    const stillOurs = current !== undefined && current.ino === mine.ino && current.dev === mine.dev;
    if (stillOurs) {
      // Someone may have truncated it meanwhile (copytruncate): then there is nothing to do.
      if (!(mine.size > 0 && mine.size + incoming > policy.maxSize)) return undefined;
      shiftOldFiles(path, policy.keep);
    }
    return openFile();
  } finally {
    libc.flock(fd, LOCK_UN);
  }
}

/** FILE.(keep-1) → FILE.keep, …, FILE.1 → FILE.2, FILE → FILE.1 (FILE removed when keep is 0). */
function shiftOldFiles(path: string, keep: number): void {
  for (let i = keep - 1; i >= 1; i--) {
    try {
      renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  if (keep >= 1) renameSync(path, `${path}.1`);
  else unlinkSync(path);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
