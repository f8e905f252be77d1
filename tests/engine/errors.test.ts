// The error policy, against a real clamd that is stopped, or that accepts and never answers: opens are
// allowed, or denied with OnAccessDenyOnError (also after retries), and never hang past the deadline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, untilOpens, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { startRelay, type ClamdRelay } from "../fixtures/proxy.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

let clamd: TestClamd;
let mount: TestMount;
let relay: ClamdRelay;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
  relay = await startRelay(clamd.port);
});
afterAll(async () => {
  await disposeAgent(agent);
  await relay?.stop();
  mount?.unmount();
  await disposeClamd(clamd);
});

let n = 0;
async function agentOverRelay(extra: string[]) {
  const dir = join(mount.path, `errors-${n++}`);
  mkdirSync(dir);
  const t = writeTestFiles(dir);
  await relay.setMode("relay");
  // Point the agent at the relay: its config's TCPSocket is the relay's port.
  agent = await startAgent({
    clamd: { ...clamd, port: relay.port },
    tcp: true,
    config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessCurlTimeout 500", ...extra],
    args: ["--foreground", "--verbose", "--stream", "--config-file=CONFIG", "--log=LOG"],
  });
  return t;
}

describe("error policy", () => {
  test("a verdict still blocks while clamd answers (the relay is transparent)", async () => {
    const t = await agentOverRelay([]);
    try {
      expect(openInChild(t.eicar).error).toBe("EPERM");
      expect(openInChild(t.clean).ok).toBe(true);
    } finally {
      await disposeAgent(agent);
    }
  });

  test("clamd that never answers: opens are allowed by default, within the deadline", async () => {
    const t = await agentOverRelay([]);
    try {
      await relay.setMode("blackhole");
      const r = openInChild(t.eicar, { timeoutMs: 10000 });
      expect(r.ok).toBe(true);
      // Timeout 500 ms per step, no retries: answered well before the watchdog's 1.5 s deadline + slack.
      expect(r.ms).toBeLessThan(4000);
      await agent!.waitFor(/scan failed, allowed/);
    } finally {
      await disposeAgent(agent);
    }
  });

  test("clamd that never answers, with OnAccessDenyOnError and retries: denied, not hung", async () => {
    const t = await agentOverRelay(["OnAccessDenyOnError yes", "OnAccessRetryAttempts 2"]);
    try {
      await relay.setMode("blackhole");
      const before = relay.accepted();
      const r = openInChild(t.clean, { timeoutMs: 15000 });
      expect(r.error).toBe("EPERM");
      await Bun.sleep(100); // let the relay's output arrive
      // One try and two retries reached the (silent) clamd (the health checker's PINGs may add more).
      expect(relay.accepted() - before).toBeGreaterThanOrEqual(3);
    } finally {
      await disposeAgent(agent);
    }
  });

  test("clamd stopped: allowed by default, denied with OnAccessDenyOnError", async () => {
    const dir = join(mount.path, "stopped");
    mkdirSync(dir);
    const t = writeTestFiles(dir);
    const own = await startClamd();
    try {
      agent = await startAgent({ clamd: own, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"] });
      await own.stop();
      expect(openInChild(t.eicar).ok).toBe(true);
      await disposeAgent(agent);
      await own.restart();
      agent = await startAgent({ clamd: own, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessDenyOnError yes", "OnAccessRetryAttempts 1"] });
      await own.stop();
      expect(openInChild(t.clean).error).toBe("EPERM");
      await own.restart();
      // Back up: the health checker's PING notices within its 5 s backoff, then verdicts again.
      expect(await untilOpens(t.clean)).toBe(true);
      expect(openInChild(t.eicar).error).toBe("EPERM");
    } finally {
      await disposeAgent(agent);
      agent = undefined;
      await disposeClamd(own);
    }
  });
});
