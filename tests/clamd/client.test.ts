// ClamdClient against a real clamd on a unix socket, TCP 127.0.0.1 and TCP ::1: every scan mode, all-match,
// awkward file names, StreamMaxLength, and clear errors when clamd is missing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClamdClient } from "../../src/clamd/client.ts";
import { ClamdError } from "../../src/errors.ts";
import { disposeClamd, freeTcpPort, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { clean, clientOf, EICAR_FOUND, infected, MARKER2_FOUND, MARKER_FOUND, withFd, writeTestFiles, type TestFiles, type Transport } from "./helpers.ts";
import { scanByPath } from "../fixtures/multiplexer.ts";

let clamd: TestClamd;
let files: TestFiles;
beforeAll(async () => {
  clamd = await startClamd({ extra: ["TCPAddr ::1"] });
  files = writeTestFiles(clamd.dir);
});
afterAll(() => disposeClamd(clamd));

const TRANSPORTS: Transport[] = ["unix", "tcp", "tcp6"];

describe("ping() and version()", () => {
  for (const t of TRANSPORTS) {
    test(`answer over ${t}`, () => {
      const client = clientOf(clamd, t);
      expect(() => client.ping()).not.toThrow();
      expect(client.version()).toMatch(/^ClamAV 1\.\d+\.\d+/);
    });
  }

  test("ping() over localhost reaches clamd through 127.0.0.1", () => {
    const client = new ClamdClient({ endpoint: { kind: "tcp", host: "localhost", port: clamd.port }, timeoutMs: 2000, retries: 0, streamMaxLength: 1 << 20 });
    expect(() => client.ping()).not.toThrow();
  });
});

describe("peerPid()", () => {
  test("is clamd's PID over the unix socket", () => {
    expect(clientOf(clamd, "unix").peerPid()).toBe(clamd.pid);
  });

  test("is undefined over TCP", () => {
    expect(clientOf(clamd, "tcp").peerPid()).toBeUndefined();
  });
});

describe("scanFd() passes the descriptor over the unix socket", () => {
  test("detects EICAR and the body marker and passes a clean file", () => {
    const client = clientOf(clamd, "unix");
    expect(withFd(files.eicar, (fd) => client.scanFd(fd))).toEqual(infected(EICAR_FOUND));
    expect(withFd(files.marked, (fd) => client.scanFd(fd))).toEqual(infected(MARKER_FOUND));
    expect(withFd(files.clean, (fd) => client.scanFd(fd))).toEqual(clean);
    expect(withFd(files.empty, (fd) => client.scanFd(fd))).toEqual(clean);
  });

  test("refuses a TCP endpoint without contacting clamd", () => {
    const out = withFd(files.eicar, (fd) => clientOf(clamd, "tcp").scanFd(fd));
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.attempts).toBe(0);
    expect(out.error.kind).toBe("refused");
    expect(out.error.message).toContain("descriptor passing needs a unix socket");
  });

  test("reports an fd that is not open as an io error, not a verdict", () => {
    const out = clientOf(clamd, "unix", { retries: 2 }).scanFd(987654);
    expect(out).toMatchObject({ ok: false, attempts: 1 });
    if (!out.ok) expect(out.error.kind).toBe("io");
  });
});

describe("scanStream() sends the contents with INSTREAM", () => {
  for (const t of TRANSPORTS) {
    test(`detects EICAR and the body marker and passes a clean file over ${t}`, () => {
      const client = clientOf(clamd, t);
      expect(withFd(files.eicar, (fd) => client.scanStream(fd))).toEqual(infected(EICAR_FOUND));
      expect(withFd(files.marked, (fd) => client.scanStream(fd))).toEqual(infected(MARKER_FOUND));
      expect(withFd(files.clean, (fd) => client.scanStream(fd))).toEqual(clean);
      expect(withFd(files.empty, (fd) => client.scanStream(fd))).toEqual(clean);
    });
  }

  test("reads from offset 0 and leaves the descriptor's own offset where it was", () => {
    const client = clientOf(clamd, "unix");
    withFd(files.eicar, (fd) => {
      const head = Buffer.alloc(10);
      expect(readSync(fd, head, 0, 10, null)).toBe(10); // the fd's offset is now 10
      expect(client.scanStream(fd)).toEqual(infected(EICAR_FOUND));
      const next = Buffer.alloc(5);
      readSync(fd, next, 0, 5, null);
      expect(next.toString("latin1")).toBe(EICAR.subarray(10, 15).toString("latin1"));
    });
  });

  test("streams in chunks no larger than a small StreamMaxLength and still finds the marker across them", () => {
    const client = clientOf(clamd, "unix", { streamMaxLength: 1000 });
    expect(withFd(files.marked, (fd) => client.scanStream(fd))).toEqual(infected(MARKER_FOUND));
  });

  test("reports a directory descriptor as an io error", () => {
    const out = withFd(clamd.dir, (fd) => clientOf(clamd, "unix", { retries: 1 }).scanStream(fd));
    expect(out).toMatchObject({ ok: false, attempts: 1 });
    if (!out.ok) {
      expect(out.error.kind).toBe("io");
      expect(out.error.message).toContain("EISDIR");
    }
  });
});

