// ClamdSession (IDSESSION) against a real clamd: many scans over one connection, what clamd refuses inside a
// session, and how a session ends or breaks (StreamMaxLength, ReadTimeout).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { ClamdClient } from "../../src/clamd/client.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { clean, clientOf, EICAR_FOUND, infected, MARKER_FOUND, withFd, writeTestFiles, type TestFiles } from "./helpers.ts";
import type { ProxyRequest } from "./counting-proxy.ts";

// clamd closes a session that sends nothing for ReadTimeout seconds.
const READ_TIMEOUT_S = 1;

let clamd: TestClamd;
let files: TestFiles;
beforeAll(async () => {
  clamd = await startClamd({ extra: [`ReadTimeout ${READ_TIMEOUT_S}`] });
  files = writeTestFiles(clamd.dir);
});
afterAll(() => disposeClamd(clamd));

describe("one connection for many scans", () => {
  test("120 scans in all modes share one connection, counted by a proxy in front of clamd", async () => {
    const connections = new Int32Array(new SharedArrayBuffer(4));
    const proxy = new Worker(new URL("./counting-proxy.ts", import.meta.url));
    try {
      const ready = new Promise<number>((resolve) => (proxy.onmessage = (e: MessageEvent<{ port: number }>) => resolve(e.data.port)));
      proxy.postMessage({ targetPort: clamd.port, connections } satisfies ProxyRequest);
      const port = await ready;
      const client = new ClamdClient({ endpoint: { kind: "tcp", host: "127.0.0.1", port }, timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 });
      const session = client.session();
      for (let i = 0; i < 40; i++) {
        expect(withFd(files.eicar, (fd) => session.scanStream(fd))).toEqual(infected(EICAR_FOUND));
        expect(session.scanPath(files.marked)).toEqual(infected(MARKER_FOUND));
        expect(withFd(files.clean, (fd) => session.scanStream(fd))).toEqual(clean);
      }
      expect(session.requests).toBe(120);
      expect(session.open).toBe(true);
      session.end();
      expect(Atomics.load(connections, 0)).toBe(1);
    } finally {
      const stopped = new Promise((resolve) => (proxy.onmessage = resolve));
      proxy.postMessage("stop");
      await stopped;
      proxy.terminate();
    }
  });

  test("a unix session passes descriptors, streams and paths, and answers PING and VERSION in between", () => {
    const session = clientOf(clamd, "unix").session();
    try {
      for (let i = 0; i < 35; i++) {
        expect(withFd(files.eicar, (fd) => session.scanFd(fd))).toEqual(infected(EICAR_FOUND));
        expect(withFd(files.marked, (fd) => session.scanStream(fd))).toEqual(infected(MARKER_FOUND));
        expect(session.scanPath(files.clean)).toEqual(clean);
      }
      expect(() => session.ping()).not.toThrow();
      expect(session.version()).toMatch(/^ClamAV /);
      // clamd numbers replies per connection; the session checks each number, so 107 means one connection.
      expect(session.requests).toBe(107);
    } finally {
      session.end();
    }
  });
});

