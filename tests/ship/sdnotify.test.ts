// sdNotify() and watchdogIntervalMs() against a real AF_UNIX datagram socket that this test binds itself
// (with its own libc handle, so the receiving side shares no code with the sender under test).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { dlopen, FFIType } from "bun:ffi";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sdNotify, watchdogIntervalMs } from "../../src/service/sdnotify.ts";

const { i32, u32, u64_fast, i64_fast, ptr } = FFIType;
const raw = dlopen("libc.so.6", {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  recv: { args: [i32, ptr, u64_fast, i32], returns: i64_fast },
  close: { args: [i32], returns: i32 },
}).symbols;

const MSG_DONTWAIT = 0x40;

/** A bound SOCK_DGRAM socket; `next()` returns the datagram waiting (sendto is synchronous locally). */
function listen(address: string): { next(): string | undefined; close(): void } {
  const fd = raw.socket(1, 2, 0);
  if (fd < 0) throw new Error("socket() failed");
  const sa = new Uint8Array(new ArrayBuffer(110));
  sa[0] = 1; // AF_UNIX, little-endian u16
  const abstract = address.startsWith("@");
  const name = Buffer.from(abstract ? address.slice(1) : address);
  sa.set(name, 2 + (abstract ? 1 : 0));
  if (raw.bind(fd, sa, 2 + 1 + name.length) !== 0) throw new Error(`bind(${address}) failed`);
  const buf = new Uint8Array(new ArrayBuffer(4096));
  return {
    next() {
      const n = Number(raw.recv(fd, buf, buf.length, MSG_DONTWAIT));
      return n < 0 ? undefined : Buffer.from(buf.subarray(0, n)).toString("utf8");
    },
    close: () => void raw.close(fd),
  };
}

const saved = { ...process.env };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-sdnotify-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const key of ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
});

describe("sdNotify()", () => {
  test("sdNotify() does nothing and returns false when NOTIFY_SOCKET is unset", () => {
    delete process.env.NOTIFY_SOCKET;
    expect(sdNotify("READY=1")).toBe(false);
  });

  test("sdNotify() sends READY=1 to a socket given by its path", () => {
    const path = join(dir, "notify.sock");
    const socket = listen(path);
    try {
      process.env.NOTIFY_SOCKET = path;
      expect(sdNotify("READY=1")).toBe(true);
      expect(socket.next()).toBe("READY=1");
      expect(socket.next()).toBeUndefined();
    } finally {
      socket.close();
    }
  });

  test("sdNotify() reaches an abstract socket named with a leading @", () => {
    const name = `@onacc-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const socket = listen(name);
    try {
      process.env.NOTIFY_SOCKET = name;
      expect(sdNotify("WATCHDOG=1")).toBe(true);
      expect(sdNotify("STATUS=protecting 2 paths\nSTOPPING=1")).toBe(true);
      expect(socket.next()).toBe("WATCHDOG=1");
      expect(socket.next()).toBe("STATUS=protecting 2 paths\nSTOPPING=1");
    } finally {
      socket.close();
    }
  });

  test("sdNotify() returns false when nobody listens at NOTIFY_SOCKET", () => {
    process.env.NOTIFY_SOCKET = join(dir, "nobody-here.sock");
    expect(sdNotify("READY=1")).toBe(false);
  });

  test("sdNotify() returns false for an address that is neither a path nor @name", () => {
    process.env.NOTIFY_SOCKET = "vsock:2:1234";
    expect(sdNotify("READY=1")).toBe(false);
    process.env.NOTIFY_SOCKET = `/${"x".repeat(200)}`;
    expect(sdNotify("READY=1")).toBe(false);
  });
});

describe("watchdogIntervalMs()", () => {
  test("watchdogIntervalMs() is half of WATCHDOG_USEC, in milliseconds", () => {
    process.env.WATCHDOG_USEC = "30000000";
    delete process.env.WATCHDOG_PID;
    expect(watchdogIntervalMs()).toBe(15000);
  });

  test("watchdogIntervalMs() is undefined without WATCHDOG_USEC or with a bad value", () => {
    delete process.env.WATCHDOG_USEC;
    expect(watchdogIntervalMs()).toBeUndefined();
    for (const bad of ["", "0", "-5", "30s", "1e9"]) {
      process.env.WATCHDOG_USEC = bad;
      expect(watchdogIntervalMs()).toBeUndefined();
    }
  });

  test("watchdogIntervalMs() honours WATCHDOG_PID: set only for this process", () => {
    process.env.WATCHDOG_USEC = "10000000";
    process.env.WATCHDOG_PID = String(process.pid);
    expect(watchdogIntervalMs()).toBe(5000);
    process.env.WATCHDOG_PID = String(process.pid + 1);
    expect(watchdogIntervalMs()).toBeUndefined();
  });
});
