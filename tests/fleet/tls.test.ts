import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requestAsync } from "../../src/clamd/async-request.ts";
import { describeEndpoint, resolveEndpoint } from "../../src/clamd/address.ts";
import { ClamdClient } from "../../src/clamd/client.ts";
import { poolHealth, startHealthChecks, type HealthChange } from "../../src/clamd/health.ts";
import { monotonicMs } from "../../ffi/libc.ts";
import { PollSet } from "../../ffi/poll.ts";
import { ClamdMultiplexer } from "../../src/clamd/multiplexer.ts";
import { createPoolSettings } from "../../src/clamd/pool-settings.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";
import type { TlsEndpoint } from "../../src/config/types.ts";
import { ClamdError } from "../../src/errors.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR, EICAR_SIGNATURE, MARKER_SIGNATURE, markedBody } from "../fixtures/signatures.ts";
import { muxHarness, startLoad } from "../fixtures/multiplexer.ts";
import { makePki, startTerminator, type Terminator, type TestPki } from "./tls-fixture.ts";

let clamd: TestClamd;
let pki: TestPki;
let stunnel: Terminator;
let dir = "";
const files = { eicar: "", marked: "", clean: "", huge: "" };

beforeAll(async () => {
  [clamd, pki] = await Promise.all([startClamd(), Promise.resolve(makePki())]);
  stunnel = await startTerminator(pki, clamd.port);
  dir = mkdtempSync("/tmp/onacc-tls-");
  chmodSync(dir, 0o755);
  files.eicar = join(dir, "eicar.com");
  files.marked = join(dir, "marked.bin");
  files.clean = join(dir, "clean.txt");
  files.huge = join(dir, "huge.bin");
  writeFileSync(files.eicar, EICAR);
  writeFileSync(files.marked, markedBody(600 * 1024));
  writeFileSync(files.clean, "nothing here\n");
  writeFileSync(files.huge, markedBody(3 * 1024 * 1024)); // over the test clamd's StreamMaxLength 1M
});

afterAll(async () => {
  await stunnel?.stop();
  await disposeClamd(clamd);
  pki?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function tlsEndpoint(over: Partial<TlsEndpoint> = {}): TlsEndpoint {
  return { kind: "tls", host: "127.0.0.1", port: stunnel.port, ca: pki.caCert, verifyHostname: true, ...over };
}

function client(over: Partial<TlsEndpoint> = {}, streamMaxLength = 1 << 20): ClamdClient {
  return new ClamdClient({ endpoint: tlsEndpoint(over), timeoutMs: 3000, retries: 0, streamMaxLength });
}

function stream(c: ClamdClient, file: string): ScanOutcome {
  const fd = openSync(file, "r");
  try {
    return c.scanStream(fd);
  } finally {
    closeSync(fd);
  }
}

/** The ClamdError a call throws (fails the test when it does not). */
function errorOf(fn: () => unknown): ClamdError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClamdError);
    return err as ClamdError;
  }
  throw new Error("expected a ClamdError");
}

const infected = (signature: string) => ({ ok: true, verdict: { kind: "infected", signatures: [`${signature}.UNOFFICIAL`] } });

describe("TLS through stunnel4 to a real clamd", () => {
  test("an EICAR stream over TLS is reported infected, a clean file clean, and PING/VERSION answer", () => {
    const c = client();
    expect(stream(c, files.eicar)).toMatchObject(infected(EICAR_SIGNATURE));
    expect(stream(c, files.clean)).toMatchObject({ ok: true, verdict: { kind: "clean" } });
    expect(() => c.ping()).not.toThrow();
    expect(c.version()).toStartWith("ClamAV ");
  });

  test("a 600 KiB file crosses TLS in several chunks and its marker is found", () => {
    expect(stream(client(), files.marked)).toMatchObject(infected(MARKER_SIGNATURE));
  });

  test("a stream over clamd's StreamMaxLength ends in a size-limit error over TLS too", () => {
    // Hint: the terminator may reset the connection before its copy of clamd's reply reaches onacc; the
    // known StreamMaxLength (1M, as the test clamd's) explains the hang-up then.
    for (let i = 0; i < 5; i++) {
      const out = stream(client({}, 1 << 20), files.huge);
      expect(out.ok).toBe(false);
      if (!out.ok) expect(out.error.kind).toBe("size-limit");
    }
  });

  test("fd passing over TLS is refused: descriptors cannot cross a network", () => {
    const fd = openSync(files.eicar, "r");
    const out = client().scanFd(fd);
    closeSync(fd);
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.error.kind).toBe("refused");
      expect(out.error.message).toContain("descriptor passing needs a unix socket");
    }
  });

  test("a host name is checked against the certificate: localhost is in it", () => {
    expect(stream(client({ host: "localhost" }), files.eicar)).toMatchObject(infected(EICAR_SIGNATURE));
  });

  test("resolveEndpoint() keeps a TLS endpoint's name for SNI and the certificate check", async () => {
    const e = await resolveEndpoint(tlsEndpoint({ host: "clamd.test" }), async () => [{ address: "127.0.0.1", family: 4 }]);
    expect(e).toMatchObject({ kind: "tls", host: "127.0.0.1", servername: "clamd.test" });
    expect(describeEndpoint(e)).toBe(`tls://clamd.test@127.0.0.1:${stunnel.port}`);
    expect(stream(new ClamdClient({ endpoint: e, timeoutMs: 3000, retries: 0, streamMaxLength: 1 << 20 }), files.eicar)).toMatchObject(
      infected(EICAR_SIGNATURE),
    );
  });
});

