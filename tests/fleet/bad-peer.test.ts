import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requestAsync } from "../../src/clamd/async-request.ts";
import { ClamdClient } from "../../src/clamd/client.ts";
import { poolHealth } from "../../src/clamd/health.ts";
import { createPoolSettings } from "../../src/clamd/pool-settings.ts";
import { MAX_RECORD_BYTES } from "../../src/clamd/protocol.ts";
import type { ClamdEndpoint } from "../../src/config/types.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { muxHarness } from "../fixtures/multiplexer.ts";
import { EICAR } from "../fixtures/signatures.ts";
import type { BadPeerReady } from "./bad-peer.ts";

let worker: Worker;
let ports: BadPeerReady;
let clamd: TestClamd;
let dir = "";
let eicar = "";

beforeAll(async () => {
  worker = new Worker(new URL("./bad-peer.ts", import.meta.url).href);
  ports = await new Promise<BadPeerReady>((resolve) => {
    worker.onmessage = (e) => resolve(e.data as BadPeerReady);
    worker.postMessage("start");
  });
  clamd = await startClamd();
  dir = mkdtempSync("/tmp/onacc-badpeer-");
  eicar = join(dir, "eicar.com");
  writeFileSync(eicar, EICAR);
});

afterAll(async () => {
  await new Promise((resolve) => {
    worker.onmessage = resolve;
    worker.postMessage("stop");
  });
  worker.terminate();
  await disposeClamd(clamd);
  rmSync(dir, { recursive: true, force: true });
});

const tcp = (port: number): ClamdEndpoint => ({ kind: "tcp", host: "127.0.0.1", port });

function scan(c: { scanStream(fd: number): ReturnType<ClamdClient["scanStream"]> }) {
  const fd = openSync(eicar, "r");
  try {
    return c.scanStream(fd);
  } finally {
    closeSync(fd);
  }
}

describe("a peer that is not clamd", () => {
  test("endless bytes without a NUL are a protocol error after 64 KiB, not a buffer that grows until the timeout", () => {
    const c = new ClamdClient({ endpoint: tcp(ports.flood), timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 });
    const t0 = performance.now();
    const out = scan(c);
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.error.kind).toBe("protocol");
      expect(out.error.message).toBe(
        `clamd at tcp://127.0.0.1:${ports.flood} sent a reply longer than ${MAX_RECORD_BYTES} bytes ("${"A".repeat(40)}"…)`,
      );
    }
    // Cut off by size, long before the 5 s reply timeout.
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(() => c.ping()).toThrow("sent a reply longer than");
  });

  test("one over-long record is refused the same way, even when it ends", () => {
    const out = scan(new ClamdClient({ endpoint: tcp(ports.long), timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 }));
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.error.message).toContain(`sent a reply longer than ${MAX_RECORD_BYTES} bytes`);
  });

  test("the pool fails over from a flooding peer to a real clamd and marks the peer down", () => {
    const settings = createPoolSettings({ endpoints: [tcp(ports.flood), tcp(clamd.port)], timeoutMs: 2000, retries: 0, streamMaxLength: 1 << 20 });
    const pool = muxHarness(settings, { capacity: 1 });
    const out = scan({ scanStream: (fd) => pool.scan(fd).outcome });
    expect(out).toMatchObject({ ok: true, verdict: { kind: "infected" }, attempts: 2 });
    expect(poolHealth(settings).endpoints[0]).toMatchObject({ up: false, lastError: "a scan failed (protocol)" });
  });

  test("the async health check refuses an over-long reply too", async () => {
    await expect(requestAsync(tcp(ports.flood), "zPING\0", 2000)).rejects.toThrow(`clamd at tcp://127.0.0.1:${ports.flood} sent more than 65536 bytes`);
  });
});
