// Sockets for the clamd client: non-blocking stream sockets (unix, IPv4, IPv6), poll(2) on one fd, descriptor
// passing (SCM_RIGHTS), SO_PEERCRED, and pread64 for streaming a file. Struct layouts are LP64 (x86_64, arm64).
import { ptr } from "bun:ffi";
import { Errno, SyscallError } from "./errors.ts";
import { check, errno, libc, structBuffer } from "./libc.ts";

// <bits/socket.h>, <sys/socket.h>
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const SO_PEERCRED = 17;
export const SCM_RIGHTS = 1;
export const MSG_NOSIGNAL = 0x4000;
// <netinet/in.h>, <netinet/tcp.h>
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;

// <poll.h>
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/** struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; } */
const SIZEOF_SOCKADDR_UN = 110;
export const UNIX_PATH_MAX = 108;
/** struct sockaddr_in { sa_family_t; in_port_t (big-endian); struct in_addr; char sin_zero[8]; } */
const SIZEOF_SOCKADDR_IN = 16;
/** struct sockaddr_in6 { sa_family_t; in_port_t; uint32_t sin6_flowinfo; struct in6_addr; uint32_t sin6_scope_id; } */
const SIZEOF_SOCKADDR_IN6 = 28;
/** struct iovec { void *iov_base; size_t iov_len; } */
const SIZEOF_IOVEC = 16;
/** struct msghdr { void *name; socklen_t namelen; (pad) struct iovec *iov; size_t iovlen; void *control; size_t controllen; int flags; } */
const SIZEOF_MSGHDR = 56;
/** struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } followed by data aligned to 8. */
const SIZEOF_CMSGHDR = 16;
const CMSG_LEN_INT = SIZEOF_CMSGHDR + 4; // CMSG_LEN(sizeof(int))
const CMSG_SPACE_INT = SIZEOF_CMSGHDR + 8; // CMSG_SPACE(sizeof(int))
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } */
const SIZEOF_UCRED = 12;
/** struct pollfd { int fd; short events; short revents; } */
const SIZEOF_POLLFD = 8;

export type SocketAddress =
  | { family: typeof AF_UNIX; path: Uint8Array }
  | { family: typeof AF_INET; address: Uint8Array; port: number }
  | { family: typeof AF_INET6; address: Uint8Array; port: number; scopeId: number };

/** The bytes of a sockaddr_* for connect(); throws RangeError when a unix path does not fit sun_path. */
export function encodeSockaddr(addr: SocketAddress): Uint8Array {
  switch (addr.family) {
    case AF_UNIX: {
      // Hint: sun_path needs room for the terminating NUL.
      if (addr.path.length >= UNIX_PATH_MAX) throw new RangeError(`socket path is ${addr.path.length} bytes; the limit is ${UNIX_PATH_MAX - 1}`);
      const buf = structBuffer(SIZEOF_SOCKADDR_UN);
      new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
      buf.set(addr.path, 2);
      return buf;
    }
    case AF_INET: {
      const buf = structBuffer(SIZEOF_SOCKADDR_IN);
      const view = new DataView(buf.buffer);
      view.setUint16(0, AF_INET, true);
      view.setUint16(2, addr.port, false);
      buf.set(addr.address.subarray(0, 4), 4);
      return buf;
    }
    case AF_INET6: {
      const buf = structBuffer(SIZEOF_SOCKADDR_IN6);
      const view = new DataView(buf.buffer);
      view.setUint16(0, AF_INET6, true);
      view.setUint16(2, addr.port, false);
      buf.set(addr.address.subarray(0, 16), 8);
      view.setUint32(24, addr.scopeId, true);
      return buf;
    }
  }
}

/** socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); throws SyscallError. */
export function openStreamSocket(family: number): number {
  return check("socket", libc.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

/** connect() on a non-blocking socket: 0 when connected, else -errno (-EINPROGRESS, -EAGAIN, -ENOENT, ...). */
export function startConnect(fd: number, sockaddr: Uint8Array): number {
  for (;;) {
    if (libc.connect(fd, sockaddr, sockaddr.length) === 0) return 0;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

const intBuf = structBuffer(4);
const intView = new DataView(intBuf.buffer);
const lenBuf = structBuffer(4);
const lenView = new DataView(lenBuf.buffer);

/** getsockopt(SO_ERROR): the outcome of a pending connect (0 = connected, else an errno). */
export function pendingSocketError(fd: number): number {
  lenView.setUint32(0, 4, true);
  check("getsockopt", libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, intBuf, lenBuf), "SO_ERROR");
  return intView.getInt32(0, true);
}

/**
 * setsockopt(TCP_NODELAY, 1): small requests go out at once. Without it, Nagle's algorithm holds the second
 * of two small writes (an INSTREAM chunk after "zINSTREAM") until clamd's delayed ACK, ~40 ms per scan.
 */
export function setTcpNoDelay(fd: number): void {
  intView.setInt32(0, 1, true);
  check("setsockopt", libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, intBuf, 4), "TCP_NODELAY");
}

const ucredBuf = structBuffer(SIZEOF_UCRED);
const ucredView = new DataView(ucredBuf.buffer);

/** getsockopt(SO_PEERCRED) on a connected unix socket: who called listen() on the other end. */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  lenView.setUint32(0, SIZEOF_UCRED, true);
  check("getsockopt", libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucredBuf, lenBuf), "SO_PEERCRED");
  return { pid: ucredView.getInt32(0, true), uid: ucredView.getUint32(4, true), gid: ucredView.getUint32(8, true) };
}

const pollBuf = structBuffer(SIZEOF_POLLFD);
const pollView = new DataView(pollBuf.buffer);

/** poll() one fd: its revents, or 0 when the timeout passed (or a signal interrupted the wait). */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  pollView.setInt32(0, fd, true);
  pollView.setInt16(4, events, true);
  pollView.setInt16(6, 0, true);
  const r = libc.poll(pollBuf, 1, Math.max(0, Math.ceil(timeoutMs)));
  if (r === -1) {
    const e = errno();
    if (e === Errno.EINTR) return 0;
    throw new SyscallError("poll", e);
  }
  return r === 0 ? 0 : pollView.getInt16(6, true);
}

/** send(fd, data, MSG_NOSIGNAL): bytes sent, or -errno (-EAGAIN when the socket buffer is full). */
export function sendSome(fd: number, data: Uint8Array): number {
  for (;;) {
    const n = libc.send(fd, data, data.length, MSG_NOSIGNAL);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

/** recv(fd, into): bytes received (0 = the peer closed), or -errno (-EAGAIN when nothing is there yet). */
export function recvSome(fd: number, into: Uint8Array): number {
  for (;;) {
    const n = libc.recv(fd, into, into.length, 0);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

// sendmsg's structs point at each other. Hint: a buffer reachable only through a pointer stored in
// another buffer is garbage to the GC; sendDescriptor() refers to each one (and rewrites the pointers)
// on every call, so all stay alive and the pointers stay right.
const msgBuf = structBuffer(SIZEOF_MSGHDR);
const msgView = new DataView(msgBuf.buffer);
const iovBuf = structBuffer(SIZEOF_IOVEC);
const iovView = new DataView(iovBuf.buffer);
const cmsgBuf = structBuffer(CMSG_SPACE_INT);
const cmsgView = new DataView(cmsgBuf.buffer);
const oneByte = structBuffer(1);

/**
 * sendmsg() of one data byte carrying `passFd` as SCM_RIGHTS, as clamdscan does after "zFILDES\0".
 * Returns 1 when sent, or -errno (-EAGAIN when the socket buffer is full).
 */
export function sendDescriptor(fd: number, passFd: number, byte = 0): number {
  oneByte[0] = byte;
  iovView.setBigUint64(0, BigInt(ptr(oneByte)), true); // iov_base
  iovView.setBigUint64(8, 1n, true); // iov_len
  msgView.setBigUint64(16, BigInt(ptr(iovBuf)), true); // msg_iov
  msgView.setBigUint64(24, 1n, true); // msg_iovlen
  msgView.setBigUint64(32, BigInt(ptr(cmsgBuf)), true); // msg_control
  msgView.setBigUint64(40, BigInt(CMSG_SPACE_INT), true); // msg_controllen
  cmsgView.setBigUint64(0, BigInt(CMSG_LEN_INT), true); // cmsg_len
  cmsgView.setInt32(8, SOL_SOCKET, true); // cmsg_level
  cmsgView.setInt32(12, SCM_RIGHTS, true); // cmsg_type
  cmsgView.setInt32(SIZEOF_CMSGHDR, passFd, true); // CMSG_DATA
  for (;;) {
    const n = libc.sendmsg(fd, msgBuf, MSG_NOSIGNAL);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

/** pread64(fd, into, position): bytes read (0 at end of file), or -errno. Never moves the fd's offset. */
export function readAt(fd: number, into: Uint8Array, position: number): number {
  for (;;) {
    const n = libc.pread64(fd, into, into.length, position);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

/** close(); errors are ignored (the fd is released either way on Linux). */
export function closeFd(fd: number): void {
  libc.close(fd);
}
