// clamd.conf-syntax text → OnaccConfig. The main file holds clamd's options (and onacc-only ones when
// clamd never reads it); onacc's drop-ins hold onacc-only options. Values are checked with valibot, the
// options against each other, and every problem of every file is reported at once as `file:line: message`.
import * as v from "valibot";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { isUnder } from "../engine/paths.ts";
import { oneLine } from "../log/display-path.ts";
import { CLAMD_OPTION_NAMES, clamdOptionOf } from "./clamd-options.ts";
import { ONACC_DROPIN_DIR, ONACC_OPTION_NAMES, ONACC_OPTIONS, isOnaccOption, onaccOnlyOptions, onaccOptionsSchema } from "./onacc-options.ts";
import { closestName } from "./suggest.ts";
import { readConfigLines, type ConfigEntry } from "./syntax.ts";
import { excludingTemporaryDirectory, temporaryDirectoryNotice } from "./temporary-directory.ts";
import type { ClamdEndpoint, OnaccConfig } from "./types.ts";
import {
  absolutePathValue,
  booleanValue,
  hostValue,
  isWildcardAddress,
  numberValue,
  portValue,
  sizeValue,
  textValue,
  uidValue,
} from "./values.ts";

export interface ParsedConfig {
  config: OnaccConfig;
  /** Things worth saying under --verbose that do not stop onacc (located like problems). */
  warnings: ConfigProblem[];
  /** Something the configuration asks for that onacc will not do (always shown). */
  notices: ConfigProblem[];
}

/** A file's name and text. */
export interface ConfigSource {
  file: string;
  text: string;
}

export interface ParseOptions {
  /** clamd endpoints come from the command line (--clamd): the file need not name a socket. */
  endpointsGiven?: boolean;
  /** onacc's drop-in files, in the order they are read: onacc-only options only. */
  dropIns?: ConfigSource[];
  /** Where drop-ins live, for messages (default /etc/onacc/onacc.conf.d). */
  dropInDir?: string;
  /**
   * Why clamd reads the main file ("it is clamd's default configuration"), or undefined when it does not;
   * asked only when the main file holds an onacc-only option. Without it, no file counts as clamd's.
   */
  clamdReads?: (file: string) => string | undefined;
}

// The clamd options onacc reads. Defaults are written as clamd.conf text, exactly as `man clamd.conf`
// (1.4) gives them, and go through the same schema as a written value.
const _usedOptions = v.object({
  LocalSocket: v.optional(absolutePathValue),
  TCPSocket: v.optional(portValue),
  TCPAddr: v.optional(v.array(hostValue), []),
  StreamMaxLength: v.optional(sizeValue, "100M"),
  TemporaryDirectory: v.optional(absolutePathValue),
  User: v.optional(textValue),
  DatabaseDirectory: v.optional(absolutePathValue),
  OnAccessMountPath: v.optional(v.array(absolutePathValue), []),
  OnAccessIncludePath: v.optional(v.array(absolutePathValue), []),
  OnAccessExcludePath: v.optional(v.array(absolutePathValue), []),
  OnAccessExcludeUname: v.optional(v.array(textValue), []),
  // Hint: 0 is accepted and means root; in clamonacc a 0 silently disabled the whole option.
  OnAccessExcludeUID: v.optional(v.array(uidValue), []),
  OnAccessExcludeRootUID: v.optional(booleanValue, "no"),
  OnAccessMaxFileSize: v.optional(sizeValue, "5M"),
  OnAccessMaxThreads: v.optional(numberValue(1, 256), "5"),
  // Upper bound: the largest delay a JS timer can wait (and clamd's int).
  OnAccessCurlTimeout: v.optional(numberValue(1, 2147483647, "ms"), "5000"),
  OnAccessRetryAttempts: v.optional(numberValue(0), "0"),
  OnAccessDenyOnError: v.optional(booleanValue, "no"),
  OnAccessPrevention: v.optional(booleanValue, "no"),
  OnAccessExtraScanning: v.optional(booleanValue, "no"),
  OnAccessDisableDDD: v.optional(booleanValue, "no"),
});

type _UsedOption = keyof typeof _usedOptions.entries;

