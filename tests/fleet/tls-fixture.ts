// A real TLS terminator for the fleet tests: a throw-away PKI made with `openssl req`/`openssl x509` (a test
// CA, a server certificate for clamd.test/localhost/127.0.0.1, a client certificate, and an unrelated CA),
// and Debian's stunnel4 in server mode in front of the test clamd's TCP port. Stopped by PID.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeTcpPort } from "../fixtures/clamd.ts";

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here: trusting only it must refuse the terminator. */
  otherCaCert: string;
  /** Signed by the test CA, but for another name only (wrong.test): a hostname mismatch everywhere. */
  wrongNameCert: string;
  wrongNameKey: string;
  dispose(): void;
}

function openssl(dir: string, args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

// EC P-256 keys: generated in milliseconds, unlike RSA.
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string, subject: string): void {
  openssl(dir, [
    "req", "-x509", ...NEW_KEY, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", subject,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

function makeLeaf(dir: string, name: string, subject: string, extensions: string[]): void {
  openssl(dir, ["req", ...NEW_KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join("\n")}\n`);
  openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`,
  ]);
}

export function makePki(): TestPki {
  const dir = mkdtempSync("/tmp/onacc-pki-");
  makeCa(dir, "ca", "/CN=onacc test CA");
  makeCa(dir, "other-ca", "/CN=some other CA");
  makeLeaf(dir, "server", "/CN=clamd.test", [
    "subjectAltName=DNS:clamd.test,DNS:localhost,IP:127.0.0.1",
    "extendedKeyUsage=serverAuth",
  ]);
  makeLeaf(dir, "wrong-name", "/CN=wrong.test", ["subjectAltName=DNS:wrong.test", "extendedKeyUsage=serverAuth"]);
  makeLeaf(dir, "client", "/CN=onacc-client", ["extendedKeyUsage=clientAuth"]);
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherCaCert: p("other-ca.crt"),
    wrongNameCert: p("wrong-name.crt"),
    wrongNameKey: p("wrong-name.key"),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Terminator {
  /** Plain TLS with the server certificate. */
  port: number;
  /** TLS that requires a client certificate signed by the test CA (stunnel's verifyChain). */
  mtlsPort: number;
  /** TLS with a certificate for wrong.test only. */
  wrongNamePort: number;
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

/** stunnel4 in front of 127.0.0.1:`clamdPort`, three services, each on its own loopback port. */
export async function startTerminator(pki: TestPki, clamdPort: number): Promise<Terminator> {
  const [port, mtlsPort, wrongNamePort] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const logFile = join(pki.dir, "stunnel.log");
  const conf = join(pki.dir, "stunnel.conf");
  writeFileSync(
    conf,
    [
      "foreground = yes",
      "pid =",
      `output = ${logFile}`,
      (process.env.STUNNEL_DEBUG ? `debug = ${process.env.STUNNEL_DEBUG}` : "debug = 5"),
      "[clamd]",
      `accept = 127.0.0.1:${port}`,
      `connect = 127.0.0.1:${clamdPort}`,
      `cert = ${pki.serverCert}`,
      `key = ${pki.serverKey}`,
      "[clamd-mtls]",
      `accept = 127.0.0.1:${mtlsPort}`,
      `connect = 127.0.0.1:${clamdPort}`,
      `cert = ${pki.serverCert}`,
      `key = ${pki.serverKey}`,
      `CAfile = ${pki.caCert}`,
      "verifyChain = yes",
      "requireCert = yes",
      "[clamd-wrong-name]",
      `accept = 127.0.0.1:${wrongNamePort}`,
      `connect = 127.0.0.1:${clamdPort}`,
      `cert = ${pki.wrongNameCert}`,
      `key = ${pki.wrongNameKey}`,
      "",
    ].join("\n"),
  );
  // Hint: in the foreground stunnel also logs to stderr; an unread pipe would fill up and stall it.
  const proc = Bun.spawn(["stunnel4", conf], { stdout: "ignore", stderr: Bun.file(join(pki.dir, "stunnel.stderr")) });
  const deadline = Date.now() + 10000;
  for (const p of [port, mtlsPort, wrongNamePort]) {
    for (;;) {
      if (proc.exitCode !== null) {
        throw new Error(`stunnel4 exited with ${proc.exitCode}: ${readLog(join(pki.dir, "stunnel.stderr"))} ${readLog(logFile)}`);
      }
      if (await listening(p)) break;
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`stunnel4 did not listen on 127.0.0.1:${p}: ${readLog(logFile)}`);
      }
      await Bun.sleep(25);
    }
  }
  return {
    port,
    mtlsPort,
    wrongNamePort,
    pid: proc.pid,
    log: () => readLog(logFile),
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
      if (!exited) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    },
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

async function listening(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        data() {},
        connectError() {
          resolve(false);
        },
        error() {
          resolve(false);
        },
      },
    }).catch(() => resolve(false));
  });
}
