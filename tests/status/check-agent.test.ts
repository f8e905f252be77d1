// `onacc status --check` against dist/onacc, a real clamd and real fanotify: it passes with a working
// agent and leaves nothing behind (no test file, nothing in the quarantine, no FOUND line); it fails,
// naming the path, when prevention is off, when the agent is stopped, when clamd is down. And an attacker
// who names a file like a test file gains nothing: it is denied, logged FOUND and quarantined.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { asAttacker, run } from "../security/helpers.ts";
import { queryStatus } from "../../src/status/client.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;
let quarantine = "";

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
});

/** Two protected trees (the second world-writable, like an upload folder), an agent with --move. */
async function withAgent(config: string[], body: (trees: string[]) => Promise<void>) {
  const base = join(mount.path, `case-${Math.random().toString(36).slice(2)}`);
  const trees = [join(base, "a"), join(base, "uploads")];
  for (const t of trees) mkdirSync(t, { recursive: true });
  chmodSync(trees[1]!, 0o1777);
  quarantine = mkdtempSync("/tmp/onacc-quarantine-");
  agent = await startAgent({
    clamd,
    config: [...trees.map((t) => `OnAccessIncludePath ${t}`), ...config],
    args: ["--foreground", "--verbose", "--config-file=CONFIG", "--log=LOG", `--move=${quarantine}`],
  });
  try {
    await body(trees);
  } finally {
    await disposeAgent(agent);
    agent = undefined;
    rmSync(quarantine, { recursive: true, force: true });
  }
}

function check(a: RunningAgent, ...extra: string[]): { code: number | null; out: string } {
  const r = Bun.spawnSync([BINARY, "status", "--check", `--status-socket=${a.statusSocket}`, ...extra], { timeout: 60_000 });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

/** Everything in the quarantine, its vault records included. */
function quarantined(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : out.push(join(d, e.name));
  };
  if (existsSync(quarantine)) walk(quarantine);
  return out;
}

/** A check's first steps done by hand, as --check does them: begin, create the test file, register it, fill it. */
async function checkByHand(a: RunningAgent, tree: string): Promise<{ nonce: string; probeName: string; probe: string }> {
  const begin = await queryStatus(a.statusSocket, { cmd: "selftest-begin" });
  if (!begin.ok || !("selfTest" in begin)) throw new Error("no self-test");
  const { nonce, probeName } = begin.selfTest;
  const probe = join(tree, probeName);
  const fd = openSync(probe, "wx", 0o600);
  expect(await queryStatus(a.statusSocket, { cmd: "selftest-probe", nonce, path: probe })).toEqual({ ok: true, registered: probe });
  writeSync(fd, EICAR);
  closeSync(fd);
  return { nonce, probeName, probe };
}

const leftovers = (trees: string[]) => trees.flatMap((t) => readdirSync(t).filter((n) => n.startsWith(".onacc-selftest-")));

describe("onacc status --check", () => {
  test("passes with a working agent, in every tree, and leaves nothing behind: no file, no quarantine, no FOUND line", async () => {
    await withAgent(["OnAccessPrevention yes", "OnAccessExtraScanning yes"], async (trees) => {
      const r = check(agent!);
      expect(r.out).toContain(`ok   ${trees[0]}: blocked: an infected test file was detected and its open denied`);
      expect(r.out).toContain(`ok   ${trees[1]}: blocked`);
      expect(r.out).toMatch(/^ok {3}clamd unix:.*: up$/m);
      expect(r.out).toEndWith("onacc check passed\n");
      expect(r.code).toBe(0);
      await Bun.sleep(500); // an extra scan of the written file may still be under way
      expect(leftovers(trees)).toEqual([]);
      expect(quarantined()).toEqual([]);
      expect(agent!.log()).not.toContain("FOUND");
      expect(agent!.log()).toMatch(/self-test: .*\.onacc-selftest-[0-9a-f]{32}: the registered test file was detected/);
      // Infected counters stay for real detections.
      const s = JSON.parse(Bun.spawnSync([BINARY, "status", "--json", `--status-socket=${agent!.statusSocket}`]).stdout.toString());
      expect(s.scans.infected).toBe(0);
    });
  });

  test("fails, naming the test file's path, when prevention is off; still leaves nothing behind", async () => {
    await withAgent([], async (trees) => {
      const r = check(agent!, "--json");
      expect(r.code).toBe(1);
      const result = JSON.parse(r.out);
      expect(result.ok).toBe(false);
      const tree = result.findings.find((f: { subject: string }) => f.subject === trees[0]);
      expect(tree.ok).toBe(false);
      expect(tree.message).toMatch(new RegExp(`^${trees[0]}/\\.onacc-selftest-[0-9a-f]{32}: NOT BLOCKED: the test file was opened \\(OnAccessPrevention is off`));
      await Bun.sleep(1500); // notification-mode scans run after the open
      expect(leftovers(trees)).toEqual([]);
      expect(quarantined()).toEqual([]);
      expect(agent!.log()).not.toContain("FOUND");
    });
  });

  test("fails when the agent is stopped, naming the configured trees", async () => {
    await withAgent(["OnAccessPrevention yes"], async (trees) => {
      const socket = agent!.statusSocket;
      const configFile = agent!.configFile;
      await agent!.stop();
      const r = Bun.spawnSync([BINARY, "status", "--check", `--status-socket=${socket}`, `--config-file=${configFile}`], { timeout: 60_000 });
      const out = r.stdout.toString();
      expect(r.exitCode).toBe(1);
      expect(out).toContain(`FAIL onacc: not answering: Cannot read onacc's status from "${socket}"`);
      expect(out).toContain(`FAIL ${trees[0]}: not protected: onacc does not answer`);
      expect(out).toContain(`FAIL ${trees[1]}: not protected: onacc does not answer`);
      expect(leftovers(trees)).toEqual([]);
    });
  });

  test("fails when clamd is down, even though the error policy denies the open", async () => {
    await withAgent(["OnAccessPrevention yes", "OnAccessDenyOnError yes", "OnAccessCurlTimeout 1000"], async (trees) => {
      await clamd.stop();
      try {
        const r = check(agent!);
        expect(r.code).toBe(1);
        // Denied, but by the error policy, not by a detection: the check must not take that for protection.
        for (const tree of trees) {
          expect(r.out).toMatch(new RegExp(`^FAIL ${tree}: ${tree}/\\.onacc-selftest-[0-9a-f]{32}: the open was denied, but not because onacc found the test file .*is clamd answering\\?\\)$`, "m"));
        }
        expect(leftovers(trees)).toEqual([]);
      } finally {
        await clamd.restart();
      }
    });
  });
});

