// clamonacc's command line, parsed exactly: the flag table (shared with --help and with citty) and
// parseRunArgs(), which turns argv into validated RunOptions or throws one UsageError.
//
// Why not citty's parser: citty 0.2 hands flags to node:util parseArgs with strict:false, so an unknown
// or misspelt flag is silently kept, `--no-x` is read as a negation, `--foreground=no` counts as true,
// and there is no mutual exclusion; its runMain also takes `-v` for --version, which is clamonacc's
// --verbose. citty keeps the command/subcommand structure (`onacc`, `onacc setup`, `onacc status`), and
// `runArgsDef` below tells it which flags take a value so it finds a subcommand after `-c FILE`; the run
// command then calls parseRunArgs() on its raw argv.
import type { ArgsDef } from "citty";
import { resolve } from "node:path";
import { CLAMD_URL_FORMS, parseClamdUrl, parseHostPort } from "../clamd/url.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { ONACC_DROPIN_DIR } from "../config/onacc-options.ts";
import { closestName } from "../config/suggest.ts";
import { UsageError } from "../errors.ts";
import { UNIX_PATH_MAX } from "../../ffi/socket.ts";
import { LOG_KEEP_DEFAULT } from "../log/logger.ts";
import { DEFAULT_STATUS_SOCKET } from "../status/types.ts";
import type { ActionOnFound } from "../actions/types.ts";
import { DEFAULT_CONFIG_FILE, type RunOptions } from "./options.ts";

export interface FlagSpec {
  long: string;
  short?: string;
  /** Set for flags that take a value: its placeholder in --help ("FILE"). */
  value?: string;
  /** A value flag that may be given several times (each value kept, in order). */
  repeatable?: true;
  description: string;
}

/** Every flag of `onacc` (= clamonacc's), in clamonacc's --help order. */
export const RUN_FLAGS: readonly FlagSpec[] = [
  { long: "help", short: "h", description: "Show this help and exit" },
  { long: "version", short: "V", description: "Print onacc's version (and clamd's, when it answers) and exit" },
  { long: "verbose", short: "v", description: "Be verbose (also prints the configuration warnings)" },
  { long: "log", short: "l", value: "FILE", description: "Save scanning output to FILE" },
  { long: "foreground", short: "F", description: "Stay in the foreground and print to the console" },
  { long: "watch-list", short: "W", value: "FILE", description: "Watch the directories listed in FILE (one per line)" },
  { long: "exclude-list", short: "e", value: "FILE", description: "Exclude the directories listed in FILE (one per line)" },
  { long: "ping", short: "p", value: "A[:I]", description: "Ping clamd up to A times, I seconds apart (default 1), then exit" },
  { long: "wait", short: "w", description: "Wait up to 30 seconds for clamd before starting (with --ping: A tries, I apart)" },
  { long: "remove", description: "Remove infected files. Be careful!" },
  { long: "move", value: "DIRECTORY", description: "Move infected files into DIRECTORY" },
  { long: "copy", value: "DIRECTORY", description: "Copy infected files into DIRECTORY" },
  { long: "config-file", short: "c", value: "FILE", description: `Read the configuration from FILE (default ${DEFAULT_CONFIG_FILE})` },
  { long: "allmatch", short: "z", description: "Continue scanning within a file after the first match" },
  { long: "fdpass", description: "Pass file descriptors to clamd (LocalSocket only)" },
  { long: "stream", description: "Stream file contents to clamd" },
  // onacc's own flags (clamonacc has no verdict cache). Defaults: 65536 entries, kernel cache on.
  {
    long: "config-dir",
    value: "DIR",
    description: `Also read onacc-only options from DIR/*.conf, where clamd never looks (default ${ONACC_DROPIN_DIR})`,
  },
  { long: "cache-size", value: "N", description: "Remember up to N clean file versions (0 turns the cache off; default 65536)" },
  { long: "kernel-cache", value: "yes|no", description: "Let the kernel skip reopens of files found clean until they change (default yes)" },
  // Fleet and operations (onacc's own).
  {
    long: "clamd",
    value: "URL",
    repeatable: true,
    description: "Use this clamd instead of the configuration's sockets; repeat for several (unix:///path, tcp://HOST:PORT, tls://HOST:PORT)",
  },
  { long: "tls-ca", value: "FILE", description: "CA certificates (PEM) that signed the TLS terminator of tls:// clamds (default: the system's)" },
  { long: "tls-cert", value: "FILE", description: "Client certificate (PEM) for tls:// clamds whose terminator requires one" },
  { long: "tls-key", value: "FILE", description: "Private key (PEM) of --tls-cert" },
  { long: "tls-no-verify-hostname", description: "Accept a tls:// clamd's certificate for another name (the CA is still checked)" },
  { long: "status-socket", value: "PATH", description: `Control socket for onacc status (default ${DEFAULT_STATUS_SOCKET}; "none" turns it off)` },
  { long: "metrics-listen", value: "ADDR", description: "Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9115)" },
  { long: "log-format", value: "text|json", description: "Format of --log lines (default text; json: one object per line)" },
  { long: "log-max-size", value: "SIZE", description: "Rotate --log when it would grow past SIZE (e.g. 10M; K, M, G suffixes)" },
  { long: "log-keep", value: "N", description: `Old log files kept by --log-max-size rotation: FILE.1 … FILE.N (default ${LOG_KEEP_DEFAULT})` },
];

