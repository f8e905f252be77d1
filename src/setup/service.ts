// The systemd side of `onacc setup`: is the onacc unit installed, is systemd running, and enabling plus
// (re)starting the service so it picks up the configuration just written.
import { existsSync } from "node:fs";
import { join } from "node:path";

/** Where a packaged or installed onacc.service may live, besides the --systemd-dir given. */
const UNIT_DIRS = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

/** systemd is PID 1 and running (the test sd_booted(3) uses). */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

/** The onacc.service file in `systemdDir` or a standard unit directory, or undefined. */
export function findUnit(systemdDir: string): string | undefined {
  for (const dir of [systemdDir, ...UNIT_DIRS]) {
    const path = join(dir, "onacc.service");
    if (existsSync(path)) return path;
  }
  return undefined;
}

export interface SystemctlResult {
  ok: boolean;
  /** The commands run, for the summary. */
  commands: string[];
  /** systemctl's own words when a command failed. */
  error?: string;
}

/** One systemctl command: ok, or systemctl's own words (its exit status when it said nothing). */
export function systemctl(args: string[]): { ok: boolean; error?: string } {
  const r = Bun.spawnSync(["systemctl", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode === 0) return { ok: true };
  return { ok: false, error: r.stderr.toString().trim() || `exit status ${r.exitCode}` };
}

/** daemon-reload (the drop-in changed), enable, then restart: a running onacc must reload its config. */
export function enableAndStart(): SystemctlResult {
  const commands: string[] = [];
  for (const args of [["daemon-reload"], ["enable", "onacc.service"], ["restart", "onacc.service"]]) {
    commands.push(`systemctl ${args.join(" ")}`);
    const r = systemctl(args);
    if (!r.ok) return { ok: false, commands, error: r.error! };
  }
  return { ok: true, commands };
}
