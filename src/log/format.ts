// How one log record becomes one line of text: the record type, the timestamp, and the default text
// formats for the log file and the console. A JSON format would be one more LogFormatter here.

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

function _pad(n: number): string {
  return String(n).padStart(2, "0");
}
