// `onacc quarantine restore`: checks a quarantined file against its record, has it rescanned, and writes it
// back — never over an existing file, with the recorded owner and mode, through a parent directory opened
// without following any symlink — then deletes the quarantined file and its record.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  futimesSync,
  linkSync,
  openSync,
  realpathSync,
  renameSync,
  statSync,
  type Stats,
} from "node:fs";
import { dirname, resolve } from "node:path";
import { Errno, errnoName } from "../../ffi/errors.ts";
import { closeFd, openParentNoSymlinks } from "../../ffi/fs.ts";
import type { ScanOutcome } from "../clamd/types.ts";
import { displayPath } from "../log/display-path.ts";
import { fsCode, fsReason } from "../log/fs-reason.ts";
import { baseName, closeQuietly, copyData, noHardLinks, openSource, pathExists, sha256Of, unlinkQuietly } from "./quarantine.ts";
import { deleteEntry, quarantinedPath, readRecord, type VaultRecord } from "./vault.ts";

export interface RestoreRequest {
  quarantineDir: string;
  id: string;
  /** --to PATH: the new path of the file, or an existing directory to restore it into. Default: where it was. */
  to?: string;
  /** --force: restore even when clamd still finds something, cannot scan, or the content changed. */
  force: boolean;
  /** Scans the file behind `fd` (the quarantined file, opened read-only). */
  scan: (fd: number) => ScanOutcome;
  /** For a relative --to. */
  cwd?: string;
}

export interface RestoreResult {
  record: VaultRecord;
  /** Where the file is now (bytes). */
  path: Buffer;
  /** What the rescan said, in words ("clean", or what --force overrode). */
  verdict: string;
  /** Things that went wrong after the file was safely restored (the quarantined copy could not be deleted). */
  warnings: string[];
}

/** The restore did not happen; the message says why and what to do. Nothing was changed. */
export class RestoreRefused extends Error {}

// Hint: the temp file lives next to the target, so link(2) can give it the final name without copying.
const _TEMP_PREFIX = ".onacc-restore-";

