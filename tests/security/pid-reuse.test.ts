// Attack: taking over a PID that onacc trusts. clamd's own opens are never scanned (clamd must not wait on
// onacc), and excluded users' opens are not either. When that process ends, its PID is free: a local user
// who gets it next must be scanned like anyone else.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { asAttacker, run, runWithPid } from "./helpers.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
});

const denied = (r: { code: number | null; stderr: string } | undefined) => r !== undefined && r.code !== 0 && /Operation not permitted/.test(r.stderr);

describe("a PID onacc trusted, reused by another process", () => {
  test("clamd's old PID is not excluded once clamd has stopped, nor after it restarted elsewhere", async () => {
    const dir = join(mount.path, "clamd-pid");
    mkdirSync(dir);
    const t = writeTestFiles(dir);
    // DenyOnError: with clamd down, an open that is scanned is denied; one that is excluded is allowed.
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessDenyOnError yes"] });
    let stopped = false;
    try {
      const oldPid = clamd.pid;
      await agent.waitFor(new RegExp(`clamd pid ${oldPid} excluded`));
      await clamd.stop();
      stopped = true;
      const whileDown = runWithPid(oldPid, asAttacker(["cat", t.eicar]));
      expect(whileDown).toBeDefined();
      expect(denied(whileDown)).toBe(true);
      await clamd.restart();
      stopped = false;
      expect(clamd.pid).not.toBe(oldPid);
      const afterRestart = runWithPid(oldPid, asAttacker(["cat", t.eicar]));
      expect(denied(afterRestart)).toBe(true);
      expect(openInChild(t.clean)).toMatchObject({ ok: true });
    } finally {
      await disposeAgent(agent);
      agent = undefined;
      if (stopped) await clamd.restart();
    }
  });

  test("an excluded user's PID, taken over right after that user's process ended, is scanned", async () => {
    const dir = join(mount.path, "uid-pid");
    mkdirSync(dir);
    const t = writeTestFiles(dir);
    // uid 1 (daemon) is excluded; the attacker is not.
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessExcludeUID 1"] });
    try {
      for (let round = 0; round < 3; round++) {
        // The excluded user opens a file (its open is skipped, and onacc learns its uid)…
        const excluded = Bun.spawnSync(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", "sh", "-c", `cat '${t.clean}' >/dev/null; echo $$`], { stdout: "pipe" });
        const pid = Number(excluded.stdout.toString().trim());
        expect(pid).toBeGreaterThan(0);
        // …and at once the attacker runs on the same PID.
        const r = runWithPid(pid, asAttacker(["cat", t.eicar]));
        expect(r).toBeDefined();
        expect(denied(r)).toBe(true);
      }
      expect(run(["true"]).code).toBe(0);
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});

describe("a process posing as clamd on its loopback TCP port", () => {
  // While clamd is down its port is free, and any user may listen on a port above 1023.
  const POSER = `
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); s.settimeout(0.2)
end = time.time() + 4
while time.time() < end:
    try:
        c, _ = s.accept(); c.settimeout(0.5)
        try:
            c.recv(64); c.sendall(b"ClamAV 1.4.6\\x00")
        except OSError:
            pass
        c.close()
    except socket.timeout:
        pass
try:
    open(sys.argv[2], "rb").read(); print("read")
except PermissionError:
    print("denied")
`;

  test("is not taken for clamd: its own opens are scanned", async () => {
    const dir = join(mount.path, "poser");
    mkdirSync(dir);
    const t = writeTestFiles(dir);
    agent = await startAgent({ clamd, tcp: true, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessDenyOnError yes"] });
    let stopped = false;
    try {
      await clamd.stop();
      stopped = true;
      const r = run(asAttacker(["/usr/bin/python3", "-c", POSER, String(clamd.port), t.eicar]), 20_000);
      expect(r.stdout.trim()).toBe("denied");
    } finally {
      await disposeAgent(agent);
      agent = undefined;
      if (stopped) await clamd.restart();
    }
  });
});
