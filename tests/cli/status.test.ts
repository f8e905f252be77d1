import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseStatusArgs, runStatus, statusHelpText } from "../../src/cli/status.ts";
import { ExitCode, UsageError } from "../../src/errors.ts";
import { startStatusServer, type StatusServer } from "../../src/status/server.ts";
import { FakeSource, fakeSnapshot } from "../status/fake-source.ts";

let dir = "";
let server: StatusServer;
let socketPath = "";

beforeAll(async () => {
  dir = mkdtempSync("/tmp/onacc-status-cli-");
  socketPath = join(dir, "run", "status.sock");
  server = await startStatusServer({ socketPath, source: new FakeSource() });
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function status(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await runStatus(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe("onacc status", () => {
  test("onacc status prints the table from a running onacc's control socket", async () => {
    const r = await status(`--status-socket=${socketPath}`);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.err).toBe("");
    expect(r.out).toStartWith("onacc 9.9.9 (pid 4242), up 3h 25m 7s");
    expect(r.out).toContain("unix:/run/clamav/clamd.ctl");
    expect(r.out).toContain("DOWN");
    expect(r.out).toMatch(/latency:\s+p50 [\d.]+ ms, p99 [\d.]+ ms over 100 scans/);
  });

  test("onacc status --json prints the snapshot itself", async () => {
    const r = await status("--json", "--status-socket", socketPath);
    expect(r.code).toBe(ExitCode.ok);
    expect(JSON.parse(r.out)).toEqual(fakeSnapshot());
  });

  test("onacc status without a running onacc says so and exits 1", async () => {
    const missing = join(dir, "nowhere.sock");
    const r = await status(`--status-socket=${missing}`);
    expect(r.code).toBe(ExitCode.runtime);
    expect(r.out).toBe("");
    expect(r.err).toBe(`onacc: Cannot read onacc's status from "${missing}": onacc is not running, or runs with another --status-socket (ENOENT)\n`);
  });

  test("onacc status --help explains itself", async () => {
    const r = await status("--help");
    expect(r.code).toBe(ExitCode.ok);
    expect(r.out).toBe(statusHelpText());
    expect(r.out).toContain("--status-socket=PATH");
  });
});

describe("parseStatusArgs()", () => {
  test("parseStatusArgs() defaults to the standard socket and a table", () => {
    expect(parseStatusArgs([])).toEqual({ json: false, top: false, check: false, socketPath: "/run/onacc/status.sock", help: false });
    expect(parseStatusArgs(["--status-socket=s.sock", "--json"], "/srv")).toEqual({ json: true, top: false, check: false, socketPath: "/srv/s.sock", help: false });
  });

  test("parseStatusArgs() reads --top, --check and --check's --config-file", () => {
    expect(parseStatusArgs(["--top"])).toMatchObject({ top: true, check: false });
    expect(parseStatusArgs(["--check", "--config-file", "c.conf"], "/etc/onacc")).toMatchObject({ check: true, configFile: "/etc/onacc/c.conf" });
    expect(() => parseStatusArgs(["--check", "--top"])).toThrow("--check and --top are separate");
    expect(() => parseStatusArgs(["--config-file=x.conf"])).toThrow("--config-file is used by --check only");
  });

  test("parseStatusArgs() rejects unknown flags with a suggestion, a missing value and stray arguments", () => {
    const err = (argv: string[]) => {
      try {
        parseStatusArgs(argv);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error("expected a UsageError");
    };
    expect(err(["--jsn"])).toBe('Unknown option "--jsn" for onacc status: did you mean --json?');
    expect(err(["--status-socket"])).toBe("--status-socket needs a PATH value");
    expect(err(["--status-socket", "--json"])).toBe("--status-socket needs a PATH value");
    expect(err(["now"])).toBe('Unexpected argument "now" for onacc status (see onacc status --help)');
    expect(err(["--json=yes"])).toBe("--json takes no value");
  });
});
