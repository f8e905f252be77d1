import { describe, expect, test } from "bun:test";
import { FAN_ALLOW, FAN_DENY } from "../../ffi/fanotify.ts";
import type { ScanOutcome } from "../../src/clamd/types.ts";
import { errorResponse, responseFor } from "../../src/engine/policy.ts";
import { ClamdError } from "../../src/errors.ts";

const clean: ScanOutcome = { ok: true, verdict: { kind: "clean" }, attempts: 1 };
const infected: ScanOutcome = { ok: true, verdict: { kind: "infected", signatures: ["X"] }, attempts: 1 };
const clamdSaysError: ScanOutcome = { ok: true, verdict: { kind: "error", message: "Access denied. ERROR" }, attempts: 1 };
const unreachable: ScanOutcome = { ok: false, error: new ClamdError("timeout", "late"), attempts: 3 };

describe("responseFor()", () => {
  test("denies infected files only with prevention", () => {
    expect(responseFor(infected, { prevention: true, denyOnError: false })).toBe(FAN_DENY);
    expect(responseFor(infected, { prevention: false, denyOnError: true })).toBe(FAN_ALLOW);
    expect(responseFor(clean, { prevention: true, denyOnError: true })).toBe(FAN_ALLOW);
  });

  test("denies on error only with prevention and OnAccessDenyOnError, also after retries", () => {
    for (const o of [clamdSaysError, unreachable]) {
      expect(responseFor(o, { prevention: true, denyOnError: true })).toBe(FAN_DENY);
      expect(responseFor(o, { prevention: true, denyOnError: false })).toBe(FAN_ALLOW);
      expect(responseFor(o, { prevention: false, denyOnError: true })).toBe(FAN_ALLOW);
    }
    expect(errorResponse({ prevention: true, denyOnError: true })).toBe(FAN_DENY);
  });
});
