// `onacc setup --yes`: every answer from its flag or its default, each checked exactly as the wizard
// checks it; the first answer that fails stops setup before anything is written.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describeEndpoint } from "../clamd/address.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { UsageError } from "../errors.ts";
import { uidOfUser } from "../../ffi/process.ts";
import {
  actionProblem,
  AnswerError,
  DEFAULT_THREADS,
  excludeListProblem,
  parseAction,
  parseThreads,
  parseYesNo,
  protectListProblem,
  userListProblem,
  type SetupAnswers,
} from "./answers.ts";
import { clamdChoices, endpointKey, parseClamdAddress, probeClamd, readLocalClamdConf, unreachableHint, type ClamdChoice, type LocalClamdConf } from "./clamd.ts";
import type { SetupFlags } from "./options.ts";
import { TRIAL_UNIT } from "./trial.ts";

/** The clamd setup settled on: where, what it answered, the clamd.conf that describes it, whether it is the trial's. */
export interface ChosenClamd {
  endpoint: ClamdEndpoint;
  version?: string;
  conf?: LocalClamdConf;
  trial: boolean;
}

/** The clamds to offer for these flags: the local clamd.conf's, well-known sockets, the trial clamd's. */
export function choicesFor(flags: SetupFlags): { conf: LocalClamdConf | undefined; choices: ClamdChoice[] } {
  const conf = readLocalClamdConf(flags.clamdConf);
  return { conf, choices: clamdChoices(conf, readLocalClamdConf(flags.trialConfig), flags.trial) };
}

/** An endpoint given by address, with what is known about it when it is one of the offered clamds. */
export function chosenByAddress(endpoint: ClamdEndpoint, choices: readonly ClamdChoice[], conf: LocalClamdConf | undefined, version?: string): ChosenClamd {
  const key = endpointKey(endpoint);
  const known = choices.find((c) => endpointKey(c.endpoint) === key);
  const chosen: ChosenClamd = { endpoint, trial: known?.trial ?? false };
  const knownConf = known?.conf ?? conf;
  if (knownConf !== undefined) chosen.conf = knownConf;
  if (version !== undefined) chosen.version = version;
  return chosen;
}

/** The answers that follow from the chosen clamd: its version, its clamd.conf's settings, and the unit to order after. */
export function clamdAnswers(chosen: ChosenClamd, systemdDir: string): Pick<SetupAnswers, _ClamdAnswer> {
  const out: Pick<SetupAnswers, _ClamdAnswer> = { clamd: chosen.endpoint };
  if (chosen.version !== undefined) out.clamdVersion = chosen.version;
  Object.assign(out, fromClamdConf(chosen.endpoint, chosen.conf));
  if (chosen.trial) out.trialClamd = true;
  if (chosen.trial && existsSync(join(systemdDir, TRIAL_UNIT))) out.clamdUnit = TRIAL_UNIT;
  return out;
}

type _ClamdAnswer = "clamd" | "clamdVersion" | "streamMaxLength" | "temporaryDirectory" | "clamdUnit" | "trialClamd";

export async function answersFromFlags(flags: SetupFlags): Promise<SetupAnswers> {
  const chosen = await _chooseClamd(flags);

  if (flags.protect === undefined) throw new UsageError("onacc setup --yes needs at least one --protect DIR (the directories to protect)");
  const protect = flags.protect;
  _check(protectListProblem(protect));
  const excludePaths = flags.excludePaths ?? [];
  _check(excludeListProblem(excludePaths, protect));

  const prevention = parseYesNo(flags.prevention ?? "yes", "--prevention");
  if (typeof prevention === "string") throw new AnswerError(prevention);

  const excludeUsers = flags.excludeUsers ?? defaultExcludedUsers(chosen.conf);
  _check(userListProblem(excludeUsers));

  const action = parseAction(flags.action ?? "none");
  if (typeof action === "string") throw new AnswerError(action);
  _check(actionProblem(action, protect));

  const threads = parseThreads(flags.threads ?? String(DEFAULT_THREADS));
  if (typeof threads === "string") throw new AnswerError(threads);

  return { ...clamdAnswers(chosen, flags.systemdDir), protect, excludePaths, prevention, excludeUsers, action, threads };
}

/**
 * clamd's own User, when it exists here: clamd opening a file must never wait for onacc's verdict. Never
 * root: that would leave every file root opens unscanned (onacc excludes clamd's own process anyway).
 */
export function defaultExcludedUsers(conf: LocalClamdConf | undefined): string[] {
  return conf?.user !== undefined && conf.user !== "root" && uidOfUser(conf.user) !== undefined ? [conf.user] : [];
}

/** The local clamd.conf's StreamMaxLength and TemporaryDirectory, when the chosen clamd is the one it describes. */
export function fromClamdConf(endpoint: ClamdEndpoint, conf: LocalClamdConf | undefined): Pick<SetupAnswers, "streamMaxLength" | "temporaryDirectory"> {
  const key = describeEndpoint(endpoint);
  if (conf === undefined || !conf.endpoints.some((e) => describeEndpoint(e) === key)) return {};
  return {
    ...(conf.streamMaxLength !== undefined ? { streamMaxLength: conf.streamMaxLength } : {}),
    ...(conf.temporaryDirectory !== undefined ? { temporaryDirectory: conf.temporaryDirectory } : {}),
  };
}

/** --clamd, or the first offered clamd that answers; checked with VERSION unless --skip-clamd-check. */
async function _chooseClamd(flags: SetupFlags): Promise<ChosenClamd> {
  const { conf, choices } = choicesFor(flags);
  if (flags.clamd !== undefined) {
    const endpoint = parseClamdAddress(flags.clamd);
    if (typeof endpoint === "string") throw new AnswerError(`--clamd: ${endpoint}`);
    if (flags.skipClamdCheck) return chosenByAddress(endpoint, choices, conf);
    const probe = await probeClamd(endpoint);
    if (!probe.ok) throw new AnswerError(`clamd at ${describeEndpoint(endpoint)} does not answer: ${probe.message}. ${unreachableHint(conf)} (--skip-clamd-check writes the configuration anyway)`);
    return chosenByAddress(endpoint, choices, conf, probe.version);
  }
  if (choices.length === 0) {
    throw new AnswerError(
      `No clamd found: ${conf ? `${flags.clamdConf} has no LocalSocket or TCPSocket` : `cannot read ${flags.clamdConf}`}, and no usual socket exists; give --clamd SOCKET or --clamd HOST:PORT`,
    );
  }
  const failures: string[] = [];
  for (const choice of choices) {
    const chosen: ChosenClamd = { endpoint: choice.endpoint, trial: choice.trial, ...(choice.conf ? { conf: choice.conf } : {}) };
    if (flags.skipClamdCheck) return chosen;
    if (choice.unusable !== undefined) {
      failures.push(`${describeEndpoint(choice.endpoint)}: ${choice.unusable}`);
      continue;
    }
    const probe = await probeClamd(choice.endpoint);
    if (probe.ok) return { ...chosen, version: probe.version };
    failures.push(`${describeEndpoint(choice.endpoint)}: ${probe.message}`);
  }
  const hint = choices.some((c) => c.unusable !== undefined) ? "" : ` ${unreachableHint(conf)}`;
  throw new AnswerError(`No clamd answers (${failures.join("; ")}).${hint} (or give --clamd; --skip-clamd-check writes the configuration anyway)`);
}

function _check(problem: string | undefined): void {
  if (problem !== undefined) throw new AnswerError(problem);
}