/** Defaults of onacc's own flags. */
export const CACHE_SIZE_DEFAULT = 65536;
export { LOG_KEEP_DEFAULT };
/** Smallest --log-max-size: below it every few lines would rotate. */
const _LOG_MAX_SIZE_MIN = 1024;

/** The same flags as a citty ArgsDef, for the root command (see the comment at the top). */
export const runArgsDef: ArgsDef = Object.fromEntries(
  RUN_FLAGS.map((f) => [
    f.long,
    f.value === undefined
      ? { type: "boolean" as const, description: f.description, ...(f.short ? { alias: f.short } : {}) }
      : { type: "string" as const, description: f.description, valueHint: f.value, ...(f.short ? { alias: f.short } : {}) },
  ]),
);

/** clamonacc's --wait: 31 tries 1 s apart, i.e. up to 30 s of waiting (ONAS_DEFAULT_PING_* in ClamAV). */
export const WAIT_DEFAULT = { attempts: 31, intervalSec: 1 } as const;

// A JS timer cannot wait longer than 2^31-1 ms.
const _MAX_INTERVAL_SEC = Math.floor(2147483647 / 1000);

const _BY_LONG = new Map(RUN_FLAGS.map((f) => [f.long, f]));
const _BY_SHORT = new Map(RUN_FLAGS.filter((f) => f.short).map((f) => [f.short, f]));

/**
 * Parses the run command's argv (without the program name) into RunOptions. Pure: no I/O; relative
 * paths are resolved against `cwd` (clamonacc wanted full paths; resolving is kinder and equivalent).
 *
 * Accepted forms, as getopt_long gave clamonacc: `--log=FILE`, `--log FILE`, `-l FILE`, `-lFILE`, and
 * also `-l=FILE`; bundled short flags (`-Fv`, `-Fvl FILE`); `--flag=yes|no` for on/off flags; `--` ends
 * the options. Stricter than clamonacc, and each a UsageError: an unknown flag (with a suggestion), a
 * value that looks like a flag (`--log -F`; write `--log=-F` if you mean it), a value flag repeated with
 * a different value (clamonacc silently kept the first), --remove/--move/--copy together (clamonacc
 * silently preferred --move), --fdpass with --stream, and any non-flag argument.
 */
