import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { readPathList } from "../../src/config/lists.ts";
import { thrown } from "./helpers.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onacc-config-"));
  mkdirSync(join(dir, "watch/a"), { recursive: true });
  mkdirSync(join(dir, "watch/b"), { recursive: true });
  mkdirSync(join(dir, "skip"), { recursive: true });
  writeFileSync(join(dir, "plain-file"), "x");
  symlinkSync(join(dir, "watch/b"), join(dir, "link-to-b"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe("readPathList()", () => {
  test("readPathList() returns the valid directories, normalized and deduplicated, skipping comments and blanks", () => {
    const file = write("list-ok.txt", `# watched\n\n${dir}/watch/a/\n  ${dir}/watch/b  \n${dir}/watch/a\n${dir}/link-to-b\n`);
    const { paths, warnings } = readPathList(file, "watch list");
    expect(paths).toEqual([`${dir}/watch/a`, `${dir}/watch/b`, `${dir}/link-to-b`]);
    expect(warnings).toEqual([]);
  });

  test("readPathList() skips relative, missing and non-directory lines with a file:line warning each", () => {
    const file = write("list-bad.txt", [`${dir}/watch/a`, "relative/dir", `${dir}/missing`, `${dir}/plain-file`, `${dir}/watch/b`].join("\n"));
    const { paths, warnings } = readPathList(file, "watch list");
    expect(paths).toEqual([`${dir}/watch/a`, `${dir}/watch/b`]);
    expect(warnings).toEqual([
      { file, line: 2, message: 'Skipped "relative/dir": not an absolute path' },
      { file, line: 3, message: `Skipped "${dir}/missing": no such file or directory` },
      { file, line: 4, message: `Skipped "${dir}/plain-file": not a directory` },
    ]);
  });

  test("readPathList() rejects a missing list file, naming it and the reason", () => {
    const missing = join(dir, "no-such-list.txt");
    const err = thrown(() => readPathList(missing, "exclude list"));
    expect(err.problems).toEqual([{ file: missing, line: 0, message: "Cannot read exclude list: no such file or directory" }]);
    expect(err.message).toBe(`${missing}: Cannot read exclude list: no such file or directory`);
  });

  test("readPathList() rejects a directory given as the list file", () => {
    const err = thrown(() => readPathList(join(dir, "skip"), "watch list"));
    expect(err.problems[0]!.message).toBe("Cannot read watch list: it is a directory");
  });
});

describe("loadConfig()", () => {
  test("loadConfig() reads a configuration file", () => {
    const file = write("plain.conf", "LocalSocket /run/clamav/clamd.ctl\nOnAccessIncludePath /home\n");
    const { config, warnings } = loadConfig(file);
    expect(config.file).toBe(file);
    expect(config.onAccess.includePaths).toEqual(["/home"]);
    expect(warnings).toEqual([]);
  });

  test("loadConfig() rejects a missing configuration file, naming it and the reason", () => {
    const missing = join(dir, "absent.conf");
    const err = thrown(() => loadConfig(missing));
    expect(err.problems).toEqual([{ file: missing, line: 0, message: "Cannot read configuration file: no such file or directory" }]);
  });

  test("loadConfig() merges the watch and exclude lists into the include and exclude paths, deduplicated", () => {
    const file = write("lists.conf", `LocalSocket /run/c.ctl\nOnAccessIncludePath ${dir}/watch/a\nOnAccessExcludePath /proc\n`);
    const watchList = write("watch.txt", `${dir}/watch/a\n${dir}/watch/b/\nnot/absolute\n`);
    const excludeList = write("exclude.txt", `${dir}/skip\n/proc\n`);
    const { config, warnings } = loadConfig(file, { watchList, excludeList });
    expect(config.onAccess.includePaths).toEqual([`${dir}/watch/a`, `${dir}/watch/b`]);
    expect(config.onAccess.excludePaths).toEqual(["/proc", `${dir}/skip`]);
    expect(warnings).toEqual([{ file: watchList, line: 3, message: 'Skipped "not/absolute": not an absolute path' }]);
  });

  test("loadConfig() reports configuration problems and a missing list file together", () => {
    const file = write("broken.conf", "LocalSocket /run/c.ctl\nOnAccessPrevention perhaps\n");
    const missing = join(dir, "missing-watch.txt");
    const err = thrown(() => loadConfig(file, { watchList: missing }));
    expect(err.problems.map((p) => `${p.file}:${p.line}`)).toEqual([`${file}:2`, `${missing}:0`]);
  });
});

describe("loadConfig() with clamd endpoints from the command line", () => {
  test("loadConfig() accepts a file without a socket when --clamd names the endpoints", () => {
    const dir = mkdtempSync("/tmp/onacc-load-");
    try {
      const file = join(dir, "onacc.conf");
      writeFileSync(file, "OnAccessIncludePath /srv\n");
      expect(() => loadConfig(file)).toThrow(/No clamd socket configured/);
      expect(loadConfig(file, {}, { endpointsGiven: true }).config.onAccess.includePaths).toEqual(["/srv"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
