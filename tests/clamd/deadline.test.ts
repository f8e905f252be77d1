// A request's absolute deadline bounds the whole conversation, not just each step: a peer that accepts
// and never answers (or trickles) cannot keep a scanner busy past the scan's deadline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, rmSync, writeFileSync } from "node:fs";
import { monotonicMs } from "../../ffi/libc.ts";
import { PollSet } from "../../ffi/poll.ts";
import { ClamdClient } from "../../src/clamd/client.ts";
import { ClamdMultiplexer } from "../../src/clamd/multiplexer.ts";
import { createPoolSettings } from "../../src/clamd/pool-settings.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";

// Accepting needs no JavaScript: the kernel's backlog takes the connection while this thread is blocked
// in the synchronous client. The listener never answers.
let server: { port: number; stop(closeActive?: boolean): void };
beforeAll(() => {
  server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
});
afterAll(() => server.stop(true));

describe("absolute deadlines", () => {
  test("a job's deadline ends its conversation long before the per-step timeout, and the job is reported once", () => {
    const pool = createPoolSettings({ endpoints: [{ kind: "tcp", host: "127.0.0.1", port: server.port }], timeoutMs: 5000, retries: 2, streamMaxLength: 1 << 20 });
    const reports: ScanOutcome[] = [];
    const mux = new ClamdMultiplexer({ pool, modes: ["stream"], capacity: 1, onDone: (_t, o) => reports.push(o) });
    const file = `/tmp/onacc-deadline-mux-${process.pid}`;
    writeFileSync(file, "clean\n");
    const fd = openSync(file, "r");
    const set = new PollSet(1);
    const t0 = monotonicMs();
    try {
      expect(mux.submit(7, fd, t0 + 300)).toBe(true);
      while (reports.length === 0 && monotonicMs() - t0 < 3000) {
        const n = mux.prepare(set, 0);
        set.wait(mux.timeoutMs(), n);
        mux.dispatch(set, 0, n);
      }
      const took = monotonicMs() - t0;
      expect(reports).toHaveLength(1);
      const out = reports[0]!;
      expect(out.ok).toBe(false);
      if (!out.ok) {
        expect(out.error.kind).toBe("timeout");
        expect(out.error.message).toStartWith("No clamd endpoint answered within the scan deadline of 300 ms; last error: Timed out after 300 ms waiting for a reply");
      }
      expect(took).toBeGreaterThanOrEqual(290);
      expect(took).toBeLessThan(1500);
      expect(mux.inFlight).toBe(0);
      expect(mux.timeoutMs()).toBe(-1);
    } finally {
      closeSync(fd);
      rmSync(file, { force: true });
    }
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
