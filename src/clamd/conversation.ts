// One request to clamd on one endpoint as a state machine over a non-blocking connection: connect (and
// the TLS handshake), send the command (the fd by SCM_RIGHTS, the file by INSTREAM chunks, or a path),
// read the reply records, parse. Never waits and never retries: its owner polls and decides what next.
import { Errno, errnoName } from "../../ffi/errors.ts";
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT } from "../../ffi/poll.ts";
import { readAt } from "../../ffi/socket.ts";
import { ClamdError } from "../errors.ts";
import { TcpConnection, TlsConnection, UnixConnection, type Connection, type Target } from "./connection.ts";
import {
  beyondStreamLimit,
  CLAMD_COMMAND_BUFFER,
  MAX_RECORD_BYTES,
  parsePong,
  parseVersion,
  recordText,
  ReplyTally,
  replyError,
  streamChunkBytes,
  type ParsedReply,
} from "./protocol.ts";

/** What a conversation asks clamd. Numbers, so a slot can hold one without an object. */
export const Request = {
  /** zFILDES: the descriptor itself, over a unix socket. */
  fildes: 0,
  /** zINSTREAM: the file's contents, read with pread. */
  instream: 1,
  /** zCONTSCAN by path: clamd opens the file. */
  contscan: 2,
  /** zALLMATCHSCAN by path: every matching signature. */
  allmatch: 3,
  ping: 4,
  version: 5,
} as const;
export type Request = (typeof Request)[keyof typeof Request];

const REQUEST_NAMES = ["zFILDES", "zINSTREAM", "zCONTSCAN", "zALLMATCHSCAN", "zPING", "zVERSION"];

/** Whether a request is a scan (its reply is a verdict), not PING or VERSION. */
export function isScan(r: Request): boolean {
  return r <= Request.allmatch;
}

const encoder = new TextEncoder();
function bytesOf(text: string): Uint8Array {
  const b = encoder.encode(text);
  const out = new Uint8Array(new ArrayBuffer(b.length));
  out.set(b);
  return out;
}
// "zFILDES\0" and the byte that carries the descriptor, in one sendmsg(): clamd takes the descriptor
// with whichever byte it arrives on (clamd/server-th.c, readsock), and one write wakes it once.
const FILDES_BYTES = bytesOf("zFILDES\0\0");
const INSTREAM_BYTES = bytesOf("zINSTREAM\0");
const PING_BYTES = bytesOf("zPING\0");
const VERSION_BYTES = bytesOf("zVERSION\0");
const CONTSCAN_PREFIX = encoder.encode("zCONTSCAN ");
const ALLMATCH_PREFIX = encoder.encode("zALLMATCHSCAN ");

/** Bytes read from a socket per recv(); replies are small, so one buffer serves every conversation of a thread. */
const RECV_BYTES = 64 * 1024;
/** A reply record's own buffer to begin with: a path (PATH_MAX) and a signature name fit. */
const RECORD_START_BYTES = CLAMD_COMMAND_BUFFER + 512;
/** At most this many stream chunks per step, so one large file does not hold up every other conversation. */
const CHUNKS_PER_STEP = 16;
// Hint: a unix listener with a full backlog answers EAGAIN; poll cannot say when it has room.
const CONNECT_RETRY_MS = 5;
/** sendFrame(): the file could not be read and the conversation has ended (not an -errno of send). */
const FRAME_READ_FAILED = -0x10000;

/**
 * Buffers every conversation of one thread shares: a conversation fills them and is done with them
 * within one step, so N conversations in flight need one of each, not N.
 */
export class SharedIo {
  readonly recv = new Uint8Array(new ArrayBuffer(RECV_BYTES));
  /** An INSTREAM frame: 4-byte length, then up to 64 KiB of the file. */
  readonly frame: Uint8Array;
  readonly frameView: DataView;
  /** The conversation whose frame is in `frame` now, and where in its file that frame starts. */
  frameOwner: Conversation | undefined;
  frameOwnerPosition = -1;

