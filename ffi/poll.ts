// poll(2) and eventfd(2): how onacc's threads wait on descriptors with a timeout and a wake-up fd, so a
// Worker is never stuck in an uninterruptible read(). struct pollfd is 8 bytes on every architecture.
import { check, errno, libc, structBuffer } from "./libc.ts";
import { Errno, SyscallError } from "./errors.ts";

// <poll.h>
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

export const EFD_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800;

/** struct pollfd { int fd; short events; short revents; } */
const SIZEOF_POLLFD = 8;

/**
 * An array of struct pollfd. Built from a fixed list, or with room for `capacity` entries that the caller
 * (re)fills with set() before each wait(): then one poll() can cover a thread's own fds and every clamd
 * conversation in flight (see src/clamd/multiplexer.ts). Never allocates after construction.
 */
export class PollSet {
  readonly capacity: number;
  private readonly buf: Uint8Array;
  private readonly view: DataView;

  constructor(fdsOrCapacity: { fd: number; events: number }[] | number) {
    const fds = typeof fdsOrCapacity === "number" ? [] : fdsOrCapacity;
    this.capacity = typeof fdsOrCapacity === "number" ? fdsOrCapacity : fds.length;
    if (!Number.isInteger(this.capacity) || this.capacity < 0) throw new RangeError(`PollSet capacity must be a whole number ≥ 0, got ${fdsOrCapacity}`);
    this.buf = structBuffer(SIZEOF_POLLFD * Math.max(1, this.capacity));
    this.view = new DataView(this.buf.buffer);
    fds.forEach((f, i) => this.set(i, f.fd, f.events));
  }

  /** Entry `i` waits for `events` on `fd` (a negative fd is skipped by the kernel). */
  set(i: number, fd: number, events: number): void {
    this.view.setInt32(i * SIZEOF_POLLFD, fd, true);
    this.view.setInt16(i * SIZEOF_POLLFD + 4, events, true);
    this.view.setInt16(i * SIZEOF_POLLFD + 6, 0, true);
  }

  /**
   * Waits on the first `count` entries (all by default) for at most `timeoutMs` (negative: no limit).
   * Returns the number of ready fds (0 on timeout; EINTR counts as 0).
   */
  wait(timeoutMs: number, count = this.capacity): number {
    for (let i = 0; i < count; i++) this.view.setInt16(i * SIZEOF_POLLFD + 6, 0, true);
    const r = libc.poll(this.buf, count, timeoutMs < 0 ? -1 : Math.min(0x7fffffff, Math.ceil(timeoutMs)));
    if (r === -1) {
      if (errno() === Errno.EINTR) return 0;
      check("poll", -1);
    }
    return r;
  }

  revents(i: number): number {
    return this.view.getInt16(i * SIZEOF_POLLFD + 6, true);
  }
}

const oneBuf = structBuffer(SIZEOF_POLLFD);
const oneView = new DataView(oneBuf.buffer);

/** poll() one fd: its revents, or 0 when the timeout passed (or a signal interrupted the wait). */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  oneView.setInt32(0, fd, true);
  oneView.setInt16(4, events, true);
  oneView.setInt16(6, 0, true);
  const r = libc.poll(oneBuf, 1, Math.max(0, Math.ceil(timeoutMs)));
  if (r === -1) {
    const e = errno();
    if (e === Errno.EINTR) return 0;
    throw new SyscallError("poll", e);
  }
  return r === 0 ? 0 : oneView.getInt16(6, true);
}

/** An eventfd used to wake a thread blocked in poll(). */
export class WakeFd {
  readonly fd: number;
  private readonly one = structBuffer(8);
  private readonly sink = structBuffer(8);
  constructor(fd?: number) {
    this.fd = fd ?? check("eventfd", libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    new DataView(this.one.buffer).setBigUint64(0, 1n, true);
  }
  wake(): void {
    libc.write(this.fd, this.one, 8);
  }
  drain(): void {
    libc.read(this.fd, this.sink, 8);
  }
}
