import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { queryStatus } from "../../src/status/client.ts";
import { MAX_LINE_BYTES, startStatusServer, type StatusServer } from "../../src/status/server.ts";
import { FakeSource, fakeSnapshot } from "./fake-source.ts";

let root = "";
let server: StatusServer | undefined;
let source: FakeSource;
let socketPath = "";

beforeAll(() => {
  root = mkdtempSync("/tmp/onacc-status-");
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

let serial = 0;
async function start(extra: Partial<Parameters<typeof startStatusServer>[0]> = {}): Promise<StatusServer> {
  source = new FakeSource();
  socketPath = join(root, `run-${++serial}`, "status.sock");
  server = await startStatusServer({ socketPath, source, ...extra });
  return server;
}

/**
 * A raw client: writes `chunks` one by one (a tick apart), then collects reply lines until `lines` came
 * or the server closed. `closed` tells whether the server hung up.
 */
async function converse(path: string, chunks: (string | Uint8Array)[], lines: number): Promise<{ replies: any[]; closed: boolean }> {
  return await new Promise((resolve, reject) => {
    let buf = "";
    const replies: any[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ replies, closed });
    };
    const timer = setTimeout(() => finish(false), 3000);
    Bun.connect({
      unix: path,
      socket: {
        async open(s) {
          for (const c of chunks) {
            s.write(c);
            await Bun.sleep(1);
          }
        },
        data(s, chunk) {
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            replies.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
          }
          if (replies.length >= lines) {
            finish(false);
            s.end();
          }
        },
        close() {
          finish(true);
        },
        connectError(_s, err) {
          reject(err);
        },
      },
    }).catch(reject);
  });
}

