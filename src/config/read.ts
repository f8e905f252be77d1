// Reads a configuration or list file whole; a failure becomes a ConfigProblem naming the file and why.
import { readFileSync } from "node:fs";
import type { ConfigProblem } from "../errors.ts";

const _REASONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
  ENOTDIR: "a component of the path is not a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the path is too long",
};

/** Why a file-system call failed, in words ("no such file or directory"). */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (code && _REASONS[code]) ?? (err instanceof Error ? err.message : String(err));
}

/** The file's text, or a problem such as `/etc/x: Cannot read watch list: permission denied`. */
export function readTextFile(file: string, what: string): { text: string } | { problem: ConfigProblem } {
  try {
    return { text: readFileSync(file, "utf8") };
  } catch (err) {
    return { problem: { file, line: 0, message: `Cannot read ${what}: ${describeFsError(err)}` } };
  }
}
