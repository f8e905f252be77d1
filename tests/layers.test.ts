// The layers point one way: ffi/ (libc bindings) imports nothing from src/, and only the command line
// (src/cli/, src/main.ts) imports from src/cli/; nothing shipped imports tests, benchmarks or scripts.
// Read from the source text: every static import/export-from and every import("…") with a literal path.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

interface Edge {
  from: string;
  to: string;
}

/** Relative specifiers of every import in `text`, resolved against `file` (both relative to the root). */
export function importsOf(file: string, text: string): Edge[] {
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']/gms),
    ...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ];
  return found.filter((m) => m[1]!.startsWith(".")).map((m) => ({ from: file, to: relative(ROOT, resolve(ROOT, dirname(file), m[1]!)) }));
}

const RULES: { rule: string; broken: (e: Edge) => boolean }[] = [
  { rule: "ffi/ imports nothing from src/", broken: (e) => e.from.startsWith("ffi/") && e.to.startsWith("src/") },
  {
    rule: "only src/cli/ and src/main.ts import from src/cli/",
    broken: (e) => e.to.startsWith("src/cli/") && !e.from.startsWith("src/cli/") && e.from !== "src/main.ts",
  },
  { rule: "shipped code imports no tests, benchmarks or scripts", broken: (e) => /^(tests|bench|scripts)\//.test(e.to) },
];

export function violations(edges: Edge[]): string[] {
  return edges.flatMap((e) => RULES.filter((r) => r.broken(e)).map((r) => `${e.from} imports ${e.to}: ${r.rule}`));
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

describe("layers", () => {
  test("src/ and ffi/ keep to the rules", () => {
    const files = [...sources("src"), ...sources("ffi")];
    expect(files.length).toBeGreaterThan(100);
    const edges = files.flatMap((f) => importsOf(f, readFileSync(join(ROOT, f), "utf8")));
    // The reading itself works: ffi/fanotify.ts's own imports are found.
    expect(edges.filter((e) => e.from === "ffi/fanotify.ts").map((e) => e.to)).toContain("ffi/libc.ts");
    expect(violations(edges)).toEqual([]);
  });

  test("a wrong-way import is caught, however it is written", () => {
    const wrong = [
      importsOf("ffi/x.ts", 'import { OnaccError } from "../src/errors.ts";'),
      importsOf("ffi/x.ts", 'import type {\n  A,\n  B,\n} from "../src/config/types.ts";'),
      importsOf("src/engine/x.ts", 'export { type RunOptions } from "../cli/options.ts";'),
      importsOf("src/actions/x.ts", 'const { parseRunArgs } = await import("../cli/args.ts");'),
      importsOf("src/log/x.ts", 'import "../../tests/fixtures/clamd.ts";'),
    ].flat();
    expect(violations(wrong)).toEqual([
      "ffi/x.ts imports src/errors.ts: ffi/ imports nothing from src/",
      "ffi/x.ts imports src/config/types.ts: ffi/ imports nothing from src/",
      "src/engine/x.ts imports src/cli/options.ts: only src/cli/ and src/main.ts import from src/cli/",
      "src/actions/x.ts imports src/cli/args.ts: only src/cli/ and src/main.ts import from src/cli/",
      "src/log/x.ts imports tests/fixtures/clamd.ts: shipped code imports no tests, benchmarks or scripts",
    ]);
    expect(violations(importsOf("src/cli/run.ts", 'import { startAgent } from "../engine/runtime.ts";'))).toEqual([]);
  });
});