// The options clamd lets you give several times; their values accumulate.
const _REPEATABLE: ReadonlySet<string> = new Set<_UsedOption>([
  "TCPAddr",
  "OnAccessMountPath",
  "OnAccessIncludePath",
  "OnAccessExcludePath",
  "OnAccessExcludeUname",
  "OnAccessExcludeUID",
]);

const _USED: ReadonlySet<string> = new Set(Object.keys(_usedOptions.entries));

// More problems than this in one file are summed up: a binary file given by mistake would fill the screen.
const _MAX_PROBLEMS_PER_FILE = 25;

interface _Place {
  file: string;
  line: number;
}

/** Option values as written (a list for repeatable options) and where each came from. */
class _Values {
  readonly raw: Record<string, string | string[]> = {};
  readonly places = new Map<string, _Place[]>();

  add(name: string, value: string, place: _Place, repeatable: boolean): void {
    const places = this.places.get(name) ?? [];
    if (repeatable) ((this.raw[name] ??= []) as string[]).push(value);
    else this.raw[name] = value;
    this.places.set(name, [...places, place]);
  }

  placeOf(name: string, index = 0): _Place | undefined {
    return this.places.get(name)?.[index];
  }
}

/**
 * Parses the main file's text (and the drop-ins'). Throws ConfigError listing every problem; returns the
 * config, the warnings and the notices otherwise.
 *
 * Decisions, where clamd.conf leaves room:
 * - A line clamd would refuse is an error: an unknown option name (a typo of any option, in any case:
 *   names are case-sensitive, as in clamd), with a "did you mean" suggestion where one is close.
 * - Options clamd knows and onacc does not use are accepted, values unchecked. clamd also takes its
 *   command-line names in the file (`tempdir /x` sets TemporaryDirectory), and so does onacc.
 * - A clamd option given twice that takes one value keeps the FIRST value, as clamd does (optaddarg()
 *   ignores later ones); the later line gets a warning. An onacc-only option that takes one value may be
 *   given once in all files together: a second one is an error (which one was meant?).
 * - onacc-only options in the main file are errors when clamd reads that file (see clamd-readers.ts).
 * - TCPSocket without TCPAddr, and TCPAddr any/0.0.0.0/::, are errors only when there is no LocalSocket:
 *   with one, onacc connects there (as clamonacc does) and the TCP part only earns a warning.
 * - TemporaryDirectory: include and mount paths equal to it or inside it are dropped with a notice, and it
 *   is excluded. Unset, nothing is excluded: clamd then uses its $TMPDIR or /tmp, shared with every
 *   program, and clamd's own opens there are never scanned anyway (its PID and User are excluded).
 */
