// clamd.conf text → OnaccConfig: picks the options onacc uses, validates them with valibot, checks how
// they fit together, and reports every problem of the file at once as `file:line: message`.
import * as v from "valibot";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { CLAMD_OPTION_NAMES } from "./clamd-options.ts";
import { closestName } from "./suggest.ts";
import { readConfigLines, type ConfigEntry } from "./syntax.ts";
import type { ClamdEndpoint, OnaccConfig } from "./types.ts";
import {
  absolutePathValue,
  booleanValue,
  durationValue,
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
}

// The options onacc reads. Defaults are written as clamd.conf text, exactly as `man clamd.conf` (1.4)
// gives them, and go through the same schema as a written value.
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
  // onacc's own (clamd refuses it: only in onacc's own config file). How long --move/--copy keep files.
  QuarantineRetention: v.optional(durationValue, "0"),
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

/** What one file says about the used options: the text of each value and the line it came from. */
interface _Collected {
  raw: Record<string, string | string[]>;
  lines: Map<string, number[]>;
}

/**
 * Parses clamd.conf text. Throws ConfigError listing every problem (syntax, unknown OnAccess option,
 * bad value, missing or unusable socket) with its line; returns the config and the warnings otherwise.
 *
 * Decisions, where clamd.conf leaves room:
 * - An option given twice that takes one value keeps the FIRST value, as clamd does (optaddarg() ignores
 *   later ones); the later line gets a warning.
 * - Options clamd knows and onacc does not use are accepted silently, values unchecked.
 * - An unknown option is an error when it looks like an OnAccess option or like an option onacc reads
 *   (a typo there silently changes behaviour), with a "did you mean" suggestion; any other unknown
 *   option is a warning. (clamd itself refuses every unknown option.)
 * - TCPSocket without TCPAddr, and TCPAddr any/0.0.0.0/::, are errors only when there is no LocalSocket:
 *   with one, onacc connects there (as clamonacc does) and the TCP part only earns a warning.
 */
export interface ParseOptions {
  /** clamd endpoints come from the command line (--clamd): the file need not name a socket. */
  endpointsGiven?: boolean;
}

