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
  test("libcPath() names musl's loader when it is mapped, and libc.so.6 otherwise", () => {
    const glibc = "7f0-7f1 r-xp 00026000 fe:00 339380   /usr/lib/x86_64-linux-gnu/libc.so.6\n";
    const musl = "55e-55f r--p 00000000 fe:00 12   /usr/bin/onacc\n7f9-7fa r-xp 00001000 fe:00 77   /lib/ld-musl-aarch64.so.1\n";
    expect(libcPath(glibc)).toBe("libc.so.6");
    expect(libcPath(musl)).toBe("/lib/ld-musl-aarch64.so.1");
    expect(libcPath("")).toBe("libc.so.6");
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
