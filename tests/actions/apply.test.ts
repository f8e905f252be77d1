import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { applyAction, type ActionLogger } from "../../src/actions/apply.ts";
import { VAULT_DIR_NAME } from "../../src/actions/vault.ts";
import { displayPath } from "../../src/log/display-path.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

// Records the warnings applyAction() logs about the quarantine itself.
function recordingLogger(): ActionLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (m: string) => void warnings.push(m) };
}

let work: string; // on /tmp, the source side
let otherFs: TestMount; // a tmpfs of our own: the other filesystem for cross-device moves
let tinyFs: TestMount; // 1 MiB tmpfs: fills up mid-copy
let readOnlyFs: TestMount; // remounted read-only: nothing can be unlinked there
let counter = 0;
const fresh = (base: string, name = "q") => join(base, `${name}-${++counter}`);

beforeAll(() => {
  work = mkdtempSync("/tmp/onacc-actions-test-");
  otherFs = mountTmpfs("/tmp/onacc-actions-tmpfs-", "64m");
  tinyFs = mountTmpfs("/tmp/onacc-actions-tiny-", "1m");
  readOnlyFs = mountTmpfs("/tmp/onacc-actions-ro-", "4m");
  writeFileSync(join(readOnlyFs.path, "stuck.bin"), "cannot be removed");
  const r = Bun.spawnSync(["mount", "-o", "remount,ro", readOnlyFs.path]);
  if (r.exitCode !== 0) throw new Error(`remount,ro ${readOnlyFs.path} failed: ${r.stderr.toString()}`);
});

afterAll(() => {
  readOnlyFs?.unmount();
  tinyFs?.unmount();
  otherFs?.unmount();
  if (work) rmSync(work, { recursive: true, force: true });
});

function makeFile(dir: string, name: string | Buffer, content: Buffer | string = randomBytes(4096)): Buffer {
  mkdirSync(dir, { recursive: true });
  const path = Buffer.concat([Buffer.from(`${dir}/`), typeof name === "string" ? Buffer.from(name) : name]);
  writeFileSync(path, content);
  return path;
}

/** Names in a quarantine directory as raw bytes, temp files included, the vault's folder left out. */
const entries = (dir: string) =>
  readdirSync(dir, { encoding: "buffer" })
    .map((b) => Buffer.from(b))
    .filter((b) => b.toString() !== VAULT_DIR_NAME);
/** Everything in the vault's folder (records and any temp file), or [] when there is none. */
const vaultFiles = (dir: string) => (existsSync(join(dir, VAULT_DIR_NAME)) ? readdirSync(join(dir, VAULT_DIR_NAME)) : []);

describe("--remove", () => {
  test("applyAction(remove) unlinks the file", () => {
    const path = makeFile(fresh(work, "src"), "infected.bin");
    const r = applyAction({ kind: "remove" }, path, recordingLogger());
    expect(r).toEqual({ ok: true, message: "Removed." });
    expect(existsSync(path)).toBe(false);
  });

  test("applyAction(remove) on a file that is already gone reports it vanished, not as a failure", () => {
    const path = join(fresh(work, "src"), "never-there");
    expect(applyAction({ kind: "remove" }, path, recordingLogger())).toEqual({
      ok: true,
      vanished: true,
      message: "vanished before remove",
    });
  });

  test("applyAction(remove) that cannot unlink returns ok:false with the reason and does not throw", () => {
    const path = join(readOnlyFs.path, "stuck.bin");
    const r = applyAction({ kind: "remove" }, path, recordingLogger());
    expect(r).toEqual({ ok: false, message: "removal failed: EROFS (read-only file system)" });
    expect(readFileSync(path, "utf8")).toBe("cannot be removed");
  });

  test("applyAction(remove) leaves alone a path that now names another file than the scanned descriptor", () => {
    const dir = fresh(work, "src");
    const path = makeFile(dir, "swapped.bin", "scanned content");
    const fd = openSync(path, "r");
    try {
      renameSync(path, join(dir, "elsewhere.bin"));
      writeFileSync(path, "innocent replacement");
      const r = applyAction({ kind: "remove" }, path, recordingLogger(), fd);
      expect(r).toEqual({ ok: true, vanished: true, message: "vanished before remove (the path now names another file)" });
      expect(readFileSync(path, "utf8")).toBe("innocent replacement");
    } finally {
      closeSync(fd);
    }
  });
});

