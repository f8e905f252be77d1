// Attack: openers that onacc cannot see. An agent in its own PID namespace (a sidecar without a shared PID
// namespace) sees every opener from outside as pid 0, and clamd (outside too) as pid 0 on its socket.
// "Unknown" must never match an exclusion: the host's opens are scanned like any other.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { testTree, writeTestFiles } from "../fixtures/files.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { ATTACKER_UID } from "./helpers.ts";

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

// --kill-child: when the test stops unshare, the agent (PID 1 of the new namespace) gets SIGTERM too.
const OWN_PID_NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"];

describe("an agent in its own PID namespace", () => {
  for (const transport of ["unix", "tcp"] as const) {
    test(`scans opens from outside its namespace (pid 0) with clamd over ${transport}`, async () => {
      const dir = join(mount.path, `pidns-${transport}`);
      mkdirSync(dir);
      const t = writeTestFiles(dir);
      agent = await startAgent({
        clamd,
        tcp: transport === "tcp",
        prefix: OWN_PID_NAMESPACE,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
      });
      try {
        // Root on the host, and an unprivileged user on the host: both are pid 0 to the agent.
        expect(openInChild(t.eicar).error).toBe("EPERM");
        expect(openInChild(testTree(dir).marked, { uid: ATTACKER_UID }).error).toBe("EPERM");
        expect(openInChild(t.clean)).toMatchObject({ ok: true });
        await agent.waitFor(/eicar\.com: Onacc\.Test\.EICAR\.UNOFFICIAL FOUND/);
      } finally {
        await disposeAgent(agent);
        agent = undefined;
      }
    });
  }
});
