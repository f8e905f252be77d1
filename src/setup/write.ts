// What `onacc setup` writes: the configuration (clamd.conf syntax, mode 0644, never replaced unless the
// person said so) and the service drop-in that carries what clamd.conf cannot (the action, write access).
import { closeSync, fsyncSync, fchmodSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { ONACC_DROPIN_DIR, ONACC_OPTION_NAMES } from "../config/onacc-options.ts";
import { serializeConfig, type ConfigLine } from "../config/serialize.ts";
import { isOnaccError, OnaccError } from "../errors.ts";
import { isUnder } from "../engine/paths.ts";
import { actionFlag, type SetupAnswers } from "./answers.ts";
import { normalizePath } from "../config/values.ts";

export const DEFAULT_CONFIG_PATH = "/etc/onacc/onacc.conf";
export const DEFAULT_SYSTEMD_DIR = "/etc/systemd/system";
export const DROPIN_NAME = "onacc.service.d/setup.conf";

/** The unit's StateDirectory: already writable for the service, so a quarantine there needs no drop-in line. */
const STATE_DIRECTORY = "/var/lib/onacc";

/** The configuration file refuses to be replaced (exit code 2: the command line must say --force). */
export class ConfigExistsError extends OnaccError {
  constructor(readonly path: string) {
    super("E_USAGE", `The configuration "${path}" already exists: add --force to replace it, or choose another file with --config`);
  }
}

/** clamd.conf text for the answers, with a header saying where the rest of the settings live. */
export function renderConfig(answers: SetupAnswers, configPath: string): string {
  const flag = actionFlag(answers.action);
  const header = [
    "onacc configuration, written by `onacc setup` (run it again to change it, or edit this file).",
    "clamd.conf syntax (man clamd.conf): onacc reads clamd's socket and the OnAccess* options.",
    `onacc-only options (${[...ONACC_OPTION_NAMES].join(", ")}) may be added here as long as clamd`,
    `does not read this file (clamd refuses options it does not know); else put them in ${ONACC_DROPIN_DIR}/*.conf.`,
    "",
    ...(flag === ""
      ? [`Infected files are ${answers.prevention ? "blocked and " : ""}logged, nothing more (see onacc --remove, --move, --copy).`]
      : [
          `Infected files: ${flag}. That is a command-line option, so it is not in this file:`,
          `the service takes it from ${DROPIN_NAME}; by hand:`,
          `  onacc --config-file=${configPath} ${flag}`,
        ]),
  ].join("\n");

  const clamd = answers.clamd;
  const version = answers.clamdVersion ? ` (${answers.clamdVersion} when this was written)` : "";
  const lines: ConfigLine[] = [];
  const which = answers.trialClamd ? "The trial clamd (EICAR test signature only; see onacc setup --trial)" : "clamd";
  if (clamd.kind === "unix") {
    lines.push({ name: "LocalSocket", value: clamd.path, comment: `${which}${version}` });
  } else {
    lines.push({ name: "TCPSocket", value: clamd.port, comment: `clamd${version}, over TCP: files are streamed to it` });
    lines.push({ name: "TCPAddr", value: clamd.host });
  }
  if (answers.streamMaxLength !== undefined) {
    lines.push({ name: "StreamMaxLength", value: answers.streamMaxLength, comment: "clamd's own limit (from its clamd.conf)" });
  }
  if (answers.temporaryDirectory !== undefined) {
    lines.push({ name: "TemporaryDirectory", value: answers.temporaryDirectory, comment: "Where clamd writes its scan temp files (from its clamd.conf): never watched" });
  }
  lines.push({ name: "OnAccessIncludePath", value: answers.protect, comment: "Directories to protect (with everything below them)" });
  if (answers.excludePaths.length > 0) {
    lines.push({ name: "OnAccessExcludePath", value: answers.excludePaths, comment: "Never scanned" });
  }
  if (answers.excludeUsers.length > 0) {
    lines.push({ name: "OnAccessExcludeUname", value: answers.excludeUsers, comment: "Files these users open are not scanned" });
  }
  lines.push({
    name: "OnAccessPrevention",
    value: answers.prevention,
    comment: answers.prevention ? "Block opening an infected file" : "Report infected files, never block",
  });
  lines.push({ name: "OnAccessMaxThreads", value: answers.threads, comment: "Scans at the same time" });
  return serializeConfig(lines, header);
}

/**
 * The service drop-in: which configuration, which action, and the write access --remove/--move need
 * (ProtectSystem=strict makes protected directories read-only for the service otherwise); PrivateTmp=no
 * when a protected directory lies in /tmp or /var/tmp (the service would see a private one instead).
 */
export function renderDropIn(answers: SetupAnswers, configPath: string): string {
  const out = [
    `# Written by \`onacc setup\` for ${configPath}; running it again rewrites this file.`,
    "# Your own settings belong in another drop-in: systemctl edit onacc",
    ...(answers.clamdUnit === undefined
      ? []
      : [
          "[Unit]",
          `# onacc asks ${answers.clamdUnit}: start it first (onacc keeps running when it restarts).`,
          `Wants=${answers.clamdUnit}`,
          `After=${answers.clamdUnit}`,
          "",
        ]),
    "[Service]",
    `Environment=${_unitQuote(`ONACC_CONFIG=${configPath}`)}`,
    `Environment=${_unitQuote(`ONACC_OPTIONS=${actionFlag(answers.action)}`)}`,
  ];
  const writable: string[] = [];
  if (answers.action.kind === "remove" || answers.action.kind === "move") writable.push(...answers.protect);
  if ((answers.action.kind === "move" || answers.action.kind === "copy") && !isUnder(normalizePath(answers.action.dir), STATE_DIRECTORY)) {
    writable.push(answers.action.dir);
  }
  if (writable.length > 0) {
    out.push(`# ${answers.action.kind === "copy" ? "--copy writes into its directory" : `--${answers.action.kind} changes the protected directories`}; everything else stays read-only.`);
    // "-": a directory removed later must not stop the service from starting.
    out.push(`ReadWritePaths=${writable.map((p) => _unitQuote(`-${p}`)).join(" ")}`);
  }
  const inTmp = answers.protect.filter((p) => isUnder(normalizePath(p), "/tmp") || isUnder(normalizePath(p), "/var/tmp"));
  if (inTmp.length > 0) {
    out.push(`# ${inTmp.join(", ")}: the service must see the real /tmp and /var/tmp to protect them.`);
    out.push("PrivateTmp=no");
  }
  return `${out.join("\n")}\n`;
}

/**
 * Writes the configuration with mode 0644. Without `force` an existing file is never replaced (the
 * check and the creation are one step: O_EXCL); with it, the new text replaces the old atomically.
 */
export function writeConfigFile(path: string, text: string, opts: { force: boolean }): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (!opts.force) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new ConfigExistsError(path);
      throw _writeError(path, err);
    }
    _writeAll(fd, path, text, true);
    return;
  }
  _replaceFile(path, text);
}

