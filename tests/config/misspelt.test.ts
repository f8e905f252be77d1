import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLAMD_OPTION_NAMES, clamdOptionOf } from "../../src/config/clamd-options.ts";
import { loadConfig } from "../../src/config/load.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { editDistance } from "../../src/config/suggest.ts";
import { ConfigError, ExitCode, exitCodeFor, type ConfigProblem } from "../../src/errors.ts";

// Every OnAccess option clamonacc reads, each misspelt a different way (a letter dropped, swapped, doubled,
// the wrong case), as a hurried edit of clamd.conf would.
const MISSPELT: [wrong: string, right: string, value: string][] = [
  ["OnAccessMountPth", "OnAccessMountPath", "/srv"],
  ["OnAccessIncludePaht", "OnAccessIncludePath", "/home"],
  ["OnAccesExcludePath", "OnAccessExcludePath", "/home/tmp"],
  ["OnAccessExcludeRootUDI", "OnAccessExcludeRootUID", "yes"],
  ["OnAccessExcludeUIID", "OnAccessExcludeUID", "1000"],
  ["OnAccessExcludeUnme", "OnAccessExcludeUname", "backup"],
  ["OnAccessMaxFilesize", "OnAccessMaxFileSize", "5M"],
  ["OnAccessDisableDD", "OnAccessDisableDDD", "yes"],
  ["OnAcessPrevention", "OnAccessPrevention", "yes"],
  ["OnAccessExtraScaning", "OnAccessExtraScanning", "yes"],
  ["OnAccessCurlTimout", "OnAccessCurlTimeout", "5000"],
  ["OnAccessMaxThread", "OnAccessMaxThreads", "10"],
  ["OnAccessRetryAtempts", "OnAccessRetryAttempts", "2"],
  ["onaccessdenyonerror", "OnAccessDenyOnError", "yes"],
];

let dir = "";
beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-misspelt-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each loadConfig() here names a drop-in directory that does not exist: the machine's own must not count.
describe("a configuration with every OnAccess option misspelt", () => {
  test("loadConfig() reports every misspelt OnAccess option at once, each with its line and the right name", () => {
    const file = join(dir, "clamd.conf");
    writeFileSync(file, ["LocalSocket /run/clamav/clamd.ctl", ...MISSPELT.map(([wrong, , value]) => `${wrong} ${value}`)].join("\n") + "\n");
    let error: unknown;
    try {
      loadConfig(file, {}, { configDir: join(dir, "no-drop-ins") });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(exitCodeFor(error)).toBe(ExitCode.config);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(MISSPELT.length);
    MISSPELT.forEach(([wrong, right], i) => {
      const caseOnly = wrong.toLowerCase() === right.toLowerCase();
      expect(problems[i]).toEqual({
        file,
        line: i + 2,
        message: `Unknown option "${wrong}": did you mean ${right}?${caseOnly ? " (option names are case-sensitive)" : ""}`,
      });
    });
    // One line per problem, each "file:line: message", as onacc prints it before exiting with code 3.
    expect((error as ConfigError).message.split("\n")).toHaveLength(MISSPELT.length);
    expect((error as ConfigError).message.split("\n")[0]).toBe(`${file}:2: Unknown option "OnAccessMountPth": did you mean OnAccessMountPath?`);
  });

  test("the same file spelt right loads", () => {
    const file = join(dir, "clamd-right.conf");
    writeFileSync(file, ["LocalSocket /run/clamav/clamd.ctl", ...MISSPELT.map(([, right, value]) => `${right} ${value}`)].join("\n") + "\n");
    const { config } = loadConfig(file, {}, { configDir: join(dir, "no-drop-ins") });
    expect(config.onAccess).toMatchObject({ prevention: true, denyOnError: true, maxThreads: 10, retryAttempts: 2, excludeRootUid: true });
  });
});

describe("a misspelling of any option", () => {
  test("parseConfigText() refuses a typo of every clamd option with a suggestion one edit away", () => {
    // The second letter doubled: "LLocalSocket", "OOnAccessPrevention", … — none of them a real name.
    const typos = [...CLAMD_OPTION_NAMES].map((n) => n[0] + n.slice(1, 2) + n.slice(1));
    expect(typos.filter((t) => clamdOptionOf(t) !== undefined)).toEqual([]);
    for (const typo of typos) {
      let problems: ConfigProblem[] = [];
      try {
        parseConfigText(`LocalSocket /run/clamav/clamd.ctl\n${typo} 1\n`, "typo.conf");
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        problems = (err as ConfigError).problems;
      }
      const m = /^Unknown option "([^"]+)": did you mean (\w+)\?$/.exec(problems[0]?.message ?? "");
      expect({ typo, line: problems[0]?.line, suggested: m !== null && m[1] === typo && editDistance(typo, m[2]!) === 1 }).toEqual({ typo, line: 2, suggested: true });
    }
  });

  test("loadConfig() knows the options onacc adds, in a file clamd does not read", () => {
    const file = join(dir, "onacc-own.conf");
    writeFileSync(file, "LocalSocket /run/clamav/clamd.ctl\nExcludeExe /usr/bin/rsync\nExcludePattern *.log\nQuarantineRetention 30d\n");
    const { config } = loadConfig(file, {}, { configDir: join(dir, "no-drop-ins"), clamdReads: () => undefined });
    expect(config.onaccOnly).toEqual({ excludeExe: ["/usr/bin/rsync"], excludeExeChildren: false, excludePatterns: ["*.log"], quarantineRetentionSec: 30 * 86400 });
  });

  test("loadConfig() suggests an onacc-only option for its misspelling", () => {
    const file = join(dir, "onacc-typo.conf");
    writeFileSync(file, "LocalSocket /run/clamav/clamd.ctl\nExcludeExec /usr/bin/rsync\n");
    expect(() => loadConfig(file, {}, { configDir: join(dir, "no-drop-ins") })).toThrow(`${file}:2: Unknown option "ExcludeExec": did you mean ExcludeExe?`);
  });
});