describe("StreamMaxLength", () => {
  for (const t of ["unix", "tcp"] as const) {
    test(`a 2 MiB stream over clamd's 1M limit is a size-limit error over ${t}, not retried`, () => {
      const big = join(clamd.dir, "big.bin");
      writeFileSync(big, Buffer.alloc(2 * 1024 * 1024, 0x61));
      // The client's own StreamMaxLength (equal, larger, 0 = no limit) does not matter: clamd's refusal is what counts.
      for (const streamMaxLength of [1024 * 1024, 100 * 1024 * 1024, 0]) {
        const out = withFd(big, (fd) => clientOf(clamd, t, { retries: 2, streamMaxLength }).scanStream(fd));
        expect(out.ok).toBe(false);
        if (out.ok) return;
        expect(out.attempts).toBe(1);
        expect(out.error).toBeInstanceOf(ClamdError);
        expect(out.error.kind).toBe("size-limit");
        expect(out.error.message).toContain("INSTREAM size limit exceeded");
      }
    });
  }
});

describe("a scan by path lets clamd open the file", () => {
  for (const t of TRANSPORTS) {
    test(`detects EICAR and the body marker and passes a clean file over ${t}`, () => {
      const client = clientOf(clamd, t);
      expect(scanByPath(client, files.eicar)).toEqual(infected(EICAR_FOUND));
      expect(scanByPath(client, files.marked)).toEqual(infected(MARKER_FOUND));
      expect(scanByPath(client, files.clean)).toEqual(clean);
      expect(scanByPath(client, files.empty)).toEqual(clean);
    });
  }

  test("reports every signature with allmatch, and only the first without", () => {
    const client = clientOf(clamd, "unix");
    const all = scanByPath(client, files.both, { allmatch: true });
    expect(all).toMatchObject({ ok: true, attempts: 1, verdict: { kind: "infected" } });
    // clamd reports matches in the engine's order, not the file's.
    expect(all.ok && all.verdict.kind === "infected" && [...all.verdict.signatures].sort()).toEqual([MARKER2_FOUND, MARKER_FOUND].sort());
    const first = scanByPath(client, files.both);
    expect(first.ok && first.verdict.kind === "infected" && first.verdict.signatures.length).toBe(1);
  });

  test("returns clamd's error for a missing file as a verdict, without retrying", () => {
    const out = scanByPath(clientOf(clamd, "unix", { retries: 2 }), join(clamd.dir, "no such file"));
    expect(out).toEqual({
      ok: true,
      verdict: { kind: "error", message: "File path check failure: No such file or directory. ERROR" },
      attempts: 1,
    });
  });

  test("handles spaces, \": \" and bytes that are not UTF-8 in a name", () => {
    const client = clientOf(clamd, "unix");
    const colon = join(clamd.dir, "x: y FOUND z.txt");
    writeFileSync(colon, EICAR);
    expect(scanByPath(client, colon)).toEqual(infected(EICAR_FOUND));
    const latin = Buffer.concat([Buffer.from(`${clamd.dir}/caf`), Buffer.from([0xe9]), Buffer.from(" clean")]);
    writeFileSync(latin, "clean");
    expect(scanByPath(client, latin)).toEqual(clean);
    writeFileSync(latin, EICAR);
    expect(scanByPath(client, latin)).toEqual(infected(EICAR_FOUND));
  });

  test("refuses a relative path without contacting clamd", () => {
    const out = scanByPath(clientOf(clamd, "unix"), "eicar.com");
    expect(out).toMatchObject({ ok: false, attempts: 0 });
    if (!out.ok) expect(out.error.message).toBe('Cannot scan "eicar.com" by path: it is not absolute (clamd would resolve it against its own working directory)');
  });

  test("a path of the longest length clamd's command buffer takes still gets clamd's answer", () => {
    const client = clientOf(clamd, "unix");
    const longest = `/${"a/".repeat(2045)}b`; // 4092 bytes: "zCONTSCAN " + path + NUL = 4103 ≤ 4104
    const out = scanByPath(client, longest);
    expect(out).toMatchObject({ ok: true, verdict: { kind: "error" } });
    expect(scanByPath(client, `${longest}c`)).toMatchObject({ ok: true, verdict: { kind: "error" } });
    const tooLong = scanByPath(client, `${longest}cd`);
    expect(tooLong).toMatchObject({ ok: false, attempts: 0 });
    if (!tooLong.ok) expect(tooLong.error.kind).toBe("refused");
  });
});

