// `onacc setup`: the wizard (with a terminal), `--yes` (flags only, no terminal needed) and `--trial`.
// Every error ends here as one line on stderr and an exit code (see setupHelpText()).
import { exitCodeFor, ExitCode, OnaccError, UsageError } from "../errors.ts";
import { answersFromFlags } from "../setup/from-flags.ts";
import { finishSetup, type Reporter } from "../setup/finish.ts";
import { parseSetupArgs, setupHelpText, type SetupFlags } from "../setup/options.ts";
import { writeTrial } from "../setup/trial.ts";
import { runWizard, SetupCancelled } from "../setup/wizard.ts";

/** Runs `onacc setup` with the arguments after "setup"; returns the exit code. */
export async function runSetup(argv: string[]): Promise<number> {
  try {
    const flags = parseSetupArgs(argv);
    if (flags.help) {
      process.stdout.write(setupHelpText());
      return ExitCode.ok;
    }
    if (flags.trial) return _runTrial(flags);
    if (flags.yes) return await _runNonInteractive(flags);
    if (!process.stdin.isTTY) {
      throw new UsageError(
        "onacc setup asks questions, but its input is not a terminal: give the answers as flags with --yes, e.g. onacc setup --yes --protect /srv/data (see onacc setup --help)",
      );
    }
    return await runWizard(flags);
  } catch (err) {
    if (err instanceof SetupCancelled) {
      process.stderr.write(`onacc setup: ${err.message}\n`);
      return ExitCode.runtime;
    }
    const message = err instanceof OnaccError ? err.message : `unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
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
  return result.serviceError === undefined ? ExitCode.ok : ExitCode.runtime;
}

function _runTrial(flags: SetupFlags): number {
  const trial = writeTrial({ database: flags.trialDatabase, config: flags.trialConfig, socket: flags.trialSocket }, { force: flags.force });
  const out = [
    `Wrote the trial database ${trial.database} (one signature: the EICAR test file)`,
    trial.keptConfig ? `Kept the existing ${trial.config} (--force replaces it)` : `Wrote ${trial.config} (a clamd.conf for the trial clamd)`,
    "",
    "The trial clamd detects only the EICAR test file: it protects against nothing real. Next:",
    ...trial.nextSteps.map((step) => `  ${step}`),
    "",
  ];
  process.stdout.write(out.join("\n"));
  return ExitCode.ok;
}
