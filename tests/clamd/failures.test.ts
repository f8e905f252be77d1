// How the client fails: peers that accept and never answer (TCP and unix), listeners whose backlog is full,
// peers that hang up mid-reply or talk nonsense. Every failure is a typed outcome, bounded by the timeout,
// retried the configured number of times, and never a verdict.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dlopen, FFIType } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Errno } from "../../ffi/errors.ts";
import { POLLOUT, pollOne } from "../../ffi/poll.ts";
import { AF_INET, AF_UNIX, closeFd, encodeSockaddr, openStreamSocket, pendingSocketError, startConnect } from "../../ffi/socket.ts";
import { ClamdClient } from "../../src/clamd/client.ts";
import type { ClamdEndpoint } from "../../src/config/types.ts";
import { ClamdError } from "../../src/errors.ts";
import { EICAR } from "../fixtures/signatures.ts";
import type { FakePeerReady, PeerMode } from "./fake-peer.ts";
import { withFd } from "./helpers.ts";
import { scanByPath } from "../fixtures/multiplexer.ts";

const TIMEOUT = 300;
// Generous: the bound must hold, not be fast; a client without one would hang until the test's own timeout.
const MARGIN = 1500;

let dir: string;
let eicar: string;
beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-clamd-fail-");
  eicar = join(dir, "eicar.com");
  writeFileSync(eicar, EICAR);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function client(endpoint: ClamdEndpoint, retries = 0): ClamdClient {
  return new ClamdClient({ endpoint, timeoutMs: TIMEOUT, retries, streamMaxLength: 1 << 20 });
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

/** A listener that accepts every connection and never says a word; counts connections. */
function silentListener(unixPath?: string) {
  let accepted = 0;
  const socket = {
    open() {
      accepted++;
    },
    data() {},
  };
  const server = unixPath ? Bun.listen({ unix: unixPath, socket }) : Bun.listen({ hostname: "127.0.0.1", port: 0, socket });
  return {
    port: "port" in server ? server.port : 0,
    stop: () => server.stop(true),
    // The synchronous client blocks this thread; accepts are counted once the event loop runs again.
    async accepted(): Promise<number> {
      await Bun.sleep(100);
      return accepted;
    },
  };
}

describe("a peer that accepts and never answers", () => {
  test("makes ping() throw a timeout within timeout + margin over TCP", async () => {
    const l = silentListener();
    try {
      const endpoint: ClamdEndpoint = { kind: "tcp", host: "127.0.0.1", port: l.port };
      const { value: err, ms } = timed(() => {
        try {
          client(endpoint).ping();
          return undefined;
        } catch (e) {
          return e;
        }
      });
      expect(err).toBeInstanceOf(ClamdError);
      expect((err as ClamdError).kind).toBe("timeout");
      expect((err as ClamdError).message).toBe(`Timed out after ${TIMEOUT} ms waiting for a reply from clamd at tcp://127.0.0.1:${l.port}`);
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT - 5);
      expect(ms).toBeLessThan(TIMEOUT + MARGIN);
      expect(await l.accepted()).toBe(1);
    } finally {
      l.stop();
    }
  });

  test("is retried the configured number of times over TCP, one connection per attempt", async () => {
    const l = silentListener();
    try {
      const c = client({ kind: "tcp", host: "127.0.0.1", port: l.port }, 2);
      const { value: out, ms } = timed(() => withFd(eicar, (fd) => c.scanStream(fd)));
      expect(out.ok).toBe(false);
      expect(out.attempts).toBe(3);
      if (!out.ok) expect(out.error.kind).toBe("timeout");
      expect(ms).toBeGreaterThanOrEqual(3 * TIMEOUT - 15);
      expect(ms).toBeLessThan(3 * TIMEOUT + MARGIN);
      expect(await l.accepted()).toBe(3);
    } finally {
      l.stop();
    }
  });

  test("times out and is retried over a unix socket, in every scan mode", async () => {
    const path = join(dir, "silent.sock");
    const l = silentListener(path);
    try {
      const c = client({ kind: "unix", path }, 1);
      const outs = [withFd(eicar, (fd) => c.scanFd(fd)), withFd(eicar, (fd) => c.scanStream(fd)), scanByPath(c, eicar)];
      for (const out of outs) {
        expect(out).toMatchObject({ ok: false, attempts: 2 });
        if (!out.ok) expect(out.error.message).toBe(`Timed out after ${TIMEOUT} ms waiting for a reply from clamd at unix:${path}`);
      }
      expect(await l.accepted()).toBe(6);
    } finally {
      l.stop();
    }
  });
});

// bind/listen for listeners that never accept (the client itself needs neither).
const sys = dlopen("libc.so.6", {
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
});

/**
 * Connections the listener never accepts, made until one no longer gets in (a unix connect says EAGAIN,
 * a TCP one never completes): the listener's queue is full. Returns the sockets, to close afterwards.
 */
function fillBacklog(family: number, sockaddr: Uint8Array): number[] {
  const held: number[] = [];
  for (let i = 0; i < 16; i++) {
    const s = openStreamSocket(family);
    const r = startConnect(s, sockaddr);
    const connected =
      r === 0 || (r === -Errno.EINPROGRESS && (pollOne(s, POLLOUT, 200) & POLLOUT) !== 0 && pendingSocketError(s) === 0);
    if (!connected) {
      closeFd(s);
      return held;
    }
    held.push(s);
  }
  throw new Error("the listener's queue never filled");
}

