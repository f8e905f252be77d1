// ExcludePattern's matcher on path bytes: what each pattern matches, and — above all — what it must not.
import { describe, expect, test } from "bun:test";
import { globPatternProblem } from "../../src/config/values.ts";
import { PathPatterns, compilePattern } from "../../src/engine/path-patterns.ts";

const enc = new TextEncoder();
function matches(pattern: string, path: string | Uint8Array): boolean {
  const bytes = typeof path === "string" ? enc.encode(path) : path;
  return new PathPatterns([pattern]).match(bytes, bytes.length) === 0;
}

describe("name patterns (no /) match a file's name in any directory", () => {
  test("*.log matches names ending in .log anywhere, also hidden ones", () => {
    expect(matches("*.log", "/var/log/app.log")).toBe(true);
    expect(matches("*.log", "/a/b/c/.hidden.log")).toBe(true);
    expect(matches("*.log", "/x.log")).toBe(true);
  });
  test("*.log does not match a directory named x.log, nor a longer extension, nor another case", () => {
    expect(matches("*.log", "/srv/x.log/evil")).toBe(false);
    expect(matches("*.log", "/srv/x.logs")).toBe(false);
    expect(matches("*.log", "/srv/x.log.exe")).toBe(false);
    expect(matches("*.log", "/srv/X.LOG")).toBe(false);
    expect(matches("*.log", "/srv/x.log (deleted)")).toBe(false);
  });
  test("? is one character, [..] one of a set, \\ escapes", () => {
    expect(matches("?.tmp", "/d/a.tmp")).toBe(true);
    expect(matches("?.tmp", "/d/ab.tmp")).toBe(false);
    expect(matches("?.tmp", "/d/.tmp")).toBe(false);
    expect(matches("core.[0-9]*", "/d/core.1234")).toBe(true);
    expect(matches("core.[0-9]*", "/d/core.x")).toBe(false);
    expect(matches("[!.]*", "/d/.profile")).toBe(false);
    expect(matches("[!.]*", "/d/profile")).toBe(true);
    expect(matches("\\*.txt", "/d/*.txt")).toBe(true);
    expect(matches("\\*.txt", "/d/a.txt")).toBe(false);
    expect(matches("[]x]", "/d/]")).toBe(true);
    expect(matches("[z-a]", "/d/m")).toBe(false);
  });
  test("characters are code points: ? takes one multi-byte character", () => {
    expect(matches("?.log", "/d/é.log")).toBe(true);
    expect(matches("[é]x", "/d/éx")).toBe(true);
  });
  test("invalid UTF-8 and newlines are characters like any other; no byte of one is a pattern letter", () => {
    const bad = new Uint8Array([...enc.encode("/d/a"), 0xff, ...enc.encode(".log")]);
    expect(matches("*.log", bad)).toBe(true);
    expect(matches("a?.log", bad)).toBe(true);
    expect(matches("a.log", bad)).toBe(false);
    // 0xC3 0x28 is not UTF-8: it must not decode to anything, nor swallow the "(".
    const broken = new Uint8Array([...enc.encode("/d/"), 0xc3, 0x28]);
    expect(matches("?(", broken)).toBe(true);
    expect(matches("?", broken)).toBe(false);
    expect(matches("*.log", "/d/evil\n.log")).toBe(true);
    expect(matches("evil", "/d/evil\n.log")).toBe(false);
    // An overlong encoding of "/" (C0 AF) is two invalid bytes, not a separator.
    const overlong = new Uint8Array([...enc.encode("/srv/a"), 0xc0, 0xaf, ...enc.encode("cache/x")]);
    expect(matches("/srv/*/cache/**", overlong)).toBe(false);
  });
});

describe("absolute patterns match the whole path, component by component", () => {
  test("/srv/*/cache/** matches everything below any /srv/X/cache", () => {
    expect(matches("/srv/*/cache/**", "/srv/a/cache/x")).toBe(true);
    expect(matches("/srv/*/cache/**", "/srv/a/cache/d/e/f")).toBe(true);
  });
  test("/srv/*/cache/** does not match a deeper cache, the directory itself, or a look-alike name", () => {
    expect(matches("/srv/*/cache/**", "/srv/a/b/cache/x")).toBe(false);
    expect(matches("/srv/*/cache/**", "/srv/a/cache")).toBe(false);
    expect(matches("/srv/*/cache/**", "/srv/a/cachex/y")).toBe(false);
    expect(matches("/srv/*/cache/**", "/srv/cache/x")).toBe(false);
    expect(matches("/srv/*/cache/**", "/other/srv/a/cache/x")).toBe(false);
  });
  test("** in the middle spans zero or more directories", () => {
    expect(matches("/srv/**/cache/*", "/srv/cache/x")).toBe(true);
    expect(matches("/srv/**/cache/*", "/srv/a/b/c/cache/x")).toBe(true);
    expect(matches("/srv/**/cache/*", "/srv/a/cache/b/x")).toBe(false);
    expect(matches("/**/*.o", "/a/b/c.o")).toBe(true);
    expect(matches("/**/*.o", "/c.o")).toBe(true);
  });
  test("an exact path matches that file only", () => {
    expect(matches("/srv/data/big.iso", "/srv/data/big.iso")).toBe(true);
    expect(matches("/srv/data/big.iso", "/srv/data/big.iso2")).toBe(false);
    expect(matches("/srv/data/big.iso", "/srv/data/big.iso/x")).toBe(false);
  });
  test("the first matching pattern's index is reported", () => {
    const p = new PathPatterns(["*.tmp", "/srv/**", "*.log"]);
    const path = enc.encode("/srv/x.log");
    expect(p.match(path, path.length)).toBe(1);
    const other = enc.encode("/home/x.log");
    expect(p.match(other, other.length)).toBe(2);
    const none = enc.encode("/home/x.txt");
    expect(p.match(none, none.length)).toBe(-1);
  });
  test("only the given length of the buffer counts", () => {
    const p = new PathPatterns(["*.log"]);
    const buf = enc.encode("/d/x.logZZZZ");
    expect(p.match(buf, 8)).toBe(0);
    expect(p.match(buf, 9)).toBe(-1);
  });
});

describe("compilePattern() agrees with the configuration's validator", () => {
  test("every pattern the validator accepts compiles, and the invalid ones it refuses do not", () => {
    const accepted = ["*.log", "/srv/*/cache/**", "[]]", "[!]]x", "[\\]", "a\\*", "/a/**/b", "/**", "[a-]", "[-a]"];
    for (const p of accepted) {
      expect(globPatternProblem(p)).toBeUndefined();
      expect(() => compilePattern(p)).not.toThrow();
    }
    for (const p of ["a/b", "[abc", "x\\"]) {
      expect(globPatternProblem(p)).toBeDefined();
      expect(() => compilePattern(p)).toThrow(RangeError);
    }
  });
  test("inside [...] a backslash is a member, as the validator reads it", () => {
    expect(matches("[\\]", "/d/\\")).toBe(true);
    expect(matches("[\\]x", "/d/\\x")).toBe(true);
  });
});
