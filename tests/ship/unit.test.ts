// systemd/onacc.service: systemd-analyze verify accepts it without a single warning (its ExecStart
// pointed at an existing executable, the one thing that differs on a machine where onacc is not
// installed), the copy inside install.sh is identical, and it says what the agent relies on.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseRunArgs } from "../../src/cli/args.ts";
import { INSTALL_SH, ROOT, tempDir, UNIT_FILE, verifyUnit } from "./helpers.ts";

let dirs: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const d of dirs) d.dispose();
  dirs = [];
});

/** The unit in a temp dir with ExecStart's binary replaced by an existing executable (dist/onacc if built). */
function stageUnit(transform: (text: string) => string = (t) => t): { dir: string; unit: string } {
  const t = tempDir("unit");
  dirs.push(t);
  const bin = join(t.path, "onacc");
  const dist = join(ROOT, "dist/onacc");
  if (existsSync(dist)) copyFileSync(dist, bin);
  else writeFileSync(bin, "#!/bin/sh\n");
  chmodSync(bin, 0o755);
  const text = readFileSync(UNIT_FILE, "utf8");
  expect(text).toContain("ExecStart=/usr/local/bin/onacc ");
  const unit = join(t.path, "onacc.service");
  writeFileSync(unit, transform(text.replaceAll("/usr/local/bin/onacc", bin)));
  return { dir: t.path, unit };
}

/** Directive values of the [Service] section (repeatable directives keep every value). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe("systemd/onacc.service", () => {
  test("systemd-analyze verify accepts the unit without any warning", async () => {
    const { unit } = stageUnit();
    expect(await verifyUnit(unit)).toEqual({ code: 0, output: "" });
  });

  test("the verification would catch a mistake (a misspelt directive, a bad value)", async () => {
    const misspelt = stageUnit((t) => t.replace(/^ProtectSystem=strict$/m, "ProtectSytem=strict"));
    expect((await verifyUnit(misspelt.unit)).output).toContain("Unknown key 'ProtectSytem'");
    const badValue = stageUnit((t) => t.replace(/^WatchdogSec=30s$/m, "WatchdogSec=soon"));
    expect((await verifyUnit(badValue.unit)).output).toContain("Failed to parse sec value, ignoring: soon");
  });

  test("install.sh carries an identical copy of the unit", () => {
    const script = readFileSync(INSTALL_SH, "utf8");
    const start = script.indexOf("  cat <<'ONACC_UNIT'\n");
    const end = script.indexOf("\nONACC_UNIT\n", start);
    expect(start).toBeGreaterThan(0);
    const embedded = script.slice(start + "  cat <<'ONACC_UNIT'\n".length, end + 1);
    // On a difference: paste systemd/onacc.service between the ONACC_UNIT markers of install.sh.
    expect(embedded).toBe(readFileSync(UNIT_FILE, "utf8"));
  });

  test("the unit runs onacc in the foreground as a notify service with a watchdog, after clamd", () => {
    const d = directives(readFileSync(UNIT_FILE, "utf8"));
    expect(d.get("Type")).toEqual(["notify"]);
    expect(d.get("WatchdogSec")).toEqual(["30s"]);
    expect(d.get("Restart")).toEqual(["on-failure"]);
    expect(d.get("ExecReload")).toEqual(["/bin/kill -HUP $MAINPID"]);
    const exec = d.get("ExecStart")![0]!;
    expect(exec).toContain(" --foreground ");
    expect(exec).toContain(" --config-file=${ONACC_CONFIG} ");
    expect(exec).toEndWith(" $ONACC_OPTIONS");
    expect(d.get("After")![0]).toContain("clamav-daemon.service");
    expect(d.get("Wants")).toEqual(["clamav-daemon.service"]);
  });

  test("ExecStart parses with onacc's own parser: foreground, a log file, and a long wait for clamd", () => {
    const exec = directives(readFileSync(UNIT_FILE, "utf8")).get("ExecStart")![0]!;
    // As systemd runs it: ${ONACC_CONFIG} substituted, $ONACC_OPTIONS split into words (here: a drop-in's --move).
    const argv = exec
      .replace("${ONACC_CONFIG}", "/etc/onacc/onacc.conf")
      .replace("$ONACC_OPTIONS", "--move=/var/lib/onacc/quarantine")
      .split(" ")
      .slice(1);
    const opts = parseRunArgs(argv);
    expect(opts).toMatchObject({
      foreground: true,
      configFile: "/etc/onacc/onacc.conf",
      logFile: "/var/log/onacc/onacc.log",
      action: { kind: "move", dir: "/var/lib/onacc/quarantine" },
      ping: { attempts: 120, intervalSec: 1 },
      pingOnly: false,
    });
    // The log sits in LogsDirectory=, which systemd keeps writable under ProtectSystem=strict.
    expect(directives(readFileSync(UNIT_FILE, "utf8")).get("LogsDirectory")).toEqual(["onacc"]);
  });

  test("the unit keeps exactly the capabilities fanotify and the actions need, on a read-only system", () => {
    const d = directives(readFileSync(UNIT_FILE, "utf8"));
    expect(d.get("CapabilityBoundingSet")![0]!.split(" ").sort()).toEqual(["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_LEASE", "CAP_SYS_ADMIN"]);
    expect(d.get("NoNewPrivileges")).toEqual(["yes"]);
    expect(d.get("ProtectSystem")).toEqual(["strict"]);
    expect(d.get("PrivateTmp")).toEqual(["yes"]);
    expect(d.get("LimitNOFILE")).toEqual(["65536"]);
    // Options that would make fanotify watch the wrong thing (see the unit's comments).
    for (const absent of ["ProtectHome", "ProtectProc", "MemoryDenyWriteExecute", "PrivateUsers"]) expect(d.has(absent)).toBe(false);
  });

  test("systemd/onacc.service.d holds only *.example drop-ins, each accepted by systemd-analyze verify", async () => {
    const examples = join(ROOT, "systemd/onacc.service.d");
    const names = readdirSync(examples);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      expect(name).toEndWith(".conf.example");
      const { dir, unit } = stageUnit();
      mkdirSync(join(dir, "onacc.service.d"));
      copyFileSync(join(examples, name), join(dir, "onacc.service.d", name.replace(/\.example$/, "")));
      expect({ name, ...(await verifyUnit(unit)) }).toEqual({ name, code: 0, output: "" });
    }
  });
});
