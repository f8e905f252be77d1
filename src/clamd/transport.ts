// One synchronous connection to clamd over a unix or TCP socket, or TLS over TCP (src/clamd/tls.ts). Every
// connect, handshake, send and receive waits in poll() with a bound, so a thread can never hang on a silent clamd.
import { lookup } from "node:dns/promises";
import { Errno, errnoName, SyscallError } from "../../ffi/errors.ts";
import { monotonicMs } from "../../ffi/libc.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  closeFd,
  encodeSockaddr,
  openStreamSocket,
  peerCredentials,
  pendingSocketError,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  pollOne,
  readAt,
  recvSome,
  sendDescriptor,
  sendSome,
  setTcpNoDelay,
  startConnect,
  type SocketAddress,
} from "../../ffi/socket.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { ClamdError } from "../errors.ts";
import { command, recordText } from "./protocol.ts";
import { TlsChannel } from "./tls.ts";

/**
 * An endpoint as messages show it: "unix:/run/clamav/clamd.ctl", "tcp://127.0.0.1:3310", "tcp://[::1]:3310",
 * "tls://clamd.example:3311" (a resolved TLS endpoint shows its name: "tls://clamd.example@10.0.0.5:3311").
 */
export function describeEndpoint(e: ClamdEndpoint): string {
  if (e.kind === "unix") return `unix:${e.path}`;
  const host = e.host.includes(":") && !e.host.startsWith("[") ? `[${e.host}]` : e.host;
  if (e.kind === "tls") {
    const named = e.servername !== undefined && e.servername !== e.host ? `${e.servername}@` : "";
    return `tls://${named}${host}:${e.port}`;
  }
  return `tcp://${host}:${e.port}`;
}

/** Dotted-quad IPv4 ("127.0.0.1") as 4 bytes, or undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p.startsWith("0"))) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/** Numeric IPv6 ("::1", "[fe80::1%2]", "::ffff:1.2.3.4") as 16 bytes and a numeric scope id, or undefined. */
export function parseIPv6(text: string): { address: Uint8Array; scopeId: number } | undefined {
  let t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  let scopeId = 0;
  const pct = t.indexOf("%");
  if (pct >= 0) {
    const scope = t.slice(pct + 1);
    if (!/^\d+$/.test(scope)) return undefined; // interface names would need if_nametoindex()
    scopeId = Number(scope);
    t = t.slice(0, pct);
  }
  if (!t.includes(":")) return undefined;
  const groups: number[] = [];
  const toGroups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const halves = t.split("::");
  if (halves.length > 2) return undefined;
  const head = toGroups(halves[0]!);
  const tail = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return undefined;
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    if (head.length !== 8) return undefined;
    groups.push(...head);
  }
  const address = new Uint8Array(16);
  groups.forEach((g, i) => {
    address[i * 2] = g >> 8;
    address[i * 2 + 1] = g & 0xff;
  });
  return { address, scopeId };
}

const LOOPBACK_V4 = new Uint8Array([127, 0, 0, 1]);
const LOOPBACK_V6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** The addresses to try for an endpoint, without DNS: numeric hosts and "localhost" only. */
export function socketAddresses(e: ClamdEndpoint): SocketAddress[] {
  if (e.kind === "unix") return [{ family: AF_UNIX, path: new TextEncoder().encode(e.path) }];
  const v4 = parseIPv4(e.host);
  if (v4) return [{ family: AF_INET, address: v4, port: e.port }];
  const v6 = parseIPv6(e.host);
  if (v6) return [{ family: AF_INET6, address: v6.address, port: e.port, scopeId: v6.scopeId }];
  if (e.host.toLowerCase() === "localhost") {
    return [
      { family: AF_INET, address: LOOPBACK_V4, port: e.port },
      { family: AF_INET6, address: LOOPBACK_V6, port: e.port, scopeId: 0 },
    ];
  }
  throw new ClamdError(
    "connect",
    `Cannot connect to clamd at ${describeEndpoint(e)}: host name "${e.host}" is not resolved (resolveEndpoint() must run at startup)`,
  );
}

/** How resolveEndpoint() looks a host name up (replaceable in tests). */
export type HostLookup = (host: string) => Promise<{ address: string; family: number }[]>;

const defaultLookup: HostLookup = (host) => lookup(host, { all: true });

/**
 * The endpoint with its host name replaced by a numeric address, looked up once (asynchronously, at startup)
 * so the synchronous client never waits on DNS. Unix sockets, numeric hosts and "localhost" come back as given.
 */
