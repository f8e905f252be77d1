// The quarantine vault's records: one JSON file per quarantined file in DIR/.onacc-vault/<id>.json (where
// it came from, owner, mode, signatures, time, SHA-256, size), written and fsynced before the file moves.
//
// Byte fields (the original path, the name in DIR) are stored as base64, so names with newlines or
// invalid UTF-8 come back exactly; a display form sits next to them for people reading the files.
import { closeSync, constants, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeSync } from "node:fs";
import * as v from "valibot";
import { displayPath } from "../log/display-path.ts";
import { fsCode, fsReason } from "../log/fs-reason.ts";
import { QUARANTINE_DIR_MODE, inDir, syncDir, unlinkQuietly, type FileFacts } from "./quarantine.ts";

/** The records' folder inside the quarantine directory. Hidden: DIR itself looks as it did to clamonacc users. */
export const VAULT_DIR_NAME = ".onacc-vault";

/** Ten characters of Crockford's base32 in lower case (no i, l, o, u): 50 random bits, easy to type. */
const _ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
export const ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{10}$/;
const _RECORD_FORMAT = 1;
// Hint: recordTempPid() parses this prefix; keep them together.
const _RECORD_TEMP_PREFIX = ".rec-";

/** A quarantined file as its record describes it. */
export interface VaultRecord extends FileFacts {
  id: string;
  /** Which action put the file there: after "move" the original is gone, after "copy" it stayed. */
  action: "move" | "copy";
  /** When it was quarantined (ISO 8601, UTC). */
  time: string;
  /** Where the file was (bytes). */
  originalPath: Buffer;
  /** Its name in the quarantine directory (bytes; `name` or `name.N`). */
  name: Buffer;
  /** What clamd found in it (may be empty when the caller did not say). */
  signatures: string[];
}

/** A vault operation failed; the message names the place and says why. */
export class VaultError extends Error {}

const _base64 = v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/]*={0,2}$/, "expected base64"));
const _stored = v.object({
  format: v.literal(_RECORD_FORMAT),
  id: v.pipe(v.string(), v.regex(ID_PATTERN)),
  action: v.picklist(["move", "copy"]),
  time: v.pipe(v.string(), v.isoTimestamp()),
  originalPath: _base64,
  name: v.pipe(_base64, v.minLength(1)),
  uid: v.pipe(v.number(), v.integer(), v.minValue(0)),
  gid: v.pipe(v.number(), v.integer(), v.minValue(0)),
  mode: v.pipe(v.number(), v.integer(), v.minValue(0)),
  size: v.pipe(v.number(), v.integer(), v.minValue(0)),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  signatures: v.array(v.string()),
});

/** DIR/.onacc-vault */
export function vaultDir(quarantineDir: string): string {
  return `${quarantineDir}/${VAULT_DIR_NAME}`;
}

/** Where the record's file lies in the quarantine directory. */
export function quarantinedPath(quarantineDir: string, record: VaultRecord): Buffer {
  return inDir(quarantineDir, record.name);
}

/**
 * Creates DIR/.onacc-vault (0700) when missing and checks that it is a real directory (not a symlink).
 * Throws VaultError.
 */
export function ensureVault(quarantineDir: string): string {
  const dir = vaultDir(quarantineDir);
  let created = false;
  try {
    mkdirSync(dir, { mode: QUARANTINE_DIR_MODE });
    created = true;
  } catch (err) {
    if (fsCode(err) !== "EEXIST") throw new VaultError(`Cannot create the quarantine vault "${dir}": ${fsReason(err)}`);
  }
  _checkVaultDir(dir);
  // The vault's own directory entry must survive a crash too, or its records would vanish with it.
  if (created) _sync(quarantineDir);
  return dir;
}

function _checkVaultDir(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    throw new VaultError(`Cannot use the quarantine vault "${dir}": ${fsReason(err)}`);
  }
  if (!st.isDirectory()) throw new VaultError(`Cannot use the quarantine vault "${dir}": it is not a directory (a symlink or file is in the way)`);
}

