// `onacc status --check`: proves that a running onacc blocks an infected file in each tree it protects,
// the way monitoring wants it: one finding per line, success only when every finding is. Each test file
// is created fresh (O_EXCL, mode 0600), registered with the agent over the root-only status socket before
// the test signature goes in, opened for reading, and removed; the agent logs it as a self-test, never as
// a FOUND line, and neither quarantines nor counts it.
import { constants, existsSync, lstatSync, unlinkSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { queryStatus } from "./client.ts";
import type { SelfTestBegin, SelfTestProbeResult, StatusReply, StatusRequest } from "./types.ts";

export interface CheckFinding {
  ok: boolean;
  /** What was checked: "onacc", "clamd unix:/…", a tree, a test file. */
  subject: string;
  message: string;
}

export interface CheckResult {
  ok: boolean;
  findings: CheckFinding[];
}

export interface CheckOptions {
  socketPath: string;
  /** The trees a configuration file names: reported as unprotected when the agent does not answer. */
  configuredTrees?: () => string[];
  /** How long an open may wait for the agent's answer (its own deadline is shorter). */
  openTimeoutMs?: number;
  query?: (socketPath: string, request: StatusRequest) => Promise<StatusReply>;
}

// Assembled at run time, so neither this source nor the binary holds the test signature in one piece.
const TEST_SIGNATURE = Buffer.from(["X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"].join(""), "latin1");

interface _Attempt {
  tree: string;
  path: string;
  ino?: number;
  /** Why the test could not be run in this tree. */
  problem?: string;
  outcome?: "blocked" | "opened" | "hung" | string;
}

export async function runCheck(o: CheckOptions): Promise<CheckResult> {
  const query = o.query ?? ((p, r) => queryStatus(p, r));
  const timeoutMs = o.openTimeoutMs ?? 30_000;
  const findings: CheckFinding[] = [];
  const result = () => ({ ok: findings.length > 0 && findings.every((f) => f.ok), findings });

  let begin: SelfTestBegin;
  try {
    const r = await query(o.socketPath, { cmd: "selftest-begin" });
    if (!r.ok) throw new Error(`the status socket "${o.socketPath}" answered: ${r.error}`);
    if (!("selfTest" in r)) throw new Error(`the status socket "${o.socketPath}" answered without a self-test`);
    begin = r.selfTest;
  } catch (err) {
    findings.push({ ok: false, subject: "onacc", message: `not answering: ${(err as Error).message}` });
    for (const tree of safeTrees(o.configuredTrees)) findings.push({ ok: false, subject: tree, message: "not protected: onacc does not answer" });
    return result();
  }

  for (const e of begin.endpoints) {
    findings.push(
      e.up
        ? { ok: true, subject: `clamd ${e.endpoint}`, message: "up" }
        : { ok: false, subject: `clamd ${e.endpoint}`, message: `down for ${Math.round(e.downForMs / 1000)} s${e.lastError ? `: ${e.lastError}` : ""}` },
    );
  }
  if (begin.trees.length === 0) findings.push({ ok: false, subject: "onacc", message: "protects no tree" });

  const attempts: _Attempt[] = [];
  for (const tree of begin.trees) attempts.push(await _test(tree, begin, o, query, timeoutMs));
  let results: SelfTestProbeResult[] = [];
  try {
    const r = await query(o.socketPath, { cmd: "selftest-end", nonce: begin.nonce });
    if (r.ok && "probes" in r) results = r.probes;
  } catch {
    /* the agent went away during the check: the opens above tell what happened */
  }

  for (const a of attempts) {
    _cleanUp(a);
    if (a.problem) {
      findings.push({ ok: false, subject: a.tree, message: a.problem });
      continue;
    }
    const detections = results.find((r) => r.path === a.path)?.detections ?? 0;
    findings.push({ subject: a.tree, ...verdict(a, detections, begin, timeoutMs) });
    if (existsSync(a.path)) findings.push({ ok: false, subject: a.path, message: "the test file could not be removed" });
  }
  return result();
}

function verdict(a: _Attempt, detections: number, b: SelfTestBegin, timeoutMs: number): { ok: boolean; message: string } {
  if (a.outcome === "blocked") {
    return detections > 0
      ? { ok: true, message: "blocked: an infected test file was detected and its open denied" }
      : { ok: false, message: `${a.path}: the open was denied, but not because onacc found the test file (the error policy, or another program, denied it: is clamd answering?)` };
  }
  if (a.outcome === "hung") return { ok: false, message: `${a.path}: the open was not answered within ${Math.round(timeoutMs / 1000)} s` };
  if (a.outcome !== "opened") return { ok: false, message: `${a.path}: opening the test file failed: ${a.outcome}` };
  const why = [
    b.prevention ? "" : "OnAccessPrevention is off",
    b.rootExcluded ? "root's opens are not scanned here (OnAccessExcludeRootUID or the like)" : "",
    detections > 0 ? "it was detected" : "",
  ].filter(Boolean);
  return { ok: false, message: `${a.path}: NOT BLOCKED: the test file was opened${why.length ? ` (${why.join("; ")})` : ""}` };
}

async function _test(tree: string, b: SelfTestBegin, o: CheckOptions, query: NonNullable<CheckOptions["query"]>, timeoutMs: number): Promise<_Attempt> {
  const a: _Attempt = { tree, path: join(tree, b.probeName) };
  let fh: FileHandle;
  try {
    // O_EXCL: never an existing file, never through a symlink planted at that name.
    fh = await within(open(a.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600), timeoutMs, "creating the test file");
  } catch (err) {
    // O_CREAT makes the file before the permission check: a denied open leaves it, empty, behind.
    if (reason(err) === "EPERM") _removeEmpty(a.path);
    a.problem =
      reason(err) === "EPERM"
        ? `${a.path}: even creating the (empty) test file was denied: onacc's error policy denies what it cannot scan (is clamd answering?)`
        : `cannot create a test file ${a.path}: ${reason(err)}`;
    return a;
  }
  try {
    a.ino = (await fh.stat()).ino;
    const r = await query(o.socketPath, { cmd: "selftest-probe", nonce: b.nonce, path: a.path });
    if (!r.ok) {
      a.problem = `onacc refused the test file: ${r.error}`;
      return a;
    }
    await fh.write(TEST_SIGNATURE, 0, TEST_SIGNATURE.length, 0);
  } catch (err) {
    a.problem ??= `preparing the test file ${a.path} failed: ${reason(err)}`;
    return a;
  } finally {
    await fh.close().catch(() => {});
  }
  try {
    const reader = await within(open(a.path, constants.O_RDONLY | constants.O_NOFOLLOW), timeoutMs, "hung");
    await reader.close();
    a.outcome = "opened";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    a.outcome = code === "EPERM" ? "blocked" : (err as Error).message === "hung" ? "hung" : reason(err);
  }
  return a;
}

/** Removes the test file this check created (the agent usually has already). */
function _cleanUp(a: _Attempt): void {
  if (a.ino === undefined) return;
  try {
    if (lstatSync(a.path).ino === a.ino) unlinkSync(a.path);
  } catch {
    /* gone already */
  }
}

/** Removes the empty, root-owned file a denied O_CREAT open left at this check's own (nonce) name. */
function _removeEmpty(path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isFile() && st.size === 0 && st.uid === 0) unlinkSync(path);
  } catch {
    /* nothing there */
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
}

function safeTrees(f: (() => string[]) | undefined): string[] {
  try {
    return f?.() ?? [];
  } catch {
    return [];
  }
}

/** One line per finding, then the verdict. */
export function renderCheck(r: CheckResult): string {
  const lines = r.findings.map((f) => `${f.ok ? "ok  " : "FAIL"} ${f.subject}: ${f.message}`);
  lines.push(r.ok ? "onacc check passed" : `onacc check FAILED (${r.findings.filter((f) => !f.ok).length} problem(s))`);
  return `${lines.join("\n")}\n`;
}
