// onacc-only options: their values, the drop-in directory that holds them, and the refusal to read them
// from a file clamd reads (clamd would refuse to start) — checked against a real clamd started with -c.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clamdConfigArgument, whyClamdReads } from "../../src/config/clamd-readers.ts";
import { CLAMD_DEFAULT_CONFIG } from "../../src/config/clamd-options.ts";
import { loadConfig } from "../../src/config/load.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { ExitCode } from "../../src/errors.ts";
import { ensureBinary } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { thrown } from "./helpers.ts";

const SOCKET = "LocalSocket /run/clamav/clamd.ctl";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-onacc-options-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The messages (as `line: message`) parseConfigText() throws for `text` in onacc's own file. */
function messagesOf(text: string): string[] {
  return thrown(() => parseConfigText(text, "own.conf")).problems.map((p) => `${p.line}: ${p.message}`);
}

describe("onacc-only option values", () => {
  test("parseConfigText() gives the defaults when no onacc-only option is set", () => {
    expect(parseConfigText(SOCKET, "own.conf").config.onaccOnly).toEqual({ excludeExe: [], excludeExeChildren: false, excludePatterns: [], quarantineRetentionSec: 0 });
  });

  test("parseConfigText() reads every onacc-only option, lists accumulating and deduplicated", () => {
    const { config } = parseConfigText(
      [SOCKET, "ExcludeExe /usr/bin/rsync", "ExcludeExe /usr/bin//rsync", "ExcludeExe /opt/backup/bin/agent", "ExcludeExeChildren yes",
        "ExcludePattern *.log", "ExcludePattern /srv/*/cache/**", "ExcludePattern [!.]*.tmp", "ExcludePattern core.\\[0-9]", "QuarantineRetention 12h"].join("\n"),
      "own.conf",
    );
    expect(config.onaccOnly).toEqual({
      excludeExe: ["/usr/bin/rsync", "/opt/backup/bin/agent"],
      excludeExeChildren: true,
      excludePatterns: ["*.log", "/srv/*/cache/**", "[!.]*.tmp", "core.\\[0-9]"],
      quarantineRetentionSec: 12 * 3600,
    });
  });

  test("parseConfigText() reads QuarantineRetention in seconds, minutes, hours and days, and 0 as for ever", () => {
    const retention = (value: string) => parseConfigText(`${SOCKET}\nQuarantineRetention ${value}`, "own.conf").config.onaccOnly.quarantineRetentionSec;
    expect([retention("0"), retention("45s"), retention("90m"), retention("12h"), retention("30d")]).toEqual([0, 45, 5400, 43200, 2592000]);
  });

  test("parseConfigText() rejects bad values of onacc-only options, each at its line", () => {
    expect(
      messagesOf(
        [SOCKET, "ExcludeExe rsync", "ExcludeExeChildren maybe", "ExcludePattern srv/*.log", "ExcludePattern /srv/a**/x", "ExcludePattern **",
          "ExcludePattern /srv/[abc", "ExcludePattern /srv/../etc", "ExcludePattern /srv/cache/", "QuarantineRetention 30", "QuarantineRetention 2y"].join("\n"),
      ),
    ).toEqual([
      '2: Invalid ExcludeExe "rsync": must be an absolute path (starting with /)',
      '3: Invalid ExcludeExeChildren "maybe": expected yes/no, true/false or 1/0',
      '4: Invalid ExcludePattern "srv/*.log": expected a file-name pattern without / (e.g. *.log) or an absolute path pattern (e.g. /srv/*/cache/**)',
      '5: Invalid ExcludePattern "/srv/a**/x": ** stands for whole directories: it must be a path component of its own (/srv/**/cache)',
      '6: Invalid ExcludePattern "**": ** spans directories: use * in a file-name pattern, or write an absolute pattern',
      '7: Invalid ExcludePattern "/srv/[abc": has a "[" without its closing "]"',
      '8: Invalid ExcludePattern "/srv/../etc": must not contain empty, "." or ".." path components',
      '9: Invalid ExcludePattern "/srv/cache/": must not end with /: write /dir/** for everything below a directory',
      '10: Invalid QuarantineRetention "30": expected 0 or a whole number with a unit s, m (minutes), h or d (e.g. "30d" or "12h")',
      "11: QuarantineRetention is set again (first at line 10): it takes one value, keep one of them",
    ]);
  });
});

