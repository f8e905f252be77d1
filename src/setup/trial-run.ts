// Starting the trial clamd and waiting until it answers: as its own systemd unit (onacc-trial-clamd.service,
// kept running and started at boot) when systemd runs, else as a clamd daemon started here.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { OnaccError } from "../errors.ts";
import { probeClamd } from "./clamd.ts";
import { systemctl, systemdRunning } from "./service.ts";
import { renderTrialUnit, TRIAL_UNIT, trialPidFile, type TrialFiles } from "./trial.ts";
import { fileHasText, replaceTextFile } from "./write.ts";

export interface TrialStart {
  how: "systemd" | "process";
  /** It answered before anything was started (a second run). */
  alreadyRunning: boolean;
  /** What clamd answered to VERSION. */
  version: string;
  /** The unit file, when systemd runs it. */
  unitPath?: string;
  /** The unit file was (re)written now. */
  wroteUnit: boolean;
}

/** How long a freshly started trial clamd may take to answer (it loads one signature: seconds). */
const READY_TIMEOUT_MS = 60_000;

/**
 * Makes sure the trial clamd runs and answers. With systemd (and `systemdDir` present): writes its unit when
 * it differs, then `systemctl enable --now` (a no-op when it already runs). Without: starts `clamd -c
 * CONFIG` (it detaches itself) unless one already answers on the trial socket.
 */
export async function startTrialClamd(trial: TrialFiles, opts: { systemdDir: string; onaccBinary: string }): Promise<TrialStart> {
  const endpoint = { kind: "unix" as const, path: trial.socket };
  const clamd = _clamdBinary();

  if (systemdRunning() && existsSync(opts.systemdDir)) {
    const unitPath = join(opts.systemdDir, TRIAL_UNIT);
    const text = renderTrialUnit(trial, { user: trial.user, clamd, onacc: opts.onaccBinary });
    const wroteUnit = !fileHasText(unitPath, text);
    if (wroteUnit) {
      replaceTextFile(unitPath, text);
      _systemctl(["daemon-reload"]);
    }
    const wasActive = systemctl(["is-active", "--quiet", TRIAL_UNIT]).ok;
    // enable --now is idempotent; restart only when the unit changed under a running clamd.
    _systemctl(["enable", "--now", TRIAL_UNIT]);
    if (wroteUnit && wasActive) _systemctl(["restart", TRIAL_UNIT]);
    const version = await _waitForAnswer(endpoint, `systemctl status ${TRIAL_UNIT}`);
    return { how: "systemd", alreadyRunning: wasActive && !wroteUnit, version, unitPath, wroteUnit };
  }

  const first = await probeClamd(endpoint, 2000);
  if (first.ok) return { how: "process", alreadyRunning: true, version: first.version, wroteUnit: false };
  const r = Bun.spawnSync([clamd, "-c", trial.config], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    const said = `${r.stderr.toString()}${r.stdout.toString()}`.trim().split("\n").at(-1) ?? "";
    throw new OnaccError("E_CLAMD", `Cannot start the trial clamd (${clamd} -c ${trial.config}): exit status ${r.exitCode}${said ? `: ${said}` : ""}`);
  }
  const version = await _waitForAnswer(endpoint, `the system log, and ${trialPidFile(trial)}`);
  return { how: "process", alreadyRunning: false, version, wroteUnit: false };
}

/** How to start the trial clamd again by hand (after a reboot without systemd: /run is emptied). */
export function trialRestartCommand(trial: TrialFiles): string {
  const runDir = trial.socket.slice(0, trial.socket.lastIndexOf("/"));
  return `mkdir -p ${runDir} && chown ${trial.user} ${runDir} && ${_clamdBinary()} -c ${trial.config}`;
}

function _clamdBinary(): string {
  return Bun.which("clamd") ?? ["/usr/sbin/clamd", "/usr/local/sbin/clamd"].find(existsSync) ?? "clamd";
}

function _systemctl(args: string[]): void {
  const r = systemctl(args);
  if (!r.ok) throw new OnaccError("E_RUNTIME", `systemctl ${args.join(" ")} failed: ${r.error}`);
}

async function _waitForAnswer(endpoint: { kind: "unix"; path: string }, whereToLook: string): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    const probe = await probeClamd(endpoint, 2000);
    if (probe.ok) return probe.version;
    last = probe.message;
    await Bun.sleep(250);
  }
  throw new OnaccError("E_CLAMD", `The trial clamd did not answer at ${endpoint.path} within ${READY_TIMEOUT_MS / 1000} s (${last}); see ${whereToLook}`);
}