export function parseConfigText(text: string, file: string, options: ParseOptions = {}): ParsedConfig {
  const { entries, problems, warnings } = readConfigLines(text, file);
  const at = (line: number) => (message: string) => ({ file, line, message });
  const collected = _collect(entries, file, problems, warnings);
  const { raw, lines } = collected;
  const lineOf = (name: string, index = 0) => lines.get(name)?.[index] ?? 0;

  const result = v.safeParse(_usedOptions, raw, { abortPipeEarly: true });
  if (!result.success) {
    for (const issue of result.issues) {
      const name = String(issue.path?.[0]?.key ?? "");
      const index = typeof issue.path?.[1]?.key === "number" ? issue.path[1].key : undefined;
      const value = index === undefined ? raw[name] : (raw[name] as string[])[index];
      const comment = /[ \t]#/.test(String(value)) ? " (clamd.conf has no end-of-line comments)" : "";
      problems.push(at(lineOf(name, index))(`Invalid ${name} "${value}": ${issue.message}${comment}`));
    }
  }

  _checkEndpoints(raw, lineOf, at, problems, warnings, options.endpointsGiven);

  const failedLines = new Set(problems.map((p) => p.line));
  for (const entry of entries) {
    if (_USED.has(entry.name) && /[ \t]#/.test(entry.value) && !failedLines.has(entry.line)) {
      warnings.push(at(entry.line)(`The value of ${entry.name} contains "#": clamd.conf has no end-of-line comments, so it is part of the value`));
    }
    if (entry.name === "OnAccessExcludeUID" && /^0+$/.test(entry.value)) {
      warnings.push(at(entry.line)("OnAccessExcludeUID 0 excludes root here; clamonacc instead ignored the whole option when 0 was listed"));
    }
  }

  if (problems.length > 0 || !result.success) throw new ConfigError(_byLine(problems));
  const o = result.output;

  const endpoints: ClamdEndpoint[] = [];
  if (o.LocalSocket !== undefined) endpoints.push({ kind: "unix", path: o.LocalSocket });
  if (o.TCPSocket !== undefined) {
    for (const host of _unique(o.TCPAddr)) {
      if (!isWildcardAddress(host)) endpoints.push({ kind: "tcp", host, port: o.TCPSocket });
    }
  }

  const config: OnaccConfig = {
    file,
    endpoints,
    streamMaxLength: o.StreamMaxLength,
    onAccess: {
      mountPaths: _unique(o.OnAccessMountPath),
      includePaths: _unique(o.OnAccessIncludePath),
      excludePaths: _unique(o.OnAccessExcludePath),
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
  };
  if (o.User !== undefined) config.clamdUser = o.User;
  if (o.TemporaryDirectory !== undefined) config.temporaryDirectory = o.TemporaryDirectory;
  if (o.DatabaseDirectory !== undefined) config.databaseDirectory = o.DatabaseDirectory;
  if (o.QuarantineRetention > 0) config.quarantineRetentionMs = o.QuarantineRetention;
  return { config, warnings: _byLine(warnings) };
}

/** Sorts entries into the used options (first value wins for single-value ones) and flags unknown names. */
function _collect(entries: ConfigEntry[], file: string, problems: ConfigProblem[], warnings: ConfigProblem[]): _Collected {
  const raw: Record<string, string | string[]> = {};
  const lines = new Map<string, number[]>();
  for (const { name, value, line } of entries) {
    if (_USED.has(name)) {
      const seen = lines.get(name);
      if (_REPEATABLE.has(name)) {
        ((raw[name] ??= []) as string[]).push(value);
        lines.set(name, [...(seen ?? []), line]);
      } else if (seen) {
        warnings.push({ file, line, message: `${name} is set again (first at line ${seen[0]}); clamd uses the first value, and so does onacc` });
      } else {
        raw[name] = value;
        lines.set(name, [line]);
      }
      continue;
    }
    if (CLAMD_OPTION_NAMES.has(name)) continue;

    const suggestion = closestName(name, CLAMD_OPTION_NAMES);
    let hint = "";
    if (suggestion !== undefined) {
      const caseOnly = suggestion.toLowerCase() === name.toLowerCase();
      hint = `: did you mean ${suggestion}?${caseOnly ? " (option names are case-sensitive)" : ""}`;
    }
    const serious = /^onaccess/i.test(name) || (suggestion !== undefined && _USED.has(suggestion));
    if (serious) problems.push({ file, line, message: `Unknown option "${name}"${hint}` });
    else warnings.push({ file, line, message: `Unknown option "${name}" is ignored (clamd would refuse it)${hint}` });
  }
  return { raw, lines };
}

/** Can onacc reach clamd with what is configured? (LocalSocket, TCPSocket, TCPAddr together.) */
function _checkEndpoints(
  raw: Record<string, string | string[]>,
  lineOf: (name: string, index?: number) => number,
  at: (line: number) => (message: string) => ConfigProblem,
  problems: ConfigProblem[],
  warnings: ConfigProblem[],
  endpointsGiven = false,
): void {
  const hasLocal = raw.LocalSocket !== undefined;
  const port = raw.TCPSocket as string | undefined;
  const addresses = (raw.TCPAddr ?? []) as string[];

  if (!hasLocal && port === undefined) {
    if (endpointsGiven) return;
    problems.push(at(0)("No clamd socket configured: set LocalSocket (e.g. /run/clamav/clamd.ctl), or TCPSocket together with TCPAddr"));
    return;
  }
  if (port === undefined) {
    if (addresses.length > 0) warnings.push(at(lineOf("TCPAddr"))("TCPAddr is ignored: there is no TCPSocket to go with it"));
    return;
  }
  if (addresses.length === 0) {
    if (hasLocal) {
      warnings.push(at(lineOf("TCPSocket"))("TCPSocket has no TCPAddr, so onacc connects through LocalSocket only (it cannot connect to clamd's \"all addresses\")"));
    } else {
      problems.push(at(lineOf("TCPSocket"))(`TCPSocket ${port} needs a TCPAddr: onacc must know which address to connect to (e.g. "TCPAddr 127.0.0.1")`));
    }
    return;
  }
  addresses.forEach((address, i) => {
    if (!isWildcardAddress(address)) return;
    const what = `TCPAddr "${address}" means every address: clamd can listen there, but onacc cannot connect to it`;
    if (hasLocal) warnings.push(at(lineOf("TCPAddr", i))(`${what}; it is skipped`));
    else problems.push(at(lineOf("TCPAddr", i))(`${what}; give clamd's address instead (e.g. "TCPAddr 127.0.0.1")`));
  });
}

function _unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/** Problems in file order; those not tied to a line (line 0) last. */
function _byLine(problems: ConfigProblem[]): ConfigProblem[] {
  const key = (p: ConfigProblem) => (p.line === 0 ? Infinity : p.line);
  return [...problems].sort((a, b) => (key(a) === key(b) ? 0 : key(a) - key(b)));
}
