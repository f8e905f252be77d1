// sd_notify(3) without libsystemd: tells systemd READY=1, WATCHDOG=1, STOPPING=1 or STATUS=… by sending one
// datagram to the AF_UNIX socket named in $NOTIFY_SOCKET (a path, or "@name" for an abstract socket).
import { errno, libc, structBuffer } from "../../ffi/libc.ts";
import { getpid } from "../../ffi/process.ts";

// Hint: <sys/socket.h> and <sys/un.h> values on Linux (the same on x86_64 and aarch64).
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
// struct sockaddr_un { sa_family_t sun_family (u16); char sun_path[108]; }
const SUN_PATH_OFFSET = 2;
const SUN_PATH_SIZE = 108;
const EINTR = 4;

// One socket for the life of the process: WATCHDOG=1 is sent every few seconds, and each call would
// otherwise cost a socket() and a close(). Datagram sockets need no connection, so it never goes stale.
let _socketFd = -1;

/**
 * Sends `state` (e.g. "READY=1", "WATCHDOG=1", "STATUS=protecting 3 paths"; several may be joined with
 * "\n") to the service manager. Returns false without doing anything when $NOTIFY_SOCKET is unset (not
 * started by systemd with Type=notify), and false when the message could not be sent: like sd_notify(),
 * it never throws, because a service must keep working when its manager cannot be told.
 */
export function sdNotify(state: string): boolean {
  const target = process.env.NOTIFY_SOCKET;
  if (target === undefined || target === "") return false;
  const address = _sockaddrUn(target);
  if (address === undefined) return false;
  if (_socketFd < 0) {
    const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    _socketFd = fd;
  }
  const message = Buffer.from(state, "utf8");
  const payload = new Uint8Array(new ArrayBuffer(Math.max(message.length, 1)));
  payload.set(message);
  for (;;) {
    const sent = libc.sendto(_socketFd, payload, message.length, MSG_NOSIGNAL, address.buffer, address.length);
    if (sent === message.length) return true;
    if (sent < 0 && errno() === EINTR) continue;
    return false;
  }
}

/**
 * How often to send WATCHDOG=1, in ms: half of the service's WatchdogSec (as sd_watchdog_enabled(3)
 * advises), or undefined when no watchdog is expected from this process — $WATCHDOG_USEC unset or not a
 * positive number, or $WATCHDOG_PID naming another process (the variables were inherited).
 */
export function watchdogIntervalMs(): number | undefined {
  const usecText = process.env.WATCHDOG_USEC;
  if (usecText === undefined || !/^\d+$/.test(usecText)) return undefined;
  const usec = Number(usecText);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  const pidText = process.env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== "") {
    if (!/^\d+$/.test(pidText) || Number(pidText) !== getpid()) return undefined;
  }
  return Math.max(1, Math.floor(usec / 2000));
}

/**
 * The sockaddr_un for $NOTIFY_SOCKET: "/path" (NUL-terminated) or "@name" (abstract: a leading NUL, and
 * the length counts only the name's bytes, no terminator). Undefined for anything else (e.g. systemd's
 * "vsock:" addresses, which onacc does not speak) or for names too long for sun_path.
 */
function _sockaddrUn(target: string): { buffer: Uint8Array; length: number } | undefined {
  const abstract = target.startsWith("@");
  if (!abstract && !target.startsWith("/")) return undefined;
  const name = Buffer.from(abstract ? target.slice(1) : target, "utf8");
  // A path needs room for its terminating NUL; an abstract name has a NUL in front instead.
  if (name.length + 1 > SUN_PATH_SIZE) return undefined;
  const buffer = structBuffer(SUN_PATH_OFFSET + SUN_PATH_SIZE);
  new DataView(buffer.buffer).setUint16(0, AF_UNIX, true);
  buffer.set(name, SUN_PATH_OFFSET + (abstract ? 1 : 0));
  const length = SUN_PATH_OFFSET + 1 + name.length;
  return { buffer, length };
}
