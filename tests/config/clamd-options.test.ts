// Ground truth for the option table: this machine's clamd and clamconf. Every name the table holds must be
// accepted by a real clamd, every option clamconf lists must be in the table, and for names clamd refuses
// (wrong case, typos) onacc must refuse too — so the table cannot drift from clamd silently.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLAMD_COMMAND_LINE_NAMES, CLAMD_DEFAULT_CONFIG, CLAMD_OPTION_NAMES, clamdOptionOf } from "../../src/config/clamd-options.ts";
import { ONACC_OPTION_NAMES } from "../../src/config/onacc-options.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { ConfigError } from "../../src/errors.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-clamd-options-");
  mkdirSync(join(dir, "db"));
  // clamconf insists on all three files in the directory it checks.
  writeFileSync(join(dir, "freshclam.conf"), "");
  writeFileSync(join(dir, "clamav-milter.conf"), "");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Verdict = { kind: "parsed" } | { kind: "unknown"; name: string } | { kind: "bad-value"; name: string };

/**
 * What clamd makes of `lines`: it stops at the first line it refuses. The file starts with Foreground (so
 * a clamd that parses it never detaches) and an empty DatabaseDirectory (so it exits right after).
 */
function clamdParse(lines: string[]): Verdict {
  const file = join(dir, "probe.conf");
  writeFileSync(file, ["Foreground yes", `DatabaseDirectory ${join(dir, "db")}`, ...lines].join("\n") + "\n");
  const r = Bun.spawnSync(["clamd", "--foreground", "-c", file], { cwd: dir, stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
  const out = r.stderr.toString() + r.stdout.toString();
  let m = /Parse error at .*: Unknown option (\S+)/.exec(out);
  if (m) return { kind: "unknown", name: m[1]! };
  m = /Incorrect argument format for option (\S+)/.exec(out);
  if (m) return { kind: "bad-value", name: m[1]! };
  if (/Can't open\/parse the config file/.test(out)) throw new Error(`clamd could not parse ${file}: ${out}`);
  return { kind: "parsed" };
}

/** Names clamd refuses among `names`, each given with the value 1 (a valid BOOL, NUMBER and SIZE). */
function refusedByClamd(names: string[]): string[] {
  const refused: string[] = [];
  let pending = [...names];
  for (;;) {
    const verdict = clamdParse(pending.map((n) => `${n} 1`));
    if (verdict.kind === "parsed") return refused;
    // A value clamd rejects still shows that it knows the name; drop the line and go on.
    if (verdict.kind === "unknown") refused.push(verdict.name);
    pending = pending.filter((n) => n !== verdict.name);
  }
}

function onaccRefuses(name: string): boolean {
  try {
    parseConfigText(`LocalSocket /run/c.ctl\n${name} 1\n`, "probe.conf");
    return false;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.some((p) => p.line === 2 && p.message.startsWith(`Unknown option "${name}"`));
  }
}

function clamconfOutput(): string {
  writeFileSync(join(dir, "clamd.conf"), "LocalSocket /run/c.ctl\n");
  return Bun.spawnSync(["clamconf", "-c", dir]).stdout.toString();
}

describe("the clamd option table against this machine's clamd", () => {
  test("clamd accepts every name in the table, file names and command-line names alike", () => {
    // The probe must see a refusal: a made-up name among the table's is reported, and only that one.
    expect(refusedByClamd(["LocalSocket", "OnAccessTeleport", "MaxThreads"])).toEqual(["OnAccessTeleport"]);
    expect(refusedByClamd([...CLAMD_OPTION_NAMES, ...CLAMD_COMMAND_LINE_NAMES.keys()])).toEqual([]);
  }, 30_000);

  test("every clamd.conf option clamconf knows is in the table", () => {
    const out = clamconfOutput();
    const section = out.slice(out.indexOf("Config file: clamd.conf"), out.indexOf("Config file: freshclam.conf"));
    const names = [...section.matchAll(/^(\w+) (?:=|disabled)/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(100);
    expect(names.filter((n) => !CLAMD_OPTION_NAMES.has(n))).toEqual([]);
  });

  test("clamd's default configuration file is the one the table names", () => {
    // Without -c, clamconf checks the directory compiled into ClamAV, where clamd looks for clamd.conf.
    const out = Bun.spawnSync(["clamconf"]).stdout.toString();
    expect(`${/^Checking configuration files in (\S+)$/m.exec(out)?.[1]}/clamd.conf`).toBe(CLAMD_DEFAULT_CONFIG);
  });

  test("names are case-sensitive: for every option in lower case, clamd and onacc agree on accepting or refusing it", () => {
    const variants = [...new Set([...CLAMD_OPTION_NAMES].map((n) => n.toLowerCase()))];
    const refused = new Set(refusedByClamd(variants));
    // Hint: some lower-case names are command-line names clamd also takes (foreground, bytecode).
    expect(variants.filter((n) => !refused.has(n)).sort()).toEqual(variants.filter((n) => clamdOptionOf(n) !== undefined).sort());
    expect([...refused].filter((n) => !onaccRefuses(n))).toEqual([]);
  }, 60_000);

  test("a typo of any option is refused by clamd and by onacc alike", () => {
    // The last letter dropped, one variant per option: clamd stops at the first unknown line, so one run each.
    const typos = [...CLAMD_OPTION_NAMES].map((n) => n.slice(0, -1)).filter((n) => clamdOptionOf(n) === undefined);
    for (const typo of typos) {
      expect({ typo, clamd: clamdParse([`${typo} 1`]) }).toEqual({ typo, clamd: { kind: "unknown", name: typo } });
      expect({ typo, onacc: onaccRefuses(typo) }).toEqual({ typo, onacc: true });
    }
  }, 60_000);

  test("clamd refuses every onacc-only option, which is why they must live where clamd never reads them", () => {
    for (const name of ONACC_OPTION_NAMES) expect(clamdParse([`${name} 1`])).toEqual({ kind: "unknown", name });
  });

  test("clamd reads its command-line names in the file as the options onacc reads (tempdir, datadir)", () => {
    writeFileSync(join(dir, "clamd.conf"), "LocalSocket /run/c.ctl\ntempdir /var/tmp/by-alias\ndatadir /srv/db-by-alias\nTemporaryDirectory /ignored\n");
    const out = Bun.spawnSync(["clamconf", "-c", dir]).stdout.toString();
    expect(out).toContain('TemporaryDirectory = "/var/tmp/by-alias"');
    expect(out).toContain('DatabaseDirectory = "/srv/db-by-alias"');
    const { config } = parseConfigText("LocalSocket /run/c.ctl\ntempdir /var/tmp/by-alias\ndatadir /srv/db-by-alias\nTemporaryDirectory /ignored\n", "alias.conf");
    expect(config.temporaryDirectory).toBe("/var/tmp/by-alias");
    expect(config.databaseDirectory).toBe("/srv/db-by-alias");
  });
});
