// The end of `onacc setup`, the same for the wizard and --yes: check the text parses as onacc will read
// it, write it, create the quarantine, write the service drop-in, and enable/start the service if wanted.
import { mkdirSync } from "node:fs";
import { parseConfigText } from "../config/parse.ts";
import { OnaccError } from "../errors.ts";
import { type SetupAnswers } from "./answers.ts";
import { EICAR_TEXT, TRIAL_UNIT } from "./trial.ts";
import { enableAndStart, findUnit, systemdRunning } from "./service.ts";
import { manualCommand, renderConfig, renderDropIn, writeConfigFile, writeDropIn } from "./write.ts";

/** Where setup's messages go: plain lines for --yes, clack's log for the wizard. */
export interface Reporter {
  info(message: string): void;
  success(message: string): void;
  warn(message: string): void;
}

export interface FinishOptions {
  configPath: string;
  force: boolean;
  systemdDir: string;
  noService: boolean;
  /** Asked only when systemd runs and the unit is installed: enable and (re)start onacc now? */
  confirmStart(): Promise<boolean>;
  report: Reporter;
}

/** What finishSetup() did, for the caller's closing line and for tests. */
export interface FinishResult {
  configPath: string;
  dropInPath?: string;
  serviceStarted: boolean;
  /** systemctl failed: the configuration is written, but the service is not running. */
  serviceError?: string;
  /** The command that runs onacc by hand with this configuration. */
  manualCommand: string;
}

export async function finishSetup(answers: SetupAnswers, opts: FinishOptions): Promise<FinishResult> {
  const { report } = opts;
  const text = renderConfig(answers, opts.configPath);
  // Setup's own output must load; a ConfigError here is a bug in setup, reported before anything is written.
  parseConfigText(text, opts.configPath);
  writeConfigFile(opts.configPath, text, { force: opts.force });
  report.success(`Wrote ${opts.configPath}`);

  if (answers.action.kind === "move" || answers.action.kind === "copy") {
    // Made now, while setup runs with full rights: the service may not create directories outside its own.
    try {
      mkdirSync(answers.action.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new OnaccError("E_RUNTIME", `Wrote ${opts.configPath}, but cannot create the quarantine directory "${answers.action.dir}": ${code}`, { cause: err });
    }
  }

  const result: FinishResult = { configPath: opts.configPath, serviceStarted: false, manualCommand: manualCommand(answers, opts.configPath, onaccBinary()) };
  if (opts.noService) {
    report.info(`Run onacc with: ${result.manualCommand}`);
    return result;
  }
  const unit = findUnit(opts.systemdDir);
  if (unit === undefined) {
    report.info(`The onacc service is not installed (no onacc.service in ${opts.systemdDir}); run onacc with: ${result.manualCommand}`);
    return result;
  }
  result.dropInPath = writeDropIn(opts.systemdDir, renderDropIn(answers, opts.configPath));
  report.success(`Wrote ${result.dropInPath} (the service's action and write access)`);

  if (!systemdRunning()) {
    report.info(`systemd is not running here; run onacc with: ${result.manualCommand}`);
    return result;
  }
  if (!(await opts.confirmStart())) {
    report.info("Start the service later with: systemctl enable --now onacc");
    return result;
  }
  const started = enableAndStart();
  if (started.ok) {
    result.serviceStarted = true;
    report.success(`onacc is enabled and running (${started.commands.join("; ")}); see: systemctl status onacc`);
  } else {
    result.serviceError = `${started.commands.at(-1)} failed: ${started.error}`;
    report.warn(`${result.serviceError}; see: journalctl -u onacc`);
  }
  return result;
}

/**
 * The closing lines when onacc uses the trial clamd: how to watch it block the EICAR test file, and how to
 * move to the real clamd once it has signatures.
 */
export function trialClosingLines(answers: SetupAnswers): string[] {
  const file = `${answers.protect[0]}/eicar.com`;
  return [
    `See it block the EICAR test file: printf '%s' '${EICAR_TEXT}' > ${file}; cat ${file}`,
    answers.prevention
      ? `  cat says "Operation not permitted" (the FOUND line is in /var/log/onacc/onacc.log when the service runs); then: rm ${file}`
      : `  prevention is off: cat works, and onacc logs "FOUND"; then: rm ${file}`,
    "The trial clamd knows only that test file. To switch to the real clamd once it has signatures",
    "(freshclam, needs Internet access): systemctl enable --now clamav-daemon; run onacc setup and choose",
    `its socket (replace the configuration when asked); then: systemctl disable --now ${TRIAL_UNIT}`,
  ];
}

/** The path of the compiled binary (so the printed command works as given), or plain "onacc". */
export function onaccBinary(): string {
  return Bun.main.startsWith("/$bunfs/") ? process.execPath : "onacc";
}
