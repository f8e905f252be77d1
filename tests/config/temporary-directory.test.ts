// clamd's TemporaryDirectory is never watched: include paths and watch-list entries equal to it or inside
// it are skipped with a notice, and nothing in it is scanned, not even in folders created after start.
// Unit checks of the configuration, then dist/onacc with a real clamd and real fanotify on a test tmpfs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

const SOCKET = "LocalSocket /run/clamav/clamd.ctl";

describe("TemporaryDirectory in the configuration", () => {
  test("parseConfigText() drops include and mount paths equal to or inside TemporaryDirectory, with a notice at their line", () => {
    const text = [
      SOCKET, // 1
      "TemporaryDirectory /srv/work/clamtmp", // 2
      "OnAccessIncludePath /srv/work", // 3
      "OnAccessIncludePath /srv/work/clamtmp", // 4
      "OnAccessIncludePath /srv/work/clamtmp/deep", // 5
      "OnAccessMountPath /srv/work/clamtmp/mnt", // 6
      "OnAccessIncludePath /srv/work/clamtmpx", // 7: a sibling whose name merely starts the same
    ].join("\n");
    const { config, notices, warnings } = parseConfigText(text, "t.conf");
    expect(config.onAccess.includePaths).toEqual(["/srv/work", "/srv/work/clamtmpx"]);
    expect(config.onAccess.mountPaths).toEqual([]);
    expect(config.onAccess.excludePaths).toEqual(["/srv/work/clamtmp"]);
    expect(config.temporaryDirectory).toBe("/srv/work/clamtmp");
    const tail = `clamd's TemporaryDirectory "/srv/work/clamtmp", where clamd writes the temporary files of its scans`;
    expect(notices).toEqual([
      { file: "t.conf", line: 4, message: `OnAccessIncludePath "/srv/work/clamtmp" is not watched: it is ${tail}` },
      { file: "t.conf", line: 5, message: `OnAccessIncludePath "/srv/work/clamtmp/deep" is not watched: it lies inside ${tail}` },
      { file: "t.conf", line: 6, message: `OnAccessMountPath "/srv/work/clamtmp/mnt" is not watched: it lies inside ${tail}` },
    ]);
    expect(warnings).toEqual([
      {
        file: "t.conf",
        line: 2,
        message: `clamd's TemporaryDirectory "/srv/work/clamtmp" lies inside the watched "/srv/work": it is not scanned, and folders created in it are not followed`,
      },
    ]);
  });

  test("parseConfigText() adds nothing when an excluded path already holds TemporaryDirectory", () => {
    const { config } = parseConfigText(`${SOCKET}\nTemporaryDirectory /var/tmp/clamd\nOnAccessExcludePath /var/tmp\nOnAccessIncludePath /var`, "t.conf");
    expect(config.onAccess.excludePaths).toEqual(["/var/tmp"]);
  });

  test("parseConfigText() excludes nothing without TemporaryDirectory: clamd's default is the shared /tmp", () => {
    const { config, notices } = parseConfigText(`${SOCKET}\nOnAccessIncludePath /tmp\nOnAccessIncludePath /var/tmp`, "t.conf");
    expect(config.onAccess.includePaths).toEqual(["/tmp", "/var/tmp"]);
    expect(config.onAccess.excludePaths).toEqual([]);
    expect(notices).toEqual([]);
  });

  test("loadConfig() skips watch-list entries equal to or inside TemporaryDirectory, with a notice at the list's line", () => {
    const dir = mkdtempSync("/tmp/onacc-tmpdir-");
    try {
      for (const d of ["a", "clamtmp/sub", "b"]) mkdirSync(join(dir, d), { recursive: true });
      const conf = join(dir, "onacc.conf");
      writeFileSync(conf, `${SOCKET}\nTemporaryDirectory ${dir}/clamtmp\n`);
      const list = join(dir, "watch.txt");
      writeFileSync(list, `${dir}/a\n${dir}/clamtmp\n# comment\n${dir}/clamtmp/sub\n${dir}/b\n`);
      const { config, notices } = loadConfig(conf, { watchList: list }, { configDir: join(dir, "none") });
      expect(config.onAccess.includePaths).toEqual([`${dir}/a`, `${dir}/b`]);
      expect(config.onAccess.excludePaths).toEqual([`${dir}/clamtmp`]);
      expect(notices.map((n) => `${n.file}:${n.line}: ${n.message.slice(0, n.message.indexOf(":"))}`)).toEqual([
        `${list}:2: Watch-list entry "${dir}/clamtmp" is not watched`,
        `${list}:4: Watch-list entry "${dir}/clamtmp/sub" is not watched`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("TemporaryDirectory with dist/onacc, real clamd and fanotify", () => {
  let clamd: TestClamd;
  let mount: TestMount;
  let agent: RunningAgent | undefined;
  beforeAll(async () => {
    clamd = await startClamd();
    mount = mountTmpfs();
  });
  afterAll(async () => {
    await disposeAgent(agent);
    mount?.unmount();
    await disposeClamd(clamd);
  });

  test("nothing in clamd's TemporaryDirectory is scanned, new folders in it included, while the tree around it stays protected", async () => {
    const root = join(mount.path, "protected");
    const tmp = join(root, "clamtmp");
    const inner = join(tmp, "inner");
    mkdirSync(inner, { recursive: true });
    writeFileSync(join(root, "eicar.com"), EICAR);
    writeFileSync(join(tmp, "eicar.com"), EICAR);
    const watchList = join(mount.path, "watch.txt");
    writeFileSync(watchList, `${inner}\n`);
    agent = await startAgent({
      clamd,
      config: [`TemporaryDirectory ${tmp}`, `OnAccessIncludePath ${root}`, `OnAccessIncludePath ${tmp}`, "OnAccessPrevention yes"],
      args: ["--foreground", "--config-file=CONFIG", "--log=LOG", `--watch-list=${watchList}`, `--config-dir=${join(mount.path, "no-drop-ins")}`],
    });
    // The notices show without --verbose: something asked for is not done. (Lines 1-2 are the fixture's socket and User.)
    expect(agent.output()).toContain(`${agent.configFile}:5: OnAccessIncludePath "${tmp}" is not watched: it is clamd's TemporaryDirectory "${tmp}"`);
    expect(agent.output()).toContain(`${watchList}:1: Watch-list entry "${inner}" is not watched: it lies inside clamd's TemporaryDirectory "${tmp}"`);

    expect(openInChild(join(root, "eicar.com")).error).toBe("EPERM");
    expect(openInChild(join(tmp, "eicar.com"))).toMatchObject({ ok: true });

    // Folders created after start: followed around the TemporaryDirectory, not inside it.
    const outside = join(root, "new-outside", "deeper");
    const insideTmp = join(tmp, "new-inside", "deeper");
    mkdirSync(outside, { recursive: true });
    mkdirSync(insideTmp, { recursive: true });
    await Bun.sleep(300);
    writeFileSync(join(outside, "eicar.com"), EICAR);
    writeFileSync(join(insideTmp, "eicar.com"), EICAR);
    expect(openInChild(join(outside, "eicar.com")).error).toBe("EPERM");
    expect(openInChild(join(insideTmp, "eicar.com"))).toMatchObject({ ok: true });
    expect(agent.log().split("\n").filter((l) => l.includes(tmp) && l.includes("FOUND"))).toEqual([]);
  }, 60_000);
});
