// Loads the configuration onacc runs with: clamd.conf plus the optional --watch-list/--exclude-list
// files, with every problem of all of them reported in one ConfigError.
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { readPathList, type PathList } from "./lists.ts";
import { parseConfigText, type ParseOptions, type ParsedConfig } from "./parse.ts";
import { readTextFile } from "./read.ts";

export interface ListFiles {
  /** -W/--watch-list: added to OnAccessIncludePath. */
  watchList?: string;
  /** -e/--exclude-list: added to OnAccessExcludePath. */
  excludeList?: string;
}

/**
 * Reads and validates `file` (clamd.conf syntax) and the list files. Throws ConfigError listing every
 * problem; returns the config with list entries merged (deduplicated) and all warnings.
 */
export function loadConfig(file: string, lists: ListFiles = {}, options: ParseOptions = {}): ParsedConfig {
  const problems: ConfigProblem[] = [];
  let parsed: ParsedConfig | undefined;
  const read = readTextFile(file, "configuration file");
  if ("problem" in read) problems.push(read.problem);
  else parsed = _collectProblems(problems, () => parseConfigText(read.text, file, options));

  const { watchList, excludeList } = lists;
  const watch = watchList === undefined ? undefined : _collectProblems(problems, () => readPathList(watchList, "watch list"));
  const exclude = excludeList === undefined ? undefined : _collectProblems(problems, () => readPathList(excludeList, "exclude list"));
  if (problems.length > 0 || parsed === undefined) throw new ConfigError(problems);

  const onAccess = parsed.config.onAccess;
  return {
    config: {
      ...parsed.config,
      onAccess: {
        ...onAccess,
        includePaths: _merge(onAccess.includePaths, watch),
        excludePaths: _merge(onAccess.excludePaths, exclude),
      },
    },
    warnings: [...parsed.warnings, ...(watch?.warnings ?? []), ...(exclude?.warnings ?? [])],
  };
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

function _merge(fromConfig: string[], list: PathList | undefined): string[] {
  return [...new Set([...fromConfig, ...(list?.paths ?? [])])];
}