describe("onacc's drop-in directory", () => {
  function dropInDir(files: Record<string, string>): string {
    const d = mkdtempSync(join(dir, "conf.d-"));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
    return d;
  }

  test("loadConfig() reads the *.conf drop-ins in name order after the main file, skipping other and hidden files", () => {
    const main = join(dir, "clamd-style.conf");
    writeFileSync(main, `${SOCKET}\nOnAccessIncludePath /srv\nExcludePattern *.tmp\n`);
    const d = dropInDir({
      "20-second.conf": "ExcludeExe /usr/bin/second\n",
      "10-first.conf": "# backups\nExcludeExe /usr/bin/first\nQuarantineRetention 7d\n",
      "30-ignored.conf.bak": "ExcludeExe /usr/bin/ignored\n",
      ".40-hidden.conf": "ExcludeExe /usr/bin/hidden\n",
    });
    const { config } = loadConfig(main, {}, { configDir: d, clamdReads: () => undefined });
    expect(config.dropIns).toEqual([join(d, "10-first.conf"), join(d, "20-second.conf")]);
    expect(config.onaccOnly).toMatchObject({ excludeExe: ["/usr/bin/first", "/usr/bin/second"], excludePatterns: ["*.tmp"], quarantineRetentionSec: 7 * 86400 });
    expect(config.onAccess.includePaths).toEqual(["/srv"]);
  });

  test("loadConfig() reads no drop-ins from a directory that does not exist", () => {
    const main = join(dir, "plain.conf");
    writeFileSync(main, `${SOCKET}\n`);
    expect(loadConfig(main, {}, { configDir: join(dir, "absent.d") }).config.dropIns).toEqual([]);
  });

  test("loadConfig() refuses clamd options, unknown options and a single-value option set twice in drop-ins, naming file and line", () => {
    const main = join(dir, "main.conf");
    writeFileSync(main, `${SOCKET}\nQuarantineRetention 30d\n`);
    const d = dropInDir({
      "a.conf": "OnAccessIncludePath /home\nExcludeExes /usr/bin/x\n",
      "b.conf": "QuarantineRetention 1d\n",
    });
    const err = thrown(() => loadConfig(main, {}, { configDir: d, clamdReads: () => undefined }));
    expect(err.problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      `${d}/a.conf:1: OnAccessIncludePath is a clamd option: set it in ${main}; files in ${d} hold onacc-only options (ExcludeExe, ExcludeExeChildren, ExcludePattern, QuarantineRetention)`,
      `${d}/a.conf:2: Unknown option "ExcludeExes": did you mean ExcludeExe?`,
      `${d}/b.conf:1: QuarantineRetention is set again (first at ${main}:2): it takes one value, keep one of them`,
    ]);
  });

  test("loadConfig() names a drop-in directory it cannot read", () => {
    const main = join(dir, "main2.conf");
    writeFileSync(main, `${SOCKET}\n`);
    const notADirectory = join(dir, "file-not-dir");
    writeFileSync(notADirectory, "");
    const err = thrown(() => loadConfig(main, {}, { configDir: notADirectory }));
    expect(err.message).toBe(`${notADirectory}: Cannot read the drop-in directory: a component of the path is not a directory`);
  });
});