export function parseConfigText(text: string, file: string, options: ParseOptions = {}): ParsedConfig {
  const dropInDir = options.dropInDir ?? ONACC_DROPIN_DIR;
  const files = [{ file, ...readConfigLines(text, file) }, ...(options.dropIns ?? []).map((d) => ({ file: d.file, ...readConfigLines(d.text, d.file) }))];
  const report: _Report = { problems: files.flatMap((f) => f.problems), warnings: files.flatMap((f) => f.warnings), notices: [] };
  const { clamd, onaccEntries } = _sortEntries(files, dropInDir, report);

  const inMain = onaccEntries.filter((e) => e.file === file);
  const why = inMain.length > 0 ? options.clamdReads?.(file) : undefined;
  for (const e of why === undefined ? [] : inMain) {
    report.problems.push({ ...e, message: `${e.name} is an onacc-only option, but clamd reads this file (${why}) and refuses to start on an option it does not know: move it to a file in ${dropInDir}` });
  }
  const onacc = _collectOnaccOptions(onaccEntries, report.problems);

  const result = v.safeParse(_usedOptions, clamd.raw, { abortPipeEarly: true });
  if (!result.success) report.problems.push(..._valueProblems(result.issues, clamd, file));
  const onaccResult = v.safeParse(onaccOptionsSchema, onacc.raw, { abortPipeEarly: true });
  if (!onaccResult.success) report.problems.push(..._valueProblems(onaccResult.issues, onacc, file));
  _checkEndpoints(clamd, (name, i) => _at(clamd.placeOf(name, i), file), report.problems, report.warnings, options.endpointsGiven);
  _warnAboutValues(files, report);

  const order = files.map((f) => f.file);
  if (report.problems.length > 0 || !result.success || !onaccResult.success) throw new ConfigError(_ordered(report.problems, order, true));
  const o = result.output;
  const { includePaths, mountPaths } = _outsideTemporaryDirectory(o, clamd, report);

  const config: OnaccConfig = {
    file,
    dropIns: order.slice(1),
    endpoints: _endpointsOf(o),
    streamMaxLength: o.StreamMaxLength,
    onAccess: {
      mountPaths,
      includePaths,
      excludePaths: excludingTemporaryDirectory(_unique(o.OnAccessExcludePath), o.TemporaryDirectory),
      excludeUnames: _unique(o.OnAccessExcludeUname),
      excludeUids: _unique(o.OnAccessExcludeUID),
      excludeRootUid: o.OnAccessExcludeRootUID,
      maxFileSize: o.OnAccessMaxFileSize,
      maxThreads: o.OnAccessMaxThreads,
      timeoutMs: o.OnAccessCurlTimeout,
      retryAttempts: o.OnAccessRetryAttempts,
      denyOnError: o.OnAccessDenyOnError,
      prevention: o.OnAccessPrevention,
      extraScanning: o.OnAccessExtraScanning,
      disableDDD: o.OnAccessDisableDDD,
    },
    onaccOnly: onaccOnlyOptions(onaccResult.output),
  };
  if (o.User !== undefined) config.clamdUser = o.User;
  if (o.TemporaryDirectory !== undefined) config.temporaryDirectory = o.TemporaryDirectory;
  if (o.DatabaseDirectory !== undefined) config.databaseDirectory = o.DatabaseDirectory;
  return { config, warnings: _ordered(report.warnings, order), notices: _ordered(report.notices, order) };
}

type _UsedValues = v.InferOutput<typeof _usedOptions>;

/** What parsing says besides the config. */
interface _Report {
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
  notices: ConfigProblem[];
}

/** One file's lines: the main file first, then the drop-ins. */
interface _FileLines {
  file: string;
  entries: ConfigEntry[];
}

function _at(place: _Place | undefined, mainFile: string) {
  return (message: string): ConfigProblem => ({ file: place?.file ?? mainFile, line: place?.line ?? 0, message });
}

/**
 * Sorts every line: clamd options onacc uses (main file only), onacc-only options (any file), and the
 * refused ones: names clamd does not know, and clamd options in a drop-in.
 */
function _sortEntries(files: _FileLines[], dropInDir: string, report: _Report): { clamd: _Values; onaccEntries: (ConfigEntry & _Place)[] } {
  const clamd = new _Values();
  const onaccEntries: (ConfigEntry & _Place)[] = [];
  const mainFile = files[0]!.file;
  for (const { file, entries } of files) {
    for (const entry of entries) {
      const place = { file, line: entry.line };
      const option = clamdOptionOf(entry.name);
      if (isOnaccOption(entry.name)) onaccEntries.push({ ...entry, file });
      else if (option === undefined) report.problems.push({ ...place, message: _unknownOption(entry.name) });
      else if (file !== mainFile) {
        const list = [...ONACC_OPTION_NAMES].join(", ");
        report.problems.push({ ...place, message: `${entry.name} is a clamd option: set it in ${mainFile}; files in ${dropInDir} hold onacc-only options (${list})` });
      } else if (_USED.has(option)) _addClamdValue(clamd, option, entry.value, place, report.warnings);
    }
  }
  return { clamd, onaccEntries };
}

