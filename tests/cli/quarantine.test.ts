// The quarantine vault end to end: dist/onacc with --move, a real clamd and real fanotify on test tmpfs
// mounts, files owned by an unprivileged user, and `onacc quarantine list|restore|delete` as separate
// processes — including restores after the agent was killed mid-quarantine.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, ensureBinary, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR, EICAR_SIGNATURE, ndbLine } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { startHolder, type Holder } from "../security/helpers.ts";

const OWNER = 4243;
const FOUND = `${EICAR_SIGNATURE}.UNOFFICIAL`;
const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

let clamd: TestClamd;
let protectedFs: TestMount;
let quarantineFs: TestMount;
let agent: RunningAgent | undefined;
let holder: Holder | undefined;
let cliConfig = "";
let counter = 0;

beforeAll(async () => {
  ensureBinary();
  clamd = await startClamd();
  protectedFs = mountTmpfs("/tmp/onacc-vault-prot-", "64m");
  quarantineFs = mountTmpfs("/tmp/onacc-vault-quar-", "64m");
  cliConfig = join(quarantineFs.path, "cli.conf");
  writeFileSync(cliConfig, `LocalSocket ${clamd.socket}\n`);
});
afterAll(async () => {
  holder?.dispose();
  await disposeAgent(agent);
  quarantineFs?.unmount();
  protectedFs?.unmount();
  await disposeClamd(clamd);
});

/** A fresh protected folder, a fresh quarantine directory (on another tmpfs), and one file in the folder owned by OWNER. */
function stage(name = "payload.com", content: string | Buffer = EICAR, mode = 0o640) {
  const n = ++counter;
  const dir = join(protectedFs.path, `case-${n}`);
  mkdirSync(dir);
  chownSync(dir, OWNER, OWNER);
  const file = join(dir, name);
  writeFileSync(file, content);
  chownSync(file, OWNER, OWNER);
  chmodSync(file, mode);
  return { dir, file, quarantine: join(quarantineFs.path, `q-${n}`), content: Buffer.from(content) };
}

async function startWithMove(dir: string, quarantine: string, config: string[] = []) {
  agent = await startAgent({
    clamd,
    config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", ...config],
    args: ["--foreground", "--verbose", "--config-file=CONFIG", "--log=LOG", `--move=${quarantine}`],
  });
  return agent;
}

async function stopAgent() {
  await disposeAgent(agent);
  agent = undefined;
}

/** `onacc quarantine ARGS…` as its own process. */
async function quarantine(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([BINARY, "quarantine", ...args], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out, err };
}

