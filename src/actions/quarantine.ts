// The quarantine directory for --move/--copy: creating it (0700), choosing a free name (`name`, `name.1`, …)
// without ever overwriting, and copying a file in durably (temp file, fsync, link into place, fsync dir).
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  futimesSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { resolve } from "node:path";
import { fsCode, fsReason } from "../log/fs-reason.ts";

/** Mode of quarantined files: readable by root only, never executable. */
export const QUARANTINE_FILE_MODE = 0o400;
/** Mode of a quarantine directory onacc creates. */
export const QUARANTINE_DIR_MODE = 0o700;

// Past this many `name.N` there is something wrong with the directory, not bad luck.
const _MAX_SUFFIX = 10_000;
const _COPY_CHUNK = 1 << 20;

/** A step of quarantining failed; `message` is ready for the log line after "Cannot move …: ". */
export class QuarantineError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

// Directories already checked by this thread, so the permission warning is given once.
const _checkedDirs = new Set<string>();

/**
 * mkdir -p DIR with mode 0700 when missing; an existing directory is used as it is. Returns the absolute
 * directory and, the first time this thread sees it, a warning when group or others can access it.
 */
export function prepareQuarantineDir(dir: string): { dir: string; warning?: string } {
  const absolute = resolve(dir);
  try {
    mkdirSync(absolute, { recursive: true, mode: QUARANTINE_DIR_MODE });
  } catch (err) {
    // EEXIST from a non-directory in the way is reported by the stat below, with a clearer reason.
    if (fsCode(err) !== "EEXIST") throw new QuarantineError(fsReason(err), fsCode(err));
  }
  let stats;
  try {
    stats = statSync(absolute);
  } catch (err) {
    throw new QuarantineError(fsReason(err), fsCode(err));
  }
  if (!stats.isDirectory()) throw new QuarantineError("ENOTDIR (not a directory)", "ENOTDIR");
  if (_checkedDirs.has(absolute)) return { dir: absolute };
  _checkedDirs.add(absolute);
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) === 0) return { dir: absolute };
  return {
    dir: absolute,
    warning: `Quarantine directory "${absolute}" is accessible to group or others (mode 0${mode.toString(8)}); 0700 is advised`,
  };
}

/** The last component of a byte path, bytes preserved. */
export function baseName(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === 0x2f) end--;
  const start = path.lastIndexOf(0x2f, end - 1) + 1;
  return path.subarray(start, end);
}

/** DIR/name, DIR/name.1, … as byte paths. */
export function candidateName(dir: string, name: Buffer, index: number): Buffer {
  const suffix = index === 0 ? "" : `.${index}`;
  return Buffer.concat([Buffer.from(`${dir}/`), name, Buffer.from(suffix)]);
}

/** Where linkIntoFreeName() put the file, and whether `existing` was renamed (gone) rather than linked. */
export interface Placed {
  path: Buffer;
  renamed: boolean;
}

/**
 * Gives `existing` (a file already in DIR's filesystem) the first free quarantine name by link(2), which
 * fails with EEXIST instead of replacing: no check-then-act race with another Worker. Filesystems without
 * hard links fall back to an lstat check and rename(2) (a small race there, accepted).
 * Throws QuarantineError; its code is EXDEV when `existing` is on another filesystem.
 */
export function linkIntoFreeName(existing: Buffer, dir: string, name: Buffer): Placed {
  for (let index = 0; index <= _MAX_SUFFIX; index++) {
    const target = candidateName(dir, name, index);
    try {
      linkSync(existing, target);
      return { path: target, renamed: false };
    } catch (err) {
      const code = fsCode(err);
      if (code === "EEXIST") continue;
      if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "EMLINK") {
        return { path: _renameIntoFreeName(existing, dir, name, index), renamed: true };
      }
      throw new QuarantineError(fsReason(err), code);
    }
  }
  throw new QuarantineError(`more than ${_MAX_SUFFIX} files named like this already`);
}