describe("onacc status --check and a reload", () => {
  test("a check under way when the configuration is reloaded still leaves no FOUND line and nothing in the quarantine", async () => {
    await withAgent(["OnAccessPrevention yes"], async (trees) => {
      const { nonce, probe } = await checkByHand(agent!, trees[0]!);
      agent!.signal("SIGHUP");
      await agent!.waitFor(/configuration reloaded \(SIGHUP\)/);
      // The new engine scans the open, and knows the test file.
      expect(run(["cat", probe]).stderr).toMatch(/Operation not permitted/);
      expect(await queryStatus(agent!.statusSocket, { cmd: "selftest-end", nonce })).toEqual({ ok: true, probes: [{ path: probe, detections: 1, removed: true }] });
      await agent!.waitFor(/self-test: .*: the registered test file was detected/);
      expect(agent!.log()).not.toContain("FOUND");
      expect(quarantined()).toEqual([]);
      // And a whole check after the reload passes.
      const r = check(agent!);
      expect(r.code).toBe(0);
      expect(leftovers(trees)).toEqual([]);
    });
  });
});

describe("attacks on the self-test", () => {
  test("a file an attacker names like this check's test file is denied, logged FOUND and quarantined", async () => {
    await withAgent(["OnAccessPrevention yes"], async (trees) => {
      // The attacker learns a check's nonce (say, from the upload folder's listing) and uses it: a file of
      // their own with the test file's very name, while the check runs, then again after it ended.
      const { nonce, probeName, probe } = await checkByHand(agent!, trees[0]!);

      const fake = join(trees[1]!, probeName);
      expect(run(asAttacker(["sh", "-c", `printf '%s' '${EICAR.toString("latin1").replace(/'/g, "'\\''")}' > '${fake}'`])).code).toBe(0);
      expect(run(asAttacker(["cat", fake])).stderr).toMatch(/Operation not permitted/);
      await agent!.waitFor(`${fake}: Onacc.Test.EICAR.UNOFFICIAL FOUND`);
      await agent!.waitFor(/moved to/);
      expect(existsSync(fake)).toBe(false);

      // Once the check ended (its file removed by the agent), the same name in the same tree is an ordinary file.
      expect(await queryStatus(agent!.statusSocket, { cmd: "selftest-end", nonce })).toEqual({ ok: true, probes: [{ path: probe, detections: 0, removed: true }] });
      chmodSync(trees[0]!, 0o1777);
      expect(run(asAttacker(["sh", "-c", `printf '%s' '${EICAR.toString("latin1").replace(/'/g, "'\\''")}' > '${probe}'`])).code).toBe(0);
      expect(run(asAttacker(["cat", probe])).stderr).toMatch(/Operation not permitted/);
      await agent!.waitFor(`${probe}: Onacc.Test.EICAR.UNOFFICIAL FOUND`);
      await agent!.waitFor(/moved to[^\n]*\n[^]*moved to/);
      expect(quarantined().filter((p) => !p.includes(".onacc-vault")).length).toBe(2);
    });
  });

  test("the attacker cannot register a file of their own: not over the root-only socket, and the agent refuses one it did not see created empty by root", async () => {
    await withAgent(["OnAccessPrevention yes"], async (trees) => {
      const r = run(asAttacker([BINARY, "status", "--check", `--status-socket=${agent!.statusSocket}`]));
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAIL onacc: not answering: .*(permission denied|EACCES)/i);
      const begin = await queryStatus(agent!.statusSocket, { cmd: "selftest-begin" });
      if (!begin.ok || !("selfTest" in begin)) throw new Error("no self-test");
      const path = join(trees[1]!, begin.selfTest.probeName);
      expect(run(asAttacker(["sh", "-c", `: > '${path}'; chmod 600 '${path}'`])).code).toBe(0);
      const reply = await queryStatus(agent!.statusSocket, { cmd: "selftest-probe", nonce: begin.selfTest.nonce, path });
      expect(reply).toEqual({ ok: false, error: `"selftest-probe" failed: "${path}" is not a freshly created test file (an empty regular file, owned by root, mode 0600, one link)` });
      writeFileSync(path, EICAR);
      expect(run(asAttacker(["cat", path])).stderr).toMatch(/Operation not permitted/);
      await agent!.waitFor(`${path}: Onacc.Test.EICAR.UNOFFICIAL FOUND`);
      await queryStatus(agent!.statusSocket, { cmd: "selftest-end", nonce: begin.selfTest.nonce });
    });
  });
});
