// What the attack tests share: an unprivileged attacker (uid/gid 65534, "nobody"), running a command as
// that attacker or as other unprivileged users, starting a process on a PID chosen by the test (to reuse a
// PID that onacc trusted), and a root helper process that holds one open until the test lets it go.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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

export interface TestUser {
  uid: number;
  gid: number;
  /** Supplementary groups (a shared directory's group). */
  groups?: number[];
}

/** argv that runs `argv` as `user`, with no capabilities left. */
export function userCommand(user: TestUser, argv: string[]): string[] {
  const groups = user.groups?.length ? [`--groups=${user.groups.join(",")}`] : ["--clear-groups"];
  return ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, ...groups, "--inh-caps=-all", "--", ...argv];
}

/** Runs `argv` as `user` to completion (stdin from `input`); throws with its stderr when it fails. */
export function runAs(user: TestUser, argv: string[], input?: string | Uint8Array): void {
  const r = Bun.spawnSync(userCommand(user, argv), {
    stdin: input === undefined ? "ignore" : typeof input === "string" ? Buffer.from(input) : input,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 15_000,
    killSignal: "SIGKILL",
  });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} as uid ${user.uid} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
}

export interface Holder {
  /** Resolves with the path of the open it holds, or throws after `timeoutMs`. */
  held(timeoutMs: number): Promise<string>;
  /** Lets the held open go on. */
  release(): void;
  /** Stops the helper by PID (the kernel then allows whatever it still held). */
  dispose(): void;
}

/**
 * Starts hold-open.ts as its own process on `mount` (a tmpfs the test mounted): the first open of a file
 * or directory whose path contains `pattern` (or is exactly X, for a pattern "=X") waits until release().
 */
export async function startHolder(mount: string, pattern: string): Promise<Holder> {
  const proc = Bun.spawn(["bun", join(import.meta.dir, "hold-open.ts"), mount, pattern], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  void (async () => {
    const d = new TextDecoder();
    for await (const c of proc.stdout) out += d.decode(c, { stream: true });
  })();
  const until = async (wanted: RegExp, timeoutMs: number): Promise<RegExpExecArray> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = wanted.exec(out);
      if (m) return m;
      if (proc.exitCode !== null) throw new Error(`hold-open.ts exited with ${proc.exitCode}: ${await new Response(proc.stderr).text()}`);
      if (Date.now() > deadline) throw new Error(`hold-open.ts did not print ${wanted} within ${timeoutMs} ms; it printed: ${out}`);
      await Bun.sleep(10);
    }
  };
  await until(/^ready$/m, 15_000);
  return {
    held: async (timeoutMs) => (await until(/^held (.*)$/m, timeoutMs))[1]!,
    release() {
      proc.stdin.write("\n");
      void proc.stdin.flush();
    },
    dispose() {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
}
