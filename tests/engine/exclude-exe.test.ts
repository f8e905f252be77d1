// ExcludeExe's matcher against a fake process table: identity by device and inode, the parent chain with
// ExcludeExeChildren, PIDs reused in the chain, execve changing the answer, and the table's re-resolution.
import { describe, expect, test } from "bun:test";
import { CACHE_TTL_MS, ExeMatcher, ExeTable, MAX_ANCESTORS, type ProcessSource } from "../../src/engine/exclude-exe.ts";

interface FakeProc {
  ppid: number;
  start: number;
  exe?: { dev: number; ino: number };
}

/** A process table: handles name a process object, so a PID given to a new process breaks old handles. */
class FakeProcs implements ProcessSource {
  readonly exe = { dev: 0, ino: 0 };
  ppid = -1;
  startTime = -1;
  procs = new Map<number, FakeProc>();
  private handles = new Map<number, FakeProc>();
  private next = 100;
  opens = 0;
  /** Called after each open(): lets a test swap a process under the matcher's feet. */
  afterOpen?: (pid: number) => void;

  open(pid: number): number {
    this.opens++;
    const p = this.procs.get(pid);
    if (!p) return -1;
    const h = this.next++;
    this.handles.set(h, p);
    this.afterOpen?.(pid);
    return h;
  }
  close(h: number): void {
    this.handles.delete(h);
  }
  private live(h: number): FakeProc | undefined {
    const p = this.handles.get(h);
    return p && [...this.procs.values()].includes(p) ? p : undefined;
  }
  readExe(h: number): boolean {
    const p = this.live(h);
    if (!p?.exe) return false;
    this.exe.dev = p.exe.dev;
    this.exe.ino = p.exe.ino;
    return true;
  }
  readExeOf(pid: number): boolean {
    const p = this.procs.get(pid);
    if (!p?.exe) return false;
    this.exe.dev = p.exe.dev;
    this.exe.ino = p.exe.ino;
    return true;
  }
  readStat(h: number): boolean {
    const p = this.live(h);
    if (!p) return false;
    this.ppid = p.ppid;
    this.startTime = p.start;
    return true;
  }
}

const RSYNC = { dev: 8, ino: 1001 };
const SH = { dev: 8, ino: 2002 };
const TAR = { dev: 8, ino: 3003 };
const COPY_OF_RSYNC = { dev: 8, ino: 4004 };

function tableFor(ids: Record<string, { dev: number; ino: number } | undefined>): ExeTable {
  const t = ExeTable.create(Object.keys(ids));
  t.resolve((p) => ids[p]);
  return t;
}

describe("ExcludeExe without children", () => {
  test("matches the opener's executable by device and inode; a copy elsewhere (another inode) does not", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
    procs.procs.set(11, { ppid: 1, start: 5, exe: COPY_OF_RSYNC });
    procs.procs.set(12, { ppid: 1, start: 5, exe: { dev: 9, ino: 1001 } }); // same inode number, other device
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), false, procs);
    expect(m.match(10, 0)).toBe(0);
    expect(m.match(11, 0)).toBe(-1);
    expect(m.match(12, 0)).toBe(-1);
  });

  test("PID 0 (not visible), a vanished process and a kernel thread never match", () => {
    const procs = new FakeProcs();
    procs.procs.set(2, { ppid: 0, start: 0 });
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), false, procs);
    expect(m.match(0, 0)).toBe(-1);
    expect(m.match(-5, 0)).toBe(-1);
    expect(m.match(77, 0)).toBe(-1);
    expect(m.match(2, 0)).toBe(-1);
  });

  test("a child of the excluded executable is not excluded unless asked", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
    procs.procs.set(20, { ppid: 10, start: 6, exe: SH });
    expect(new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), false, procs).match(20, 0)).toBe(-1);
  });
});

