import { describe, expect, test } from "bun:test";
import { RUN_FLAGS } from "../../src/cli/args.ts";
import { helpText } from "../../src/cli/help.ts";
import { ExitCode } from "../../src/errors.ts";

describe("helpText()", () => {
  const text = helpText("9.8.7");

  test("helpText() names the version", () => {
    expect(text.split("\n")[0]).toContain("onacc 9.8.7");
  });

  test("helpText() lists every flag with its short form and value placeholder", () => {
    for (const flag of RUN_FLAGS) {
      const line = text.split("\n").find((l) => l.trimStart().startsWith(`--${flag.long}${flag.value ? "=" : " "}`));
      expect(line).toBeDefined();
      if (flag.value) expect(line).toContain(`--${flag.long}=${flag.value}`);
      if (flag.short) expect(line).toContain(`-${flag.short}${flag.value ? ` ${flag.value}` : ""}`);
      expect(line).toContain(flag.description);
    }
  });

  test("helpText() shows a usage example and the subcommands", () => {
    expect(text).toContain("Example:\n  onacc --foreground --log=");
    expect(text).toContain("onacc setup");
    expect(text).toContain("onacc status");
  });

  test("helpText() lists every exit code", () => {
    const section = text.slice(text.indexOf("Exit codes:"));
    for (const code of Object.values(ExitCode)) expect(section).toMatch(new RegExp(`^  ${code}  \\S`, "m"));
  });
});
