// What happens to an infected file after its FOUND line: --remove, --move=DIR or --copy=DIR. Never throws;
// returns the outcome, which the caller logs as `<path>: <message>` (error when !ok, info otherwise).
import { chmodSync, fstatSync, lstatSync, unlinkSync, type BigIntStats } from "node:fs";
import { Errno, errnoName } from "../../ffi/errors.ts";
import { closeFd, openParentNoSymlinks } from "../../ffi/fs.ts";
import type { ActionOnFound } from "../cli/options.ts";
import { displayPath } from "../log/display-path.ts";
import { fsCode, fsReason } from "../log/fs-reason.ts";
import type { Logger } from "../log/logger.ts";
import {
  QUARANTINE_FILE_MODE,
  QuarantineError,
  baseName,
  copyIntoQuarantine,
  linkIntoFreeName,
  prepareQuarantineDir,
  type Placed,
  sameFile,
  syncDir,
} from "./quarantine.ts";

export interface ActionResult {
  /** False only when the action was attempted and failed; a vanished file is ok. */
  ok: boolean;
  /** The file was gone (or replaced) before the action: nothing was done. */
  vanished?: boolean;
  /** Where the file now is (--move/--copy), rendered with displayPath(). */
  destination?: string;
  /** For the caller's log line after "<path>: ", e.g. "moved to '/q/x'", "vanished before remove". */
  message: string;
}

/** The part of Logger that actions use (warnings about the quarantine itself). */
export type ActionLogger = Pick<Logger, "warn">;

/**
 * Applies --remove / --move / --copy to the file at `path` (bytes from /proc/self/fd, or a string).
 * `fd` is the scanner's descriptor for the scanned file: when given, the action is skipped if the path
 * now names another file, and copies read through it (pread; its offset is untouched).
 * Moving never loses the file: on any failure the original stays and nothing is left in DIR.
 * Only side warnings (a group-readable quarantine, a failed chmod) are logged here; the outcome is not.
 */
export function applyAction(
  action: ActionOnFound,
  path: Uint8Array | string,
  logger: ActionLogger,
  fd?: number,
): ActionResult {
  // The file is reached through its parent directory, opened without following any symlink, as
  // /proc/self/fd/<dir>/<name>: swapping a parent directory for a symlink after the scan cannot send a root
  // unlink or move elsewhere.
  const original = Buffer.from(path);
  const dirFd = action.kind === "none" ? -1 : openParentNoSymlinks(original);
  if (action.kind !== "none" && dirFd < 0) {
    const e = -dirFd;
    if (e === Errno.ENOENT) return { ok: true, vanished: true, message: `vanished before ${action.kind}` };
    return { ok: false, message: `${action.kind} refused: a directory on the file's path changed or is a symlink (${errnoName(e)}); the file was left alone` };
  }
  const source = dirFd < 0 ? original : Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), baseName(original)]);
  let outcome: _Outcome;
  try {
    switch (action.kind) {
      case "none":
        return { ok: true, message: "no action" };
      case "remove":
        outcome = _remove(source, fd);
        break;
      case "move":
        outcome = _move(source, action.dir, logger, fd);
        break;
      case "copy":
        outcome = _copy(source, action.dir, logger, fd);
        break;
    }
  } catch (err) {
    // Nothing above is meant to throw; this keeps the promise to the scanner if something does.
    outcome = { status: "failed", message: `${action.kind} failed: ${fsReason(err)}` };
  } finally {
    if (dirFd >= 0) closeFd(dirFd);
  }
  return {
    ok: outcome.status !== "failed",
    ...(outcome.status === "vanished" ? { vanished: true } : {}),
    ...(outcome.destination !== undefined ? { destination: outcome.destination } : {}),
    message: outcome.message,
  };
}

interface _Outcome {
  status: "done" | "vanished" | "failed";
  message: string;
  destination?: string;
}

type _Verb = "remove" | "move" | "copy";

function _remove(source: Buffer, fd: number | undefined): _Outcome {
  const gone = _checkStillThere(source, fd, "remove");
  if (gone) return gone;
  try {
    unlinkSync(source);
  } catch (err) {
    if (fsCode(err) === "ENOENT") return _vanished("remove");
    return { status: "failed", message: `removal failed: ${fsReason(err)}` };
  }
  // clamdscan's wording, so existing log watchers keep matching.
  return { status: "done", message: "Removed." };
}

