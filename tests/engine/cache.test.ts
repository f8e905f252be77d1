import { describe, expect, test } from "bun:test";
import { VerdictCache } from "../../src/engine/cache.ts";
import { emptyStat, type FdStat } from "../../ffi/fs.ts";

function st(ino: number, over: Partial<FdStat> = {}): FdStat {
  return { ...emptyStat(), dev: 2049, ino, size: 100, mtimeSec: 1_700_000_000, mtimeNsec: 5, ctimeSec: 1_700_000_000, ctimeNsec: 7, ...over };
}

describe("VerdictCache", () => {
  test("remembers a clean file version and nothing else", () => {
    const c = VerdictCache.create(16);
    c.add(st(1));
    expect(c.has(st(1))).toBe(true);
    expect(c.has(st(2))).toBe(false);
  });

  test("any change of size, mtime or ctime (to the nanosecond) is a miss", () => {
    const c = VerdictCache.create(16);
    c.add(st(1));
    expect(c.has(st(1, { size: 101 }))).toBe(false);
    expect(c.has(st(1, { mtimeNsec: 6 }))).toBe(false);
    expect(c.has(st(1, { ctimeSec: 1_700_000_001 }))).toBe(false);
    expect(c.has(st(1, { ctimeNsec: 8 }))).toBe(false);
    expect(c.has(st(1, { dev: 2050 }))).toBe(false);
  });

  test("holds at most its capacity, evicting the least recently used entry", () => {
    const c = VerdictCache.create(3);
    c.add(st(1));
    c.add(st(2));
    c.add(st(3));
    expect(c.has(st(1))).toBe(true); // 1 becomes most recent; 2 is now the oldest
    expect(c.add(st(4))).toBe(true);
    expect(c.size).toBe(3);
    expect(c.has(st(2))).toBe(false);
    expect(c.has(st(1))).toBe(true);
    expect(c.has(st(3))).toBe(true);
    expect(c.has(st(4))).toBe(true);
  });

  test("the bound holds over many inserts that collide in buckets", () => {
    const c = VerdictCache.create(1000);
    for (let i = 0; i < 50_000; i++) c.add(st(i * 4096, { dev: i % 3 }));
    expect(c.size).toBe(1000);
    for (let i = 49_000; i < 50_000; i++) expect(c.has(st(i * 4096, { dev: i % 3 }))).toBe(true);
    expect(c.has(st(48_999 * 4096, { dev: 48_999 % 3 }))).toBe(false);
  });

  test("inode numbers above 2^32 are told apart", () => {
    const c = VerdictCache.create(8);
    c.add(st(2 ** 40 + 1));
    expect(c.has(st(1))).toBe(false);
    expect(c.has(st(2 ** 40 + 1))).toBe(true);
  });

  test("clear() forgets everything; another thread's view sees the same entries", () => {
    const c = VerdictCache.create(8);
    const other = VerdictCache.attach(c.buffers);
    c.add(st(1));
    expect(other.has(st(1))).toBe(true);
    other.clear();
    expect(c.has(st(1))).toBe(false);
    expect(c.size).toBe(0);
  });
});
