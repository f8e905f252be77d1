import { describe, expect, test } from "bun:test";
import { parseRunArgs } from "../../src/cli/args.ts";
import { parseClamdUrl } from "../../src/clamd/url.ts";
import { UsageError } from "../../src/errors.ts";

const CWD = "/var/lib/onacc-test";
const parse = (...argv: string[]) => parseRunArgs(argv, CWD);

function usageErrorOf(...argv: string[]): string {
  try {
    parse(...argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as UsageError).message;
  }
  throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
}

describe("parseRunArgs() --clamd", () => {
  test("parseRunArgs() keeps every --clamd URL in order, unix, tcp and tls", () => {
    expect(parse("--clamd", "unix:///run/clamav/clamd.ctl", "--clamd=tcp://10.0.0.5:3310", "--clamd", "tcp://[::1]:3310", "--clamd=tls://clamd.example:3311").clamd).toEqual([
      { kind: "unix", path: "/run/clamav/clamd.ctl" },
      { kind: "tcp", host: "10.0.0.5", port: 3310 },
      { kind: "tcp", host: "::1", port: 3310 },
      { kind: "tls", host: "clamd.example", port: 3311, verifyHostname: true },
    ]);
  });

  test("parseRunArgs() gives tls:// endpoints the --tls-* files, made absolute, and the hostname switch", () => {
    const o = parse("--clamd=tls://clamd.test@127.0.0.1:3311", "--clamd=tcp://127.0.0.1:3310", "--tls-ca=ca.pem", "--tls-cert", "/etc/onacc/c.pem", "--tls-key=k.pem", "--tls-no-verify-hostname");
    expect(o.clamd).toEqual([
      { kind: "tls", host: "127.0.0.1", port: 3311, servername: "clamd.test", verifyHostname: false, ca: `${CWD}/ca.pem`, cert: "/etc/onacc/c.pem", key: `${CWD}/k.pem` },
      { kind: "tcp", host: "127.0.0.1", port: 3310 },
    ]);
  });

  test("parseRunArgs() without --clamd leaves the endpoints to the configuration", () => {
    expect(parse().clamd).toBeUndefined();
  });

  test("parseRunArgs() rejects a bad --clamd URL, saying what is wrong and which forms work", () => {
    const forms = "(expected unix:///path/to/clamd.sock, tcp://HOST:PORT or tls://HOST:PORT)";
    expect(usageErrorOf("--clamd=10.0.0.5:3310")).toBe(`Invalid --clamd "10.0.0.5:3310": no scheme (did you mean tcp://10.0.0.5:3310?) ${forms}`);
    expect(usageErrorOf("--clamd=/run/clamd.ctl")).toBe(`Invalid --clamd "/run/clamd.ctl": no scheme (did you mean unix:///run/clamd.ctl?) ${forms}`);
    expect(usageErrorOf("--clamd=http://x:1")).toBe(`Invalid --clamd "http://x:1": unknown scheme "http:" ${forms}`);
    expect(usageErrorOf("--clamd=tcp://host")).toBe(`Invalid --clamd "tcp://host": no port (expected HOST:PORT) ${forms}`);
    expect(usageErrorOf("--clamd=tcp://host:0")).toBe(`Invalid --clamd "tcp://host:0": port "0" is not a number from 1 to 65535 ${forms}`);
    expect(usageErrorOf("--clamd=tcp://::1:3310")).toBe(`Invalid --clamd "tcp://::1:3310": an IPv6 address needs brackets, e.g. [::1]:3310 ${forms}`);
    expect(usageErrorOf("--clamd=tcp://bad host:1")).toBe(`Invalid --clamd "tcp://bad host:1": "bad host" is not a host name or IP address ${forms}`);
    expect(usageErrorOf("--clamd=tcp://999.1.1.1:1")).toStartWith('Invalid --clamd "tcp://999.1.1.1:1": "999.1.1.1" is not a host name or IP address');
    expect(usageErrorOf("--clamd=unix://run/x.sock")).toStartWith('Invalid --clamd "unix://run/x.sock": a unix socket path must be absolute');
    expect(usageErrorOf("--clamd=tcp://name@10.0.0.1:1")).toStartWith('Invalid --clamd "tcp://name@10.0.0.1:1": NAME@ADDRESS is only for tls://');
  });

  test("parseRunArgs() rejects the same --clamd twice", () => {
    expect(usageErrorOf("--clamd=tcp://a:1", "--clamd=tcp://a:1")).toBe('--clamd "tcp://a:1" is given twice: keep one');
  });

  test("parseRunArgs() rejects --tls-* without a tls:// endpoint, and a certificate without its key", () => {
    expect(usageErrorOf("--tls-ca=/ca.pem")).toBe("--tls-ca apply to tls:// clamd endpoints, but no --clamd tls://HOST:PORT was given");
    expect(usageErrorOf("--clamd=tcp://a:1", "--tls-no-verify-hostname")).toBe(
      "--tls-no-verify-hostname apply to tls:// clamd endpoints, but no --clamd tls://HOST:PORT was given",
    );
    expect(usageErrorOf("--clamd=tls://a:1", "--tls-cert=/c.pem")).toBe("--tls-cert needs --tls-key (the certificate's private key)");
    expect(usageErrorOf("--clamd=tls://a:1", "--tls-key=/k.pem")).toBe("--tls-key needs --tls-cert (the certificate it belongs to)");
  });
});

