// IDSESSION: many requests over one clamd connection, one at a time; clamd numbers its replies "N: ".
// A session never retries or reconnects by itself: after a failure it is closed and the caller decides.
import { ClamdError } from "../errors.ts";
import {
  checkScanPath,
  command,
  parsePong,
  parseScanReply,
  parseVersion,
  quotePath,
  recordText,
  replyError,
  splitSessionReply,
  beyondStreamLimit,
  streamChunkBytes,
  type ReplySubject,
} from "./protocol.ts";
import type { Connection, SendResult } from "./transport.ts";
import type { ScanOutcome } from "./types.ts";

export class ClamdSession {
  private conn: Connection | undefined;
  private answered = 0;
  readonly description: string;

  private constructor(
    conn: Connection,
    private readonly streamMaxLength: number,
  ) {
    this.conn = conn;
    this.description = conn.description;
  }

  /** Sends zIDSESSION on an open connection (clamd does not answer it). */
  static start(conn: Connection, streamMaxLength: number): ClamdSession {
    if (conn.send(command("IDSESSION"), "zIDSESSION") !== "sent") {
      throw new ClamdError("connect", `clamd at ${conn.description} closed the connection before the session began`);
    }
    return new ClamdSession(conn, streamMaxLength);
  }

  /** False once ended or broken; every request then fails with kind "connect". */
  get open(): boolean {
    return this.conn !== undefined;
  }

  /** Requests answered on this one connection; equals clamd's last reply number, which restarts per connection. */
  get requests(): number {
    return this.answered;
  }

  ping(): void {
    const body = this.exchange("zPING", (c) => c.send(command("PING"), "zPING"));
    const r = parsePong(body);
    if (!r.ok) throw this.fail(replyError(this.description, "zPING", r));
  }

  version(): string {
    const body = this.exchange("zVERSION", (c) => c.send(command("VERSION"), "zVERSION"));
    const r = parseVersion(body);
    if (!r.ok) throw this.fail(replyError(this.description, "zVERSION", r));
    return r.version;
  }

  scanFd(fd: number): ScanOutcome {
    if (this.conn !== undefined && this.conn.endpoint.kind !== "unix") {
      return refusedOutcome(`Cannot pass fd ${fd} to clamd at ${this.description}: descriptor passing needs a unix socket (use stream mode)`);
    }
    return this.scan("zFILDES", { kind: "fd" }, (c) => c.sendFileDescriptor(fd));
  }

  scanStream(fd: number): ScanOutcome {
    const chunk = streamChunkBytes(this.streamMaxLength);
    let bytes = 0;
    return this.scan(
      "zINSTREAM",
      { kind: "stream" },
      (c) => {
        const sent = c.streamFile(fd, chunk);
        bytes = sent.bytes;
        return sent.result;
      },
      // clamd hung up without its reply reaching us (a reset can discard it); the size explains why.
      () =>
        beyondStreamLimit(bytes, this.streamMaxLength)
          ? new ClamdError("size-limit", `clamd at ${this.description} closed the stream after ${bytes} bytes; StreamMaxLength is ${this.streamMaxLength}`)
          : undefined,
    );
  }

  /** zSCAN by path. clamd accepts neither CONTSCAN nor ALLMATCHSCAN inside IDSESSION; for one file SCAN is the same. */
  scanPath(path: string | Uint8Array, opts: { allmatch?: boolean } = {}): ScanOutcome {
    if (opts.allmatch) {
      return refusedOutcome(`Cannot scan ${quotePath(path)} with all-match in a session: clamd accepts ALLMATCHSCAN only on its own connection`);
    }
    const checked = checkScanPath(path, "SCAN");
    if ("reason" in checked) return refusedOutcome(`Cannot scan ${quotePath(path)} by path: it ${checked.reason}`);
    return this.scan("zSCAN", { kind: "path", path: checked.bytes }, (c) => c.send(command("SCAN", checked.bytes), "zSCAN"));
  }