export function parseRunArgs(argv: readonly string[], cwd: string = process.cwd()): RunOptions {
  const switches = new Map<string, boolean>();
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();

  const setValue = (flag: FlagSpec, value: string, spelled: string) => {
    if (value === "") throw new UsageError(`${spelled} needs a ${flag.value} value`);
    if (flag.repeatable) {
      const list = lists.get(flag.long) ?? [];
      if (list.includes(value)) throw new UsageError(`--${flag.long} "${value}" is given twice: keep one`);
      list.push(value);
      lists.set(flag.long, list);
      return;
    }
    const earlier = values.get(flag.long);
    if (earlier !== undefined && earlier !== value) {
      throw new UsageError(`--${flag.long} is given twice, with "${earlier}" and "${value}": keep one`);
    }
    values.set(flag.long, value);
  };
  // The value of a flag written without `=`: the next argument, unless that is another flag.
  const nextValue = (i: number, flag: FlagSpec, spelled: string): string => {
    const next = argv[i];
    if (next === undefined) throw new UsageError(`${spelled} needs a ${flag.value} value`);
    if (next.startsWith("-") && next !== "-") {
      throw new UsageError(`${spelled} needs a ${flag.value} value, but is followed by the option "${next}" (write --${flag.long}=${next} if that is the value)`);
    }
    return next;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      if (i + 1 < argv.length) throw _unexpected(argv[i + 1]!);
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq < 0 ? undefined : arg.slice(eq + 1);
      const flag = _BY_LONG.get(name);
      if (!flag) {
        const suggestion = closestName(name, _BY_LONG.keys());
        throw new UsageError(`Unknown option "--${name}"${suggestion ? `: did you mean --${suggestion}?` : ""} (see onacc --help)`);
      }
      if (flag.value === undefined) {
        switches.set(flag.long, inline === undefined ? true : _switchValue(`--${name}`, inline));
      } else {
        setValue(flag, inline ?? nextValue(++i, flag, `--${name}`), `--${name}`);
      }
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const flag = _BY_SHORT.get(letter);
        if (!flag) {
          if (letter === "=") throw new UsageError(`"${arg}": only flags that take a value accept "=" (-${arg[j - 1]} does not)`);
          throw new UsageError(`Unknown option "-${letter}"${arg.length > 2 ? ` in "${arg}"` : ""} (see onacc --help)`);
        }
        if (flag.value === undefined) {
          switches.set(flag.long, true);
          continue;
        }
        const rest = arg.slice(j + 1);
        const value = rest === "" ? nextValue(++i, flag, `-${letter}`) : rest.startsWith("=") ? rest.slice(1) : rest;
        setValue(flag, value, `-${letter}`);
        break;
      }
      continue;
    }
    throw _unexpected(arg);
  }

  const on = (long: string) => switches.get(long) === true;
  const path = (long: string) => {
    const value = values.get(long);
    return value === undefined ? undefined : resolve(cwd, value);
  };

  const actions = ["remove", "move", "copy"].filter((a) => (a === "remove" ? on(a) : values.has(a)));
  if (actions.length > 1) {
    throw new UsageError(`--remove, --move and --copy exclude each other, but ${actions.map((a) => `--${a}`).join(" and ")} were given`);
  }
  if (on("fdpass") && on("stream")) throw new UsageError("--fdpass and --stream exclude each other: choose one");

  let action: ActionOnFound = { kind: "none" };
  if (on("remove")) action = { kind: "remove" };
  const moveDir = path("move");
  if (moveDir !== undefined) action = { kind: "move", dir: moveDir };
  const copyDir = path("copy");
  if (copyDir !== undefined) action = { kind: "copy", dir: copyDir };

  const pingText = values.get("ping");
  const ping = pingText !== undefined ? _parsePing(pingText) : on("wait") ? { ...WAIT_DEFAULT } : undefined;

  const options: RunOptions = {
    configFile: path("config-file") ?? DEFAULT_CONFIG_FILE,
    foreground: on("foreground"),
    verbose: on("verbose"),
    action,
    allmatch: on("allmatch"),
    scanMode: on("fdpass") ? "fdpass" : on("stream") ? "stream" : "auto",
    help: on("help"),
    version: on("version"),
    cacheSize: _parseCount("--cache-size", values.get("cache-size"), CACHE_SIZE_DEFAULT),
    kernelCache: values.has("kernel-cache") ? _switchValue("--kernel-cache", values.get("kernel-cache")!) : true,
    pingOnly: pingText !== undefined && !on("wait"),
    ..._fleetOptions(on, values, lists, path),
  };
  const logFile = path("log");
  if (logFile !== undefined) options.logFile = logFile;
  const configDir = path("config-dir");
  if (configDir !== undefined) options.configDir = configDir;
  const watchList = path("watch-list");
  if (watchList !== undefined) options.watchList = watchList;
  const excludeList = path("exclude-list");
  if (excludeList !== undefined) options.excludeList = excludeList;
  if (ping !== undefined) options.ping = ping;
  return options;
}

type _FleetOptions = Pick<RunOptions, "clamd" | "statusSocket" | "metricsListen" | "logFormat" | "logMaxSize" | "logKeep">;

