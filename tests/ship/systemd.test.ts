// onacc under a real systemd: this host booted in a systemd-nspawn container, where the one-command install
// (`install.sh --from-source --trial -- --yes --protect DIR`) must end with a protecting agent, and the unit's
// promises hold: Type=notify, reload, a quick stop that answers every pending open, the watchdog, Restart=,
// the sandbox, and the order against the trial clamd. The protected directory is a tmpfs mounted inside.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EICAR_TEXT } from "../../src/setup/trial.ts";
import { Container, containerUnavailable } from "./container.ts";

const DIR = "/srv/onacc-test";
const INSTALL = `cd /src && sh ./install.sh --from-source --trial -- --yes --protect ${DIR}`;
// Bits of CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2), CAP_FOWNER (3), CAP_SYS_ADMIN (21) and CAP_LEASE (28).
const UNIT_CAPABILITIES = "000000001020000e";

const unavailable = containerUnavailable();
if (unavailable !== undefined) console.log(`SKIPPED tests/ship/systemd.test.ts: ${unavailable}`);

let c: Container;

beforeAll(async () => {
  if (unavailable !== undefined) return;
  c = await Container.boot();
  await c.sh(`mkdir -p ${DIR} && mount -t tmpfs -o size=16m,mode=0755 onacc-test ${DIR}`);
}, 90000);

afterAll(async () => {
  await c?.dispose();
}, 30000);

/** `systemctl show UNIT` properties as a map. */
async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = await c.sh(`systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(" ")}`);
  return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** Writes the EICAR test file into `dir` and opens it again: the result of that second open. */
async function openEicar(name = "eicar.com"): Promise<{ code: number; stderr: string }> {
  const file = `${DIR}/${name}`;
  const r = await c.exec(`printf '%s' '${EICAR_TEXT}' > ${file} && cat ${file} > /dev/null`);
  return { code: r.code, stderr: r.stderr };
}

async function expectEicarDenied(name?: string): Promise<void> {
  const r = await openEicar(name);
  expect(r.stderr).toContain("Operation not permitted");
  expect(r.code).toBe(1);
}

