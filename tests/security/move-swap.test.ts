// Attack test (issue 10, item 9): `--move` to another file system copies, fsyncs, then unlinks the original
// name. An unprivileged user who renames another user's file onto that name during the copy must not make
// onacc (root) delete that file: the name is checked again through the parent directory before the unlink.
//
// The window is held open deterministically: a root helper (hold-open.ts) holds onacc's open of its temp
// copy in the quarantine file system with a fanotify permission event until the attacker has done the swap.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { disposeAgent, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { runAs, startHolder, userCommand, type Holder } from "./helpers.ts";

// Two unprivileged users who share a group directory (no sticky bit: each may rename the other's files).
const ATTACKER = { uid: 4242, gid: 4242, groups: [4300] };
const VICTIM = { uid: 4243, gid: 4243, groups: [4300] };
const SHARED_GID = 4300;
const VICTIM_TEXT = "the victim's only copy of the thesis\n";

let clamd: TestClamd;
let protectedFs: TestMount;
let quarantineFs: TestMount;
let agent: RunningAgent | undefined;
let holder: Holder | undefined;

beforeAll(async () => {
  clamd = await startClamd();
  protectedFs = mountTmpfs("/tmp/onacc-sec-prot-", "64m");
  quarantineFs = mountTmpfs("/tmp/onacc-sec-quar-", "64m");
});
afterAll(async () => {
  holder?.dispose();
  await disposeAgent(agent);
  quarantineFs?.unmount();
  protectedFs?.unmount();
  await disposeClamd(clamd);
});

test("a file renamed onto an infected file's name during a cross-device --move is kept, and the mismatch is logged", async () => {
  const shared = join(protectedFs.path, "shared");
  mkdirSync(shared);
  chownSync(shared, 0, SHARED_GID);
  chmodSync(shared, 0o2770);
  const payload = join(shared, "payload.com");
  const thesis = join(shared, "thesis.txt");
  // Each user writes their own file, in their own process.
  runAs(ATTACKER, ["sh", "-c", `cat > '${payload}'`], EICAR);
  runAs(VICTIM, ["sh", "-c", `cat > '${thesis}'`], VICTIM_TEXT);

  const quarantine = join(quarantineFs.path, "quarantine");
  holder = await startHolder(quarantineFs.path, ".onacc-tmp-");
  agent = await startAgent({
    clamd,
    config: [`OnAccessIncludePath ${shared}`, "OnAccessPrevention yes"],
    args: ["--foreground", "--verbose", "--config-file=CONFIG", "--log=LOG", `--move=${quarantine}`],
  });

  // The attacker opens their own infected file: denied, and onacc starts quarantining it across devices.
  const opener = Bun.spawn(userCommand(ATTACKER, ["cat", payload]), { stdout: "ignore", stderr: "pipe" });
  const heldPath = await holder.held(15_000);
  expect(heldPath).toContain(quarantine);
  // onacc is now inside the copy, after its first identity check: the attacker renames the victim's file
  // onto the infected file's name.
  runAs(ATTACKER, ["mv", "-f", thesis, payload]);
  holder.release();
  expect(await opener.exited).not.toBe(0);
  await agent.waitFor(/payload\.com: (?!.*FOUND)/, 15_000);

  // The victim's bytes are still on disk, under the name the attacker gave them.
  expect(existsSync(payload)).toBe(true);
  expect(readFileSync(payload, "utf8")).toBe(VICTIM_TEXT);
  expect(statSync(payload).uid).toBe(VICTIM.uid);
  // The infected file's copy is in the quarantine, read-only.
  const copies = readdirSync(quarantine).filter((n) => !n.startsWith("."));
  expect(copies).toEqual(["payload.com"]);
  expect(readFileSync(join(quarantine, "payload.com"))).toEqual(EICAR);
  expect(statSync(join(quarantine, "payload.com")).mode & 0o777).toBe(0o400);
  // The log says plainly that the name now holds another file, which was left alone.
  expect(agent.log()).toMatch(/payload\.com: .*now names another file.*left in place/);
});