/** --clamd and --tls-*, --status-socket, --metrics-listen, --log-format/--log-max-size/--log-keep. */
function _fleetOptions(
  on: (long: string) => boolean,
  values: Map<string, string>,
  lists: Map<string, string[]>,
  path: (long: string) => string | undefined,
): _FleetOptions {
  const out: _FleetOptions = { statusSocket: DEFAULT_STATUS_SOCKET, logFormat: "text", logKeep: LOG_KEEP_DEFAULT };

  const urls = lists.get("clamd") ?? [];
  const endpoints: ClamdEndpoint[] = urls.map((url) => {
    const r = parseClamdUrl(url);
    if ("error" in r) throw new UsageError(`Invalid --clamd "${url}": ${r.error} (expected ${CLAMD_URL_FORMS})`);
    return r.endpoint;
  });
  const tlsFlags = ["tls-ca", "tls-cert", "tls-key"].filter((f) => values.has(f)).map((f) => `--${f}`);
  if (on("tls-no-verify-hostname")) tlsFlags.push("--tls-no-verify-hostname");
  const anyTls = endpoints.some((e) => e.kind === "tls");
  if (tlsFlags.length > 0 && !anyTls) {
    throw new UsageError(`${tlsFlags.join(", ")} apply to tls:// clamd endpoints, but no --clamd tls://HOST:PORT was given`);
  }
  if (values.has("tls-cert") !== values.has("tls-key")) {
    throw new UsageError(values.has("tls-cert") ? "--tls-cert needs --tls-key (the certificate's private key)" : "--tls-key needs --tls-cert (the certificate it belongs to)");
  }
  if (endpoints.length > 0) {
    const ca = path("tls-ca");
    const cert = path("tls-cert");
    const key = path("tls-key");
    out.clamd = endpoints.map((e) =>
      e.kind !== "tls"
        ? e
        : {
            ...e,
            verifyHostname: !on("tls-no-verify-hostname"),
            ...(ca !== undefined ? { ca } : {}),
            ...(cert !== undefined ? { cert } : {}),
            ...(key !== undefined ? { key } : {}),
          },
    );
  }

  const socket = values.get("status-socket");
  if (socket === "none") out.statusSocket = null;
  else if (socket !== undefined) {
    const resolved = path("status-socket")!;
    if (new TextEncoder().encode(resolved).length >= UNIX_PATH_MAX) {
      throw new UsageError(`Invalid --status-socket "${socket}": a socket path must be shorter than ${UNIX_PATH_MAX} bytes ("${resolved}" is not)`);
    }
    out.statusSocket = resolved;
  }

  const metrics = values.get("metrics-listen");
  if (metrics !== undefined) {
    // A bare port listens on loopback only: metrics name the files onacc found.
    const hp = /^\d+$/.test(metrics) ? parseHostPort(`127.0.0.1:${metrics}`) : parseHostPort(metrics.startsWith(":") ? `0.0.0.0${metrics}` : metrics);
    if ("error" in hp) throw new UsageError(`Invalid --metrics-listen "${metrics}": ${hp.error} (e.g. 127.0.0.1:9115 or [::1]:9115)`);
    out.metricsListen = hp;
  }

  const format = values.get("log-format");
  if (format !== undefined) {
    if (format !== "text" && format !== "json") throw new UsageError(`Invalid --log-format "${format}": expected text or json`);
    out.logFormat = format;
  }
  const maxSize = values.get("log-max-size");
  if (maxSize !== undefined) {
    if (!values.has("log")) throw new UsageError("--log-max-size rotates the --log file, but no --log=FILE was given");
    out.logMaxSize = _parseSize("--log-max-size", maxSize);
  }
  const keep = values.get("log-keep");
  if (keep !== undefined) {
    if (maxSize === undefined) throw new UsageError("--log-keep says how many files --log-max-size rotation keeps, but no --log-max-size was given");
    out.logKeep = _parseCount("--log-keep", keep, LOG_KEEP_DEFAULT, 1000);
  }
  return out;
}

/** "10M", "512K", "1G", "4096": bytes (K = 1024, as clamd.conf sizes). */
function _parseSize(spelled: string, text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text);
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m?.[2] ?? "").toUpperCase() as "" | "K" | "M" | "G"];
  const bytes = m ? Number(m[1]) * unit : NaN;
  if (!m || !Number.isSafeInteger(bytes) || bytes < _LOG_MAX_SIZE_MIN) {
    throw new UsageError(`Invalid ${spelled} "${text}": expected a size of at least 1K, like 10M, 512K or 1G`);
  }
  return bytes;
}

/** `--ping=A[:I]`: A tries (at least 1), I seconds apart (default 1; 0 allowed, as in clamonacc). */
function _parsePing(text: string): { attempts: number; intervalSec: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  const attempts = Number(m?.[1]);
  const intervalSec = m?.[2] === undefined ? 1 : Number(m[2]);
  if (!m || attempts < 1 || !Number.isSafeInteger(attempts) || intervalSec > _MAX_INTERVAL_SEC) {
    throw new UsageError(
      `Invalid --ping "${text}": expected ATTEMPTS[:INTERVAL], whole numbers with ATTEMPTS ≥ 1 and INTERVAL ≤ ${_MAX_INTERVAL_SEC} seconds (e.g. --ping=30 or --ping=10:3)`,
    );
  }
  return { attempts, intervalSec };
}

/** A whole number ≥ 0 given to `spelled`, or `fallback` when the flag is absent. */
function _parseCount(spelled: string, text: string | undefined, fallback: number, max = 1 << 26): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) > max) {
    throw new UsageError(`Invalid ${spelled} "${text}": expected a whole number from 0 to ${max}`);
  }
  return Number(text);
}

/** `--flag=yes`: the words clamonacc's option parser accepts for on/off flags. */
function _switchValue(spelled: string, text: string): boolean {
  if (/^(yes|true|1)$/i.test(text)) return true;
  if (/^(no|false|0)$/i.test(text)) return false;
  throw new UsageError(`Invalid ${spelled}="${text}": expected yes/no, true/false or 1/0`);
}

function _unexpected(arg: string): UsageError {
  return new UsageError(`Unexpected argument "${arg}": onacc takes no file arguments (watch paths come from OnAccessIncludePath or --watch-list; commands are "setup" and "status")`);
}
