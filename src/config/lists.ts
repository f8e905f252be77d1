// --watch-list / --exclude-list files: one absolute directory per line. Bad lines are skipped with a
// warning (clamonacc's behaviour: start anyway, say why under --verbose); a missing file is an error.
import { statSync } from "node:fs";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { describeFsError, readTextFile } from "./read.ts";
import { normalizePath } from "./values.ts";

export interface PathList {
  /** Valid directories, normalized (no trailing slash), each once, in file order. */
  paths: string[];
  /** The same, each with the line it was first given on (for messages). */
  entries: { path: string; line: number }[];
  /** One per skipped line, located as file:line. */
  warnings: ConfigProblem[];
}

/**
 * Reads a list file. Blank lines and lines starting with `#` are skipped; surrounding blanks are
 * trimmed. A line is skipped with a warning when it is not absolute, does not exist or is not a
 * directory (symbolic links to directories count as directories). Throws ConfigError when the file
 * itself cannot be read.
 */
export function readPathList(file: string, what: "watch list" | "exclude list"): PathList {
  const read = readTextFile(file, what);
  if ("problem" in read) throw new ConfigError([read.problem]);

  const paths = new Map<string, number>();
  const warnings: ConfigProblem[] = [];
  read.text.split("\n").forEach((rawLine, i) => {
    const entry = rawLine.trim();
    if (entry === "" || entry.startsWith("#")) return;
    const skip = (reason: string) => warnings.push({ file, line: i + 1, message: `Skipped "${entry}": ${reason}` });
    if (!entry.startsWith("/")) return skip("not an absolute path");
    let isDirectory: boolean;
    try {
      isDirectory = statSync(entry).isDirectory();
    } catch (err) {
      return skip(describeFsError(err));
    }
    if (!isDirectory) return skip("not a directory");
    const path = normalizePath(entry);
    if (!paths.has(path)) paths.set(path, i + 1);
  });
  return { paths: [...paths.keys()], entries: [...paths].map(([path, line]) => ({ path, line })), warnings };
}
