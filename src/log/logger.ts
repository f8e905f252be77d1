// The logger every thread uses: `found` / error / warn / info / verbose records go to the console (with
// --foreground, through consola) and to the --log file, one write(2) per record so threads never interleave.
//
// Threads: Workers share no JS objects, so each Worker builds its own Logger from the serializable
// LogSettings the main thread posts to it; every Logger opens the file itself with O_APPEND, and the
// kernel appends each record's single write whole. Rotation (SIGHUP): only the main thread receives the
// signal; it calls its own logger.reopen() and bumps a generation counter in shared memory
// (src/engine/control.ts) that every Worker polls between events, calling reopen() on its Logger. A Worker
// busy with an event reopens after it; until then its lines still land in the renamed file, which is why
// logrotate wants `delaycompress`.
// Size-based rotation (--log-max-size) needs no signal: each thread checks the size before it appends
// and rotates or reopens by itself (src/log/rotate.ts).
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { createConsola, LogLevels, type ConsolaInstance, type ConsolaReporter } from "consola/core";
import { OnaccError } from "../errors.ts";
import { displayPath, oneLine } from "./display-path.ts";
import { fsReason } from "./fs-reason.ts";
import { fileFormatterFor, jsonFormatter, textConsoleFormatter, type LogFormatter, type LogLevel, type LogRecord } from "./format.ts";
import { beforeAppend, rotate, type RotationPolicy } from "./rotate.ts";

/** What a Worker needs to build its own Logger; plain data so it survives postMessage. */
export interface LogSettings {
  /** --log=FILE. Made absolute at creation so a later chdir cannot move the reopened file. */
  logFile?: string;
  /** --foreground: also print to the console. */
  foreground: boolean;
  /** --verbose: every level reaches every sink. */
  verbose: boolean;
  /** --log-format: of the file, and of the console when there is no file. Default text. */
  format?: "text" | "json";
  /** --log-max-size in bytes: rotate the file before an append would take it past this. */
  maxSize?: number;
  /** --log-keep: rotated files kept (FILE.1 … FILE.keep). Default 5. */
  keep?: number;
}

export interface LoggerOptions {
  /** Line format of the log file (default: from settings.format, timestamped text or JSON). */
  fileFormatter?: LogFormatter;
  /** Line format of the console (default: the text without timestamp; JSON with format json and no file). */
  consoleFormatter?: LogFormatter;
}

/** --log-keep's default. */
export const LOG_KEEP_DEFAULT = 5;

export interface Logger {
  /** A detection: `<path>: <signature> FOUND`, the line clamonacc always logs. */
  found(path: string | Uint8Array, signature: string): void;
  /** What onacc did about a detection ("moved to …"): always logged, like FOUND (clamdscan logs it too). */
  notice(message: string): void;
  error(message: string): void;
  warn(message: string): void;
  /** Shown on the console; written to the file only with --verbose. */
  info(message: string): void;
  /** Debug detail, only with --verbose. */
  verbose(message: string): void;
  /** Opens the log file again by name (after logrotate moved it). False when there is no file or it failed. */
  reopen(): boolean;
  /** Closes the log file; later records go to the console only. */
  close(): void;
  /** Log file writes that failed (disk full, I/O error) since creation. */
  readonly writeFailures: number;
  readonly settings: Readonly<LogSettings>;
}

/**
 * Mode of a newly created log file: owner read/write, group read (for an `adm`-style log reader group),
 * nothing for others — the log names infected files. An existing file keeps its mode (logrotate's
 * `create` directive decides it after rotation).
 */
export const LOG_FILE_MODE = 0o640;

/** The --log file could not be opened; thrown at start-up by createLogger(). */
export class LogFileError extends OnaccError {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, err: unknown) {
    const reason = fsReason(err);
    super("E_RUNTIME", `Cannot open log file "${path}": ${reason}`, { cause: err });
    this.path = path;
    this.reason = reason;
  }
}

