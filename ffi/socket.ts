// Sockets for the clamd client: non-blocking stream sockets (unix, IPv4, IPv6), descriptor passing
// (SCM_RIGHTS), SO_PEERCRED, and pread64 for streaming a file. Struct layouts are LP64 (x86_64, arm64).
import { ptr, type Pointer } from "bun:ffi";
import { Errno } from "./errors.ts";
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

/**
 * SO_PEERCRED's pid on a connected unix socket: the process that called listen() on the other end, or 0
 * when it is not known (the peer lives in another PID namespace, or the call failed). 0 is never an identity.
 */
export function peerPid(fd: number): number {
  lenView.setUint32(0, SIZEOF_UCRED, true);
  if (libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucredBuf, lenBuf) !== 0) return 0;
  return ucredView.getInt32(0, true);
}

// The I/O calls below take (buffer, offset, length) and pass ptr(buffer) + offset, so a caller that works
// through one reused buffer makes no garbage: a subarray() per call would be a new object per call.
// Hint: the buffer must be one that does not move (new Uint8Array(new ArrayBuffer(n)), see structBuffer).

/** send(fd, buf[offset..offset+length), MSG_NOSIGNAL): bytes sent, or -errno (-EAGAIN when the socket buffer is full). */
export function sendSome(fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset): number {
  const at = (ptr(buf) + offset) as Pointer;
  for (;;) {
    const n = libc.send(fd, at, length, MSG_NOSIGNAL);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

/** recv() into buf[offset..offset+length): bytes received (0 = the peer closed), or -errno (-EAGAIN when nothing is there yet). */
export function recvSome(fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset): number {
  const at = (ptr(buf) + offset) as Pointer;
  for (;;) {
    const n = libc.recv(fd, at, length, 0);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

// sendmsg's structs point at each other. Hint: a buffer reachable only through a pointer stored in
// another buffer is garbage to the GC; sendDescriptor() refers to each one (and rewrites the pointers)
// on every call, so all stay alive and the pointers stay right. The data buffer is the caller's: it is
// referenced by the caller across the call, and the kernel copies it before sendmsg returns.
const msgBuf = structBuffer(SIZEOF_MSGHDR);
const msgView = new DataView(msgBuf.buffer);
const iovBuf = structBuffer(SIZEOF_IOVEC);
const iovView = new DataView(iovBuf.buffer);
const cmsgBuf = structBuffer(CMSG_SPACE_INT);
const cmsgView = new DataView(cmsgBuf.buffer);

/** A 64-bit pointer or size_t field from a number (< 2^53), little-endian: no BigInt made per call. */
function setWord(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 0x1_0000_0000, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

/**
 * sendmsg() of data[0..length) with `passFd` attached as SCM_RIGHTS; the descriptor travels with the first
 * byte. Returns the bytes sent, or -errno (-EAGAIN when the socket buffer is full, -EBADF when `passFd`
 * is not open). `data` must be a buffer of its own (new ArrayBuffer), as every struct buffer here.
 */
export function sendDescriptor(fd: number, passFd: number, data: Uint8Array, length = data.length): number {
  setWord(iovView, 0, ptr(data)); // iov_base
  setWord(iovView, 8, length); // iov_len
  setWord(msgView, 16, ptr(iovBuf)); // msg_iov
  setWord(msgView, 24, 1); // msg_iovlen
  setWord(msgView, 32, ptr(cmsgBuf)); // msg_control
  setWord(msgView, 40, CMSG_SPACE_INT); // msg_controllen
  setWord(cmsgView, 0, CMSG_LEN_INT); // cmsg_len
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

/**
 * pread64() into buf[offset..offset+length) from file position `position`: bytes read (0 at end of file),
 * or -errno. Never moves the fd's own offset, which belongs to whoever opened the file.
 */
export function readAt(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
  const at = (ptr(buf) + offset) as Pointer;
  for (;;) {
    const n = libc.pread64(fd, at, length, position);
    if (n >= 0) return n;
    const e = errno();
    if (e !== Errno.EINTR) return -e;
  }
}

/** close(); errors are ignored (the fd is released either way on Linux). */
export function closeFd(fd: number): void {
  libc.close(fd);
}
