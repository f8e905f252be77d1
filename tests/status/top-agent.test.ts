// `onacc status --top` and the metrics against dist/onacc, a real clamd and real fanotify: the process
// that made the scans, and the directory they were in, come out on top.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeTcpPort } from "../fixtures/clamd.ts";
import { BINARY, disposeAgent, startAgent, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { copyProgram, programDir } from "../fixtures/programs.ts";

let clamd: TestClamd;
let mount: TestMount;
let agent: RunningAgent | undefined;
let bin = "";

beforeAll(async () => {
  clamd = await startClamd();
  mount = mountTmpfs();
  bin = programDir();
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  await disposeClamd(clamd);
  rmSync(bin, { recursive: true, force: true });
});

test("onacc status --top names the program and the folder that caused the scans; /metrics carries them too", async () => {
  const dir = join(mount.path, "top");
  const hot = join(dir, "hot");
  mkdirSync(hot, { recursive: true });
  mkdirSync(join(dir, "cold"));
  for (let i = 0; i < 30; i++) writeFileSync(join(hot, `f${i}.txt`), `clean file ${i}\n`);
  writeFileSync(join(hot, "eicar.com"), EICAR);
  writeFileSync(join(dir, "cold", "one.txt"), "clean\n");
  const noisy = copyProgram(bin, "cat", "noisy-indexer");
  const port = await freeTcpPort();
  agent = await startAgent({
    clamd,
    config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
    args: ["--foreground", "--verbose", "--config-file=CONFIG", "--log=LOG", `--metrics-listen=127.0.0.1:${port}`],
  });
  // 30 clean files and one infected one, read by the noisy program (one process per file: 31 scans),
  // and one file read by cat.
  for (let i = 0; i < 30; i++) expect(Bun.spawnSync([noisy, join(hot, `f${i}.txt`)]).exitCode).toBe(0);
  expect(Bun.spawnSync([noisy, join(hot, "eicar.com")]).exitCode).not.toBe(0);
  expect(Bun.spawnSync(["cat", join(dir, "cold", "one.txt")]).exitCode).toBe(0);

  const r = Bun.spawnSync([BINARY, "status", "--top", `--status-socket=${agent.statusSocket}`], { timeout: 15_000 });
  expect(r.exitCode).toBe(0);
  const out = r.stdout.toString();
  expect(out).toMatch(/top talkers, last 5 minutes: 32 scans, openers waited [\d.]+ m?s, 1 denied/);
  const byExe = out.slice(out.indexOf("by executable:"), out.indexOf("by directory:"));
  const rows = byExe.split("\n").slice(2).filter(Boolean);
  expect(rows[0]).toMatch(new RegExp(`^\\s+31\\s+97%\\s+[\\d.]+ m?s\\s+1\\s+${noisy}$`));
  expect(rows[1]).toMatch(/^\s+1\s+3%\s+.*\s0\s+\/.*\/cat$/);
  const byDir = out.slice(out.indexOf("by directory:"));
  expect(byDir.split("\n")[2]).toMatch(new RegExp(`^\\s+31\\s+97%\\s+[\\d.]+ m?s\\s+1\\s+${hot}$`));

  const json = JSON.parse(Bun.spawnSync([BINARY, "status", "--json", `--status-socket=${agent.statusSocket}`]).stdout.toString());
  expect(json.top.executables[0]).toMatchObject({ name: noisy, scans: 31, denied: 1, approximate: false });
  expect(json.protectedTrees).toEqual([dir]);

  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toContain(`onacc_top_executable_scans{executable="${noisy}",window="5m"} 31`);
  expect(metrics).toContain(`onacc_top_directory_denied{directory="${hot}",window="5m"} 1`);
  expect(metrics).toContain(`onacc_top_window_scans{window="5m"} 32`);
});