describe("status socket", () => {
  test("startStatusServer() creates the directory 0700 and the socket 0600, and stop() removes the socket", async () => {
    const s = await start();
    expect(statSync(join(socketPath, "..")).mode & 0o777).toBe(0o700);
    const st = statSync(socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    await s.stop();
    expect(existsSync(socketPath)).toBe(false);
  });

  test("a status request is answered with the source's snapshot", async () => {
    await start();
    const reply = await queryStatus(socketPath, { cmd: "status" });
    expect(reply).toEqual({ ok: true, status: fakeSnapshot() });
  });

  test("flush-cache asks the source to flush; ping answers with the pid", async () => {
    await start();
    expect(await queryStatus(socketPath, { cmd: "flush-cache" })).toEqual({ ok: true, flushed: true });
    expect(source.flushes).toEqual(["status socket request"]);
    expect(await queryStatus(socketPath, { cmd: "ping" })).toEqual({ ok: true, pong: true, pid: process.pid });
  });

  test("garbage gets an error reply and the same connection still answers the next request", async () => {
    await start();
    const { replies, closed } = await converse(
      socketPath,
      ["hello there\n", "[1,2]\n", '{"cmd":42}\n', '{"cmd":"reboot"}\n', "\n", '{"cmd":"ping"}\n'],
      5,
    );
    expect(closed).toBe(false);
    expect(replies[0]).toEqual({ ok: false, error: 'not JSON: "hello there"; send e.g. {"cmd":"status"}' });
    expect(replies[1]).toEqual({ ok: false, error: 'a request is a JSON object with a "cmd" string, e.g. {"cmd":"status"}' });
    expect(replies[2]).toEqual(replies[1]);
    expect(replies[3]).toEqual({ ok: false, error: 'unknown command "reboot"; commands: status, flush-cache, ping, selftest-begin, selftest-probe, selftest-end' });
    expect(replies[4]).toEqual({ ok: true, pong: true, pid: process.pid });
  });

  test("the self-test commands reach the source's handler; its refusals and missing fields are error replies", async () => {
    await start();
    expect(await queryStatus(socketPath, { cmd: "selftest-begin" })).toEqual({ ok: false, error: "this onacc offers no self-test" });
    await server!.stop();
    const calls: string[] = [];
    source = new FakeSource();
    source.selfTest = {
      begin: () => ({ nonce: "n1", probeName: ".onacc-selftest-n1", trees: ["/srv"], prevention: true, denyOnError: false, rootExcluded: false, endpoints: [], expiresInMs: 60000 }),
      probe(nonce, path) {
        calls.push(`${nonce} ${path}`);
        if (path !== "/srv/.onacc-selftest-n1") throw new Error(`test file "${path}" is not named .onacc-selftest-n1`);
      },
      end: (nonce) => [{ path: `/srv/.onacc-selftest-${nonce}`, detections: 1, removed: true }],
    };
    socketPath = join(root, `run-${++serial}`, "status.sock");
    server = await startStatusServer({ socketPath, source });
    expect(await queryStatus(socketPath, { cmd: "selftest-begin" })).toMatchObject({ ok: true, selfTest: { nonce: "n1", trees: ["/srv"] } });
    expect(await queryStatus(socketPath, { cmd: "selftest-probe", nonce: "n1", path: "/srv/.onacc-selftest-n1" })).toEqual({ ok: true, registered: "/srv/.onacc-selftest-n1" });
    expect(await queryStatus(socketPath, { cmd: "selftest-probe", nonce: "n1", path: "/etc/passwd" })).toEqual({
      ok: false,
      error: '"selftest-probe" failed: test file "/etc/passwd" is not named .onacc-selftest-n1',
    });
    const { replies } = await converse(socketPath, ['{"cmd":"selftest-probe","nonce":"n1"}\n', '{"cmd":"selftest-end","nonce":7}\n'], 2);
    expect(replies).toEqual([
      { ok: false, error: '"selftest-probe" failed: "selftest-probe" needs a "path" string' },
      { ok: false, error: '"selftest-end" failed: "selftest-end" needs a "nonce" string' },
    ]);
    expect(await queryStatus(socketPath, { cmd: "selftest-end", nonce: "n1" })).toEqual({ ok: true, probes: [{ path: "/srv/.onacc-selftest-n1", detections: 1, removed: true }] });
    expect(calls).toEqual(["n1 /srv/.onacc-selftest-n1", "n1 /etc/passwd"]);
  });

  test("a line longer than 64 KiB gets an error reply and the connection closes; new clients are still served", async () => {
    await start();
    const huge = "x".repeat(16 * 1024);
    const { replies, closed } = await converse(socketPath, [huge, huge, huge, huge, huge, '{"cmd":"ping"}\n'], 2);
    expect(replies).toEqual([{ ok: false, error: `request line longer than ${MAX_LINE_BYTES} bytes; closing` }]);
    expect(closed).toBe(true);
    // One chunk holding a complete over-long line, too.
    const again = await converse(socketPath, [`{"cmd":"status","pad":"${"y".repeat(MAX_LINE_BYTES)}"}\n`], 2);
    expect(again.replies[0].ok).toBe(false);
    expect(again.closed).toBe(true);
    expect(await queryStatus(socketPath, { cmd: "ping" })).toMatchObject({ ok: true, pong: true });
  });

  test("a request split across writes, with a UTF-8 character split between them, is read whole", async () => {
    await start();
    const bytes = new TextEncoder().encode('{"cmd":"ping","note":"é"}\n');
    const cut = bytes.indexOf(0xc3) + 1; // between the two bytes of "é"
    const { replies } = await converse(socketPath, [bytes.subarray(0, 3), bytes.subarray(3, cut), bytes.subarray(cut)], 1);
    expect(replies).toEqual([{ ok: true, pong: true, pid: process.pid }]);
  });

  test("a source that throws gives an error reply and the server keeps running", async () => {
    await start();
    source.failWith = "ring not attached";
    expect(await queryStatus(socketPath, { cmd: "status" })).toEqual({ ok: false, error: '"status" failed: ring not attached' });
    source.failWith = undefined;
    expect((await queryStatus(socketPath, { cmd: "status" })).ok).toBe(true);
  });

  test("a peer whose uid is not allowed (SO_PEERCRED) is refused", async () => {
    await start({ allowedUids: [12345] });
    const { replies, closed } = await converse(socketPath, ['{"cmd":"status"}\n'], 2);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toEqual({ ok: false, error: "permission denied: the status socket answers root only (you are uid 0)" });
    expect(closed).toBe(true);
  });

  test("a non-root user cannot even connect: the socket's directory and mode keep it out", async () => {
    await start();
    const script = `Bun.connect({ unix: ${JSON.stringify(socketPath)}, socket: { data() {}, open(s) { console.log("connected"); s.end(); } } }).catch((e) => console.log(e.code));`;
    const r = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script], { cwd: "/tmp" });
    expect(r.stdout.toString().trim()).toBe("EACCES");
  });

  test("a second server on a live socket refuses; a stale socket left by a killed process is replaced", async () => {
    await start();
    await expect(startStatusServer({ socketPath, source })).rejects.toThrow("another onacc answers there");
    // A socket file nobody listens on any more (its process was killed) is taken over.
    const stale = join(root, `stale-${serial}`, "status.sock");
    mkdirSync(join(stale, ".."), { mode: 0o700 });
    const child = Bun.spawn([process.execPath, "-e", `Bun.listen({ unix: ${JSON.stringify(stale)}, socket: { data() {} } }); console.log("ready");`], {
      stdout: "pipe",
    });
    const reader = child.stdout.getReader();
    await reader.read();
    child.kill("SIGKILL");
    await child.exited;
    expect(statSync(stale).isSocket()).toBe(true);
    const second = await startStatusServer({ socketPath: stale, source });
    try {
      expect((await queryStatus(stale, { cmd: "ping" })).ok).toBe(true);
    } finally {
      await second.stop();
    }
  });

  test("a path that is not a socket, and a directory others can write, are refused", async () => {
    const dir = join(root, "plain");
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, "status.sock"), "not a socket");
    await expect(startStatusServer({ socketPath: join(dir, "status.sock"), source: new FakeSource() })).rejects.toThrow(
      `Cannot create status socket "${join(dir, "status.sock")}": the path exists and is not a socket`,
    );
    const open = join(root, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(startStatusServer({ socketPath: join(open, "s.sock"), source: new FakeSource() })).rejects.toThrow(
      `Status socket directory "${open}" is writable by others (mode 777)`,
    );
  });
});