export async function resolveEndpoint(e: ClamdEndpoint, lookupHost: HostLookup = defaultLookup): Promise<ClamdEndpoint> {
  if (e.kind === "unix" || parseIPv4(e.host) || parseIPv6(e.host) || e.host.toLowerCase() === "localhost") return e;
  try {
    const found = await lookupHost(e.host);
    // IPv4 first, like getaddrinfo's usual order for a name with both.
    const first = found.find((a) => a.family === 4) ?? found[0];
    if (!first) throw new Error("no addresses");
    // TLS keeps the name: it is what the certificate must carry and what SNI sends.
    if (e.kind === "tls") return { ...e, host: first.address, servername: e.servername ?? e.host };
    return { kind: "tcp", host: first.address, port: e.port };
  } catch (err) {
    const why = err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err);
    throw new ClamdError("connect", `Cannot resolve clamd host "${e.host}" (${describeEndpoint(e)}): ${why}`, { cause: err });
  }
}

const CONNECT_EXPLANATIONS: Partial<Record<number, string>> = {
  [Errno.ENOENT]: "no such socket",
  [Errno.EACCES]: "permission denied",
  [Errno.EPERM]: "permission denied",
  [Errno.ENOTDIR]: "a component of the path is not a directory",
  [Errno.ECONNREFUSED]: "connection refused",
  [Errno.ENETUNREACH]: "network unreachable",
  [Errno.EHOSTUNREACH]: "host unreachable",
  [Errno.ETIMEDOUT]: "timed out",
  [Errno.EAFNOSUPPORT]: "address family not supported",
  99: "address not available", // EADDRNOTAVAIL
};

function connectError(desc: string, e: number, unix: boolean): ClamdError {
  let why = CONNECT_EXPLANATIONS[e];
  if (unix && e === Errno.ECONNREFUSED) why = "nothing listening on the socket";
  return new ClamdError("connect", `Cannot connect to clamd at ${desc}: ${errnoName(e)}${why ? ` (${why})` : ""}`);
}

/** What happened to a request that clamd may have cut short (e.g. a stream over StreamMaxLength). */
export type SendResult = "sent" | "peer-stopped";

// Hint: a unix listener with a full backlog answers EAGAIN instead of EINPROGRESS; try again shortly.
const BACKLOG_RETRY_MS = 5;
const RECV_CHUNK = 64 * 1024;

// Buffers are reused within a thread: a scanner makes a connection per scan, and fresh 64 KiB
// ArrayBuffers for each one pile up outside the JS heap faster than the GC returns them (the agent's
// RSS grew by ~150 MiB over 100k scans before this).
const _spareChunks: Uint8Array[] = [];
const _SPARE_MAX = 8;
function _takeChunk(bytes = RECV_CHUNK): Uint8Array {
  if (bytes === RECV_CHUNK) {
    const spare = _spareChunks.pop();
    if (spare) return spare;
  }
  return new Uint8Array(new ArrayBuffer(bytes));
}
function _giveChunk(chunk: Uint8Array): void {
  if (chunk.byteLength === RECV_CHUNK && _spareChunks.length < _SPARE_MAX) _spareChunks.push(chunk);
}
/**
 * Longest reply record accepted: clamd's are a path (≤ PATH_MAX) and signature names. A peer that sends
 * more without a NUL is not clamd, and must not make onacc buffer without bound until the timeout.
 */
export const MAX_RECORD_BYTES = 64 * 1024;

export class Connection {
  readonly description: string;
  private fd: number;
  private pending = _takeChunk();
  private pendingStart = 0;
  private pendingEnd = 0;
  private eof = false;
  private resetErrno = 0;
  private readonly recvBuf = _takeChunk();
  /** Set for a "tls" endpoint: every byte goes through it. */
  private tls: TlsChannel | undefined;

  private constructor(
    fd: number,
    readonly endpoint: ClamdEndpoint,
    readonly timeoutMs: number,
    tls?: TlsChannel,
    /** Absolute bound (monotonic ms) on everything this connection does: the scan's own deadline. */
    private readonly hardDeadline = Infinity,
  ) {
    this.fd = fd;
    this.tls = tls;
    this.description = describeEndpoint(endpoint);
  }

  /** A wait bounded by timeoutMs from now, and never past the hard deadline. */
  private waitLimit(): number {
    return Math.min(monotonicMs() + this.timeoutMs, this.hardDeadline);
  }

