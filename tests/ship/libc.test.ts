// The C library onacc binds through bun:ffi: the right one is opened under glibc and musl, and every symbol
// bound exists in the oldest glibc onacc supports (2.28, RHEL 8) and in musl, read from their symbol tables.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { LIBC_SYMBOLS, libc, libcPath } from "../../ffi/libc.ts";

const OLDEST_GLIBC = [2, 28];

/** Symbol name → the oldest GLIBC_x.y version node it is exported under (objdump -T of libc.so.6). */
function glibcExports(): Map<string, number[]> {
  const path = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6"].find(existsSync);
  if (path === undefined) throw new Error("no glibc libc.so.6 found to read the symbol table of");
  const r = Bun.spawnSync(["objdump", "-T", path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`objdump -T ${path} failed: ${r.stderr}`);
  const out = new Map<string, number[]>();
  for (const line of r.stdout.toString().split("\n")) {
    const m = /\s(?:\(GLIBC_([\d.]+)\)|GLIBC_([\d.]+))\s+(\S+)$/.exec(line);
    if (!m || !/\bDF \.text|\bDO /.test(line)) continue;
    const version = (m[1] ?? m[2]!).split(".").map(Number);
    const name = m[3]!;
    const known = out.get(name);
    if (known === undefined || _compare(version, known) < 0) out.set(name, version);
  }
  return out;
}

function _compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const MUSL_LOADER = existsSync("/lib") ? readdirSync("/lib").find((n) => /^ld-musl-.*\.so\.1$/.test(n)) : undefined;

describe("ffi/libc.ts", () => {
  test("libcPath() keeps glibc's libc.so.6, and under musl names the loader mapped at AT_BASE", () => {
    const glibc = "7f0000-7f1000 r-xp 00026000 fe:00 339380   /usr/lib/x86_64-linux-gnu/libc.so.6\n";
    const musl = [
      "55e000-55f000 r--p 00000000 fe:00 12   /usr/local/bin/onacc",
      "7f8661138000-7f866114d000 r--p 00000000 fe:00 1507355   /usr/lib/x86_64-linux-musl/libc.so",
      "7f866114d000-7f86611b0000 r-xp 00015000 fe:00 1507355   /usr/lib/x86_64-linux-musl/libc.so",
    ].join("\n");
    const auxv = new Uint8Array(64);
    const v = new DataView(auxv.buffer);
    v.setBigUint64(0, 6n, true); // AT_PAGESZ
    v.setBigUint64(8, 4096n, true);
    v.setBigUint64(16, 7n, true); // AT_BASE
    v.setBigUint64(24, 0x7f8661138000n, true);
    expect(libcPath(glibc, auxv)).toBe("libc.so.6");
    expect(libcPath(musl, auxv)).toBe("/usr/lib/x86_64-linux-musl/libc.so");
    expect(libcPath(musl, new Uint8Array(0))).toBe("libc.so.6");
    expect(libcPath("", auxv)).toBe("libc.so.6");
  });

  test("this process (glibc) opened the C library it runs on, and the syscall() stand-ins work", () => {
    expect(libcPath()).toBe("libc.so.6");
    expect(libc.getpid()).toBe(process.pid);
    // The main thread's tid is the process id.
    expect(libc.gettid()).toBe(process.pid);
  });

  test(`every libc symbol onacc binds is exported by glibc ${OLDEST_GLIBC.join(".")} (RHEL 8)`, () => {
    const exports = glibcExports();
    const tooNew: string[] = [];
    for (const name of Object.keys(LIBC_SYMBOLS)) {
      const since = exports.get(name);
      if (since === undefined) tooNew.push(`${name} (not exported)`);
      else if (_compare(since, OLDEST_GLIBC) > 0) tooNew.push(`${name} (GLIBC_${since.join(".")})`);
    }
    expect(tooNew).toEqual([]);
    // The audit reads real data: it does see symbols that came later.
    expect(exports.get("getdents64")).toEqual([2, 30]);
    expect(exports.get("fstat")).toEqual([2, 33]);
  });

  test("no LFS64 name is bound (musl 1.2.4 and later export none of them)", () => {
    expect(Object.keys(LIBC_SYMBOLS).filter((name) => /64$/.test(name))).toEqual([]);
  });

  test.skipIf(MUSL_LOADER === undefined)("every libc symbol onacc binds is exported by musl", () => {
    const r = Bun.spawnSync(["objdump", "-T", `/lib/${MUSL_LOADER}`], { stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    const names = new Set(r.stdout.toString().split("\n").map((l) => l.trim().split(/\s+/).at(-1)));
    expect(Object.keys(LIBC_SYMBOLS).filter((name) => !names.has(name))).toEqual([]);
  });
});

describe("the C library is found, not named", () => {
  test("no ffi or src module dlopens libc by its glibc name (musl has none: ffi/libc.ts libcPath() finds it)", () => {
    const offenders: string[] = [];
    for (const dir of ["ffi", "src"]) {
      for (const f of new Bun.Glob("**/*.ts").scanSync({ cwd: `${import.meta.dir}/../../${dir}` })) {
        const text = require("node:fs").readFileSync(`${import.meta.dir}/../../${dir}/${f}`, "utf8") as string;
        if (/dlopen\(\s*["']libc\.so/.test(text)) offenders.push(`${dir}/${f}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