describe("onacc-only options in a file clamd reads", () => {
  test("parseConfigText() refuses onacc-only options in a file clamd reads, pointing at the drop-in directory", () => {
    const text = `${SOCKET}\nExcludeExe /usr/bin/rsync\nOnAccessIncludePath /srv\nExcludePattern *.log\n`;
    const err = thrown(() => parseConfigText(text, "/etc/clamd.d/scan.conf", { clamdReads: () => "clamd (pid 42) was started with it", dropInDir: "/etc/onacc/onacc.conf.d" }));
    const why = "but clamd reads this file (clamd (pid 42) was started with it) and refuses to start on an option it does not know: move it to a file in /etc/onacc/onacc.conf.d";
    expect(err.problems.map((p) => `${p.line}: ${p.message}`)).toEqual([`2: ExcludeExe is an onacc-only option, ${why}`, `4: ExcludePattern is an onacc-only option, ${why}`]);
  });

  test("whyClamdReads() knows clamd's default configuration", () => {
    expect(whyClamdReads(CLAMD_DEFAULT_CONFIG)).toBe("it is clamd's default configuration");
    const link = join(dir, "link-to-default.conf");
    symlinkSync(CLAMD_DEFAULT_CONFIG, link);
    expect(whyClamdReads(link)).toBe(`it is clamd's default configuration ${CLAMD_DEFAULT_CONFIG}`);
    const other = join(dir, "not-clamds.conf");
    writeFileSync(other, SOCKET);
    expect(whyClamdReads(other)).toBeUndefined();
  });

  test("clamdConfigArgument() reads every form clamd's getopt accepts for its configuration file", () => {
    expect(clamdConfigArgument(["-c", "/a.conf"])).toBe("/a.conf");
    expect(clamdConfigArgument(["-c/a.conf"])).toBe("/a.conf");
    expect(clamdConfigArgument(["-Fc", "/a.conf"])).toBe("/a.conf");
    expect(clamdConfigArgument(["--config-file=/a.conf"])).toBe("/a.conf");
    expect(clamdConfigArgument(["--config-file", "/a.conf"])).toBe("/a.conf");
    expect(clamdConfigArgument(["--config=/a.conf"])).toBe("/a.conf");
    expect(clamdConfigArgument(["--foreground=true", "-c", "/a.conf", "-c", "/b.conf"])).toBe("/a.conf");
    // Values of other options, an ambiguous abbreviation and anything after -- are no configuration file.
    expect(clamdConfigArgument(["-l", "-c", "--log", "/x", "--pid=/run/c.pid"])).toBeUndefined();
    expect(clamdConfigArgument(["--c=/a.conf"])).toBeUndefined();
    expect(clamdConfigArgument(["--", "-c", "/a.conf"])).toBeUndefined();
    expect(clamdConfigArgument(["--foreground"])).toBeUndefined();
  });

  describe("with a real clamd started with -c", () => {
    let clamd: TestClamd;
    beforeAll(async () => {
      clamd = await startClamd();
    });
    afterAll(async () => {
      await disposeClamd(clamd);
    });

    test("whyClamdReads() finds the running clamd that reads a file, also through a symbolic link", () => {
      expect(whyClamdReads(clamd.configFile)).toBe(`clamd (pid ${clamd.pid}) was started with it`);
      const link = join(dir, "link-to-test-clamd.conf");
      symlinkSync(clamd.configFile, link);
      expect(whyClamdReads(link)).toBe(`clamd (pid ${clamd.pid}) was started with it`);
    });

    test("onacc refuses to start on clamd's own file holding an onacc-only option, which clamd itself refuses", async () => {
      const shared = join(dir, "shared-clamd.conf");
      // A copy clamd does not read, then the same line in clamd's own file (clamonacc-style -c clamd.conf).
      writeFileSync(shared, `${SOCKET}\nOnAccessIncludePath ${dir}\nExcludeExe /usr/bin/rsync\n`);
      expect(whyClamdReads(shared)).toBeUndefined();
      appendFileSync(clamd.configFile, `OnAccessIncludePath ${dir}\nExcludeExe /usr/bin/rsync\n`);
      const line = (await Bun.file(clamd.configFile).text()).trimEnd().split("\n").length;

      const onacc = Bun.spawnSync([ensureBinary(), "--foreground", `--config-file=${clamd.configFile}`, `--config-dir=${join(dir, "none.d")}`], { timeout: 30_000 });
      expect(onacc.exitCode).toBe(ExitCode.config);
      expect(onacc.stderr.toString()).toContain(
        `${clamd.configFile}:${line}: ExcludeExe is an onacc-only option, but clamd reads this file (clamd (pid ${clamd.pid}) was started with it) and refuses to start on an option it does not know`,
      );
      // What onacc says is so: a clamd started on that file now stops at exactly that line.
      const second = Bun.spawnSync(["clamd", "--foreground", "-c", clamd.configFile], { timeout: 30_000 });
      expect(second.stderr.toString()).toContain(`Parse error at ${clamd.configFile}:${line}: Unknown option ExcludeExe`);
      expect(second.exitCode).not.toBe(0);
    }, 60_000);
  });
});
