// Top talkers: per-scanner tables in shared memory, merged by the main thread — what is counted, the
// window of minutes, the bound on memory, and names that are not plain text.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TalkerRecorder, WINDOW_MINUTES, createTopTalkers, readTopTalkers } from "../../src/engine/top-talkers.ts";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-top-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Opens a file in `sub` (created), records one scan of it, closes it. */
function scanIn(rec: TalkerRecorder, sub: string, o: { pid?: number; denied?: boolean } = {}): void {
  const d = join(dir, sub);
  mkdirSync(d, { recursive: true });
  const f = join(d, "f");
  writeFileSync(f, "x");
  const fd = openSync(f, "r");
  try {
    rec.begin(o.pid ?? process.pid, fd);
    rec.end(o.denied ?? false);
  } finally {
    closeSync(fd);
  }
}

describe("top talkers", () => {
  test("counts scans, waiting time and denials by executable and by directory, across scanner threads", () => {
    const sab = createTopTalkers(2);
    const now = 10 * 60_000;
    const clock = () => now;
    const a = new TalkerRecorder(sab, 0, clock);
    const b = new TalkerRecorder(sab, 1, clock);
    for (let i = 0; i < 3; i++) scanIn(a, "busy");
    scanIn(b, "busy", { denied: true });
    scanIn(b, "quiet", { pid: 0 });
    const t = readTopTalkers(sab, 2, 10, now);
    expect(t).toMatchObject({ windowMinutes: WINDOW_MINUTES, scans: 5, denied: 1 });
    expect(t.directories[0]).toMatchObject({ name: join(dir, "busy"), scans: 4, denied: 1, approximate: false });
    expect(t.directories[1]).toMatchObject({ name: join(dir, "quiet"), scans: 1 });
    expect(t.executables).toEqual([
      expect.objectContaining({ name: process.execPath, scans: 4, denied: 1 }),
      expect.objectContaining({ name: "(not visible: another PID namespace)", scans: 1 }),
    ]);
  });

  test("an opener gone before its scan is named as such, not mistaken for another process", () => {
    const sab = createTopTalkers(1);
    const rec = new TalkerRecorder(sab, 0, () => 60_000);
    const gone = Bun.spawnSync(["true"]).pid;
    scanIn(rec, "x", { pid: gone });
    expect(readTopTalkers(sab, 1, 10, 60_000).executables[0]!.name).toBe("(exited before the scan)");
  });

  test("only the last minutes count: older buckets drop out, and a reused bucket starts empty", () => {
    const sab = createTopTalkers(1);
    let now = 100 * 60_000;
    const rec = new TalkerRecorder(sab, 0, () => now);
    scanIn(rec, "old");
    now += WINDOW_MINUTES * 60_000;
    scanIn(rec, "new");
    const t = readTopTalkers(sab, 1, 10, now);
    expect(t.scans).toBe(1);
    expect(t.directories.map((d) => d.name)).toEqual([join(dir, "new")]);
    // Six minutes on, the bucket "old" used is written again: its old entries must be gone.
    now = 100 * 60_000 + 6 * 60_000;
    scanIn(rec, "again");
    expect(readTopTalkers(sab, 1, 10, now).directories.map((d) => d.name)).toEqual([join(dir, "again"), join(dir, "new")]);
  });

  test("memory is bounded: a flood of distinct directories cannot push out the busiest one", () => {
    const sab = createTopTalkers(1);
    const sizeBefore = sab.byteLength;
    const rec = new TalkerRecorder(sab, 0, () => 60_000);
    for (let i = 0; i < 200; i++) {
      scanIn(rec, "hot");
      scanIn(rec, `cold-${i}`);
    }
    const t = readTopTalkers(sab, 1, 5, 60_000);
    expect(sab.byteLength).toBe(sizeBefore);
    expect(t.scans).toBe(400);
    expect(t.directories[0]!.name).toBe(join(dir, "hot"));
    // Space-saving: the count may be too high by the error it inherited, never too low.
    expect(t.directories[0]!.scans).toBeGreaterThanOrEqual(200);
    expect(t.directories.length).toBe(5);
  });

  test("names with newlines and invalid UTF-8 are shown escaped, like the log", () => {
    const sab = createTopTalkers(1);
    const rec = new TalkerRecorder(sab, 0, () => 60_000);
    const odd = Buffer.concat([Buffer.from(join(dir, "a\nb")), Buffer.from([0xff])]);
    mkdirSync(odd, { recursive: true });
    writeFileSync(Buffer.concat([odd, Buffer.from("/f")]), "x");
    const fd = openSync(Buffer.concat([odd, Buffer.from("/f")]), "r");
    rec.begin(process.pid, fd);
    rec.end(false);
    closeSync(fd);
    expect(readTopTalkers(sab, 1, 10, 60_000).directories[0]!.name).toBe(`${join(dir, "a\\nb")}\\xff`);
  });

  test("a directory path longer than the kept key bytes is shown cut, and two of them are kept apart", () => {
    const sab = createTopTalkers(1);
    const rec = new TalkerRecorder(sab, 0, () => 60_000);
    const long = "d".repeat(250);
    scanIn(rec, `${long}/one`);
    scanIn(rec, `${long}/two`);
    scanIn(rec, `${long}/two`);
    const t = readTopTalkers(sab, 1, 10, 60_000);
    expect(t.directories.length).toBe(2);
    expect(t.directories.every((d) => d.name.endsWith("…"))).toBe(true);
    expect(t.directories.map((d) => d.scans)).toEqual([2, 1]);
  });
});
