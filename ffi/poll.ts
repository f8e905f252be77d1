// poll(2) and eventfd(2): how onacc's threads wait on descriptors with a timeout and a wake-up fd, so a
// Worker is never stuck in an uninterruptible read(). struct pollfd is 8 bytes on every architecture.
import { check, errno, libc, structBuffer } from "./libc.ts";
import { Errno } from "./errors.ts";

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

export const EFD_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800;

/** A fixed set of fds to poll; `revents(i)` after `wait()`. */
export class PollSet {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  constructor(private readonly fds: { fd: number; events: number }[]) {
    this.buf = structBuffer(8 * fds.length);
    this.view = new DataView(this.buf.buffer);
    fds.forEach((f, i) => {
      this.view.setInt32(i * 8, f.fd, true);
      this.view.setInt16(i * 8 + 4, f.events, true);
    });
  }
  /** Returns the number of ready fds (0 on timeout; EINTR counts as 0). */
  wait(timeoutMs: number): number {
    for (let i = 0; i < this.fds.length; i++) this.view.setInt16(i * 8 + 6, 0, true);
    const r = libc.poll(this.buf, this.fds.length, Math.max(-1, Math.floor(timeoutMs)));
    if (r === -1) {
      if (errno() === Errno.EINTR) return 0;
      check("poll", -1);
    }
    return r;
  }
  revents(i: number): number {
    return this.view.getInt16(i * 8 + 6, true);
  }
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
