// A request's absolute deadline bounds the whole conversation, not just each step: a peer that accepts
// and never answers (or trickles) cannot keep a scanner busy past the scan's deadline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, rmSync, writeFileSync } from "node:fs";
import { monotonicMs } from "../../ffi/libc.ts";
import { ClamdClient } from "../../src/clamd/client.ts";
import { Connection } from "../../src/clamd/transport.ts";

// Accepting needs no JavaScript: the kernel's backlog takes the connection while this thread is blocked
// in the synchronous client. The listener never answers.
let server: { port: number; stop(closeActive?: boolean): void };
beforeAll(() => {
  server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
});
afterAll(() => server.stop(true));

describe("absolute deadlines", () => {
  test("Connection.readRecord() gives up at the hard deadline, long before the per-step timeout", () => {
    const t0 = monotonicMs();
    const conn = Connection.open({ kind: "tcp", host: "127.0.0.1", port: server.port }, 5000, t0 + 300);
    try {
      conn.send(new TextEncoder().encode("zPING\0"), "zPING");
      expect(() => conn.readRecord()).toThrow(/Timed out/);
    } finally {
      conn.close();
    }
    const took = monotonicMs() - t0;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1500);
  });

  test("a client with deadlineAt reports a timeout by then, whatever its OnAccessCurlTimeout", () => {
    const t0 = monotonicMs();
    const client = new ClamdClient({ endpoint: { kind: "tcp", host: "127.0.0.1", port: server.port }, timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20, deadlineAt: t0 + 400 });
    const file = `/tmp/onacc-deadline-${process.pid}`;
    writeFileSync(file, "clean\n");
    const fd = openSync(file, "r");
    try {
      const out = client.scanStream(fd);
      expect(out.ok).toBe(false);
      if (!out.ok) expect(out.error.kind).toBe("timeout");
      const took = monotonicMs() - t0;
      expect(took).toBeGreaterThanOrEqual(390);
      expect(took).toBeLessThan(1500);
    } finally {
      closeSync(fd);
      rmSync(file, { force: true });
    }
  });
});
