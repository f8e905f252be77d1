// `onacc setup`: the wizard (with a terminal), `--yes` (flags only, no terminal needed) and `--trial`.
// Every error ends here as one line on stderr and an exit code (see setupHelpText()).
import { readFileSync } from "node:fs";
import { exitCodeFor, ExitCode, isOnaccError, UsageError } from "../errors.ts";
import { answersFromFlags } from "../setup/from-flags.ts";
import { finishSetup, onaccBinary, trialClosingLines, type Reporter } from "../setup/finish.ts";
import { parseSetupArgs, setupHelpText, type SetupFlags } from "../setup/options.ts";
import { TRIAL_UNIT, writeTrial } from "../setup/trial.ts";
import { startTrialClamd, trialRestartCommand } from "../setup/trial-run.ts";
import { runWizard, SetupCancelled } from "../setup/wizard.ts";

/** Runs `onacc setup` with the arguments after "setup"; returns the exit code. */
export async function runSetup(argv: string[]): Promise<number> {
  try {
    const flags = parseSetupArgs(argv);
    if (flags.help) {
      process.stdout.write(setupHelpText());
      return ExitCode.ok;
    }
    if (!flags.yes && !process.stdin.isTTY) {
      throw new UsageError(
        "onacc setup asks questions, but its input is not a terminal: give the answers as flags with --yes, e.g. onacc setup --yes --protect /srv/data (see onacc setup --help)",
      );
    }
    if (flags.trial) {
      await _startTrial(flags);
      // --trial --yes without directories: the trial clamd is all that was asked for.
      if (flags.yes && flags.protect === undefined) {
        process.stdout.write(`${_trialOnlyNextStep(flags)}\n`);
        return ExitCode.ok;
      }
    }
    if (flags.yes) return await _runNonInteractive(flags);
    return await runWizard(flags);
  } catch (err) {
    if (err instanceof SetupCancelled) {
      process.stderr.write(`onacc setup: ${err.message}\n`);
      return ExitCode.runtime;
    }
    const message = isOnaccError(err) ? err.message : `unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    process.stderr.write(`onacc setup: ${message}\n`);
    return exitCodeFor(err);
  }
}

const _plainReporter: Reporter = {
  info: (m) => process.stdout.write(`${m}\n`),
  success: (m) => process.stdout.write(`${m}\n`),
  warn: (m) => process.stderr.write(`onacc setup: warning: ${m}\n`),
};

async function _runNonInteractive(flags: SetupFlags): Promise<number> {
  const answers = await answersFromFlags(flags);
  if (answers.clamdVersion !== undefined) process.stdout.write(`clamd ${answers.clamdVersion} answers\n`);
  const result = await finishSetup(answers, {
    configPath: flags.config,
    force: flags.force,
    systemdDir: flags.systemdDir,
    noService: flags.noService,
    report: _plainReporter,
    confirmStart: async () => true,
  });
  if (answers.trialClamd) process.stdout.write(`\n${trialClosingLines(answers).join("\n")}\n`);
  return result.serviceError === undefined ? ExitCode.ok : ExitCode.runtime;
}

/** After `--trial --yes` alone: how to put the trial clamd to use, unless the configuration already does. */
function _trialOnlyNextStep(flags: SetupFlags): string {
  let current: string | undefined;
  try {
    current = readFileSync(flags.config, "utf8");
  } catch {
    return "Protect a directory with it: onacc setup (it offers the trial clamd), or onacc setup --yes --protect DIR";
  }
  if (current.split("\n").some((line) => line.trim() === `LocalSocket ${flags.trialSocket}`)) return `${flags.config} uses the trial clamd.`;
  return `${flags.config} is kept and uses another clamd; to use the trial clamd: onacc setup --force (it offers the trial clamd)`;
}

/** Writes the trial clamd's files and makes sure it runs and answers; says what it did. */
async function _startTrial(flags: SetupFlags): Promise<void> {
  const trial = writeTrial({ database: flags.trialDatabase, config: flags.trialConfig, socket: flags.trialSocket }, { force: flags.force });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (trial.wroteDatabase) say(`Wrote the trial database ${trial.database} (one signature: the EICAR test file)`);
  say(trial.keptConfig ? `Kept the existing ${trial.config} (--force replaces it)` : `Wrote ${trial.config} (a clamd.conf for the trial clamd)`);
  const started = await startTrialClamd(trial, { systemdDir: flags.systemdDir, onaccBinary: onaccBinary() });
  const state = started.alreadyRunning ? "was already running" : "is running";
  if (started.how === "systemd") {
    say(`The trial clamd (${started.version}, EICAR test signature only) ${state} at ${trial.socket}: ${TRIAL_UNIT}, started at boot`);
  } else {
    say(`The trial clamd (${started.version}, EICAR test signature only) ${state} at ${trial.socket}`);
    say(`  without systemd nothing starts it again after a reboot: ${trialRestartCommand(trial)}`);
  }
}
