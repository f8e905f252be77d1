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
const STREAM_CHUNK_BYTES = 64 * 1024;

/**
 * Longest reply record accepted: clamd's are a path (≤ PATH_MAX) and signature names. A peer that sends
 * more without a NUL is not clamd, and must not make onacc buffer without bound until the timeout.
 */
export const MAX_RECORD_BYTES = 64 * 1024;

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

/** Why the path in bytes[0..length) cannot be sent in a z-command, or undefined when it can (allocates only to say why). */
export function scanPathProblem(bytes: Uint8Array, length: number, commandName: string): string | undefined {
  if (length === 0) return "is empty";
  // clamd resolves a relative path against its own working directory, not ours.
  if (bytes[0] !== 0x2f) return "is not absolute (clamd would resolve it against its own working directory)";
  for (let i = 0; i < length; i++) {
    const b = bytes[i]!;
    if (b === 0) return "contains a NUL byte, which ends a z-command";
    // The z-protocol itself carries a newline, but clamd writes the path unescaped into its log and into
    // VirusEvent's %f / CLAM_VIRUSEVENT_FILENAME: a crafted name could forge log lines. fd and stream
    // modes send no name at all.
    if (b === 0x0a || b === 0x0d) return "contains a line break (clamd writes paths unescaped into its log and VirusEvent)";
  }
  const limit = CLAMD_COMMAND_BUFFER - (commandName.length + 3); // "z" + name + " " + path + NUL
  if (length > limit) return `is ${length} bytes; clamd's ${commandName} accepts at most ${limit}`;
  return undefined;
}

/** A path as a person reads it in a message: quoted, with control characters and bad UTF-8 escaped. */
export function quotePath(path: string | Uint8Array): string {
  const text = typeof path === "string" ? path : decoder.decode(path);
  return JSON.stringify(text);
}

/** Who a reply record is about, as clamd names it before ": ": a path, a passed descriptor, or a stream. */
export type ReplySubject = "path" | "fd" | "stream";

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

const CLEAN_VERDICT: Verdict = Object.freeze({ kind: "clean" });
/** The one clean reply: shared, never to be changed by whoever receives it. */
export const CLEAN_REPLY: ParsedReply = Object.freeze({ ok: true, verdict: CLEAN_VERDICT });

const STREAM_OK = encoder.encode("stream: OK");
const STREAM_PREFIX = encoder.encode("stream: ");

function equalsAt(buf: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (buf[start + i] !== expected[i]) return false;
  return true;
}

