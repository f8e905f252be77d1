// The quarantine vault without an agent: the record --move/--copy write first, listing, deleting,
// restoring (with a stand-in for clamd's verdict; tests/cli/quarantine.test.ts uses the real clamd),
// retention and the sweep of temp files left by a crash.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { applyAction } from "../../src/actions/apply.ts";
import { RestoreRefused, restoreFile, type RestoreRequest } from "../../src/actions/restore.ts";
import { purgeExpired, sweepLeftovers } from "../../src/actions/retention.ts";
import {
  ID_PATTERN,
  VAULT_DIR_NAME,
  VaultError,
  deleteEntry,
  listRecords,
  publicRecord,
  readRecord,
  recordState,
  writeRecord,
  type VaultRecord,
} from "../../src/actions/vault.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";
import { ClamdError } from "../../src/errors.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

const quiet = { warn() {} };
const clean: ScanOutcome = { ok: true, verdict: { kind: "clean" }, attempts: 1 };
const infected: ScanOutcome = { ok: true, verdict: { kind: "infected", signatures: ["Test.Sig"] }, attempts: 1 };
const down: ScanOutcome = { ok: false, error: new ClamdError("connect", "clamd is not there"), attempts: 1 };

let work = "";
let otherFs: TestMount;
let counter = 0;
const fresh = (base: string, name = "d") => {
  const dir = join(base, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

beforeAll(() => {
  work = mkdtempSync("/tmp/onacc-vault-test-");
  otherFs = mountTmpfs("/tmp/onacc-vault-tmpfs-", "16m");
});
afterAll(() => {
  otherFs?.unmount();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A file owned by uid/gid 4243 with mode 0640, quarantined by --move into `quarantine`. */
function quarantined(quarantine: string, name: string | Buffer = "sample.bin", content: Buffer = randomBytes(5000)) {
  const src = fresh(work, "src");
  const path = Buffer.concat([Buffer.from(`${src}/`), Buffer.from(name)]);
  writeFileSync(path, content);
  chownSync(path, 4243, 4243);
  chmodSync(path, 0o640);
  const r = applyAction({ kind: "move", dir: quarantine }, path, quiet, undefined, { signatures: ["Test.Sig"] });
  expect(r.ok).toBe(true);
  const { records } = listRecords(quarantine);
  return { path, content, record: records[records.length - 1]!, src };
}

describe("records written by --move and --copy", () => {
  test("a move records the original path, owner, mode, size, SHA-256, signatures and time", () => {
    const quarantine = fresh(work, "q");
    const before = Date.now();
    const { path, content, record } = quarantined(quarantine);
    expect(record.id).toMatch(ID_PATTERN);
    expect(record.action).toBe("move");
    expect(record.originalPath.equals(path)).toBe(true);
    expect(record.name.toString()).toBe("sample.bin");
    expect({ uid: record.uid, gid: record.gid, mode: record.mode & 0o7777, size: record.size }).toEqual({ uid: 4243, gid: 4243, mode: 0o640, size: 5000 });
    expect(record.sha256).toBe(sha256(content));
    expect(record.signatures).toEqual(["Test.Sig"]);
    expect(Date.parse(record.time)).toBeGreaterThanOrEqual(before - 1);
    expect(recordState(quarantine, record)).toBe("ok");
    // The vault is root's alone.
    expect(statSync(join(quarantine, VAULT_DIR_NAME)).mode & 0o777).toBe(0o700);
    expect(statSync(join(quarantine, VAULT_DIR_NAME, `${record.id}.json`)).mode & 0o777).toBe(0o600);
  });

  test("a name with a newline and invalid UTF-8 round-trips through the record, and shows escaped", () => {
    const quarantine = fresh(otherFs.path, "q");
    const name = Buffer.concat([Buffer.from("bad\nname-"), Buffer.from([0xff, 0xfe]), Buffer.from(".exe")]);
    const { path, record } = quarantined(quarantine, name);
    expect(record.originalPath.equals(path)).toBe(true);
    expect(record.name.equals(name)).toBe(true);
    const shown = publicRecord(quarantine, record);
    expect(Buffer.from(shown.originalPathBase64 as string, "base64").equals(path)).toBe(true);
    expect(shown.originalPath).toContain("bad\\nname-\\xff\\xfe.exe");
    expect(shown.mode).toBe("0640");
  });

  test("a copy records action copy and leaves the original", () => {
    const quarantine = fresh(work, "q");
    const src = fresh(work, "src");
    writeFileSync(join(src, "kept.txt"), "still here");
    expect(applyAction({ kind: "copy", dir: quarantine }, join(src, "kept.txt"), quiet, undefined, { signatures: ["A", "B"] }).ok).toBe(true);
    const [record] = listRecords(quarantine).records;
    expect(record).toMatchObject({ action: "copy", signatures: ["A", "B"], size: 10 });
    expect(readFileSync(join(src, "kept.txt"), "utf8")).toBe("still here");
  });

  test("two files of one name get two records naming name and name.1", () => {
    const quarantine = fresh(work, "q");
    quarantined(quarantine, "twice.bin");
    quarantined(quarantine, "twice.bin");
    expect(listRecords(quarantine).records.map((r) => r.name.toString()).sort()).toEqual(["twice.bin", "twice.bin.1"]);
  });

  test("when the record cannot be written, nothing is moved and nothing is left in DIR", () => {
    const quarantine = fresh(work, "q");
    writeFileSync(join(quarantine, VAULT_DIR_NAME), "a file where the vault should be");
    const src = fresh(work, "src");
    writeFileSync(join(src, "stays.bin"), "infected");
    const r = applyAction({ kind: "move", dir: quarantine }, join(src, "stays.bin"), quiet);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/the quarantine record could not be written: .*not a directory.*; the file was left in place/);
    expect(readFileSync(join(src, "stays.bin"), "utf8")).toBe("infected");
    expect(readdirSync(quarantine)).toEqual([VAULT_DIR_NAME]);
  });
});

describe("reading the vault", () => {
  test("readRecord() refuses an id that is not one (no path tricks) and names a missing one", () => {
    const quarantine = fresh(work, "q");
    expect(() => readRecord(quarantine, "../../etc/passwd")).toThrow(/is not a quarantine id/);
    expect(() => readRecord(quarantine, "0123456789")).toThrow(new VaultError(`No quarantined file with id 0123456789 in "${quarantine}"`));
  });

  test("a damaged record is reported by listRecords() and the others still listed", () => {
    const quarantine = fresh(work, "q");
    const { record } = quarantined(quarantine);
    writeFileSync(join(quarantine, VAULT_DIR_NAME, "abcdefghjk.json"), '{"format":1,"id":"abcdefghjk"}');
    writeFileSync(join(quarantine, VAULT_DIR_NAME, "0000000000.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(quarantine, VAULT_DIR_NAME, `${record.id}.json`), "utf8")), id: "0000000000", name: Buffer.from("../escape").toString("base64") }));
    const { records, problems } = listRecords(quarantine);
    expect(records.map((r) => r.id)).toEqual([record.id]);
    expect(problems).toHaveLength(2);
    expect(problems.join("\n")).toMatch(/0000000000\.json" is damaged \(name: not a plain file name\)/);
    expect(problems.join("\n")).toMatch(/abcdefghjk\.json" is damaged/);
  });

  test("deleteEntry() removes the file, then the record", () => {
    const quarantine = fresh(work, "q");
    const { record } = quarantined(quarantine);
    deleteEntry(quarantine, record);
    expect(readdirSync(quarantine)).toEqual([VAULT_DIR_NAME]);
    expect(readdirSync(join(quarantine, VAULT_DIR_NAME))).toEqual([]);
  });
});

describe("restoreFile()", () => {
  const restore = (quarantine: string, record: VaultRecord, more: Partial<RestoreRequest> = {}) =>
    restoreFile({ quarantineDir: quarantine, id: record.id, force: false, scan: () => clean, ...more });

  test("puts the file back where it was with its owner, mode and times, then empties the vault entry", () => {
    const quarantine = fresh(otherFs.path, "q");
    const src = fresh(work, "src");
    const path = join(src, "report.pdf");
    writeFileSync(path, "fine after all");
    chownSync(path, 4243, 4244);
    chmodSync(path, 0o2750);
    utimesSync(path, 1_700_000_000, 1_700_000_000);
    applyAction({ kind: "move", dir: quarantine }, path, quiet);
    expect(existsSync(path)).toBe(false);
    const [record] = listRecords(quarantine).records;
    const r = restore(quarantine, record!);
    expect(r.path.toString()).toBe(path);
    expect(r.verdict).toBe("clamd finds it clean");
    expect(readFileSync(path, "utf8")).toBe("fine after all");
    const st = statSync(path);
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtimeMs }).toEqual({ uid: 4243, gid: 4244, mode: 0o2750, mtime: 1_700_000_000_000 });
    expect(listRecords(quarantine).records).toEqual([]);
    expect(readdirSync(quarantine)).toEqual([VAULT_DIR_NAME]);
    expect(readdirSync(src)).toEqual(["report.pdf"]); // no temp file left
  });

  test("never overwrites: a file at the target stays as it is, and so does the quarantine", () => {
    const quarantine = fresh(work, "q");
    const { path, record } = quarantined(quarantine);
    writeFileSync(path, "a new file with the old name");
    expect(() => restore(quarantine, record)).toThrow(/already exists and is never overwritten/);
    expect(readFileSync(path, "utf8")).toBe("a new file with the old name");
    expect(recordState(quarantine, record)).toBe("ok");
  });

  test("--to an existing directory puts it in there under its original name; --to a new path uses that name", () => {
    const quarantine = fresh(work, "q");
    const first = quarantined(quarantine, "one.bin");
    const second = quarantined(quarantine, "two.bin");
    const elsewhere = fresh(work, "elsewhere");
    expect(restore(quarantine, first.record, { to: elsewhere }).path.toString()).toBe(join(elsewhere, "one.bin"));
    expect(restore(quarantine, second.record, { to: join(elsewhere, "renamed.bin") }).path.toString()).toBe(join(elsewhere, "renamed.bin"));
    expect(readFileSync(join(elsewhere, "renamed.bin")).equals(second.content)).toBe(true);
  });

  test("a directory on the original path swapped for a symlink is refused, and nothing is written through it", () => {
    const quarantine = fresh(work, "q");
    const { record, src } = quarantined(quarantine);
    const target = fresh(work, "victim-dir");
    renameSync(src, `${src}.moved`);
    symlinkSync(target, src);
    expect(() => restore(quarantine, record)).toThrow(/is a symlink or not a directory \((ELOOP|ENOTDIR)\)/);
    expect(readdirSync(target)).toEqual([]);
  });

  test("refuses what clamd still finds infected or cannot scan, unless forced", () => {
    const quarantine = fresh(work, "q");
    const { record, path } = quarantined(quarantine);
    expect(() => restore(quarantine, record, { scan: () => infected })).toThrow(new RestoreRefused("clamd still finds Test.Sig in it (--force restores it anyway)"));
    expect(() => restore(quarantine, record, { scan: () => down })).toThrow(/it could not be rescanned: clamd is not there \(--force restores it anyway\)/);
    expect(existsSync(path)).toBe(false);
    const r = restore(quarantine, record, { scan: () => infected, force: true });
    expect(r.verdict).toBe("restored with --force although clamd still finds Test.Sig in it");
    expect(existsSync(path)).toBe(true);
  });

  test("refuses a quarantined file that changed since its record, unless forced", () => {
    const quarantine = fresh(work, "q");
    const { record } = quarantined(quarantine, "changed.bin", Buffer.from("original content"));
    const inQuarantine = join(quarantine, "changed.bin");
    chmodSync(inQuarantine, 0o600);
    writeFileSync(inQuarantine, "tampered content");
    expect(() => restore(quarantine, record)).toThrow(/changed since it was quarantined \(SHA-256/);
    expect(restore(quarantine, record, { force: true }).verdict).toMatch(/--force although its content changed/);
  });

  test("an incomplete entry (only its reserved name: onacc stopped mid-quarantine) is refused even with --force", () => {
    const quarantine = fresh(work, "q");
    const src = fresh(work, "src");
    writeFileSync(join(src, "never-moved.bin"), "x".repeat(100));
    writeFileSync(join(quarantine, "never-moved.bin"), "");
    const record = writeRecord(quarantine, {
      action: "move",
      time: new Date().toISOString(),
      originalPath: Buffer.from(join(src, "never-moved.bin")),
      name: Buffer.from("never-moved.bin"),
      uid: 0,
      gid: 0,
      mode: 0o100644,
      size: 100,
      sha256: sha256(Buffer.from("x".repeat(100))),
      signatures: [],
    });
    expect(recordState(quarantine, record)).toBe("incomplete");
    expect(() => restore(quarantine, record, { force: true })).toThrow(/is incomplete: .*nothing to restore/);
  });
});

describe("retention and leftovers", () => {
  test("purgeExpired() deletes records older than the retention with their files and keeps newer ones", () => {
    const quarantine = fresh(work, "q");
    const old = quarantined(quarantine, "old.bin").record;
    Bun.sleepSync(5); // two records in the same millisecond would have the same age
    const young = quarantined(quarantine, "young.bin").record;
    const now = Date.parse(young.time) + 1000;
    const { removed, problems } = purgeExpired(quarantine, now - Date.parse(old.time) - 1, now);
    expect(problems).toEqual([]);
    expect(removed.map((r) => r.id)).toEqual([old.id]);
    expect(listRecords(quarantine).records.map((r) => r.id)).toEqual([young.id]);
    expect(existsSync(join(quarantine, "old.bin"))).toBe(false);
    expect(existsSync(join(quarantine, "young.bin"))).toBe(true);
  });

  test("sweepLeftovers() removes temp files of a process that is gone and keeps those of a live one", () => {
    const quarantine = fresh(work, "q");
    quarantined(quarantine);
    const gone = Bun.spawnSync(["true"]).pid;
    writeFileSync(join(quarantine, `.onacc-tmp-${gone}-x`), "");
    writeFileSync(join(quarantine, VAULT_DIR_NAME, `.rec-${gone}-y`), "");
    writeFileSync(join(quarantine, `.onacc-tmp-${process.ppid}-z`), "");
    expect(sweepLeftovers(quarantine)).toBe(2);
    expect(readdirSync(quarantine).sort()).toEqual([`.onacc-tmp-${process.ppid}-z`, VAULT_DIR_NAME, "sample.bin"].sort());
  });
});
