// What happens around a detection and over an agent's life: remove/move/copy, the log file and its
// SIGHUP reopen, SIGTERM with events pending, detaching into the background, awkward file names, a root
// clamd, and clamd's own VirusEvent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { startRelay } from "../fixtures/proxy.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;
let quarantineRoot: string;

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
  // On the root filesystem, not the tmpfs: moving there crosses filesystems.
  quarantineRoot = mkdtempSync("/tmp/onacc-quarantine-");
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
  rmSync(quarantineRoot, { recursive: true, force: true });
});

let n = 0;
function freshDir(): string {
  const dir = join(mount.path, `life-${n++}`);
  mkdirSync(dir);
  return dir;
}

async function run(dir: string, args: string[], config: string[] = []) {
  agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", ...config], args });
  return agent;
}

async function done() {
  await disposeAgent(agent);
  agent = undefined;
}

describe("actions on FOUND", () => {
  test("--remove denies the open and removes the file", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    const a = await run(dir, ["--foreground", "--remove", "--config-file=CONFIG", "--log=LOG"]);
    expect(openInChild(t.eicar).error).toBe("EPERM");
    await a.waitFor(/Removed/);
    expect(existsSync(t.eicar)).toBe(false);
    expect(existsSync(t.clean)).toBe(true);
    await done();
  });

  test("--move across filesystems keeps the file byte for byte in a 0700 quarantine, read-only", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    const q = join(quarantineRoot, "moved");
    const a = await run(dir, ["--foreground", `--move=${q}`, "--config-file=CONFIG", "--log=LOG"]);
    expect(openInChild(t.eicar).error).toBe("EPERM");
    await a.waitFor(/moved to/);
    expect(existsSync(t.eicar)).toBe(false);
    expect(statSync(q).mode & 0o777).toBe(0o700);
    const moved = join(q, "eicar.com");
    expect(readFileSync(moved).equals(EICAR)).toBe(true);
    expect(statSync(moved).mode & 0o777).toBe(0o400);
    // The log file has the FOUND line and the action, each with a timestamp, and nothing else by default.
    const lines = a.log().trim().split("\n");
    expect(lines.some((l) => /^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d -> .*eicar\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND$/.test(l))).toBe(true);
    expect(lines.some((l) => / -> .*eicar\.com: moved to/.test(l))).toBe(true);
    expect(lines.every((l) => /FOUND$|moved to/.test(l))).toBe(true);
    await done();
  });

  test("--copy leaves the file and puts a copy in the quarantine, with a suffix on a name collision", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    const other = writeTestFiles(join(dir, "other"));
    const q = join(quarantineRoot, "copied");
    const a = await run(dir, ["--foreground", `--copy=${q}`, "--config-file=CONFIG", "--log=LOG"]);
    expect(openInChild(t.eicar).error).toBe("EPERM");
    await a.waitFor(/copied to/);
    expect(openInChild(other.eicar).error).toBe("EPERM");
    await a.waitFor(/copied to .*eicar\.com\.1/);
    expect(existsSync(t.eicar)).toBe(true);
    // The same file opened again is not copied again: a loop of opens cannot fill the quarantine.
    for (let i = 0; i < 5; i++) expect(openInChild(t.eicar).error).toBe("EPERM");
    await Bun.sleep(300);
    expect(readdirSync(q).sort()).toEqual([".onacc-vault", "eicar.com", "eicar.com.1"]);
    expect(readdirSync(join(q, ".onacc-vault"))).toHaveLength(2); // one record per copy
    await done();
  });
});

