// Top talkers: per-scanner tables in shared memory, merged by the main thread — what is counted, the
// window of minutes, the bound on memory, and names that are not plain text.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BACKGROUND_PID, TalkerRecorder, WINDOW_MINUTES, createTopTalkers, readTopTalkers } from "../../src/engine/top-talkers.ts";

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
    rec.begin(0, o.pid ?? process.pid, fd);
    rec.end(0, o.denied ?? false);
  } finally {
    closeSync(fd);
  }
}

describe("top talkers", () => {
  test("counts scans, waiting time and denials by executable and by directory, across scanner threads", () => {
    const sab = createTopTalkers(2);
    const now = 10 * 60_000;
    const clock = () => now;
    const a = new TalkerRecorder(sab, 0, 4, clock);
    const b = new TalkerRecorder(sab, 1, 4, clock);
    for (let i = 0; i < 3; i++) scanIn(a, "busy");
    scanIn(b, "busy", { denied: true });
    scanIn(b, "quiet", { pid: 0 });
    const t = readTopTalkers([sab], 10, now);
    expect(t).toMatchObject({ windowMinutes: WINDOW_MINUTES, scans: 5, denied: 1 });
    expect(t.directories[0]).toMatchObject({ name: join(dir, "busy"), scans: 4, denied: 1, approximate: false });
    expect(t.directories[1]).toMatchObject({ name: join(dir, "quiet"), scans: 1 });
    expect(t.executables).toEqual([
      expect.objectContaining({ name: process.execPath, scans: 4, denied: 1 }),
      expect.objectContaining({ name: "(not visible: another PID namespace)", scans: 1 }),
    ]);
  });

  test("scans in flight at once are each timed and counted against their own executable and directory", () => {
    const sab = createTopTalkers(1);
    let now = 60_000;
    const rec = new TalkerRecorder(sab, 0, 3, () => now);
    const open = (sub: string) => {
      mkdirSync(join(dir, sub), { recursive: true });
      writeFileSync(join(dir, sub, "f"), "x");
      return openSync(join(dir, sub, "f"), "r");
    };
    const [a, b, c] = [open("par-a"), open("par-b"), open("par-c")];
    rec.begin(0, process.pid, a);
    now += 10;
    rec.begin(1, 0, b);
    rec.begin(2, BACKGROUND_PID, c);
    now += 5;
    rec.end(1, true); // 5 ms, denied
    now += 20;
    rec.end(0, false); // 35 ms
    rec.end(2, false); // 25 ms
    for (const fd of [a, b, c]) closeSync(fd);
    const t = readTopTalkers([sab], 10, now);
    expect(t).toMatchObject({ scans: 3, scanMs: 65, denied: 1 });
    const byDir = Object.fromEntries(t.directories.map((d) => [d.name.slice(dir.length + 1), [d.scans, d.scanMs, d.denied]]));
    expect(byDir).toEqual({ "par-a": [1, 35, 0], "par-b": [1, 5, 1], "par-c": [1, 25, 0] });
    const byExe = Object.fromEntries(t.executables.map((e) => [e.name, [e.scans, e.scanMs, e.denied]]));
    expect(byExe).toEqual({ [process.execPath]: [1, 35, 0], "(not visible: another PID namespace)": [1, 5, 1], "(onacc: extra scanning)": [1, 25, 0] });
  });

  test("the buffers of an engine replaced by a reload and of its successor are read together", () => {
    const before = createTopTalkers(1);
    const after = createTopTalkers(1);
    const clock = () => 60_000;
    scanIn(new TalkerRecorder(before, 0, 4, clock), "reloaded");
    scanIn(new TalkerRecorder(after, 0, 4, clock), "reloaded");
    scanIn(new TalkerRecorder(after, 0, 4, clock), "reloaded");
    const t = readTopTalkers([after, before], 10, 60_000);
    expect(t.scans).toBe(3);
    expect(t.directories).toEqual([expect.objectContaining({ name: join(dir, "reloaded"), scans: 3 })]);
  });

  test("an opener gone before its scan is named as such, not mistaken for another process", () => {
    const sab = createTopTalkers(1);
    const rec = new TalkerRecorder(sab, 0, 4, () => 60_000);
    const gone = Bun.spawnSync(["true"]).pid;
    scanIn(rec, "x", { pid: gone });
    expect(readTopTalkers([sab], 10, 60_000).executables[0]!.name).toBe("(exited before the scan)");
  });

  test("only the last minutes count: older buckets drop out, and a reused bucket starts empty", () => {
    const sab = createTopTalkers(1);
    let now = 100 * 60_000;
    const rec = new TalkerRecorder(sab, 0, 4, () => now);
    scanIn(rec, "old");
    now += WINDOW_MINUTES * 60_000;
    scanIn(rec, "new");
    const t = readTopTalkers([sab], 10, now);
    expect(t.scans).toBe(1);
    expect(t.directories.map((d) => d.name)).toEqual([join(dir, "new")]);
    // Six minutes on, the bucket "old" used is written again: its old entries must be gone.
    now = 100 * 60_000 + 6 * 60_000;
    scanIn(rec, "again");
    expect(readTopTalkers([sab], 10, now).directories.map((d) => d.name)).toEqual([join(dir, "again"), join(dir, "new")]);
  });

  test("memory is bounded: a flood of distinct directories cannot push out the busiest one", () => {
    const sab = createTopTalkers(1);
    const sizeBefore = sab.byteLength;
    const rec = new TalkerRecorder(sab, 0, 4, () => 60_000);
    for (let i = 0; i < 200; i++) {
      scanIn(rec, "hot");
      scanIn(rec, `cold-${i}`);
    }
    const t = readTopTalkers([sab], 5, 60_000);
    expect(sab.byteLength).toBe(sizeBefore);
    expect(t.scans).toBe(400);
    expect(t.directories[0]!.name).toBe(join(dir, "hot"));
    // Space-saving: the count may be too high by the error it inherited, never too low.
    expect(t.directories[0]!.scans).toBeGreaterThanOrEqual(200);
    expect(t.directories.length).toBe(5);
  });

  test("names with newlines and invalid UTF-8 are shown escaped, like the log", () => {
    const sab = createTopTalkers(1);
    const rec = new TalkerRecorder(sab, 0, 4, () => 60_000);
    const odd = Buffer.concat([Buffer.from(join(dir, "a\nb")), Buffer.from([0xff])]);
    mkdirSync(odd, { recursive: true });
    writeFileSync(Buffer.concat([odd, Buffer.from("/f")]), "x");
    const fd = openSync(Buffer.concat([odd, Buffer.from("/f")]), "r");
    rec.begin(0, process.pid, fd);
    rec.end(0, false);
    closeSync(fd);
    expect(readTopTalkers([sab], 10, 60_000).directories[0]!.name).toBe(`${join(dir, "a\\nb")}\\xff`);
  });

  test("a directory path longer than the kept key bytes is shown cut, and two of them are kept apart", () => {
    const sab = createTopTalkers(1);
    const rec = new TalkerRecorder(sab, 0, 4, () => 60_000);
    const long = "d".repeat(250);
    scanIn(rec, `${long}/one`);
    scanIn(rec, `${long}/two`);
    scanIn(rec, `${long}/two`);
    const t = readTopTalkers([sab], 10, 60_000);
    expect(t.directories.length).toBe(2);
    expect(t.directories.every((d) => d.name.endsWith("…"))).toBe(true);
    expect(t.directories.map((d) => d.scans)).toEqual([2, 1]);
  });
});
