// The quarantine directory for --move/--copy: creating it (0700), reserving a free name (`name`, `name.1`,
// …) without ever overwriting, and bringing a file's content in durably (a temp file, then a rename).
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
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { fsCode, fsReason } from "../log/fs-reason.ts";

/** Mode of quarantined files: readable by root only, never executable. */
export const QUARANTINE_FILE_MODE = 0o400;
/** Mode of a quarantine directory onacc creates. */
export const QUARANTINE_DIR_MODE = 0o700;
/** Names of onacc's temp files in DIR start with this; the pid of their writer follows. */
export const TEMP_PREFIX = ".onacc-tmp-";

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

/** DIR/name as a byte path. */
export function inDir(dir: string, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${dir}/`), name]);
}

/**
 * Reserves the first free name of `name`, `name.1`, … in DIR by creating it empty (O_EXCL, mode 0400):
 * no check-then-act race with another Worker, and the name can go into the file's record before the file
 * itself arrives (publish() then renames the content over it). Returns the name (bytes, in DIR).
 */
export function reserveName(dir: string, name: Buffer): Buffer {
  for (let index = 0; index <= _MAX_SUFFIX; index++) {
    const candidate = index === 0 ? name : Buffer.concat([name, Buffer.from(`.${index}`)]);
    let fd: number;
    try {
      fd = openSync(inDir(dir, candidate), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, QUARANTINE_FILE_MODE);
    } catch (err) {
      if (fsCode(err) === "EEXIST") continue;
      throw new QuarantineError(fsReason(err), fsCode(err));
    }
    closeSync(fd);
    return candidate;
  }
  throw new QuarantineError(`more than ${_MAX_SUFFIX} files named like this already`);
}

/** A fresh temp name in DIR (nothing is created). */
export function tempName(dir: string): Buffer {
  return Buffer.from(`${dir}/${TEMP_PREFIX}${process.pid}-${crypto.randomUUID()}`);
}

/**
 * A second name for `existing` (a file on DIR's filesystem) under a temp name in DIR, by link(2).
 * Throws QuarantineError; its code is EXDEV when `existing` is on another filesystem, and EPERM, ENOTSUP,
 * EOPNOTSUPP or EMLINK where the filesystem has no hard links.
 */
export function linkToTemp(existing: Buffer, dir: string): Buffer {
  const temp = tempName(dir);
  try {
    linkSync(existing, temp);
  } catch (err) {
    throw new QuarantineError(fsReason(err), fsCode(err));
  }
  return temp;
}

/** Whether a link(2) error means "this filesystem has no hard links" (so a rename must do). */
export function noHardLinks(code: string | undefined): boolean {
  return code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "EMLINK";
}

/**
 * Copies the file behind `sourceFd` (read with pread: its offset is not moved) into a temp file in DIR
 * with mode 0400 and the source's times, fsynced. Returns the temp path; on failure nothing is left.
 */
export function copyToTemp(sourceFd: number, dir: string): Buffer {
  const temp = tempName(dir);
  let tempFd: number | undefined;
  let done = false;
  try {
    const sourceStats = fstatSync(sourceFd);
    if (!sourceStats.isFile()) throw new QuarantineError("not a regular file");
    try {
      // Hint: O_CREAT with mode 0400 still returns a writable descriptor; the file is never wider.
      tempFd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, QUARANTINE_FILE_MODE);
    } catch (err) {
      throw new QuarantineError(fsReason(err), fsCode(err));
    }
    copyData(sourceFd, tempFd, sourceStats.size);
    _step(() => {
      fchmodSync(tempFd!, QUARANTINE_FILE_MODE);
      // Keep the times: they help whoever examines the quarantine later, and a restore puts them back.
      futimesSync(tempFd!, sourceStats.atime, sourceStats.mtime);
      fsyncSync(tempFd!);
    });
    done = true;
    return temp;
  } finally {
    if (tempFd !== undefined) closeQuietly(tempFd);
    if (!done && tempFd !== undefined) unlinkQuietly(temp);
  }
}

/** Renames a temp file over its reserved name and makes the directory entry durable. */
export function publish(temp: Buffer, dir: string, reserved: Buffer): Buffer {
  const target = inDir(dir, reserved);
  _step(() => renameSync(temp, target));
  syncDir(dir);
  return target;
}

/** What a record keeps about the file itself, read from its descriptor. */
export interface FileFacts {
  uid: number;
  gid: number;
  /** st_mode: type and permission bits. */
  mode: number;
  size: number;
  /** SHA-256 of the content, hex. */
  sha256: string;
}

/** Owner, mode, size and SHA-256 of the file behind `fd` (read with pread from offset 0). */
export function fileFacts(fd: number): FileFacts {
  return _step(() => {
    const st = fstatSync(fd);
    return { uid: st.uid, gid: st.gid, mode: st.mode, size: st.size, sha256: sha256Of(fd) };
  });
}

/** SHA-256 (hex) of everything behind `fd`, read with pread. Throws node:fs errors. */
export function sha256Of(fd: number): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(_COPY_CHUNK);
  let position = 0;
  for (;;) {
    const got = readSync(fd, buffer, 0, buffer.length, position);
    if (got === 0) break;
    hash.update(buffer.subarray(0, got));
    position += got;
  }
  return hash.digest("hex");
}

/** fsync a directory so a link, rename or unlink in it survives a crash. */
export function syncDir(dir: string | Buffer): void {
  _step(() => {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** Opens a file to read without following a symlink in its last component, and without blocking on a FIFO. */
export function openSource(path: Buffer): number {
  try {
    // O_NOFOLLOW: a symlink put in place after the scan must not make onacc copy another file.
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new QuarantineError(fsReason(err), fsCode(err));
  }
}

/** Copies everything from one descriptor to another, pread from offset 0 (`size` only sizes the buffer). */
export function copyData(from: number, to: number, size: number): void {
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

/** Whether anything (a symlink included) has this name. */
export function pathExists(path: Buffer): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

export function unlinkQuietly(path: Buffer | string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}
