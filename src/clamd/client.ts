// The synchronous clamd client used by the scanner Workers (and the main thread): one connection per
// request, retried on transport failures, every step bounded by OnAccessCurlTimeout. Errors are outcomes.
import type { ClamdEndpoint } from "../config/types.ts";
import { ClamdError, type ClamdErrorKind } from "../errors.ts";
import {
  checkScanPath,
  command,
  parsePong,
  parseScanReply,
  parseVersion,
  quotePath,
  recordText,
  replyError,
  beyondStreamLimit,
  streamChunkBytes,
  type ReplyFailure,
  type ReplySubject,
} from "./protocol.ts";
import { ClamdSession } from "./session.ts";
import { Connection, describeEndpoint } from "./transport.ts";
import type { ScanOutcome } from "./types.ts";

export { describeEndpoint, resolveEndpoint } from "./transport.ts";
export { ClamdSession } from "./session.ts";

export interface ClamdClientOptions {
  endpoint: ClamdEndpoint;
  /** OnAccessCurlTimeout: bound on connecting, on each wait to send, and on waiting for a reply. */
  timeoutMs: number;
  /** Absolute bound (monotonic ms) on each request, whatever the per-step timeouts allow. */
  deadlineAt?: number;
  /** OnAccessRetryAttempts: extra attempts after a transport failure or timeout. */
  retries: number;
  /** StreamMaxLength in bytes, 0 = no limit: INSTREAM chunks never exceed it. */
  streamMaxLength: number;
}

/** Failures worth another attempt: the conversation broke, not clamd's answer about the request. */
const RETRYABLE: ReadonlySet<ClamdErrorKind> = new Set(["connect", "timeout", "protocol"]);

export class ClamdClient {
  readonly endpoint: ClamdEndpoint;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly streamMaxLength: number;
  private readonly deadlineAt: number;
  private readonly description: string;

  constructor(opts: ClamdClientOptions) {
    if (!(opts.timeoutMs > 0)) throw new RangeError(`clamd timeout must be positive, got ${opts.timeoutMs}`);
    if (!Number.isInteger(opts.retries) || opts.retries < 0) throw new RangeError(`clamd retries must be a whole number ≥ 0, got ${opts.retries}`);
    if (!Number.isInteger(opts.streamMaxLength) || opts.streamMaxLength < 0) {
      throw new RangeError(`StreamMaxLength must be a whole number of bytes ≥ 0, got ${opts.streamMaxLength}`);
    }
    this.endpoint = opts.endpoint;
    this.timeoutMs = opts.timeoutMs;
    this.retries = opts.retries;
    this.streamMaxLength = opts.streamMaxLength;
    this.deadlineAt = opts.deadlineAt ?? Infinity;
    this.description = describeEndpoint(opts.endpoint);
  }

  /** zPING → "PONG"; throws ClamdError after the configured retries. */
  ping(): void {
    this.request((conn) => {
      conn.send(command("PING"), "zPING");
      const r = parsePong(readOne(conn));
      if (!r.ok) throw replyError(this.description, "zPING", r);
    });
  }

  /** zVERSION: "ClamAV 1.4.6", or "ClamAV 1.4.6/27000/<date>" when clamd has an official database. */
  version(): string {
    return this.request((conn) => {
      conn.send(command("VERSION"), "zVERSION");
      const r = parseVersion(readOne(conn));
      if (!r.ok) throw replyError(this.description, "zVERSION", r);
      return r.version;
    });
  }

  /** zRELOAD: asks clamd to reload its database (it answers before reloading, in the background). */
  reload(): void {
    this.request((conn) => {
      conn.send(command("RELOAD"), "zRELOAD");
      const text = recordText(readOne(conn));
      if (text !== "RELOADING") throw replyError(this.description, "zRELOAD", failureOf(text));
    });
  }

  /**
   * clamd's PID from SO_PEERCRED on a unix connection (the engine never scans it, so clamd opening a file
   * cannot wait on onacc). undefined for TCP, and for PID 1: with systemd socket activation the listener
   * belongs to systemd, not clamd. Throws ClamdError when clamd cannot be reached.
   */
  peerPid(): number | undefined {
    if (this.endpoint.kind !== "unix") return undefined;
    return this.request((conn) => {
      const { pid } = conn.peerCredentials();
      // A PING makes the visit an ordinary, complete conversation for clamd.
      conn.send(command("PING"), "zPING");
      readOne(conn);
      return pid > 1 ? pid : undefined;
    });
  }

  /** zFILDES: passes the descriptor itself (unix sockets only); clamd reads the file through it. */
  scanFd(fd: number): ScanOutcome {
    if (this.endpoint.kind !== "unix") {
      return refused(`Cannot pass fd ${fd} to clamd at ${this.description}: descriptor passing needs a unix socket (use stream mode)`);
    }
    return this.scan("zFILDES", { kind: "fd" }, (conn) => {
      return readAfterSend(conn, conn.sendFileDescriptor(fd));
    });
  }

