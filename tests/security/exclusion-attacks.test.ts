// Attacks on ExcludeExe and ExcludePattern: an unprivileged user (uid 65534) trying to make a file of
// their choice look excluded — a copy of the excluded program, a hard link to it, a child or an orphan of
// it, an opener onacc cannot see; a directory named like an excluded file, a path one level deeper than a
// pattern says, a symlink at an excluded path, a bind mount over one in a user namespace of their own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { copyProgram, programDir, readOutcome } from "../fixtures/programs.ts";
import { ATTACKER_UID, asAttacker, run } from "./helpers.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;
/** Root's programs (outside the watched tmpfs). */
let bin = "";
/** A directory the attacker owns (outside the watched tmpfs). */
let home = "";

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
  bin = programDir();
  home = mkdtempSync("/tmp/onacc-attacker-");
  chownSync(home, ATTACKER_UID, ATTACKER_UID);
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
  rmSync(bin, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

const program = (from: string, name: string) => copyProgram(bin, from, name);

async function withAgent(config: (dir: string) => string[], prepare: (dir: string) => void, body: (dir: string) => Promise<void> | void, prefix?: string[]) {
  const dir = join(mount.path, `case-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "eicar.com"), EICAR, { mode: 0o644 });
  prepare(dir);
  agent = await startAgent({ clamd, prefix, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", ...config(dir)] });
  try {
    await body(dir);
  } finally {
    await disposeAgent(agent);
    agent = undefined;
  }
}

function exclusionCounts(a: RunningAgent): { rule: string; skipped: number; refused: number }[] {
  const r = Bun.spawnSync([BINARY, "status", "--json", `--status-socket=${a.statusSocket}`], { timeout: 15_000 });
  return JSON.parse(r.stdout.toString()).exclusions;
}

describe("ExcludeExe cannot be claimed by name", () => {
  test("the attacker's own copy of the excluded program, under the same name, is scanned", async () => {
    const reader = program("cat", "backup-reader");
    await withAgent(() => [`ExcludeExe ${reader}`], () => {}, (dir) => {
      const mine = join(home, "backup-reader"); // same file name, so the same comm
      expect(run(asAttacker(["cp", reader, mine])).code).toBe(0);
      expect(readOutcome(asAttacker([mine, join(dir, "eicar.com")]))).toBe("EPERM");
      // argv[0] set to the excluded path changes nothing either.
      expect(readOutcome(asAttacker(["bash", "-c", `exec -a '${reader}' '${mine}' '${join(dir, "eicar.com")}'`]))).toBe("EPERM");
      // The real program, run by the attacker, is what the operator excluded.
      expect(readOutcome(asAttacker([reader, join(dir, "eicar.com")]))).toBe("ok");
    });
  });

  test("the attacker cannot hard-link the excluded program (protected_hardlinks): a link would be the same file", () => {
    expect(readFileSync("/proc/sys/fs/protected_hardlinks", "utf8").trim()).toBe("1");
    const reader = program("cat", "linked-reader");
    const r = run(asAttacker(["ln", reader, join(home, "linked-reader")]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
  });

  test("without ExcludeExeChildren, a program the excluded one starts is scanned", async () => {
    const shell = program("bash", "backup-shell");
    await withAgent(() => [`ExcludeExe ${shell}`], () => {}, (dir) => {
      expect(readOutcome(asAttacker([shell, "-c", `cat '${join(dir, "eicar.com")}' >/dev/null; exit $?`]))).toBe("EPERM");
    });
  });

  test("with ExcludeExeChildren, an orphan whose excluded parent has exited is scanned again", async () => {
    const shell = program("bash", "orphan-shell");
    await withAgent(() => [`ExcludeExe ${shell}`, "ExcludeExeChildren yes"], () => {}, async (dir) => {
      const err = join(home, "orphan.err");
      // The subshell waits until its parent (the excluded shell) is gone, then becomes cat: cat's parent
      // is then whoever adopted the orphan, not the excluded program.
      const r = run(asAttacker([shell, "-c", `(sleep 0.5; exec cat '${join(dir, "eicar.com")}' >/dev/null 2>'${err}') & exit 0`]));
      expect(r.code).toBe(0);
      const deadline = Date.now() + 10_000;
      let text = "";
      while (Date.now() < deadline) {
        await Bun.sleep(100);
        try {
          text = readFileSync(err, "utf8");
          if (text) break;
        } catch {
          /* not yet */
        }
      }
      expect(text).toMatch(/Operation not permitted/);
    });
  });

  test("an opener onacc cannot see (pid 0, another PID namespace) is never excluded, whatever it runs", async () => {
    const reader = program("cat", "invisible-reader");
    await withAgent(
      () => [`ExcludeExe ${reader}`, "ExcludeExeChildren yes"],
      () => {},
      (dir) => {
        expect(readOutcome([reader, join(dir, "eicar.com")])).toBe("EPERM");
      },
      ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"],
    );
  });
});

describe("ExcludePattern matches no more than it says", () => {
  test("*.log does not cover the files of a directory named x.log", async () => {
    await withAgent(() => ["ExcludePattern *.log"], (dir) => {
      mkdirSync(join(dir, "x.log"));
      writeFileSync(join(dir, "x.log", "evil"), EICAR);
      writeFileSync(join(dir, "x.log", "evil.log"), EICAR);
    }, (dir) => {
      expect(readOutcome(asAttacker(["cat", join(dir, "x.log", "evil")]))).toBe("EPERM");
      // A file named *.log is excluded wherever it is: that is what the operator wrote.
      expect(readOutcome(asAttacker(["cat", join(dir, "x.log", "evil.log")]))).toBe("ok");
    });
  });

  test("/srv/*/cache/** does not reach one directory deeper, nor a look-alike name", async () => {
    await withAgent((dir) => [`ExcludePattern ${dir}/srv/*/cache/**`], (dir) => {
      for (const d of ["srv/a/b/cache", "srv/a/cachex", "srv/a/cache"]) mkdirSync(join(dir, d), { recursive: true });
      writeFileSync(join(dir, "srv/a/b/cache/x"), EICAR);
      writeFileSync(join(dir, "srv/a/cachex/x"), EICAR);
      writeFileSync(join(dir, "srv/a/cache/x"), EICAR);
    }, (dir) => {
      expect(readOutcome(asAttacker(["cat", join(dir, "srv/a/b/cache/x")]))).toBe("EPERM");
      expect(readOutcome(asAttacker(["cat", join(dir, "srv/a/cachex/x")]))).toBe("EPERM");
      expect(readOutcome(asAttacker(["cat", join(dir, "srv/a/cache/x")]))).toBe("ok");
    });
  });

  test("a symlink at an excluded path is followed to the file's own path, which is scanned", async () => {
    await withAgent((dir) => [`ExcludePattern ${dir}/srv/*/cache/**`], (dir) => {
      mkdirSync(join(dir, "srv/a/cache"), { recursive: true });
      symlinkSync(join(dir, "eicar.com"), join(dir, "srv/a/cache/link"));
    }, (dir) => {
      expect(readOutcome(asAttacker(["cat", join(dir, "srv/a/cache/link")]))).toBe("EPERM");
    });
  });

  test("a bind mount over an excluded path, in the attacker's own user and mount namespace, does not hide a file", async () => {
    await withAgent((dir) => [`ExcludePattern ${dir}/srv/*/cache/**`], (dir) => {
      mkdirSync(join(dir, "srv/a/cache"), { recursive: true });
      writeFileSync(join(dir, "srv/a/cache/x"), "an excluded, harmless file\n", { mode: 0o644 });
    }, (dir) => {
      const target = join(dir, "srv/a/cache/x");
      // In the attacker's namespace the malware's path reads as the excluded one, also to onacc's /proc.
      expect(readOutcome(asAttacker(["unshare", "-Urm", "sh", "-c", `mount --bind '${join(dir, "eicar.com")}' '${target}' && cat '${target}' > /dev/null`]))).toBe("EPERM");
      expect(exclusionCounts(agent!)).toEqual([{ rule: `ExcludePattern ${dir}/srv/*/cache/**`, skipped: 0, refused: 1 }]);
      // The excluded file itself, opened the ordinary way, is still excluded.
      expect(readOutcome(asAttacker(["cat", target]))).toBe("ok");
    });
  });
});

describe("OnAccessExcludePath with a filesystem mark (OnAccessMountPath)", () => {
  test("a bind mount over an excluded path, in the attacker's own namespaces, does not hide a file", async () => {
    const dir = join(mount.path, `mountpath-${Math.random().toString(36).slice(2)}`);
    mkdirSync(join(dir, "excl"), { recursive: true });
    writeFileSync(join(dir, "eicar.com"), EICAR, { mode: 0o644 });
    writeFileSync(join(dir, "excl/x"), "an excluded, harmless file\n", { mode: 0o644 });
    agent = await startAgent({ clamd, config: [`OnAccessMountPath ${mount.path}`, `OnAccessExcludePath ${join(dir, "excl")}`, "OnAccessPrevention yes"] });
    try {
      const target = join(dir, "excl/x");
      expect(readOutcome(asAttacker(["unshare", "-Urm", "sh", "-c", `mount --bind '${join(dir, "eicar.com")}' '${target}' && cat '${target}' > /dev/null`]))).toBe("EPERM");
      // The excluded file itself, opened the ordinary way, is still excluded.
      expect(readOutcome(asAttacker(["cat", target]))).toBe("ok");
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
