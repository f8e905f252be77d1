// The flags of `onacc setup`: one per wizard answer (so `onacc setup --yes …` needs no terminal), plus
// where to write and what to leave alone. Parsing only; the answers are checked in answers.ts.
import { parseArgs } from "node:util";
import { closestName } from "../config/suggest.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_CLAMD_CONF } from "./clamd.ts";
import { DEFAULT_QUARANTINE, MAX_THREADS, splitList } from "./answers.ts";
import { TRIAL_DEFAULTS, TRIAL_UNIT } from "./trial.ts";
import { DEFAULT_CONFIG_PATH, DEFAULT_SYSTEMD_DIR } from "./write.ts";

export interface SetupFlags {
  help: boolean;
  /** Non-interactive: every answer from flags or defaults, no questions. */
  yes: boolean;
  /** Replace an existing configuration file. */
  force: boolean;
  /** Write no drop-in and run no systemctl. */
  noService: boolean;
  /** Write the configuration even when clamd does not answer (it will be checked when onacc starts). */
  skipClamdCheck: boolean;
  trial: boolean;
  clamd?: string;
  clamdConf: string;
  protect?: string[];
  excludePaths?: string[];
  /** undefined: not given (the default is clamd's User). ["none"] was turned into []. */
  excludeUsers?: string[];
  prevention?: string;
  action?: string;
  threads?: string;
  config: string;
  /** --config was given (the wizard then does not ask where to write). */
  configGiven: boolean;
  systemdDir: string;
  trialDatabase: string;
  trialConfig: string;
  trialSocket: string;
}

const _OPTIONS = {
  help: { type: "boolean", short: "h" },
  yes: { type: "boolean", short: "y" },
  force: { type: "boolean" },
  "no-service": { type: "boolean" },
  "skip-clamd-check": { type: "boolean" },
  trial: { type: "boolean" },
  clamd: { type: "string" },
  "clamd-conf": { type: "string" },
  protect: { type: "string", multiple: true },
  "exclude-path": { type: "string", multiple: true },
  "exclude-user": { type: "string", multiple: true },
  prevention: { type: "string" },
  action: { type: "string" },
  threads: { type: "string" },
  config: { type: "string" },
  "systemd-dir": { type: "string" },
  "trial-db": { type: "string" },
  "trial-config": { type: "string" },
  "trial-socket": { type: "string" },
} as const;

/** Parses the arguments after "setup". Throws UsageError for an unknown flag, a missing value or a stray word. */
export function parseSetupArgs(argv: readonly string[]): SetupFlags {
  let values: ReturnType<typeof _parse>["values"];
  try {
    values = _parse(argv).values;
  } catch (err) {
    throw _usageErrorFrom(err);
  }
  for (const [name, value] of Object.entries(values)) {
    const empty = Array.isArray(value) ? value.some((item) => item.trim() === "") : value === "";
    if (empty) throw new UsageError(`--${name} needs a value`);
  }
  const list = (items: string[] | undefined) => (items === undefined ? undefined : items.flatMap(splitList));
  const path = (name: string, value: string | undefined, fallback: string): string => {
    if (value === undefined) return fallback;
    if (!value.startsWith("/")) throw new UsageError(`--${name} "${value}" must be an absolute path`);
    return value;
  };

  const excludeUsers = list(values["exclude-user"]);
  const flags: SetupFlags = {
    help: values.help === true,
    yes: values.yes === true,
    force: values.force === true,
    noService: values["no-service"] === true,
    skipClamdCheck: values["skip-clamd-check"] === true,
    trial: values.trial === true,
    clamdConf: path("clamd-conf", values["clamd-conf"], DEFAULT_CLAMD_CONF),
    config: path("config", values.config, DEFAULT_CONFIG_PATH),
    configGiven: values.config !== undefined,
    systemdDir: path("systemd-dir", values["systemd-dir"], DEFAULT_SYSTEMD_DIR),
    trialDatabase: path("trial-db", values["trial-db"], TRIAL_DEFAULTS.database),
    trialConfig: path("trial-config", values["trial-config"], TRIAL_DEFAULTS.config),
    trialSocket: path("trial-socket", values["trial-socket"], TRIAL_DEFAULTS.socket),
  };
  if (values.clamd !== undefined) flags.clamd = values.clamd;
  const protect = list(values.protect);
  if (protect !== undefined) flags.protect = protect;
  const excludePaths = list(values["exclude-path"]);
  if (excludePaths !== undefined) flags.excludePaths = excludePaths;
  if (excludeUsers !== undefined) flags.excludeUsers = excludeUsers.length === 1 && excludeUsers[0] === "none" ? [] : excludeUsers;
  if (values.prevention !== undefined) flags.prevention = values.prevention;
  if (values.action !== undefined) flags.action = values.action;
  if (values.threads !== undefined) flags.threads = values.threads;
  return flags;
}