/** Warnings about values that parse but probably do not say what was meant. */
function _warnAboutValues(files: _FileLines[], report: _Report): void {
  const failed = new Set(report.problems.map((p) => `${p.file}:${p.line}`));
  for (const { file, entries } of files) {
    for (const entry of entries) {
      const place = { file, line: entry.line };
      const option = clamdOptionOf(entry.name) ?? entry.name;
      if ((_USED.has(option) || isOnaccOption(option)) && /[ \t]#/.test(entry.value) && !failed.has(`${file}:${entry.line}`)) {
        report.warnings.push({ ...place, message: `The value of ${entry.name} contains "#": clamd.conf has no end-of-line comments, so it is part of the value` });
      }
      if (option === "OnAccessExcludeUID" && /^0+$/.test(entry.value)) {
        report.warnings.push({ ...place, message: "OnAccessExcludeUID 0 excludes root here; clamonacc instead ignored the whole option when 0 was listed" });
      }
    }
  }
}

/** LocalSocket first (preferred for fd passing), then each TCPAddr with TCPSocket. */
function _endpointsOf(o: _UsedValues): ClamdEndpoint[] {
  const endpoints: ClamdEndpoint[] = [];
  if (o.LocalSocket !== undefined) endpoints.push({ kind: "unix", path: o.LocalSocket });
  if (o.TCPSocket !== undefined) {
    for (const host of _unique(o.TCPAddr)) {
      if (!isWildcardAddress(host)) endpoints.push({ kind: "tcp", host, port: o.TCPSocket });
    }
  }
  return endpoints;
}

/** Include and mount paths without those equal to or inside TemporaryDirectory (each dropped with a notice). */
function _outsideTemporaryDirectory(o: _UsedValues, clamd: _Values, report: _Report): { includePaths: string[]; mountPaths: string[] } {
  const tmp = o.TemporaryDirectory;
  const watched = (name: "OnAccessIncludePath" | "OnAccessMountPath") =>
    _unique(
      o[name].filter((path, i) => {
        const notice = temporaryDirectoryNotice(name, path, tmp);
        if (notice !== undefined) report.notices.push(_at(clamd.placeOf(name, i), "")(notice));
        return notice === undefined;
      }),
    );
  const includePaths = watched("OnAccessIncludePath");
  const mountPaths = watched("OnAccessMountPath");
  const around = tmp === undefined ? undefined : [...includePaths, ...mountPaths].find((p) => isUnder(tmp, p));
  if (tmp !== undefined && around !== undefined) {
    report.warnings.push(
      _at(clamd.placeOf("TemporaryDirectory"), "")(`clamd's TemporaryDirectory "${tmp}" lies inside the watched "${around}": it is not scanned, and folders created in it are not followed`),
    );
  }
  return { includePaths, mountPaths };
}

/** A clamd option onacc uses: repeatable ones accumulate; otherwise the first value wins, as in clamd. */
function _addClamdValue(values: _Values, option: string, value: string, place: _Place, warnings: ConfigProblem[]): void {
  const first = values.placeOf(option);
  if (first !== undefined && !_REPEATABLE.has(option)) {
    warnings.push({ ...place, message: `${option} is set again (first at line ${first.line}); clamd uses the first value, and so does onacc` });
    return;
  }
  values.add(option, value, place, _REPEATABLE.has(option));
}

/** onacc-only options from every file: lists accumulate, a single-value option may appear once. */
function _collectOnaccOptions(entries: (ConfigEntry & _Place)[], problems: ConfigProblem[]): _Values {
  const values = new _Values();
  for (const e of entries) {
    const name = e.name as keyof typeof ONACC_OPTIONS;
    const repeatable = ONACC_OPTIONS[name].repeatable;
    const first = values.placeOf(name);
    if (first !== undefined && !repeatable) {
      const where = first.file === e.file ? `line ${first.line}` : `${first.file}:${first.line}`;
      problems.push({ file: e.file, line: e.line, message: `${name} is set again (first at ${where}): it takes one value, keep one of them` });
      continue;
    }
    values.add(name, e.value, { file: e.file, line: e.line }, repeatable);
  }
  return values;
}

/** A valibot issue → `Invalid Name "value": why`, at the line the value came from. */
function _valueProblems(issues: v.BaseIssue<unknown>[], values: _Values, mainFile: string): ConfigProblem[] {
  return issues.map((issue) => {
    const name = String(issue.path?.[0]?.key ?? "");
    const index = typeof issue.path?.[1]?.key === "number" ? issue.path[1].key : undefined;
    const raw = values.raw[name];
    const value = index === undefined ? raw : (raw as string[])[index];
    const place = values.placeOf(name, index ?? 0);
    const comment = /[ \t]#/.test(String(value)) ? " (clamd.conf has no end-of-line comments)" : "";
    return { file: place?.file ?? mainFile, line: place?.line ?? 0, message: `Invalid ${name} "${value}": ${issue.message}${comment}` };
  });
}

