// Loads the configuration onacc runs with: the main file (clamd.conf syntax), onacc's drop-in directory
// and the optional --watch-list/--exclude-list files, with every problem of all of them in one ConfigError.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { whyClamdReads } from "./clamd-readers.ts";
import { readPathList } from "./lists.ts";
import { ONACC_DROPIN_DIR } from "./onacc-options.ts";
import { parseConfigText, type ConfigSource, type ParsedConfig } from "./parse.ts";
import { describeFsError, readTextFile } from "./read.ts";
import { temporaryDirectoryNotice } from "./temporary-directory.ts";

export interface ListFiles {
  /** -W/--watch-list: added to OnAccessIncludePath. */
  watchList?: string;
  /** -e/--exclude-list: added to OnAccessExcludePath. */
  excludeList?: string;
}

export interface LoadOptions {
  /** clamd endpoints come from the command line (--clamd): the file need not name a socket. */
  endpointsGiven?: boolean;
  /** --config-dir: onacc's drop-in directory (default /etc/onacc/onacc.conf.d); a missing one is empty. */
  configDir?: string;
  /** Why clamd reads a file, or undefined (default: clamd's default configuration and running clamds' files). */
  clamdReads?: (file: string) => string | undefined;
}

/**
 * Reads and validates `file`, the `*.conf` files of the drop-in directory (in name order) and the list
 * files. Throws ConfigError listing every problem; returns the config with list entries merged
 * (deduplicated), the warnings and the notices.
 */
export function loadConfig(file: string, lists: ListFiles = {}, options: LoadOptions = {}): ParsedConfig {
  const problems: ConfigProblem[] = [];
  const dropInDir = options.configDir ?? ONACC_DROPIN_DIR;
  const dropIns = readDropIns(dropInDir, file, problems);
  let parsed: ParsedConfig | undefined;
  const read = readTextFile(file, "configuration file");
  if ("problem" in read) problems.unshift(read.problem);
  else {
    parsed = _collectProblems(problems, () =>
      parseConfigText(read.text, file, { endpointsGiven: options.endpointsGiven, dropIns, dropInDir, clamdReads: options.clamdReads ?? whyClamdReads }),
    );
  }

  const { watchList, excludeList } = lists;
  const watch = watchList === undefined ? undefined : _collectProblems(problems, () => readPathList(watchList, "watch list"));
  const exclude = excludeList === undefined ? undefined : _collectProblems(problems, () => readPathList(excludeList, "exclude list"));
  if (problems.length > 0 || parsed === undefined) throw new ConfigError(problems);

  const onAccess = parsed.config.onAccess;
  const notices = [...parsed.notices];
  const watched = (watch?.entries ?? []).filter(({ path, line }) => {
    const notice = temporaryDirectoryNotice("Watch-list entry", path, parsed.config.temporaryDirectory);
    if (notice !== undefined) notices.push({ file: watchList!, line, message: notice });
    return notice === undefined;
  });
  return {
    config: {
      ...parsed.config,
      onAccess: {
        ...onAccess,
        includePaths: _merge(onAccess.includePaths, watched.map((e) => e.path)),
        excludePaths: _merge(onAccess.excludePaths, exclude?.paths ?? []),
      },
    },
    warnings: [...parsed.warnings, ...(watch?.warnings ?? []), ...(exclude?.warnings ?? [])],
    notices,
  };
}

/**
 * The drop-in files: `*.conf` in `dir` (not hidden ones), in name order, without `mainFile` should it lie
 * there. A missing directory has none; one that cannot be read is a problem.
 */
export function readDropIns(dir: string, mainFile: string, problems: ConfigProblem[]): ConfigSource[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      problems.push({ file: dir, line: 0, message: `Cannot read the drop-in directory: ${describeFsError(err)}` });
    }
    return [];
  }
  const sources: ConfigSource[] = [];
  for (const name of names.filter((n) => n.endsWith(".conf") && !n.startsWith(".")).sort()) {
    const file = join(dir, name);
    if (file === mainFile) continue;
    const read = readTextFile(file, "drop-in file");
    if ("problem" in read) problems.push(read.problem);
    else sources.push({ file, text: read.text });
  }
  return sources;
}

/** Runs `step`; a ConfigError's problems join `problems` (so later files are still checked). */
function _collectProblems<T>(problems: ConfigProblem[], step: () => T): T | undefined {
  try {
    return step();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return undefined;
  }
}

function _merge(fromConfig: string[], fromList: string[]): string[] {
  return [...new Set([...fromConfig, ...fromList])];
}
