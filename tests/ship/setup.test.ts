// `onacc setup --yes …` as a script or installer runs it (a separate process, no terminal), against the
// real test clamd: what it writes must load with loadConfig(), and every bad answer must stop it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { parseClamdAddress } from "../../src/setup/clamd.ts";
import { renderDropIn } from "../../src/setup/write.ts";
import { parseSetupArgs } from "../../src/setup/options.ts";
import { disposeClamd, freeTcpPort, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { ROOT, run, SETUP_ENTRY, snapshot, tempDir, UNIT_FILE, verifyUnit } from "./helpers.ts";

let clamd: TestClamd;
beforeAll(async () => {
  clamd = await startClamd();
});
afterAll(async () => {
  await disposeClamd(clamd);
});

let dirs: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const d of dirs) d.dispose();
  dirs = [];
});

/** Directories to protect, a place for the config, and a systemd dir holding an installed unit. */
function workspace() {
  const t = tempDir("setup");
  dirs.push(t);
  const w = {
    root: t.path,
    a: join(t.path, "srv/a"),
    b: join(t.path, "srv/b"),
    config: join(t.path, "etc/onacc/onacc.conf"),
    systemdDir: join(t.path, "systemd"),
    quarantine: join(t.path, "quarantine"),
  };
  mkdirSync(join(w.a, "cache"), { recursive: true });
  mkdirSync(w.b, { recursive: true });
  mkdirSync(w.systemdDir);
  // The unit as install.sh leaves it, its ExecStart pointed at an executable that exists.
  const bin = join(t.path, "onacc");
  writeFileSync(bin, "#!/bin/sh\n");
  chmodSync(bin, 0o755);
  writeFileSync(join(w.systemdDir, "onacc.service"), readFileSync(UNIT_FILE, "utf8").replaceAll("/usr/local/bin/onacc", bin));
  return w;
}

function setup(args: string[]) {
  return run(["bun", SETUP_ENTRY, ...args]);
}

