// `onacc setup --yes`: every answer from its flag or its default, each checked exactly as the wizard
// checks it; the first answer that fails stops setup before anything is written.
import { describeEndpoint } from "../clamd/client.ts";
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
import { candidateEndpoints, parseClamdAddress, probeClamd, readLocalClamdConf, unreachableHint, type LocalClamdConf } from "./clamd.ts";
import type { SetupFlags } from "./options.ts";

export async function answersFromFlags(flags: SetupFlags): Promise<SetupAnswers> {
  const conf = readLocalClamdConf(flags.clamdConf);
  const { endpoint, version } = await _chooseClamd(flags, conf);

  if (flags.protect === undefined) throw new UsageError("onacc setup --yes needs at least one --protect DIR (the directories to protect)");
  const protect = flags.protect;
  _check(protectListProblem(protect));
  const excludePaths = flags.excludePaths ?? [];
  _check(excludeListProblem(excludePaths, protect));

  const prevention = parseYesNo(flags.prevention ?? "yes", "--prevention");
  if (typeof prevention === "string") throw new AnswerError(prevention);

  const excludeUsers = flags.excludeUsers ?? defaultExcludedUsers(conf);
  _check(userListProblem(excludeUsers));

  const action = parseAction(flags.action ?? "none");
  if (typeof action === "string") throw new AnswerError(action);
  _check(actionProblem(action, protect));

  const threads = parseThreads(flags.threads ?? String(DEFAULT_THREADS));
  if (typeof threads === "string") throw new AnswerError(threads);

  const answers: SetupAnswers = { clamd: endpoint, protect, excludePaths, prevention, excludeUsers, action, threads };
  if (version !== undefined) answers.clamdVersion = version;
  return { ...answers, ...fromClamdConf(endpoint, conf) };
}

/** clamd's own User, when it exists here: clamd opening a file must never wait for onacc's verdict. */
export function defaultExcludedUsers(conf: LocalClamdConf | undefined): string[] {
  return conf?.user !== undefined && uidOfUser(conf.user) !== undefined ? [conf.user] : [];
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

/** --clamd, or the first candidate that answers; checked with VERSION unless --skip-clamd-check. */
async function _chooseClamd(flags: SetupFlags, conf: LocalClamdConf | undefined): Promise<{ endpoint: ClamdEndpoint; version?: string }> {
  if (flags.clamd !== undefined) {
    const endpoint = parseClamdAddress(flags.clamd);
    if (typeof endpoint === "string") throw new AnswerError(`--clamd: ${endpoint}`);
    if (flags.skipClamdCheck) return { endpoint };
    const probe = await probeClamd(endpoint);
    if (!probe.ok) throw new AnswerError(`clamd at ${describeEndpoint(endpoint)} does not answer: ${probe.message}. ${unreachableHint(conf)} (--skip-clamd-check writes the configuration anyway)`);
    return { endpoint, version: probe.version };
  }
  const candidates = candidateEndpoints(conf);
  if (candidates.length === 0) {
    throw new AnswerError(
      `No clamd found: ${conf ? `${flags.clamdConf} has no LocalSocket or TCPSocket` : `cannot read ${flags.clamdConf}`}, and no usual socket exists; give --clamd SOCKET or --clamd HOST:PORT`,
    );
  }
  const failures: string[] = [];
  for (const endpoint of candidates) {
    if (flags.skipClamdCheck) return { endpoint };
    const probe = await probeClamd(endpoint);
    if (probe.ok) return { endpoint, version: probe.version };
    failures.push(probe.message);
  }
  throw new AnswerError(`No clamd answers (${failures.join("; ")}). ${unreachableHint(conf)} (or give --clamd; --skip-clamd-check writes the configuration anyway)`);
}

function _check(problem: string | undefined): void {
  if (problem !== undefined) throw new AnswerError(problem);
}