/** `Unknown option "Name"`, with the closest known name when one is close enough to be a typo. */
function _unknownOption(name: string): string {
  const suggestion = closestName(name, [...CLAMD_OPTION_NAMES, ...ONACC_OPTION_NAMES]);
  let hint = "";
  if (suggestion !== undefined) {
    const caseOnly = suggestion.toLowerCase() === name.toLowerCase();
    hint = `: did you mean ${suggestion}?${caseOnly ? " (option names are case-sensitive)" : ""}`;
  }
  return `Unknown option "${oneLine(name)}"${hint}`;
}

/** Can onacc reach clamd with what is configured? (LocalSocket, TCPSocket, TCPAddr together.) */
function _checkEndpoints(
  values: _Values,
  at: (name: string, index?: number) => (message: string) => ConfigProblem,
  problems: ConfigProblem[],
  warnings: ConfigProblem[],
  endpointsGiven = false,
): void {
  const hasLocal = values.raw.LocalSocket !== undefined;
  const port = values.raw.TCPSocket as string | undefined;
  const addresses = (values.raw.TCPAddr ?? []) as string[];

  if (!hasLocal && port === undefined) {
    if (endpointsGiven) return;
    problems.push(at("")("No clamd socket configured: set LocalSocket (e.g. /run/clamav/clamd.ctl), or TCPSocket together with TCPAddr"));
    return;
  }
  if (port === undefined) {
    if (addresses.length > 0) warnings.push(at("TCPAddr")("TCPAddr is ignored: there is no TCPSocket to go with it"));
    return;
  }
  if (addresses.length === 0) {
    if (hasLocal) {
      warnings.push(at("TCPSocket")("TCPSocket has no TCPAddr, so onacc connects through LocalSocket only (it cannot connect to clamd's \"all addresses\")"));
    } else {
      problems.push(at("TCPSocket")(`TCPSocket ${port} needs a TCPAddr: onacc must know which address to connect to (e.g. "TCPAddr 127.0.0.1")`));
    }
    return;
  }
  addresses.forEach((address, i) => {
    if (!isWildcardAddress(address)) return;
    const what = `TCPAddr "${address}" means every address: clamd can listen there, but onacc cannot connect to it`;
    if (hasLocal) warnings.push(at("TCPAddr", i)(`${what}; it is skipped`));
    else problems.push(at("TCPAddr", i)(`${what}; give clamd's address instead (e.g. "TCPAddr 127.0.0.1")`));
  });
}

function _unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/**
 * Problems file by file (in the order the files were read), in line order; those not tied to a line
 * (line 0) last. With `cap`, a file with very many problems gets its first ones and a count of the rest.
 */
function _ordered(problems: ConfigProblem[], files: string[], cap = false): ConfigProblem[] {
  const fileRank = (p: ConfigProblem) => (files.includes(p.file) ? files.indexOf(p.file) : files.length);
  const lineRank = (p: ConfigProblem) => (p.line === 0 ? Infinity : p.line);
  const sorted = [...problems].sort((a, b) => fileRank(a) - fileRank(b) || (lineRank(a) === lineRank(b) ? 0 : lineRank(a) - lineRank(b)));
  if (!cap) return sorted;
  const out: ConfigProblem[] = [];
  const perFile = new Map<string, number>();
  for (const p of sorted) {
    const n = (perFile.get(p.file) ?? 0) + 1;
    perFile.set(p.file, n);
    if (n <= _MAX_PROBLEMS_PER_FILE) out.push(p);
  }
  for (const [f, n] of perFile) {
    if (n > _MAX_PROBLEMS_PER_FILE) out.push({ file: f, line: 0, message: `${n - _MAX_PROBLEMS_PER_FILE} more problems not shown: is this a clamd.conf-style file at all?` });
  }
  return out;
}