  /** zEND and close; safe to call more than once. */
  end(): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    try {
      conn.send(command("END"), "zEND");
    } catch {
      // Closing is what matters; clamd ends the session when the connection goes away too.
    } finally {
      conn.close();
    }
  }

  private scan(
    what: string,
    subject: ReplySubject,
    send: (conn: Connection) => SendResult,
    explainHangup?: () => ClamdError | undefined,
  ): ScanOutcome {
    const progress: { sent: SendResult | undefined } = { sent: undefined };
    try {
      const body = this.exchange(what, (c) => (progress.sent = send(c)));
      const parsed = parseScanReply([body], subject);
      // After a refusal clamd drops the session (or takes no more on it); a verdict keeps it going.
      if (!parsed.ok) throw this.fail(replyError(this.description, what, parsed));
      return { ok: true, verdict: parsed.verdict, attempts: 1 };
    } catch (err) {
      let error = err instanceof ClamdError ? err : new ClamdError("connect", `Talking to clamd at ${this.description} failed: ${String(err)}`, { cause: err });
      if (progress.sent === "peer-stopped" && error.kind !== "io" && error.kind !== "size-limit") error = explainHangup?.() ?? error;
      return { ok: false, error, attempts: progress.sent === undefined && error.kind === "connect" ? 0 : 1 };
    }
  }

  /** Sends one request and returns the body of its numbered reply; any failure closes the session. */
  private exchange(what: string, send: (conn: Connection) => SendResult): Uint8Array {
    const conn = this.conn;
    if (!conn) throw new ClamdError("connect", `The session with clamd at ${this.description} is closed`);
    try {
      this.discardStale(conn);
      const id = this.answered + 1;
      const result = send(conn);
      for (;;) {
        const record = conn.readRecord();
        if (record === undefined) {
          throw new ClamdError("protocol", `clamd at ${this.description} closed the session without answering ${what}`);
        }
        const reply = splitSessionReply(record);
        if (!reply) throw new ClamdError("protocol", `clamd at ${this.description} answered ${what} without a request number: ${JSON.stringify(recordText(record))}`);
        if (reply.id < id) continue; // a leftover record of an earlier request (a directory reports several)
        if (reply.id > id) throw new ClamdError("protocol", `clamd at ${this.description} answered request ${reply.id} when ${id} was due`);
        this.answered = id;
        // clamd stopped taking the request (e.g. a stream over StreamMaxLength) and closes the session.
        if (result === "peer-stopped") this.closeConnection();
        return reply.body;
      }
    } catch (err) {
      this.closeConnection();
      throw err;
    }
  }

  /** Drops leftover records; notices a session clamd closed while idle (its ReadTimeout) before sending into it. */
  private discardStale(conn: Connection): void {
    const idleClosed = (detail: string) =>
      new ClamdError("connect", `clamd at ${this.description} closed the session while it was idle (its ReadTimeout)${detail}`);
    while (conn.peerHasSpoken()) {
      let record: Uint8Array | undefined;
      try {
        record = conn.readRecord();
      } catch (err) {
        // clamd says "COMMAND READ TIMED OUT\n" (newline, not NUL) and hangs up.
        throw idleClosed(err instanceof ClamdError && err.kind === "protocol" ? `: ${err.message}` : "");
      }
      if (record === undefined) throw idleClosed("");
      const reply = splitSessionReply(record);
      if (!reply || reply.id > this.answered) {
        throw new ClamdError("protocol", `clamd at ${this.description} sent an unasked reply: ${JSON.stringify(recordText(record))}`);
      }
    }
  }

  private fail(error: ClamdError): ClamdError {
    this.closeConnection();
    return error;
  }

  private closeConnection(): void {
    this.conn?.close();
    this.conn = undefined;
  }
}

function refusedOutcome(message: string): ScanOutcome {
  return { ok: false, error: new ClamdError("refused", message), attempts: 0 };
}