  /**
   * Connects within timeoutMs; "localhost" tries 127.0.0.1, then ::1. Throws ClamdError connect/timeout.
   * `hardDeadline` (monotonic ms) bounds the whole conversation, however it trickles: each partial send
   * would otherwise start a fresh timeout.
   */
  static open(endpoint: ClamdEndpoint, timeoutMs: number, hardDeadline = Infinity): Connection {
    const deadline = Math.min(monotonicMs() + timeoutMs, hardDeadline);
    const desc = describeEndpoint(endpoint);
    let last: ClamdError | undefined;
    for (const addr of socketAddresses(endpoint)) {
      let fd: number;
      try {
        fd = connectOne(addr, deadline, desc, timeoutMs);
      } catch (err) {
        last = err instanceof ClamdError ? err : new ClamdError("connect", `Cannot connect to clamd at ${desc}: ${String(err)}`, { cause: err });
        if (last.kind === "timeout") break;
        continue;
      }
      if (endpoint.kind !== "tls") return new Connection(fd, endpoint, timeoutMs, undefined, hardDeadline);
      try {
        return new Connection(fd, endpoint, timeoutMs, TlsChannel.handshake(fd, endpoint, deadline, timeoutMs, desc), hardDeadline);
      } catch (err) {
        // The terminator was reached and refused or failed the handshake: another address of the same name
        // would only hide that behind a less telling error.
        closeFd(fd);
        throw err;
      }
    }
    throw last ?? new ClamdError("connect", `Cannot connect to clamd at ${desc}: no address`);
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /** SO_PEERCRED: who listens on the other end of a unix socket. */
  peerCredentials(): { pid: number; uid: number; gid: number } {
    try {
      return peerCredentials(this.fd);
    } catch (err) {
      throw new ClamdError("connect", `Cannot read the credentials of clamd at ${this.description}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** True when clamd has closed its end or sent something unasked (an idle session it timed out). */
  peerHasSpoken(): boolean {
    if (this.pendingEnd > this.pendingStart || this.eof) return true;
    const readable = (pollOne(this.fd, POLLIN, 0) & (POLLIN | POLLHUP | POLLERR)) !== 0;
    if (!this.tls) return readable;
    // A readable TLS socket may carry only TLS housekeeping (a session ticket): read to find out.
    if (!readable && this.tls.buffered() === 0) return false;
    return this.tlsReadInto() !== "nothing";
  }

  /** Sends all of `data`; each wait for buffer space is bounded by timeoutMs. */
  send(data: Uint8Array, what: string): SendResult {
    let off = 0;
    let deadline = this.waitLimit();
    while (off < data.length) {
      const n = this.tls ? this.tls.send(data.subarray(off)) : sendSome(this.fd, data.subarray(off));
      if (n > 0) {
        off += n;
        deadline = this.waitLimit();
        continue;
      }
      if (n === -Errno.EPIPE || n === -Errno.ECONNRESET) return "peer-stopped";
      if (n !== -Errno.EAGAIN) throw this.lost(-n, `sending ${what}`);
      const stop = this.waitWritable(deadline, what);
      if (stop) return stop;
    }
    return "sent";
  }

  /** "zFILDES\0", then one byte carrying `fd` as SCM_RIGHTS (clamd reads the descriptor with that byte). */
  sendFileDescriptor(fd: number): SendResult {
    if (this.tls) throw new ClamdError("refused", `Cannot pass fd ${fd} to clamd at ${this.description}: descriptor passing needs a unix socket (use stream mode)`);
    if (this.send(command("FILDES"), "zFILDES") === "peer-stopped") return "peer-stopped";
    const deadline = this.waitLimit();
    for (;;) {
      const n = sendDescriptor(this.fd, fd);
      if (n > 0) return "sent";
      if (n === -Errno.EPIPE || n === -Errno.ECONNRESET) return "peer-stopped";
      if (n === -Errno.EBADF) throw new ClamdError("io", `Cannot pass fd ${fd} to clamd at ${this.description}: EBADF (not an open descriptor)`);
      if (n !== -Errno.EAGAIN) throw this.lost(-n, `passing fd ${fd}`);
      const stop = this.waitWritable(deadline, "the file descriptor");
      if (stop) return stop;
    }
  }

  /**
   * zINSTREAM: the file behind `fd` read with pread64 from offset 0 (its own offset never moves), in chunks
   * of at most `chunkBytes`, then the zero-length chunk. Stops early when clamd answers or closes first.
   */
  streamFile(fd: number, chunkBytes: number): { result: SendResult; bytes: number } {
    if (this.send(command("INSTREAM"), "zINSTREAM") === "peer-stopped") return { result: "peer-stopped", bytes: 0 };
    const frame = _takeChunk(4 + chunkBytes);
    const header = new DataView(frame.buffer);
    try {
      return this.streamFrames(fd, frame, header);
    } finally {
      _giveChunk(frame);
    }
  }

  private streamFrames(fd: number, frame: Uint8Array, header: DataView): { result: SendResult; bytes: number } {
    let position = 0;
    for (;;) {
      const n = readAt(fd, frame.subarray(4), position);
      if (n < 0) throw new ClamdError("io", `Cannot read fd ${fd} at offset ${position} to stream it to clamd: ${errnoName(-n)}`);
      header.setUint32(0, n, false);
      if (this.send(frame.subarray(0, 4 + n), "the stream") === "peer-stopped") return { result: "peer-stopped", bytes: position };
      if (n === 0) return { result: "sent", bytes: position };
      position += n;
    }
  }

  /**
   * The next NUL-terminated reply record (without its NUL), or undefined when clamd closed the connection
   * cleanly between records. The whole record must arrive within timeoutMs.
   */
  readRecord(): Uint8Array | undefined {
    const deadline = this.waitLimit();
    for (;;) {
      const nul = this.pending.subarray(this.pendingStart, this.pendingEnd).indexOf(0);
      if (nul > MAX_RECORD_BYTES || (nul < 0 && this.pendingEnd - this.pendingStart > MAX_RECORD_BYTES)) {
        const head = recordText(this.pending.subarray(this.pendingStart, this.pendingStart + 40));
        this.pendingStart = this.pendingEnd;
        throw new ClamdError("protocol", `clamd at ${this.description} sent a reply longer than ${MAX_RECORD_BYTES} bytes (${JSON.stringify(head)}…)`);
      }
      if (nul >= 0) {
        const record = this.pending.slice(this.pendingStart, this.pendingStart + nul);
        this.pendingStart += nul + 1;
        return record;
      }
      if (this.eof) {
        if (this.pendingEnd === this.pendingStart) {
          if (this.resetErrno) throw this.lost(this.resetErrno, "reading its reply");
          return undefined;
        }
        const partial = recordText(this.pending.subarray(this.pendingStart, this.pendingEnd));
        this.pendingStart = this.pendingEnd;
        throw new ClamdError("protocol", `clamd at ${this.description} closed the connection in the middle of a reply (${JSON.stringify(partial)})`);
      }
      this.fill(deadline);
    }
  }

  /** All records until clamd closes the connection (one-shot commands: clamd closes after its reply). */
  readUntilClosed(): Uint8Array[] {
    const records: Uint8Array[] = [];
    for (;;) {
      const r = this.readRecord();
      if (r === undefined) return records;
      records.push(r);
    }
  }

  close(): void {
    this.tls?.close();
    this.tls = undefined;
    if (this.fd >= 0) {
      closeFd(this.fd);
      _giveChunk(this.pending);
      _giveChunk(this.recvBuf);
    }
    this.fd = -1;
  }

  /** Waits for room to send; returns "peer-stopped" when clamd answered or hung up before taking it all. */
  private waitWritable(deadline: number, what: string): SendResult | undefined {
    if (this.tls) return this.waitTlsWritable(this.tls, deadline, what);
    for (;;) {
      const left = deadline - monotonicMs();
      if (left <= 0) throw new ClamdError("timeout", `Timed out after ${this.timeoutMs} ms sending ${what} to clamd at ${this.description}`);
      const rev = pollOne(this.fd, POLLOUT | POLLIN, left);
      if (rev & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) return "peer-stopped";
      if (rev & POLLOUT) return undefined;
    }
  }

  /**
   * After an SSL_write that would block. OpenSSL may need to read first (then: wait for input, try again);
   * otherwise wait for room, and read whatever arrives meanwhile: clamd's early answer means it stopped
   * taking the request, a session ticket means nothing.
   */
  private waitTlsWritable(tls: TlsChannel, deadline: number, what: string): SendResult | undefined {
    const mustRead = tls.waitEvents === POLLIN;
    for (;;) {
      const left = deadline - monotonicMs();
      if (left <= 0) throw new ClamdError("timeout", `Timed out after ${this.timeoutMs} ms sending ${what} to clamd at ${this.description}`);
      if (mustRead) {
        if (pollOne(this.fd, POLLIN, left) !== 0) return undefined;
        continue;
      }
      const rev = pollOne(this.fd, POLLOUT | POLLIN, left);
      if (rev & POLLIN) {
        const got = this.tlsReadInto();
        if (got !== "nothing") return "peer-stopped";
        if (rev & POLLOUT) return undefined;
        continue;
      }
      if (rev & (POLLHUP | POLLERR | POLLNVAL)) return "peer-stopped";
      if (rev & POLLOUT) return undefined;
    }
  }

  /** One non-blocking TLS read into the pending buffer: "data", "end" (closed or reset), or "nothing" yet. */
  private tlsReadInto(): "data" | "end" | "nothing" {
    const n = this.tls!.recv(this.recvBuf);
    if (n > 0) {
      this.append(this.recvBuf.subarray(0, n));
      return "data";
    }
    if (n === -Errno.EAGAIN) return "nothing";
    if (n === 0 || n === -Errno.EPIPE || n === -Errno.ECONNRESET) {
      this.eof = true;
      if (n === -Errno.ECONNRESET) this.resetErrno = -n;
      return "end";
    }
    throw this.lost(-n, "reading its reply");
  }

  private fill(deadline: number): void {
    if (this.tls) {
      for (;;) {
        if (this.tlsReadInto() !== "nothing") return;
        const left = deadline - monotonicMs();
        if (left <= 0) throw new ClamdError("timeout", `Timed out after ${this.timeoutMs} ms waiting for a reply from clamd at ${this.description}`);
        pollOne(this.fd, this.tls.waitEvents, left);
      }
    }
    for (;;) {
      const left = deadline - monotonicMs();
      if (left <= 0) throw new ClamdError("timeout", `Timed out after ${this.timeoutMs} ms waiting for a reply from clamd at ${this.description}`);
      if (pollOne(this.fd, POLLIN, left) === 0) continue;
      const n = recvSome(this.fd, this.recvBuf);
      if (n === 0) {
        this.eof = true;
        return;
      }
      if (n === -Errno.EAGAIN) continue;
      if (n === -Errno.ECONNRESET) {
        // Like a close, except that no reply may follow; a partial record before it is reported as such.
        this.eof = true;
        this.resetErrno = -n;
        return;
      }
      if (n < 0) throw this.lost(-n, "reading its reply");
      this.append(this.recvBuf.subarray(0, n));
      return;
    }
  }

  private append(chunk: Uint8Array): void {
    if (this.pendingEnd + chunk.length > this.pending.length) {
      const used = this.pendingEnd - this.pendingStart;
      const grown = new Uint8Array(new ArrayBuffer(Math.max(this.pending.length, (used + chunk.length) * 2)));
      grown.set(this.pending.subarray(this.pendingStart, this.pendingEnd));
      this.pending = grown;
      this.pendingStart = 0;
      this.pendingEnd = used;
    }
    this.pending.set(chunk, this.pendingEnd);
    this.pendingEnd += chunk.length;
  }

  private lost(e: number, doing: string): ClamdError {
    return new ClamdError("connect", `Lost the connection to clamd at ${this.description} while ${doing}: ${errnoName(e)}`);
  }
}

function connectOne(addr: SocketAddress, deadline: number, desc: string, timeoutMs: number): number {
  let sockaddr: Uint8Array;
  try {
    sockaddr = encodeSockaddr(addr);
  } catch (err) {
    throw new ClamdError("connect", `Cannot connect to clamd at ${desc}: ${(err as Error).message}`);
  }
  let fd: number;
  try {
    fd = openStreamSocket(addr.family);
  } catch (err) {
    const e = err instanceof SyscallError ? errnoName(err.errno) : String(err);
    throw new ClamdError("connect", `Cannot create a socket for clamd at ${desc}: ${e}`, { cause: err });
  }
  const timedOut = () => new ClamdError("timeout", `Timed out after ${timeoutMs} ms connecting to clamd at ${desc}`);
  try {
    if (addr.family !== AF_UNIX) setTcpNoDelay(fd);
    for (;;) {
      const r = startConnect(fd, sockaddr);
      if (r === 0) return fd;
      if (r === -Errno.EAGAIN && addr.family === AF_UNIX) {
        const left = deadline - monotonicMs();
        if (left <= 0) throw timedOut();
        Bun.sleepSync(Math.min(BACKLOG_RETRY_MS, left));
        continue;
      }
      if (r !== -Errno.EINPROGRESS) throw connectError(desc, -r, addr.family === AF_UNIX);
      for (;;) {
        const left = deadline - monotonicMs();
        if (left <= 0) throw timedOut();
        if (pollOne(fd, POLLOUT, left) !== 0) break;
      }
      const e = pendingSocketError(fd);
      if (e !== 0) throw connectError(desc, e, false);
      return fd;
    }
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}