describe("without OnAccessPrevention", () => {
  test("opens are not blocked, but detections are logged and actions still apply", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`], args: ["--foreground", "--remove", "--config-file=CONFIG", "--log=LOG"] });
    try {
      expect(openInChild(t.eicar).ok).toBe(true);
      await agent.waitFor(/eicar\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
      for (let i = 0; i < 100 && existsSync(t.eicar); i++) await Bun.sleep(20);
      expect(existsSync(t.eicar)).toBe(false);
      expect(existsSync(t.clean)).toBe(true);
    } finally {
      await done();
    }
  });
});

describe("names and logs", () => {
  test("a file name with a newline and a non-UTF-8 byte is denied and logged unambiguously", async () => {
    const dir = freshDir();
    const name = Buffer.concat([Buffer.from("bad\nname-"), Buffer.from([0xff]), Buffer.from(".com")]);
    const path = Buffer.concat([Buffer.from(`${dir}/`), name]);
    writeFileSync(path, EICAR);
    const a = await run(dir, ["--foreground", "--config-file=CONFIG", "--log=LOG"]);
    // Bun passes argv as UTF-8; a shell glob hands cat the exact bytes.
    const g = Bun.spawnSync(["sh", "-c", `cat "${dir}"/bad*`], { stderr: "pipe" });
    expect(g.stderr.toString()).toMatch(/Operation not permitted/);
    await a.waitFor(/bad\\nname-\\xff\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
    await done();
  });

  test("SIGHUP reopens the log file after it was rotated away", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    const a = await run(dir, ["--foreground", "--config-file=CONFIG", "--log=LOG"]);
    expect(openInChild(t.eicar).error).toBe("EPERM");
    await a.waitFor(/FOUND/);
    renameSync(a.logFile, `${a.logFile}.1`);
    a.signal("SIGHUP");
    await Bun.sleep(1500); // scanners notice the new log generation within a second
    expect(openInChild(t.marked).error).toBe("EPERM");
    await a.waitFor(/marked\.bin: Onacc\.Test\.Marker\.UNOFFICIAL FOUND/);
    expect(readFileSync(a.logFile, "utf8")).toMatch(/marked\.bin: .* FOUND/);
    expect(readFileSync(`${a.logFile}.1`, "utf8")).not.toMatch(/marked\.bin/);
    await done();
  });
});

describe("lifecycle", () => {
  test("SIGTERM with opens waiting on a silent clamd: every open is answered and onacc exits 0 within 2 s", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    const relay = await startRelay(clamd.port);
    try {
      agent = await startAgent({
        clamd: { ...clamd, port: relay.port },
        tcp: true,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessCurlTimeout 20000"],
        args: ["--foreground", "--stream", "--config-file=CONFIG", "--log=LOG"],
      });
      await relay.setMode("blackhole");
      const opens = [t.clean, t.marked, t.eicar].map((f) => Bun.spawn(["cat", f], { stdout: "ignore", stderr: "ignore" }));
      await Bun.sleep(500);
      expect(opens.every((p) => p.exitCode === null)).toBe(true); // all waiting on the verdict
      const { code, ms } = await agent.stop();
      expect(code).toBe(0);
      expect(ms).toBeLessThan(2000);
      const codes = await Promise.race([Promise.all(opens.map((p) => p.exited)), Bun.sleep(3000).then(() => "hung")]);
      expect(codes).toEqual([0, 0, 0]);
    } finally {
      await done();
      await relay.stop();
    }
  });

  test("without --foreground onacc detaches after its checks and keeps protecting", async () => {
    const dir = freshDir();
    const t = writeTestFiles(dir);
    const conf = join(dir, "..", "detach.conf");
    const log = join(quarantineRoot, "detach.log");
    writeFileSync(conf, `LocalSocket ${clamd.socket}\nOnAccessIncludePath ${dir}\nOnAccessPrevention yes\n`);
    const r = Bun.spawnSync([BINARY, `--config-file=${conf}`, `--log=${log}`, "--verbose"], { timeout: 20000 });
    expect(r.exitCode).toBe(0);
    const pid = Number(/\(pid (\d+)\)/.exec(readFileSync(log, "utf8"))?.[1]);
    expect(pid).toBeGreaterThan(0);
    try {
      expect(openInChild(t.eicar).error).toBe("EPERM");
      // Detached: its own session, no terminal.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      expect(Number(stat[3])).toBe(pid); // session id == pid after setsid()
    } finally {
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await Bun.sleep(50);
      rmSync(conf, { force: true });
    }
  });

  test("a start-up error is reported before detaching, with the config exit code", async () => {
    const conf = join(quarantineRoot, "broken.conf");
    writeFileSync(conf, `LocalSocket ${clamd.socket}\nOnAccessIncludePath relative/path\nOnAccessPrevntion yes\n`);
    const r = Bun.spawnSync([BINARY, `--config-file=${conf}`], { timeout: 20000, stderr: "pipe" });
    expect(r.exitCode).toBe(3);
    const err = r.stderr.toString();
    expect(err).toMatch(/broken\.conf:2: /);
    expect(err).toMatch(/broken\.conf:3: .*did you mean OnAccessPrevention/);
  });
});

describe("clamd interplay", () => {
  test("a clamd running as root with no exclusion configured does not deadlock, even scanning by path", async () => {
    const rootClamd = await startClamd({ user: "root" });
    const dir = freshDir();
    const t = writeTestFiles(dir);
    try {
      for (const args of [["--allmatch"], []]) {
        agent = await startAgent({
          clamd: rootClamd,
          config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessCurlTimeout 3000"],
          args: ["--foreground", "--verbose", ...args, "--config-file=CONFIG", "--log=LOG"],
        });
        // The config the fixture writes says "User clamav"; the real clamd is root: only its PID saves it.
        expect(openInChild(t.clean, { timeoutMs: 10000 })).toMatchObject({ ok: true });
        const r = openInChild(t.eicar, { timeoutMs: 10000 });
        expect(r.error).toBe("EPERM");
        expect(r.ms).toBeLessThan(3000);
        await done();
      }
    } finally {
      await done();
      await disposeClamd(rootClamd);
    }
  });

  test("clamd's VirusEvent runs for a file onacc sent", async () => {
    const eventDir = mkdtempSync("/tmp/onacc-virusevent-");
    chmodSync(eventDir, 0o777);
    const script = join(eventDir, "event.sh");
    writeFileSync(script, `#!/bin/sh\necho "$CLAM_VIRUSEVENT_VIRUSNAME" >> ${eventDir}/events\n`);
    chmodSync(script, 0o755);
    const own = await startClamd({ extra: [`VirusEvent ${script}`] });
    const dir = freshDir();
    const t = writeTestFiles(dir);
    try {
      agent = await startAgent({ clamd: own, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"] });
      expect(openInChild(t.eicar).error).toBe("EPERM");
      const events = join(eventDir, "events");
      for (let i = 0; i < 100 && !existsSync(events); i++) await Bun.sleep(50);
      expect(readFileSync(events, "utf8")).toMatch(/Onacc\.Test\.EICAR/);
    } finally {
      await done();
      await disposeClamd(own);
      rmSync(eventDir, { recursive: true, force: true });
    }
  });
});
