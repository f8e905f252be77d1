// Attack (or plain bad luck): a file system that stops answering. A hung NFS server or FUSE daemon makes
// fstat() on its files wait forever. If the thread that reads fanotify events waited on it, every other
// open on the host would queue behind it, out of the watchdog's reach. Opens elsewhere must still be
// scanned and answered at once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;
let fuse: ReturnType<typeof Bun.spawn> | undefined;
let fuseDir = "";

const STALL_FS = new URL("./stall-fs.py", import.meta.url).pathname;
const haveFusepy = Bun.spawnSync(["/usr/bin/python3", "-c", "import fusepy"]).exitCode === 0 && existsSync("/dev/fuse");
if (!haveFusepy) console.log("SKIPPED tests/security/stalled-fs.test.ts: needs /dev/fuse and Debian's python3-fusepy (.ci/run installs it)");

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
});
async function stopFuse() {
  if (!fuse) return;
  fuse.kill("SIGKILL"); // pending requests then fail with ENOTCONN: nothing stays blocked
  await fuse.exited;
  fuse = undefined;
  Bun.spawnSync(["umount", "-l", fuseDir]);
}

afterAll(async () => {
  await disposeAgent(agent);
  await stopFuse();
  mount?.unmount();
  await disposeClamd(clamd);
});

describe("a stalled file system under a protected path", () => {
  // With OnAccessDisableDDD no, the directory watcher follows both trees; the FUSE tree cannot take its
  // filesystem-wide marks, and that must cost neither tree its prevention marks.
  test.skipIf(!haveFusepy).each([["yes"], ["no"]])("opens elsewhere are scanned and answered while a FUSE file's fstat hangs (OnAccessDisableDDD %s)", async (disableDdd) => {
    const backing = join(mount.path, `backing-${disableDdd}`);
    fuseDir = join(mount.path, `fuse-${disableDdd}`);
    const plain = join(mount.path, `plain-${disableDdd}`);
    mkdirSync(backing);
    mkdirSync(fuseDir);
    writeFileSync(join(backing, "stall.txt"), "harmless\n");
    const t = writeTestFiles(plain);
    fuse = Bun.spawn(["/usr/bin/python3", STALL_FS, backing, fuseDir], { stdout: "pipe", stderr: "inherit" });
    const first = await (fuse.stdout as ReadableStream<Uint8Array>).getReader().read();
    expect(new TextDecoder().decode(first.value)).toContain("ready");
    agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${fuseDir}`, `OnAccessIncludePath ${plain}`, "OnAccessPrevention yes", `OnAccessDisableDDD ${disableDdd}`] });
    // Someone opens the file on the stalled file system: whoever fstat()s it now waits on the daemon.
    const stuck = Bun.spawn(["cat", join(fuseDir, "stall.txt")], { stdout: "ignore", stderr: "ignore" });
    try {
      await Bun.sleep(500);
      const eicar = openInChild(t.eicar, { timeoutMs: 8000 });
      expect(eicar.error).toBe("EPERM");
      expect(eicar.ms).toBeLessThan(3000);
      expect(openInChild(t.clean, { timeoutMs: 8000 })).toMatchObject({ ok: true });
    } finally {
      // The daemon first: its death fails every request still waiting on it, in onacc, clamd and cat.
      await stopFuse();
      stuck.kill("SIGKILL");
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
