// The clamd.conf line syntax, read exactly as clamd's own parser (common/optparser.c) reads it: no
// meaning is given to option names here, only to lines, whitespace and quotes.
import type { ConfigProblem } from "../errors.ts";

/** One `Option value` line. */
export interface ConfigEntry {
  name: string;
  value: string;
  line: number;
}

export interface ConfigLines {
  entries: ConfigEntry[];
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

/**
 * Splits clamd.conf text into entries. Rules (clamd's, checked against optparser.c in ClamAV 1.4):
 * - leading blanks are skipped; blank lines and lines starting with `#` are comments. There are no
 *   end-of-line comments: `LocalSocket /x # y` has the value `/x # y`.
 * - the name ends at the first space or tab; the value is the rest, with blanks trimmed at both ends
 *   (we also trim a trailing `\r`, which clamd would keep, so CRLF files work).
 * - a value starting with `"` is quoted: the quotes are removed and anything after the last `"` is
 *   dropped (clamd drops it silently; we warn). A missing closing quote or `""` is an error.
 * - a line starting with `Example` marks clamd's unedited sample file: clamd refuses to start.
 * - a line with control characters (other than tabs) is an error: binary data is no configuration, and
 *   clamd would read a NUL byte as the end of the line.
 */
export function readConfigLines(text: string, file: string): ConfigLines {
  const out: ConfigLines = { entries: [], problems: [], warnings: [] };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const trimmed = (lines[i] ?? "").replace(/^[ \t]+/, "").replace(/[ \t\r]+$/, "");
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const problem = (message: string) => out.problems.push({ file, line, message });

    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(trimmed)) {
      problem("The line contains control characters: is this a configuration file?");
      continue;
    }

    if (trimmed.startsWith("Example")) {
      problem('"Example" marks an unedited sample configuration: remove that line (clamd refuses it too)');
      continue;
    }
    const gap = trimmed.search(/[ \t]/);
    if (gap < 0) {
      problem(`Option "${trimmed}" has no value`);
      continue;
    }
    const name = trimmed.slice(0, gap);
    let value = trimmed.slice(gap).replace(/^[ \t]+/, "");

    if (value.startsWith('"')) {
      const close = value.lastIndexOf('"');
      if (close === 0) {
        problem(`Option ${name} has a value with no closing quote: ${value}`);
        continue;
      }
      const rest = value.slice(close + 1);
      value = value.slice(1, close);
      if (value === "") {
        problem(`Option ${name} has an empty value ""`);
        continue;
      }
      if (rest !== "") {
        out.warnings.push({ file, line, message: `Text after the closing quote of ${name} is ignored: ${rest}` });
      }
    }
    out.entries.push({ name, value, line });
  }
  return out;
}
