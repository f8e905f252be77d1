// The dynamic-directory benchmark (run by hand, as root; not part of the test suite):
//   bun bench/ddd-bench.ts [--sizes 1000,10000,100000] [--timeout-ms 120000] [--json FILE] [--no-agents]
// Times "start → protection active everywhere" on trees of N directories (3 levels) on a tmpfs it mounts
// itself: the engine's startup walk (src/engine/marks.ts IncludeMarker on a notification group: the rows
// named placeMarks), the directory watchers (fanotify FID events vs inotify), both together, both in one
// walk, onacc end to end (dist/onacc) and clamonacc (/usr/sbin/clamonacc) with the same config. Prints a table, writes JSON (.bench-out/ddd.json).
// Notification-class groups only (FAN_OPEN, OnAccessPrevention no): nothing here can block an open.
// bench/all.ts reuses buildTree() and startupAgents() for its 100k-directories rows.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestClamd } from "../tests/fixtures/clamd.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};

/** One in-process measurement, made in a child process of its own so RSS figures do not mix. */
interface ChildResult {
  variant: string;
  dirs: number;
  ms: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  hwmMiB: number;
  kernelMarks: number;
  /** Watcher variants: reacting to 1,000 new directories with a file each (one drain). */
  eventsMs?: number;
  eventsAdded?: number;
  eventsFiles?: number;
  /**
   * Writing 5,000 files in a directory outside the tree (same filesystem): the writer's time, then the
   * drain's, twice (fanotify-fs: the second round runs under the ignore mark the first one placed).
   */
  outside?: { writeMs: number; drainMs: number; events: number }[];
  /** fanotify watcher: resolving every directory's handle to its path, map vs open_by_handle_at + readlink. */
  resolveMapMs?: number;
  resolveSyscallMs?: number;
  problems?: string[];
}

const VARIANTS = [
  "placeMarks", // the engine's start-up walk today: one FAN_OPEN mark per directory
  "watcher-fanotify",
  "watcher-inotify",
  "placeMarks+fanotify", // what wiring the watcher in naively costs: two walks
  "placeMarks+inotify",
  "one-walk-fanotify", // the watcher's onDirectory hook places the engine's mark too: one walk
  "one-walk-inotify",
  "watcher-fanotify-fs", // one filesystem mark: no walk at all
  "placeMarks+fanotify-fs",
  "one-walk-fanotify-fs", // the hook walks for the engine's marks; the watcher itself places none
] as const;

const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

function statusMiB(pid: number | "self", field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
}