describe("a listener whose backlog is full", () => {
  test("makes a unix connect time out (EAGAIN until the deadline)", () => {
    const path = join(dir, "full.sock");
    const fd = openStreamSocket(AF_UNIX);
    const addr = encodeSockaddr({ family: AF_UNIX, path: new TextEncoder().encode(path) });
    expect(sys.symbols.bind(fd, addr, addr.length)).toBe(0);
    expect(sys.symbols.listen(fd, 0)).toBe(0);
    const held = fillBacklog(AF_UNIX, addr);
    const c = client({ kind: "unix", path });
    try {
      expect(() => c.ping()).toThrow(new ClamdError("timeout", `Timed out after ${TIMEOUT} ms connecting to clamd at unix:${path}`));
      const { value: out, ms } = timed(() => scanByPath(c, eicar));
      expect(out).toMatchObject({ ok: false, attempts: 1 });
      if (!out.ok) expect(out.error.kind).toBe("timeout");
      expect(ms).toBeLessThan(TIMEOUT + MARGIN);
    } finally {
      for (const h of held) closeFd(h);
      closeFd(fd);
    }
  });

  test("makes a TCP connect time out", () => {
    const fd = openStreamSocket(AF_INET);
    const addr = encodeSockaddr({ family: AF_INET, address: new Uint8Array([127, 0, 0, 1]), port: 0 });
    expect(sys.symbols.bind(fd, addr, addr.length)).toBe(0);
    expect(sys.symbols.listen(fd, 0)).toBe(0);
    const port = boundPort(fd);
    const held = fillBacklog(AF_INET, encodeSockaddr({ family: AF_INET, address: new Uint8Array([127, 0, 0, 1]), port }));
    const c = client({ kind: "tcp", host: "127.0.0.1", port });
    try {
      expect(() => c.ping()).toThrow(new ClamdError("timeout", `Timed out after ${TIMEOUT} ms connecting to clamd at tcp://127.0.0.1:${port}`));
    } finally {
      for (const h of held) closeFd(h);
      closeFd(fd);
    }
  });
});


const getsockname = dlopen("libc.so.6", { getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } });

function boundPort(fd: number): number {
  const sa = new Uint8Array(new ArrayBuffer(16));
  const len = new Uint8Array(new ArrayBuffer(4));
  new DataView(len.buffer).setUint32(0, 16, true);
  expect(getsockname.symbols.getsockname(fd, sa, len)).toBe(0);
  return new DataView(sa.buffer).getUint16(2, false);
}

describe("a peer that misbehaves", () => {
  const modes: PeerMode[] = ["partial", "hangup", "garbage"];
  let worker: Worker;
  let ports: Record<PeerMode, number>;
  let counts: Int32Array;
  let unixPath: string;
  beforeAll(async () => {
    counts = new Int32Array(new SharedArrayBuffer(4 * (modes.length + 1)));
    unixPath = join(dir, "partial.sock");
    worker = new Worker(new URL("./fake-peer.ts", import.meta.url));
    const ready = new Promise<FakePeerReady>((resolve) => {
      worker.onmessage = (e: MessageEvent<FakePeerReady>) => resolve(e.data);
    });
    worker.postMessage({ modes, counts, unixPath });
    ports = (await ready).ports;
  });
  afterAll(async () => {
    const stopped = new Promise((resolve) => {
      worker.onmessage = resolve;
    });
    worker.postMessage("stop");
    await stopped;
    worker.terminate();
  });
  const tcp = (mode: PeerMode, retries = 0) => client({ kind: "tcp", host: "127.0.0.1", port: ports[mode] }, retries);

  test("closing the connection mid-reply is a protocol error, retried, never a verdict", () => {
    const before = Atomics.load(counts, 0);
    const out = withFd(eicar, (fd) => tcp("partial", 1).scanStream(fd));
    expect(out).toMatchObject({ ok: false, attempts: 2 });
    if (!out.ok) {
      expect(out.error.kind).toBe("protocol");
      expect(out.error.message).toBe(
        `clamd at tcp://127.0.0.1:${ports.partial} closed the connection in the middle of a reply ("stream: Onacc.Test.EIC")`,
      );
    }
    expect(Atomics.load(counts, 0) - before).toBe(2);
  });

  test("closing the connection mid-reply over a unix socket is a protocol error too", () => {
    const c = client({ kind: "unix", path: unixPath });
    expect(() => c.version()).toThrow(new ClamdError("protocol", `clamd at unix:${unixPath} closed the connection in the middle of a reply ("stream: Onacc.Test.EIC")`));
    const out = withFd(eicar, (fd) => c.scanFd(fd));
    expect(out).toMatchObject({ ok: false, attempts: 1 });
    if (!out.ok) expect(out.error.kind).toBe("protocol");
  });

  test("hanging up before answering is an error for every request", () => {
    const c = tcp("hangup", 2);
    const before = Atomics.load(counts, 1);
    const out = withFd(eicar, (fd) => c.scanStream(fd));
    expect(out).toMatchObject({ ok: false, attempts: 3 });
    if (!out.ok) expect(["protocol", "connect"]).toContain(out.error.kind);
    expect(() => c.ping()).toThrow(ClamdError);
    expect(Atomics.load(counts, 1) - before).toBe(6);
  });

  test("an answer that is not clamd's is a protocol error, never clean", () => {
    const out = scanByPath(tcp("garbage"), eicar);
    expect(out).toMatchObject({ ok: false, attempts: 1 });
    if (!out.ok) {
      expect(out.error.kind).toBe("protocol");
      expect(out.error.message).toContain('unexpected reply "HELLO THERE"');
    }
    expect(() => tcp("garbage").version()).toThrow('unexpected reply "HELLO THERE"');
  });
});