describe("ExcludeExeChildren", () => {
  test("a grandchild of the excluded executable is excluded; its rule index is reported", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
    procs.procs.set(20, { ppid: 10, start: 6, exe: SH });
    procs.procs.set(30, { ppid: 20, start: 7, exe: TAR });
    const m = new ExeMatcher(tableFor({ "/bin/tar-not-configured": undefined, "/usr/bin/rsync": RSYNC }), true, procs);
    expect(m.match(30, 0)).toBe(1);
    expect(m.match(10, 0)).toBe(1);
  });

  test("PID 1 is no ancestor that counts, even when it runs an excluded executable", () => {
    const procs = new FakeProcs();
    procs.procs.set(1, { ppid: 0, start: 0, exe: RSYNC });
    procs.procs.set(20, { ppid: 1, start: 6, exe: SH });
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs);
    expect(m.match(20, 0)).toBe(-1);
    expect(m.match(1, 0)).toBe(0); // its own opens are its own
  });

  test("a parent PID reused by a process started after the child does not count", () => {
    const procs = new FakeProcs();
    // The child's parent 10 exited; PID 10 now belongs to a new rsync, started later than the child.
    procs.procs.set(20, { ppid: 10, start: 6, exe: SH });
    procs.procs.set(10, { ppid: 1, start: 9, exe: RSYNC });
    expect(new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs).match(20, 0)).toBe(-1);
  });

  test("a PID replaced between reading its start time and its executable is never mixed up", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: SH });
    procs.procs.set(20, { ppid: 10, start: 6, exe: TAR });
    // Right after the matcher opens PID 10, the process exits and a new rsync takes PID 10.
    procs.afterOpen = (pid) => {
      if (pid === 10) {
        procs.afterOpen = undefined;
        procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
      }
    };
    expect(new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs).match(20, 0)).toBe(-1);
  });

  test("the walk stops after MAX_ANCESTORS parents", () => {
    const procs = new FakeProcs();
    procs.procs.set(1000, { ppid: 1, start: 1, exe: RSYNC });
    let parent = 1000;
    for (let i = 0; i < MAX_ANCESTORS + 1; i++) {
      procs.procs.set(2000 + i, { ppid: parent, start: 2 + i, exe: SH });
      parent = 2000 + i;
    }
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs);
    expect(m.match(parent, 0)).toBe(-1);
    expect(m.match(2000 + MAX_ANCESTORS - 1, 0)).toBe(0);
  });

  test("an execve of the opener changes the answer at once, cache or not", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
    procs.procs.set(20, { ppid: 10, start: 6, exe: SH });
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs);
    expect(m.match(20, 0)).toBe(0);
    // The parent execs something else, and the child execs too: the child's key changed, the walk runs again.
    procs.procs.get(10)!.exe = SH;
    procs.procs.get(20)!.exe = TAR;
    expect(m.match(20, 1)).toBe(-1);
  });

  test("a cached answer is never inherited by a later process on the same PID", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
    procs.procs.set(20, { ppid: 10, start: 6, exe: SH });
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs);
    expect(m.match(20, 0)).toBe(0);
    // PID 20 exits; a process of someone else's shell gets PID 20 (same executable, later start).
    procs.procs.set(30, { ppid: 1, start: 7, exe: SH });
    procs.procs.set(20, { ppid: 30, start: 8, exe: SH });
    expect(m.match(20, 1)).toBe(-1);
  });

  test("answers about ancestors are cached for a short time only", () => {
    const procs = new FakeProcs();
    procs.procs.set(10, { ppid: 1, start: 5, exe: RSYNC });
    procs.procs.set(20, { ppid: 10, start: 6, exe: SH });
    const m = new ExeMatcher(tableFor({ "/usr/bin/rsync": RSYNC }), true, procs);
    expect(m.match(20, 0)).toBe(0);
    const opens = procs.opens;
    expect(m.match(20, 10)).toBe(0);
    expect(procs.opens).toBe(opens + 1); // the opener only: no walk
    procs.procs.get(10)!.exe = SH; // the parent execs another program
    expect(m.match(20, CACHE_TTL_MS - 1)).toBe(0);
    expect(m.match(20, CACHE_TTL_MS + 1)).toBe(-1);
  });
});

