// What a scan produces. The engine decides allow/deny from a ScanOutcome: a verdict, or an error that
// the OnAccessDenyOnError policy then judges (clamonacc's retries silently turned errors into "allow").
import type { ClamdError } from "../errors.ts";

export type Verdict =
  | { kind: "clean" }
  | { kind: "infected"; signatures: string[] }
  /** clamd scanned but reported an error for this object (e.g. "Access denied. ERROR"). */
  | { kind: "error"; message: string };

export type ScanOutcome =
  | { ok: true; verdict: Verdict; attempts: number }
  | { ok: false; error: ClamdError; attempts: number };

/** How file contents reach clamd. */
export type ScanMode = "fdpass" | "stream" | "path";
