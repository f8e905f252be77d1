// src/engine/paths.ts: the one "is this path inside that directory" rule, on whole path components, for
// text and byte paths alike.
import { describe, expect, test } from "bun:test";
import { dirPrefixes, isUnder, isUnderAny, isUnderBytes, isUnderPrefix } from "../../src/engine/paths.ts";

const b = (s: string) => Buffer.from(s);
const cases: [path: string, dir: string, under: boolean][] = [
  ["/srv/a", "/srv/a", true],
  ["/srv/a/b", "/srv/a", true],
  ["/srv/a/b", "/srv/a/", true],
  ["/srv/ab", "/srv/a", false], // a shared prefix is not a shared component
  ["/srv", "/srv/a", false],
  ["/anything", "/", true],
  ["/", "/", true],
];

describe("isUnder() and isUnderBytes()", () => {
  test.each(cases)("%p under %p: %p", (path, dir, under) => {
    expect(isUnder(path, dir)).toBe(under);
    expect(isUnderBytes(b(path), b(dir))).toBe(under);
  });

  test("isUnderBytes() compares bytes, not text: names need not be UTF-8", () => {
    const dir = Buffer.concat([b("/srv/"), Buffer.from([0xff, 0xfe])]);
    expect(isUnderBytes(Buffer.concat([dir, b("/f")]), dir)).toBe(true);
    expect(isUnderBytes(Buffer.concat([b("/srv/"), Buffer.from([0xff, 0xfd]), b("/f")]), dir)).toBe(false);
  });

  test("isUnderAny() is true when any directory holds the path", () => {
    expect(isUnderAny("/srv/a/b", ["/tmp", "/srv/a"])).toBe(true);
    expect(isUnderAny("/srv/ab", ["/tmp", "/srv/a"])).toBe(false);
    expect(isUnderAny("/srv", [])).toBe(false);
  });
});

test("isUnderPrefix() (the reader's per-event test) is true strictly inside a directory", () => {
  const prefixes = dirPrefixes(["/srv/a", "/data/"]);
  expect(isUnderPrefix(b("/srv/a/f"), prefixes)).toBe(true);
  expect(isUnderPrefix(b("/data/x/y"), prefixes)).toBe(true);
  expect(isUnderPrefix(b("/srv/ab/f"), prefixes)).toBe(false);
  expect(isUnderPrefix(b("/srv/a"), prefixes)).toBe(false);
});
