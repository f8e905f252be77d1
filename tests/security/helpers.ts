// What the attack tests share: an unprivileged attacker (uid/gid 65534, "nobody"), running a command as
// that attacker, and starting a process on a PID chosen by the test (to reuse a PID that onacc trusted).
import { readFileSync, writeFileSync } from "node:fs";

/** The attacker: an unprivileged user with no supplementary groups. */
export const ATTACKER_UID = 65534;

/** `cmd` run as the attacker through setpriv (the PID stays the command's own: setpriv execs it). */
export function asAttacker(cmd: string[]): string[] {
  return ["setpriv", `--reuid=${ATTACKER_UID}`, `--regid=${ATTACKER_UID}`, "--clear-groups", ...cmd];
}

/** Runs `cmd` to completion with a time bound; never hangs the suite. */
export function run(cmd: string[], timeoutMs = 15_000): { code: number | null; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/**
 * Starts `cmd` so that its process gets PID `pid` (free by then): the kernel hands out ns_last_pid + 1 next.
 * Other processes may fork in between, so it tries a few times; returns the run's result, or undefined
 * when the PID could not be had.
 */
export function runWithPid(pid: number, cmd: string[], timeoutMs = 15_000): { code: number | null; stdout: string; stderr: string } | undefined {
  for (let attempt = 0; attempt < 20; attempt++) {
    writeFileSync("/proc/sys/kernel/ns_last_pid", String(pid - 1));
    // sh reports its own PID, then execs the command in place: the command runs as PID `pid` or not at all.
    const r = Bun.spawnSync(["sh", "-c", `[ "$$" = "${pid}" ] || exit 97; exec "$@"`, "sh", ...cmd], {
      stdout: "pipe",
      stderr: "pipe",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    if (r.exitCode === 97) continue;
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }
  return undefined;
}

/** True while a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}
