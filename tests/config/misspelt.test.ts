import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { ConfigError, ExitCode, exitCodeFor } from "../../src/errors.ts";

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

describe("a configuration with every OnAccess option misspelt", () => {
  test("loadConfig() reports every misspelt OnAccess option at once, each with its line and the right name", () => {
    const file = join(dir, "clamd.conf");
    writeFileSync(file, ["LocalSocket /run/clamav/clamd.ctl", ...MISSPELT.map(([wrong, , value]) => `${wrong} ${value}`)].join("\n") + "\n");
    let error: unknown;
    try {
      loadConfig(file);
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
    const { config } = loadConfig(file);
    expect(config.onAccess).toMatchObject({ prevention: true, denyOnError: true, maxThreads: 10, retryAttempts: 2, excludeRootUid: true });
  });
});
