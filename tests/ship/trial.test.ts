// `onacc setup --trial` without systemd: it writes a trial clamd, starts it and waits until it answers; a
// second run changes nothing; with --protect it goes on to configure onacc against that clamd; and a host
// clamd without a database is reported as exactly that.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClamdClient } from "../../src/clamd/client.ts";
import { loadConfig } from "../../src/config/load.ts";
import { EICAR_TEXT, renderTrialClamdConf, TRIAL_SIGNATURE } from "../../src/setup/trial.ts";
import { run, SETUP_ENTRY, snapshot, tempDir } from "./helpers.ts";
import { scanByPath } from "../fixtures/multiplexer.ts";

let cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** Stops the clamd whose PID file we were told about (it daemonized: this test started it). */
async function stopByPidFile(pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!(pid > 1)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await Bun.sleep(50);
  }
  process.kill(pid, "SIGKILL");
}

/** Private trial paths under a fresh directory; the clamd the test makes setup start is stopped afterwards. */
function trialPlace() {
  const t = tempDir("trial");
  cleanups.push(t.dispose);
  chmodSync(t.path, 0o755); // clamd, once it is user clamav, must reach the database
  const p = {
    root: t.path,
    db: join(t.path, "trial-db"),
    config: join(t.path, "etc/trial-clamd.conf"),
    socket: join(t.path, "run/trial-clamd.sock"),
    onaccConf: join(t.path, "etc/onacc.conf"),
    systemdDir: join(t.path, "systemd"),
    protect: join(t.path, "srv"),
  };
  mkdirSync(p.protect);
  cleanups.push(() => stopByPidFile(join(t.path, "run/trial-clamd.pid")));
  return p;
}

type Place = ReturnType<typeof trialPlace>;

function trialArgs(p: Place): string[] {
  return ["--trial", "--trial-db", p.db, "--trial-config", p.config, "--trial-socket", p.socket, "--config", p.onaccConf, "--systemd-dir", p.systemdDir];
}

describe("onacc setup --trial", () => {
  test("setup --trial --yes starts a real clamd with an EICAR-only database and waits until it answers; a second run changes nothing", async () => {
    const p = trialPlace();
    const r = await run(["bun", SETUP_ENTRY, ...trialArgs(p), "--yes"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Wrote the trial database ${p.db}`);
    expect(r.stdout).toMatch(new RegExp(`The trial clamd \\(ClamAV [^,]+, EICAR test signature only\\) is running at ${p.socket}`));
    // No systemd here: setup says how to start it again after a reboot.
    expect(r.stdout).toContain(`-c ${p.config}`);
    expect(r.stdout).toContain("Protect a directory with it: onacc setup");
    expect(statSync(p.config).mode & 0o777).toBe(0o644);
    expect(readFileSync(p.config, "utf8")).toContain(`DatabaseDirectory ${p.db}`);

    // It is running now, without anyone else starting it.
    const client = new ClamdClient({ endpoint: { kind: "unix", path: p.socket }, timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 });
    const eicar = join(p.root, "eicar.txt");
    writeFileSync(eicar, EICAR_TEXT, "latin1");
    expect(scanByPath(client, eicar)).toMatchObject({ ok: true, verdict: { kind: "infected", signatures: [`${TRIAL_SIGNATURE}.UNOFFICIAL`] } });
    const clean = join(p.root, "clean.txt");
    writeFileSync(clean, "just text\n");
    expect(scanByPath(client, clean)).toMatchObject({ ok: true, verdict: { kind: "clean" } });

    const pid = readFileSync(join(p.root, "run/trial-clamd.pid"), "utf8");
    const before = snapshot(p.root);
    const again = await run(["bun", SETUP_ENTRY, ...trialArgs(p), "--yes"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`was already running at ${p.socket}`);
    expect(again.stdout).not.toContain("Wrote");
    expect(snapshot(p.root)).toEqual(before);
    expect(readFileSync(join(p.root, "run/trial-clamd.pid"), "utf8")).toBe(pid);
  }, 90000);

  test("setup --trial --yes --protect DIR configures onacc against the trial clamd and ends with how to see EICAR blocked and how to switch", async () => {
    const p = trialPlace();
    const r = await run(["bun", SETUP_ENTRY, ...trialArgs(p), "--yes", "--protect", p.protect, "--no-service"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const { config } = loadConfig(p.onaccConf);
    expect(config.endpoints).toEqual([{ kind: "unix", path: p.socket }]);
    expect(config.onAccess.includePaths).toEqual([p.protect]);
    expect(config.onAccess.prevention).toBe(true);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.slice(-5).join("\n")).toContain(`printf '%s' '${EICAR_TEXT}' > ${p.protect}/eicar.com; cat ${p.protect}/eicar.com`);
    expect(lines.slice(-3).join("\n")).toContain("systemctl enable --now clamav-daemon");
    expect(lines.at(-1)).toContain("systemctl disable --now onacc-trial-clamd.service");
  }, 90000);

  test("setup --trial keeps an existing trial configuration unless --force", async () => {
    const p = trialPlace();
    mkdirSync(join(p.root, "etc"));
    const mine = `# mine\n${renderTrialClamdConf({ database: p.db, config: p.config, socket: p.socket }, "clamav")}`;
    writeFileSync(p.config, mine);
    const kept = await run(["bun", SETUP_ENTRY, ...trialArgs(p), "--yes"]);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain(`Kept the existing ${p.config} (--force replaces it)`);
    expect(readFileSync(p.config, "utf8")).toBe(mine);
    const forced = await run(["bun", SETUP_ENTRY, ...trialArgs(p), "--yes", "--force"]);
    expect(forced.code).toBe(0);
    expect(readFileSync(p.config, "utf8")).not.toContain("# mine");
  }, 90000);

  test("setup --yes names a host clamd without a signature database as such, with how to get one, without asking it", async () => {
    const t = tempDir("nodb");
    cleanups.push(t.dispose);
    mkdirSync(join(t.path, "db"));
    mkdirSync(join(t.path, "srv"));
    const clamdConf = join(t.path, "clamd.conf");
    // A socket that is never answered: asking it would hang until the probe's timeout.
    writeFileSync(clamdConf, `LocalSocket ${join(t.path, "clamd.ctl")}\nDatabaseDirectory ${join(t.path, "db")}\n`);
    const started = Date.now();
    const r = await run(["bun", SETUP_ENTRY, "--yes", "--clamd-conf", clamdConf, "--protect", join(t.path, "srv"), "--config", join(t.path, "onacc.conf"), "--trial-config", join(t.path, "none.conf")]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`clamd has no signature database in ${join(t.path, "db")} (${clamdConf}), so it cannot start: get one with freshclam`);
    expect(r.stderr).toContain("onacc setup --trial");
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test("the trial signature is the real EICAR test file (68 bytes), as every scanner knows it", () => {
    expect(EICAR_TEXT).toHaveLength(68);
    expect(new Bun.CryptoHasher("md5").update(EICAR_TEXT, "latin1").digest("hex")).toBe("44d88612fea8a8f36de82e1278abb02f");
  });
});