/**
 * A Logger for this thread. Throws LogFileError when --log names a file that cannot be opened for
 * appending (missing directory, permissions, a directory).
 */
export function createLogger(settings: LogSettings, options: LoggerOptions = {}): Logger {
  return new _FileAndConsoleLogger(settings, options);
}

// Without --verbose the file keeps clamonacc's promise: detections and problems only. The console also
// shows info (start-up, actions taken), since someone running --foreground is watching it.
const _fileLevelsQuiet = new Set<LogLevel>(["found", "notice", "error", "warn"]);
const _consoleLevelsQuiet = new Set<LogLevel>(["found", "notice", "error", "warn", "info"]);

// Hint: consola routes levels below `log` (error, warn) to stderr; FOUND uses `log` so it goes to stdout.
const _consolaType = { found: "log", notice: "log", error: "error", warn: "warn", info: "info", verbose: "debug" } as const;

const _STDOUT = 1;
const _STDERR = 2;

class _FileAndConsoleLogger implements Logger {
  readonly settings: Readonly<LogSettings>;
  private _fd: number | undefined;
  private _writeFailures = 0;
  private _failureReported = false;
  private readonly _fileFormatter: LogFormatter;
  private readonly _consoleFormatter: LogFormatter;
  private readonly _console: ConsolaInstance | undefined;
  private readonly _rotation: RotationPolicy | undefined;
  private _rotationFailureReported = false;

  constructor(settings: LogSettings, options: LoggerOptions) {
    this.settings = Object.freeze({
      ...settings,
      logFile: settings.logFile === undefined ? undefined : resolve(settings.logFile),
    });
    this._fileFormatter = options.fileFormatter ?? fileFormatterFor(settings.format);
    this._consoleFormatter =
      options.consoleFormatter ?? (settings.format === "json" && settings.logFile === undefined ? jsonFormatter : textConsoleFormatter);
    if (settings.maxSize !== undefined) {
      if (!(settings.maxSize > 0)) throw new RangeError(`log maxSize must be positive, got ${settings.maxSize}`);
      this._rotation = { maxSize: settings.maxSize, keep: settings.keep ?? LOG_KEEP_DEFAULT };
    }
    if (this.settings.logFile !== undefined) this._fd = _openLogFile(this.settings.logFile);
    this._console = settings.foreground ? _createConsole(settings.verbose) : undefined;
  }

  get writeFailures(): number {
    return this._writeFailures;
  }

  found(path: string | Uint8Array, signature: string): void {
    const shownPath = displayPath(path);
    const shownSignature = oneLine(signature);
    this._emit({
      time: new Date(),
      level: "found",
      message: `${shownPath}: ${shownSignature} FOUND`,
      found: { path: shownPath, signature: shownSignature },
    });
  }

  notice(message: string): void {
    this._emit({ time: new Date(), level: "notice", message: oneLine(message) });
  }

  error(message: string): void {
    this._emit({ time: new Date(), level: "error", message: oneLine(message) });
  }

  warn(message: string): void {
    this._emit({ time: new Date(), level: "warn", message: oneLine(message) });
  }

  info(message: string): void {
    this._emit({ time: new Date(), level: "info", message: oneLine(message) });
  }

  verbose(message: string): void {
    this._emit({ time: new Date(), level: "verbose", message: oneLine(message) });
  }

  reopen(): boolean {
    const path = this.settings.logFile;
    if (path === undefined) return false;
    let fd: number;
    try {
      fd = _openLogFile(path);
    } catch (err) {
      // Keep the old descriptor: lines still reach the rotated file rather than nowhere.
      this.error(`Cannot reopen log file "${path}": ${err instanceof LogFileError ? err.reason : fsReason(err)}`);
      return false;
    }
    this._switchTo(fd);
    return true;
  }

  close(): void {
    if (this._fd !== undefined) _closeQuietly(this._fd);
    this._fd = undefined;
  }