describe("--metrics-listen", () => {
  test("GET /metrics serves Prometheus text; other paths are 404", async () => {
    const s = await start({ metrics: { host: "127.0.0.1", port: 0 } });
    expect(s.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await fetch(s.metricsUrl!);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain('onacc_clamd_up{endpoint="unix:/run/clamav/clamd.ctl"} 1');
    expect(text).toContain('onacc_clamd_up{endpoint="tls://clamd.example@10.0.0.5:3311"} 0');
    expect(text).toContain('onacc_events_total{outcome="denied"} 3');
    expect(text).toContain("onacc_scan_duration_seconds_count 100");
    expect((await fetch(s.metricsUrl!.replace("/metrics", "/"))).status).toBe(404);
    source.failWith = "boom";
    expect((await fetch(s.metricsUrl!)).status).toBe(500);
  });

  test("a metrics address already in use is a clear start-up error", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      await expect(start({ metrics: { host: "127.0.0.1", port: busy.port } })).rejects.toThrow(`Cannot serve metrics on 127.0.0.1:${busy.port}`);
      expect(existsSync(socketPath)).toBe(false);
    } finally {
      busy.stop(true);
    }
  });
});

describe("--status-socket=none", () => {
  test("with no control socket, /metrics is still served", async () => {
    source = new FakeSource();
    const s = await startStatusServer({ socketPath: null, source, metrics: { host: "127.0.0.1", port: 0 } });
    try {
      expect(s.socketPath).toBeNull();
      expect((await fetch(s.metricsUrl!)).status).toBe(200);
    } finally {
      await s.stop();
    }
  });
});
