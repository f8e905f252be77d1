// Attack: writes through a shared memory mapping raise no fsnotify modify event, so they neither clear a
// kernel ignore mark nor (once a page is writable) move the file's mtime. A file found clean must never
// be served from a cache after an untrusted user changed it that way.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, openInChild, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { MARKER } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { ATTACKER_UID, asAttacker } from "./helpers.ts";

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

const WRITER = new URL("./mmap-writer.py", import.meta.url).pathname;
const CLEAN = Buffer.alloc(8192, "a harmless page of text\n");

/** The attacker's mapping of `file`, driven line by line. */
async function mapAsAttacker(file: string) {
  const p = Bun.spawn(asAttacker(["/usr/bin/python3", WRITER, file]), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = p.stdout.getReader();
  let buffered = "";
  const nextLine = async () => {
    const deadline = Date.now() + 10_000;
    while (!buffered.includes("\n")) {
      if (Date.now() > deadline) throw new Error("mmap writer did not answer");
      const { value, done } = await reader.read();
      if (done) throw new Error("mmap writer ended");
      buffered += new TextDecoder().decode(value);
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  expect(await nextLine()).toBe("ready");
  return {
    async put(offset: number, text: string) {
      p.stdin.write(`put ${offset} ${Buffer.from(text, "latin1").toString("hex")}\n`);
      p.stdin.flush();
      expect(await nextLine()).toBe("ok");
    },
    async quit() {
      p.stdin.write("quit\n");
      p.stdin.end();
      await Promise.race([p.exited, Bun.sleep(5000)]);
      if (p.exitCode === null) p.kill("SIGKILL");
    },
  };
}

async function withAgent(name: string, body: (dir: string) => Promise<void>) {
  const dir = join(mount.path, name);
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  agent = await startAgent({ clamd, config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"] });
  try {
    await body(dir);
  } finally {
    await disposeAgent(agent);
    agent = undefined;
  }
}

/**
 * Root reads `file` twice (scanned clean, then remembered), the attacker writes the marker through a new
 * shared mapping (no write() call, so no modify event), and the next open by root must be denied.
 */
async function readCleanThenWriteThroughMapping(file: string): Promise<void> {
  await Bun.sleep(100); // older than any "changed very recently" window: cacheable
  expect(openInChild(file)).toMatchObject({ ok: true });
  expect(openInChild(file)).toMatchObject({ ok: true });
  const w = await mapAsAttacker(file);
  try {
    await w.put(100, MARKER);
  } finally {
    await w.quit();
  }
  expect(openInChild(file).error).toBe("EPERM");
}

describe("writes through a shared mapping", () => {
  test("a file found clean, then changed by its owner through mmap, is scanned again on the next open", async () => {
    await withAgent("mmap-after", async (dir) => {
      const file = join(dir, "owned-by-attacker.txt");
      writeFileSync(file, CLEAN);
      chownSync(file, ATTACKER_UID, ATTACKER_UID);
      await readCleanThenWriteThroughMapping(file);
    });
  });

  test("a page already writable in an attacker's mapping (no mtime change on later stores) is no cache hit", async () => {
    await withAgent("mmap-during", async (dir) => {
      const file = join(dir, "shared.txt");
      writeFileSync(file, CLEAN);
      chownSync(file, ATTACKER_UID, ATTACKER_UID);
      const w = await mapAsAttacker(file);
      try {
        // The first store makes the page writable (and moves mtime once); later stores move nothing.
        await w.put(0, "harmless ");
        await Bun.sleep(100); // older than any "changed very recently" window
        expect(openInChild(file)).toMatchObject({ ok: true });
        expect(openInChild(file)).toMatchObject({ ok: true });
        await w.put(100, MARKER);
        expect(openInChild(file).error).toBe("EPERM");
      } finally {
        await w.quit();
      }
    });
  });

  test("an attacker's writable mapping made before root's first read cannot keep a clean mark", async () => {
    await withAgent("mmap-before", async (dir) => {
      const file = join(dir, "root-owned-later.txt");
      writeFileSync(file, CLEAN);
      chmodSync(file, 0o666);
      const w = await mapAsAttacker(file);
      try {
        await w.put(0, "harmless ");
        // Root takes the file back: owner root, mode 0644. The attacker's mapping stays writable.
        chmodSync(file, 0o644);
        await Bun.sleep(100);
        expect(openInChild(file)).toMatchObject({ ok: true });
        expect(openInChild(file)).toMatchObject({ ok: true });
        await w.put(100, MARKER);
        expect(openInChild(file).error).toBe("EPERM");
      } finally {
        await w.quit();
      }
    });
  });

  test("a root-group-writable file whose ACL lets a user write it gets no clean kernel mark", async () => {
    await withAgent("mmap-acl", async (dir) => {
      const file = join(dir, "acl.txt");
      writeFileSync(file, CLEAN);
      chmodSync(file, 0o664); // root:root rw-rw-r--: the group bits would be root's alone...
      const acl = Bun.spawnSync(["setfacl", "-m", `u:${ATTACKER_UID}:rw`, file], { stderr: "pipe" });
      expect(acl.stderr.toString()).toBe("");
      expect(acl.exitCode).toBe(0); // ...but with an ACL they are its mask, and a named user may write
      await readCleanThenWriteThroughMapping(file);
    });
  });
});