describe("many TLS conversations from one thread", () => {
  test("24 streams over TLS in flight at once: each handshake, stream and reply proceeds without blocking the others", () => {
    const settings = createPoolSettings({ endpoints: [tlsEndpoint()], timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 });
    const reports = new Map<number, ScanOutcome>();
    const mux = new ClamdMultiplexer({ pool: settings, modes: ["stream"], capacity: 24, onDone: (token, outcome) => reports.set(token, outcome) });
    const order = [files.eicar, files.marked, files.clean, files.huge];
    const fds = Array.from({ length: 24 }, (_, i) => openSync(order[i % order.length]!, "r"));
    const set = new PollSet(mux.capacity);
    let mostInFlight = 0;
    try {
      const t0 = monotonicMs();
      fds.forEach((fd, i) => mux.submit(i, fd, t0 + 10000));
      while (reports.size < fds.length) {
        if (monotonicMs() - t0 > 20000) throw new Error(`only ${reports.size} of ${fds.length} reported`);
        const n = mux.prepare(set, 0);
        mostInFlight = Math.max(mostInFlight, n);
        set.wait(mux.timeoutMs(), n);
        mux.dispatch(set, 0, n);
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    // Every conversation waited in the same poll() at least once.
    expect(mostInFlight).toBe(24);
    for (const [token, outcome] of reports) {
      const file = order[token % order.length];
      if (file === files.eicar) expect(outcome).toMatchObject(infected(EICAR_SIGNATURE));
      else if (file === files.marked) expect(outcome).toMatchObject(infected(MARKER_SIGNATURE));
      else if (file === files.clean) expect(outcome).toMatchObject({ ok: true, verdict: { kind: "clean" } });
      else expect(outcome).toMatchObject({ ok: false, error: { kind: "size-limit" } });
    }
    expect(poolHealth(settings).endpoints[0]).toMatchObject({ up: true, inFlight: 0, scans: 18 });
  });
});

describe("TLS refusals name the endpoint and the verify error", () => {
  test("a terminator whose certificate is not signed by the given CA is refused", () => {
    const c = client({ ca: pki.otherCaCert });
    const err = errorOf(() => c.ping());
    expect(err.kind).toBe("connect");
    expect(err.message).toBe(
      `TLS handshake with clamd at tls://127.0.0.1:${stunnel.port} refused its certificate: unable to get local issuer certificate (X509 error 20) (is "${pki.otherCaCert}" the CA that signed the terminator's certificate?)`,
    );
    // And nothing was scanned: the outcome is an error, never a verdict.
    const out = stream(c, files.eicar);
    expect(out.ok).toBe(false);
  });

  test("a certificate for another name is refused as a hostname mismatch", () => {
    const err = errorOf(() => client({ servername: "other.test" }).ping());
    expect(err.message).toStartWith(`TLS handshake with clamd at tls://other.test@127.0.0.1:${stunnel.port} refused its certificate: hostname mismatch (X509 error 62)`);
    const byAddress = errorOf(() => client({ port: stunnel.wrongNamePort }).ping());
    expect(byAddress.message).toContain("IP address mismatch (X509 error 64)");
    const byName = errorOf(() => client({ port: stunnel.wrongNamePort, host: "localhost" }).ping());
    expect(byName.message).toContain("hostname mismatch (X509 error 62)");
    expect(byName.message).toContain('the certificate does not name "localhost"');
  });

  test("with the hostname check off the name may differ, but the CA is still checked", () => {
    expect(stream(client({ port: stunnel.wrongNamePort, verifyHostname: false }), files.eicar)).toMatchObject(infected(EICAR_SIGNATURE));
    const err = errorOf(() => client({ port: stunnel.wrongNamePort, verifyHostname: false, ca: pki.otherCaCert }).ping());
    expect(err.message).toContain("unable to get local issuer certificate");
  });

  test("a terminator that requires a client certificate refuses onacc without one and scans with one", () => {
    const err = errorOf(() => client({ port: stunnel.mtlsPort }).ping());
    expect(err.message).toContain(`clamd at tls://127.0.0.1:${stunnel.mtlsPort}`);
    expect(err.message).toContain("certificate required");
    expect(err.message).toContain("--tls-cert/--tls-key");
    const withCert = client({ port: stunnel.mtlsPort, cert: pki.clientCert, key: pki.clientKey });
    expect(stream(withCert, files.eicar)).toMatchObject(infected(EICAR_SIGNATURE));
  });

  test("unusable TLS files are named: a missing CA file, a key that does not match the certificate", () => {
    const missing = join(dir, "no-such-ca.pem");
    expect(errorOf(() => client({ ca: missing }).ping()).message).toStartWith(
      `Cannot set up TLS for clamd at tls://127.0.0.1:${stunnel.port}: cannot load CA file "${missing}"`,
    );
    expect(errorOf(() => client({ cert: pki.clientCert, key: pki.serverKey }).ping()).message).toContain(
      `client key "${pki.serverKey}" does not match certificate "${pki.clientCert}"`,
    );
  });
});

describe("TLS endpoints in the pool and its async health check", () => {
  test("requestAsync() PINGs over TLS with the same checks as the scanning client", async () => {
    expect(await requestAsync(tlsEndpoint(), "zPING\0", 3000)).toBe("PONG");
    expect(await requestAsync(tlsEndpoint({ port: stunnel.mtlsPort, cert: pki.clientCert, key: pki.clientKey }), "zPING\0", 3000)).toBe("PONG");
    expect(await requestAsync(tlsEndpoint({ port: stunnel.wrongNamePort, verifyHostname: false }), "zPING\0", 3000)).toBe("PONG");
    await expect(requestAsync(tlsEndpoint({ ca: pki.otherCaCert }), "zPING\0", 3000)).rejects.toThrow(/refused its certificate/);
    await expect(requestAsync(tlsEndpoint({ port: stunnel.wrongNamePort, host: "localhost" }), "zPING\0", 3000)).rejects.toThrow(
      /refused its certificate: Hostname\/IP does not match/,
    );
    await expect(requestAsync(tlsEndpoint({ port: stunnel.mtlsPort }), "zPING\0", 3000)).rejects.toThrow(/CERTIFICATE_REQUIRED|certificate required/i);
  });

  test("the health checker keeps a TLS endpoint with the wrong CA down; two scans in flight go to the good one", async () => {
    const settings = createPoolSettings({
      endpoints: [tlsEndpoint({ ca: pki.otherCaCert }), tlsEndpoint({ host: "localhost" })],
      timeoutMs: 2000,
      retries: 0,
      streamMaxLength: 1 << 20,
      healthIntervalMs: 200,
      backoffMinMs: 50,
      backoffMaxMs: 200,
    });
    const changes: HealthChange[] = [];
    const checker = startHealthChecks(settings, (c) => changes.push(c));
    try {
      const deadline = Date.now() + 5000;
      while (!changes.some((c) => c.index === 0 && !c.up) && Date.now() < deadline) await Bun.sleep(20);
      expect(changes.find((c) => c.index === 0)!.reason).toContain("refused its certificate");
      expect(changes.some((c) => c.index === 1)).toBe(false);

      const run = startLoad(settings, files.eicar, { width: 2 });
      await Bun.sleep(600);
      const done = await run.stop();
      expect(done.errors).toEqual([]);
      expect(done.infected).toBeGreaterThan(4);
      const health = poolHealth(settings);
      expect(health.endpoints[0]!.scans).toBe(0);
      expect(health.endpoints[1]!.scans).toBe(done.scans);
      // A descriptor cannot cross the network: the table streams to TLS endpoints.
      expect(health.counters.scansByMode).toMatchObject({ fdpass: 0, stream: done.scans });
    } finally {
      checker.stop();
    }
  }, 20000);

  test("a scan through the pool over TLS", () => {
    const settings = createPoolSettings({ endpoints: [tlsEndpoint()], timeoutMs: 3000, retries: 0, streamMaxLength: 1 << 20 });
    const fd = openSync(files.eicar, "r");
    expect(muxHarness(settings, { capacity: 1 }).scan(fd).outcome).toMatchObject(infected(EICAR_SIGNATURE));
    closeSync(fd);
    expect(poolHealth(settings).endpoints).toMatchObject([{ endpoint: `tls://127.0.0.1:${stunnel.port}`, scans: 1, up: true }]);
  });
});
