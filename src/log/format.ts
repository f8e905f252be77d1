// How one log record becomes one line of text: the record type, the timestamp, the default text formats
// for the log file and the console, and the JSON format (--log-format json) for machine ingestion.

export type LogLevel = "found" | "notice" | "error" | "warn" | "info" | "verbose";

/** One log event, already made single-line by the logger. */
export interface LogRecord {
  time: Date;
  level: LogLevel;
  /** The whole human message, e.g. "/srv/x: Eicar-Signature FOUND". */
  message: string;
  /** Set on `found` records so a structured format can emit the parts on their own. */
  found?: { path: string; signature: string };
}

/** Renders one record as one line, without the trailing newline. */
export type LogFormatter = (record: LogRecord) => string;

/**
 * Log file timestamp: ISO-8601 local time with milliseconds and the UTC offset,
 * e.g. "2026-11-26T21:22:06.123+01:00". Sortable, and unambiguous across DST changes and time zones
 * (clamd's "Thu Nov 26 21:22:06 2026" is neither).
 */
export function localIsoTimestamp(time: Date): string {
  const offsetMin = -time.getTimezoneOffset();
  const sign = offsetMin >= 0 ? "+" : "-";
  const abs = Math.abs(offsetMin);
  return (
    `${time.getFullYear()}-${_pad(time.getMonth() + 1)}-${_pad(time.getDate())}` +
    `T${_pad(time.getHours())}:${_pad(time.getMinutes())}:${_pad(time.getSeconds())}` +
    `.${String(time.getMilliseconds()).padStart(3, "0")}` +
    `${sign}${_pad(Math.floor(abs / 60))}:${_pad(abs % 60)}`
  );
}

/** "ERROR: " / "WARNING: " as clamd and clamonacc print them; nothing for the other levels. */
export function levelPrefix(level: LogLevel): string {
  if (level === "error") return "ERROR: ";
  if (level === "warn") return "WARNING: ";
  return "";
}

/**
 * The default log file line: `<timestamp> -> <message>`, e.g.
 * "2026-11-26T21:22:06.123+01:00 -> /srv/x: Eicar-Signature FOUND". The " -> " separator is clamd's,
 * so scripts that split clamd log lines on it keep working.
 */
export const textFileFormatter: LogFormatter = (record) =>
  `${localIsoTimestamp(record.time)} -> ${levelPrefix(record.level)}${record.message}`;

/** The console line: no timestamp (a terminal or journald adds its own). */
export const textConsoleFormatter: LogFormatter = (record) => `${levelPrefix(record.level)}${record.message}`;

/**
 * --log-format json: one object per line, e.g.
 * {"time":"2026-11-26T20:22:06.123Z","level":"found","message":"/srv/x: Eicar FOUND","path":"/srv/x","signature":"Eicar"}.
 * UTC time (what log shippers expect); FOUND records carry path and signature as their own fields, shown
 * as in the text line (undecodable bytes escaped), so a path never has to be cut out of the message.
 */
export const jsonFormatter: LogFormatter = (record) =>
  JSON.stringify({
    time: record.time.toISOString(),
    level: record.level,
    message: record.message,
    ...(record.found ? { path: record.found.path, signature: record.found.signature } : {}),
  });

/** The log file formatter for --log-format. */
export function fileFormatterFor(format: "text" | "json" | undefined): LogFormatter {
  return format === "json" ? jsonFormatter : textFileFormatter;
}

function _pad(n: number): string {
  return String(n).padStart(2, "0");
}
