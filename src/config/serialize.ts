// Writes clamd.conf text (for the setup wizard): one `Option value` line per value, quoted only where
// clamd's parser would otherwise change the value.
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { CLAMD_OPTION_NAMES } from "./clamd-options.ts";
import { isOnaccOption } from "./onacc-options.ts";

export type ConfigValue = string | number | boolean;

export interface ConfigLine {
  name: string;
  /** A list writes one line per item (for repeatable options such as OnAccessIncludePath). */
  value: ConfigValue | readonly ConfigValue[];
  /** Written as `# …` lines just above the option. */
  comment?: string;
}

/**
 * clamd.conf text for `lines`, optionally under a `# …` header. Booleans become yes/no; numbers are
 * written in decimal (pass sizes as text, e.g. "5M", to keep the suffix). Throws ConfigError when a
 * name is not a clamd option or a value cannot be written (empty, or more than one line). onacc-only
 * options are written only with `onaccOnly` (for a file clamd never reads: clamd refuses them).
 */
export function serializeConfig(lines: readonly ConfigLine[], header?: string, opts: { onaccOnly?: boolean } = {}): string {
  const problems: ConfigProblem[] = [];
  const out: string[] = header === undefined ? [] : [..._comment(header), ""];
  for (const { name, value, comment } of lines) {
    const problem = (message: string) => problems.push({ file: "(new configuration)", line: 0, message });
    if (isOnaccOption(name) && !opts.onaccOnly) {
      problem(`Cannot write the onacc-only option ${name} into a file clamd may read (clamd refuses options it does not know)`);
      continue;
    }
    if (!CLAMD_OPTION_NAMES.has(name) && !isOnaccOption(name)) {
      problem(`Cannot write unknown option "${name}"`);
      continue;
    }
    if (comment !== undefined) out.push(..._comment(comment));
    const values: readonly ConfigValue[] = Array.isArray(value) ? value : [value as ConfigValue];
    for (const item of values) {
      const text = typeof item === "boolean" ? (item ? "yes" : "no") : String(item);
      if (text === "" || /[\r\n]/.test(text)) {
        problem(`Cannot write ${name} ${JSON.stringify(text)}: a value must be non-empty and on one line`);
        continue;
      }
      out.push(`${name} ${_quoteIfNeeded(text)}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out.join("\n") + "\n";
}

// clamd trims blanks around a value and strips a leading quote up to the last one; wrapping the whole
// value in quotes makes it survive both (the last quote is then ours).
function _quoteIfNeeded(text: string): string {
  return /^[ \t"]|[ \t]$/.test(text) ? `"${text}"` : text;
}

function _comment(text: string): string[] {
  return text.split("\n").map((line) => (line === "" ? "#" : `# ${line}`));
}