function startsWithAt(buf: Uint8Array, start: number, end: number, prefix: Uint8Array, prefixLength = prefix.length): boolean {
  if (end - start < prefixLength) return false;
  for (let i = 0; i < prefixLength; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

/** The record is "SUBJECT: OK" exactly — what nearly every scan answers. Allocates nothing. */
function isOkRecord(buf: Uint8Array, start: number, end: number, kind: ReplySubject, path: Uint8Array, pathLength: number): boolean {
  if (kind === "stream") return equalsAt(buf, start, end, STREAM_OK);
  // ": OK" at the end.
  if (end - start < 4 || buf[end - 4] !== 0x3a || buf[end - 3] !== 0x20 || buf[end - 2] !== 0x4f || buf[end - 1] !== 0x4b) return false;
  if (kind === "path") return end - 4 - start === pathLength && startsWithAt(buf, start, end, path, pathLength);
  // "fd[" digits "]"
  if (end - start < 9 || buf[start] !== 0x66 || buf[start + 1] !== 0x64 || buf[start + 2] !== 0x5b || buf[end - 5] !== 0x5d) return false;
  for (let i = start + 3; i < end - 5; i++) if (buf[i]! < 0x30 || buf[i]! > 0x39) return false;
  return true;
}

/** Byte length of the subject and its ": " at the start of `record`, or -1 when the record has none. */
function subjectLength(record: Uint8Array, kind: ReplySubject, path: Uint8Array): number {
  if (kind === "stream") return startsWithAt(record, 0, record.length, STREAM_PREFIX) ? STREAM_PREFIX.length : -1;
  if (kind === "fd") {
    const m = /^fd\[\d+\]: /.exec(decoder.decode(record.subarray(0, 32)));
    return m ? m[0].length : -1;
  }
  const n = path.length;
  return startsWithAt(record, 0, record.length, path) && record[n] === 0x3a && record[n + 1] === 0x20 ? n + 2 : -1;
}

/** A signature name as reported; ExtendedDetectionInfo appends "(md5:size)", which is not part of the name. */
function signatureName(text: string): string {
  return text.replace(/\([0-9a-f]{32}:\d+\)$/, "");
}

function meaningOf(recordBytes: Uint8Array, kind: ReplySubject, path: Uint8Array): RecordMeaning {
  const skip = subjectLength(recordBytes, kind, path);
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
  if (kind === "path" && startsWithAt(recordBytes, 0, recordBytes.length, path)) {
    if (record.endsWith(": OK")) return { kind: "clean" };
    if (record.endsWith("ERROR")) return { kind: "file-error", message: record };
  }
  if (record.startsWith(SIZE_LIMIT)) return { kind: "failure", errorKind: "size-limit", message: record };
  if (REFUSALS.includes(record) || record.endsWith(" ERROR")) return { kind: "failure", errorKind: "refused", message: record };
  return { kind: "failure", errorKind: "protocol", message: `unexpected reply ${JSON.stringify(record)}` };
}

/**
 * The verdict of one scan, built record by record as the reply arrives (ALLMATCHSCAN and directory scans
 * send several): any FOUND wins; otherwise an error about the file; otherwise clean. A refusal or an
 * unreadable record is never turned into a verdict. Reusable: reset() per scan; an "OK" record costs no
 * allocation, and a clean result is the shared CLEAN_REPLY.
 */
export class ReplyTally {
  private kind: ReplySubject = "stream";
  private path: Uint8Array = new Uint8Array(0);
  private pathLength = 0;
  private pathView: Uint8Array | undefined;
  private signatures: string[] | undefined;
  private fileError: string | undefined;
  private failure: ReplyFailure | undefined;
  /** Records added since reset(). */
  records = 0;

  /** A new scan about `kind`; for "path", the path is path[0..pathLength) (kept by reference until the next reset). */
  reset(kind: ReplySubject, path?: Uint8Array, pathLength = path?.length ?? 0): void {
    this.kind = kind;
    if (path !== undefined) {
      if (path !== this.path || pathLength !== this.pathLength) this.pathView = undefined;
      this.path = path;
      this.pathLength = pathLength;
    }
    this.signatures = undefined;
    this.fileError = undefined;
    this.failure = undefined;
    this.records = 0;
  }

  /** One record: buf[start..end), without its NUL. */
  add(buf: Uint8Array, start: number, end: number): void {
    this.records++;
    if (this.failure !== undefined) return;
    if (isOkRecord(buf, start, end, this.kind, this.path, this.pathLength)) return;
    this.pathView ??= this.path.subarray(0, this.pathLength);
    const m = meaningOf(buf.slice(start, end), this.kind, this.pathView);
    if (m.kind === "failure") this.failure = { ok: false, kind: m.errorKind, message: m.message };
    else if (m.kind === "found") {
      this.signatures ??= [];
      if (!this.signatures.includes(m.signature)) this.signatures.push(m.signature);
    } else if (m.kind === "file-error") this.fileError ??= m.message;
  }

  result(): ParsedReply {
    if (this.records === 0) return { ok: false, kind: "protocol", message: "clamd closed the connection without answering" };
    if (this.failure !== undefined) return this.failure;
    if (this.signatures !== undefined) return { ok: true, verdict: { kind: "infected", signatures: this.signatures } };
    if (this.fileError !== undefined) return { ok: true, verdict: { kind: "error", message: this.fileError } };
    return CLEAN_REPLY;
  }
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
