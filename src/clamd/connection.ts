// One non-blocking connection to clamd: a class per transport (unix socket, TCP, TLS over TCP) behind one
// interface. Every call makes one attempt and says what to poll for next; waiting and retrying are not done here.
import { Errno, errnoName, SyscallError } from "../../ffi/errors.ts";
import { POLLIN, POLLOUT } from "../../ffi/poll.ts";
import {
  AF_UNIX,
  closeFd,
  encodeSockaddr,
  openStreamSocket,
  peerPid,
  pendingSocketError,
  recvSome,
  sendDescriptor,
  sendSome,
  setTcpNoDelay,
  startConnect,
} from "../../ffi/socket.ts";
import type { ClamdEndpoint, TlsEndpoint } from "../config/types.ts";
import { ClamdError } from "../errors.ts";
import { describeEndpoint, socketAddresses } from "./address.ts";
import { TlsSession } from "./tls.ts";

/** An endpoint prepared once for many connections: its description and its encoded socket addresses. */
export interface Target {
  readonly endpoint: ClamdEndpoint;
  readonly description: string;
  /** sockaddr bytes to try in turn ("localhost": 127.0.0.1, then ::1); empty when `addressError` is set. */
  readonly sockaddrs: readonly Uint8Array[];
  readonly families: readonly number[];
  /** Why no address can be had (a socket path too long, a host name never resolved): every connect fails with it. */
  readonly addressError: ClamdError | undefined;
}

export function targetOf(endpoint: ClamdEndpoint): Target {
  const description = describeEndpoint(endpoint);
  try {
    const addresses = socketAddresses(endpoint);
    const sockaddrs = addresses.map((a) => {
      try {
        return encodeSockaddr(a);
      } catch (err) {
        throw new ClamdError("connect", `Cannot connect to clamd at ${description}: ${(err as Error).message}`);
      }
    });
    return { endpoint, description, sockaddrs, families: addresses.map((a) => a.family), addressError: undefined };
  } catch (err) {
    const error = err instanceof ClamdError ? err : new ClamdError("connect", `Cannot connect to clamd at ${description}: ${String(err)}`);
    return { endpoint, description, sockaddrs: [], families: [], addressError: error };
  }
}

/** Where a connect stands after a step: connected, waiting for poll events, or to be tried again shortly. */
export type ConnectStep = "done" | "wait" | "later";

export interface Connection {
  /** The socket, -1 when closed. */
  readonly fd: number;
  /** What to poll for after a step said "wait" or an I/O call returned -EAGAIN. */
  readonly waitEvents: number;
  /** True while a TLS handshake (not the TCP connect) is under way: for the timeout message. */
  readonly handshaking: boolean;
  /** Starts connecting; throws ClamdError "connect" with the reason (no such socket, refused, TLS refused). */
  open(target: Target): ConnectStep;
  /** Goes on connecting after poll readiness ("wait") or a short pause ("later"). */
  proceed(): ConnectStep;
  /** Bytes sent from buf[offset..offset+length), or -errno (-EAGAIN: poll for waitEvents; -EPIPE/-ECONNRESET: clamd stopped taking them). */
  send(buf: Uint8Array, offset: number, length: number): number;
  /** Like send(), with `passFd` attached to the first byte as SCM_RIGHTS. Unix sockets only. */
  sendWithDescriptor(passFd: number, buf: Uint8Array, length: number): number;
  /** Bytes received into buf[offset..offset+length), 0 at the end of the stream, or -errno (-EAGAIN: poll for waitEvents). */
  recv(buf: Uint8Array, offset: number, length: number): number;
  /** SO_PEERCRED's pid of a unix socket's listener; 0 when unknown (and always for TCP and TLS). */
  peerPid(): number;
  close(): void;
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

function newSocket(family: number, desc: string): number {
  try {
    return openStreamSocket(family);
  } catch (err) {
    const e = err instanceof SyscallError ? errnoName(err.errno) : String(err);
    throw new ClamdError("connect", `Cannot create a socket for clamd at ${desc}: ${e}`, { cause: err });
  }
}

function noDescriptorPassing(passFd: number, desc: string): never {
  throw new ClamdError("refused", `Cannot pass fd ${passFd} to clamd at ${desc}: descriptor passing needs a unix socket (use stream mode)`);
}

/** A plain socket's send/recv; the subclasses say how to connect. */
abstract class _PlainConnection implements Connection {
  fd = -1;
  waitEvents = POLLOUT;
  readonly handshaking = false;
  protected target: Target | undefined;

  abstract open(target: Target): ConnectStep;
  abstract proceed(): ConnectStep;

