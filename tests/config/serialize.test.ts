import { describe, expect, test } from "bun:test";
import { parseConfigText } from "../../src/config/parse.ts";
import { serializeConfig } from "../../src/config/serialize.ts";
import { ConfigError } from "../../src/errors.ts";

describe("serializeConfig()", () => {
  test("serializeConfig() writes one line per value, with yes/no booleans, comments and a header", () => {
    const text = serializeConfig(
      [
        { name: "LocalSocket", value: "/run/clamav/clamd.ctl" },
        { name: "OnAccessIncludePath", value: ["/home", "/srv"], comment: "Watched trees" },
        { name: "OnAccessPrevention", value: true },
        { name: "OnAccessExtraScanning", value: false },
        { name: "OnAccessMaxThreads", value: 8 },
        { name: "OnAccessMaxFileSize", value: "10M" },
      ],
      "Written by onacc setup\n\nEdit freely.",
    );
    expect(text).toBe(
      [
        "# Written by onacc setup",
        "#",
        "# Edit freely.",
        "",
        "LocalSocket /run/clamav/clamd.ctl",
        "# Watched trees",
        "OnAccessIncludePath /home",
        "OnAccessIncludePath /srv",
        "OnAccessPrevention yes",
        "OnAccessExtraScanning no",
        "OnAccessMaxThreads 8",
        "OnAccessMaxFileSize 10M",
        "",
      ].join("\n"),
    );
  });

  test("serializeConfig() quotes values clamd would otherwise trim or unquote, so they read back unchanged", () => {
    const awkward = [" /srv/leading", "/srv/trailing ", '"/srv/quoted"', "/srv/in side"];
    const text = serializeConfig([
      { name: "LocalSocket", value: "/run/c.ctl" },
      { name: "OnAccessExcludeUname", value: awkward },
    ]);
    expect(text).toContain('OnAccessExcludeUname " /srv/leading"\n');
    expect(text).toContain("OnAccessExcludeUname /srv/in side\n");
    expect(parseConfigText(text, "round-trip.conf").config.onAccess.excludeUnames).toEqual(awkward);
  });

  test("serializeConfig() rejects unknown option names and values it cannot write, all at once", () => {
    let error: unknown;
    try {
      serializeConfig([
        { name: "OnAccessIncludePth", value: "/home" },
        { name: "User", value: "" },
        { name: "VirusEvent", value: "line one\nline two" },
      ]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.message)).toEqual([
      'Cannot write unknown option "OnAccessIncludePth"',
      'Cannot write User "": a value must be non-empty and on one line',
      'Cannot write VirusEvent "line one\\nline two": a value must be non-empty and on one line',
    ]);
  });
});