/** Waits until `check` holds (polling every 100 ms) or throws after `timeoutMs`, naming `what`. */
async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe.skipIf(unavailable !== undefined)("onacc under systemd (systemd-nspawn container)", () => {
  test("without --trial, a clamd without a signature database is named as such, with how to get one", async () => {
    const r = await c.exec(`cd /src && sh ./install.sh --from-source -- --yes --protect ${DIR} 2>&1`, { timeoutMs: 120000 });
    expect(r.stdout).toContain("onacc-install: warning: clamd has no signature database in /var/lib/clamav");
    expect(r.stdout).toContain("get one with: freshclam");
    expect(r.stdout).toContain("run this installer again with --trial");
    // onacc setup refuses to write a configuration for a clamd that cannot run, and says why.
    expect(r.stdout).toContain("clamd has no signature database in /var/lib/clamav");
    expect(r.code).toBe(3);
    expect((await c.exec("systemctl is-active onacc.service")).stdout.trim()).toBe("inactive");
    expect((await c.exec("test -e /etc/onacc/onacc.conf")).code).not.toBe(0);
  }, 180000);

  test("install.sh --from-source --trial -- --yes --protect DIR ends with the agent protecting DIR against the trial clamd", async () => {
    const r = await c.exec(`${INSTALL} 2>&1`, { timeoutMs: 120000 });
    expect({ code: r.code, out: r.stdout }).toMatchObject({ code: 0 });
    const lines = r.stdout.trimEnd().split("\n");
    // A host clamd without a database: install.sh says the trial clamd stands in.
    expect(r.stdout).toContain("clamd has no signature database in /var/lib/clamav: onacc uses the trial clamd (--trial) instead");
    expect(r.stdout).not.toContain("warning");
    expect(r.stdout).toContain("onacc-trial-clamd.service, started at boot");
    expect(r.stdout).toContain("onacc is enabled and running");
    // The last lines: how to see EICAR blocked, how to switch to the real clamd.
    expect(lines.slice(-5).join("\n")).toContain(`cat ${DIR}/eicar.com`);
    expect(lines.at(-1)).toContain("systemctl disable --now onacc-trial-clamd.service");

    expect((await c.exec("systemctl is-active onacc.service onacc-trial-clamd.service")).stdout.split("\n").slice(0, 2)).toEqual(["active", "active"]);
    expect((await c.exec("systemctl is-enabled onacc.service onacc-trial-clamd.service")).stdout.split("\n").slice(0, 2)).toEqual(["enabled", "enabled"]);
    await expectEicarDenied();
    const clean = await c.exec(`printf 'hello\\n' > ${DIR}/clean.txt && cat ${DIR}/clean.txt`);
    expect(clean).toEqual({ code: 0, stdout: "hello\n", stderr: "" });
    expect(await c.sh("grep -c 'eicar.com: Onacc.Trial.EICAR.UNOFFICIAL FOUND' /var/log/onacc/onacc.log")).not.toBe("0\n");
  }, 180000);

  test("running the same install again changes no file and restarts nothing", async () => {
    const state = `find /etc/onacc /etc/systemd/system /usr/local/bin/onacc /var/lib/onacc -xdev -printf '%p %y %m %s %T@ %l\\n' | sort; sha256sum /usr/local/bin/onacc /etc/onacc/* /var/lib/onacc/trial-db/*`;
    const before = await c.sh(state);
    const pids = [await show("onacc", "MainPID", "NRestarts"), await show("onacc-trial-clamd", "MainPID")];
    const r = await c.exec(`${INSTALL} 2>&1`, { timeoutMs: 120000 });
    expect({ code: r.code, out: r.stdout }).toMatchObject({ code: 0 });
    expect(r.stdout).toContain("is already this version");
    expect(r.stdout).toContain("keeping the existing configuration /etc/onacc/onacc.conf");
    expect(r.stdout).toContain("was already running");
    expect(await c.sh(state)).toBe(before);
    expect([await show("onacc", "MainPID", "NRestarts"), await show("onacc-trial-clamd", "MainPID")]).toEqual(pids);
  }, 180000);

  test("systemctl restart returns only once the marks are placed (Type=notify): the very next open of EICAR is denied", async () => {
    expect((await show("onacc", "Type")).Type).toBe("notify");
    for (let i = 0; i < 3; i++) {
      await c.sh("systemctl restart onacc");
      await expectEicarDenied(`eicar-${i}.com`);
    }
  }, 60000);

  test("systemctl reload (SIGHUP) reopens the log file without restarting the agent", async () => {
    const { MainPID } = await show("onacc", "MainPID");
    await c.sh("mv /var/log/onacc/onacc.log /var/log/onacc/onacc.log.1 && systemctl reload onacc");
    await until("onacc to reopen its log", 5000, async () => (await c.exec("test -e /var/log/onacc/onacc.log")).code === 0);
    await expectEicarDenied("after-reload.com");
    expect(await c.sh("cat /var/log/onacc/onacc.log")).toContain("after-reload.com: Onacc.Trial.EICAR.UNOFFICIAL FOUND");
    expect((await show("onacc", "MainPID")).MainPID).toBe(MainPID);
  }, 60000);

  test("inside the sandbox (ProtectSystem=strict, five capabilities) fanotify, the quarantine, the log and the status socket work", async () => {
    // setup offers the trial clamd by itself (no --clamd): it is the one clamd that answers.
    const setup = await c.exec(`onacc setup --yes --force --protect ${DIR} --action move 2>&1`, { timeoutMs: 60000 });
    expect({ code: setup.code, out: setup.stdout }).toMatchObject({ code: 0 });
    expect(await c.sh("cat /etc/systemd/system/onacc.service.d/setup.conf")).toContain("After=onacc-trial-clamd.service");
    const { MainPID } = await show("onacc", "MainPID");
    const caps = await c.sh(`grep -E '^Cap(Bnd|Eff)' /proc/${MainPID}/status`);
    expect(caps).toBe(`CapEff:\t${UNIT_CAPABILITIES}\nCapBnd:\t${UNIT_CAPABILITIES}\n`);
    expect(await c.sh(`readlink /proc/${MainPID}/ns/mnt`)).not.toBe(await c.sh("readlink /proc/1/ns/mnt"));

    await expectEicarDenied("quarantined.com");
    await until("the infected file to be moved out", 5000, async () => (await c.exec(`test -e ${DIR}/quarantined.com`)).code !== 0);
    expect(await c.sh("stat -c '%a %s' /var/lib/onacc/quarantine/quarantined.com")).toBe("400 68\n");
    expect(await c.sh("cat /var/log/onacc/onacc.log")).toContain("quarantined.com: Onacc.Trial.EICAR.UNOFFICIAL FOUND");

    const status = JSON.parse(await c.sh("onacc status --json")) as Record<string, unknown>;
    expect(JSON.stringify(status)).toContain("onacc-trial");

    // A clean file another user owns is cached under the sandbox too: the writer probe before caching takes
    // a read lease, which needs CAP_LEASE for files of other owners (without it nothing would be cached).
    await c.sh(`printf 'harmless\n' > ${DIR}/users-file.txt && chown 65534:65534 ${DIR}/users-file.txt && sleep 0.2`);
    const hits = async () => (JSON.parse(await c.sh("onacc status --json")) as { cache: { hits: number } }).cache.hits;
    await c.sh(`cat ${DIR}/users-file.txt >/dev/null`);
    const before = await hits();
    await c.sh(`cat ${DIR}/users-file.txt >/dev/null`);
    expect(await hits()).toBe(before + 1);
  }, 90000);

  test("systemctl stop takes under 2 s and answers every open still waiting for a verdict", async () => {
    for (let i = 0; i < 3; i++) await c.sh(`printf 'pending %s\\n' ${i} > ${DIR}/pending-${i}.txt`);
    const clamd = (await show("onacc-trial-clamd", "MainPID")).MainPID;
    // A clamd that accepts and never answers: each open below waits for onacc's verdict.
    await c.sh(`kill -STOP ${clamd}`);
    try {
      let answered = 0;
      const opens = c.exec(`for i in 0 1 2; do cat ${DIR}/pending-$i.txt > /dev/null & done; wait`, { timeoutMs: 30000 }).then((r) => {
        answered = Date.now();
        return r;
      });
      await Bun.sleep(700);
      expect(answered).toBe(0); // still waiting: the opens are pending in onacc
      const started = Date.now();
      await c.sh("systemctl stop onacc");
      const stopMs = Date.now() - started;
      const r = await opens;
      expect(r.code).toBe(0); // answered "allow" (OnAccessDenyOnError is off), not left hanging
      expect(stopMs).toBeLessThan(2000);
      expect(answered - started).toBeLessThan(2000);
    } finally {
      await c.sh(`kill -CONT ${clamd}`);
    }
    await c.sh("systemctl start onacc");
    await expectEicarDenied("after-stop.com");
  }, 60000);

  test("onacc is ordered after the trial clamd, and keeps running (and protecting) while that clamd restarts", async () => {
    const props = await show("onacc", "After", "Wants");
    expect(props.After).toContain("onacc-trial-clamd.service");
    expect(props.Wants).toContain("onacc-trial-clamd.service");
    // Both stopped, then only onacc asked for: it pulls clamd in and starts once clamd answers.
    await c.sh("systemctl stop onacc onacc-trial-clamd && systemctl start onacc");
    const clamd = await show("onacc-trial-clamd", "ActiveState", "ActiveEnterTimestampMonotonic");
    const onacc = await show("onacc", "ActiveState", "ExecMainStartTimestampMonotonic", "MainPID");
    expect([clamd.ActiveState, onacc.ActiveState]).toEqual(["active", "active"]);
    expect(Number(onacc.ExecMainStartTimestampMonotonic)).toBeGreaterThan(Number(clamd.ActiveEnterTimestampMonotonic));

    await c.sh("systemctl restart onacc-trial-clamd");
    expect(await show("onacc", "ActiveState", "MainPID")).toEqual({ ActiveState: "active", MainPID: onacc.MainPID! });
    await expectEicarDenied("after-clamd-restart.com");
  }, 90000);

  test("the watchdog restarts an agent that stops answering (SIGSTOP), and Restart= brings back one that crashed", async () => {
    // The unit's 30 s watchdog, shortened for the test only.
    await c.sh(
      "mkdir -p /etc/systemd/system/onacc.service.d && printf '[Service]\\nWatchdogSec=3s\\nTimeoutAbortSec=2s\\nRestartSec=500ms\\n' > /etc/systemd/system/onacc.service.d/zz-test.conf && systemctl daemon-reload && systemctl restart onacc",
    );
    const first = await show("onacc", "MainPID", "NRestarts");
    await c.sh(`kill -STOP ${first.MainPID}`);
    await until("systemd to replace the stopped agent", 20000, async () => {
      const now = await show("onacc", "MainPID", "ActiveState");
      return now.ActiveState === "active" && now.MainPID !== first.MainPID && now.MainPID !== "0";
    });
    const second = await show("onacc", "MainPID", "NRestarts", "Result");
    expect(Number(second.NRestarts)).toBe(Number(first.NRestarts) + 1);
    expect((await c.exec(`kill -0 ${first.MainPID}`)).code).not.toBe(0);
    expect(await c.sh("journalctl -u onacc --no-pager -q | grep -c 'Watchdog timeout'")).not.toBe("0\n");
    await expectEicarDenied("after-watchdog.com");

    await c.sh(`kill -SEGV ${second.MainPID}`);
    await until("systemd to restart the crashed agent", 20000, async () => {
      const now = await show("onacc", "MainPID", "ActiveState");
      return now.ActiveState === "active" && now.MainPID !== second.MainPID && now.MainPID !== "0";
    });
    expect(Number((await show("onacc", "NRestarts")).NRestarts)).toBe(Number(second.NRestarts) + 1);
    await expectEicarDenied("after-crash.com");
    await c.sh("rm /etc/systemd/system/onacc.service.d/zz-test.conf && systemctl daemon-reload");
  }, 90000);

  test("install.sh --uninstall stops and removes both units and the binary", async () => {
    const r = await c.exec("sh /src/install.sh --uninstall 2>&1");
    expect({ code: r.code, out: r.stdout }).toMatchObject({ code: 0 });
    expect((await c.exec("systemctl is-active onacc.service onacc-trial-clamd.service")).stdout.split("\n").slice(0, 2)).toEqual(["inactive", "inactive"]);
    expect((await c.exec("ls /usr/local/bin/onacc /etc/systemd/system/onacc.service /etc/systemd/system/onacc-trial-clamd.service")).code).not.toBe(0);
    // Unprotected again: EICAR opens.
    expect(await openEicar("after-uninstall.com")).toEqual({ code: 0, stderr: "" });
  }, 60000);
});