describe("a file named with a newline and bytes that are not UTF-8", () => {
  let weird: Buffer;
  beforeAll(() => {
    weird = Buffer.concat([Buffer.from(`${clamd.dir}/evil\nname `), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(".com")]);
    writeFileSync(weird, EICAR);
  });

  test("is detected by fd passing and by streaming", () => {
    expect(withFd(weird, (fd) => clientOf(clamd, "unix").scanFd(fd))).toEqual(infected(EICAR_FOUND));
    expect(withFd(weird, (fd) => clientOf(clamd, "unix").scanStream(fd))).toEqual(infected(EICAR_FOUND));
    expect(withFd(weird, (fd) => clientOf(clamd, "tcp").scanStream(fd))).toEqual(infected(EICAR_FOUND));
  });

  test("is refused by path mode with a clear message, before contacting clamd", () => {
    const out = scanByPath(clientOf(clamd, "unix"), weird);
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.attempts).toBe(0);
    expect(out.error.kind).toBe("refused");
    expect(out.error.message).toBe(
      `Cannot scan "${clamd.dir}/evil\\nname \ufffd\ufffd\ufffd.com" by path: it contains a line break (clamd writes paths unescaped into its log and VirusEvent)`,
    );
  });

  test("would be accepted by clamd itself, which then writes a forged line into its log (why path mode refuses)", async () => {
    mkdirSync(join(clamd.dir, "forge"), { recursive: true });
    const forged = join(clamd.dir, "forge", "innocent.txt: OK\nanother");
    writeFileSync(forged, EICAR);
    expect(await clamd.raw(`zCONTSCAN ${forged}\0`)).toBe(`${forged}: ${EICAR_FOUND} FOUND\0`);
    // clamd's log now holds a clean-looking line for a file it never scanned (it logs just after replying).
    const forgedLine = `${join(clamd.dir, "forge", "innocent.txt")}: OK`;
    for (let i = 0; i < 100 && !clamd.log().includes(forgedLine); i++) await Bun.sleep(20);
    expect(clamd.log()).toContain(forgedLine);
  });
});

describe("when clamd cannot be reached", () => {
  test("a missing socket is a connect error that names the socket, after every retry", () => {
    const path = join(clamd.dir, "nope.sock");
    const client = new ClamdClient({ endpoint: { kind: "unix", path }, timeoutMs: 1000, retries: 2, streamMaxLength: 1 << 20 });
    expect(() => client.ping()).toThrow(new ClamdError("connect", `Cannot connect to clamd at unix:${path}: ENOENT (no such socket)`));
    const out = withFd(files.eicar, (fd) => client.scanFd(fd));
    expect(out).toMatchObject({ ok: false, attempts: 3 });
    if (!out.ok) expect(out.error.message).toBe(`Cannot connect to clamd at unix:${path}: ENOENT (no such socket)`);
  });

  test("a socket file nobody listens on is a connect error", () => {
    const client = new ClamdClient({ endpoint: { kind: "unix", path: files.clean }, timeoutMs: 1000, retries: 0, streamMaxLength: 1 << 20 });
    expect(() => client.version()).toThrow(`Cannot connect to clamd at unix:${files.clean}: ECONNREFUSED (nothing listening on the socket)`);
  });

  test("a closed TCP port is a connect error", async () => {
    const port = await freeTcpPort();
    const client = new ClamdClient({ endpoint: { kind: "tcp", host: "127.0.0.1", port }, timeoutMs: 1000, retries: 1, streamMaxLength: 1 << 20 });
    const out = scanByPath(client, files.eicar);
    expect(out).toMatchObject({ ok: false, attempts: 2 });
    if (!out.ok) expect(out.error.message).toBe(`Cannot connect to clamd at tcp://127.0.0.1:${port}: ECONNREFUSED (connection refused)`);
  });

  test("a socket path longer than sun_path is a connect error", () => {
    const path = `/tmp/${"s".repeat(120)}.sock`;
    const client = new ClamdClient({ endpoint: { kind: "unix", path }, timeoutMs: 1000, retries: 0, streamMaxLength: 1 << 20 });
    expect(() => client.ping()).toThrow(`Cannot connect to clamd at unix:${path}: socket path is 130 bytes; the limit is 107`);
  });

  test("the constructor rejects nonsensical options", () => {
    const endpoint = { kind: "unix", path: "/x" } as const;
    expect(() => new ClamdClient({ endpoint, timeoutMs: 0, retries: 0, streamMaxLength: 1 })).toThrow("clamd timeout must be positive, got 0");
    expect(() => new ClamdClient({ endpoint, timeoutMs: 1, retries: -1, streamMaxLength: 1 })).toThrow("clamd retries must be a whole number ≥ 0, got -1");
    expect(() => new ClamdClient({ endpoint, timeoutMs: 1, retries: 0, streamMaxLength: -1 })).toThrow("StreamMaxLength must be a whole number of bytes ≥ 0, got -1");
  });
});
