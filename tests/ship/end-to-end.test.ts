// The shipped binary used the way a person would: `onacc setup --yes` writes a configuration that the
// agent then protects with; and onacc as a sidecar, in its own mount namespace, guarding a bind-mounted
// volume and asking clamd over TCP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, ensureBinary, openInChild } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

let clamd: TestClamd;
let mount: TestMount;
let work: string;

beforeAll(async () => {
  ensureBinary();
  clamd = await startClamd();
  mount = mountTmpfs();
  work = mkdtempSync("/tmp/onacc-e2e-");
});
afterAll(async () => {
  mount?.unmount();
  await disposeClamd(clamd);
  rmSync(work, { recursive: true, force: true });
});

/** Starts `cmd` and waits for onacc's "protecting" line; stopped by PID in `finally` by the caller. */
async function startUntilProtecting(cmd: string[]) {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) out += new TextDecoder().decode(c);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const deadline = Date.now() + 20000;
  while (!/protecting \d+ path/.test(out)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`onacc did not start:\n${out}`);
    }
    await Bun.sleep(20);
  }
  return {
    proc,
    output: () => out,
    async stop() {
      proc.kill("SIGTERM");
      if (!(await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]))) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

describe("shipped binary", () => {
  test("onacc setup --yes writes a configuration the agent protects with", async () => {
    const protect = join(mount.path, "uploads");
    mkdirSync(protect);
    writeFileSync(join(protect, "eicar.com"), EICAR);
    const config = join(work, "onacc.conf");
    const setup = Bun.spawnSync(
      [BINARY, "setup", "--yes", "--clamd", clamd.socket, "--protect", protect, "--prevention", "yes", "--exclude-user", "clamav", "--config", config, "--no-service", "--systemd-dir", join(work, "systemd")],
      { stdout: "pipe", stderr: "pipe", timeout: 20000 },
    );
    expect(setup.stderr.toString()).toBe("");
    expect(setup.exitCode).toBe(0);
    expect(readFileSync(config, "utf8")).toMatch(new RegExp(`OnAccessIncludePath ${protect}`));
    const agent = await startUntilProtecting([BINARY, "--foreground", `--config-file=${config}`]);
    try {
      expect(openInChild(join(protect, "eicar.com")).error).toBe("EPERM");
    } finally {
      await agent.stop();
    }
  });

  test("as a sidecar in its own mount namespace it guards a bind-mounted volume, with clamd over TCP", async () => {
    // The "volume" lives on the test tmpfs; the sidecar sees it bind-mounted at another path, in a mount
    // namespace of its own, as a container runtime would set it up.
    const volume = join(mount.path, "volume");
    const view = join(mount.path, "sidecar-view");
    mkdirSync(volume);
    mkdirSync(view);
    const config = join(work, "sidecar.conf");
    writeFileSync(config, `TCPSocket ${clamd.port}\nTCPAddr 127.0.0.1\nOnAccessIncludePath ${view}\nOnAccessPrevention yes\n`);
    const script = `mount --bind '${volume}' '${view}' && exec '${BINARY}' --foreground --verbose --stream --config-file='${config}'`;
    const agent = await startUntilProtecting(["unshare", "--mount", "--propagation", "private", "sh", "-c", script]);
    try {
      // In the sidecar's namespace it is mounted; here, the host's view of that directory stays empty.
      expect(readFileSync(`/proc/${agent.proc.pid}/mountinfo`, "utf8")).toContain(view);
      expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(view);
      // The application writes into the volume through its own path; the marks sit on the inodes.
      const f = join(volume, "eicar.com");
      writeFileSync(f, EICAR);
      expect(openInChild(f).error).toBe("EPERM");
      writeFileSync(join(volume, "clean.txt"), "fine\n");
      expect(openInChild(join(volume, "clean.txt")).ok).toBe(true);
      expect(agent.output()).toMatch(/tcp:\/\/127\.0\.0\.1:\d+ \(stream\)/);
    } finally {
      await agent.stop();
    }
  });
});
