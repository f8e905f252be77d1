// Shared by the tests/ship files: the checkout's root, a temporary directory per test, running a command
// to completion without blocking the event loop (the loopback HTTP server lives in it), and file snapshots.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const INSTALL_SH = join(ROOT, "install.sh");
export const UNIT_FILE = join(ROOT, "systemd/onacc.service");
export const SETUP_ENTRY = join(ROOT, "tests/ship/setup-entry.ts");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` with no terminal (setsid: /dev/tty cannot be opened) and stdin from `stdin` or nothing. */
export async function run(cmd: string[], opts: { env?: Record<string, string>; stdin?: string; cwd?: string } = {}): Promise<RunResult> {
  const proc = Bun.spawn(["setsid", "-w", ...cmd], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** dash when installed (Debian's /bin/sh; the strictest POSIX shell at hand), else sh. */
export const POSIX_SH = Bun.which("dash") ?? "sh";

export function tempDir(prefix: string): { path: string; dispose(): void } {
  const path = mkdtempSync(`/tmp/onacc-ship-${prefix}-`);
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

/** Every file and directory under `dir`: relative path → "dir", "<mode> <sha256>", or "socket"/"symlink"/"other". */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = lstatSync(path);
      const key = relative(dir, path);
      if (st.isDirectory()) {
        out[key] = "dir";
        walk(path);
      } else if (!st.isFile()) {
        out[key] = st.isSocket() ? "socket" : st.isSymbolicLink() ? "symlink" : "other";
      } else {
        out[key] = `${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
      }
    }
  };
  walk(dir);
  return out;
}

export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `systemd-analyze verify` of a unit file: its exit code and everything it printed (warnings included). */
export async function verifyUnit(unitPath: string): Promise<{ code: number; output: string }> {
  const r = await run(["systemd-analyze", "verify", unitPath]);
  return { code: r.code, output: `${r.stdout}${r.stderr}`.trim() };
}
