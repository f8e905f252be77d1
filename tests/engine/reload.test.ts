// Live reload (SIGHUP, `systemctl reload`): the configuration is read again and checked completely first; a
// good one takes effect without a moment unprotected (the new marks are placed before the old ones go),
// a bad one is refused and the running configuration stays in force.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

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

let n = 0;
function dirs(count: number) {
  return Array.from({ length: count }, () => {
    const d = join(mount.path, `reload-${n++}`);
    mkdirSync(d);
    return { dir: d, t: writeTestFiles(d) };
  });
}

/** Replaces the agent's config lines after the fixture's own (socket, User). */
function rewrite(a: RunningAgent, lines: string[]) {
  const head = readFileSync(a.configFile, "utf8").split("\n").filter((l) => /^(LocalSocket|TCPSocket|TCPAddr|User) /.test(l));
  writeFileSync(a.configFile, [...head, ...lines].join("\n") + "\n");
}

async function reloaded(a: RunningAgent, count: number, pattern = /configuration reloaded \(SIGHUP\)/g) {
  const deadline = Date.now() + 15_000;
  while (a.output().match(pattern)?.length !== count) {
    if (Date.now() > deadline) throw new Error(`no reload line:\n${a.output()}`);
    await Bun.sleep(20);
  }
}

describe("reload (SIGHUP)", () => {
  test("a new include path is protected and a dropped one is not, after the reload", async () => {
    const [a, b] = dirs(2);
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${a!.dir}`, "OnAccessPrevention yes"] });
    try {
      expect(openInChild(b!.t.eicar)).toMatchObject({ ok: true });
      rewrite(agent, [`OnAccessIncludePath ${b!.dir}`, "OnAccessPrevention yes"]);
      agent.signal("SIGHUP");
      await reloaded(agent, 1);
      expect(openInChild(b!.t.eicar).error).toBe("EPERM");
      expect(openInChild(a!.t.eicar)).toMatchObject({ ok: true });
      expect(openInChild(b!.t.clean)).toMatchObject({ ok: true });
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });

  test("a bad configuration is refused, naming the line, and protection goes on unchanged", async () => {
    const [a, b] = dirs(2);
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${a!.dir}`, "OnAccessPrevention yes"] });
    try {
      rewrite(agent, [`OnAccessIncludePath ${b!.dir}`, "OnAccessPrevention yes", "OnAccessMaxFileSise 5M"]);
      agent.signal("SIGHUP");
      await reloaded(agent, 1, /reload \(SIGHUP\) refused.*OnAccessMaxFileSise/g);
      expect(openInChild(a!.t.eicar).error).toBe("EPERM");
      expect(openInChild(b!.t.eicar)).toMatchObject({ ok: true });
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });

  test("no open slips through while the engine is replaced", async () => {
    const [a, b] = dirs(2);
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${a!.dir}`, "OnAccessPrevention yes"] });
    // Opens EICAR again and again while the agent reloads three times.
    const loop = Bun.spawn(["/usr/bin/python3", "-c", `
import sys, time
served = denied = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        open(sys.argv[1], "rb").read(); served += 1
    except PermissionError:
        denied += 1
print(served, denied)`, a!.t.eicar, "4"], { stdout: "pipe" });
    try {
      for (let i = 1; i <= 3; i++) {
        rewrite(agent, [`OnAccessIncludePath ${a!.dir}`, `OnAccessIncludePath ${i % 2 ? b!.dir : a!.dir}`, "OnAccessPrevention yes"]);
        agent.signal("SIGHUP");
        await reloaded(agent, i);
      }
      const [served, denied] = (await new Response(loop.stdout).text()).trim().split(" ").map(Number);
      expect(denied).toBeGreaterThan(10);
      expect(served).toBe(0);
    } finally {
      loop.kill();
      await disposeAgent(agent);
      agent = undefined;
    }
  });

  test("onacc reload says whether the configuration took, and onacc status shows the last reload", async () => {
    const [a, b] = dirs(2);
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${a!.dir}`, "OnAccessPrevention yes"] });
    try {
      const reload = () => Bun.spawnSync([BINARY, "reload", `--status-socket=${agent!.statusSocket}`], { timeout: 30_000 });
      rewrite(agent, [`OnAccessIncludePath ${b!.dir}`, "OnAccessPrevention yes", "OnAccessPrevent yes"]);
      const bad = reload();
      expect(bad.exitCode).toBe(1);
      expect(bad.stdout.toString()).toMatch(/NOT reloaded: .*OnAccessPrevent/);
      rewrite(agent, [`OnAccessIncludePath ${b!.dir}`, "OnAccessPrevention yes"]);
      const good = reload();
      expect(good.exitCode).toBe(0);
      expect(good.stdout.toString()).toContain("configuration reloaded: protecting 1 path(s)");
      expect(openInChild(b!.t.eicar).error).toBe("EPERM");
      const status = Bun.spawnSync([BINARY, "status", `--status-socket=${agent.statusSocket}`]).stdout.toString();
      expect(status).toMatch(/last reload .*: applied/);
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
