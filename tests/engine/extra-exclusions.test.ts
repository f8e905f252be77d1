// ExcludeExe and ExcludePattern against dist/onacc, a real clamd and real fanotify: what each one lets
// through, what it does not (a copy of the excluded program, a child without ExcludeExeChildren), folders
// created after start, and the per-rule counts in `onacc status`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { copyProgram, programDir, readOutcome as run } from "../fixtures/programs.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;
/** Programs live outside the watched tmpfs: their own exec is none of these tests' business. */
let bin = "";

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
  bin = programDir();
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
  rmSync(bin, { recursive: true, force: true });
});

const program = (from: string, name: string) => copyProgram(bin, from, name);

async function statusJson(a: RunningAgent): Promise<any> {
  const r = Bun.spawnSync([BINARY, "status", "--json", `--status-socket=${a.statusSocket}`], { timeout: 15_000 });
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout.toString());
}

async function withAgent(config: (dir: string) => string[], body: (dir: string) => Promise<void> | void) {
  const dir = join(mount.path, `case-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "eicar.com"), EICAR);
  agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", ...config(dir)] });
  try {
    await body(dir);
  } finally {
    await disposeAgent(agent);
    agent = undefined;
  }
}

describe("ExcludeExe", () => {
  test("opens by the excluded program pass; a copy of it elsewhere and other programs are denied; a hard link is the same file", async () => {
    const reader = program("cat", "backup-reader");
    const copy = program("cat", "backup-reader-copy");
    await withAgent(() => [`ExcludeExe ${reader}`], async (dir) => {
      const eicar = join(dir, "eicar.com");
      expect(run([reader, eicar])).toBe("ok");
      expect(run([copy, eicar])).toBe("EPERM");
      expect(run(["cat", eicar])).toBe("EPERM");
      const link = join(bin, "backup-reader-link");
      linkSync(reader, link);
      expect(run([link, eicar])).toBe("ok");
      const s = await statusJson(agent!);
      expect(s.exclusions).toEqual([{ rule: `ExcludeExe ${reader}`, skipped: 2, refused: 0 }]);
    });
  });

  test("without ExcludeExeChildren a child of the excluded program is scanned; with it, the child passes", async () => {
    const shell = program("bash", "backup-shell");
    // "; true" keeps bash from exec'ing cat in its own place: cat is a child of the excluded shell.
    const viaChild = (eicar: string) => [shell, "-c", `cat '${eicar}' > /dev/null; rc=$?; exit $rc`];
    await withAgent(() => [`ExcludeExe ${shell}`], (dir) => {
      expect(run(viaChild(join(dir, "eicar.com")))).toBe("EPERM");
    });
    await withAgent(() => [`ExcludeExe ${shell}`, "ExcludeExeChildren yes"], async (dir) => {
      expect(run(viaChild(join(dir, "eicar.com")))).toBe("ok");
      // A grandchild too.
      expect(run([shell, "-c", `bash -c "cat '${join(dir, "eicar.com")}' > /dev/null; exit \\$?"; exit $?`])).toBe("ok");
      expect(run(["cat", join(dir, "eicar.com")])).toBe("EPERM");
    });
  });

  test("a binary replaced by an upgrade (a new inode) is followed within seconds", async () => {
    const reader = program("cat", "upgraded-reader");
    await withAgent(() => [`ExcludeExe ${reader}`], async (dir) => {
      const eicar = join(dir, "eicar.com");
      expect(run([reader, eicar])).toBe("ok");
      // What a package manager does: write the new file beside it, rename it over the old one.
      const fresh = program("cat", "upgraded-reader.new");
      Bun.spawnSync(["mv", fresh, reader]);
      await agent!.waitFor(/ExcludeExe "[^"]*upgraded-reader": replaced \(a new inode\)/, 10_000);
      expect(run([reader, eicar])).toBe("ok");
    });
  });

  test("a script, and a path that does not exist, are named in a warning: neither can match", async () => {
    const script = join(bin, "backup.sh");
    writeFileSync(script, "#!/bin/sh\ncat \"$1\"\n", { mode: 0o755 });
    const missing = join(bin, "not-installed-yet");
    await withAgent(() => [`ExcludeExe ${script}`, `ExcludeExe ${missing}`], async (dir) => {
      await agent!.waitFor(`ExcludeExe "${script}" is a script (#!): its processes run the interpreter named on its first line, so this rule never matches`);
      await agent!.waitFor(`ExcludeExe "${missing}": not found, or not a regular file: nothing is excluded for it until it appears`);
      expect(run([script, join(dir, "eicar.com")])).toBe("EPERM");
    });
  });
});