/** A new random record id (uniqueness is enforced when the record is linked into place). */
export function newRecordId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  let id = "";
  for (const b of bytes) id += _ID_ALPHABET[b & 31];
  return id;
}

/**
 * Writes a record durably: a temp file written and fsynced, linked to <id>.json (link never replaces:
 * a clash of ids draws a new one), the temp name removed, the vault directory fsynced. Returns the record
 * with its id. Throws VaultError; nothing is left behind then.
 */
export function writeRecord(quarantineDir: string, fields: Omit<VaultRecord, "id">): VaultRecord {
  const dir = ensureVault(quarantineDir);
  const temp = `${dir}/${_RECORD_TEMP_PREFIX}${process.pid}-${crypto.randomUUID()}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const record: VaultRecord = { ...fields, id: newRecordId() };
    try {
      const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        writeSync(fd, _serialize(record));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(temp, `${dir}/${record.id}.json`);
      } catch (err) {
        if (fsCode(err) === "EEXIST") continue;
        throw err;
      } finally {
        unlinkQuietly(temp);
      }
      _sync(dir);
      return record;
    } catch (err) {
      unlinkQuietly(temp);
      unlinkQuietly(`${dir}/${record.id}.json`);
      if (err instanceof VaultError) throw err;
      throw new VaultError(`Cannot write a record in the quarantine vault "${dir}": ${fsReason(err)}`);
    }
  }
  throw new VaultError(`Cannot write a record in the quarantine vault "${dir}": five random ids in a row were taken`);
}

/** The record `id`; throws VaultError when there is none or it cannot be read. */
export function readRecord(quarantineDir: string, id: string): VaultRecord {
  if (!ID_PATTERN.test(id)) throw new VaultError(`"${id}" is not a quarantine id (ten letters and digits, as onacc quarantine list shows them)`);
  const file = `${vaultDir(quarantineDir)}/${id}.json`;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (fsCode(err) === "ENOENT") throw new VaultError(`No quarantined file with id ${id} in "${quarantineDir}"`);
    throw new VaultError(`Cannot read the quarantine record "${file}": ${fsReason(err)}`);
  }
  return _parse(text, file, id);
}

/** Every record (oldest first), and a message for each file in the vault that is not a readable record. */
export function listRecords(quarantineDir: string): { records: VaultRecord[]; problems: string[] } {
  const dir = vaultDir(quarantineDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (fsCode(err) === "ENOENT") return { records: [], problems: [] };
    throw new VaultError(`Cannot read the quarantine vault "${dir}": ${fsReason(err)}`);
  }
  const records: VaultRecord[] = [];
  const problems: string[] = [];
  for (const name of names) {
    const m = /^(.*)\.json$/.exec(name);
    if (!m || !ID_PATTERN.test(m[1]!)) continue;
    try {
      records.push(readRecord(quarantineDir, m[1]!));
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  records.sort((a, b) => (a.time === b.time ? a.id.localeCompare(b.id) : a.time < b.time ? -1 : 1));
  return { records, problems };
}

/** Removes the record `id` (durably). A record already gone is not an error. Throws VaultError. */
export function removeRecord(quarantineDir: string, id: string): void {
  const dir = vaultDir(quarantineDir);
  try {
    unlinkSync(`${dir}/${id}.json`);
  } catch (err) {
    if (fsCode(err) === "ENOENT") return;
    throw new VaultError(`Cannot remove the quarantine record "${dir}/${id}.json": ${fsReason(err)}`);
  }
  _sync(dir);
}

/**
 * How the quarantined file stands: "ok" (there, with the recorded size), "incomplete" (only the empty
 * name reserved before the move: onacc stopped while quarantining it, and the original was not removed),
 * "missing" (removed by someone else).
 */
export function recordState(quarantineDir: string, record: VaultRecord): "ok" | "incomplete" | "missing" {
  try {
    const st = lstatSync(quarantinedPath(quarantineDir, record));
    if (!st.isFile()) return "missing";
    return st.size === record.size ? "ok" : "incomplete";
  } catch {
    return "missing";
  }
}

/**
 * Deletes a quarantined file and then its record (the record last: a crash in between leaves a record
 * whose file is "missing", never a file nobody knows about). A file already gone is not an error.
 */
export function deleteEntry(quarantineDir: string, record: VaultRecord): void {
  const path = quarantinedPath(quarantineDir, record);
  try {
    if (lstatSync(path).isFile()) unlinkSync(path);
  } catch (err) {
    if (fsCode(err) !== "ENOENT") throw new VaultError(`Cannot delete the quarantined file "${displayPath(path)}": ${fsReason(err)}`);
  }
  removeRecord(quarantineDir, record.id);
}

/** The pid in the name of a record temp file in the vault (".rec-<pid>-…"), or undefined for other names. */
export function recordTempPid(name: string): number | undefined {
  const m = /^\.rec-(\d+)-/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The record as JSON for `onacc quarantine list --json`: byte fields as base64 and as display text. */
export function publicRecord(quarantineDir: string, record: VaultRecord): Record<string, unknown> {
  return {
    id: record.id,
    time: record.time,
    action: record.action,
    state: recordState(quarantineDir, record),
    originalPath: displayPath(record.originalPath),
    originalPathBase64: record.originalPath.toString("base64"),
    quarantinedPath: displayPath(quarantinedPath(quarantineDir, record)),
    quarantinedPathBase64: quarantinedPath(quarantineDir, record).toString("base64"),
    uid: record.uid,
    gid: record.gid,
    mode: `0${(record.mode & 0o7777).toString(8).padStart(3, "0")}`,
    size: record.size,
    sha256: record.sha256,
    signatures: record.signatures,
  };
}

function _serialize(r: VaultRecord): string {
  const stored: v.InferOutput<typeof _stored> & { originalPathText: string } = {
    format: _RECORD_FORMAT,
    id: r.id,
    action: r.action,
    time: r.time,
    originalPath: r.originalPath.toString("base64"),
    // For people reading the file; never read back.
    originalPathText: displayPath(r.originalPath),
    name: r.name.toString("base64"),
    uid: r.uid,
    gid: r.gid,
    mode: r.mode,
    size: r.size,
    sha256: r.sha256,
    signatures: r.signatures,
  };
  return `${JSON.stringify(stored, null, 2)}\n`;
}

function _parse(text: string, file: string, id: string): VaultRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new VaultError(`The quarantine record "${file}" is not JSON`);
  }
  const parsed = v.safeParse(_stored, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    throw new VaultError(`The quarantine record "${file}" is damaged${where ? ` (${where}: ${issue.message})` : `: ${issue.message}`}`);
  }
  const s = parsed.output;
  if (s.id !== id) throw new VaultError(`The quarantine record "${file}" names another id (${s.id})`);
  const name = Buffer.from(s.name, "base64");
  if (name.includes(0x2f) || name.includes(0) || name.equals(Buffer.from(".")) || name.equals(Buffer.from(".."))) {
    throw new VaultError(`The quarantine record "${file}" is damaged (name: not a plain file name)`);
  }
  const originalPath = Buffer.from(s.originalPath, "base64");
  if (originalPath[0] !== 0x2f) throw new VaultError(`The quarantine record "${file}" is damaged (originalPath: not an absolute path)`);
  return {
    id: s.id,
    action: s.action,
    time: s.time,
    originalPath,
    name,
    uid: s.uid,
    gid: s.gid,
    mode: s.mode,
    size: s.size,
    sha256: s.sha256,
    signatures: s.signatures,
  };
}

function _sync(dir: string): void {
  try {
    syncDir(dir);
  } catch (err) {
    throw new VaultError(`Cannot make "${dir}" durable (fsync): ${err instanceof Error ? err.message : String(err)}`);
  }
}
