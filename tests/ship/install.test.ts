// install.sh as a person runs it, under dash: from a loopback "release server" (Bun.serve on 127.0.0.1)
// into a temporary prefix, config dir and systemd dir; twice; with a bad checksum; piped to sh; uninstalled.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { INSTALL_SH, POSIX_SH, ROOT, run, sha256, snapshot, tempDir, verifyUnit } from "./helpers.ts";

// The binary to serve: dist/onacc when it has been built, else a tiny stand-in that answers --version.
let binary: Uint8Array;
let server: ReturnType<typeof Bun.serve>;
let base: string;
const requests: string[] = [];

// What install.sh asks for on this machine (its own detection, re-derived here independently).
const machineArch = process.arch === "arm64" ? "arm64" : "x64";
const hasLoader = (dir: string, prefix: string) => existsSync(dir) && readdirSync(dir).some((n) => n.startsWith(prefix));
// musl's loader alone (Debian's musl package adds one to a glibc system).
const isMusl = hasLoader("/lib", "ld-musl-") && !hasLoader("/lib", "ld-linux-") && !hasLoader("/lib64", "ld-linux-");
const ASSET = `onacc-linux-${machineArch}${isMusl ? "-musl" : ""}`;

beforeAll(() => {
  const dist = join(ROOT, "dist/onacc");
  if (existsSync(dist) && statSync(dist).mode & 0o111) {
    binary = new Uint8Array(readFileSync(dist));
  } else {
    binary = new TextEncoder().encode('#!/bin/sh\necho "onacc 0.0.0-test-stand-in"\n');
  }
  const good = sha256(binary);
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const routes: Record<string, () => Response> = {
        [`/release/${ASSET}`]: () => new Response(binary),
        [`/release/${ASSET}.sha256`]: () => new Response(`${good}  ${ASSET}\n`),
        "/tampered/onacc": () => new Response(binary),
        // A checksum for other bytes: what a corrupted or swapped download looks like.
        "/tampered/onacc.sha256": () => new Response(`${sha256("something else")}  onacc\n`),
        "/unsigned/onacc": () => new Response(binary),
        // The right bytes' checksum, but for another file: a mix-up the installer must not accept.
        "/misnamed/onacc": () => new Response(binary),
        "/misnamed/onacc.sha256": () => new Response(`${good}  onacc-linux-other\n`),
      };
      return routes[path]?.() ?? new Response("not found", { status: 404 });
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(() => {
  server?.stop(true);
});

let dirs: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const d of dirs) d.dispose();
  dirs = [];
});

/** A fresh fake root: prefix, config dir and an existing systemd dir, plus an empty TMPDIR to watch. */
function fakeRoot() {
  const t = tempDir("install");
  dirs.push(t);
  const layout = {
    root: t.path,
    prefix: join(t.path, "usr/local"),
    configDir: join(t.path, "etc/onacc"),
    systemdDir: join(t.path, "etc/systemd/system"),
    tmpdir: join(t.path, "tmp"),
  };
  mkdirSync(layout.systemdDir, { recursive: true });
  mkdirSync(layout.tmpdir);
  return layout;
}

type Layout = ReturnType<typeof fakeRoot>;

function placeArgs(l: Layout): string[] {
  return ["--prefix", l.prefix, "--config-dir", l.configDir, "--systemd-dir", l.systemdDir, "--no-clamd"];
}

function install(l: Layout, extra: string[] = [], env: Record<string, string> = {}) {
  return run([POSIX_SH, INSTALL_SH, ...placeArgs(l), ...extra], { env: { ONACC_RELEASES: `${base}/release`, TMPDIR: l.tmpdir, ...env } });
}