function _move(source: Buffer, dir: string, logger: ActionLogger, fd: number | undefined): _Outcome {
  const failed = (reason: string, after = "; the file was left in place"): _Outcome => ({
    status: "failed",
    message: `move to quarantine directory "${dir}" failed: ${reason}${after}`,
  });
  const quarantine = _prepare(dir, logger);
  if (typeof quarantine !== "string") return failed(quarantine.reason);
  const gone = _checkStillThere(source, fd, "move");
  if (gone) return gone;
  const name = baseName(source);

  // Same filesystem: a new name by link(2) (never replaces), then drop the old one: rename without overwrite.
  let placed: Placed | undefined;
  try {
    placed = linkIntoFreeName(source, quarantine, name);
  } catch (err) {
    const code = fsCode(err);
    if (code === "ENOENT" && !_exists(source)) return _vanished("move");
    if (code !== "EXDEV") return failed(_reasonOf(err));
  }
  if (placed) {
    if (!placed.renamed) {
      try {
        unlinkSync(source);
      } catch (err) {
        if (fsCode(err) !== "ENOENT") {
          _unlinkQuietly(placed.path);
          return failed(`the original could not be removed: ${fsReason(err)}`);
        }
      }
    }
    return _finishQuarantined(placed.path, quarantine, "moved", logger);
  }

  // Another filesystem: a durable copy first; the original goes only once the copy is safe.
  let copy: Buffer;
  try {
    copy = copyIntoQuarantine({ path: source, fd }, quarantine, name);
  } catch (err) {
    if (fsCode(err) === "ENOENT" && !_exists(source)) return _vanished("move");
    return failed(_reasonOf(err));
  }
  try {
    unlinkSync(source);
  } catch (err) {
    if (fsCode(err) !== "ENOENT") {
      _unlinkQuietly(copy);
      _syncDirQuietly(quarantine);
      return failed(`the original could not be removed: ${fsReason(err)}`, "; the file was left in place, the copy discarded");
    }
  }
  return _finishQuarantined(copy, quarantine, "moved", logger);
}

function _copy(source: Buffer, dir: string, logger: ActionLogger, fd: number | undefined): _Outcome {
  const failed = (reason: string): _Outcome => ({
    status: "failed",
    message: `copy to quarantine directory "${dir}" failed: ${reason}`,
  });
  const quarantine = _prepare(dir, logger);
  if (typeof quarantine !== "string") return failed(quarantine.reason);
  const gone = _checkStillThere(source, fd, "copy");
  if (gone) return gone;
  try {
    const copy = copyIntoQuarantine({ path: source, fd }, quarantine, baseName(source));
    return _finishQuarantined(copy, quarantine, "copied", logger);
  } catch (err) {
    if (fsCode(err) === "ENOENT" && !_exists(source)) return _vanished("copy");
    return failed(_reasonOf(err));
  }
}

function _prepare(dir: string, logger: ActionLogger): string | { reason: string } {
  try {
    const prepared = prepareQuarantineDir(dir);
    if (prepared.warning) logger.warn(prepared.warning);
    return prepared.dir;
  } catch (err) {
    return { reason: _reasonOf(err) };
  }
}

/** 0400 and a durable directory entry; the file is already in place, so problems here only warn. */
function _finishQuarantined(target: Buffer, quarantine: string, verb: "moved" | "copied", logger: ActionLogger): _Outcome {
  const destination = displayPath(target);
  try {
    chmodSync(target, QUARANTINE_FILE_MODE);
  } catch (err) {
    logger.warn(`Cannot make quarantined file "${destination}" read-only: ${fsReason(err)}`);
  }
  _syncDirQuietly(quarantine);
  // clamdscan's wording ("moved to '…'"), so existing log watchers keep matching.
  return { status: "done", destination, message: `${verb} to '${destination}'` };
}

/**
 * undefined while the path still names the scanned regular file; otherwise the "vanished" outcome.
 * With the scanner's fd, a path that now names another inode counts as vanished: acting on it would hit
 * a file nobody scanned.
 */
function _checkStillThere(source: Buffer, fd: number | undefined, verb: _Verb): _Outcome | undefined {
  let current: BigIntStats;
  try {
    current = lstatSync(source, { bigint: true });
  } catch (err) {
    if (fsCode(err) === "ENOENT" || fsCode(err) === "ENOTDIR") return _vanished(verb);
    return { status: "failed", message: `${verb} failed: ${fsReason(err)}` };
  }
  if (!current.isFile()) return _vanished(verb, "the path is no longer a regular file");
  if (fd === undefined) return undefined;
  try {
    if (!sameFile(current, fstatSync(fd, { bigint: true }))) return _vanished(verb, "the path now names another file");
  } catch (err) {
    return { status: "failed", message: `${verb} failed: scanned descriptor ${fd}: ${fsReason(err)}` };
  }
  return undefined;
}

function _vanished(verb: _Verb, why?: string): _Outcome {
  return { status: "vanished", message: `vanished before ${verb}${why ? ` (${why})` : ""}` };
}

function _reasonOf(err: unknown): string {
  return err instanceof QuarantineError ? err.message : fsReason(err);
}

function _exists(path: Buffer): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function _unlinkQuietly(path: Buffer): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

function _syncDirQuietly(dir: string): void {
  try {
    syncDir(dir);
  } catch {
    /* durability is best effort once the file itself is safe */
  }
}