describe("ExeTable", () => {
  test("a replaced binary (new inode) is followed, and the old inode no longer matches", () => {
    const ids: Record<string, { dev: number; ino: number } | undefined> = { "/usr/bin/rsync": RSYNC };
    const t = ExeTable.create(["/usr/bin/rsync"]);
    expect(t.resolve((p) => ids[p]).map((c) => c.why)).toEqual(["resolved"]);
    expect(t.resolve((p) => ids[p])).toEqual([]);
    const gen = t.generation();
    ids["/usr/bin/rsync"] = { dev: 8, ino: 5005 };
    expect(t.resolve((p) => ids[p])).toEqual([{ path: "/usr/bin/rsync", now: { dev: 8, ino: 5005 }, why: "replaced (a new inode)" }]);
    expect(t.generation()).not.toBe(gen);
    expect(t.find(RSYNC.dev, RSYNC.ino)).toBe(-1);
    expect(t.find(8, 5005)).toBe(0);
  });

  test("a missing path matches nothing until it appears", () => {
    const ids: Record<string, { dev: number; ino: number } | undefined> = {};
    const t = ExeTable.create(["/opt/backup/agent"]);
    expect(t.resolve((p) => ids[p])[0]!.why).toMatch(/^not found/);
    expect(t.find(-1, -1)).toBe(-1);
    ids["/opt/backup/agent"] = TAR;
    expect(t.resolve((p) => ids[p])[0]!.why).toBe("appeared");
    expect(t.find(TAR.dev, TAR.ino)).toBe(0);
  });

  test("the reader's view through attach() sees the main thread's updates", () => {
    const t = tableFor({ "/usr/bin/rsync": RSYNC });
    const reader = ExeTable.attach(t.sab);
    expect(reader.size).toBe(1);
    expect(reader.find(RSYNC.dev, RSYNC.ino)).toBe(0);
  });
});

describe("against the real /proc (ffi/procfs-process.ts)", () => {
  test("ProcessFacts reads parent, start time and executable the way /proc's text shows them", async () => {
    const { ProcessFacts } = await import("../../ffi/procfs-process.ts");
    const { readProcText } = await import("../../ffi/procfs.ts");
    const { statSync, copyFileSync, chmodSync, mkdtempSync, rmSync } = await import("node:fs");
    // A command name (the file's name) with spaces and parentheses: fields must be counted from the last ')'.
    const dir = mkdtempSync("/tmp/onacc-exe-unit-");
    const odd = `${dir}/a) b (c`;
    copyFileSync(Bun.which("sleep")!, odd);
    chmodSync(odd, 0o755);
    const child = Bun.spawn([odd, "5"]);
    try {
      await Bun.sleep(100);
      expect(readProcText(child.pid, "comm")).toBe("a) b (c\n");
      const text = readProcText(child.pid, "stat")!;
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
      const facts = new ProcessFacts();
      const h = facts.open(child.pid);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(facts.readStat(h)).toBe(true);
      expect(facts.ppid).toBe(Number(fields[1]));
      expect(facts.startTime).toBe(Number(fields[19]));
      expect(facts.readExe(h)).toBe(true);
      const sleepBin = statSync(odd);
      expect({ dev: facts.exe.dev, ino: facts.exe.ino }).toEqual({ dev: sleepBin.dev, ino: sleepBin.ino });
      child.kill();
      await child.exited;
      await Bun.sleep(20);
      // The handle named that process: once it is gone, nothing more is read through it.
      expect(facts.readStat(h)).toBe(false);
      expect(facts.readExe(h)).toBe(false);
      facts.close(h);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a child of a real excluded executable is excluded through the parent chain", async () => {
    const { ProcessFacts } = await import("../../ffi/procfs-process.ts");
    const { copyFileSync, chmodSync, mkdtempSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = mkdtempSync("/tmp/onacc-exe-unit-");
    const myBash = join(dir, "mybash");
    copyFileSync(Bun.which("bash")!, myBash);
    chmodSync(myBash, 0o755);
    const parent = Bun.spawn([myBash, "-c", "sleep 5; true"]);
    try {
      await Bun.sleep(150);
      const { readFileSync } = await import("node:fs");
      const kid = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, "utf8").trim().split(/\s+/)[0]);
      const table = ExeTable.create([myBash]);
      table.resolve();
      expect(new ExeMatcher(table, true, new ProcessFacts()).match(kid, 0)).toBe(0);
      expect(new ExeMatcher(table, false, new ProcessFacts()).match(kid, 0)).toBe(-1);
      expect(new ExeMatcher(table, false, new ProcessFacts()).match(parent.pid, 0)).toBe(0);
    } finally {
      parent.kill();
      await parent.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
