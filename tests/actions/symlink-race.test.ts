// A root --remove/--move must act on the file that was scanned, never on what a swapped parent directory
// points to afterwards (someone replaces a directory on the path by a symlink between scan and action).
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyAction } from "../../src/actions/apply.ts";

const quiet = { warn() {} };
let root = "";
afterEach(() => rmSync(root, { recursive: true, force: true }));

function stage() {
  root = mkdtempSync("/tmp/onacc-race-");
  const victimDir = join(root, "victim");
  mkdirSync(victimDir);
  writeFileSync(join(victimDir, "keys"), "precious\n");
  const userDir = join(root, "user", "d");
  mkdirSync(userDir, { recursive: true });
  const scanned = join(userDir, "keys");
  writeFileSync(scanned, "infected\n");
  const fd = openSync(scanned, "r");
  // The swap: the scanned file's directory moves away and a symlink to the victim takes its name.
  renameSync(userDir, join(root, "user", "moved"));
  symlinkSync(victimDir, userDir);
  return { victim: join(victimDir, "keys"), scanned, fd, moved: join(root, "user", "moved", "keys") };
}

describe("actions after a parent directory was swapped for a symlink", () => {
  test("--remove refuses and leaves the victim's file alone", () => {
    const s = stage();
    try {
      const r = applyAction({ kind: "remove" }, s.scanned, quiet, s.fd);
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/symlink/);
      expect(readFileSync(s.victim, "utf8")).toBe("precious\n");
    } finally {
      closeSync(s.fd);
    }
  });

  test("--move refuses too, and nothing lands in the quarantine", () => {
    const s = stage();
    const q = join(root, "quarantine");
    try {
      const r = applyAction({ kind: "move", dir: q }, s.scanned, quiet, s.fd);
      expect(r.ok).toBe(false);
      expect(existsSync(s.victim)).toBe(true);
      expect(existsSync(join(q, "keys"))).toBe(false);
      expect(existsSync(s.moved)).toBe(true);
    } finally {
      closeSync(s.fd);
    }
  });

  test("without a swap the same path is removed as before", () => {
    root = mkdtempSync("/tmp/onacc-race-");
    const f = join(root, "plain", "keys");
    mkdirSync(join(root, "plain"));
    writeFileSync(f, "infected\n");
    const fd = openSync(f, "r");
    try {
      expect(applyAction({ kind: "remove" }, f, quiet, fd)).toMatchObject({ ok: true, message: "Removed." });
      expect(existsSync(f)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });
});