async function listJson(dir: string): Promise<{ directory: string; records: Array<Record<string, unknown>>; problems: string[] }> {
  const r = await quarantine("list", "--json", `--move=${dir}`);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

/** Opens `file` (denied), then waits for the agent's action line about it. */
async function quarantineThroughAgent(file: string, name = "payload\\.com") {
  expect(openInChild(file).error).toBe("EPERM");
  await agent!.waitFor(new RegExp(`${name}: moved to`));
}

/** A file of its own quarantined by an agent that was then stopped; its record as list --json shows it. */
async function quarantinedOnce(config: string[] = []) {
  const s = stage();
  await startWithMove(s.dir, s.quarantine, config);
  try {
    await quarantineThroughAgent(s.file);
  } finally {
    await stopAgent();
  }
  const record = (await listJson(s.quarantine)).records[0]!;
  return { s, record, id: record.id as string };
}

describe("onacc quarantine with a running agent", () => {
  test("a moved file gets a record: list shows its original path, owner, mode, size, SHA-256 and signature", async () => {
    const s = stage();
    await startWithMove(s.dir, s.quarantine);
    try {
      await quarantineThroughAgent(s.file);
      const listed = await listJson(s.quarantine);
      expect(listed.directory).toBe(s.quarantine);
      expect(listed.problems).toEqual([]);
      expect(listed.records).toHaveLength(1);
      expect(listed.records[0]).toMatchObject({
        action: "move",
        state: "ok",
        originalPath: s.file,
        quarantinedPath: join(s.quarantine, "payload.com"),
        uid: OWNER,
        gid: OWNER,
        mode: "0640",
        size: EICAR.length,
        sha256: sha256(EICAR),
        signatures: [FOUND],
      });
      const id = listed.records[0]!.id as string;
      const table = await quarantine("list", `--move=${s.quarantine}`);
      expect(table.out).toContain(`Quarantine ${s.quarantine} (from --move): 1 file(s)`);
      expect(table.out).toMatch(new RegExp(`${id} .* ${OWNER}:${OWNER}\\s+0640\\s+ok\\s+${FOUND.replace(/\./g, "\\.")}\\s+${s.file}`));
      // Without --move the running agent is asked (its status socket) which directory it uses.
      const found = await quarantine("list", "--json", `--status-socket=${agent!.statusSocket}`);
      expect(found.code).toBe(0);
      expect(JSON.parse(found.out).directory).toBe(s.quarantine);
    } finally {
      await stopAgent();
    }
  });

  test("restore refuses a file clamd still finds infected, never overwrites, and --force --to restores it elsewhere with owner and mode", async () => {
    const { s, id } = await quarantinedOnce();

    const refused = await quarantine("restore", id, `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`onacc: quarantine restore ${id} refused: clamd still finds ${FOUND} in it (--force restores it anyway)\n`);
    expect(existsSync(s.file)).toBe(false);
    expect((await listJson(s.quarantine)).records).toHaveLength(1);

    writeFileSync(s.file, "a new file took the name");
    const taken = await quarantine("restore", id, "--force", `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(taken.code).toBe(1);
    expect(taken.err).toContain(`"${s.file}" already exists and is never overwritten`);
    expect(readFileSync(s.file, "utf8")).toBe("a new file took the name");

    const elsewhere = join(quarantineFs.path, `restored-${counter}`);
    mkdirSync(elsewhere);
    const forced = await quarantine("restore", id, "--force", `--to=${elsewhere}`, `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(forced.err).toBe("");
    expect(forced.code).toBe(0);
    const restored = join(elsewhere, "payload.com");
    expect(forced.out).toBe(`Restored ${id} to '${restored}' (owner ${OWNER}:${OWNER}, mode 0640): restored with --force although clamd still finds ${FOUND} in it\n`);
    expect(readFileSync(restored)).toEqual(EICAR);
    const st = statSync(restored);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([OWNER, OWNER, 0o640]);
    expect((await listJson(s.quarantine)).records).toEqual([]);
    expect(readdirSync(s.quarantine).filter((n) => !n.startsWith("."))).toEqual([]);
  });

  test("a false positive: once clamd no longer finds it, restore puts it back where it was, with owner and mode, and it opens again", async () => {
    const marker = "ONACC-FALSE-POSITIVE-5d1c";
    const signature = "Onacc.Test.FalsePositive";
    await clamd.addSignatures("false-positive.ndb", `${ndbLine(signature, marker)}\n`);
    const s = stage("report.txt", `quarterly figures ${marker}\n`, 0o604);
    try {
      await startWithMove(s.dir, s.quarantine);
      await quarantineThroughAgent(s.file, "report\\.txt");
      const [record] = (await listJson(s.quarantine)).records;
      expect(record!.signatures).toEqual([`${signature}.UNOFFICIAL`]);

      unlinkSync(join(clamd.databaseDir, "false-positive.ndb"));
      expect(await clamd.raw("zRELOAD\0")).toStartWith("RELOADING");
      await Bun.sleep(1500);

      const r = await quarantine("restore", record!.id as string, `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toBe(`Restored ${record!.id} to '${s.file}' (owner ${OWNER}:${OWNER}, mode 0604): clamd finds it clean\n`);
      expect(readFileSync(s.file, "utf8")).toBe(`quarterly figures ${marker}\n`);
      const st = statSync(s.file);
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([OWNER, OWNER, 0o604]);
      expect(openInChild(s.file, { uid: OWNER })).toMatchObject({ ok: true });
      expect((await listJson(s.quarantine)).records).toEqual([]);
    } finally {
      await stopAgent();
      rmSync(join(clamd.databaseDir, "false-positive.ndb"), { force: true });
    }
  });

  test("delete removes the quarantined file and its record; an unknown id exits 1", async () => {
    const { s, id } = await quarantinedOnce();
    const r = await quarantine("delete", id, `--move=${s.quarantine}`);
    expect(r).toEqual({ code: 0, out: `Deleted ${id} (${s.file}) from ${s.quarantine}\n`, err: "" });
    expect(readdirSync(s.quarantine)).toEqual([".onacc-vault"]);
    expect(readdirSync(join(s.quarantine, ".onacc-vault"))).toEqual([]);
    const again = await quarantine("delete", id, `--move=${s.quarantine}`);
    expect(again.code).toBe(1);
    expect(again.err).toBe(`onacc: No quarantined file with id ${id} in "${s.quarantine}"\n`);
  });

  test("QuarantineRetention: an agent started after the retention passed deletes the file and its record, and logs it", async () => {
    const { s, record } = await quarantinedOnce(["QuarantineRetention 2s"]);
    await Bun.sleep(Math.max(0, Date.parse(record!.time as string) + 2200 - Date.now()));
    await startWithMove(s.dir, s.quarantine, ["QuarantineRetention 2s"]);
    try {
      await agent!.waitFor(`quarantine: deleted ${record!.id} (${s.file}, quarantined ${record!.time}): older than QuarantineRetention`);
      expect((await listJson(s.quarantine)).records).toEqual([]);
      expect(readdirSync(s.quarantine)).toEqual([".onacc-vault"]);
    } finally {
      await stopAgent();
    }
  });
});

/**
 * Opens `file` so the running agent quarantines it, holds the agent at its first open in the quarantine
 * file system matching `pattern` (see hold-open.ts), and SIGKILLs it there.
 */
async function killWhileHeld(file: string, pattern: string) {
  holder = await startHolder(quarantineFs.path, pattern);
  try {
    const opener = Bun.spawn(["cat", file], { stdout: "ignore", stderr: "ignore" });
    await holder.held(15_000);
    agent!.signal("SIGKILL");
    await agent!.exited;
    await opener.exited;
  } finally {
    holder.release();
    holder.dispose();
    holder = undefined;
    await stopAgent();
  }
}

describe("onacc quarantine after the agent was killed mid-quarantine", () => {
  test("killed right after the record was written: the record survives, the file was never moved, restore says so, delete cleans up", async () => {
    const s = stage();
    await startWithMove(s.dir, s.quarantine);
    // The next open in the quarantine after the record is the temp file the copy goes into: held there.
    await killWhileHeld(s.file, ".onacc-tmp-");

    const listed = await listJson(s.quarantine);
    expect(listed.records).toHaveLength(1);
    expect(listed.records[0]).toMatchObject({ state: "incomplete", originalPath: s.file, sha256: sha256(EICAR), signatures: [FOUND] });
    const id = listed.records[0]!.id as string;
    // Nothing was lost: the file is where it was.
    expect(readFileSync(s.file)).toEqual(EICAR);
    const r = await quarantine("restore", id, "--force", `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${id} is incomplete: onacc stopped while quarantining it, so the file never reached the quarantine and was not removed from "${s.file}"`);
    expect(readdirSync(s.quarantine).some((n) => n.startsWith(".onacc-tmp-"))).toBe(true);

    // A new agent sweeps the dead one's temp file, and quarantines the file when it is opened again.
    await startWithMove(s.dir, s.quarantine);
    try {
      expect(readdirSync(s.quarantine).filter((n) => n.startsWith(".onacc-tmp-"))).toEqual([]);
      await quarantineThroughAgent(s.file);
    } finally {
      await stopAgent();
    }
    expect((await quarantine("delete", id, `--move=${s.quarantine}`)).code).toBe(0);
    const after = await listJson(s.quarantine);
    expect(after.records.map((x) => [x.state, x.quarantinedPath])).toEqual([["ok", join(s.quarantine, "payload.com.1")]]);
    expect(readdirSync(s.quarantine).sort()).toEqual([".onacc-vault", "payload.com.1"]);
  });

  test("killed after the file reached the quarantine but before the original was removed: the file is restored from the quarantine", async () => {
    const s = stage();
    const warmUp = join(s.dir, "first.com");
    writeFileSync(warmUp, EICAR);
    await startWithMove(s.dir, s.quarantine);
    // A first quarantine creates the vault, so the next open of the quarantine directory itself is the
    // fsync after the file was renamed into place (and before the original is removed): held there.
    await quarantineThroughAgent(warmUp, "first\\.com");
    await killWhileHeld(s.file, `=${s.quarantine}`);

    const record = (await listJson(s.quarantine)).records.find((x) => x.originalPath === s.file)!;
    expect(record).toMatchObject({ state: "ok", size: EICAR.length, sha256: sha256(EICAR) });
    expect(readFileSync(s.file)).toEqual(EICAR); // the original was not removed yet
    const id = record.id as string;
    const exists = await quarantine("restore", id, `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(exists.code).toBe(1);
    expect(exists.err).toContain("already exists and is never overwritten");

    const elsewhere = join(quarantineFs.path, `after-crash-${counter}`);
    mkdirSync(elsewhere);
    const infected = await quarantine("restore", id, `--to=${elsewhere}`, `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(infected.code).toBe(1);
    expect(infected.err).toContain(`clamd still finds ${FOUND} in it`);
    const forced = await quarantine("restore", id, "--force", `--to=${elsewhere}`, `--move=${s.quarantine}`, `--config-file=${cliConfig}`);
    expect(forced.code).toBe(0);
    const st = statSync(join(elsewhere, "payload.com"));
    expect([st.uid, st.gid, st.mode & 0o7777, st.size]).toEqual([OWNER, OWNER, 0o640, EICAR.length]);
  });
});
