// Directory watchers (DDD and extra scanning) against the real kernel: a notification-class fanotify group
// with FAN_REPORT_DFID_NAME and an inotify instance, both only on a tmpfs this file mounts itself.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chooseDirectoryWatcher, type DirectoryWatcher } from "../../src/engine/dirwatch/index.ts";
import type { WatcherKind, WatcherOptions } from "../../src/engine/dirwatch/types.ts";
import { DT_DIR, DT_REG, DirReader, openDirectory } from "../../ffi/dirent.ts";
import { libc } from "../../ffi/libc.ts";
import { POLLIN, PollSet } from "../../ffi/poll.ts";
import { Recorder, bytes, text } from "../fixtures/dir-events.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
let mount: TestMount;

beforeAll(() => {
  mount = mountTmpfs("/tmp/onacc-dirwatch-", "512m");
});
afterAll(() => {
  mount?.unmount();
});


/** The marks (fanotify) or watches (inotify) the kernel holds for the watcher's fd. */
function kernelWatches(w: DirectoryWatcher): number {
  const prefix = w.kind === "fanotify" ? "fanotify ino:" : "inotify wd:";
  return readFileSync(`/proc/self/fdinfo/${w.fd}`, "utf8")
    .split("\n")
    .filter((l) => l.startsWith(prefix)).length;
}

function watched(w: DirectoryWatcher): string[] {
  return w.watchedPaths().map(text).sort();
}

