// Typed errors for everything onacc reports to a person. Each carries a stable `code`; the CLI catches
// them once at the top and prints one clear line (stack traces only under --verbose). A failed libc call
// is ffi/'s SyscallError, which knows nothing of this file: isOnaccError() and exitCodeFor() take it in.
import { SyscallError } from "../ffi/errors.ts";

export type ErrorCode =
  | "E_USAGE" // bad command line
  | "E_CONFIG" // bad configuration file or list file
  | "E_CLAMD" // clamd unreachable, timed out, or answered with an error
  | "E_SYSCALL" // a libc call failed (see ffi/errors.ts)
  | "E_RUNTIME"; // anything else the agent could not do

export class OnaccError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class UsageError extends OnaccError {
  constructor(message: string) {
    super("E_USAGE", message);
  }
}

/** One configuration problem, located as `file:line`. */
export interface ConfigProblem {
  file: string;
  line: number; // 0 when the problem is not tied to one line (e.g. a missing required option)
  message: string;
}

/** All problems of one configuration, reported together rather than one per run. */
export class ConfigError extends OnaccError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super("E_CONFIG", problems.map(formatProblem).join("\n"));
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return p.line > 0 ? `${p.file}:${p.line}: ${p.message}` : `${p.file}: ${p.message}`;
}

/** Why a conversation with clamd did not produce a verdict. */
export type ClamdErrorKind =
  | "connect" // socket missing, refused, unreachable
  | "timeout" // connect, send or receive exceeded OnAccessCurlTimeout
  | "protocol" // clamd's reply could not be understood
  | "size-limit" // INSTREAM size limit exceeded (StreamMaxLength)
  | "refused" // clamd answered with an error for this request
  | "io"; // reading the file to stream failed

export class ClamdError extends OnaccError {
  readonly kind: ClamdErrorKind;
  constructor(kind: ClamdErrorKind, message: string, options?: { cause?: unknown }) {
    super("E_CLAMD", message, options);
    this.kind = kind;
  }
}

/** Exit codes, documented in --help and the README. */
export const ExitCode = {
  ok: 0,
  runtime: 1, // the agent failed while running, or clamd could not be reached for --ping/--wait
  usage: 2, // bad command line
  config: 3, // bad configuration
  clamd: 4, // clamd needed at start-up but unreachable
} as const;

/** onacc's own errors, whose message is meant for a person as it stands: OnaccError and SyscallError. */
export function isOnaccError(err: unknown): err is OnaccError | SyscallError {
  return err instanceof OnaccError || err instanceof SyscallError;
}

export function exitCodeFor(err: unknown): number {
  if (!isOnaccError(err)) return ExitCode.runtime;
  switch (err.code) {
    case "E_USAGE":
      return ExitCode.usage;
    case "E_CONFIG":
      return ExitCode.config;
    case "E_CLAMD":
      return ExitCode.clamd;
    default:
      return ExitCode.runtime;
  }
}
