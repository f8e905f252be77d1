// The compiled binary's command line, end to end: --help, --version with and without clamd, --ping,
// and the exit codes a service manager or script sees.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, ensureBinary } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";

let clamd: TestClamd;
let dir: string;
let up: string;
let down: string;

beforeAll(async () => {
  ensureBinary();
  clamd = await startClamd();
  dir = mkdtempSync("/tmp/onacc-cli-");
  up = join(dir, "up.conf");
  down = join(dir, "down.conf");
  writeFileSync(up, `LocalSocket ${clamd.socket}\n`);
  writeFileSync(down, `LocalSocket ${join(dir, "nobody-listens.sock")}\nOnAccessCurlTimeout 500\n`);
});
afterAll(async () => {
  await disposeClamd(clamd);
  rmSync(dir, { recursive: true, force: true });
});

const run = (...args: string[]) => {
  const r = Bun.spawnSync([BINARY, ...args], { stdout: "pipe", stderr: "pipe", timeout: 20000 });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe("dist/onacc command line", () => {
  test("--help lists clamonacc's flags and exits 0", () => {
    const r = run("--help");
    expect(r.code).toBe(0);
    for (const flag of ["--foreground", "--config-file", "--fdpass", "--stream", "--move", "--ping"]) expect(r.out).toContain(flag);
  });

  test("--version prints clamd's version when clamd answers, else onacc's own", () => {
    expect(run("--version", `--config-file=${up}`).out).toMatch(/^onacc \d+\.\d+\.\d+ \(clamd: ClamAV 1\.\d+\.\d+/);
    const r = run("-V", `-c`, down);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toMatch(/^onacc \d+\.\d+\.\d+$/);
  });

  test("--ping exits 0 when clamd answers and 1 after its attempts when it does not", () => {
    expect(run("--ping=2:0", `--config-file=${up}`).code).toBe(0);
    const r = run("--ping=2:0", `--config-file=${down}`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/did not answer PING after 2 attempt/);
  });

  test("an unknown flag exits 2 naming it; a missing config file exits 3", () => {
    const bad = run("--bogus");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('"--bogus"');
    const missing = run("--foreground", `--config-file=${join(dir, "missing.conf")}`);
    expect(missing.code).toBe(3);
    expect(missing.err).toContain("missing.conf");
  });

  test("a clamd that is down at start-up is reported with exit code 4", () => {
    writeFileSync(join(dir, "watch.conf"), `LocalSocket ${join(dir, "nobody-listens.sock")}\nOnAccessIncludePath ${dir}\n`);
    const r = run("--foreground", `--config-file=${join(dir, "watch.conf")}`);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/nobody-listens\.sock/);
  });
});
