// `bun run release [TARGET...]`: the binaries install.sh downloads, dist/release/onacc-linux-{x64,arm64}[-musl],
// each with a sha256sum-format file beside it. The Bun runtime for each target comes from its npm package.
//
// Bun fetches cross-compile runtimes by itself from a fixed registry URL, bypassing npm's configuration
// (registry, proxy, authentication). Here the npm client fetches the @oven/bun-linux-* package instead (npm
// checks the registry's integrity hash), it is unpacked into node_modules/.cache, and `bun build` is pointed
// at it with --compile-executable-path: no download that npm's settings do not govern.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { COMPILE_FLAGS, ENTRYPOINTS, ROOT } from "./build.ts";

export interface ReleaseTarget {
  /** What install.sh calls it: onacc-linux-<name>. */
  name: string;
  /** `bun build --target`. */
  bunTarget: string;
  /** The npm package holding that Bun runtime (package/bin/bun). */
  npmPackage: string;
  /** ELF e_machine the binary must carry: 62 x86-64, 183 AArch64. */
  elfMachine: number;
}

// x64 uses Bun's "baseline" runtimes (SSE4.2, no AVX2): release binaries run on any x86-64 server of the
// last fifteen years; onacc's work is system calls and socket round trips, where AVX2 gains nothing.
export const TARGETS: readonly ReleaseTarget[] = [
  { name: "x64", bunTarget: "bun-linux-x64-baseline", npmPackage: "@oven/bun-linux-x64-baseline", elfMachine: 62 },
  { name: "x64-musl", bunTarget: "bun-linux-x64-baseline-musl", npmPackage: "@oven/bun-linux-x64-musl-baseline", elfMachine: 62 },
  { name: "arm64", bunTarget: "bun-linux-arm64", npmPackage: "@oven/bun-linux-aarch64", elfMachine: 183 },
  { name: "arm64-musl", bunTarget: "bun-linux-arm64-musl", npmPackage: "@oven/bun-linux-aarch64-musl", elfMachine: 183 },
];

export const RELEASE_DIR = join(ROOT, "dist/release");
const CACHE_DIR = join(ROOT, "node_modules/.cache/onacc-bun-runtimes");

/** The path of the Bun runtime for `target`, the same version as the Bun running this (npm pack on first use). */
export function runtimeFor(target: ReleaseTarget, version = Bun.version): string {
  const dir = join(CACHE_DIR, `${target.npmPackage.replace("@oven/", "")}-${version}`);
  const bun = join(dir, "bun");
  if (existsSync(bun)) return bun;
  mkdirSync(CACHE_DIR, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "onacc-release-"));
  try {
    const spec = `${target.npmPackage}@${version}`;
    const packed = Bun.spawnSync(["npm", "pack", spec, "--pack-destination", work, "--json"], { cwd: work, stdout: "pipe", stderr: "pipe" });
    if (packed.exitCode !== 0) throw new Error(`npm pack ${spec} failed: ${packed.stderr.toString().trim()}`);
    const filename = (JSON.parse(packed.stdout.toString()) as Array<{ filename: string }>)[0]?.filename;
    if (filename === undefined) throw new Error(`npm pack ${spec} named no file`);
    const untar = Bun.spawnSync(["tar", "-xzf", join(work, filename), "-C", work, "package/bin/bun"], { stdout: "pipe", stderr: "pipe" });
    if (untar.exitCode !== 0) throw new Error(`cannot unpack ${filename}: ${untar.stderr.toString().trim()}`);
    const unpacked = join(work, "package/bin/bun");
    if (elfMachine(unpacked) !== target.elfMachine) throw new Error(`${spec}: package/bin/bun is not an ELF for machine ${target.elfMachine}`);
    chmodSync(unpacked, 0o755);
    mkdirSync(dir, { recursive: true });
    renameSync(unpacked, bun);
    return bun;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** e_machine of an ELF file, or undefined when it is not a 64-bit little-endian ELF. */
export function elfMachine(path: string): number | undefined {
  const head = readFileSync(path).subarray(0, 20);
  if (head.length < 20 || head[0] !== 0x7f || head.toString("latin1", 1, 4) !== "ELF") return undefined;
  if (head[4] !== 2 || head[5] !== 1) return undefined; // ELFCLASS64, ELFDATA2LSB
  return head.readUInt16LE(18);
}

/** Builds dist/release/onacc-linux-<name> and its .sha256; returns the binary's path. */
export function buildRelease(target: ReleaseTarget): string {
  const runtime = runtimeFor(target);
  mkdirSync(RELEASE_DIR, { recursive: true });
  const asset = `onacc-linux-${target.name}`;
  const out = join(RELEASE_DIR, asset);
  const cmd = ["bun", "build", ...COMPILE_FLAGS, `--target=${target.bunTarget}`, `--compile-executable-path=${runtime}`, ...ENTRYPOINTS, "--outfile", out];
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bun build for ${target.bunTarget} failed:\n${r.stdout}${r.stderr}`);
  if (elfMachine(out) !== target.elfMachine) throw new Error(`${out} is not an ELF for machine ${target.elfMachine}`);
  // sha256sum's format, with the name install.sh downloads: `sha256sum -c` works on it as it is.
  const digest = createHash("sha256").update(readFileSync(out)).digest("hex");
  writeFileSync(`${out}.sha256`, `${digest}  ${asset}\n`);
  return out;
}

if (import.meta.main) {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !TARGETS.some((t) => t.name === w));
  if (unknown.length > 0) {
    console.error(`release: unknown target "${unknown[0]}" (targets: ${TARGETS.map((t) => t.name).join(", ")})`);
    process.exit(2);
  }
  for (const target of TARGETS.filter((t) => wanted.length === 0 || wanted.includes(t.name))) {
    const started = performance.now();
    try {
      const out = buildRelease(target);
      const mib = (readFileSync(out).length / 1048576).toFixed(1);
      console.log(`release: ${out} (${mib} MiB, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      console.error(`release: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    }
  }
}
