// The start-up plan, without root, clamd or fanotify: every decision the engine runs by, from a config
// file's text, a command line and a few host facts.
import { describe, expect, test } from "bun:test";
import { parseRunArgs } from "../../src/cli/args.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { planEngine, ringCapacityFor } from "../../src/engine/plan.ts";
import { OnaccError, UsageError } from "../../src/errors.ts";
import { FAN_CLOSE_WRITE, FAN_OPEN, FAN_OPEN_PERM } from "../../ffi/fanotify.ts";

const users: Record<string, number> = { root: 0, clamav: 102, backup: 34 };
const host = { nofileLimit: 1 << 20, uidOf: (name: string) => users[name] };
const plan = (conf: string[], argv: string[] = []) =>
  planEngine(parseConfigText(`${conf.join("\n")}\n`, "onacc.conf").config, parseRunArgs(["--foreground", ...argv], "/"), host);

describe("planEngine()", () => {
  test("fd passing to a LocalSocket, streaming to TCP: one mode per endpoint, decided once", () => {
    const p = plan(["LocalSocket /run/clamd.ctl", "TCPSocket 3310", "TCPAddr 10.0.0.5", "OnAccessIncludePath /srv"]);
    expect(p.scan.endpoints.map((e) => e.kind)).toEqual(["unix", "tcp"]);
    expect(p.scan.modes).toEqual(["fdpass", "stream"]);
    expect(plan(["LocalSocket /run/clamd.ctl", "OnAccessIncludePath /srv"], ["--stream"]).scan.modes).toEqual(["stream"]);
  });

  test("--fdpass without any LocalSocket is a usage error naming the endpoint", () => {
    expect(() => plan(["TCPSocket 3310", "TCPAddr 10.0.0.5", "OnAccessIncludePath /srv"], ["--fdpass"])).toThrow(UsageError);
  });

  test("--allmatch lists signatures only when every clamd is local; otherwise it says so", () => {
    expect(plan(["LocalSocket /run/clamd.ctl", "OnAccessIncludePath /srv"], ["--allmatch"]).scan.listAllSignatures).toBe(true);
    const remote = plan(["TCPSocket 3310", "TCPAddr 10.0.0.5", "OnAccessIncludePath /srv"], ["--allmatch"]);
    expect(remote.scan.listAllSignatures).toBe(false);
    expect(remote.warnings.join()).toContain("--allmatch has no effect");
  });

  test("the deadline covers OnAccessCurlTimeout × attempts, and one failover with two or more clamds", () => {
    const one = plan(["LocalSocket /run/clamd.ctl", "OnAccessIncludePath /srv", "OnAccessCurlTimeout 2000", "OnAccessRetryAttempts 1"]);
    expect(one.scan.deadlineMs).toBe(2000 * 2 + 500);
    expect(one.watchdogMs).toBe(one.scan.deadlineMs + 500);
    const two = plan(["LocalSocket /run/clamd.ctl", "TCPSocket 3310", "TCPAddr 10.0.0.5", "OnAccessIncludePath /srv", "OnAccessCurlTimeout 2000"]);
    expect(two.scan.deadlineMs).toBe(2000 * 2 + 500);
  });

  test("OnAccessMaxThreads is how many scans are in flight; the queue follows the descriptor limit", () => {
    expect(plan(["LocalSocket /s", "OnAccessIncludePath /srv", "OnAccessMaxThreads 32"]).scan.inFlight).toBe(32);
    expect(ringCapacityFor(1024)).toBe(64);
    expect(ringCapacityFor(8192)).toBe(4096);
    expect(ringCapacityFor(5000)).toBe(1024);
  });

  test("excluded uids: names resolved exactly, clamd's User only when clamd runs here, never uid 0 for a root clamd", () => {
    const local = plan(["LocalSocket /s", "User clamav", "OnAccessIncludePath /srv", "OnAccessExcludeUname backup", "OnAccessExcludeUname nobody-here"]);
    expect(local.exclusions.uids.sort()).toEqual([102, 34].sort());
    expect(local.warnings.join()).toContain('OnAccessExcludeUname "nobody-here": no such user');
    expect(local.clamdOwnerUids).toEqual([0, 102]);
    const remote = plan(["TCPSocket 3310", "TCPAddr 10.0.0.5", "User clamav", "OnAccessIncludePath /srv"]);
    expect(remote.exclusions.uids).toEqual([]);
    const rootClamd = plan(["LocalSocket /s", "User root", "OnAccessIncludePath /srv"]);
    expect(rootClamd.exclusions.uids).toEqual([]);
  });

  test("prevention marks FAN_OPEN_PERM; notification mode FAN_OPEN and FAN_CLOSE_WRITE", () => {
    expect(plan(["LocalSocket /s", "OnAccessIncludePath /srv", "OnAccessPrevention yes"]).marks.mask).toBe(FAN_OPEN_PERM);
    expect(plan(["LocalSocket /s", "OnAccessIncludePath /srv"]).marks.mask).toBe(FAN_OPEN | FAN_CLOSE_WRITE);
  });

  test("no clamd or nothing to watch is a configuration error naming the file", () => {
    expect(() => plan(["LocalSocket /s"])).toThrow(OnaccError);
    expect(() => plan(["LocalSocket /s"])).toThrow(/onacc\.conf: nothing to watch/);
  });
});
