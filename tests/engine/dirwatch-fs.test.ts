// The flat-start directory watcher (one fanotify FAN_MARK_FILESYSTEM mark, handles resolved to paths,
// evictable ignore marks outside the trees) against the real kernel, on a tmpfs this file mounts itself.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FanotifyFsWatcher } from "../../src/engine/dirwatch/fanotify-fs.ts";
import { chooseDirectoryWatcher } from "../../src/engine/dirwatch/index.ts";
import type { WatcherOptions } from "../../src/engine/dirwatch/types.ts";
import { Recorder, bytes, text } from "../fixtures/dir-events.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

let mount: TestMount;
beforeAll(() => {
  mount = mountTmpfs("/tmp/onacc-dirwatch-fs-", "256m");
});
afterAll(() => {
  mount?.unmount();
});


/** fdinfo lines: the filesystem mark ("fanotify sdev:") and inode marks (here: ignore marks). */
function kernelMarks(fd: number): { filesystem: number; ignore: number } {
  const lines = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").split("\n");
  return {
    filesystem: lines.filter((l) => l.startsWith("fanotify sdev:")).length,
    ignore: lines.filter((l) => l.startsWith("fanotify ino:") && /ignored_mask:[1-9a-f]/.test(l)).length,
  };
}

function freshDir(label: string): string {
  const dir = join(mount.path, `${label}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  return dir;
}

async function withWatcher(body: (w: FanotifyFsWatcher, dir: string, rec: Recorder) => void | Promise<void>, options: WatcherOptions = {}) {
  const dir = freshDir("tree");
  const choice = chooseDirectoryWatcher({ prefer: "fanotify-fs", probePaths: [bytes(dir)], ...options });
  const w = choice.watcher;
  try {
    expect(w.kind).toBe("fanotify-fs");
    await body(w as FanotifyFsWatcher, dir, new Recorder());
  } finally {
    w.close();
  }
}

test("addTree() places one filesystem mark, whatever the size of the tree", async () => {
  await withWatcher((w, dir) => {
    for (let i = 0; i < 50; i++) mkdirSync(join(dir, `d${i}/e`), { recursive: true });
    expect(w.addTree(bytes(dir), [])).toBe(1);
    expect(w.addTree(bytes(freshDir("second-tree")), [])).toBe(1);
    expect(w.watchCount()).toBe(1);
    expect(kernelMarks(w.fd)).toEqual({ filesystem: 1, ignore: 0 });
  });
});

test("a folder created after start, three levels deep, is reported and a file written into it is reported as close-write", async () => {
  await withWatcher((w, dir, rec) => {
    w.addTree(bytes(dir), []);
    mkdirSync(join(dir, "a/b/c"), { recursive: true });
    writeFileSync(join(dir, "a/b/c/eicar.com"), "body");
    w.drain(rec);
    expect(rec.added).toEqual([`${dir}/a`, `${dir}/a/b`, `${dir}/a/b/c`]);
    expect(rec.files).toEqual([[`${dir}/a/b/c/eicar.com`, "close-write"]]);
  });
});

test("a tree moved in from outside is reported with every file inside it", async () => {
  await withWatcher((w, dir, rec) => {
    w.addTree(bytes(dir), []);
    const outside = freshDir("outside");
    mkdirSync(join(outside, "p/q"), { recursive: true });
    writeFileSync(join(outside, "p/1"), "1");
    writeFileSync(join(outside, "p/q/2"), "2");
    w.drain(rec); // the outside directories are resolved now, and ignored from here on
    expect(rec.files).toEqual([]);
    writeFileSync(join(outside, "p/q/3"), "3");
    renameSync(join(outside, "p"), join(dir, "p"));
    w.drain(rec);
    expect(rec.added.sort()).toEqual([`${dir}/p`, `${dir}/p/q`]);
    for (const f of ["p/1", "p/q/2", "p/q/3"]) expect(rec.filesNamed(`${dir}/${f}`)).toEqual(["created"]);
    // Ignore marks placed while it was outside are gone: a new file in it is reported.
    writeFileSync(join(dir, "p/q/4"), "4");
    w.drain(rec);
    expect(rec.filesNamed(`${dir}/p/q/4`)).toEqual(["close-write"]);
  });
});

test("a file moved in from outside the tree is reported as moved-to", async () => {
  await withWatcher((w, dir, rec) => {
    mkdirSync(join(dir, "inbox"));
    const outside = freshDir("outside");
    writeFileSync(join(outside, "dropped.exe"), "x");
    w.addTree(bytes(dir), []);
    renameSync(join(outside, "dropped.exe"), join(dir, "inbox/dropped.exe"));
    w.drain(rec);
    expect(rec.files).toEqual([[`${dir}/inbox/dropped.exe`, "moved-to"]]);
  });
});

test("a renamed directory reports later events under its new path, also for a write made before the rename", async () => {
  await withWatcher((w, dir, rec) => {
    mkdirSync(join(dir, "old/deep"), { recursive: true });
    w.addTree(bytes(dir), []);
    writeFileSync(join(dir, "old/deep/before"), "x");
    w.drain(new Recorder()); // cache the directory's path
    writeFileSync(join(dir, "old/deep/just-before"), "x");
    renameSync(join(dir, "old"), join(dir, "new"));
    writeFileSync(join(dir, "new/deep/after"), "x");
    w.drain(rec);
    expect(rec.moved).toEqual([[`${dir}/old`, `${dir}/new`]]);
    expect(rec.filesNamed(`${dir}/new/deep/just-before`)).toEqual(["close-write"]);
    expect(rec.filesNamed(`${dir}/new/deep/after`)).toEqual(["close-write"]);
  });
});

test("a folder moved out is reported as removed and raises nothing afterwards", async () => {
  const gone: [string, boolean][] = [];
  await withWatcher(
    (w, dir, rec) => {
      mkdirSync(join(dir, "leaving/sub"), { recursive: true });
      w.addTree(bytes(dir), []);
      const outside = freshDir("outside");
      renameSync(join(dir, "leaving"), join(outside, "leaving"));
      w.drain(rec);
      expect(rec.removed).toEqual([`${dir}/leaving`]);
      expect(gone.sort()).toEqual([
        [`${dir}/leaving`, true],
        [`${dir}/leaving/sub`, true],
      ]);
      writeFileSync(join(outside, "leaving/sub/f"), "x");
      w.drain(rec);
      expect(rec.files).toEqual([]);
    },
    { onDirectoryRemoved: (fd, p) => void gone.push([text(p), fd >= 0 && fstatSync(fd).isDirectory()]) },
  );
});

test("an excluded new folder is not reported, and nothing written into it is", async () => {
  await withWatcher((w, dir, rec) => {
    w.addTree(bytes(dir), [bytes(join(dir, "cache"))]);
    mkdirSync(join(dir, "cache/sub"), { recursive: true });
    writeFileSync(join(dir, "cache/f"), "x");
    writeFileSync(join(dir, "cache/sub/g"), "x");
    w.drain(rec);
    expect(rec.added).toEqual([]);
    expect(rec.files).toEqual([]);
  });
});

test("file activity outside the trees is resolved once, then silenced in the kernel by an ignore mark", async () => {
  await withWatcher((w, dir, rec) => {
    w.addTree(bytes(dir), []);
    const outside = freshDir("busy-outside");
    for (let i = 0; i < 100; i++) writeFileSync(join(outside, `a${i}`), "x");
    expect(w.drain(rec)).toBeGreaterThan(0);
    expect(rec.files).toEqual([]);
    // The busy directory, and its parent (where it was created).
    expect(w.ignoredDirectories()).toBe(2);
    expect(kernelMarks(w.fd).ignore).toBe(2);
    for (let i = 0; i < 100; i++) writeFileSync(join(outside, `b${i}`), "x");
    expect(w.drain(rec)).toBe(0);
  });
});

test("non-UTF-8 and newline names come through as exact bytes", async () => {
  await withWatcher((w, dir, rec) => {
    w.addTree(bytes(dir), []);
    const newDir = Buffer.concat([bytes(`${dir}/`), Buffer.from([0x64, 0xff, 0x0a, 0xc3, 0x28])]);
    mkdirSync(newDir);
    const file = Buffer.concat([newDir, bytes("/"), Buffer.from([0x0a, 0x80, 0x66])]);
    writeFileSync(file, "x");
    w.drain(rec);
    expect(rec.added).toEqual([text(newDir)]);
    expect(rec.files).toEqual([[text(file), "close-write"]]);
  });
});

test("the onDirectory hook sees every existing directory at addTree() and each new one", async () => {
  const seen: string[] = [];
  await withWatcher(
    (w, dir, rec) => {
      mkdirSync(join(dir, "x/y"), { recursive: true });
      expect(w.addTree(bytes(dir), [])).toBe(3);
      mkdirSync(join(dir, "z"));
      w.drain(rec);
      expect(seen).toEqual([dir, `${dir}/x`, `${dir}/x/y`, `${dir}/z`]);
    },
    { onDirectory: (fd, p) => void (fstatSync(fd).isDirectory() && seen.push(text(p))) },
  );
});

test("removeTree() of the last tree on a filesystem removes the filesystem mark", async () => {
  await withWatcher((w, dir, rec) => {
    w.addTree(bytes(dir), []);
    expect(kernelMarks(w.fd).filesystem).toBe(1);
    w.removeTree(bytes(dir));
    expect(kernelMarks(w.fd).filesystem).toBe(0);
    writeFileSync(join(dir, "f"), "x");
    w.drain(rec);
    expect(rec.files).toEqual([]);
  });
});

test("a queue overflow calls overflow(), and resync() lets the onDirectory hook meet directories made meanwhile", async () => {
  const seen = new Set<string>();
  await withWatcher(
    (w, dir, rec) => {
      mkdirSync(join(dir, "flood"));
      w.addTree(bytes(dir), []);
      const limit = Number(readFileSync("/proc/sys/fs/fanotify/max_queued_events", "utf8"));
      for (let i = 0; i <= limit; i++) writeFileSync(join(dir, "flood", `f${i}`), "");
      mkdirSync(join(dir, "appeared/inside"), { recursive: true });
      w.drain(rec);
      expect(rec.overflows).toBeGreaterThanOrEqual(1);
      seen.clear();
      w.resync(rec);
      expect([...seen].sort()).toEqual([dir, `${dir}/appeared`, `${dir}/appeared/inside`, `${dir}/flood`]);
    },
    { unlimited: false, onDirectory: (_fd, p) => void seen.add(text(p)) },
  );
});

test("renaming a directory above the include path takes the tree away, and renaming it back brings it back", async () => {
  await withWatcher((w, dir, rec) => {
    const root = join(dir, "parent/root");
    mkdirSync(join(root, "sub"), { recursive: true });
    w.addTree(bytes(root), []);
    writeFileSync(join(root, "sub/first"), "x");
    w.drain(rec);
    expect(rec.filesNamed(`${root}/sub/first`)).toEqual(["close-write"]);
    renameSync(join(dir, "parent"), join(dir, "elsewhere"));
    writeFileSync(join(dir, "elsewhere/root/sub/while-away"), "x");
    w.drain(rec);
    expect(rec.removed).toEqual([root]);
    expect(rec.files.map(([p]) => p)).toEqual([`${root}/sub/first`]);
    writeFileSync(join(dir, "elsewhere/root/sub/while-away-2"), "x"); // under an ignore mark by now
    renameSync(join(dir, "elsewhere"), join(dir, "parent"));
    w.drain(rec);
    expect(rec.added).toEqual([root, `${root}/sub`]);
    // Back in place: what it holds is reported (it was out of sight), and new writes raise events again.
    for (const f of ["while-away", "while-away-2"]) expect(rec.filesNamed(`${root}/sub/${f}`)).toEqual(["created"]);
    writeFileSync(join(root, "sub/back"), "x");
    w.drain(rec);
    expect(rec.filesNamed(`${root}/sub/back`)).toEqual(["close-write"]);
  });
});

test("an include path deleted and made again is covered again, and the hook meets the new directory", async () => {
  const seen: string[] = [];
  await withWatcher(
    (w, dir, rec) => {
      const root = join(dir, "root");
      mkdirSync(root);
      w.addTree(bytes(root), []);
      Bun.spawnSync(["rmdir", root]);
      mkdirSync(root);
      writeFileSync(join(root, "f"), "x");
      w.drain(rec);
      expect(seen).toEqual([root, root]);
      expect(rec.filesNamed(`${root}/f`)).toContain("close-write");
    },
    { onDirectory: (_fd, p) => void seen.push(text(p)) },
  );
});