function _renameIntoFreeName(existing: Buffer, dir: string, name: Buffer, firstIndex: number): Buffer {
  for (let index = firstIndex; index <= _MAX_SUFFIX; index++) {
    const target = candidateName(dir, name, index);
    if (_exists(target)) continue;
    try {
      renameSync(existing, target);
      return target;
    } catch (err) {
      throw new QuarantineError(fsReason(err), fsCode(err));
    }
  }
  throw new QuarantineError(`more than ${_MAX_SUFFIX} files named like this already`);
}

function _exists(path: Buffer): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if (fsCode(err) === "ENOENT") return false;
    throw new QuarantineError(fsReason(err), fsCode(err));
  }
}

/** Where the bytes of the file to quarantine come from. */
export interface CopySource {
  path: Buffer;
  /** The scanner's descriptor for the same file; read with pread, so its offset is not moved. */
  fd?: number;
}

/**
 * Copies the source into DIR under a free name with mode 0400, durably: a temp file created O_EXCL, the
 * data, fsync, link into place, unlink the temp name, fsync DIR. On failure nothing is left in DIR and
 * the QuarantineError says which step failed. Returns the final byte path.
 */
export function copyIntoQuarantine(source: CopySource, dir: string, name: Buffer): Buffer {
  const sourceFd = source.fd ?? _openSource(source.path);
  const tempPath = Buffer.from(`${dir}/.onacc-tmp-${process.pid}-${crypto.randomUUID()}`);
  let tempFd: number | undefined;
  let tempExists = false;
  try {
    const sourceStats = fstatSync(sourceFd);
    if (!sourceStats.isFile()) throw new QuarantineError("not a regular file");
    try {
      // Hint: O_CREAT with mode 0400 still returns a writable descriptor; the file is never wider.
      tempFd = openSync(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, QUARANTINE_FILE_MODE);
      tempExists = true;
    } catch (err) {
      throw new QuarantineError(fsReason(err), fsCode(err));
    }
    _copyData(sourceFd, tempFd, sourceStats.size);
    _step(() => {
      fchmodSync(tempFd!, QUARANTINE_FILE_MODE);
      // Keep the times: they help whoever examines the quarantine later.
      futimesSync(tempFd!, sourceStats.atime, sourceStats.mtime);
      fsyncSync(tempFd!);
      closeSync(tempFd!);
    });
    tempFd = undefined;
    const placed = linkIntoFreeName(tempPath, dir, name);
    if (!placed.renamed) _unlinkQuietly(tempPath);
    tempExists = false;
    try {
      syncDir(dir);
    } catch (err) {
      _unlinkQuietly(placed.path); // not known to be durable: the caller must not rely on it
      throw err;
    }
    return placed.path;
  } finally {
    if (tempFd !== undefined) _closeQuietly(tempFd);
    if (tempExists) _unlinkQuietly(tempPath);
    if (source.fd === undefined) _closeQuietly(sourceFd);
  }
}

/** fsync a directory so a link, rename or unlink in it survives a crash. */
export function syncDir(dir: string): void {
  _step(() => {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

function _openSource(path: Buffer): number {
  try {
    // O_NOFOLLOW: a symlink put in place after the scan must not make onacc copy another file.
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new QuarantineError(fsReason(err), fsCode(err));
  }
}

function _copyData(from: number, to: number, size: number): void {
  const buffer = Buffer.allocUnsafe(Math.min(_COPY_CHUNK, Math.max(size, 1)));
  let position = 0;
  for (;;) {
    const got = _step(() => readSync(from, buffer, 0, buffer.length, position));
    if (got === 0) break;
    let done = 0;
    while (done < got) done += _step(() => writeSync(to, buffer, done, got - done));
    position += got;
  }
}

function _step<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof QuarantineError) throw err;
    throw new QuarantineError(fsReason(err), fsCode(err));
  }
}

function _closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

function _unlinkQuietly(path: Buffer): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}
