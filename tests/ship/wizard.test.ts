// The interactive `onacc setup` driven like a person would: in a tmux terminal (send-keys, capture-pane),
// against the real test clamd, reading each prompt before answering it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { ROOT, SETUP_ENTRY, tempDir, UNIT_FILE } from "./helpers.ts";

/** One tmux server of our own (-L), so nothing here touches another tmux; killed after each test. */
class Terminal {
  private readonly socket = `onacc-ship-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private readonly socketPath: string;

  constructor(command: string, cwd: string) {
    this.tmux(["-f", "/dev/null", "new-session", "-d", "-s", "wizard", "-x", "200", "-y", "50", "-c", cwd, command]);
    this.socketPath = this.tmux(["display-message", "-p", "#{socket_path}"]).trim();
  }

  private tmux(args: string[]): string {
    const r = Bun.spawnSync(["tmux", "-L", this.socket, ...args], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`tmux ${args[0]} failed: ${r.stderr.toString().trim()}`);
    return r.stdout.toString();
  }

  screen(): string {
    return this.tmux(["capture-pane", "-p", "-J", "-t", "wizard"]);
  }

  /** Waits until the screen shows `text`; on timeout the error carries the screen. */
  async waitFor(text: string, timeoutMs = 15000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (screen.includes(text)) return screen;
      if (Date.now() > deadline) throw new Error(`the terminal never showed ${JSON.stringify(text)}; it shows:\n${screen}`);
      await Bun.sleep(50);
    }
  }

  /** Named keys (Enter, Down, C-u, C-c). */
  keys(...keys: string[]): void {
    this.tmux(["send-keys", "-t", "wizard", ...keys]);
  }

  /** Literal text, then Enter. */
  answer(text: string): void {
    this.tmux(["send-keys", "-t", "wizard", "-l", text]);
    this.keys("Enter");
  }

  /** Clears a pre-filled answer (Ctrl-U), types a new one, Enter. */
  replace(text: string): void {
    this.keys("C-u");
    this.answer(text);
  }

  close(): void {
    try {
      this.tmux(["kill-server"]);
    } catch {
      /* already gone */
    }
    // tmux leaves its socket file behind.
    if (this.socketPath.startsWith("/")) rmSync(this.socketPath, { force: true });
  }
}

let clamd: TestClamd;
beforeAll(async () => {
  clamd = await startClamd();
});
afterAll(async () => {
  await disposeClamd(clamd);
});

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.reverse()) c();
  cleanups = [];
});

/** Directories to protect, where the configuration goes, and a systemd dir holding the unit. */
function workspace() {
  const t = tempDir("wizard");
  cleanups.push(t.dispose);
  const w = {
    root: t.path,
    a: join(t.path, "srv/a"),
    b: join(t.path, "srv/b"),
    quarantine: join(t.path, "quarantine"),
    config: join(t.path, "etc/onacc.conf"),
    systemdDir: join(t.path, "systemd"),
  };
  mkdirSync(join(w.a, "cache"), { recursive: true });
  mkdirSync(w.b, { recursive: true });
  mkdirSync(w.systemdDir);
  writeFileSync(join(w.systemdDir, "onacc.service"), readFileSync(UNIT_FILE, "utf8"));
  return w;
}

/** Runs `lines` (a sh script) in a new terminal; the script should end by printing its exit status. */
function startTerminal(root: string, lines: string[]): Terminal {
  const script = join(root, "run.sh");
  writeFileSync(script, ["#!/bin/sh", ...lines, "exec sleep 600", ""].join("\n"));
  chmodSync(script, 0o755);
  const terminal = new Terminal(script, ROOT);
  cleanups.push(() => terminal.close());
  return terminal;
}

/** The wizard started in a terminal with `args` ({a}, {config}, … name workspace paths). */
function startWizard(args: string[]) {
  const w = workspace();
  const expand = (arg: string) => arg.replace(/\{(\w+)\}/g, (_, key: keyof typeof w) => w[key]);
  const terminal = startTerminal(w.root, [`bun ${SETUP_ENTRY} ${args.map(expand).join(" ")}`, 'echo "SETUP-EXIT=$?"']);
  return { w, terminal };
}

/** Stops a clamd that setup --trial started (by its PID file), waiting up to 10 s, then SIGKILL. */
function stopTrialClamd(pidFile: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!(pid > 1)) return;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 200 && alive(); i++) Bun.sleepSync(50);
  if (alive()) process.kill(pid, "SIGKILL");
}

describe("onacc setup (interactive, in tmux)", () => {
  test("setup --trial starts the trial clamd and the wizard offers it first, above the system's clamd", async () => {
    const { w, terminal } = startWizard([
      "--trial", "--trial-db", "{root}/trial-db", "--trial-config", "{root}/trial.conf", "--trial-socket", "{root}/run/trial.sock",
      "--clamd-conf", clamd.configFile,
      "--protect", "{a}", "--exclude-path", "{a}/cache", "--prevention", "yes", "--exclude-user", "none", "--action", "none", "--threads", "2",
      "--config", "{config}", "--no-service",
    ]);
    chmodSync(w.root, 0o755); // the trial clamd (user clamav) reads its database below it
    cleanups.push(() => stopTrialClamd(join(w.root, "run/trial-clamd.pid")));
    const screen = await terminal.waitFor("Which clamd should onacc ask for verdicts?", 60000);
    const trialLine = screen.split("\n").findIndex((l) => l.includes(`unix:${w.root}/run/trial.sock`));
    const systemLine = screen.split("\n").findIndex((l) => l.includes(`unix:${clamd.socket}`));
    expect(trialLine).toBeGreaterThan(-1);
    expect(systemLine).toBeGreaterThan(trialLine);
    expect(screen).toContain("trial clamd, EICAR test signature only");
    terminal.keys("Enter");
    await terminal.waitFor(`Write ${w.config}?`);
    terminal.keys("Enter");
    const end = await terminal.waitFor("SETUP-EXIT=", 30000);
    expect(end).toContain("SETUP-EXIT=0");
    expect(end).toContain("See it block the EICAR test file");
    expect(end).toContain("systemctl disable --now onacc-trial-clamd.service");
    const { config } = loadConfig(w.config);
    expect(config.endpoints).toEqual([{ kind: "unix", path: `${w.root}/run/trial.sock` }]);
  }, 90000);

  test("the wizard finds clamd in clamd.conf, checks every answer, and writes a configuration loadConfig() reads", async () => {
    const { w, terminal } = startWizard(["--clamd-conf", clamd.configFile, "--systemd-dir", "{systemdDir}"]);

    // clamd, found through its clamd.conf, with its version.
    let screen = await terminal.waitFor("Which clamd should onacc ask for verdicts?");
    expect(screen).toContain(`unix:${clamd.socket} (ClamAV `);
    terminal.keys("Enter");
    await terminal.waitFor(`answers at unix:${clamd.socket}`);

    // A relative path is refused on the spot; then two real directories.
    await terminal.waitFor("Which directories should onacc protect?");
    terminal.answer("srv/a");
    await terminal.waitFor('Directory to protect "srv/a" is not an absolute path');
    terminal.replace(`${w.a}, ${w.b}`);

    await terminal.waitFor("Directories inside them to leave unscanned?");
    terminal.answer(join(w.a, "cache"));

    await terminal.waitFor("Block access to infected files?");
    terminal.keys("Enter");

    // clamd's User is suggested, pre-filled.
    screen = await terminal.waitFor("Users whose file accesses are not scanned?");
    expect(screen).toContain("clamd runs as clamav");
    terminal.keys("Enter");

    await terminal.waitFor("What should happen to an infected file?");
    terminal.keys("Down", "Enter");
    await terminal.waitFor("Quarantine directory");
    // Inside a protected directory: refused, onacc would block its own quarantine.
    terminal.replace(join(w.a, "q"));
    await terminal.waitFor("onacc would block its own quarantine");
    terminal.replace(w.quarantine);

    await terminal.waitFor("How many files may be scanned at the same time?");
    terminal.replace("300");
    await terminal.waitFor("Worker count 300 is out of range");
    terminal.replace("3");

    await terminal.waitFor("Where should the configuration be written?");
    terminal.replace(w.config);

    // A preview of the file, then the question.
    screen = await terminal.waitFor(`Write ${w.config}?`);
    expect(screen).toContain(`OnAccessIncludePath ${w.b}`);
    terminal.keys("Enter");

    screen = await terminal.waitFor("SETUP-EXIT=");
    expect(screen).toContain("SETUP-EXIT=0");
    expect(screen).toContain(`Wrote ${w.config}`);
    // No systemd here: no systemctl, but the command to run onacc.
    expect(screen).toContain(`run onacc with: onacc --foreground --config-file=${w.config} --move=${w.quarantine}`);

    const { config } = loadConfig(w.config);
    expect(config.endpoints).toEqual([{ kind: "unix", path: clamd.socket }]);
    expect(config.onAccess.includePaths).toEqual([w.a, w.b]);
    expect(config.onAccess.excludePaths).toEqual([join(w.a, "cache")]);
    expect(config.onAccess.excludeUnames).toEqual(["clamav"]);
    expect(config.onAccess.prevention).toBe(true);
    expect(config.onAccess.maxThreads).toBe(3);
    expect(statSync(w.config).mode & 0o777).toBe(0o644);
    expect(statSync(w.quarantine).isDirectory()).toBe(true);
    expect(readFileSync(join(w.systemdDir, "onacc.service.d/setup.conf"), "utf8")).toContain(`ONACC_OPTIONS=--move=${w.quarantine}`);
  });

  // The wizard inside the compiled binary, started by install.sh fed through a pipe (as in curl | sh).
  test.skipIf(!existsSync(join(ROOT, "dist/onacc")))(
    "install.sh piped to sh runs the wizard on the terminal (/dev/tty), never on the pipe",
    async () => {
      const w = workspace();
      const place = { prefix: join(w.root, "usr"), configDir: join(w.root, "etc/onacc"), systemdDir: join(w.root, "installed-units") };
      mkdirSync(place.systemdDir);
      const terminal = startTerminal(w.root, [
        `cat ${join(ROOT, "install.sh")} | sh -s -- --from ${join(ROOT, "dist/onacc")} --prefix ${place.prefix} --config-dir ${place.configDir} --systemd-dir ${place.systemdDir} --no-clamd -- --clamd-conf ${clamd.configFile}`,
        'echo "INSTALL-EXIT=$?"',
      ]);

      await terminal.waitFor("Which clamd should onacc ask for verdicts?", 30000);
      terminal.keys("Enter");
      await terminal.waitFor("Which directories should onacc protect?");
      terminal.answer(w.b);
      await terminal.waitFor("Directories inside them to leave unscanned?");
      terminal.keys("Enter");
      await terminal.waitFor("Block access to infected files?");
      terminal.keys("Enter");
      await terminal.waitFor("Users whose file accesses are not scanned?");
      terminal.keys("Enter");
      await terminal.waitFor("What should happen to an infected file?");
      terminal.keys("Enter");
      await terminal.waitFor("How many files may be scanned at the same time?");
      terminal.keys("Enter");
      // install.sh named the file (--config): no question where, straight to the preview.
      await terminal.waitFor(`Write ${place.configDir}/onacc.conf?`);
      terminal.keys("Enter");

      const screen = await terminal.waitFor("INSTALL-EXIT=", 30000);
      expect(screen).toContain("INSTALL-EXIT=0");
      // The wizard's own closing words end the installation.
      expect(screen).toContain("Done.");
      const { config } = loadConfig(join(place.configDir, "onacc.conf"));
      expect(config.onAccess.includePaths).toEqual([w.b]);
      expect(config.endpoints).toEqual([{ kind: "unix", path: clamd.socket }]);
      expect(readFileSync(join(place.systemdDir, "onacc.service.d/setup.conf"), "utf8")).toContain(`ONACC_CONFIG=${place.configDir}/onacc.conf`);
    },
    60000,
  );

  test("the wizard takes a typed clamd address only once clamd answers there, and never replaces a file without a yes", async () => {
    const { w, terminal } = startWizard([
      "--clamd-conf", "/nonexistent/clamd.conf",
      "--protect", "{a}",
      "--exclude-path", "{a}/cache",
      "--prevention", "no",
      "--exclude-user", "clamav",
      "--action", "none",
      "--threads", "2",
      "--config", "{config}",
      "--no-service",
    ]);
    mkdirSync(join(w.config, ".."), { recursive: true });
    writeFileSync(w.config, "# hand-written\n");

    let screen = await terminal.waitFor("clamd's socket path, or host:port");
    expect(screen).toContain("cannot read /nonexistent/clamd.conf");
    terminal.answer(join(w.a, "clamd.sock"));
    await terminal.waitFor("ENOENT (no such socket)");
    terminal.replace(`127.0.0.1:${clamd.port}`);
    await terminal.waitFor(`answers at tcp://127.0.0.1:${clamd.port}`);

    // Every other answer came as a flag; the file exists, so the wizard asks, and No is the default.
    screen = await terminal.waitFor(`${w.config} already exists. Replace it?`);
    expect(screen).toContain(`Protecting ${w.a}`);
    terminal.keys("Enter");
    await terminal.waitFor("Where should the configuration be written?");
    terminal.keys("C-c");

    screen = await terminal.waitFor("SETUP-EXIT=");
    expect(screen).toContain("SETUP-EXIT=1");
    expect(screen).toContain("Setup cancelled: nothing was written");
    expect(readFileSync(w.config, "utf8")).toBe("# hand-written\n");
    expect(existsSync(join(w.systemdDir, "onacc.service.d"))).toBe(false);
  });
});
