// How a scan outcome becomes a fanotify response. The one rule clamonacc gets wrong: an error (after all
// retries) is denied when OnAccessPrevention and OnAccessDenyOnError are both on, and allowed otherwise.
import { FAN_ALLOW, FAN_DENY } from "../../ffi/fanotify.ts";
import type { ScanOutcome } from "../clamd/types.ts";

export interface ResponsePolicy {
  prevention: boolean;
  denyOnError: boolean;
}

/** The response for anything that kept onacc from getting a verdict (clamd down, late, queue full). */
export function errorResponse(p: ResponsePolicy): number {
  return p.prevention && p.denyOnError ? FAN_DENY : FAN_ALLOW;
}

export function responseFor(outcome: ScanOutcome, p: ResponsePolicy): number {
  if (!outcome.ok) return errorResponse(p);
  switch (outcome.verdict.kind) {
    case "clean":
      return FAN_ALLOW;
    case "infected":
      return p.prevention ? FAN_DENY : FAN_ALLOW;
    case "error":
      return errorResponse(p);
  }
}