  /** zINSTREAM: the file's contents, read with pread64 from offset 0; works for any fd and any name. */
  scanStream(fd: number): ScanOutcome {
    const chunk = streamChunkBytes(this.streamMaxLength);
    return this.scan("zINSTREAM", { kind: "stream" }, (conn) => {
      const sent = conn.streamFile(fd, chunk);
      // clamd hung up without the reply reaching us (a reset can discard it); the size explains why. Behind
      // a TLS terminator the whole stream may even have been taken before the hang-up reached us.
      const overLimit = () =>
        new ClamdError("size-limit", `clamd at ${this.description} closed the stream after ${sent.bytes} bytes; StreamMaxLength is ${this.streamMaxLength}`);
      const explained = beyondStreamLimit(sent.bytes, this.streamMaxLength) && (sent.result === "peer-stopped" || this.endpoint.kind === "tls");
      let records: Uint8Array[];
      try {
        records = readAfterSend(conn, sent.result);
      } catch (err) {
        if (explained && err instanceof ClamdError && err.kind !== "timeout") throw overLimit();
        throw err;
      }
      if (records.length === 0 && explained) throw overLimit();
      return records;
    });
  }

  /**
   * zCONTSCAN (or zALLMATCHSCAN: every matching signature) by path; clamd opens the file itself. Refuses
   * (kind "refused", attempts 0) a path it cannot send safely: relative, too long, or with a line break.
   */
  scanPath(path: string | Uint8Array, opts: { allmatch?: boolean } = {}): ScanOutcome {
    const name = opts.allmatch ? "ALLMATCHSCAN" : "CONTSCAN";
    const checked = checkScanPath(path, name);
    if ("reason" in checked) return refused(`Cannot scan ${quotePath(path)} by path: it ${checked.reason}`);
    return this.scan(`z${name}`, { kind: "path", path: checked.bytes }, (conn) => {
      const result = conn.send(command(name, checked.bytes), `z${name}`);
      return readAfterSend(conn, result);
    });
  }

  /** IDSESSION: one connection for many requests until end(). Throws ClamdError when clamd is unreachable. */
  session(): ClamdSession {
    return this.request((conn) => ClamdSession.start(conn, this.streamMaxLength), { keepOpen: true });
  }

  /** One request on a fresh connection, retried on transport failures; throws the last ClamdError. */
  private request<T>(run: (conn: Connection) => T, opts: { keepOpen?: boolean } = {}): T {
    for (let attempt = 1; ; attempt++) {
      let conn: Connection | undefined;
      let keep = false;
      try {
        conn = Connection.open(this.endpoint, this.timeoutMs, this.deadlineAt);
        const value = run(conn);
        keep = opts.keepOpen === true;
        return value;
      } catch (err) {
        const error = asClamdError(err, this.description);
        if (!RETRYABLE.has(error.kind) || attempt > this.retries) throw error;
      } finally {
        if (!keep) conn?.close();
      }
    }
  }

  private scan(what: string, subject: ReplySubject, run: (conn: Connection) => Uint8Array[]): ScanOutcome {
    let attempts = 0;
    for (;;) {
      attempts++;
      let error: ClamdError;
      let conn: Connection | undefined;
      try {
        conn = Connection.open(this.endpoint, this.timeoutMs, this.deadlineAt);
        const parsed = parseScanReply(run(conn), subject);
        if (parsed.ok) return { ok: true, verdict: parsed.verdict, attempts };
        error = replyError(this.description, what, parsed);
      } catch (err) {
        error = asClamdError(err, this.description);
      } finally {
        conn?.close();
      }
      if (!RETRYABLE.has(error.kind) || attempts > this.retries) return { ok: false, error, attempts };
    }
  }
}

/** The single record of a one-record reply (PING, VERSION, RELOAD). */
function readOne(conn: Connection): Uint8Array {
  const r = conn.readRecord();
  if (r === undefined) throw new ClamdError("protocol", `clamd at ${conn.description} closed the connection without answering`);
  return r;
}

/** Every record of a one-shot reply; after clamd stopped taking the request, whatever it managed to say. */
function readAfterSend(conn: Connection, result: "sent" | "peer-stopped"): Uint8Array[] {
  if (result === "sent") return conn.readUntilClosed();
  const records: Uint8Array[] = [];
  try {
    for (let r = conn.readRecord(); r !== undefined; r = conn.readRecord()) records.push(r);
  } catch (err) {
    // A reset may arrive after the reply; the reply is what counts.
    if (records.length === 0) throw err;
  }
  return records;
}

/** An outcome for a request refused before anything was sent. */
function refused(message: string): ScanOutcome {
  return { ok: false, error: new ClamdError("refused", message), attempts: 0 };
}

function failureOf(text: string): ReplyFailure {
  return { ok: false, kind: "protocol", message: `unexpected reply ${JSON.stringify(text)}` };
}

function asClamdError(err: unknown, description: string): ClamdError {
  if (err instanceof ClamdError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ClamdError("connect", `Talking to clamd at ${description} failed: ${message}`, { cause: err });
}
