// A real systemd for tests: this host's own system booted in a throwaway systemd-nspawn container (root on
// tmpfs, /usr read-only from the host), with the checkout overlaid at /src. Commands run inside through nsenter.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { ROOT, type RunResult } from "./helpers.ts";

/** Units of the host's packages that a fresh boot would start (presets) but the tests must not have. */
const MASKED = [
  "systemd-firstboot.service", // its questions (systemd.firstboot=off below says the same)
  "clamav-clamonacc.service", // a second on-access scanner
  "clamav-daemon.service",
  "clamav-daemon.socket", // socket-activated clamd without a database: connections would hang
  "clamav-freshclam.service",
  "clamav-freshclam-once.service",
  "clamav-freshclam-once.timer",
  "postgresql.service",
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "man-db.timer",
];

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Why no container can be booted here, or undefined when it should work. */
export function containerUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "systemd-nspawn needs root";
  const nspawn = Bun.which("systemd-nspawn");
  if (nspawn === null) return "systemd-nspawn is not installed (Debian package systemd-container)";
  if (Bun.which("nsenter") === null) return "nsenter is not installed (util-linux)";
  if (!existsSync("/usr/lib/systemd/systemd") && !existsSync("/lib/systemd/systemd")) return "systemd itself is not installed";
  return undefined;
}

export class Container {
  private constructor(
    /** systemd-nspawn's PID (ours). */
    readonly nspawnPid: number,
    /** The container's PID 1 (systemd), as the host sees it. */
    readonly leader: number,
    readonly machine: string,
    private readonly proc: ReturnType<typeof Bun.spawn>,
    private readonly console: { text: string },
  ) {}

  /** Boots the container and waits until systemd has finished starting up (at most `timeoutMs`). */
  static async boot(timeoutMs = 60000): Promise<Container> {
    const machine = `onacc-test-${process.pid}`;
    const args = [
      "systemd-nspawn",
      "-D", "/",
      "--volatile=yes",
      "--register=no",
      "--keep-unit",
      `--machine=${machine}`,
      "--console=pipe",
      // The checkout, writable inside without touching it (install.sh --from-source builds dist/ there).
      `--overlay=${ROOT}::/src`,
      // install.sh's default prefix; /usr itself is the host's, read-only.
      "--overlay=/usr/local::/usr/local",
      // The clamav-daemon package's configuration, as on the host (its database directory stays empty).
      ...(existsSync("/etc/clamav") ? ["--bind-ro=/etc/clamav"] : []),
      // nspawn's own seccomp allow-list leaves fanotify out (EPERM for every process systemd starts in
      // there): add it, and the file-handle calls directory-entry events need. Nothing onacc-specific
      // beyond what a host's systemd allows its services.
      "--system-call-filter=fanotify_init fanotify_mark name_to_handle_at open_by_handle_at",
      "-b",
      // Arguments for systemd: no first-boot questions, and the host's package units that must not run.
      "systemd.firstboot=off",
      ...MASKED.map((u) => `systemd.mask=${u}`),
    ];
    const console = { text: "" };
    const proc = Bun.spawn(args, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    void _collect(proc.stdout, console);
    void _collect(proc.stderr, console);
    const deadline = Date.now() + timeoutMs;
    // nspawn forks helpers on the way: the leader is its child once that child runs systemd.
    let leader: number | undefined;
    while (leader === undefined && Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`systemd-nspawn exited with status ${proc.exitCode}:\n${console.text}`);
      const child = _childOf(proc.pid);
      if (child !== undefined && _comm(child) === "systemd") leader = child;
      else await Bun.sleep(50);
    }
    if (leader === undefined) {
      proc.kill("SIGKILL");
      throw new Error(`systemd-nspawn started no container within ${timeoutMs} ms:\n${console.text}`);
    }
    const c = new Container(proc.pid, leader, machine, proc, console);
    try {
      // "running" or "degraded" (a unit of the host's failed): both mean start-up is over.
      for (;;) {
        const state = await c.exec("systemctl is-system-running --wait", { timeoutMs: Math.max(1000, deadline - Date.now()) });
        const word = state.stdout.trim();
        if (word === "running" || word === "degraded") break;
        if (Date.now() > deadline) throw new Error(`the container's systemd did not finish starting ("${word}", ${state.stderr.trim()}):\n${console.text}`);
        await Bun.sleep(200);
      }
    } catch (err) {
      await c.dispose();
      throw err;
    }
    return c;
  }

  /** Runs `sh -c script` inside the container (all its namespaces, a clean environment), without a terminal. */
  async exec(script: string, opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
    const env = Object.entries({ PATH, HOME: "/root", LANG: "C.UTF-8", NO_COLOR: "1", ...opts.env }).map(([k, v]) => `${k}=${v}`);
    const proc = Bun.spawn(["nsenter", "-t", String(this.leader), "-a", "--", "/usr/bin/env", "-i", ...env, "setsid", "-w", "/bin/sh", "-c", script], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 60000);
    try {
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { code, stdout, stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Like exec, but throws with everything printed unless the script exits 0; returns its stdout. */
  async sh(script: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(script, opts);
    if (r.code !== 0) throw new Error(`inside the container, "${script}" exited ${r.code}:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** What systemd and nspawn printed on the console so far (for failure messages). */
  consoleText(): string {
    return this.console.text;
  }

  /**
   * Powers the container off (SIGRTMIN+4 to its systemd), waits for nspawn to exit, and kills both when
   * that takes longer than `graceMs`. Everything inside (agent, clamd, mounts) goes with its namespaces.
   */
  async dispose(graceMs = 15000): Promise<void> {
    _signal(this.leader, "SIGRTMIN+4");
    const deadline = Date.now() + graceMs;
    while (this.proc.exitCode === null && this.proc.signalCode === null && Date.now() < deadline) await Bun.sleep(100);
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      // The container's init first: once nspawn is gone, nothing else would end it.
      _signal(this.leader, "SIGKILL");
      _signal(this.nspawnPid, "SIGKILL");
      await this.proc.exited;
    }
    // nspawn's scratch directories for this machine, left behind only when it was killed.
    for (const dir of ["/run/systemd/nspawn/propagate", "/run/systemd/nspawn/unix-export"]) rmSync(`${dir}/${this.machine}`, { recursive: true, force: true });
  }
}

/** The first child process of `pid` (nspawn's only child is the container's init). */
function _childOf(pid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return children.length > 0 ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}

function _comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

function _signal(pid: number, signal: NodeJS.Signals | "SIGRTMIN+4"): void {
  try {
    if (signal === "SIGRTMIN+4") Bun.spawnSync(["kill", "-s", "RTMIN+4", String(pid)]);
    else process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

async function _collect(stream: ReadableStream<Uint8Array>, into: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    into.text += decoder.decode(chunk, { stream: true });
    // Keep the tail only: a failure message needs the last lines.
    if (into.text.length > 200_000) into.text = into.text.slice(-100_000);
  }
}