describe("parseClamdUrl()", () => {
  test("parseClamdUrl() accepts the unix: form messages show, and a trailing slash", () => {
    expect(parseClamdUrl("unix:/run/clamav/clamd.ctl")).toEqual({ endpoint: { kind: "unix", path: "/run/clamav/clamd.ctl" } });
    expect(parseClamdUrl("TCP://localhost:3310/")).toEqual({ endpoint: { kind: "tcp", host: "localhost", port: 3310 } });
  });

  test("parseClamdUrl() refuses a socket path too long for sun_path and a path after the port", () => {
    expect(parseClamdUrl(`unix:///${"x".repeat(120)}`)).toEqual({ error: "the socket path is longer than 107 bytes" });
    expect(parseClamdUrl("tcp://a:1/scan")).toEqual({ error: "a path, query or fragment means nothing here" });
  });
});

describe("parseRunArgs() status, metrics and log flags", () => {
  test("parseRunArgs() defaults: status socket on, text logs kept 5 deep, no metrics", () => {
    const o = parse();
    expect(o.statusSocket).toBe("/run/onacc/status.sock");
    expect(o.metricsListen).toBeUndefined();
    expect(o.logFormat).toBe("text");
    expect(o.logMaxSize).toBeUndefined();
    expect(o.logKeep).toBe(5);
  });

  test("parseRunArgs() reads --status-socket (relative made absolute, none = off)", () => {
    expect(parse("--status-socket=ctl.sock").statusSocket).toBe(`${CWD}/ctl.sock`);
    expect(parse("--status-socket", "none").statusSocket).toBeNull();
    expect(usageErrorOf(`--status-socket=/${"d".repeat(110)}`)).toStartWith(`Invalid --status-socket "/${"d".repeat(110)}": a socket path must be shorter than 108 bytes`);
  });

  test("parseRunArgs() reads --metrics-listen: HOST:PORT, [v6]:PORT, a bare port on loopback, :PORT on every address", () => {
    expect(parse("--metrics-listen=127.0.0.1:9115").metricsListen).toEqual({ host: "127.0.0.1", port: 9115 });
    expect(parse("--metrics-listen=[::1]:9115").metricsListen).toEqual({ host: "::1", port: 9115 });
    expect(parse("--metrics-listen=9115").metricsListen).toEqual({ host: "127.0.0.1", port: 9115 });
    expect(parse("--metrics-listen=:9115").metricsListen).toEqual({ host: "0.0.0.0", port: 9115 });
    expect(usageErrorOf("--metrics-listen=localhost")).toBe('Invalid --metrics-listen "localhost": no port (expected HOST:PORT) (e.g. 127.0.0.1:9115 or [::1]:9115)');
    expect(usageErrorOf("--metrics-listen=127.0.0.1:99999")).toStartWith('Invalid --metrics-listen "127.0.0.1:99999": port "99999"');
  });

  test("parseRunArgs() reads --log-format, --log-max-size with K/M/G and --log-keep", () => {
    expect(parse("--log-format=json").logFormat).toBe("json");
    const o = parse("--log=/var/log/onacc.log", "--log-max-size=10M", "--log-keep=3");
    expect(o.logMaxSize).toBe(10 * 1024 * 1024);
    expect(o.logKeep).toBe(3);
    expect(parse("--log=/l", "--log-max-size", "512k").logMaxSize).toBe(512 * 1024);
    expect(parse("--log=/l", "--log-max-size=1G").logMaxSize).toBe(1024 ** 3);
    expect(parse("--log=/l", "--log-max-size=4096").logMaxSize).toBe(4096);
  });

  test("parseRunArgs() rejects a bad log format, size or count, and rotation without a log file", () => {
    expect(usageErrorOf("--log-format=xml")).toBe('Invalid --log-format "xml": expected text or json');
    expect(usageErrorOf("--log=/l", "--log-max-size=10MB")).toBe('Invalid --log-max-size "10MB": expected a size of at least 1K, like 10M, 512K or 1G');
    expect(usageErrorOf("--log=/l", "--log-max-size=100")).toStartWith('Invalid --log-max-size "100"');
    expect(usageErrorOf("--log-max-size=10M")).toBe("--log-max-size rotates the --log file, but no --log=FILE was given");
    expect(usageErrorOf("--log=/l", "--log-keep=3")).toBe("--log-keep says how many files --log-max-size rotation keeps, but no --log-max-size was given");
    expect(usageErrorOf("--log=/l", "--log-max-size=1M", "--log-keep=many")).toBe('Invalid --log-keep "many": expected a whole number from 0 to 1000');
  });

  test("parseRunArgs() suggests the new flags for misspellings", () => {
    expect(usageErrorOf("--clamdd=tcp://a:1")).toBe('Unknown option "--clamdd": did you mean --clamd? (see onacc --help)');
    expect(usageErrorOf("--log-fromat=json")).toBe('Unknown option "--log-fromat": did you mean --log-format? (see onacc --help)');
  });
});