function _parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: _OPTIONS, strict: true, allowPositionals: false });
}

/** node:util's parse errors, reworded the way onacc's other usage errors read. */
function _usageErrorFrom(err: unknown): UsageError {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string }).code;
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown) {
    const name = unknown[1]!.replace(/^-+/, "");
    const suggestion = closestName(name, Object.keys(_OPTIONS));
    return new UsageError(`Unknown option "${unknown[1]}"${suggestion ? `: did you mean --${suggestion}?` : ""} (see onacc setup --help)`);
  }
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) return new UsageError(`Unexpected argument "${positional[1]}": onacc setup takes only options (see onacc setup --help)`);
  const missing = /Option '(?:-\w, )?(--[\w-]+)[^']*' argument (?:missing|is ambiguous)/.exec(message);
  if (missing) return new UsageError(`${missing[1]} needs a value (write ${missing[1]}=VALUE for a value that starts with "-")`);
  const noValue = /Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue) return new UsageError(`${noValue[1]} takes no value`);
  return new UsageError(`${message} (see onacc setup --help)`);
}

export function setupHelpText(): string {
  return `onacc setup: write onacc's configuration, checked against clamd, and start the service

Usage:
  onacc setup                      ask each question (needs a terminal)
  onacc setup --yes --protect DIR [options]   no questions: flags and defaults
  onacc setup --trial              start a trial clamd (EICAR test signature only), then set up onacc with it

Answers (each is asked when not given; with --yes the default is used):
  --clamd ADDRESS          clamd's socket path (/run/clamav/clamd.ctl, unix:///…) or host:port
                           (default: the LocalSocket or TCPSocket of --clamd-conf)
  --clamd-conf FILE        clamd's configuration to find it in (default ${DEFAULT_CLAMD_CONF})
  --protect DIR            a directory to protect; repeat it or separate with commas (required with --yes)
  --exclude-path DIR       a directory inside them to leave unscanned (repeatable)
  --prevention yes|no      block infected files (default yes) or only report them
  --exclude-user USER      a user whose accesses are not scanned (repeatable; default clamd's User;
                           "none" for nobody)
  --action ACTION          none, remove, move:DIR or copy:DIR (default none; move alone means
                           move:${DEFAULT_QUARANTINE})
  --threads N              scans at the same time, 1-${MAX_THREADS} (OnAccessMaxThreads, default 5)

Where it goes:
  --config FILE            the configuration to write (default ${DEFAULT_CONFIG_PATH}, mode 0644)
  --force                  replace FILE when it exists (without it, setup asks, or with --yes refuses)
  --systemd-dir DIR        where onacc.service is (default ${DEFAULT_SYSTEMD_DIR}); setup writes
                           DIR/onacc.service.d/setup.conf there (the action and write access)
  --no-service             write no drop-in and do not enable or start the service
  --skip-clamd-check       write the configuration even when clamd does not answer
  -y, --yes                ask nothing
  -h, --help               show this help

Trial (for hosts without a signature database):
  --trial                  start a trial clamd that detects only the EICAR test file, and offer it
                           first: its database (--trial-db, default ${TRIAL_DEFAULTS.database}), its
                           clamd.conf (--trial-config, default ${TRIAL_DEFAULTS.config}) and socket
                           (--trial-socket, default ${TRIAL_DEFAULTS.socket}); under systemd it runs
                           as ${TRIAL_UNIT} (started at boot). With --yes and no --protect: only that

Exit codes: 0 written, 1 cancelled or a file could not be written, 2 bad command line (also: no
terminal without --yes, or an existing file without --force), 3 an answer that does not check out
(a directory that is not there, clamd not answering, …).
`;
}
