// `onacc setup --trial`: the files it writes start a real clamd (the way its printed steps say), and that
// clamd finds the EICAR test file and nothing else.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClamdClient } from "../../src/clamd/client.ts";
import { EICAR_TEXT, TRIAL_SIGNATURE } from "../../src/setup/trial.ts";
import { rawClamd } from "../fixtures/clamd.ts";
import { run, SETUP_ENTRY, tempDir } from "./helpers.ts";

let cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** Stops the clamd whose PID file we were told about (it daemonized: this test started it). */
async function stopByPidFile(pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!(pid > 1)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await Bun.sleep(50);
  }
  process.kill(pid, "SIGKILL");
}

describe("onacc setup --trial", () => {
  test("setup --trial writes a clamd configuration and an EICAR database that a real clamd starts with and detects", async () => {
    const t = tempDir("trial");
    cleanups.push(t.dispose);
    chmodSync(t.path, 0o755); // clamd, once it is user clamav, must reach the database
    const paths = { db: join(t.path, "trial-db"), config: join(t.path, "etc/trial-clamd.conf"), socket: join(t.path, "run/trial-clamd.sock") };
    const r = await run(["bun", SETUP_ENTRY, "--trial", "--trial-db", paths.db, "--trial-config", paths.config, "--trial-socket", paths.socket]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`clamd -c ${paths.config}`);
    expect(r.stdout).toContain(`onacc setup --clamd ${paths.socket}`);
    expect(statSync(paths.config).mode & 0o777).toBe(0o644);
    expect(readFileSync(paths.config, "utf8")).toContain(`DatabaseDirectory ${paths.db}`);

    // Start it as the printed step says.
    const started = await run(["clamd", "-c", paths.config]);
    const pidFile = join(t.path, "run/trial-clamd.pid");
    cleanups.push(() => stopByPidFile(pidFile));
    expect(started.stderr).toBe("");
    expect(started.code).toBe(0);
    expect((await rawClamd(paths.socket, "zPING\0")).startsWith("PONG")).toBe(true);

    const client = new ClamdClient({ endpoint: { kind: "unix", path: paths.socket }, timeoutMs: 5000, retries: 0, streamMaxLength: 1 << 20 });
    const eicar = join(t.path, "eicar.txt");
    writeFileSync(eicar, EICAR_TEXT, "latin1");
    const infected = client.scanPath(eicar);
    expect(infected).toMatchObject({ ok: true, verdict: { kind: "infected", signatures: [`${TRIAL_SIGNATURE}.UNOFFICIAL`] } });
    const clean = join(t.path, "clean.txt");
    writeFileSync(clean, "just text\n");
    expect(client.scanPath(clean)).toMatchObject({ ok: true, verdict: { kind: "clean" } });
  }, 60000);

  test("setup --trial keeps an existing trial configuration unless --force", async () => {
    const t = tempDir("trial");
    cleanups.push(t.dispose);
    const config = join(t.path, "trial-clamd.conf");
    writeFileSync(config, "# mine\n");
    const args = ["bun", SETUP_ENTRY, "--trial", "--trial-db", join(t.path, "db"), "--trial-config", config, "--trial-socket", join(t.path, "run/s.sock")];
    const kept = await run(args);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain(`Kept the existing ${config} (--force replaces it)`);
    expect(readFileSync(config, "utf8")).toBe("# mine\n");
    const forced = await run([...args, "--force"]);
    expect(forced.code).toBe(0);
    expect(readFileSync(config, "utf8")).toContain("LocalSocket ");
  });

  test("the trial signature is the real EICAR test file (68 bytes), as every scanner knows it", () => {
    expect(EICAR_TEXT).toHaveLength(68);
    expect(new Bun.CryptoHasher("md5").update(EICAR_TEXT, "latin1").digest("hex")).toBe("44d88612fea8a8f36de82e1278abb02f");
  });
});
