// The answers `onacc setup` collects, and the checks each one must pass. The same checks serve the
// wizard (a message under the prompt, then ask again) and `--yes` (an AnswerError: exit 3, nothing written).
import { statSync } from "node:fs";
import type { ActionOnFound } from "../actions/types.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { normalizePath } from "../config/values.ts";
import { isUnder } from "../engine/paths.ts";
import { OnaccError } from "../errors.ts";
import { uidOfUser } from "../../ffi/process.ts";

export interface SetupAnswers {
  clamd: ClamdEndpoint;
  /** What clamd answered to VERSION; absent when the check was skipped (--skip-clamd-check). */
  clamdVersion?: string;
  /** StreamMaxLength copied from the local clamd.conf, as written there (e.g. "100M"). */
  streamMaxLength?: string;
  /** TemporaryDirectory copied from the local clamd.conf: onacc never watches clamd's temp files. */
  temporaryDirectory?: string;
  /** The systemd unit running that clamd, when setup made it (the trial clamd's): onacc starts after it. */
  clamdUnit?: string;
  /** That clamd is the trial clamd of `onacc setup --trial` (it detects the EICAR test file only). */
  trialClamd?: boolean;
  /** OnAccessIncludePath: existing absolute directories. */
  protect: string[];
  /** OnAccessExcludePath. */
  excludePaths: string[];
  /** OnAccessPrevention. */
  prevention: boolean;
  /** OnAccessExcludeUname. */
  excludeUsers: string[];
  /** Passed on the command line (--remove/--move/--copy): clamd.conf has no option for it. */
  action: ActionOnFound;
  /** OnAccessMaxThreads. */
  threads: number;
}

/** An answer that fails its check (exit code 3: the configuration asked for is not valid). */
export class AnswerError extends OnaccError {
  constructor(message: string) {
    super("E_CONFIG", message);
  }
}

export const DEFAULT_THREADS = 5;
export const MAX_THREADS = 256;
export const DEFAULT_QUARANTINE = "/var/lib/onacc/quarantine";

/** Splits "a, b" or one-per-line input into trimmed, non-empty items (paths may contain spaces, not commas). */
export function splitList(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** The problem with one directory to protect or exclude, or undefined: absolute, existing, a directory. */
export function directoryProblem(path: string, what: string): string | undefined {
  if (!path.startsWith("/")) return `${what} "${path}" is not an absolute path (it must start with /)`;
  if (/[\r\n]/.test(path)) return `${what} "${path}" contains a line break`;
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `${what} "${path}" cannot be used: ${code === "ENOENT" ? "no such directory" : (code ?? String(err))}`;
  }
  if (!isDirectory) return `${what} "${path}" is not a directory`;
  return undefined;
}

/** Directories to protect: each checked; "/" is refused (every directory of the system would be marked). */
export function protectListProblem(paths: readonly string[]): string | undefined {
  if (paths.length === 0) return "Name at least one directory to protect";
  for (const path of paths) {
    const problem = directoryProblem(path, "Directory to protect");
    if (problem) return problem;
    if (normalizePath(path) === "/") {
      return 'Protecting "/" would mark every directory of the system: name the directories that matter (e.g. /srv, /home)';
    }
  }
  return undefined;
}

/** Subtrees to skip: each an existing directory inside one of the protected ones. */
export function excludeListProblem(paths: readonly string[], protect: readonly string[]): string | undefined {
  for (const path of paths) {
    const problem = directoryProblem(path, "Directory to exclude");
    if (problem) return problem;
    if (!protect.some((root) => isUnder(normalizePath(path), normalizePath(root)))) {
      return `Directory to exclude "${path}" is not inside a protected directory (${protect.join(", ")})`;
    }
  }
  return undefined;
}

/** Users to exclude: each must exist (OnAccessExcludeUname with an unknown name would exclude nobody). */
export function userListProblem(users: readonly string[]): string | undefined {
  for (const user of users) {
    if (/\s/.test(user)) return `User name "${user}" contains a blank`;
    if (uidOfUser(user) === undefined) return `There is no user "${user}" on this system`;
  }
  return undefined;
}

/** OnAccessMaxThreads from text: a whole number 1..256. */
export function parseThreads(text: string): number | string {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return `Worker count "${text}" is not a whole number`;
  const n = Number(trimmed);
  if (n < 1 || n > MAX_THREADS) return `Worker count ${n} is out of range: choose 1 to ${MAX_THREADS}`;
  return n;
}

/** yes/no in the spellings clamd.conf accepts. */
export function parseYesNo(text: string, what: string): boolean | string {
  if (/^(yes|true|1|on)$/i.test(text)) return true;
  if (/^(no|false|0|off)$/i.test(text)) return false;
  return `${what} "${text}" must be yes or no`;
}

/**
 * The action on FOUND from "none", "remove", "move:DIR" or "copy:DIR" (or "move" with `defaultDir`).
 * Returns the action or the problem with it.
 */
export function parseAction(text: string, defaultDir = DEFAULT_QUARANTINE): ActionOnFound | string {
  const m = /^(none|remove|move|copy)(?::(.*))?$/.exec(text.trim());
  if (!m) return `Action "${text}" must be none, remove, move:DIR or copy:DIR`;
  const kind = m[1] as ActionOnFound["kind"];
  if (kind === "none" || kind === "remove") {
    if (m[2] !== undefined) return `Action "${kind}" takes no directory`;
    return { kind };
  }
  const dir = m[2] === undefined || m[2] === "" ? defaultDir : m[2];
  return { kind, dir: normalizePath(dir) };
}

/**
 * The problem with a quarantine directory, or undefined. It may be missing (setup creates it), but not
 * relative, not something else than a directory, not inside a protected tree (onacc would scan, and block,
 * its own quarantine), and without blanks: it travels in $ONACC_OPTIONS, which systemd splits at blanks.
 */
export function quarantineProblem(dir: string, protect: readonly string[]): string | undefined {
  if (!dir.startsWith("/")) return `Quarantine directory "${dir}" is not an absolute path`;
  if (/\s/.test(dir)) return `Quarantine directory "${dir}" contains a blank (the service passes it in a space-separated option list)`;
  if (dir.includes("%") || dir.includes("$") || dir.includes("\\")) {
    return `Quarantine directory "${dir}" contains %, $ or \\, which systemd would expand`;
  }
  const normal = normalizePath(dir);
  const inside = protect.find((root) => isUnder(normal, normalizePath(root)));
  if (inside !== undefined) return `Quarantine directory "${dir}" is inside the protected directory "${inside}": onacc would block its own quarantine`;
  try {
    if (!statSync(dir).isDirectory()) return `Quarantine directory "${dir}" exists but is not a directory`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") return `Quarantine directory "${dir}" cannot be used: ${(err as NodeJS.ErrnoException).code}`;
  }
  return undefined;
}

/** The action's problem (its directory), or undefined. */
export function actionProblem(action: ActionOnFound, protect: readonly string[]): string | undefined {
  return action.kind === "move" || action.kind === "copy" ? quarantineProblem(action.dir, protect) : undefined;
}

/** The action as onacc's command-line flag ("" for none). */
export function actionFlag(action: ActionOnFound): string {
  switch (action.kind) {
    case "none":
      return "";
    case "remove":
      return "--remove";
    case "move":
    case "copy":
      return `--${action.kind}=${action.dir}`;
  }
}

