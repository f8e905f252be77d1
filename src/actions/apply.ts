// What happens to an infected file after its FOUND line: --remove, --move=DIR or --copy=DIR. Never throws;
// returns the outcome, which the caller logs as `<path>: <message>` (error when !ok, info otherwise).
import { chmodSync, lstatSync, renameSync } from "node:fs";
import { Errno, errnoName } from "../../ffi/errors.ts";
import { Fstat, S_IFMT, S_IFREG, closeFd, emptyStat, openParentNoSymlinks, unlinkAt } from "../../ffi/fs.ts";
import type { ActionOnFound } from "./types.ts";
import { displayPath } from "../log/display-path.ts";
import { errnoReason, fsReason } from "../log/fs-reason.ts";
import type { Logger } from "../log/logger.ts";
import {
  QUARANTINE_FILE_MODE,
  QuarantineError,
  baseName,
  closeQuietly,
  copyToTemp,
  fileFacts,
  inDir,
  linkToTemp,
  noHardLinks,
  openSource,
  pathExists,
  prepareQuarantineDir,
  publish,
  reserveName,
  syncDir,
  unlinkQuietly,
  type FileFacts,
} from "./quarantine.ts";
import { removeRecord, writeRecord, type VaultRecord } from "./vault.ts";

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

/** What the scanner knows about the detection, for the quarantine record. */
export interface Detection {
  /** The signature names clamd reported. */
  signatures: string[];
}

/**
 * Applies --remove / --move / --copy to the file at `path` (bytes from /proc/self/fd, or a string).
 * `fd` is the scanner's descriptor for the scanned file: when given, the action is skipped if the path
 * now names another file, and copies read through it (pread; its offset is untouched).
 * Moving never loses the file: on any failure the original stays and nothing is left in DIR.
 * --move/--copy write a vault record first (src/actions/vault.ts), with `detection`'s signatures.
 * Only side warnings (a group-readable quarantine, a failed chmod) are logged here; the outcome is not.
 */