/** Marks (fanotify) and watches (inotify) a process holds, from /proc/PID/fdinfo. */
function kernelWatches(pid: number | "self"): { fanotify: number; inotify: number } {
  const out = { fanotify: 0, inotify: 0 };
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    let info = "";
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "latin1");
    } catch {
      continue;
    }
    if (!info.includes("fanotify ") && !info.includes("inotify wd:")) continue;
    for (const line of info.split("\n")) {
      // Inode marks ("fanotify ino:"), filesystem marks ("fanotify sdev:"), mount marks ("fanotify mnt_id:").
      if (line.startsWith("fanotify ino:") || line.startsWith("fanotify sdev:") || line.startsWith("fanotify mnt_id:")) out.fanotify++;
      else if (line.startsWith("inotify wd:")) out.inotify++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Child: one variant, in-process.

async function runChild(variant: string, root: string): Promise<void> {
  const { IncludeMarker } = await import("../src/engine/marks.ts");
  const { chooseDirectoryWatcher } = await import("../src/engine/dirwatch/index.ts");
  const fan = await import("../ffi/fanotify.ts");
  const { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY } = await import("../ffi/fcntl.ts");
  const { libc, cstr, structBuffer } = await import("../ffi/libc.ts");
  const noop = () => {};
  const problems: string[] = [];
  const events = {
    directoryAdded: noop,
    directoryRemoved: noop,
    fileLanded: noop,
    overflow: () => problems.push("overflow"),
    limit: (m: string) => problems.push(m),
    warning: (m: string) => problems.push(m),
  };

  const wantsGroup = variant.startsWith("placeMarks") || variant.startsWith("one-walk");
  const kind = variant.endsWith("inotify") ? "inotify" : variant.endsWith("fanotify-fs") ? "fanotify-fs" : "fanotify";
  const wantsWatcher = variant !== "placeMarks";
  Bun.gc(true);
  const rssBefore = process.memoryUsage().rss;

  const t0 = performance.now();
  const group = wantsGroup
    ? fan.fanotifyInit(fan.FAN_CLASS_NOTIF | fan.FAN_CLOEXEC | fan.FAN_NONBLOCK | fan.FAN_UNLIMITED_QUEUE | fan.FAN_UNLIMITED_MARKS, O_RDONLY | O_CLOEXEC)
    : -1;
  const markOpen = (fd: number) => {
    const e = fan.fanotifyMarkErrno(group, fan.FAN_MARK_ADD | fan.FAN_MARK_ONLYDIR, fan.FAN_OPEN | fan.FAN_EVENT_ON_CHILD, fd, null);
    if (e !== 0 && problems.length < 5) problems.push(`mark: errno ${e}`);
  };
  const watcher = wantsWatcher
    ? chooseDirectoryWatcher({ prefer: kind, probePaths: [Buffer.from(root)], onDirectory: variant.startsWith("one-walk") ? markOpen : undefined }).watcher
    : null;
  if (watcher && watcher.kind !== kind) problems.push(`asked for ${kind}, got ${watcher.kind}`);
  let dirs = 0;
  try {
    if (variant.startsWith("placeMarks")) {
      // The engine's walk of one include tree (the reader runs it in slices; here in one go).
      const r = new IncludeMarker(group, fan.FAN_OPEN, [root], []).runToEnd();
      problems.push(...r.problems);
      dirs = r.directories;
    }
    if (watcher) {
      const n = watcher.addTree(Buffer.from(root), [], events);
      if (!variant.startsWith("placeMarks")) dirs = n;
    }
    const ms = performance.now() - t0;
    Bun.gc(true);
    const rssAfter = process.memoryUsage().rss;
    const k = kernelWatches("self");
    const result: ChildResult = {
      variant,
      dirs,
      ms: Math.round(ms * 10) / 10,
      rssBeforeMiB: mib(rssBefore),
      rssAfterMiB: mib(rssAfter),
      hwmMiB: statusMiB("self", "VmHWM"),
      kernelMarks: k.fanotify + k.inotify,
      problems,
    };

    if (watcher && !variant.startsWith("placeMarks")) {
      // Reaction to new directories: 1,000 appear (each with a file) before one drain handles them all.
      let added = 0;
      let files = 0;
      const ev = { ...events, directoryAdded: () => void added++, fileLanded: () => void files++ };
      const top = readdirSync(root).slice(0, 10);
      const made: string[] = [];
      try {
        for (let i = 0; i < 1000; i++) {
          const d = join(root, top[i % top.length]!, `new-${i}`);
          mkdirSync(d);
          made.push(d);
          writeFileSync(join(d, "f"), "x");
        }
        const e0 = performance.now();
        watcher.drain(ev);
        result.eventsMs = Math.round((performance.now() - e0) * 10) / 10;
        result.eventsAdded = added;
        result.eventsFiles = files;
      } finally {
        // The next variant measures the same tree; the removals' events are drained away here.
        for (const d of made) rmSync(d, { recursive: true, force: true });
        watcher.drain(events);
      }
    }

    if (variant === "placeMarks" || variant.startsWith("watcher-")) {
      const outside = `${root}-outside`;
      mkdirSync(outside);
      try {
        result.outside = [];
        for (const round of [0, 1]) {
          const w0 = performance.now();
          for (let i = 0; i < 5000; i++) writeFileSync(join(outside, `r${round}-${i}`), "x");
          const writeMs = performance.now() - w0;
          const d0 = performance.now();
          const n = watcher ? watcher.drain(events) : 0;
          result.outside.push({ writeMs: Math.round(writeMs * 10) / 10, drainMs: Math.round((performance.now() - d0) * 10) / 10, events: n });
        }
      } finally {
        rmSync(outside, { recursive: true, force: true });
        watcher?.drain(events);
      }
    }

    if (variant === "watcher-fanotify") {
      // Why the handle → path map: resolve every directory's handle once each way.
      const handles = new fan.FileHandles();
      const paths = watcher!.watchedPaths();
      const keys: { key: string; type: number; bytes: Uint8Array; path: Uint8Array }[] = [];
      for (const p of paths) {
        const fd = libc.openat(AT_FDCWD, cstr(p), O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) continue;
        if (handles.encode(fd) === 0) {
          const b = handles.bytes().slice();
          keys.push({ key: Buffer.from(b).toString("latin1"), type: handles.type(), bytes: b, path: p });
        }
        libc.close(fd);
      }
      const map = new Map<string, Uint8Array>(keys.map((k) => [k.key, k.path]));
      let hits = 0;
      const m0 = performance.now();
      for (const k of keys) if (map.get(k.key)) hits++;
      result.resolveMapMs = Math.round((performance.now() - m0) * 100) / 100;
      const mountFd = libc.openat(AT_FDCWD, cstr(root), O_DIRECTORY | O_CLOEXEC, 0);
      const link = structBuffer(4096);
      const s0 = performance.now();
      for (const k of keys) {
        const fd = handles.open(mountFd, k.type, k.bytes, O_PATH | O_CLOEXEC);
        if (fd < 0) continue;
        if (libc.readlink(cstr(`/proc/self/fd/${fd}`), link, 4096) > 0) hits++;
        libc.close(fd);
      }
      result.resolveSyscallMs = Math.round((performance.now() - s0) * 10) / 10;
      libc.close(mountFd);
      if (hits !== keys.length * 2) problems.push(`resolve: ${hits} of ${keys.length * 2}`);
    }
    console.log(JSON.stringify(result));
  } finally {
    watcher?.close();
    if (group >= 0) libc.close(group);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Parent: trees, children, agents, table.

/** N directories in 3 levels: f, f², and the rest spread as leaves. */
export function buildTree(root: string, n: number): number {
  const f = Math.max(1, Math.floor(Math.cbrt(n)));
  let made = 0;
  const level2: string[] = [];
  mkdirSync(root);
  for (let i = 0; i < f && made < n; i++) {
    const a = join(root, `a${i}`);
    mkdirSync(a);
    made++;
    for (let j = 0; j < f && made < n; j++) {
      const b = join(a, `b${j}`);
      mkdirSync(b);
      made++;
      level2.push(b);
    }
  }
  for (let k = 0; made < n; k++) {
    mkdirSync(join(level2[k % level2.length]!, `c${Math.floor(k / level2.length)}`));
    made++;
  }
  return made + 1; // with the root
}

async function runChildProcess(variant: string, root: string, timeoutMs: number): Promise<ChildResult | { variant: string; error: string }> {
  const proc = Bun.spawn(["bun", join(ROOT, "bench/ddd-bench.ts"), "--child", variant, root], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const line = out.trim().split("\n").pop() ?? "";
    if (proc.exitCode !== 0 || !line.startsWith("{")) return { variant, error: `exit ${proc.exitCode ?? proc.signalCode}: ${err.trim().slice(0, 300)}` };
    return JSON.parse(line) as ChildResult;
  } finally {
    clearTimeout(timer);
  }
}

export interface AgentResult {
  variant: string;
  dirs: number;
  ms?: number;
  rssMiB?: number;
  hwmMiB?: number;
  /** VmRSS 2 s after ready: start-up's leftovers handed back (onacc pages out start-up code 0.5 s after ready). */
  settledRssMiB?: number;
  fanotifyMarks?: number;
  inotifyWatches?: number;
  error?: string;
  note?: string;
}

const SETTLE_MS = 2000;

/**
 * Starts `cmd`, waits for `ready` in its output or log (polled every 2 ms), reads VmRSS and its marks, then
 * VmRSS again SETTLE_MS later, stops it by PID (SIGTERM, SIGKILL after 5 s).
 */
async function timeAgent(variant: string, dirs: number, cmd: string[], logFile: string, ready: RegExp, timeoutMs: number, note?: string): Promise<AgentResult> {
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) out += d.decode(c, { stream: true });
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  try {
    for (;;) {
      const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
      if (ready.test(out) || ready.test(log)) break;
      if (proc.exitCode !== null) return { variant, dirs, error: `exited ${proc.exitCode}: ${(out + log).trim().slice(-400)}`, note };
      if (performance.now() - t0 > timeoutMs) return { variant, dirs, error: `no ${ready} within ${timeoutMs} ms: ${(out + log).trim().slice(-400)}`, note };
      await Bun.sleep(2);
    }
    const ms = performance.now() - t0;
    const rssMiB = statusMiB(proc.pid, "VmRSS");
    const hwmMiB = statusMiB(proc.pid, "VmHWM");
    const k = kernelWatches(proc.pid);
    await Bun.sleep(SETTLE_MS);
    let settledRssMiB: number | undefined;
    try {
      settledRssMiB = statusMiB(proc.pid, "VmRSS");
    } catch {
      /* it exited meanwhile: the figures above still count */
    }
    return { variant, dirs, ms: Math.round(ms * 10) / 10, rssMiB, hwmMiB, settledRssMiB, fanotifyMarks: k.fanotify, inotifyWatches: k.inotify, note };
  } finally {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
      if (!done) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
  }
}

/**
 * "start → protection active everywhere" of onacc (dist/onacc) and clamonacc 1.4.6 on `tree` (`dirs`
 * directories), one after the other, each with the same config; used by main() and bench/all.ts.
 */
export async function startupAgents(tree: string, dirs: number, clamd: TestClamd, work: string, timeoutMs: number, tag: string): Promise<AgentResult[]> {
  const onacc = join(ROOT, "dist/onacc");
  const clamonacc = "/usr/sbin/clamonacc";
  const agentResults: AgentResult[] = [];
  const config = (extra: string[]) => {
    const file = join(work, `conf-${tag}-${agentResults.length}`);
    writeFileSync(file, [`LocalSocket ${clamd.socket}`, `OnAccessIncludePath ${tree}`, "OnAccessPrevention no", "OnAccessExcludeUname clamav", ...extra, ""].join("\n"));
    return file;
  };
  if (existsSync(onacc)) {
    const conf = config(["User clamav"]);
    const log = join(work, `onacc-${tag}.log`);
    // A private control socket: the default one may belong to another agent on this host.
    const r = await timeAgent("onacc (dist/onacc)", dirs, [onacc, "--foreground", "--verbose", `--config-file=${conf}`, `--log=${log}`, `--status-socket=${conf}.sock`], log, /protecting \d+ path/, timeoutMs);
    console.error(`  onacc: ${JSON.stringify(r)}`);
    agentResults.push(r);
  }
  if (existsSync(clamonacc)) {
    // clamonacc logs "watching '…' (and all sub-directories)" before it places the watches; with
    // OnAccessExtraScanning its next line comes after the last watch and mark are placed.
    const conf = config(["OnAccessExtraScanning yes"]);
    const log = join(work, `clamonacc-${tag}.log`);
    const r = await timeAgent(
      "clamonacc 1.4.6",
      dirs,
      [clamonacc, "--foreground", "--verbose", `--config-file=${conf}`, `--log=${log}`],
      log,
      /ClamInotif: extra scanning on inotify events enabled/,
      timeoutMs,
      "ready = its 'extra scanning ... enabled' line, logged after onas_ddd_watch() returns",
    );
    console.error(`  clamonacc: ${JSON.stringify(r)}`);
    agentResults.push(r);
  }
  return agentResults;
}

async function main(): Promise<void> {
  const sizes = arg("sizes", "1000,10000,100000").split(",").map(Number);
  const timeoutMs = Number(arg("timeout-ms", "120000"));
  const jsonOut = arg("json", join(ROOT, ".bench-out/ddd.json"));
  const agents = !process.argv.includes("--no-agents");
  const { mountTmpfs } = await import("../tests/fixtures/tmpfs.ts");
  const { startClamd, disposeClamd } = await import("../tests/fixtures/clamd.ts");

  const mount = mountTmpfs("/tmp/onacc-ddd-bench-", "1g");
  const work = mkdtempSync("/tmp/onacc-ddd-bench-work-");
  let clamd: Awaited<ReturnType<typeof startClamd>> | undefined;
  const results: { size: number; children: unknown[]; agents: AgentResult[] }[] = [];
  try {
    const onacc = join(ROOT, "dist/onacc");
    const clamonacc = "/usr/sbin/clamonacc";
    if (agents && (existsSync(onacc) || existsSync(clamonacc))) clamd = await startClamd();
    for (const size of sizes) {
      const tree = join(mount.path, `tree-${size}`);
      const dirs = buildTree(tree, size);
      console.error(`tree of ${dirs} directories at ${tree}`);
      const children: unknown[] = [];
      for (const v of VARIANTS) {
        const r = await runChildProcess(v, tree, timeoutMs);
        console.error(`  ${v}: ${JSON.stringify(r)}`);
        children.push(r);
      }
      const agentResults = clamd ? await startupAgents(tree, dirs, clamd, work, timeoutMs, `${size}`) : [];
      results.push({ size, children, agents: agentResults });
      rmSync(tree, { recursive: true, force: true });
    }
  } finally {
    await disposeClamd(clamd);
    mount.unmount();
    rmSync(work, { recursive: true, force: true });
  }

  // Table.
  const rows: string[][] = [["dirs", "what", "start→active ms", "RSS MiB", "RSS Δ MiB", "marks", "1k new dirs ms", "notes"]];
  for (const r of results) {
    for (const c of r.children as (ChildResult & { error?: string })[]) {
      if (c.error) {
        rows.push([String(r.size), c.variant, "-", "-", "-", "-", "-", c.error.slice(0, 60)]);
        continue;
      }
      const notes = [
        c.outside ? `5k writes outside: ${c.outside.map((o) => `${o.writeMs}+${o.drainMs} ms/${o.events} ev`).join(", then ")}` : "",
        c.resolveSyscallMs !== undefined ? `resolve all: map ${c.resolveMapMs} ms, open_by_handle_at+readlink ${c.resolveSyscallMs} ms` : "",
        c.eventsAdded !== undefined ? `(${c.eventsAdded} dirs, ${c.eventsFiles} files)` : "",
        c.problems?.length ? `problems: ${c.problems.slice(0, 2).join("; ")}` : "",
      ]
        .filter(Boolean)
        .join(" ");
      rows.push([
        String(r.size),
        c.variant,
        String(c.ms),
        String(c.rssAfterMiB),
        String(Math.round((c.rssAfterMiB - c.rssBeforeMiB) * 10) / 10),
        String(c.kernelMarks),
        c.eventsMs !== undefined ? String(c.eventsMs) : "",
        notes,
      ]);
    }
    for (const a of r.agents) {
      rows.push([
        String(r.size),
        a.variant,
        a.ms !== undefined ? String(a.ms) : "-",
        a.rssMiB !== undefined ? String(a.rssMiB) : "-",
        "",
        a.fanotifyMarks !== undefined ? `${a.fanotifyMarks} fan + ${a.inotifyWatches} ino` : "-",
        "",
        a.error ? a.error.slice(0, 80) : "",
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const r of rows) console.log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));

  mkdirSync(join(jsonOut, ".."), { recursive: true });
  writeFileSync(
    jsonOut,
    JSON.stringify({ kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(), bun: Bun.version, date: new Date().toISOString(), results }, null, 2),
  );
  console.log(`\nJSON: ${jsonOut}`);
}

if (process.argv[2] === "--child") await runChild(process.argv[3]!, process.argv[4]!);
else if (import.meta.main) await main();
