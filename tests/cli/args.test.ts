import { describe, expect, test } from "bun:test";
import { defineCommand, runCommand } from "citty";
import { parseRunArgs, runArgsDef, RUN_FLAGS, WAIT_DEFAULT } from "../../src/cli/args.ts";
import { DEFAULT_CONFIG_FILE } from "../../src/cli/options.ts";
import { UsageError, exitCodeFor, ExitCode } from "../../src/errors.ts";

const CWD = "/var/lib/onacc-test";
const parse = (...argv: string[]) => parseRunArgs(argv, CWD);

/** The UsageError message parseRunArgs() throws for argv (fails the test when it does not throw). */
function usageErrorOf(...argv: string[]): string {
  try {
    parse(...argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect(exitCodeFor(err)).toBe(ExitCode.usage);
    return (err as UsageError).message;
  }
  throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
}

describe("parseRunArgs() defaults", () => {
  test("parseRunArgs() with no flags gives clamonacc's defaults", () => {
    expect(parse()).toEqual({
      configFile: DEFAULT_CONFIG_FILE,
      foreground: false,
      verbose: false,
      action: { kind: "none" },
      allmatch: false,
      scanMode: "auto",
      help: false,
      version: false,
      pingOnly: false,
      cacheSize: 65536,
      kernelCache: true,
      statusSocket: "/run/onacc/status.sock",
      logFormat: "text",
      logKeep: 5,
    });
  });
});

describe("parseRunArgs() onacc's own flags", () => {
  test("parseRunArgs() reads --cache-size and --kernel-cache", () => {
    expect(parse("--cache-size=0", "--kernel-cache=no")).toMatchObject({ cacheSize: 0, kernelCache: false });
    expect(parse("--cache-size", "1000")).toMatchObject({ cacheSize: 1000, kernelCache: true });
  });

  test("parseRunArgs() rejects a --cache-size that is not a whole number", () => {
    expect(usageErrorOf("--cache-size=-1")).toMatch(/Invalid --cache-size "-1"/);
    expect(usageErrorOf("--cache-size=lots")).toMatch(/Invalid --cache-size "lots"/);
    expect(usageErrorOf("--kernel-cache=maybe")).toMatch(/Invalid --kernel-cache="maybe"/);
  });
});

describe("parseRunArgs() on/off flags", () => {
  const switches: Array<[string, string, (o: ReturnType<typeof parse>) => unknown, unknown]> = [
    ["--help", "-h", (o) => o.help, true],
    ["--version", "-V", (o) => o.version, true],
    ["--verbose", "-v", (o) => o.verbose, true],
    ["--foreground", "-F", (o) => o.foreground, true],
    ["--allmatch", "-z", (o) => o.allmatch, true],
  ];
  for (const [long, short, read, expected] of switches) {
    test(`parseRunArgs() reads ${long} and ${short}`, () => {
      expect(read(parse(long))).toBe(expected);
      expect(read(parse(short))).toBe(expected);
    });
  }

  test("parseRunArgs() reads --remove, --fdpass and --stream", () => {
    expect(parse("--remove").action).toEqual({ kind: "remove" });
    expect(parse("--fdpass").scanMode).toBe("fdpass");
    expect(parse("--stream").scanMode).toBe("stream");
  });

  test("parseRunArgs() reads bundled short flags", () => {
    const o = parse("-Fvz");
    expect([o.foreground, o.verbose, o.allmatch]).toEqual([true, true, true]);
  });

  test("parseRunArgs() accepts --flag=yes/no for on/off flags, as clamonacc does", () => {
    expect(parse("--foreground=yes").foreground).toBe(true);
    expect(parse("--foreground=no").foreground).toBe(false);
    expect(parse("--verbose=TRUE").verbose).toBe(true);
    expect(parse("--verbose", "--verbose=0").verbose).toBe(false);
    expect(usageErrorOf("--foreground=maybe")).toBe('Invalid --foreground="maybe": expected yes/no, true/false or 1/0');
  });

  test("parseRunArgs() rejects a value glued to a short on/off flag", () => {
    expect(usageErrorOf("-F=yes")).toContain('only flags that take a value accept "="');
  });
});

describe("parseRunArgs() flags with a value", () => {
  const valued: Array<[string, string, (o: ReturnType<typeof parse>) => unknown]> = [
    ["--log", "-l", (o) => o.logFile],
    ["--watch-list", "-W", (o) => o.watchList],
    ["--exclude-list", "-e", (o) => o.excludeList],
    ["--config-file", "-c", (o) => o.configFile],
  ];
  for (const [long, short, read] of valued) {
    test(`parseRunArgs() reads ${long}=FILE, ${long} FILE, ${short} FILE, ${short}FILE and ${short}=FILE`, () => {
      for (const argv of [[`${long}=/x/f`], [long, "/x/f"], [short, "/x/f"], [`${short}/x/f`], [`${short}=/x/f`]]) {
        expect(read(parse(...argv))).toBe("/x/f");
      }
    });
    test(`parseRunArgs() resolves a relative ${long} against the current directory`, () => {
      expect(read(parse(`${long}=sub/f`))).toBe(`${CWD}/sub/f`);
      expect(read(parse(short, "../f"))).toBe("/var/lib/f");
    });
    test(`parseRunArgs() rejects ${long} without a value`, () => {
      expect(usageErrorOf(long)).toBe(`${long} needs a FILE value`);
      expect(usageErrorOf(`${long}=`)).toBe(`${long} needs a FILE value`);
      expect(usageErrorOf(short)).toBe(`${short} needs a FILE value`);
    });
  }

  test("parseRunArgs() reads --move=DIR and --copy=DIR, resolving relative directories", () => {
    expect(parse("--move=/root/quarantine").action).toEqual({ kind: "move", dir: "/root/quarantine" });
    expect(parse("--move", "q").action).toEqual({ kind: "move", dir: `${CWD}/q` });
    expect(parse("--copy=/srv/copies/").action).toEqual({ kind: "copy", dir: "/srv/copies" });
    expect(parse("--copy", "/srv/copies").action).toEqual({ kind: "copy", dir: "/srv/copies" });
  });

  test("parseRunArgs() reads a short value flag at the end of a bundle", () => {
    const o = parse("-Fvl", "/var/log/onacc.log");
    expect([o.foreground, o.verbose, o.logFile]).toEqual([true, true, "/var/log/onacc.log"]);
    expect(parse("-Fc/etc/c.conf").configFile).toBe("/etc/c.conf");
  });

  test("parseRunArgs() does not take the next flag as a value", () => {
    expect(usageErrorOf("--log", "--foreground")).toContain('--log needs a FILE value, but is followed by the option "--foreground"');
    expect(parse("--log=--foreground").logFile).toBe(`${CWD}/--foreground`);
  });

  test("parseRunArgs() accepts a value flag repeated with the same value and rejects different values", () => {
    expect(parse("--log=/a", "-l", "/a").logFile).toBe("/a");
    expect(usageErrorOf("--log=/a", "--log=/b")).toBe('--log is given twice, with "/a" and "/b": keep one');
  });
});

describe("parseRunArgs() exclusions and unknowns", () => {
  test("parseRunArgs() rejects any two of --remove, --move and --copy", () => {
    expect(usageErrorOf("--remove", "--move=/q")).toBe("--remove, --move and --copy exclude each other, but --remove and --move were given");
    expect(usageErrorOf("--move=/q", "--copy=/c")).toContain("--move and --copy were given");
    expect(usageErrorOf("--copy=/c", "--remove")).toContain("--remove and --copy were given");
    expect(usageErrorOf("--remove", "--move=/q", "--copy=/c")).toContain("--remove and --move and --copy were given");
  });

  test("parseRunArgs() rejects --fdpass with --stream", () => {
    expect(usageErrorOf("--fdpass", "--stream")).toBe("--fdpass and --stream exclude each other: choose one");
  });

  test("parseRunArgs() rejects an unknown long flag, naming it and suggesting the closest", () => {
    expect(usageErrorOf("--forground")).toBe('Unknown option "--forground": did you mean --foreground? (see onacc --help)');
    expect(usageErrorOf("--frobnicate=1")).toBe('Unknown option "--frobnicate" (see onacc --help)');
  });

  test("parseRunArgs() rejects an unknown short flag, naming it", () => {
    expect(usageErrorOf("-x")).toBe('Unknown option "-x" (see onacc --help)');
    expect(usageErrorOf("-Fq")).toBe('Unknown option "-q" in "-Fq" (see onacc --help)');
  });

  test("parseRunArgs() rejects file arguments, also after --", () => {
    expect(usageErrorOf("/home")).toStartWith('Unexpected argument "/home"');
    expect(usageErrorOf("-F", "--", "/home")).toStartWith('Unexpected argument "/home"');
    expect(parse("-F", "--").foreground).toBe(true);
  });
});

describe("parseRunArgs() --ping and --wait", () => {
  test("parseRunArgs() reads --ping=N with clamonacc's default interval of 1 second, as ping-only", () => {
    const o = parse("--ping=5");
    expect(o.ping).toEqual({ attempts: 5, intervalSec: 1 });
    expect(o.pingOnly).toBe(true);
  });

  test("parseRunArgs() reads --ping N:I and its short forms", () => {
    for (const argv of [["--ping=10:3"], ["--ping", "10:3"], ["-p", "10:3"], ["-p10:3"], ["-p=10:3"]]) {
      expect(parse(...argv).ping).toEqual({ attempts: 10, intervalSec: 3 });
    }
    expect(parse("-p", "4:0").ping).toEqual({ attempts: 4, intervalSec: 0 });
  });

  test("parseRunArgs() rejects bad --ping values", () => {
    for (const bad of ["0", "abc", "3:", ":2", "3:x", "1.5", "3:2:1", "-1", "2:9999999", "99999999999999999999"]) {
      expect(usageErrorOf(`--ping=${bad}`)).toStartWith(`Invalid --ping "${bad}": expected ATTEMPTS[:INTERVAL]`);
    }
  });

  test("parseRunArgs() reads --wait and -w as 31 tries 1 second apart (up to 30 seconds), then start", () => {
    for (const flag of ["--wait", "-w"]) {
      const o = parse(flag);
      expect(o.ping).toEqual({ attempts: 31, intervalSec: 1 });
      expect(o.pingOnly).toBe(false);
    }
    expect(WAIT_DEFAULT).toEqual({ attempts: 31, intervalSec: 1 });
  });

  test("parseRunArgs() lets --ping set the tries of --wait, which then starts the agent", () => {
    const o = parse("--wait", "--ping=5:2");
    expect(o.ping).toEqual({ attempts: 5, intervalSec: 2 });
    expect(o.pingOnly).toBe(false);
  });
});

describe("runArgsDef for citty", () => {
  test("runArgsDef declares every flag with its short alias and whether it takes a value", () => {
    for (const flag of RUN_FLAGS) {
      const def = runArgsDef[flag.long];
      expect(def?.type).toBe(flag.value === undefined ? "boolean" : "string");
      expect((def as { alias?: string }).alias).toBe(flag.short);
    }
  });

  test("runArgsDef lets citty find a subcommand after a flag that takes a value", async () => {
    let reached = "";
    const root = defineCommand({
      args: runArgsDef,
      subCommands: { status: defineCommand({ run: () => void (reached = "status") }) },
    });
    await runCommand(root, { rawArgs: ["-c", "/etc/x.conf", "status"] });
    expect(reached).toBe("status");
  });
});