/** Writes the drop-in next to the unit (replacing setup's earlier one); returns its path. */
export function writeDropIn(systemdDir: string, text: string): string {
  const path = join(systemdDir, DROPIN_NAME);
  replaceTextFile(path, text);
  return path;
}

/** Writes a file of onacc's own (mode 0644), replacing any earlier version atomically. */
export function replaceTextFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  _replaceFile(path, text);
}

/** Does `path` hold exactly `text`? (false when it cannot be read): lets a second run rewrite nothing. */
export function fileHasText(path: string, text: string): boolean {
  try {
    return readFileSync(path, "utf8") === text;
  } catch {
    return false;
  }
}

/** What the person runs to start onacc by hand with this configuration. */
export function manualCommand(answers: SetupAnswers, configPath: string, binary = "onacc"): string {
  const flag = actionFlag(answers.action);
  return `${binary} --foreground --config-file=${configPath}${flag ? ` ${flag}` : ""}`;
}

function _replaceFile(path: string, text: string): void {
  const temp = `${path}.onacc-setup-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(temp, "w", 0o644);
  } catch (err) {
    throw _writeError(path, err);
  }
  try {
    _writeAll(fd, temp, text, false);
    renameSync(temp, path);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      /* already gone */
    }
    throw isOnaccError(err) ? err : _writeError(path, err);
  }
}

/** Writes, sets the mode exactly (the umask may have narrowed it), flushes and closes. */
function _writeAll(fd: number, path: string, text: string, removeOnFailure: boolean): void {
  try {
    fchmodSync(fd, 0o644);
    const bytes = Buffer.from(text, "utf8");
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    if (removeOnFailure) {
      try {
        unlinkSync(path);
      } catch {
        /* nothing to clean */
      }
    }
    throw _writeError(path, err);
  }
  closeSync(fd);
}

function _writeError(path: string, err: unknown): OnaccError {
  const code = (err as NodeJS.ErrnoException).code;
  const hint = code === "EACCES" || code === "EPERM" || code === "EROFS" ? " (run onacc setup as root, or write elsewhere with --config)" : "";
  return new OnaccError("E_RUNTIME", `Cannot write "${path}": ${code ?? (err instanceof Error ? err.message : String(err))}${hint}`, { cause: err });
}

/** A value for a unit file: quoted, with C escapes, and % doubled (systemd expands %-specifiers). */
function _unitQuote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%")}"`;
}