  private _emit(record: LogRecord): void {
    const verbose = this.settings.verbose;
    if (this._fd !== undefined && (verbose || _fileLevelsQuiet.has(record.level))) {
      this._writeFileLine(this._fileFormatter(record));
    }
    if (this._console && (verbose || _consoleLevelsQuiet.has(record.level))) {
      this._console[_consolaType[record.level]](this._consoleFormatter(record));
    }
  }

  private _writeFileLine(line: string): void {
    const bytes = Buffer.from(`${line}\n`, "utf8");
    if (this._rotation) {
      const next = beforeAppend(this.settings.logFile!, this._fd!, bytes.length, this._rotation);
      if (next === "rotate") this._rotate(bytes.length, this._rotation);
      // Another thread rotated (or the file went away): follow it to the file now at the path.
      else if (next === "reopen") this._follow();
    }
    try {
      // One write(2) per record: with O_APPEND the kernel appends it whole, even with other writers.
      const written = writeSync(this._fd!, bytes, 0, bytes.length);
      if (written !== bytes.length) this._recordFailure(`short write (${written} of ${bytes.length} bytes)`);
    } catch (err) {
      this._recordFailure(fsReason(err));
    }
  }

  /** Opens the file now at the path; on failure says so once on stderr and keeps the current file. */
  private _follow(): void {
    const path = this.settings.logFile!;
    try {
      this._switchTo(_openLogFile(path));
    } catch (err) {
      this._rotationFailed(`cannot reopen rotated log file "${path}"`, err, "writing on to the old file");
    }
  }

  /** Rotates (or follows another thread's rotation); on failure keeps writing to the current file. */
  private _rotate(incoming: number, policy: RotationPolicy): void {
    const path = this.settings.logFile!;
    try {
      const fd = rotate(path, this._fd!, incoming, policy, () => _openLogFile(path));
      if (fd !== undefined) this._switchTo(fd);
    } catch (err) {
      this._rotationFailed(`cannot rotate log file "${path}"`, err, "writing on to the current file");
    }
  }

  /** Appends to `fd` from now on and closes the file it replaces. */
  private _switchTo(fd: number): void {
    const old = this._fd;
    this._fd = fd;
    this._failureReported = false;
    if (old !== undefined) _closeQuietly(old);
  }

  /** Says once on stderr (the log file is the thing failing) that rotation failed, and what goes on. */
  private _rotationFailed(what: string, err: unknown, meanwhile: string): void {
    if (this._rotationFailureReported) return;
    this._rotationFailureReported = true;
    const reason = err instanceof LogFileError ? err.reason : fsReason(err);
    _writeQuietly(_STDERR, `onacc: ${what}: ${reason}; ${meanwhile}\n`);
  }

  // A full disk must not stop scanning: count, tell stderr once per opened file, carry on.
  private _recordFailure(reason: string): void {
    this._writeFailures += 1;
    if (this._failureReported) return;
    this._failureReported = true;
    _writeQuietly(
      _STDERR,
      `onacc: cannot write to log file "${this.settings.logFile}": ${reason}; further failures are counted, not reported\n`,
    );
  }
}

function _openLogFile(path: string): number {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, LOG_FILE_MODE);
  } catch (err) {
    throw new LogFileError(path, err);
  }
}

function _createConsole(verbose: boolean): ConsolaInstance {
  const reporter: ConsolaReporter = {
    log(logObj) {
      const line = String(logObj.args[0] ?? "");
      _writeQuietly(logObj.level < LogLevels.log ? _STDERR : _STDOUT, `${line}\n`);
    },
  };
  return createConsola({
    level: verbose ? LogLevels.debug : LogLevels.info,
    reporters: [reporter],
    // Why: consola's default folds repeated identical lines; every FOUND line must be printed.
    throttle: 0,
  });
}

// Console output goes straight to the fd: synchronous, one write per line, the same in Workers.
function _writeQuietly(fd: number, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    /* a closed terminal or pipe must not stop scanning */
  }
}

function _closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
