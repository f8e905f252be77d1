// The release binaries (`bun run release`): the musl x64 build runs here under musl's loader — --help, and
// an agent that blocks EICAR with a real clamd on a test tmpfs, on musl's C library — and the arm64 build,
// which cannot run here, is checked by its ELF header. Each binary has a sha256sum-format file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildRelease, elfMachine, RELEASE_DIR, TARGETS } from "../../scripts/release.ts";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR, EICAR_SIGNATURE } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { run } from "./helpers.ts";

const MUSL_LOADER = "/lib/ld-musl-x86_64.so.1";
const target = (name: string) => TARGETS.find((t) => t.name === name)!;

/** The program interpreter (PT_INTERP) of a 64-bit little-endian ELF executable. */
function elfInterpreter(path: string): string | undefined {
  const f = readFileSync(path);
  const phoff = Number(f.readBigUInt64LE(32));
  const phentsize = f.readUInt16LE(54);
  const phnum = f.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (f.readUInt32LE(ph) !== 3) continue; // PT_INTERP
    const offset = Number(f.readBigUInt64LE(ph + 8));
    const size = Number(f.readBigUInt64LE(ph + 32));
    return f.toString("latin1", offset, offset + size).replace(/\0+$/, "");
  }
  return undefined;
}

function checksumLine(binary: string): string {
  return readFileSync(`${binary}.sha256`, "utf8");
}

describe("bun run release", () => {
  let arm64: string;
  beforeAll(() => {
    arm64 = buildRelease(target("arm64"));
  }, 300000);

  test("the arm64 binary (not runnable here) is a 64-bit little-endian AArch64 ELF for glibc's loader", () => {
    expect(elfMachine(arm64)).toBe(183);
    expect(elfInterpreter(arm64)).toBe("/lib/ld-linux-aarch64.so.1");
  });

  test("every release binary present has the architecture and loader its name says, and a .sha256 in sha256sum's format", async () => {
    const loaders: Record<string, string> = {
      x64: "/lib64/ld-linux-x86-64.so.2",
      "x64-musl": "/lib/ld-musl-x86_64.so.1",
      arm64: "/lib/ld-linux-aarch64.so.1",
      "arm64-musl": "/lib/ld-musl-aarch64.so.1",
    };
    const present = TARGETS.filter((t) => existsSync(join(RELEASE_DIR, `onacc-linux-${t.name}`)));
    expect(present.map((t) => t.name)).toContain("arm64");
    for (const t of present) {
      const binary = join(RELEASE_DIR, `onacc-linux-${t.name}`);
      expect({ name: t.name, machine: elfMachine(binary), loader: elfInterpreter(binary) }).toEqual({ name: t.name, machine: t.elfMachine, loader: loaders[t.name] });
      expect(checksumLine(binary)).toMatch(new RegExp(`^[0-9a-f]{64} {2}onacc-linux-${t.name}\n$`));
      const check = await run(["sha256sum", "-c", `onacc-linux-${t.name}.sha256`], { cwd: RELEASE_DIR });
      expect(check.stdout).toBe(`onacc-linux-${t.name}: OK\n`);
    }
  });
});

// Debian's musl package gives the loader; musl-gcc (musl-tools) builds the small shim that lets Debian's
// libstdc++ load under it (see musl-glibc-shim.c). Without them the musl binary cannot start here.
const muslMissing = !existsSync(MUSL_LOADER)
  ? `${MUSL_LOADER} is missing (Debian package musl)`
  : Bun.which("musl-gcc") === null
    ? "musl-gcc is missing (Debian package musl-tools)"
    : process.arch !== "x64"
      ? "the musl test runs the x64 build"
      : undefined;
if (muslMissing !== undefined) console.log(`SKIPPED the musl tests in tests/ship/release.test.ts: ${muslMissing}`);

describe.skipIf(muslMissing !== undefined)("the x64 musl release binary, run under musl", () => {
  let binary: string;
  let libDir: string;
  let env: Record<string, string>;
  let clamd: TestClamd | undefined;
  let mount: TestMount | undefined;
  let agent: RunningAgent | undefined;

  beforeAll(() => {
    binary = buildRelease(target("x64-musl"));
    libDir = mkdtempSync("/tmp/onacc-musl-lib-");
    for (const lib of ["libstdc++.so.6", "libgcc_s.so.1"]) {
      const found = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"].map((d) => join(d, lib)).find(existsSync);
      if (found === undefined) throw new Error(`no ${lib} to run the musl binary with`);
      copyFileSync(found, join(libDir, lib));
    }
    const shim = Bun.spawnSync(["musl-gcc", "-shared", "-fPIC", "-O2", "-o", join(libDir, "ld-linux-x86-64.so.2"), join(import.meta.dir, "musl-glibc-shim.c")], {
      stderr: "pipe",
    });
    if (shim.exitCode !== 0) throw new Error(`musl-gcc failed: ${shim.stderr}`);
    env = { LD_LIBRARY_PATH: libDir };
  }, 300000);

  afterAll(async () => {
    await disposeAgent(agent);
    mount?.unmount();
    await disposeClamd(clamd);
    if (libDir) rmSync(libDir, { recursive: true, force: true });
  });

  test("it is an x86-64 ELF for musl's loader, with its checksum file", () => {
    expect(elfMachine(binary)).toBe(62);
    expect(elfInterpreter(binary)).toBe(MUSL_LOADER);
    expect(checksumLine(binary)).toMatch(/^[0-9a-f]{64} {2}onacc-linux-x64-musl\n$/);
  });

  test("onacc --help runs", async () => {
    const r = await run([binary, "--help"], { env });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage:");
  }, 30000);

  test("the agent on musl's C library denies EICAR and allows a clean file (real clamd, test tmpfs)", async () => {
    clamd = await startClamd();
    mount = mountTmpfs();
    const infected = join(mount.path, "eicar.com");
    const clean = join(mount.path, "clean.txt");
    writeFileSync(infected, EICAR);
    writeFileSync(clean, "nothing to see\n");
    agent = await startAgent({ clamd, binary, env, config: [`OnAccessIncludePath ${mount.path}`, "OnAccessPrevention yes"] });

    // The process runs on musl: musl's C library (the loader's file) is mapped, glibc's is not.
    const maps = readFileSync(`/proc/${agent.pid}/maps`, "utf8");
    expect(maps).toContain(` ${realpathSync(MUSL_LOADER)}\n`);
    expect(maps).not.toMatch(/\/libc\.so\.6$/m);

    expect(openInChild(infected)).toMatchObject({ ok: false, error: "EPERM" });
    expect(openInChild(clean)).toMatchObject({ ok: true });
    await agent.waitFor(`${EICAR_SIGNATURE}.UNOFFICIAL FOUND`);
    const stopped = await agent.stop();
    expect(stopped.code).toBe(0);
  }, 120000);
});