describe("ExcludePattern", () => {
  test("a file-name pattern and a path pattern hold, also in folders created after start", async () => {
    await withAgent(
      (dir) => ["ExcludePattern *.log", `ExcludePattern ${dir}/srv/*/cache/**`],
      async (dir) => {
        // Created after the agent started: the patterns are matched on every open, wherever it is.
        mkdirSync(join(dir, "later", "deeper"), { recursive: true });
        writeFileSync(join(dir, "later", "deeper", "app.log"), EICAR);
        writeFileSync(join(dir, "later", "deeper", "app.txt"), EICAR);
        mkdirSync(join(dir, "srv", "site1", "cache", "img"), { recursive: true });
        writeFileSync(join(dir, "srv", "site1", "cache", "img", "x.bin"), EICAR);
        mkdirSync(join(dir, "srv", "site1", "data"), { recursive: true });
        writeFileSync(join(dir, "srv", "site1", "data", "x.bin"), EICAR);
        await Bun.sleep(300); // the new folders' marks
        expect(run(["cat", join(dir, "later", "deeper", "app.log")])).toBe("ok");
        expect(run(["cat", join(dir, "srv", "site1", "cache", "img", "x.bin")])).toBe("ok");
        expect(run(["cat", join(dir, "later", "deeper", "app.txt")])).toBe("EPERM");
        expect(run(["cat", join(dir, "srv", "site1", "data", "x.bin")])).toBe("EPERM");
        expect(run(["cat", join(dir, "eicar.com")])).toBe("EPERM");
        const s = await statusJson(agent!);
        expect(s.exclusions).toEqual([
          { rule: "ExcludePattern *.log", skipped: 1, refused: 0 },
          { rule: `ExcludePattern ${dir}/srv/*/cache/**`, skipped: 1, refused: 0 },
        ]);
        const table = Bun.spawnSync([BINARY, "status", `--status-socket=${agent!.statusSocket}`]).stdout.toString();
        expect(table).toMatch(/exclusions \(opens skipped without a scan\):\n\s+ExcludePattern \*\.log\s+1\n/);
      },
    );
  });
});

describe("across a reload (SIGHUP)", () => {
  test("counts and top talkers carry over; a pattern the reload adds takes effect", async () => {
    const reader = program("cat", "reload-reader");
    await withAgent(() => [`ExcludeExe ${reader}`], async (dir) => {
      const eicar = join(dir, "eicar.com");
      writeFileSync(join(dir, "app.log"), EICAR);
      expect(run([reader, eicar])).toBe("ok");
      expect(run(["cat", join(dir, "app.log")])).toBe("EPERM");
      // Keep the file's socket and user lines, add a pattern.
      const text = readFileSync(agent!.configFile, "utf8");
      writeFileSync(agent!.configFile, `${text}ExcludePattern *.log\n`);
      agent!.signal("SIGHUP");
      await agent!.waitFor(/configuration reloaded \(SIGHUP\)/);
      expect(run([reader, eicar])).toBe("ok");
      expect(run(["cat", join(dir, "app.log")])).toBe("ok");
      const s = await statusJson(agent!);
      expect(s.exclusions).toEqual([
        { rule: `ExcludeExe ${reader}`, skipped: 2, refused: 0 },
        { rule: "ExcludePattern *.log", skipped: 1, refused: 0 },
      ]);
      // The scan of app.log before the reload (denied) is still in the window.
      expect(s.top.scans).toBeGreaterThanOrEqual(1);
      expect(s.top.directories[0]).toMatchObject({ name: dir, denied: 1 });
    });
  });
});