describe("inside a session", () => {
  test("clamd's error about a file is a verdict and the session goes on", () => {
    const session = clientOf(clamd, "unix").session();
    try {
      expect(session.scanPath(join(clamd.dir, "missing"))).toEqual({
        ok: true,
        verdict: { kind: "error", message: "File path check failure: No such file or directory. ERROR" },
        attempts: 1,
      });
      expect(session.scanPath(files.eicar)).toEqual(infected(EICAR_FOUND));
      expect(session.open).toBe(true);
    } finally {
      session.end();
    }
  });

  test("all-match is refused without sending, because clamd rejects ALLMATCHSCAN inside IDSESSION", () => {
    const session = clientOf(clamd, "unix").session();
    try {
      const out = session.scanPath(files.marked, { allmatch: true });
      expect(out).toMatchObject({ ok: false, attempts: 0 });
      if (!out.ok) {
        expect(out.error.kind).toBe("refused");
        expect(out.error.message).toContain("clamd accepts ALLMATCHSCAN only on its own connection");
      }
      expect(session.open).toBe(true);
      expect(session.scanPath(files.marked)).toEqual(infected(MARKER_FOUND));
    } finally {
      session.end();
    }
  });

  test("a path with a line break is refused and the session goes on", () => {
    const session = clientOf(clamd, "unix").session();
    try {
      const out = session.scanPath(`${clamd.dir}/a\nb`);
      expect(out).toMatchObject({ ok: false, attempts: 0 });
      expect(session.scanPath(files.eicar)).toEqual(infected(EICAR_FOUND));
    } finally {
      session.end();
    }
  });

  test("a stream over StreamMaxLength is a size-limit error and closes the session", () => {
    const big = join(clamd.dir, "big-session.bin");
    writeFileSync(big, Buffer.alloc(2 * 1024 * 1024, 0x62));
    for (const transport of ["unix", "tcp"] as const) {
      const session = clientOf(clamd, transport).session();
      expect(withFd(files.eicar, (fd) => session.scanStream(fd))).toEqual(infected(EICAR_FOUND));
      const out = withFd(big, (fd) => session.scanStream(fd));
      expect(out).toMatchObject({ ok: false, attempts: 1 });
      if (!out.ok) expect(out.error.kind).toBe("size-limit");
      expect(session.open).toBe(false);
      session.end();
    }
  });

  test("fd passing over TCP is refused and the session goes on", () => {
    const session = clientOf(clamd, "tcp").session();
    try {
      const out = withFd(files.eicar, (fd) => session.scanFd(fd));
      expect(out).toMatchObject({ ok: false, attempts: 0 });
      if (!out.ok) expect(out.error.kind).toBe("refused");
      expect(withFd(files.eicar, (fd) => session.scanStream(fd))).toEqual(infected(EICAR_FOUND));
    } finally {
      session.end();
    }
  });
});

describe("the end of a session", () => {
  test("end() may be called twice, and requests after it fail with attempts 0", () => {
    const session = clientOf(clamd, "unix").session();
    expect(session.scanPath(files.clean)).toEqual(clean);
    session.end();
    session.end();
    expect(session.open).toBe(false);
    const out = session.scanPath(files.eicar);
    expect(out).toMatchObject({ ok: false, attempts: 0 });
    if (!out.ok) expect(out.error.message).toBe(`The session with clamd at unix:${clamd.socket} is closed`);
    expect(() => session.ping()).toThrow("is closed");
  });

  test("a session clamd closed after its ReadTimeout is reported before anything is sent", async () => {
    const session = clientOf(clamd, "unix").session();
    expect(session.scanPath(files.clean)).toEqual(clean);
    await Bun.sleep(READ_TIMEOUT_S * 1000 + 1500);
    const out = withFd(files.eicar, (fd) => session.scanFd(fd));
    expect(out).toMatchObject({ ok: false, attempts: 0 });
    if (!out.ok) {
      expect(out.error.kind).toBe("connect");
      expect(out.error.message).toStartWith(`clamd at unix:${clamd.socket} closed the session while it was idle (its ReadTimeout)`);
    }
    expect(session.open).toBe(false);
    // The caller's choice: a new session.
    const again = clientOf(clamd, "unix").session();
    expect(withFd(files.eicar, (fd) => again.scanFd(fd))).toEqual(infected(EICAR_FOUND));
    again.end();
  });

  test("session() against a missing socket throws a connect error after the retries", () => {
    const client = new ClamdClient({ endpoint: { kind: "unix", path: join(clamd.dir, "none.sock") }, timeoutMs: 500, retries: 1, streamMaxLength: 1 << 20 });
    expect(() => client.session()).toThrow(`Cannot connect to clamd at unix:${join(clamd.dir, "none.sock")}: ENOENT (no such socket)`);
  });
});