describe("install.sh", () => {
  test("install.sh is POSIX sh: dash -n finds no syntax error", async () => {
    const r = await run([POSIX_SH, "-n", INSTALL_SH]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  test(`install.sh downloads the release for this machine, checks its SHA-256 and installs it with the unit`, async () => {
    const l = fakeRoot();
    requests.length = 0;
    const r = await install(l, ["--no-setup"]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    // Its own arch/libc detection picked the asset name, and it fetched the checksum too.
    expect(requests).toEqual([`/release/${ASSET}`, `/release/${ASSET}.sha256`]);
    expect(r.stdout).toContain(`SHA-256 of ${base}/release/${ASSET} verified (${sha256(binary)}, against ${base}/release/${ASSET}.sha256)`);
    // A checksum from the same server guards against a broken download only, and the installer says so.
    expect(r.stdout).toContain("proves the download is intact, not that the release is genuine");
    expect(r.stdout).toContain("--sha256 HEX");

    const bin = join(l.prefix, "bin/onacc");
    expect(sha256(readFileSync(bin))).toBe(sha256(binary));
    expect(statSync(bin).mode & 0o777).toBe(0o755);

    const unit = readFileSync(join(l.systemdDir, "onacc.service"), "utf8");
    expect(unit).toContain(`ExecStart=${bin} --foreground`);
    expect(unit).toContain(`Environment=ONACC_CONFIG=${l.configDir}/onacc.conf`);
    expect(unit).not.toContain("ExecStart=/usr/local/bin/onacc");
    // The installed unit, pointing at the installed binary, passes systemd's own checks without a warning.
    expect(await verifyUnit(join(l.systemdDir, "onacc.service"))).toEqual({ code: 0, output: "" });

    // Nothing is written to the configuration directory: only `onacc setup` writes the configuration.
    expect(existsSync(l.configDir)).toBe(false);
    expect(r.stdout).toContain(`configure onacc with: ${bin} setup --config ${l.configDir}/onacc.conf`);
    // The download directory is gone.
    expect(readdirSync(l.tmpdir)).toEqual([]);
  }, 30000);

  test("install.sh run twice changes nothing and leaves an existing configuration untouched", async () => {
    const l = fakeRoot();
    expect((await install(l, ["--no-setup"])).code).toBe(0);
    mkdirSync(l.configDir, { recursive: true });
    writeFileSync(join(l.configDir, "onacc.conf"), "LocalSocket /run/clamav/clamd.ctl\nOnAccessIncludePath /srv\n", { mode: 0o600 });
    const before = snapshot(l.root);

    // Without --no-setup: an existing configuration also means the wizard is not started again.
    const second = await install(l);
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain("error");
    expect(second.stdout).toContain("is already this version");
    expect(second.stdout).toContain("onacc.service is up to date");
    expect(second.stdout).toContain(`keeping the existing configuration ${l.configDir}/onacc.conf`);
    expect(snapshot(l.root)).toEqual(before);
  }, 30000);

  test("install.sh refuses a download whose checksum does not match and installs nothing", async () => {
    const l = fakeRoot();
    const before = snapshot(l.root);
    const r = await install(l, ["--no-setup"], { ONACC_URL: `${base}/tampered/onacc` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`SHA-256 mismatch for ${base}/tampered/onacc`);
    expect(r.stderr).toContain("nothing was installed");
    expect(snapshot(l.root)).toEqual(before);
  });

  test("install.sh refuses a download without a checksum file", async () => {
    const l = fakeRoot();
    const before = snapshot(l.root);
    const r = await install(l, ["--no-setup"], { ONACC_URL: `${base}/unsigned/onacc` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot download the checksum ${base}/unsigned/onacc.sha256`);
    expect(snapshot(l.root)).toEqual(before);
  });

  test("install.sh refuses a checksum file that names another file", async () => {
    const l = fakeRoot();
    const before = snapshot(l.root);
    const r = await install(l, ["--no-setup"], { ONACC_URL: `${base}/misnamed/onacc` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the checksum file for onacc names another file: "onacc-linux-other"');
    expect(snapshot(l.root)).toEqual(before);
  });

  test("install.sh --sha256 checks the download against a checksum from another channel instead of the server's file", async () => {
    const l = fakeRoot();
    requests.length = 0;
    const r = await install(l, ["--no-setup", "--sha256", sha256(binary)]);
    expect(r.code).toBe(0);
    expect(requests).toEqual([`/release/${ASSET}`]);
    expect(r.stdout).toContain("against the --sha256 you gave");
    const wrong = fakeRoot();
    const bad = await install(wrong, ["--no-setup", "--sha256", sha256("a different release")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("SHA-256 mismatch");
  }, 30000);

  test("install.sh --from FILE --sha256 refuses a local file with another checksum", async () => {
    const l = fakeRoot();
    const file = join(l.root, "onacc-local");
    writeFileSync(file, binary);
    chmodSync(file, 0o755);
    const before = snapshot(join(l.root, "usr"));
    const bad = await install(l, ["--no-setup", "--from", file, "--sha256", sha256("other")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("SHA-256 mismatch");
    expect(snapshot(join(l.root, "usr"))).toEqual(before);

    const good = await install(l, ["--no-setup", "--from", file, "--sha256", sha256(binary).toUpperCase()]);
    expect(good.code).toBe(0);
    expect(sha256(readFileSync(join(l.prefix, "bin/onacc")))).toBe(sha256(binary));
  }, 30000);

  test("install.sh piped to sh (curl | sh) never reads its stdin and skips the wizard without a terminal", async () => {
    const l = fakeRoot();
    const script = readFileSync(INSTALL_SH, "utf8");
    const r = await run([POSIX_SH, "-s", "--", ...placeArgs(l)], {
      stdin: script,
      env: { ONACC_RELEASES: `${base}/release`, TMPDIR: l.tmpdir },
    });
    expect(r.code).toBe(0);
    expect(existsSync(join(l.prefix, "bin/onacc"))).toBe(true);
    expect(r.stdout).toContain("no terminal to ask questions on");
    expect(r.stdout).toContain("onacc-install: done");
  }, 30000);

  test("install.sh --uninstall removes the binary, the unit and setup's drop-in, keeping the configuration and other drop-ins", async () => {
    const l = fakeRoot();
    expect((await install(l, ["--no-setup"])).code).toBe(0);
    const dropins = join(l.systemdDir, "onacc.service.d");
    mkdirSync(dropins);
    writeFileSync(join(dropins, "setup.conf"), "[Service]\n");
    writeFileSync(join(dropins, "local.conf"), "[Service]\nNice=5\n");
    mkdirSync(l.configDir, { recursive: true });
    writeFileSync(join(l.configDir, "onacc.conf"), "LocalSocket /x\n");

    const r = await install(l, ["--uninstall"]);
    expect(r.code).toBe(0);
    expect(existsSync(join(l.prefix, "bin/onacc"))).toBe(false);
    expect(existsSync(join(l.systemdDir, "onacc.service"))).toBe(false);
    expect(readdirSync(dropins)).toEqual(["local.conf"]);
    expect(readFileSync(join(l.configDir, "onacc.conf"), "utf8")).toBe("LocalSocket /x\n");
    expect(r.stdout).toContain("kept the configuration");

    // Again: nothing left to remove is not an error.
    const again = await install(l, ["--uninstall"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to remove");

    const purge = await install(l, ["--uninstall", "--purge"]);
    expect(purge.code).toBe(0);
    expect(existsSync(l.configDir)).toBe(false);
  }, 30000);

  test("install.sh --uninstall --purge removes only onacc's files from a shared configuration directory", async () => {
    const l = fakeRoot();
    mkdirSync(l.configDir, { recursive: true });
    writeFileSync(join(l.configDir, "onacc.conf"), "LocalSocket /x\n");
    writeFileSync(join(l.configDir, "clamd.conf"), "clamd's own\n");
    const r = await install(l, ["--uninstall", "--purge"]);
    expect(r.code).toBe(0);
    expect(existsSync(join(l.configDir, "onacc.conf"))).toBe(false);
    expect(readFileSync(join(l.configDir, "clamd.conf"), "utf8")).toBe("clamd's own\n");
  });

  test("install.sh hands the arguments after -- to onacc setup, runs setup --trial for --trial, and passes on setup's failure", async () => {
    const l = fakeRoot();
    const calls = join(l.root, "calls.log");
    const recorder = join(l.root, "onacc-recorder");
    writeFileSync(
      recorder,
      `#!/bin/sh\necho "$*" >> ${calls}\n[ "$1" = --version ] && echo "onacc 0.0.0-recorder"\n[ "$1" = setup ] && [ "$2" != --trial ] && exit "\${RECORDER_SETUP_EXIT:-0}"\nexit 0\n`,
    );
    chmodSync(recorder, 0o755);
    const r = await install(l, ["--from", recorder, "--trial", "--", "--yes", "--protect", "/srv/x"]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    // One setup: it starts the trial clamd, offers it first, and configures onacc with it.
    expect(readFileSync(calls, "utf8").trim().split("\n")).toEqual([
      "--version",
      `setup --trial --trial-config ${l.configDir}/trial-clamd.conf --config ${l.configDir}/onacc.conf --systemd-dir ${l.systemdDir} --yes --protect /srv/x`,
    ]);

    // With a configuration in place, --trial still makes sure the trial clamd runs, and leaves the rest.
    mkdirSync(l.configDir, { recursive: true });
    writeFileSync(join(l.configDir, "onacc.conf"), "LocalSocket /x\n");
    writeFileSync(calls, "");
    const rerun = await install(l, ["--from", recorder, "--trial"]);
    expect(rerun.code).toBe(0);
    expect(readFileSync(calls, "utf8").trim().split("\n")).toEqual([
      "--version",
      `setup --trial --trial-config ${l.configDir}/trial-clamd.conf --yes --config ${l.configDir}/onacc.conf --systemd-dir ${l.systemdDir}`,
    ]);
    rmSync(join(l.configDir, "onacc.conf"));

    const failed = await install(l, ["--from", recorder, "--", "--yes", "--protect", "/srv/x"], { RECORDER_SETUP_EXIT: "3" });
    expect(failed.code).toBe(3);
    expect(failed.stderr).toContain("onacc setup did not finish (exit status 3)");
  }, 30000);

  test("install.sh --from-source builds dist/onacc in the checkout it sits in and installs that", async () => {
    const l = fakeRoot();
    // A copy of the checkout (what git would give), so the build never touches this tree's dist/.
    const checkout = join(l.root, "checkout");
    const listed = Bun.spawnSync(["git", "ls-files", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, stdout: "pipe" });
    for (const file of listed.stdout.toString().split("\n").filter(Boolean)) {
      if (!existsSync(join(ROOT, file))) continue; // deleted in the work tree
      mkdirSync(dirname(join(checkout, file)), { recursive: true });
      copyFileSync(join(ROOT, file), join(checkout, file));
    }
    symlinkSync(join(ROOT, "node_modules"), join(checkout, "node_modules"));
    expect(existsSync(join(checkout, "dist"))).toBe(false);

    const r = await run([POSIX_SH, join(checkout, "install.sh"), "--from-source", ...placeArgs(l), "--no-setup"], { env: { TMPDIR: l.tmpdir } });
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`building dist/onacc in ${checkout}`);
    const installed = join(l.prefix, "bin/onacc");
    expect(sha256(readFileSync(installed))).toBe(sha256(readFileSync(join(checkout, "dist/onacc"))));
    const version = await run([installed, "--version"]);
    expect(version.stdout).toStartWith("onacc ");
  }, 60000);

  test("install.sh rejects bad command lines with exit code 2", async () => {
    const l = fakeRoot();
    for (const args of [["--prefix", "relative/dir"], ["--bogus"], ["--purge"], ["--prefix"], ["--from", "/x", "--from-source"]]) {
      const r = await run([POSIX_SH, INSTALL_SH, ...args], { env: { TMPDIR: l.tmpdir } });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain("onacc-install:");
    }
    expect(snapshot(l.root)).toEqual({ "etc": "dir", "etc/systemd": "dir", "etc/systemd/system": "dir", "tmp": "dir" });
  });

  test("install.sh --help lists every option it accepts", async () => {
    const r = await run([POSIX_SH, INSTALL_SH, "--help"]);
    expect(r.code).toBe(0);
    const source = readFileSync(INSTALL_SH, "utf8");
    // The case patterns of the option loop: lines such as "      --prefix | --config-dir)".
    const accepted = source
      .split("\n")
      .filter((line) => /^\s+--[a-z][a-z0-9|=* -]*\)/.test(line))
      .flatMap((line) => line.slice(0, line.indexOf(")")).match(/--[a-z][a-z0-9-]*/g) ?? []);
    expect(new Set(accepted).size).toBeGreaterThan(10);
    for (const flag of new Set(accepted)) expect(r.stdout).toContain(flag);
  });
});