  send(buf: Uint8Array, offset: number, length: number): number {
    this.waitEvents = POLLOUT;
    return sendSome(this.fd, buf, offset, length);
  }

  sendWithDescriptor(passFd: number, _buf: Uint8Array, _length: number): number {
    return noDescriptorPassing(passFd, this.target?.description ?? "?");
  }

  recv(buf: Uint8Array, offset: number, length: number): number {
    this.waitEvents = POLLIN;
    return recvSome(this.fd, buf, offset, length);
  }

  peerPid(): number {
    return 0;
  }

  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }
}

/** clamd's LocalSocket: connects at once or not at all, passes descriptors, knows its listener's PID. */
export class UnixConnection extends _PlainConnection {
  open(target: Target): ConnectStep {
    if (target.addressError) throw target.addressError;
    this.close();
    this.target = target;
    this.fd = newSocket(AF_UNIX, target.description);
    return this.proceed();
  }

  proceed(): ConnectStep {
    const t = this.target!;
    const r = startConnect(this.fd, t.sockaddrs[0]!);
    if (r === 0) return "done";
    // Hint: a unix listener with a full backlog answers EAGAIN instead of EINPROGRESS; try again shortly.
    if (r === -Errno.EAGAIN) return "later";
    throw connectError(t.description, -r, true);
  }

  override sendWithDescriptor(passFd: number, buf: Uint8Array, length: number): number {
    this.waitEvents = POLLOUT;
    return sendDescriptor(this.fd, passFd, buf, length);
  }

  override peerPid(): number {
    return peerPid(this.fd);
  }
}

/** TCP with TCP_NODELAY; "localhost" tries 127.0.0.1, then ::1. */
export class TcpConnection extends _PlainConnection {
  private address = 0;

  open(target: Target): ConnectStep {
    if (target.addressError) throw target.addressError;
    this.close();
    this.target = target;
    this.address = 0;
    return this.begin();
  }

  /** Connects to the current address, moving on to the next one when it refuses at once. */
  private begin(): ConnectStep {
    const t = this.target!;
    for (;;) {
      this.fd = newSocket(t.families[this.address]!, t.description);
      // Without it, Nagle's algorithm holds the second of two small writes (an INSTREAM chunk after
      // "zINSTREAM") until clamd's delayed ACK, ~40 ms per scan.
      setTcpNoDelay(this.fd);
      const r = startConnect(this.fd, t.sockaddrs[this.address]!);
      if (r === 0) return "done";
      if (r === -Errno.EINPROGRESS) {
        this.waitEvents = POLLOUT;
        return "wait";
      }
      this.close();
      if (++this.address >= t.sockaddrs.length) throw connectError(t.description, -r, false);
    }
  }

  proceed(): ConnectStep {
    const t = this.target!;
    const e = pendingSocketError(this.fd);
    if (e === 0) return "done";
    this.close();
    if (++this.address >= t.sockaddrs.length) throw connectError(t.description, e, false);
    return this.begin();
  }
}

/** TLS over TCP to a terminator in front of clamd: connect, then the handshake, then encrypted bytes. */
export class TlsConnection implements Connection {
  private readonly tcp = new TcpConnection();
  private session: TlsSession | undefined;
  private target: Target | undefined;
  handshaking = false;

  get fd(): number {
    return this.tcp.fd;
  }

  get waitEvents(): number {
    return this.session ? this.session.waitEvents : this.tcp.waitEvents;
  }

  open(target: Target): ConnectStep {
    this.close();
    this.target = target;
    const step = this.tcp.open(target);
    return step === "done" ? this.startTls() : step;
  }

  proceed(): ConnectStep {
    if (!this.handshaking) {
      const step = this.tcp.proceed();
      return step === "done" ? this.startTls() : step;
    }
    return this.session!.handshake() ? this.connected() : "wait";
  }

  private startTls(): ConnectStep {
    const t = this.target!;
    this.session = TlsSession.start(this.tcp.fd, t.endpoint as TlsEndpoint, t.description);
    this.handshaking = true;
    return this.session.handshake() ? this.connected() : "wait";
  }

  private connected(): ConnectStep {
    this.handshaking = false;
    return "done";
  }

  send(buf: Uint8Array, offset: number, length: number): number {
    return this.session!.send(buf, offset, length);
  }

  sendWithDescriptor(passFd: number): number {
    return noDescriptorPassing(passFd, this.target?.description ?? "?");
  }

  recv(buf: Uint8Array, offset: number, length: number): number {
    return this.session!.recv(buf, offset, length);
  }

  peerPid(): number {
    return 0;
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
    this.handshaking = false;
    this.tcp.close();
  }
}
