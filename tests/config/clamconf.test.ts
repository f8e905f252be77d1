// Ground truth: the same clamd.conf read by parseConfigText() and by ClamAV's own parser (clamconf, from
// the clamav-daemon package, prints what clamd would use). Where onacc accepts a file, both must agree.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/parse.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onacc-clamconf-"));
  // clamconf insists on all three files in the directory it checks.
  writeFileSync(join(dir, "freshclam.conf"), "");
  writeFileSync(join(dir, "clamav-milter.conf"), "");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What clamconf says clamd makes of `text`: option name → its values as text (absent = disabled). */
function clamconfView(text: string): Map<string, string[]> {
  writeFileSync(join(dir, "clamd.conf"), text);
  const clamconf = Bun.which("clamconf");
  expect(clamconf).not.toBeNull();
  const out = Bun.spawnSync([clamconf!, "-c", dir]).stdout.toString();
  const section = out.slice(out.indexOf("Config file: clamd.conf"), out.indexOf("Config file: freshclam.conf"));
  const view = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    const m = /^(\w+) = (".*")$/.exec(line);
    if (m) view.set(m[1]!, [...m[2]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]!));
  }
  return view;
}

describe("parseConfigText() against clamconf", () => {
  test("parseConfigText() reads values, quotes, repeats, sizes and booleans exactly as clamd does", () => {
    const text = [
      "  LocalSocket /run/first.ctl",
      "LocalSocket /run/second.ctl",
      'OnAccessIncludePath "/srv/quoted dir"  ',
      'OnAccessIncludePath "/srv/x"dropped',
      "OnAccessIncludePath /srv/with space",
      "\tOnAccessExcludePath\t/srv/tabbed",
      "OnAccessMaxFileSize 3k",
      "StreamMaxLength 2G",
      "OnAccessPrevention YES",
      "OnAccessDenyOnError True",
      "OnAccessExtraScanning 0",
      "OnAccessExcludeUID 33",
      "OnAccessExcludeUID 1000",
      "OnAccessMaxThreads 9",
      "OnAccessMaxThreads 10",
      "User clamav # not a comment",
      "# OnAccessDisableDDD yes",
      "",
    ].join("\n");
    const clamd = clamconfView(text);
    const { config } = parseConfigText(text, "same.conf");

    expect(clamd.get("LocalSocket")).toEqual(["/run/first.ctl"]);
    expect(config.endpoints).toEqual([{ kind: "unix", path: "/run/first.ctl" }]);
    expect(clamd.get("OnAccessIncludePath")).toEqual(config.onAccess.includePaths);
    expect(clamd.get("OnAccessExcludePath")).toEqual(config.onAccess.excludePaths);
    expect(clamd.get("OnAccessMaxFileSize")).toEqual([String(config.onAccess.maxFileSize)]);
    expect(clamd.get("StreamMaxLength")).toEqual([String(config.streamMaxLength)]);
    expect(clamd.get("OnAccessPrevention")).toEqual([config.onAccess.prevention ? "yes" : "no"]);
    expect(clamd.get("OnAccessDenyOnError")).toEqual([config.onAccess.denyOnError ? "yes" : "no"]);
    expect(clamd.has("OnAccessExtraScanning")).toBe(config.onAccess.extraScanning);
    expect(clamd.get("OnAccessExcludeUID")).toEqual(config.onAccess.excludeUids.map(String));
    expect(clamd.get("OnAccessMaxThreads")).toEqual([String(config.onAccess.maxThreads)]);
    expect(clamd.get("User")).toEqual([config.clamdUser!]);
    expect(clamd.has("OnAccessDisableDDD")).toBe(config.onAccess.disableDDD);
  });

  test("parseConfigText() uses clamd's defaults for the OnAccess options", () => {
    const clamd = clamconfView("LocalSocket /run/c.ctl\n");
    const { config } = parseConfigText("LocalSocket /run/c.ctl\n", "defaults.conf");
    expect(clamd.get("OnAccessMaxFileSize")).toEqual([String(config.onAccess.maxFileSize)]);
    expect(clamd.get("OnAccessMaxThreads")).toEqual([String(config.onAccess.maxThreads)]);
    expect(clamd.get("OnAccessCurlTimeout")).toEqual([String(config.onAccess.timeoutMs)]);
    expect(clamd.get("StreamMaxLength")).toEqual([String(config.streamMaxLength)]);
  });
});
