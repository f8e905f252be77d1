// clamd's wire protocol without any I/O: z-command bytes, INSTREAM chunk framing, path checks, and parsing
// of NUL-terminated reply records into verdicts. Replies are bytes: paths in them need not be UTF-8.
import { ClamdError, type ClamdErrorKind } from "../errors.ts";
import type { Verdict } from "./types.ts";

/**
 * clamd's per-connection command buffer (PATH_MAX + 8 in clamd/server-th.c): a command, its argument and
 * the terminating NUL must fit, or clamd drops the connection without a reply.
 */
export const CLAMD_COMMAND_BUFFER = 4096 + 8;

/** The chunk size for INSTREAM: big enough to keep syscalls few, small enough for clamd's reads. */
export const STREAM_CHUNK_BYTES = 64 * 1024;

/** INSTREAM chunk size for a StreamMaxLength (0 = no limit): clamd refuses a chunk larger than what is left. */
export function streamChunkBytes(streamMaxLength: number): number {
  return streamMaxLength > 0 ? Math.max(1, Math.min(streamMaxLength, STREAM_CHUNK_BYTES)) : STREAM_CHUNK_BYTES;
}

/** Whether a stream clamd cut off after `bytes` is explained by StreamMaxLength (0 = no limit). */
export function beyondStreamLimit(bytes: number, streamMaxLength: number): boolean {
  return streamMaxLength > 0 && bytes > streamMaxLength;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD: only for messages shown to people

/** "zNAME\0" or "zNAME argument\0". */
export function command(name: string, argument?: Uint8Array): Uint8Array {
  const head = encoder.encode(argument ? `z${name} ` : `z${name}`);
  const out = new Uint8Array(new ArrayBuffer(head.length + (argument?.length ?? 0) + 1));
  out.set(head);
  if (argument) out.set(argument, head.length);
  return out;
}

/** The bytes to send for a path in a z-command, or why it cannot be sent safely. */
export function checkScanPath(path: string | Uint8Array, commandName: string): { bytes: Uint8Array } | { reason: string } {
  const bytes = typeof path === "string" ? encoder.encode(path) : path;
  if (bytes.length === 0) return { reason: "is empty" };
  if (bytes.includes(0)) return { reason: "contains a NUL byte, which ends a z-command" };
  // clamd resolves a relative path against its own working directory, not ours.
  if (bytes[0] !== 0x2f) return { reason: "is not absolute (clamd would resolve it against its own working directory)" };
  // The z-protocol itself carries a newline, but clamd writes the path unescaped into its log and into
  // VirusEvent's %f / CLAM_VIRUSEVENT_FILENAME: a crafted name could forge log lines. fd and stream
  // modes send no name at all.
  if (bytes.includes(0x0a) || bytes.includes(0x0d)) return { reason: "contains a line break (clamd writes paths unescaped into its log and VirusEvent)" };
  const limit = CLAMD_COMMAND_BUFFER - (commandName.length + 3); // "z" + name + " " + path + NUL
  if (bytes.length > limit) return { reason: `is ${bytes.length} bytes; clamd's ${commandName} accepts at most ${limit}` };
  return { bytes };
}

/** A path as a person reads it in a message: quoted, with control characters and bad UTF-8 escaped. */
export function quotePath(path: string | Uint8Array): string {
  const text = typeof path === "string" ? path : decoder.decode(path);
  return JSON.stringify(text);
}

/** Who a reply record is about, as clamd names it before ": ". */
export type ReplySubject = { kind: "path"; path: Uint8Array } | { kind: "fd" } | { kind: "stream" };

/** What one or more reply records of a scan mean: a verdict, or why there is none. */
export type ParsedReply = { ok: true; verdict: Verdict } | ReplyFailure;

/** A reply that is not a verdict: clamd refused the request, or the reply could not be understood. */
export interface ReplyFailure {
  ok: false;
  kind: ClamdErrorKind;
  message: string;
}

type RecordMeaning =
  | { kind: "clean" }
  | { kind: "found"; signature: string }
  | { kind: "file-error"; message: string }
  | { kind: "failure"; errorKind: ClamdErrorKind; message: string };

const SIZE_LIMIT = "INSTREAM size limit exceeded";
// Statuses clamd gives for an object it scanned and found nothing in (scanner.c).
const CLEAN_STATUSES = new Set(["OK", "Empty file"]);
// Paths clamd's own ExcludePath/CrossFilesystems rules skip: not scanned at all, so no verdict.
const SKIPPED_STATUSES = new Set(["Excluded", "Excluded (another filesystem)"]);
// Answers without a subject: clamd refused the request itself, not a file.
const REFUSALS = ["UNKNOWN COMMAND", "COMMAND UNAVAILABLE", "COMMAND READ TIMED OUT"];

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Byte length of the subject and its ": " at the start of `record`, or -1 when the record has none. */
function subjectLength(record: Uint8Array, subject: ReplySubject): number {
  if (subject.kind === "stream") return startsWith(record, encoder.encode("stream: ")) ? 8 : -1;
  if (subject.kind === "fd") {
    const m = /^fd\[\d+\]: /.exec(decoder.decode(record.subarray(0, 32)));
    return m ? m[0].length : -1;
  }
  const withColon = new Uint8Array(subject.path.length + 2);
  withColon.set(subject.path);
  withColon.set([0x3a, 0x20], subject.path.length);
  return startsWith(record, withColon) ? withColon.length : -1;
}

/** A signature name as reported; ExtendedDetectionInfo appends "(md5:size)", which is not part of the name. */
function signatureName(text: string): string {
  return text.replace(/\([0-9a-f]{32}:\d+\)$/, "");
}

function meaningOf(recordBytes: Uint8Array, subject: ReplySubject): RecordMeaning {
  const skip = subjectLength(recordBytes, subject);
  const record = decoder.decode(recordBytes);
  if (record.endsWith(" FOUND")) {
    // Parse from the right: a path may contain ": ", a signature name never does.
    const body = record.slice(0, -" FOUND".length);
    const sep = body.lastIndexOf(": ");
    if (sep >= 0 && body.length > sep + 2) return { kind: "found", signature: signatureName(body.slice(sep + 2)) };
  }
  if (skip >= 0) {
    const status = decoder.decode(recordBytes.subarray(skip));
    if (CLEAN_STATUSES.has(status)) return { kind: "clean" };
    if (SKIPPED_STATUSES.has(status)) return { kind: "file-error", message: `${status}: clamd's own configuration skipped it, nothing was scanned` };
    if (status.startsWith("ALLMATCHSCAN command disabled")) return { kind: "failure", errorKind: "refused", message: status };
    if (status.endsWith("ERROR")) return { kind: "file-error", message: status };
    return { kind: "failure", errorKind: "protocol", message: `unexpected reply ${JSON.stringify(record)}` };
  }
  // A record about another object than the one asked for: a file inside a scanned directory.
  if (subject.kind === "path" && startsWith(recordBytes, subject.path)) {
    if (record.endsWith(": OK")) return { kind: "clean" };
    if (record.endsWith("ERROR")) return { kind: "file-error", message: record };
  }
  if (record.startsWith(SIZE_LIMIT)) return { kind: "failure", errorKind: "size-limit", message: record };
  if (REFUSALS.includes(record) || record.endsWith(" ERROR")) return { kind: "failure", errorKind: "refused", message: record };
  return { kind: "failure", errorKind: "protocol", message: `unexpected reply ${JSON.stringify(record)}` };
}

/**
 * The verdict of one scan from all its reply records (ALLMATCHSCAN sends one FOUND record per signature).
 * Any FOUND wins; otherwise an error about the file; otherwise clean. A refusal or an unreadable record
 * is never turned into a verdict.
 */
export function parseScanReply(records: readonly (Uint8Array | string)[], subject: ReplySubject): ParsedReply {
  if (records.length === 0) return { ok: false, kind: "protocol", message: "clamd closed the connection without answering" };
  const signatures: string[] = [];
  let fileError: string | undefined;
  for (const r of records) {
    const m = meaningOf(typeof r === "string" ? encoder.encode(r) : r, subject);
    if (m.kind === "failure") return { ok: false, kind: m.errorKind, message: m.message };
    if (m.kind === "found" && !signatures.includes(m.signature)) signatures.push(m.signature);
    if (m.kind === "file-error") fileError ??= m.message;
  }
  if (signatures.length > 0) return { ok: true, verdict: { kind: "infected", signatures } };
  if (fileError !== undefined) return { ok: true, verdict: { kind: "error", message: fileError } };
  return { ok: true, verdict: { kind: "clean" } };
}

/** The reply to PING: "PONG", or why not. */
export function parsePong(record: Uint8Array | string): { ok: true } | ReplyFailure {
  const text = typeof record === "string" ? record : decoder.decode(record);
  if (text === "PONG") return { ok: true };
  return unexpected(text);
}

/** The reply to VERSION: "ClamAV 1.4.6" or "ClamAV 1.4.6/27000/Mon Jan  1 00:00:00 2024". */
export function parseVersion(record: Uint8Array | string): { ok: true; version: string } | ReplyFailure {
  const text = typeof record === "string" ? record : decoder.decode(record);
  if (/^ClamAV \S+/.test(text)) return { ok: true, version: text };
  return unexpected(text);
}

/** Splits an IDSESSION reply "N: body" into its request number and body. */
export function splitSessionReply(record: Uint8Array): { id: number; body: Uint8Array } | undefined {
  let i = 0;
  let id = 0;
  while (i < record.length && i < 10 && record[i]! >= 0x30 && record[i]! <= 0x39) id = id * 10 + (record[i++]! - 0x30);
  if (i === 0 || record[i] !== 0x3a || record[i + 1] !== 0x20) return undefined;
  return { id, body: record.subarray(i + 2) };
}

function unexpected(text: string): ReplyFailure {
  if (REFUSALS.includes(text) || text.endsWith(" ERROR")) return { ok: false, kind: "refused", message: text };
  return { ok: false, kind: "protocol", message: `unexpected reply ${JSON.stringify(text)}` };
}

/** Text of a record for messages. */
export function recordText(record: Uint8Array): string {
  return decoder.decode(record);
}

/** A ClamdError for a reply that is not a verdict, naming clamd and the command. */
export function replyError(description: string, what: string, failure: ReplyFailure): ClamdError {
  switch (failure.kind) {
    case "size-limit":
      return new ClamdError("size-limit", `clamd at ${description} refused ${what}: "${failure.message}" (the file is larger than clamd's StreamMaxLength)`);
    case "refused":
      return new ClamdError("refused", `clamd at ${description} refused ${what}: "${failure.message}"`);
    default:
      return new ClamdError(failure.kind, `clamd at ${description} gave an unusable answer to ${what}: ${failure.message}`);
  }
}