describe("--move", () => {
  test("applyAction(move) on the same filesystem renames the file into DIR with mode 0400", () => {
    const content = randomBytes(10_000);
    const path = makeFile(fresh(work, "src"), "virus.exe", content);
    writeFileSync(path, content, { mode: 0o755 });
    const inode = statSync(path).ino;
    const quarantine = fresh(work);
    const r = applyAction({ kind: "move", dir: quarantine }, path, recordingLogger());
    const target = join(quarantine, "virus.exe");
    expect(r).toEqual({ ok: true, destination: target, message: `moved to '${target}'` });
    expect(existsSync(path)).toBe(false);
    expect(statSync(target).ino).toBe(inode); // renamed, not copied
    expect(statSync(target).mode & 0o777).toBe(0o400);
    expect(readFileSync(target).equals(content)).toBe(true);
    expect(entries(quarantine).map(String)).toEqual(["virus.exe"]);
    expect(vaultFiles(quarantine)).toHaveLength(1);
  });

  test("applyAction(move) to another filesystem copies byte for byte, then removes the source", () => {
    const content = randomBytes(3 * 1024 * 1024 + 17); // several copy chunks and a ragged end
    const path = makeFile(fresh(work, "src"), "big.bin", content);
    const quarantine = fresh(otherFs.path);
    const r = applyAction({ kind: "move", dir: quarantine }, path, recordingLogger());
    const target = join(quarantine, "big.bin");
    expect(r).toEqual({ ok: true, destination: target, message: `moved to '${target}'` });
    expect(existsSync(path)).toBe(false);
    expect(readFileSync(target).equals(content)).toBe(true);
    expect(statSync(target).mode & 0o777).toBe(0o400);
    expect(entries(quarantine).map(String)).toEqual(["big.bin"]); // no temp file left behind
    expect(vaultFiles(quarantine)).toHaveLength(1);
  });

  test("applyAction(move) across filesystems reads through the scanner's fd without moving its offset", () => {
    const content = randomBytes(200_000);
    const path = makeFile(fresh(work, "src"), "via-fd.bin", content);
    const fd = openSync(path, "r");
    try {
      const head = Buffer.alloc(10);
      readSync(fd, head); // the scanner has read a little; the copy must not disturb that
      const quarantine = fresh(otherFs.path);
      const r = applyAction({ kind: "move", dir: quarantine }, path, recordingLogger(), fd);
      expect(r.ok).toBe(true);
      expect(readFileSync(join(quarantine, "via-fd.bin")).equals(content)).toBe(true);
      const next = Buffer.alloc(10);
      readSync(fd, next);
      expect(next.equals(content.subarray(10, 20))).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("applyAction(move) gives three files of the same name the names name, name.1, name.2 and overwrites nothing", () => {
    for (const quarantine of [fresh(work), fresh(otherFs.path)]) {
      const contents = [randomBytes(100), randomBytes(200), randomBytes(300)];
      const results = contents.map((c) =>
        applyAction({ kind: "move", dir: quarantine }, makeFile(fresh(work, "src"), "same.txt", c), recordingLogger()),
      );
      expect(results.map((r) => r.destination)).toEqual(
        ["same.txt", "same.txt.1", "same.txt.2"].map((n) => join(quarantine, n)),
      );
      contents.forEach((c, i) => expect(readFileSync(results[i]!.destination!).equals(c)).toBe(true));
    }
  });

  test("applyAction(move) creates a missing quarantine directory, parents included, with mode 0700", () => {
    const quarantine = join(fresh(work, "parent"), "deeper", "quarantine");
    const r = applyAction({ kind: "move", dir: quarantine }, makeFile(fresh(work, "src"), "f"), recordingLogger());
    expect(r.ok).toBe(true);
    expect(statSync(quarantine).mode & 0o777).toBe(0o700);
  });

  test("applyAction(move) uses an existing group/world-accessible directory as is and warns once", () => {
    const quarantine = fresh(work);
    mkdirSync(quarantine, { mode: 0o755 });
    const logger = recordingLogger();
    applyAction({ kind: "move", dir: quarantine }, makeFile(fresh(work, "src"), "a"), logger);
    applyAction({ kind: "move", dir: quarantine }, makeFile(fresh(work, "src"), "b"), logger);
    expect(statSync(quarantine).mode & 0o777).toBe(0o755);
    expect(logger.warnings).toEqual([
      `Quarantine directory "${quarantine}" is accessible to group or others (mode 0755); 0700 is advised`,
    ]);
  });

  test("applyAction(move) keeps a name with a newline and non-UTF-8 bytes exactly, on the same and another filesystem", () => {
    const name = Buffer.concat([Buffer.from("bad\nname "), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(".exe")]);
    for (const quarantine of [fresh(work), fresh(otherFs.path)]) {
      const content = randomBytes(5000);
      const path = makeFile(fresh(work, "src"), name, content);
      const r = applyAction({ kind: "move", dir: quarantine }, new Uint8Array(path), recordingLogger());
      expect(r.ok).toBe(true);
      expect(r.destination).toBe(`${quarantine}/bad\\nname \\xff\\xfe\\x80.exe`);
      expect(entries(quarantine)).toEqual([name]);
      expect(readFileSync(Buffer.concat([Buffer.from(`${quarantine}/`), name])).equals(content)).toBe(true);
      expect(existsSync(path)).toBe(false);
    }
  });

  test("applyAction(move) on a vanished file reports it and creates nothing", () => {
    const quarantine = fresh(work);
    const r = applyAction({ kind: "move", dir: quarantine }, join(work, "gone-already"), recordingLogger());
    expect(r).toEqual({ ok: true, vanished: true, message: "vanished before move" });
    expect(entries(quarantine)).toEqual([]);
    expect(vaultFiles(quarantine)).toEqual([]);
  });

  test("applyAction(move) into a DIR that is a regular file fails clearly and keeps the source", () => {
    const notADir = join(work, `plain-file-${++counter}`);
    writeFileSync(notADir, "");
    const path = makeFile(fresh(work, "src"), "keep-me", "original");
    const r = applyAction({ kind: "move", dir: notADir }, path, recordingLogger());
    expect(r).toEqual({
      ok: false,
      message: `move to quarantine directory "${notADir}" failed: ENOTDIR (not a directory); the file was left in place`,
    });
    expect(readFileSync(path, "utf8")).toBe("original");
  });

  test("applyAction(move) that runs out of space mid-copy keeps the source and leaves no partial copy", () => {
    const content = randomBytes(2 * 1024 * 1024);
    const path = makeFile(fresh(work, "src"), "too-big.bin", content);
    const quarantine = fresh(tinyFs.path);
    const r = applyAction({ kind: "move", dir: quarantine }, path, recordingLogger());
    expect(r).toEqual({
      ok: false,
      message: `move to quarantine directory "${quarantine}" failed: ENOSPC (no space left on device); the file was left in place`,
    });
    expect(readFileSync(path).equals(content)).toBe(true);
    expect(entries(quarantine)).toEqual([]);
    expect(vaultFiles(quarantine)).toEqual([]);
  });

  test("applyAction(move) whose original cannot be removed discards the copy and keeps the original", () => {
    const path = join(readOnlyFs.path, "stuck.bin");
    const quarantine = fresh(work);
    const r = applyAction({ kind: "move", dir: quarantine }, path, recordingLogger());
    expect(r).toEqual({
      ok: false,
      message: `move to quarantine directory "${quarantine}" failed: the original could not be removed: EROFS (read-only file system); the file was left in place, the copy discarded`,
    });
    expect(readFileSync(path, "utf8")).toBe("cannot be removed");
    expect(entries(quarantine)).toEqual([]);
    expect(vaultFiles(quarantine)).toEqual([]);
  });
});

describe("--copy", () => {
  test("applyAction(copy) leaves the source and puts an identical read-only copy in DIR", () => {
    for (const quarantine of [fresh(work), fresh(otherFs.path)]) {
      const content = randomBytes(1_500_000);
      const path = makeFile(fresh(work, "src"), "sample.doc", content);
      const r = applyAction({ kind: "copy", dir: quarantine }, path.toString(), recordingLogger());
      const target = join(quarantine, "sample.doc");
      expect(r).toEqual({ ok: true, destination: target, message: `copied to '${target}'` });
      expect(readFileSync(path).equals(content)).toBe(true);
      expect(readFileSync(target).equals(content)).toBe(true);
      expect(statSync(target).ino).not.toBe(statSync(path).ino);
      expect(statSync(target).mode & 0o777).toBe(0o400);
      expect(entries(quarantine).map(String)).toEqual(["sample.doc"]);
    }
  });

  test("applyAction(copy) of the same name three times keeps all three copies", () => {
    const quarantine = fresh(work);
    const path = makeFile(fresh(work, "src"), "again.bin");
    const names = [1, 2, 3].map(() => applyAction({ kind: "copy", dir: quarantine }, path, recordingLogger()).destination);
    expect(names).toEqual(["again.bin", "again.bin.1", "again.bin.2"].map((n) => join(quarantine, n)));
  });

  test("applyAction(copy) on a vanished file reports it", () => {
    const r = applyAction({ kind: "copy", dir: fresh(work) }, join(work, "gone-too"), recordingLogger());
    expect(r).toEqual({ ok: true, vanished: true, message: "vanished before copy" });
  });

  test("applyAction(copy) into a DIR that is a regular file fails clearly", () => {
    const notADir = join(work, `plain-file-${++counter}`);
    writeFileSync(notADir, "");
    const r = applyAction({ kind: "copy", dir: notADir }, makeFile(fresh(work, "src"), "x"), recordingLogger());
    expect(r.ok).toBe(false);
    expect(r.message).toBe(`copy to quarantine directory "${notADir}" failed: ENOTDIR (not a directory)`);
  });

  test("applyAction(none) does nothing", () => {
    const path = makeFile(fresh(work, "src"), "untouched");
    expect(applyAction({ kind: "none" }, path, recordingLogger()).ok).toBe(true);
    expect(existsSync(path)).toBe(true);
  });
});

test("displayPath() of the destination matches what the caller logs", () => {
  // The scanner logs `${displayPath(path)}: ${result.message}`; the destination inside it uses the same rendering.
  const quarantine = fresh(work);
  const path = makeFile(fresh(work, "src"), "tab\there");
  const r = applyAction({ kind: "copy", dir: quarantine }, path, recordingLogger());
  expect(r.destination).toBe(displayPath(Buffer.from(`${quarantine}/tab\there`)));
  expect(r.destination).toContain("tab\\there");
});
