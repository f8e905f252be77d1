// The options only onacc reads: one registry of their names, value schemas and defaults. clamd refuses
// every option it does not know, so these may only live in files clamd never reads (see clamd-readers.ts and load.ts).
import * as v from "valibot";
import type { OnaccOnlyOptions } from "./types.ts";
import { absolutePathValue, booleanValue, durationValue, globPatternValue } from "./values.ts";

/** onacc's drop-in directory: read after the main configuration file, never by clamd. */
export const ONACC_DROPIN_DIR = "/etc/onacc/onacc.conf.d";

// Defaults are written as configuration text and go through the same schema as a written value.
export const onaccOptionsSchema = v.object({
  ExcludeExe: v.optional(v.array(absolutePathValue), []),
  ExcludeExeChildren: v.optional(booleanValue, "no"),
  ExcludePattern: v.optional(v.array(globPatternValue), []),
  QuarantineRetention: v.optional(durationValue, "0"),
});

export type OnaccOptionName = keyof typeof onaccOptionsSchema.entries;

export interface OnaccOptionSpec {
  /** Given several times, the values accumulate; otherwise a second occurrence is an error. */
  repeatable: boolean;
  /** The value as people write it, for messages and the README. */
  value: string;
  summary: string;
}

export const ONACC_OPTIONS: Readonly<Record<OnaccOptionName, OnaccOptionSpec>> = {
  ExcludeExe: {
    repeatable: true,
    value: "absolute path",
    summary: "Opens by a process running this executable are not scanned (matched by device and inode, not by name)",
  },
  ExcludeExeChildren: { repeatable: false, value: "yes/no", summary: "ExcludeExe also covers the child processes of those executables (default no)" },
  ExcludePattern: {
    repeatable: true,
    value: "pattern",
    summary: "Files whose name (*.log) or whole path (/srv/*/cache/**) matches are not scanned",
  },
  QuarantineRetention: {
    repeatable: false,
    value: "duration",
    summary: "How long quarantined files are kept: 30d, 12h, 90m, 3600s; 0 keeps them for ever (default)",
  },
};

export const ONACC_OPTION_NAMES: ReadonlySet<string> = new Set(Object.keys(ONACC_OPTIONS));

export function isOnaccOption(name: string): name is OnaccOptionName {
  return ONACC_OPTION_NAMES.has(name);
}

/** The typed settings from the schema's output. */
export function onaccOnlyOptions(o: v.InferOutput<typeof onaccOptionsSchema>): OnaccOnlyOptions {
  return {
    excludeExe: [...new Set(o.ExcludeExe)],
    excludeExeChildren: o.ExcludeExeChildren,
    excludePatterns: [...new Set(o.ExcludePattern)],
    quarantineRetentionSec: o.QuarantineRetention,
  };
}