export function applyAction(
  action: ActionOnFound,
  path: Uint8Array | string,
  logger: ActionLogger,
  fd?: number,
  detection: Detection = { signatures: [] },
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
  const name = baseName(original);
  const target: _Target = {
    dirFd,
    original,
    name,
    source: dirFd < 0 ? original : Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), name]),
  };
  let outcome: _Outcome;
  try {
    switch (action.kind) {
      case "none":
        return { ok: true, message: "no action" };
      case "remove":
        outcome = _remove(target, fd);
        break;
      case "move":
      case "copy":
        outcome = _quarantine(action.kind, target, action.dir, logger, fd, detection.signatures);
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

/** The file to act on, reached through its parent directory. */
interface _Target {
  /** O_PATH descriptor of the parent directory, opened without following any symlink. */
  dirFd: number;
  /** The path as the scanner gave it. */
  original: Buffer;
  /** The last path component, bytes as they are. */
  name: Buffer;
  /** /proc/self/fd/<dirFd>/<name>: the same entry for node:fs calls that take a path. */
  source: Buffer;
}

/** Which inode the action is about: the scanned one (from the scanner's fd) or the one checked first. */
interface _Identity {
  dev: number;
  ino: number;
}

interface _Outcome {
  status: "done" | "vanished" | "failed";
  message: string;
  destination?: string;
}

type _Verb = "remove" | "move" | "copy";

function _remove(target: _Target, fd: number | undefined): _Outcome {
  const id = _checkStillThere(target, fd, "remove");
  if ("status" in id) return id;
  const gone = _unlinkIfSame(target, id);
  switch (gone.result) {
    case "removed":
      // clamdscan's wording, so existing log watchers keep matching.
      return { status: "done", message: "Removed." };
    case "vanished":
      return _vanished("remove");
    case "replaced":
      return _vanished("remove", "the path now names another file");
    case "failed":
      return { status: "failed", message: `removal failed: ${errnoReason(gone.errno)}` };
  }
}

/**
 * --move and --copy. The record goes first (written and fsynced with the name reserved for the file), then
 * the content arrives under a temp name and is renamed over that name; a move then removes the original,
 * only while its name still holds the scanned file. Any failure before that undoes everything in DIR.
 */
function _quarantine(
  kind: "move" | "copy",
  target: _Target,
  dir: string,
  logger: ActionLogger,
  fd: number | undefined,
  signatures: string[],
): _Outcome {
  const failed = (reason: string, after = kind === "move" ? "; the file was left in place" : ""): _Outcome => ({
    status: "failed",
    message: `${kind} to quarantine directory "${dir}" failed: ${reason}${after}`,
  });
  const quarantine = _prepare(dir, logger);
  if (typeof quarantine !== "string") return failed(quarantine.reason);
  const id = _checkStillThere(target, fd, kind);
  if ("status" in id) return id;

  // The content is read through the scanner's descriptor, or through one opened now and checked to be
  // the same file.
  const contentFd = fd ?? _openChecked(target, id, kind);
  if (typeof contentFd !== "number") return contentFd;
  try {
    let facts: FileFacts;
    let reserved: Buffer;
    try {
      facts = fileFacts(contentFd);
      reserved = reserveName(quarantine, target.name);
    } catch (err) {
      return failed(_reasonOf(err));
    }
    let record: VaultRecord;
    try {
      record = writeRecord(quarantine, {
        action: kind,
        time: new Date().toISOString(),
        originalPath: target.original,
        name: reserved,
        ...facts,
        signatures,
      });
    } catch (err) {
      unlinkQuietly(inDir(quarantine, reserved));
      return failed(`the quarantine record could not be written: ${_reasonOf(err)}`);
    }
    const undo = (): void => {
      unlinkQuietly(inDir(quarantine, reserved));
      try {
        removeRecord(quarantine, record.id);
      } catch {
        /* the record says the file never arrived (state "incomplete"); harmless */
      }
      _syncDirQuietly(quarantine);
    };

    // A move on the same filesystem gets a second link to the very inode; anything else a durable copy.
    let temp: Buffer | undefined;
    if (kind === "move") {
      try {
        temp = linkToTemp(target.source, quarantine);
      } catch (err) {
        const code = err instanceof QuarantineError ? err.code : undefined;
        if (code === "ENOENT" && !pathExists(target.source)) {
          undo();
          return _vanished("move");
        }
        if (noHardLinks(code)) return _renameInto(target, id, fd, quarantine, reserved, undo, logger, failed);
        if (code !== "EXDEV") {
          undo();
          return failed(_reasonOf(err));
        }
      }
      // link(2) took whatever the name held at that moment: it must be the file that was scanned.
      if (temp && !_isFile(temp, id)) {
        unlinkQuietly(temp);
        undo();
        return _vanished("move", "the path now names another file");
      }
    }
    const linked = temp !== undefined;
    let final: Buffer;
    try {
      temp ??= copyToTemp(contentFd, quarantine);
      final = publish(temp, quarantine, reserved);
    } catch (err) {
      if (temp) unlinkQuietly(temp);
      undo();
      return failed(_reasonOf(err));
    }
    if (kind === "copy") return _finishQuarantined(final, quarantine, "copied", logger);

    const gone = _unlinkIfSame(target, id);
    if (gone.result === "failed") {
      undo();
      return failed(`the original could not be removed: ${errnoReason(gone.errno)}`, linked ? undefined : "; the file was left in place, the copy discarded");
    }
    const done = _finishQuarantined(final, quarantine, "moved", logger);
    return gone.result === "replaced" ? _keptBoth(done, target.name, gone.found, id) : done;
  } finally {
    if (fd === undefined) closeQuietly(contentFd);
  }
}

/**
 * Filesystems without hard links (vfat, exfat…): the original is renamed over its reserved name, checked
 * again right before (a small race there, accepted: such filesystems rarely hold other users' files).
 */
function _renameInto(
  target: _Target,
  id: _Identity,
  fd: number | undefined,
  quarantine: string,
  reserved: Buffer,
  undo: () => void,
  logger: ActionLogger,
  failed: (reason: string) => _Outcome,
): _Outcome {
  const again = _checkStillThere(target, fd, "move");
  if ("status" in again || again.ino !== id.ino || again.dev !== id.dev) {
    undo();
    return "status" in again ? again : _vanished("move", "the path now names another file");
  }
  const final = inDir(quarantine, reserved);
  try {
    renameSync(target.source, final);
  } catch (err) {
    undo();
    return failed(fsReason(err));
  }
  return _finishQuarantined(final, quarantine, "moved", logger);
}

/**
 * The file is safe in the quarantine, but between the check and the unlink its name came to hold another
 * file (renamed there by someone who can write the directory). That file was never scanned or copied: it is
 * left where it is, and the outcome is an error so the log says so.
 */
function _keptBoth(done: _Outcome, name: Buffer, found: _Identity, scanned: _Identity): _Outcome {
  return {
    status: "failed",
    ...(done.destination !== undefined ? { destination: done.destination } : {}),
    message:
      `quarantined as '${done.destination}', but the original was not removed: "${displayPath(name)}" now names another file ` +
      `(inode ${found.ino}; the scanned file was inode ${scanned.ino}), which was left in place`,
  };
}

/** Opens the target to read it, and checks that it is still inode `id`. */
function _openChecked(target: _Target, id: _Identity, verb: _Verb): number | _Outcome {
  let opened: number;
  try {
    opened = openSource(target.source);
  } catch (err) {
    if (err instanceof QuarantineError && (err.code === "ENOENT" || err.code === "ELOOP")) return _vanished(verb);
    return { status: "failed", message: `${verb} failed: ${_reasonOf(err)}` };
  }
  const st = emptyStat();
  if (_fstat.stat(opened, st) !== 0 || st.dev !== id.dev || st.ino !== id.ino) {
    closeQuietly(opened);
    return _vanished(verb, "the path now names another file");
  }
  return opened;
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
 * The identity of the file to act on while the name still holds the scanned regular file; otherwise the
 * "vanished" outcome. With the scanner's fd, a name that now holds another inode counts as vanished:
 * acting on it would hit a file nobody scanned.
 */
function _checkStillThere(target: _Target, fd: number | undefined, verb: _Verb): _Identity | _Outcome {
  const current = emptyStat();
  const e = _statAt(target, current);
  if (e === Errno.ENOENT || e === Errno.ENOTDIR) return _vanished(verb);
  if (e !== 0) return { status: "failed", message: `${verb} failed: ${errnoReason(e)}` };
  if ((current.mode & S_IFMT) !== S_IFREG) return _vanished(verb, "the path is no longer a regular file");
  if (fd === undefined) return { dev: current.dev, ino: current.ino };
  const scanned = emptyStat();
  const fe = _fstat.stat(fd, scanned);
  if (fe !== 0) return { status: "failed", message: `${verb} failed: scanned descriptor ${fd}: ${errnoReason(fe)}` };
  if (scanned.dev !== current.dev || scanned.ino !== current.ino) return _vanished(verb, "the path now names another file");
  return { dev: scanned.dev, ino: scanned.ino };
}

type _Unlinked =
  | { result: "removed" | "vanished" }
  | { result: "replaced"; found: _Identity }
  | { result: "failed"; errno: number };

/**
 * unlinkat() of the target's name, only while it still holds inode `id`: checked through the same parent
 * descriptor (fstatat, no symlink followed) right before. A name that now holds another file is left alone.
 * Hint: the kernel has no "unlink if this inode"; what remains is the gap between two system calls, against
 * the whole copy before.
 */
function _unlinkIfSame(target: _Target, id: _Identity): _Unlinked {
  if (target.dirFd < 0) return { result: "failed", errno: Errno.EBADF };
  const current = emptyStat();
  const e = _statAt(target, current);
  if (e === Errno.ENOENT) return { result: "vanished" };
  if (e !== 0) return { result: "failed", errno: e };
  if (current.dev !== id.dev || current.ino !== id.ino) return { result: "replaced", found: { dev: current.dev, ino: current.ino } };
  const u = unlinkAt(target.dirFd, target.name);
  if (u === Errno.ENOENT) return { result: "vanished" };
  return u === 0 ? { result: "removed" } : { result: "failed", errno: u };
}

// One stat buffer per thread (each Worker loads this module on its own).
const _fstat = new Fstat();

function _statAt(target: _Target, out: ReturnType<typeof emptyStat>): number {
  return _fstat.statAt(target.dirFd, target.name, out);
}

/** Whether `path` (in the quarantine, root's own directory) is inode `id`. */
function _isFile(path: Buffer, id: _Identity): boolean {
  try {
    const st = lstatSync(path);
    return st.dev === id.dev && st.ino === id.ino;
  } catch {
    return false;
  }
}

function _vanished(verb: _Verb, why?: string): _Outcome {
  return { status: "vanished", message: `vanished before ${verb}${why ? ` (${why})` : ""}` };
}

function _reasonOf(err: unknown): string {
  return err instanceof QuarantineError ? err.message : fsReason(err);
}

function _syncDirQuietly(dir: string): void {
  try {
    syncDir(dir);
  } catch {
    /* durability is best effort once the file itself is safe */
  }
}