describe("onacc setup --yes", () => {
  test("setup --yes writes a configuration that loadConfig() reads back with every answer", async () => {
    const w = workspace();
    const r = await setup([
      "--yes",
      "--clamd", `unix://${clamd.socket}`,
      "--protect", w.a,
      "--protect", w.b,
      "--exclude-path", join(w.a, "cache"),
      "--prevention", "no",
      "--exclude-user", "clamav",
      "--action", `move:${w.quarantine}`,
      "--threads", "7",
      "--config", w.config,
      "--systemd-dir", w.systemdDir,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("clamd ClamAV ");
    expect(r.stdout).toContain(`Wrote ${w.config}`);

    const { config } = loadConfig(w.config);
    expect(config.endpoints).toEqual([{ kind: "unix", path: clamd.socket }]);
    expect(config.onAccess.includePaths).toEqual([w.a, w.b]);
    expect(config.onAccess.excludePaths).toEqual([join(w.a, "cache")]);
    expect(config.onAccess.excludeUnames).toEqual(["clamav"]);
    expect(config.onAccess.prevention).toBe(false);
    expect(config.onAccess.maxThreads).toBe(7);
    expect(statSync(w.config).mode & 0o777).toBe(0o644);
    // The action is a command-line option: the file says where it went.
    expect(readFileSync(w.config, "utf8")).toContain(`# Infected files: --move=${w.quarantine}.`);

    // The quarantine exists, private; the drop-in carries the action and the write access it needs.
    expect(statSync(w.quarantine).mode & 0o777).toBe(0o700);
    const dropIn = readFileSync(join(w.systemdDir, "onacc.service.d/setup.conf"), "utf8");
    expect(dropIn).toContain(`Environment="ONACC_CONFIG=${w.config}"`);
    expect(dropIn).toContain(`Environment="ONACC_OPTIONS=--move=${w.quarantine}"`);
    expect(dropIn).toContain(`ReadWritePaths="-${w.a}" "-${w.b}" "-${w.quarantine}"`);
    // The protected directories are in /tmp: the service must see the real one.
    expect(dropIn).toContain("PrivateTmp=no");
    // systemd accepts the unit together with this drop-in.
    expect(await verifyUnit(join(w.systemdDir, "onacc.service"))).toEqual({ code: 0, output: "" });
    // No systemd runs here: setup says how to start onacc instead of calling systemctl.
    expect(r.stdout).toContain(`run onacc with: onacc --foreground --config-file=${w.config} --move=${w.quarantine}`);
  });

  test("setup --yes finds clamd and its User in clamd.conf, and reaches a clamd over TCP", async () => {
    const w = workspace();
    const fromConf = await setup(["--yes", "--clamd-conf", clamd.configFile, "--protect", w.a, "--config", w.config, "--no-service"]);
    expect(fromConf.stderr).toBe("");
    expect(fromConf.code).toBe(0);
    const local = loadConfig(w.config).config;
    expect(local.endpoints).toEqual([{ kind: "unix", path: clamd.socket }]);
    // clamd's User is excluded by default, and its StreamMaxLength carried over.
    expect(local.onAccess.excludeUnames).toEqual(["clamav"]);
    expect(local.streamMaxLength).toBe(1024 * 1024);
    expect(local.onAccess.prevention).toBe(true);
    expect(local.onAccess.maxThreads).toBe(5);
    expect(existsSync(join(w.systemdDir, "onacc.service.d"))).toBe(false);

    const tcpConfig = join(w.root, "tcp.conf");
    const overTcp = await setup(["--yes", "--clamd", `127.0.0.1:${clamd.port}`, "--protect", w.b, "--exclude-user", "none", "--config", tcpConfig, "--no-service"]);
    expect(overTcp.stderr).toBe("");
    expect(overTcp.code).toBe(0);
    const tcp = loadConfig(tcpConfig).config;
    expect(tcp.endpoints).toEqual([{ kind: "tcp", host: "127.0.0.1", port: clamd.port }]);
    expect(tcp.onAccess.excludeUnames).toEqual([]);
  });

  test("setup refuses to replace an existing configuration without --force, and replaces it with --force", async () => {
    const w = workspace();
    mkdirSync(join(w.root, "etc/onacc"), { recursive: true });
    writeFileSync(w.config, "# mine\nLocalSocket /run/clamav/clamd.ctl\n");
    const args = ["--yes", "--clamd", clamd.socket, "--protect", w.a, "--config", w.config, "--no-service"];
    const refused = await setup(args);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`The configuration "${w.config}" already exists: add --force to replace it`);
    expect(readFileSync(w.config, "utf8")).toBe("# mine\nLocalSocket /run/clamav/clamd.ctl\n");

    const forced = await setup([...args, "--force"]);
    expect(forced.code).toBe(0);
    expect(loadConfig(w.config).config.onAccess.includePaths).toEqual([w.a]);
    expect(statSync(w.config).mode & 0o777).toBe(0o644);
  });

  test("setup refuses to ask questions without a terminal, pointing at --yes", async () => {
    const w = workspace();
    const r = await setup(["--protect", w.a, "--config", w.config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("its input is not a terminal: give the answers as flags with --yes");
    expect(existsSync(w.config)).toBe(false);
  });

  test("setup --yes rejects a relative or missing directory, and a clamd that does not answer, with exit code 3 and nothing written", async () => {
    const w = workspace();
    const before = snapshot(w.root);
    const cases: Array<[string[], string]> = [
      [["--clamd", clamd.socket, "--protect", "srv/a"], 'Directory to protect "srv/a" is not an absolute path'],
      [["--clamd", clamd.socket, "--protect", join(w.root, "nowhere")], `Directory to protect "${join(w.root, "nowhere")}" cannot be used: no such directory`],
      [["--clamd", join(w.root, "no-clamd.sock"), "--protect", w.a], `clamd at unix:${join(w.root, "no-clamd.sock")} does not answer: Cannot connect`],
      [["--clamd", `127.0.0.1:${await freeTcpPort()}`, "--protect", w.a], "ECONNREFUSED"],
      [["--clamd", clamd.socket, "--protect", w.a, "--action", `move:${join(w.a, "q")}`], "is inside the protected directory"],
      [["--clamd", clamd.socket, "--protect", w.a, "--threads", "0"], "Worker count 0 is out of range"],
      [["--clamd", clamd.socket, "--protect", w.a, "--exclude-user", "no-such-user-here"], 'There is no user "no-such-user-here"'],
    ];
    for (const [args, message] of cases) {
      const r = await setup(["--yes", "--config", w.config, "--no-service", ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 3 });
      expect(r.stderr).toContain(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(snapshot(w.root)).toEqual(before);
  });

  test("setup rejects bad command lines with exit code 2", async () => {
    const w = workspace();
    for (const [args, message] of [
      [["--yes", "--clamd", clamd.socket], "needs at least one --protect DIR"],
      [["--yes", "--protec", w.a], 'Unknown option "--protec": did you mean --protect?'],
      [["--yes", "--protect"], "--protect needs a value"],
      [["--yes", "stray"], 'Unexpected argument "stray"'],
      [["--yes", "--config", "relative.conf"], '--config "relative.conf" must be an absolute path'],
    ] as Array<[string[], string]>) {
      const r = await setup(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(message);
    }
  });

  test("setup --skip-clamd-check writes the configuration for a clamd that is not running yet", async () => {
    const w = workspace();
    const r = await setup(["--yes", "--skip-clamd-check", "--clamd", "/run/clamav/clamd.ctl", "--protect", w.a, "--config", w.config, "--no-service"]);
    expect(r.code).toBe(0);
    expect(loadConfig(w.config).config.endpoints).toEqual([{ kind: "unix", path: "/run/clamav/clamd.ctl" }]);
  });

  test("setup --help describes every flag the parser accepts", async () => {
    const r = await setup(["--help"]);
    expect(r.code).toBe(0);
    const source = readFileSync(join(ROOT, "src/setup/options.ts"), "utf8");
    const block = source.slice(source.indexOf("const _OPTIONS = {"), source.indexOf("} as const;"));
    const names = [...block.matchAll(/^\s+"?([a-z-]+)"?: \{/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(15);
    for (const name of names) expect(r.stdout).toContain(`--${name}`);
  });
});

describe("setup's parsing and rendering", () => {
  test("parseClamdAddress() reads socket paths, unix: URLs and host:port, and explains the rest", () => {
    expect(parseClamdAddress("/run/clamav/clamd.ctl")).toEqual({ kind: "unix", path: "/run/clamav/clamd.ctl" });
    expect(parseClamdAddress("unix:///run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
    expect(parseClamdAddress("unix:/run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
    expect(parseClamdAddress("tcp://clamd.internal:3310")).toEqual({ kind: "tcp", host: "clamd.internal", port: 3310 });
    expect(parseClamdAddress("[::1]:3310")).toEqual({ kind: "tcp", host: "::1", port: 3310 });
    expect(parseClamdAddress("10.0.0.5:3310")).toEqual({ kind: "tcp", host: "10.0.0.5", port: 3310 });
    expect(parseClamdAddress("clamd:99999")).toContain("out of range");
    expect(parseClamdAddress("0.0.0.0:3310")).toContain("means every address");
    expect(parseClamdAddress("run/clamd.ctl")).toContain("neither a socket path");
    expect(parseClamdAddress("unix:relative")).toContain("must be an absolute path");
  });

  test("the drop-in quotes paths for systemd: blanks, quotes and % survive", () => {
    const text = renderDropIn(
      {
        clamd: { kind: "unix", path: "/run/clamav/clamd.ctl" },
        protect: ['/srv/my "docs"', "/srv/100%"],
        excludePaths: [],
        prevention: true,
        excludeUsers: [],
        action: { kind: "remove" },
        threads: 5,
      },
      "/etc/onacc/onacc.conf",
    );
    expect(text).toContain('ReadWritePaths="-/srv/my \\"docs\\"" "-/srv/100%%"');
    expect(text).toContain('Environment="ONACC_OPTIONS=--remove"');
    expect(text).not.toContain("PrivateTmp");
  });

  test("parseSetupArgs() splits comma-separated lists and reads --exclude-user none as nobody", () => {
    const flags = parseSetupArgs(["--protect", "/a, /b", "--protect", "/c", "--exclude-user", "none"]);
    expect(flags.protect).toEqual(["/a", "/b", "/c"]);
    expect(flags.excludeUsers).toEqual([]);
    expect(parseSetupArgs([]).excludeUsers).toBeUndefined();
  });
});