export function restoreFile(req: RestoreRequest): RestoreResult {
  const record = readRecord(req.quarantineDir, req.id);
  const source = quarantinedPath(req.quarantineDir, record);
  let fd: number;
  try {
    fd = openSource(source);
  } catch (err) {
    throw new RestoreRefused(`the quarantined file "${displayPath(source)}" cannot be opened: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const st = fstatSync(fd);
    const overrides = _checkContent(record, st, fd, req.force);
    const destination = _destination(record, req.to, req.cwd ?? process.cwd());
    const parentFd = openParentNoSymlinks(destination);
    if (parentFd < 0) throw new RestoreRefused(_parentProblem(destination, -parentFd));
    try {
      const name = baseName(destination);
      const inParent = (n: Buffer | string) => Buffer.concat([Buffer.from(`/proc/self/fd/${parentFd}/`), Buffer.from(n)]);
      if (pathExists(inParent(name))) throw new RestoreRefused(`"${displayPath(destination)}" already exists and is never overwritten: restore elsewhere with --to=PATH`);
      const verdict = _rescan(req, fd, overrides);
      _writeNew(fd, st, record, inParent, name, destination);
      const warnings: string[] = [];
      try {
        deleteEntry(req.quarantineDir, record);
      } catch (err) {
        warnings.push(`the file was restored, but its quarantined copy stays: ${err instanceof Error ? err.message : String(err)}`);
      }
      return { record, path: destination, verdict, warnings };
    } finally {
      closeFd(parentFd);
    }
  } finally {
    closeQuietly(fd);
  }
}

/** Refuses an incomplete entry always, and changed content unless forced; returns what --force overrode. */
function _checkContent(record: VaultRecord, st: Stats, fd: number, force: boolean): string[] {
  if (!st.isFile()) throw new RestoreRefused(`the quarantined file of ${record.id} is not a regular file`);
  if (st.size !== record.size) {
    if (st.size === 0) {
      throw new RestoreRefused(
        `${record.id} is incomplete: onacc stopped while quarantining it, so the file never reached the quarantine ` +
          `and was not removed from "${displayPath(record.originalPath)}"; there is nothing to restore ` +
          `("onacc quarantine delete ${record.id}" removes the record)`,
      );
    }
    if (!force) throw new RestoreRefused(`the quarantined file of ${record.id} has ${st.size} bytes, its record says ${record.size}: it changed since it was quarantined (--force restores it as it is now)`);
    return ["its size changed since it was quarantined"];
  }
  const sha256 = sha256Of(fd);
  if (sha256 === record.sha256) return [];
  if (!force) throw new RestoreRefused(`the quarantined file of ${record.id} changed since it was quarantined (SHA-256 ${sha256}, recorded ${record.sha256}; --force restores it as it is now)`);
  return ["its content changed since it was quarantined"];
}

/** clamd's verdict on the quarantined file; refuses anything but "clean" unless forced. */
function _rescan(req: RestoreRequest, fd: number, overrides: string[]): string {
  const outcome = req.scan(fd);
  let problem: string | undefined;
  if (!outcome.ok) problem = `it could not be rescanned: ${outcome.error.message}`;
  else if (outcome.verdict.kind === "infected") problem = `clamd still finds ${outcome.verdict.signatures.join(", ")} in it`;
  else if (outcome.verdict.kind === "error") problem = `clamd could not scan it: ${outcome.verdict.message}`;
  if (problem !== undefined && !req.force) throw new RestoreRefused(`${problem} (--force restores it anyway)`);
  const forced = [...overrides, ...(problem !== undefined ? [problem] : [])];
  return forced.length === 0 ? "clamd finds it clean" : `restored with --force although ${forced.join(", and ")}`;
}

/** Where the file goes: its original path, or --to (a new path, or an existing directory to put it in). */
function _destination(record: VaultRecord, to: string | undefined, cwd: string): Buffer {
  if (to === undefined) return record.originalPath;
  const wanted = resolve(cwd, to);
  // The operator's own path may go through symlinks (resolved now); after that every component is opened
  // without following one, so a directory swapped for a symlink meanwhile is refused.
  let isDir = false;
  try {
    isDir = statSync(wanted).isDirectory();
  } catch {
    /* a new name */
  }
  if (isDir) return Buffer.concat([Buffer.from(`${_real(wanted)}/`), baseName(record.originalPath)]);
  return Buffer.concat([Buffer.from(`${_real(dirname(wanted))}/`), baseName(Buffer.from(wanted))]);
}

function _real(dir: string): string {
  try {
    const real = realpathSync(dir);
    return real === "/" ? "" : real;
  } catch (err) {
    throw new RestoreRefused(`the directory "${dir}" cannot be used: ${fsReason(err)}`);
  }
}

function _parentProblem(destination: Buffer, errno: number): string {
  const shown = displayPath(destination);
  if (errno === Errno.ENOENT) return `the directory of "${shown}" no longer exists: restore elsewhere with --to=PATH`;
  if (errno === Errno.ELOOP || errno === Errno.ENOTDIR) return `a directory on the path "${shown}" is a symlink or not a directory (${errnoName(errno)}): refused, give the real path with --to=PATH`;
  return `the directory of "${shown}" cannot be opened (${errnoName(errno)})`;
}

/**
 * The content, owner, mode and times go into a new temp file next to the target, which is fsynced and
 * then linked to the final name: link(2) never replaces, so a file that appeared meanwhile is kept.
 */
function _writeNew(fd: number, st: Stats, record: VaultRecord, inParent: (n: Buffer | string) => Buffer, name: Buffer, destination: Buffer): void {
  const temp = inParent(`${_TEMP_PREFIX}${process.pid}-${crypto.randomUUID()}`);
  const shown = displayPath(destination);
  let out: number;
  try {
    out = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new RestoreRefused(`cannot create a file next to "${shown}": ${fsReason(err)}`);
  }
  let linked = false;
  try {
    try {
      copyData(fd, out, st.size);
      // Owner first: chown clears set-user-ID and set-group-ID bits, which the mode then puts back.
      fchownSync(out, record.uid, record.gid);
      fchmodSync(out, record.mode & 0o7777);
      futimesSync(out, st.atime, st.mtime);
      fsyncSync(out);
    } catch (err) {
      throw new RestoreRefused(`writing next to "${shown}" failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      closeSync(out);
    }
    const final = inParent(name);
    try {
      linkSync(temp, final);
    } catch (err) {
      const code = fsCode(err);
      if (code === "EEXIST") throw new RestoreRefused(`"${shown}" already exists and is never overwritten: restore elsewhere with --to=PATH`);
      if (!noHardLinks(code)) throw new RestoreRefused(`cannot give the restored file its name "${shown}": ${fsReason(err)}`);
      // No hard links here (vfat, exfat…): a rename after one more check; a small race, accepted.
      if (pathExists(final)) throw new RestoreRefused(`"${shown}" already exists and is never overwritten: restore elsewhere with --to=PATH`);
      renameSync(temp, final);
    }
    linked = true;
  } finally {
    unlinkQuietly(temp);
  }
  if (linked) _syncParent(inParent(""));
}

function _syncParent(dir: Buffer): void {
  try {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* the file is written and fsynced; only its directory entry's durability is best effort */
  }
}