  constructor(streamMaxLength: number) {
    this.frame = new Uint8Array(new ArrayBuffer(4 + streamChunkBytes(streamMaxLength)));
    this.frameView = new DataView(this.frame.buffer);
  }
}

const Phase = { idle: 0, connect: 1, connectLater: 2, send: 3, recv: 4, done: 5 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export class Conversation {
  private phase: Phase = Phase.idle;
  private conn: Connection | undefined;
  private unixConn: UnixConnection | undefined;
  private tcpConn: TcpConnection | undefined;
  private tlsConn: TlsConnection | undefined;
  private target!: Target;
  private request: Request = Request.ping;
  private fileFd = -1;
  private timeoutMs = 0;
  private streamMaxLength = 0;
  private hardDeadline = Infinity;
  private stepDeadline = Infinity;
  private retryAt = Infinity;

  // Sending: the command, then (INSTREAM) frames of the file.
  private command: Uint8Array = PING_BYTES;
  private commandLength = 0;
  private commandSent = 0;
  private pathCommand: Uint8Array | undefined;
  private filePosition = 0;
  private frameLength = -1;
  private frameSent = 0;
  /** The zero-length chunk that ends the stream has gone out. */
  private streamEnded = false;
  /** clamd answered or hung up before it took the whole request (e.g. a stream over its StreamMaxLength). */
  private peerStopped = false;
  /** The last send wait was for POLLIN only: TLS must read before it can write on. */
  private sendNeedsRead = false;

  // Receiving: a record that spans reads is gathered here.
  private record = new Uint8Array(new ArrayBuffer(RECORD_START_BYTES));
  private recordLength = 0;
  private readonly tally = new ReplyTally();
  private firstRecord: string | undefined;

  /** Why the conversation ended without an answer; undefined after a reply (see reply()). */
  error: ClamdError | undefined;
  /** SO_PEERCRED pid of the unix socket's listener once connected (0: unknown, or not unix). */
  peerPid = 0;

  constructor(
    private readonly io: SharedIo,
    /** Told once per unix connection who listens on it (0 = unknown). */
    private readonly onPeerPid?: (pid: number) => void,
  ) {}

  get done(): boolean {
    return this.phase === Phase.done;
  }

  get busy(): boolean {
    return this.phase !== Phase.idle && this.phase !== Phase.done;
  }

  /** The fd to poll and the events, or -1 when the conversation waits only for a time (see wakeAt). */
  get pollFd(): number {
    return this.phase === Phase.connect || this.phase === Phase.send || this.phase === Phase.recv ? this.conn!.fd : -1;
  }

  get pollEvents(): number {
    if (this.phase === Phase.send && !this.sendNeedsRead) return POLLOUT | POLLIN; // an early answer ends the send
    return this.conn?.waitEvents ?? 0;
  }

  /** When advance(0, now) must run even without poll readiness: a timeout, or a connect to try again. */
  get wakeAt(): number {
    return Math.min(this.stepDeadline, this.hardDeadline, this.retryAt);
  }

  /**
   * Starts `request` on `target`. `fd` is the file to scan (fildes, instream), never closed here; `path`
   * is path[0..pathLength) for contscan/allmatch, already checked (scanPathProblem). The step timeout
   * bounds each connect, each wait to send and each reply record; `hardDeadline` (monotonic ms) the whole.
   */
  start(
    target: Target,
    request: Request,
    fd: number,
    path: Uint8Array | undefined,
    pathLength: number,
    timeoutMs: number,
    streamMaxLength: number,
    hardDeadline: number,
    now: number,
  ): void {
    this.reset();
    this.target = target;
    this.request = request;
    this.fileFd = fd;
    this.timeoutMs = timeoutMs;
    this.streamMaxLength = streamMaxLength;
    this.hardDeadline = hardDeadline;
    this.stepDeadline = now + timeoutMs;
    this.prepareCommand(path, pathLength);
    if (request === Request.instream) this.tally.reset("stream");
    else if (request === Request.fildes) this.tally.reset("fd");
    else if (request === Request.contscan || request === Request.allmatch) this.tally.reset("path", path, pathLength);
    this.conn = this.connectionFor(target);
    this.phase = Phase.connect;
    try {
      this.connected(this.conn.open(target), now);
    } catch (err) {
      this.crashed(err);
    }
  }

  /** Goes on after poll() reported `revents` for pollFd, or with 0 when wakeAt has come. */
  advance(revents: number, now: number): void {
    if (!this.busy) return;
    try {
      this.step(revents, now);
    } catch (err) {
      this.crashed(err);
    }
  }

  /** The verdict of a scan that ended without error (a failure reply from clamd included). */
  reply(): ParsedReply {
    return this.tally.result();
  }

  /** PING/VERSION: the reply text. */
  get replyText(): string {
    return this.firstRecord ?? "";
  }

  /** Stops now and releases the socket (the file's fd stays the caller's). */
  abort(): void {
    this.conn?.close();
    this.phase = Phase.idle;
  }

  // ---- steps --------------------------------------------------------------------------------------

  private step(revents: number, now: number): void {
    if (revents === 0) {
      if (this.phase === Phase.connectLater && now >= this.retryAt && now < this.wakeDeadline()) {
        this.retryAt = Infinity;
        this.phase = Phase.connect;
        this.connected(this.conn!.proceed(), now);
        return;
      }
      if (now >= this.wakeDeadline()) this.fail(this.timedOut());
      return;
    }
    switch (this.phase) {
      case Phase.connect:
        this.connected(this.conn!.proceed(), now);
        return;
      case Phase.send:
        if (!this.sendNeedsRead && revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
          // clamd spoke while we were still sending: its answer (or a TLS session ticket, which is nothing).
          this.receive(now, true);
          if (this.phase !== Phase.send) return;
          if (!(revents & POLLOUT)) return;
        }
        this.send(now);
        return;
      case Phase.recv:
        this.receive(now, false);
        return;
    }
  }

  private wakeDeadline(): number {
    return Math.min(this.stepDeadline, this.hardDeadline);
  }

  private connected(step: "done" | "wait" | "later", now: number): void {
    if (step === "wait") return;
    if (step === "later") {
      this.phase = Phase.connectLater;
      this.retryAt = now + CONNECT_RETRY_MS;
      return;
    }
    if (this.target.endpoint.kind === "unix") {
      this.peerPid = this.conn!.peerPid();
      this.onPeerPid?.(this.peerPid);
    }
    this.phase = Phase.send;
    this.stepDeadline = now + this.timeoutMs;
    this.send(now);
  }

  private send(now: number): void {
    this.sendNeedsRead = false;
    const conn = this.conn!;
    let chunks = 0;
    for (;;) {
      let n: number;
      if (this.commandSent < this.commandLength) {
        n =
          this.request === Request.fildes && this.commandSent === 0
            ? conn.sendWithDescriptor(this.fileFd, this.command, this.commandLength)
            : conn.send(this.command, this.commandSent, this.commandLength - this.commandSent);
        if (n > 0) this.commandSent += n;
      } else if (this.request === Request.instream && !this.streamEnded) {
        if (chunks++ >= CHUNKS_PER_STEP) return; // poll again: POLLOUT is ready at once, others get a turn
        n = this.sendFrame();
        if (n === FRAME_READ_FAILED) return;
      } else {
        this.startReceiving(now);
        return;
      }
      if (n > 0) {
        this.stepDeadline = now + this.timeoutMs;
        continue;
      }
      if (n === -Errno.EAGAIN) {
        this.sendNeedsRead = conn.waitEvents === POLLIN;
        return;
      }
      if (n === -Errno.EPIPE || n === -Errno.ECONNRESET) {
        this.peerStopped = true;
        this.startReceiving(now);
        return;
      }
      if (n === -Errno.EBADF && this.request === Request.fildes) {
        this.fail(new ClamdError("io", `Cannot pass fd ${this.fileFd} to clamd at ${this.target.description}: EBADF (not an open descriptor)`));
        return;
      }
      this.fail(this.lost(-n, `sending ${this.sending()}`));
      return;
    }
  }

  /**
   * Sends (the rest of) the current INSTREAM frame: returns what the send returned, or FRAME_READ_FAILED
   * after ending the conversation because the file could not be read.
   * The frame lives in the thread's shared buffer: a frame left half-sent is read again from the file
   * (pread, same bytes) when its turn comes back and another conversation used the buffer meanwhile.
   */
  private sendFrame(): number {
    const io = this.io;
    const chunkBytes = io.frame.length - 4;
    if (this.frameLength < 0) {
      const n = readAt(this.fileFd, io.frame, 4, chunkBytes, this.filePosition);
      if (n < 0) {
        this.fail(new ClamdError("io", `Cannot read fd ${this.fileFd} at offset ${this.filePosition} to stream it to clamd: ${errnoName(-n)}`));
        return FRAME_READ_FAILED;
      }
      this.frameLength = n;
      this.frameSent = 0;
      io.frameView.setUint32(0, n, false);
      io.frameOwner = this;
      io.frameOwnerPosition = this.filePosition;
    } else if (io.frameOwner !== this || io.frameOwnerPosition !== this.filePosition) {
      io.frameView.setUint32(0, this.frameLength, false);
      const from = Math.max(0, this.frameSent - 4);
      const want = this.frameLength - from;
      const n = want > 0 ? readAt(this.fileFd, io.frame, 4 + from, want, this.filePosition + from) : 0;
      if (n < 0) {
        this.fail(new ClamdError("io", `Cannot read fd ${this.fileFd} at offset ${this.filePosition + from} to stream it to clamd: ${errnoName(-n)}`));
        return FRAME_READ_FAILED;
      }
      // The file shrank under us: the length already announced must still be sent.
      if (n < want) io.frame.fill(0, 4 + from + n, 4 + this.frameLength);
      io.frameOwner = this;
      io.frameOwnerPosition = this.filePosition;
    }
    const total = 4 + this.frameLength;
    const n = this.conn!.send(io.frame, this.frameSent, total - this.frameSent);
    if (n <= 0) return n;
    this.frameSent += n;
    if (this.frameSent === total) {
      if (this.frameLength === 0) this.streamEnded = true;
      else this.filePosition += this.frameLength;
      this.frameLength = -1;
    }
    return n;
  }

  private startReceiving(now: number): void {
    this.phase = Phase.recv;
    this.stepDeadline = now + this.timeoutMs;
    this.receive(now, false);
  }

  /**
   * Reads what is there. While still sending (`whileSending`), anything from clamd — data, its hang-up —
   * means it stopped taking the request: from then on the conversation only reads.
   */
  private receive(now: number, whileSending: boolean): void {
    const io = this.io;
    const conn = this.conn!;
    for (;;) {
      const n = conn.recv(io.recv, 0, io.recv.length);
      if (n > 0) {
        if (whileSending) {
          whileSending = false;
          this.peerStopped = true;
          this.phase = Phase.recv;
          this.stepDeadline = now + this.timeoutMs;
        }
        this.consume(io.recv, n, now);
        if (!this.busy) return;
        continue;
      }
      if (n === -Errno.EAGAIN) return;
      if (whileSending) {
        this.peerStopped = true;
        this.phase = Phase.recv;
      }
      if (n === 0) this.endOfReply(0);
      else if (n === -Errno.ECONNRESET || n === -Errno.EPIPE) this.endOfReply(-n);
      else this.fail(this.lost(-n, "reading its reply"));
      return;
    }
  }

  /** Splits received bytes into NUL-terminated records. */
  private consume(buf: Uint8Array, length: number, now: number): void {
    let start = 0;
    for (;;) {
      const nul = buf.indexOf(0, start);
      const end = nul < 0 || nul >= length ? length : nul;
      if (this.recordLength + (end - start) > MAX_RECORD_BYTES) {
        this.appendRecord(buf, start, Math.min(end, start + 64));
        this.fail(
          new ClamdError(
            "protocol",
            `clamd at ${this.target.description} sent a reply longer than ${MAX_RECORD_BYTES} bytes (${JSON.stringify(recordText(this.record.subarray(0, Math.min(this.recordLength, 40))))}…)`,
          ),
        );
        return;
      }
      if (end === length) {
        this.appendRecord(buf, start, end);
        return;
      }
      if (this.recordLength === 0) this.onRecord(buf, start, end);
      else {
        this.appendRecord(buf, start, end);
        this.onRecord(this.record, 0, this.recordLength);
        this.recordLength = 0;
      }
      if (!this.busy) return;
      this.stepDeadline = now + this.timeoutMs;
      start = end + 1;
    }
  }

  private appendRecord(buf: Uint8Array, start: number, end: number): void {
    const needed = this.recordLength + (end - start);
    if (needed > this.record.length) {
      const grown = new Uint8Array(new ArrayBuffer(Math.max(needed, this.record.length * 2)));
      grown.set(this.record.subarray(0, this.recordLength));
      this.record = grown;
    }
    this.record.set(buf.subarray(start, end), this.recordLength);
    this.recordLength = needed;
  }

  private onRecord(buf: Uint8Array, start: number, end: number): void {
    if (isScan(this.request)) {
      this.tally.add(buf, start, end);
      // FILDES and INSTREAM answer with one record; a path may be a directory with a record per file.
      if (this.request === Request.fildes || this.request === Request.instream) this.finish();
      return;
    }
    this.firstRecord = recordText(buf.subarray(start, end));
    const parsed = this.request === Request.ping ? parsePong(this.firstRecord) : parseVersion(this.firstRecord);
    if (parsed.ok) this.finish();
    else this.fail(replyError(this.target.description, REQUEST_NAMES[this.request]!, parsed));
  }

  /** clamd closed the connection (errno 0) or reset it. */
  private endOfReply(errno: number): void {
    const records = isScan(this.request) ? this.tally.records : this.firstRecord === undefined ? 0 : 1;
    // After clamd stopped taking the request, whatever it managed to say is what counts.
    if (this.peerStopped && records > 0) return this.finish();
    if (this.recordLength > 0) {
      const partial = recordText(this.record.subarray(0, this.recordLength));
      return this.fail(new ClamdError("protocol", `clamd at ${this.target.description} closed the connection in the middle of a reply (${JSON.stringify(partial)})`));
    }
    if (errno !== 0 && records === 0) return this.fail(this.lost(errno, "reading its reply"));
    if (!isScan(this.request) && records === 0) {
      return this.fail(new ClamdError("protocol", `clamd at ${this.target.description} closed the connection without answering`));
    }
    this.finish();
  }

  private finish(): void {
    const parsed = isScan(this.request) ? this.tally.result() : undefined;
    if (parsed !== undefined && !parsed.ok) {
      // No record at all: the hang-up may be explained by the size. Anything clamd said is its own answer.
      const explained = this.tally.records === 0 ? this.streamCutShort() : undefined;
      return this.end(explained ?? replyError(this.target.description, REQUEST_NAMES[this.request]!, parsed));
    }
    this.conn!.close();
    this.phase = Phase.done;
  }

  /** Ends with `error`; a connection lost while reading a stream's reply may be explained by its size. */
  private fail(error: ClamdError): void {
    // clamd hung up on a stream without its reply reaching us (a reset can discard it): the size explains why.
    const explained = this.phase === Phase.recv && error.kind !== "timeout" ? this.streamCutShort() : undefined;
    this.end(explained ?? error);
  }

  private end(error: ClamdError): void {
    this.error = error;
    this.conn?.close();
    this.phase = Phase.done;
  }

  /**
   * A size-limit error when a stream ended early and StreamMaxLength explains it. Behind a TLS terminator
   * the whole stream may even have been taken before the hang-up reached us.
   */
  private streamCutShort(): ClamdError | undefined {
    if (this.request !== Request.instream) return undefined;
    if (!beyondStreamLimit(this.filePosition, this.streamMaxLength)) return undefined;
    if (!this.peerStopped && this.target.endpoint.kind !== "tls") return undefined;
    return new ClamdError(
      "size-limit",
      `clamd at ${this.target.description} closed the stream after ${this.filePosition} bytes; StreamMaxLength is ${this.streamMaxLength}`,
    );
  }

  private timedOut(): ClamdError {
    const desc = this.target.description;
    const ms = this.timeoutMs;
    switch (this.phase) {
      case Phase.connect:
      case Phase.connectLater:
        return this.conn!.handshaking
          ? new ClamdError("timeout", `Timed out after ${ms} ms in the TLS handshake with clamd at ${desc}`)
          : new ClamdError("timeout", `Timed out after ${ms} ms connecting to clamd at ${desc}`);
      case Phase.send:
        return new ClamdError("timeout", `Timed out after ${ms} ms sending ${this.sending()} to clamd at ${desc}`);
      default:
        return new ClamdError("timeout", `Timed out after ${ms} ms waiting for a reply from clamd at ${desc}`);
    }
  }

  private sending(): string {
    if (this.commandSent < this.commandLength) return REQUEST_NAMES[this.request]!;
    return this.request === Request.instream ? "the stream" : REQUEST_NAMES[this.request]!;
  }

  private lost(e: number, doing: string): ClamdError {
    return new ClamdError("connect", `Lost the connection to clamd at ${this.target.description} while ${doing}: ${errnoName(e)}`);
  }

  /** A thrown ClamdError (a TLS refusal, a connect error) ends the conversation with it; anything else is a bug, reported the same way. */
  private crashed(err: unknown): void {
    if (err instanceof ClamdError) this.fail(err);
    else this.fail(new ClamdError("protocol", `Talking to clamd at ${this.target.description} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
  }

  // ---- set-up -------------------------------------------------------------------------------------

  private reset(): void {
    this.conn?.close();
    this.error = undefined;
    this.peerPid = 0;
    this.retryAt = Infinity;
    this.commandSent = 0;
    this.filePosition = 0;
    this.frameLength = -1;
    this.frameSent = 0;
    this.streamEnded = false;
    this.peerStopped = false;
    this.sendNeedsRead = false;
    this.recordLength = 0;
    this.firstRecord = undefined;
    this.tally.reset("stream");
    if (this.io.frameOwner === this) this.io.frameOwner = undefined;
  }

  private prepareCommand(path: Uint8Array | undefined, pathLength: number): void {
    switch (this.request) {
      case Request.fildes:
        this.command = FILDES_BYTES;
        break;
      case Request.instream:
        this.command = INSTREAM_BYTES;
        break;
      case Request.ping:
        this.command = PING_BYTES;
        break;
      case Request.version:
        this.command = VERSION_BYTES;
        break;
      default: {
        const prefix = this.request === Request.allmatch ? ALLMATCH_PREFIX : CONTSCAN_PREFIX;
        this.pathCommand ??= new Uint8Array(new ArrayBuffer(CLAMD_COMMAND_BUFFER));
        const cmd = this.pathCommand;
        cmd.set(prefix);
        cmd.set(path!.subarray(0, pathLength), prefix.length);
        cmd[prefix.length + pathLength] = 0;
        this.command = cmd;
        this.commandLength = prefix.length + pathLength + 1;
        return;
      }
    }
    this.commandLength = this.command.length;
  }

  private connectionFor(target: Target): Connection {
    switch (target.endpoint.kind) {
      case "unix":
        return (this.unixConn ??= new UnixConnection());
      case "tcp":
        return (this.tcpConn ??= new TcpConnection());
      case "tls":
        return (this.tlsConn ??= new TlsConnection());
    }
  }
}
