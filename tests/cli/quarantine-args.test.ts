// `onacc quarantine`'s command line (no agent, no clamd): its own flags, the agent's flags it accepts,
// and the usage errors; and the QuarantineRetention option it shares with the agent's configuration.
import { describe, expect, test } from "bun:test";
import { parseQuarantineArgs, quarantineHelpText } from "../../src/cli/quarantine.ts";
import { UsageError } from "../../src/errors.ts";

const parse = (...argv: string[]) => parseQuarantineArgs(argv, "/work");

describe("parseQuarantineArgs()", () => {
  test("list --json with the agent's --move and -c", () => {
    const a = parse("list", "--json", "--move=/var/q", "-c", "/etc/onacc/onacc.conf");
    expect(a).toMatchObject({ command: "list", json: true, force: false });
    expect(a.agent.action).toEqual({ kind: "move", dir: "/var/q" });
    expect(a.agent.configFile).toBe("/etc/onacc/onacc.conf");
    expect([...a.given].sort()).toEqual(["config-file", "move"]);
  });

  test("restore ID --to=PATH --force, with a relative --to and the agent's whole command line pasted", () => {
    const a = parse("restore", "k3f9x2m7qa", "--to", "back", "--force", "-Fv", "--config-file", "onacc.conf", "--log=/var/log/onacc.log", "--copy", "/q");
    expect(a).toMatchObject({ command: "restore", id: "k3f9x2m7qa", to: "/work/back", force: true });
    expect(a.agent.action).toEqual({ kind: "copy", dir: "/q" });
    expect(a.agent.configFile).toBe("/work/onacc.conf");
  });

  test("--help needs no command", () => {
    expect(parse("--help").help).toBe(true);
    expect(quarantineHelpText()).toContain("onacc quarantine restore ID [--to=PATH] [--force]");
  });

  test.each([
    [[], "onacc quarantine needs a command: list, restore ID or delete ID"],
    [["lst"], 'Unknown quarantine command "lst": did you mean list? (list, restore or delete)'],
    [["restore"], "onacc quarantine restore needs the ID of a quarantined file (see onacc quarantine list)"],
    [["delete", "a", "b"], 'onacc quarantine delete takes one ID, but "b" was given too'],
    [["list", "x"], 'onacc quarantine list takes no argument, but "x" was given'],
    [["list", "--force"], "--force does not apply to onacc quarantine list"],
    [["delete", "x", "--to=/a"], "--to does not apply to onacc quarantine delete"],
    [["restore", "x", "--to"], "--to needs a PATH value"],
    [["list", "--jsn"], 'Unknown option "--jsn" for onacc quarantine: did you mean --json? (see onacc quarantine --help)'],
    [["list", "--json=yes"], "--json takes no value"],
    [["list", "--move=/a", "--remove"], "--remove, --move and --copy exclude each other, but --remove and --move were given"],
  ])("%j is a usage error", (argv, message) => {
    expect(() => parse(...(argv as string[]))).toThrow(new UsageError(message as string));
  });
});