function freshDir(label: string): string {
  const dir = join(mount.path, `${label}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  return dir;
}

/** Drains `w` each time poll() finds its fd readable, as the reader thread waits on it, until `done()` or `limitMs`. */
function drainWhenReadable(w: DirectoryWatcher, rec: Recorder, done: () => boolean, limitMs: number): void {
  const polls = new PollSet([{ fd: w.fd, events: POLLIN }]);
  const giveUp = Date.now() + limitMs;
  while (!done() && Date.now() < giveUp) if (polls.wait(50) > 0) w.drain(rec);
}

async function withWatcher(
  kind: WatcherKind,
  body: (w: DirectoryWatcher, dir: string, rec: Recorder) => void | Promise<void>,
  options: WatcherOptions = {},
) {
  const dir = freshDir(kind);
  const w = chooseDirectoryWatcher({ prefer: kind, ...options }).watcher;
  try {
    expect(w.kind).toBe(kind);
    await body(w, dir, new Recorder());
  } finally {
    w.close();
  }
}

test("chooseDirectoryWatcher() picks filesystem marks on this kernel, directory marks or inotify when asked", () => {
  const choice = chooseDirectoryWatcher({ probePaths: [bytes(mount.path)] });
  try {
    expect(choice.watcher.kind).toBe("fanotify-fs");
    expect(choice.reason).toContain("FAN_MARK_FILESYSTEM");
  } finally {
    choice.watcher.close();
  }
  const perDirectory = chooseDirectoryWatcher({ prefer: "fanotify", probePaths: [bytes(mount.path)] });
  try {
    expect(perDirectory.watcher.kind).toBe("fanotify");
    expect(perDirectory.reason).toContain("FAN_REPORT_DFID_NAME");
  } finally {
    perDirectory.watcher.close();
  }
  const inotify = chooseDirectoryWatcher({ prefer: "inotify" });
  try {
    expect(inotify.watcher.kind).toBe("inotify");
    expect(inotify.reason).toContain("inotify");
  } finally {
    inotify.watcher.close();
  }
});

test("DirReader lists files and directories with their names as bytes, and as latin1 text for the watchers", () => {
  const dir = freshDir("list");
  mkdirSync(join(dir, "sub"));
  writeFileSync(Buffer.concat([bytes(`${dir}/`), Buffer.from([0x66, 0xff, 0x0a])]), "x");
  const reader = new DirReader();
  const listed = <T>(list: (fd: number) => T): T => {
    const fd = openDirectory(dir);
    try {
      return list(fd);
    } finally {
      libc.close(fd);
    }
  };
  const entries: (readonly [string, number])[] = [];
  listed((fd) => reader.list(fd, (name, type) => entries.push([text(name), type])));
  expect(entries.sort()).toEqual([
    ["f\xff\n", DT_REG],
    ["sub", DT_DIR],
  ]);
  const all: string[] = [];
  expect(listed((fd) => reader.listLatin(fd, () => true, (name) => all.push(name)))).toBe(0);
  expect(Buffer.from(all.sort().join("/"), "latin1")).toEqual(Buffer.from([0x66, 0xff, 0x0a, 0x2f, 0x73, 0x75, 0x62]));
  const dirs: string[] = [];
  expect(listed((fd) => reader.listLatin(fd, (t) => t === DT_DIR, (name) => dirs.push(name)))).toBe(0);
  expect(dirs).toEqual(["sub"]);
});

describe.each(["fanotify", "inotify"] as const)("%s watcher", (kind) => {
  test("addTree() watches every directory below the root except excluded ones", async () => {
    await withWatcher(kind, (w, dir) => {
      for (const d of ["a/b", "a/c", "skip/deep", "d"]) mkdirSync(join(dir, d), { recursive: true });
      expect(w.addTree(bytes(dir), [bytes(join(dir, "skip"))])).toBe(5);
      expect(watched(w)).toEqual([dir, `${dir}/a`, `${dir}/a/b`, `${dir}/a/c`, `${dir}/d`]);
      expect(w.watchCount()).toBe(5);
      expect(kernelWatches(w)).toBe(5);
    });
  });

  test("a folder created after start, three levels deep, is watched and a file written into it is reported as close-write", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      w.addTree(bytes(dir), []);
      mkdirSync(join(dir, "a/b/c"), { recursive: true });
      w.drain(rec);
      expect(rec.added).toEqual([`${dir}/a`, `${dir}/a/b`, `${dir}/a/b/c`]);
      expect(watched(w)).toEqual([dir, `${dir}/a`, `${dir}/a/b`, `${dir}/a/b/c`]);
      expect(kernelWatches(w)).toBe(4);
      writeFileSync(join(dir, "a/b/c/eicar.com"), "body");
      w.drain(rec);
      expect(rec.filesNamed(`${dir}/a/b/c/eicar.com`)).toContain("close-write");
    });
  });

  test("files written into a new directory before it was marked are reported as created", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      w.addTree(bytes(dir), []);
      // Nothing is drained until the whole tree and its files exist: none of it was marked in time.
      mkdirSync(join(dir, "new/inner"), { recursive: true });
      writeFileSync(join(dir, "new/early.txt"), "1");
      writeFileSync(join(dir, "new/inner/earlier.txt"), "2");
      w.drain(rec);
      expect(rec.filesNamed(`${dir}/new/early.txt`)).toContain("created");
      expect(rec.filesNamed(`${dir}/new/inner/earlier.txt`)).toContain("created");
      expect(watched(w)).toEqual([dir, `${dir}/new`, `${dir}/new/inner`]);
    });
  });

  test("a tree moved in from elsewhere on the filesystem is watched and every file inside it is reported", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      const outside = freshDir("outside");
      mkdirSync(join(outside, "p/q/r"), { recursive: true });
      for (const f of ["p/1", "p/q/2", "p/q/r/3", "p/q/r/4"]) writeFileSync(join(outside, f), f);
      w.addTree(bytes(dir), []);
      renameSync(join(outside, "p"), join(dir, "p"));
      w.drain(rec);
      expect(watched(w)).toEqual([dir, `${dir}/p`, `${dir}/p/q`, `${dir}/p/q/r`]);
      expect(rec.added).toEqual([`${dir}/p`, `${dir}/p/q`, `${dir}/p/q/r`]);
      for (const f of ["p/1", "p/q/2", "p/q/r/3", "p/q/r/4"]) expect(rec.filesNamed(`${dir}/${f}`)).toEqual(["created"]);
      expect(kernelWatches(w)).toBe(4);
    });
  });

  test("a file moved in from outside the tree is reported as moved-to", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      mkdirSync(join(dir, "inbox"));
      const outside = freshDir("outside");
      writeFileSync(join(outside, "dropped.exe"), "x");
      w.addTree(bytes(dir), []);
      renameSync(join(outside, "dropped.exe"), join(dir, "inbox/dropped.exe"));
      w.drain(rec);
      expect(rec.files).toEqual([[`${dir}/inbox/dropped.exe`, "moved-to"]]);
    });
  });

  test("a renamed directory reports later events under its new path", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      mkdirSync(join(dir, "old/deep"), { recursive: true });
      mkdirSync(join(dir, "other"));
      w.addTree(bytes(dir), []);
      renameSync(join(dir, "old"), join(dir, "other/new"));
      w.drain(rec);
      expect(rec.moved).toEqual([[`${dir}/old`, `${dir}/other/new`]]);
      expect(rec.removed).toEqual([]);
      expect(watched(w)).toEqual([dir, `${dir}/other`, `${dir}/other/new`, `${dir}/other/new/deep`]);
      writeFileSync(join(dir, "other/new/deep/f"), "x");
      mkdirSync(join(dir, "other/new/deep/later"));
      w.drain(rec);
      expect(rec.filesNamed(`${dir}/other/new/deep/f`)).toContain("close-write");
      expect(rec.added).toEqual([`${dir}/other/new/deep/later`]);
      expect(kernelWatches(w)).toBe(5);
    });
  });

  test("deleted and moved-out folders leave no stale watches", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      for (const d of ["gone/x/y", "leaving/z", "stays"]) mkdirSync(join(dir, d), { recursive: true });
      expect(w.addTree(bytes(dir), [])).toBe(7);
      const outside = freshDir("outside");
      rmSync(join(dir, "gone"), { recursive: true });
      renameSync(join(dir, "leaving"), join(outside, "leaving"));
      w.drain(rec);
      expect(watched(w)).toEqual([dir, `${dir}/stays`]);
      expect(rec.removed).toContain(`${dir}/leaving`);
      expect(rec.removed).toContain(`${dir}/gone`);
      expect(w.watchCount()).toBe(2);
      expect(kernelWatches(w)).toBe(2);
      // The moved-out directory raises nothing any more.
      writeFileSync(join(outside, "leaving/z/f"), "x");
      mkdirSync(join(outside, "leaving/z/n"));
      w.drain(rec);
      expect(rec.files).toEqual([]);
      expect(w.watchCount()).toBe(2);
    });
  });

  test("an excluded new folder is not watched and nothing written into it is reported", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      mkdirSync(join(dir, "watched"));
      w.addTree(bytes(dir), [bytes(join(dir, "cache"))]);
      mkdirSync(join(dir, "cache/sub"), { recursive: true });
      writeFileSync(join(dir, "cache/sub/f"), "x");
      w.drain(rec);
      expect(watched(w)).toEqual([dir, `${dir}/watched`]);
      expect(rec.added).toEqual([]);
      expect(rec.files).toEqual([]);
      // A watched directory moved into the excluded one leaves the tree.
      renameSync(join(dir, "watched"), join(dir, "cache/watched"));
      w.drain(rec);
      expect(rec.removed).toEqual([`${dir}/watched`]);
      expect(watched(w)).toEqual([dir]);
      expect(kernelWatches(w)).toBe(1);
    });
  });

  test("non-UTF-8 and newline names come through as exact bytes", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      w.addTree(bytes(dir), []);
      const dirName = Buffer.from([0x64, 0xff, 0x0a, 0xc3, 0x28]); // "d", invalid byte, newline, bad UTF-8 pair
      const fileName = Buffer.from([0x0a, 0x80, 0x66]);
      const newDir = Buffer.concat([bytes(`${dir}/`), dirName]);
      mkdirSync(newDir);
      w.drain(rec);
      writeFileSync(Buffer.concat([newDir, bytes("/"), fileName]), "x");
      w.drain(rec);
      const file = Buffer.concat([newDir, bytes("/"), fileName]);
      expect(rec.added).toEqual([text(newDir)]);
      expect(rec.files).toEqual([[text(file), "close-write"]]);
      expect(watched(w)).toEqual([dir, text(newDir)]);
    });
  });

  test("a queue overflow calls overflow() and resync() catches up with what changed meanwhile", async () => {
    await withWatcher(
      kind,
      (w, dir, rec) => {
        mkdirSync(join(dir, "flood"));
        mkdirSync(join(dir, "renamed-meanwhile"));
        mkdirSync(join(dir, "deleted-meanwhile"));
        w.addTree(bytes(dir), []);
        // More events than fs.{ino,fano}tify.max_queued_events (16384 here) before anyone reads.
        const limit = Number(readFileSync(`/proc/sys/fs/${kind}/max_queued_events`, "utf8"));
        for (let i = 0; i <= limit; i++) writeFileSync(join(dir, "flood", `f${i}`), "");
        mkdirSync(join(dir, "appeared/inside"), { recursive: true });
        writeFileSync(join(dir, "appeared/inside/file"), "x");
        renameSync(join(dir, "renamed-meanwhile"), join(dir, "now-renamed"));
        rmSync(join(dir, "deleted-meanwhile"), { recursive: true });
        w.drain(rec);
        expect(rec.overflows).toBeGreaterThanOrEqual(1);
        const r2 = new Recorder();
        w.resync(r2);
        expect(watched(w)).toEqual([dir, `${dir}/appeared`, `${dir}/appeared/inside`, `${dir}/flood`, `${dir}/now-renamed`]);
        expect(r2.filesNamed(`${dir}/appeared/inside/file`)).toEqual(["created"]);
        expect(r2.files.filter(([p]) => p.includes("/flood/"))).toEqual([]);
        expect(kernelWatches(w)).toBe(5);
        w.drain(new Recorder()); // whatever is still queued leaves the tree as it is
        expect(watched(w)).toEqual([dir, `${dir}/appeared`, `${dir}/appeared/inside`, `${dir}/flood`, `${dir}/now-renamed`]);
      },
      { unlimited: false },
    );
  });

  test("hooks see each new directory through an open fd before it is listed, and each departed one", async () => {
    const seen: [string, boolean][] = [];
    const gone: [string, boolean][] = [];
    const isDirFd = (fd: number) => fd >= 0 && fstatSync(fd).isDirectory();
    await withWatcher(
      kind,
      (w, dir, rec) => {
        mkdirSync(join(dir, "start"));
        w.addTree(bytes(dir), []);
        expect(seen).toEqual([
          [dir, true],
          [`${dir}/start`, true],
        ]);
        mkdirSync(join(dir, "later/deeper"), { recursive: true });
        w.drain(rec);
        expect(seen.slice(2)).toEqual([
          [`${dir}/later`, true],
          [`${dir}/later/deeper`, true],
        ]);
        const outside = freshDir("outside");
        renameSync(join(dir, "later"), join(outside, "later"));
        rmSync(join(dir, "start"), { recursive: true });
        w.drain(rec);
        // fanotify reopens a moved-out directory by its file handle; inotify keeps no handles.
        const movedOut = kind === "fanotify";
        expect(gone.sort()).toEqual([
          [`${dir}/later`, movedOut],
          [`${dir}/later/deeper`, movedOut],
          [`${dir}/start`, false],
        ]);
      },
      {
        onDirectory: (fd, p) => void seen.push([text(p), isDirFd(fd)]),
        onDirectoryRemoved: (fd, p) => void gone.push([text(p), isDirFd(fd)]),
      },
    );
  });

  test("removeTree() drops every watch of a tree and leaves other trees watched", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      mkdirSync(join(dir, "one/a/b"), { recursive: true });
      mkdirSync(join(dir, "two/c"), { recursive: true });
      w.addTree(bytes(join(dir, "one")), []);
      w.addTree(bytes(join(dir, "two")), []);
      expect(kernelWatches(w)).toBe(5);
      w.removeTree(bytes(join(dir, "one")));
      expect(watched(w)).toEqual([`${dir}/two`, `${dir}/two/c`]);
      expect(kernelWatches(w)).toBe(2);
      writeFileSync(join(dir, "one/a/b/f"), "x");
      w.drain(rec);
      expect(rec.files).toEqual([]);
      // A subtree removed from inside a tree stays out of it.
      w.removeTree(bytes(join(dir, "two/c")));
      rmSync(join(dir, "two/c"), { recursive: true });
      mkdirSync(join(dir, "two/c/new"), { recursive: true });
      writeFileSync(join(dir, "two/c/f"), "x");
      w.drain(rec);
      expect(watched(w)).toEqual([`${dir}/two`]);
      expect(rec.files).toEqual([]);
    });
  });

  test("a directory replaced by another of the same name before the drain is watched anew", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      mkdirSync(join(dir, "name/old-inside"), { recursive: true });
      w.addTree(bytes(dir), []);
      rmSync(join(dir, "name"), { recursive: true });
      mkdirSync(join(dir, "name/new-inside"), { recursive: true });
      writeFileSync(join(dir, "name/new-inside/f"), "x");
      w.drain(rec);
      expect(watched(w)).toEqual([dir, `${dir}/name`, `${dir}/name/new-inside`]);
      expect(rec.filesNamed(`${dir}/name/new-inside/f`)).toEqual(["created"]);
      expect(kernelWatches(w)).toBe(3);
    });
  });

  test("directories created at full speed by another process are all watched and every file in them reported", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      w.addTree(bytes(dir), []);
      const script = 'for i in $(seq 1 100); do mkdir -p "d$i/e/f" && echo x > "d$i/e/f/file"; done; echo > done';
      const proc = Bun.spawn(["sh", "-c", script], { cwd: dir, stdout: "ignore", stderr: "ignore" });
      try {
        drainWhenReadable(w, rec, () => rec.filesNamed(`${dir}/done`).length > 0, 10_000);
      } finally {
        proc.kill();
      }
      w.drain(rec);
      for (let i = 1; i <= 100; i++) expect(rec.filesNamed(`${dir}/d${i}/e/f/file`).length).toBeGreaterThan(0);
      expect(w.watchCount()).toBe(301);
      expect(kernelWatches(w)).toBe(301);
    });
  });

  test("its fd turns readable in poll() when a directory appears, and the drain reports it", async () => {
    await withWatcher(kind, (w, dir, rec) => {
      w.addTree(bytes(dir), []);
      const polls = new PollSet([{ fd: w.fd, events: POLLIN }]);
      expect(polls.wait(0)).toBe(0);
      mkdirSync(join(dir, "x"));
      expect(polls.wait(5000)).toBe(1);
      expect(polls.revents(0) & POLLIN).toBe(POLLIN);
      w.drain(rec);
      expect(rec.added).toEqual([`${dir}/x`]);
    });
  });

  test("reaching the watch limit reports one message naming the sysctl and keeps watching what it has", () => {
    // The limit is lowered inside a user namespace of its own (/proc/sys/user/max_*), never for the machine.
    const dir = freshDir(`limit-${kind}`);
    for (let i = 0; i < 8; i++) mkdirSync(join(dir, `d${i}`));
    const scratch = mkdtempSync("/tmp/onacc-dirwatch-child-");
    try {
      const child = join(scratch, "child.ts");
      writeFileSync(
        child,
        `import { writeFileSync, mkdirSync } from "node:fs";
import { chooseDirectoryWatcher } from ${JSON.stringify(`${ROOT}/src/engine/dirwatch/index.ts`)};
const [kind, root] = process.argv.slice(2);
writeFileSync(kind === "inotify" ? "/proc/sys/user/max_inotify_watches" : "/proc/sys/user/max_fanotify_marks", "4");
const w = chooseDirectoryWatcher({ prefer: kind, unlimited: false }).watcher;
const limits = [], files = [];
const ev = { directoryAdded() {}, directoryRemoved() {}, fileLanded: (p) => files.push(Buffer.from(p).toString()), overflow() {},
  limit: (m) => limits.push(m), warning: (m) => limits.push("warning: " + m) };
try {
  const n = w.addTree(Buffer.from(root), [], ev);
  mkdirSync(root + "/later");
  w.drain(ev);
  writeFileSync(root + "/still-watched", "x");
  w.drain(ev);
  console.log(JSON.stringify({ kind: w.kind, n, count: w.watchCount(), limits, files }));
} finally {
  w.close();
}
`,
      );
      const r = Bun.spawnSync(["unshare", "--user", "--map-root-user", "bun", child, kind, dir], { timeout: 20000, killSignal: "SIGKILL" });
      expect(r.stderr.toString()).toBe("");
      const out = JSON.parse(r.stdout.toString());
      expect(out.kind).toBe(kind);
      expect(out.n).toBe(4);
      expect(out.count).toBe(4);
      const sysctl = kind === "inotify" ? "fs.inotify.max_user_watches" : "fs.fanotify.max_user_marks";
      expect(out.limits).toHaveLength(1);
      expect(out.limits[0]).toContain(sysctl);
      expect(out.files).toEqual([`${dir}/still-watched`]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

