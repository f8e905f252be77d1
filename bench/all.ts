// Issue 12's benchmark (run by hand, as root; not part of the test suite):
//   bun run bench [--quick] [--only ROW[,ROW…]] [--rounds 2] [--tar-runs 5] [--load-seconds 60] …
// onacc (dist/onacc), clamonacc 1.4.6 (--fdpass) and no agent side by side in one run, one private clamd,
// tmpfs mounts of its own; prints every row of the issue's target table with the ratio and the target,
// the machine noise seen meanwhile, and writes JSON to .bench-out/. `--help` lists the options and rows.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disposeClamd, startClamd, type TestClamd } from "../tests/fixtures/clamd.ts";
import { EICAR } from "../tests/fixtures/signatures.ts";
import { mountTmpfs } from "../tests/fixtures/tmpfs.ts";
import { type Agent, CLAMONACC, cpuSeconds, type Memory, memory, ONACC, onaccStatus, ROOT, startClamonacc, startOnacc } from "./agents.ts";
import { concurrent, makeFiles, passDetailed, pct } from "./cache-bench.ts";
import { onInterrupt } from "./cleanup.ts";
import { type AgentResult, buildTree, startupAgents } from "./ddd-bench.ts";
import { type LoadResult, printLoad, runLoad } from "./load-test.ts";
import { busyOthers, describeNoise, loadAvg, type NoiseWindow, noiseWindow } from "./noise.ts";
import { clamdScans, waitSettled } from "./settle.ts";
import { makeTarball, type Tarball, type UnpackRun, unpackRuns } from "./unpack.ts";

// ---------------------------------------------------------------------------------------------------------
// Options.

const ROWS = ["idle", "rss", "peak", "tar", "extra", "deny", "first", "throughput", "ddd"] as const;
type RowKey = (typeof ROWS)[number];
const HELP = `bun run bench [options]            (= bun bench/all.ts; as root)
  --only ROW[,ROW…]   rows: ${ROWS.join(", ")}
                        idle        idle RSS and its composition (smaps_rollup)
                        rss         RSS after --scans distinct files were scanned
                        peak        peak RSS (VmHWM) in the load test (bench/load-test.ts)
                        tar         tar xf of a source tree into a protected directory, prevention on
                        extra       the same with OnAccessExtraScanning, then grep -r
                        deny        deny a fresh EICAR, p50 over --deny files
                        first       first open of --first files, p50
                        throughput  4-reader first pass over --first files
                        ddd         start → protection active on --ddd-dirs directories, and RSS
  --quick             --rounds 1 --tar-runs 3 --load-seconds 10 (rows keep their meaning; figures noisier)
  --rounds N          the cheap rows (idle, rss, deny, first, throughput, ddd) this many times (default 2)
  --tar-runs N        unpacks per setup; the median is shown (default 5)
  --load-seconds N    length of the load test per agent (default 60: 20 s peaked 8% lower)
  --scans N           distinct files for the rss row (default 20000)
  --first N           files for the first and throughput rows (default 2000)
  --deny N            fresh EICAR files for the deny row (default 200)
  --ddd-dirs N        directories for the ddd rows (default 100000)
  --tar-source DIR    a git repository to archive (default ClamAV's mirror, else this checkout)
  --tar-ref REF       the commit or tag to archive (default clamav-1.5.3, HEAD for this checkout)
  --quiet-ms N        "background work done" = nothing moved for this long (default 1000)
  --setups LIST       none,onacc,clamonacc (default all three)
  --json FILE         default .bench-out/all.json (and a dated copy next to it)
`;

function parseOptions(argv: string[]) {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`bench: --${name} needs a value`);
    return v;
  };
  const num = (name: string, fallback: number) => {
    const v = get(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --${name} ${JSON.stringify(v)}: a positive integer`);
    return n;
  };
  const known = new Set(["quick", "help", "only", "rounds", "tar-runs", "load-seconds", "scans", "first", "deny", "ddd-dirs", "tar-source", "tar-ref", "quiet-ms", "setups", "json"]);
  for (const a of argv) if (a.startsWith("--") && !known.has(a.slice(2))) throw new Error(`bench: unknown option ${JSON.stringify(a)} (see --help)`);
  const quick = argv.includes("--quick");
  const only = get("only")?.split(",") ?? [...ROWS];
  for (const r of only) if (!(ROWS as readonly string[]).includes(r)) throw new Error(`bench: --only ${JSON.stringify(r)}: one of ${ROWS.join(", ")}`);
  const setups = get("setups")?.split(",") ?? ["none", "onacc", "clamonacc"];
  for (const s of setups) if (!["none", "onacc", "clamonacc"].includes(s)) throw new Error(`bench: --setups ${JSON.stringify(s)}: none, onacc or clamonacc`);
  const mirror = "/work/.mirror/Cisco-Talos+clamav/repo";
  const mirrorThere = Bun.spawnSync(["git", "-C", mirror, "rev-parse", "--git-dir"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  const tarSource = get("tar-source") ?? (mirrorThere ? mirror : ROOT);
  return {
    help: argv.includes("--help"),
    quick,
    only: new Set(only as RowKey[]),
    setups: new Set(setups),
    rounds: num("rounds", quick ? 1 : 2),
    tarRuns: num("tar-runs", quick ? 3 : 5),
    loadSeconds: num("load-seconds", quick ? 10 : 60),
    scans: num("scans", 20_000),
    first: num("first", 2000),
    deny: num("deny", 200),
    dddDirs: num("ddd-dirs", 100_000),
    tarSource,
    tarRef: get("tar-ref") ?? (tarSource === mirror ? "clamav-1.5.3" : "HEAD"),
    quietMs: num("quiet-ms", 1000),
    json: get("json") ?? join(ROOT, ".bench-out/all.json"),
  };
}
type Options = ReturnType<typeof parseOptions>;

const PASS_TIMEOUT_MS = 180_000;
const median = (xs: number[]) => pct(xs, 0.5);
const mid = (xs: number[]) => {
  // The median; for two rounds, their mean.
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// ---------------------------------------------------------------------------------------------------------
// The cheap rows: idle RSS, first open, 4-reader first pass, deny, RSS after N scans — per setup and round.

type Setup = "none" | "onacc" | "clamonacc";

interface Basic {
  setup: Setup;
  round: number;
  idle?: Memory;
  /** VmRSS at 0.5 s intervals after the 2 s settle; the last is `idle`. */
  idleSamplesMiB?: number[];
  firstP50?: number;
  firstP99?: number;
  firstFailed?: number;
  throughput?: number;
  denyP50?: number;
  denyP99?: number;
  denied?: number;
  denyCount?: number;
  bulk?: { files: number; opsPerSec: number; clamdScans: number; settleMs: number; after?: Memory };
  agentCpuS?: number;
  onaccScans?: number;
}

async function startAgent(setup: Exclude<Setup, "none">, clamd: TestClamd, work: string, include: string, extra: string[] = []): Promise<Agent> {
  return setup === "onacc" ? await startOnacc({ clamd, work, include: [include], extra }) : await startClamonacc({ clamd, work, include: [include], extra });
}

async function basic(o: Options, setup: Setup, round: number, clamd: TestClamd, mount: string, work: string): Promise<Basic> {
  const want = (r: RowKey) => o.only.has(r) && (setup !== "none" || !["idle", "rss"].includes(r));
  const dir = join(mount, `basic-${setup}-r${round}`);
  const salt = `${setup}-r${round} `;
  const first = want("first") ? makeFiles(join(dir, "first"), o.first, 4096, "f", salt) : [];
  const conc = want("throughput") ? makeFiles(join(dir, "conc"), o.first, 4096, "c", salt) : [];
  const bulk = want("rss") ? makeFiles(join(dir, "bulk"), o.scans, 4096, "b", salt) : [];
  const eicars: string[] = [];
  if (want("deny")) {
    mkdirSync(join(dir, "eicar"), { recursive: true });
    for (let i = 0; i < o.deny; i++) {
      eicars.push(join(dir, "eicar", `eicar-${i}.com`));
      writeFileSync(eicars[i]!, EICAR);
    }
  }
  mkdirSync(dir, { recursive: true });
  const agent = setup === "none" ? undefined : await startAgent(setup, clamd, work, dir);
  const r: Basic = { setup, round };
  try {
    const cpu0 = agent ? cpuSeconds(agent.pid) : undefined;
    if (agent) {
      await Bun.sleep(2000);
      r.idleSamplesMiB = [];
      for (let i = 0; i < 3; i++) {
        if (i) await Bun.sleep(500);
        r.idle = memory(agent.pid);
        r.idleSamplesMiB.push(r.idle?.rssMiB ?? NaN);
      }
    }
    if (first.length) {
      const p = await passDetailed(first, PASS_TIMEOUT_MS);
      r.firstP50 = pct(p.ms, 0.5);
      r.firstP99 = pct(p.ms, 0.99);
      r.firstFailed = p.errors.filter(Boolean).length + (first.length - p.ms.length);
    }
    if (conc.length) r.throughput = await concurrent(conc);
    if (eicars.length) {
      const p = await passDetailed(eicars, PASS_TIMEOUT_MS);
      r.denyP50 = pct(p.ms, 0.5);
      r.denyP99 = pct(p.ms, 0.99);
      r.denied = p.errors.filter((e) => e === "EPERM").length;
      r.denyCount = eicars.length;
    }
    if (bulk.length && agent) {
      const scans = clamdScans(clamd);
      const opsPerSec = await concurrent(bulk);
      const settle = await waitSettled(clamd, agent, o.quietMs, 60_000);
      r.bulk = { files: bulk.length, opsPerSec, clamdScans: scans(), settleMs: settle.ms, after: memory(agent.pid) };
    }
    const cpu1 = agent ? cpuSeconds(agent.pid) : undefined;
    if (cpu0 !== undefined && cpu1 !== undefined) r.agentCpuS = cpu1 - cpu0;
    if (agent?.kind === "onacc") r.onaccScans = (await onaccStatus(agent))?.scans.total;
  } finally {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// The unpack rows.

interface Unpack {
  setup: Setup;
  extraScanning: boolean;
  runs: UnpackRun[];
  agentCpuS?: number;
}

async function unpack(o: Options, setup: Setup, extraScanning: boolean, clamd: TestClamd, mount: string, work: string, tarball: Tarball): Promise<Unpack> {
  const dir = join(mount, `unpack-${setup}${extraScanning ? "-extra" : ""}`);
  mkdirSync(dir, { recursive: true });
  const agent = setup === "none" ? undefined : await startAgent(setup, clamd, work, dir, extraScanning ? ["OnAccessExtraScanning yes"] : []);
  try {
    const r = await unpackRuns({ clamd, agent, tarball, dir, runs: o.tarRuns, quietMs: o.quietMs, timeoutMs: PASS_TIMEOUT_MS });
    return { setup, extraScanning, ...r };
  } finally {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The table.

interface Target {
  /** "ratio": the ratio column is judged; "abs": onacc's own figure. */
  on: "ratio" | "abs";
  op: "≤" | "≥";
  value: number;
}

interface Row {
  key: RowKey;
  label: string;
  /** The issue's "now". */
  was: string;
  cells: Partial<Record<Setup, string>>;
  ratio?: number;
  ratioText: string;
  target?: Target;
  onaccValue?: number;
  spread: string;
  /** Information rows carry no target. */
  info?: boolean;
}

const fmt = (x: number | undefined, d: number) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
const ratioOf = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !b ? undefined : a / b);
const times = (x: number | undefined, d = 2) => (x === undefined || Number.isNaN(x) ? "-" : `${x.toFixed(d)}×`);
const spreadPct = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x));
  if (s.length < 2) return "";
  const m = mid(s);
  return ` (±${(((Math.max(...s) - Math.min(...s)) / 2 / m) * 100).toFixed(0)}%)`;
};

function met(r: Row): string {
  if (!r.target) return "";
  const v = r.target.on === "ratio" ? r.ratio : r.onaccValue;
  if (v === undefined || Number.isNaN(v)) return "?";
  return (r.target.op === "≤" ? v <= r.target.value : v >= r.target.value) ? "yes" : "NO";
}

function targetText(t: Target | undefined, basis: string): string {
  if (!t) return "";
  return t.on === "abs" ? `${t.op} ${t.value} MiB` : `${t.op} ${t.value}× ${basis}`;
}

function render(rows: Row[], setups: Setup[]): string {
  const head = ["figure", "issue: now", ...setups, "ratio", "target", "met", "rounds / runs (spread)"];
  const lines = rows.map((r) => [r.info ? `  ${r.label}` : r.label, r.was, ...setups.map((s) => r.cells[s] ?? "-"), r.ratioText, targetText(r.target, r.key === "tar" || r.key === "extra" ? "none" : "clamonacc"), met(r), r.spread]);
  const all = [head, ...lines];
  const w = head.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  const numeric = (i: number) => i >= 2 && i < 2 + setups.length + 1;
  const fmtLine = (l: string[]) => `| ${l.map((c, i) => (numeric(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(" | ")} |`;
  return [fmtLine(head), `|${w.map((x, i) => (numeric(i) ? `${"-".repeat(x + 1)}:` : "-".repeat(x + 2))).join("|")}|`, ...lines.map(fmtLine)].join("\n");
}

interface Results {
  basic: Basic[];
  unpack: Unpack[];
  load: LoadResult[];
  ddd: { round: number; dirs: number; agents: AgentResult[] }[];
  tarball?: Tarball;
  noise: { phase: string; window: NoiseWindow }[];
}

function buildRows(o: Options, res: Results): Row[] {
  const rows: Row[] = [];
  const rounds = [...new Set(res.basic.map((b) => b.round))].sort();
  const perRound = (setup: Setup, get: (b: Basic) => number | undefined) => rounds.map((rd) => get(res.basic.find((b) => b.setup === setup && b.round === rd) ?? ({} as Basic)) ?? NaN);
  /** A row from the basic rounds: median per setup, the ratio of the medians, the ratio per round. */
  const basicRow = (key: RowKey, label: string, was: string, get: (b: Basic) => number | undefined, d: number, basis: Setup, target: Target) => {
    const v = (s: Setup) => mid(perRound(s, get));
    const onaccR = perRound("onacc", get);
    const baseR = perRound(basis, get);
    const ratiosR = onaccR.map((x, i) => x / baseR[i]!);
    const ratio = ratioOf(v("onacc"), v(basis));
    const valid = ratiosR.filter((x) => !Number.isNaN(x));
    rows.push({
      key,
      label,
      was,
      cells: { none: fmt(v("none"), d), onacc: fmt(v("onacc"), d), clamonacc: fmt(v("clamonacc"), d) },
      ratio,
      ratioText: ratio === undefined || Number.isNaN(ratio) ? "-" : `${times(ratio)} ${basis}`,
      target,
      onaccValue: v("onacc"),
      spread:
        target.on === "abs"
          ? `onacc ${onaccR.map((x) => fmt(x, d)).join(" · ")}${spreadPct(onaccR)}; ratio ${valid.map((x) => times(x)).join(" · ")}`
          : `ratio ${valid.map((x) => times(x)).join(" · ")}${spreadPct(valid)}`,
    });
  };
  const has = (k: RowKey) => o.only.has(k);
  const infoRow = (key: RowKey, label: string, cells: Partial<Record<Setup, string>>, spread = "", ratioText = "") => rows.push({ key, label, was: "", cells, ratioText, spread, info: true });

  if (has("idle")) {
    basicRow("idle", "idle RSS, 2 s after start (MiB)", "76–80", (b) => b.idle?.rssMiB, 1, "clamonacc", { on: "abs", op: "≤", value: 40 });
    const comp = (s: Setup) => {
      const m = res.basic.find((b) => b.setup === s && b.idle)?.idle;
      return m ? `${m.anonMiB.toFixed(1)} + ${m.fileMiB.toFixed(1)}${m.shmemMiB >= 0.05 ? ` + ${m.shmemMiB.toFixed(1)}` : ""}` : "-";
    };
    infoRow("idle", "anonymous + file-backed (+ shmem), round 1 (MiB)", { onacc: comp("onacc"), clamonacc: comp("clamonacc") }, "smaps_rollup Anonymous; Rss − Anonymous − RssShmem");
    const pss = (s: Setup) => {
      const m = res.basic.find((b) => b.setup === s && b.idle)?.idle;
      return m ? `${m.pssMiB.toFixed(1)} / ${m.threads}` : "-";
    };
    infoRow("idle", "Pss (MiB) / threads, round 1", { onacc: pss("onacc"), clamonacc: pss("clamonacc") });
  }
  if (has("rss")) {
    const n = res.basic.find((b) => b.bulk)?.bulk?.files ?? o.scans;
    basicRow("rss", `RSS after ${n.toLocaleString("en")} distinct files scanned (MiB)`, "95–110", (b) => b.bulk?.after?.rssMiB, 1, "clamonacc", { on: "abs", op: "≤", value: 56 });
    const scans = (s: Setup) => res.basic.filter((b) => b.setup === s && b.bulk).map((b) => `${b.bulk!.clamdScans}`).join(" · ") || "-";
    const ops = (s: Setup) => res.basic.filter((b) => b.setup === s && b.bulk).map((b) => fmt(b.bulk!.opsPerSec, 0)).join(" · ") || "-";
    infoRow("rss", "scans clamd logged in that pass, per round", { onacc: scans("onacc"), clamonacc: scans("clamonacc") });
    infoRow("rss", "that pass, opens/s (4 readers), per round", { onacc: ops("onacc"), clamonacc: ops("clamonacc") });
  }
  if (has("peak")) {
    const l = (s: Setup) => res.load.find((x) => x.agent === s);
    const on = l("onacc")?.peakRssMiB;
    const co = l("clamonacc")?.peakRssMiB;
    const ratio = ratioOf(on, co);
    rows.push({
      key: "peak",
      label: `peak RSS (VmHWM) in the load test, ${o.loadSeconds} s (MiB)`,
      was: "186",
      cells: { onacc: fmt(on, 1), clamonacc: fmt(co, 1) },
      ratio,
      ratioText: ratio ? `${times(ratio)} clamonacc` : "-",
      target: { on: "abs", op: "≤", value: 72 },
      onaccValue: on,
      spread: "one run",
    });
    const desc = (s: Setup) => {
      const x = l(s);
      return x ? `${fmt(x.opens / x.elapsedS, 0)}/s, p99 ${fmt(x.p99Ms, 2)} ms` : "-";
    };
    infoRow("peak", "load test opens/s, open p99", { onacc: desc("onacc"), clamonacc: desc("clamonacc") });
  }
  const up = (s: Setup, extra: boolean) => res.unpack.find((u) => u.setup === s && u.extraScanning === extra) ?? (s === "none" ? res.unpack.find((u) => u.setup === "none") : undefined);
  const med = (s: Setup, extra: boolean, get: (r: UnpackRun) => number) => {
    const u = up(s, extra);
    return u ? median(u.runs.map(get)) : undefined;
  };
  const runsRange = (s: Setup, extra: boolean, get: (r: UnpackRun) => number) => {
    const u = up(s, extra);
    if (!u) return "";
    const xs = u.runs.map(get);
    return `${s} ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
  };
  const tarDesc = res.tarball ? `${res.tarball.files.toLocaleString("en")} files, ${(res.tarball.contentBytes / 1048576).toFixed(1)} MiB` : "";
  /** A row against no agent: the agents' median (with or without extra scanning) over no agent's. */
  const unpackRow = (key: RowKey, label: string, was: string, extra: boolean, get: (r: UnpackRun) => number, target?: Target) => {
    const none = med("none", false, get);
    const on = med("onacc", extra, get);
    const co = med("clamonacc", extra, get);
    const ratio = ratioOf(on, none);
    const d = ratio !== undefined && ratio < 10 ? 2 : 1;
    rows.push({
      key,
      label,
      was,
      cells: { none: fmt(none, 0), onacc: fmt(on, 0), clamonacc: fmt(co, 0) },
      ratio,
      ratioText: ratio ? `${times(ratio, d)} none (clamonacc ${times(ratioOf(co, none), d)})` : "-",
      target,
      spread: `ms: ${[runsRange("none", false, get), runsRange("onacc", extra, get), runsRange("clamonacc", extra, get)].filter(Boolean).join(", ")}`,
      info: target === undefined,
    });
  };
  /** clamd scans per run (median): during tar, after it until settled, during grep. */
  const scanCells = (extra: boolean) => {
    const cell = (s: Setup) => {
      const u = up(s, extra);
      return u ? `${median(u.runs.map((r) => r.clamdScans.tar))} + ${median(u.runs.map((r) => r.clamdScans.settle))} + ${median(u.runs.map((r) => r.clamdScans.grep))}` : "-";
    };
    return { onacc: cell("onacc"), clamonacc: cell("clamonacc") };
  };
  const settleRow = (key: RowKey, extra: boolean) =>
    infoRow(
      key,
      `background work after tar returned (ms; done = ${o.quietMs} ms quiet)`,
      { onacc: fmt(med("onacc", extra, (r) => r.settleMs), 0), clamonacc: fmt(med("clamonacc", extra, (r) => r.settleMs), 0) },
      `ms: ${[runsRange("onacc", extra, (r) => r.settleMs), runsRange("clamonacc", extra, (r) => r.settleMs)].filter(Boolean).join(", ")}`,
    );
  if (has("tar")) {
    unpackRow("tar", `tar xf (${tarDesc}), prevention, median of ${o.tarRuns} (ms)`, "24×", false, (r) => r.tarMs, { on: "ratio", op: "≤", value: 3 });
    settleRow("tar", false);
    const st = up("onacc", false)?.runs.find((r) => r.onacc);
    if (st?.onacc) infoRow("tar", "onacc status over tar + settle, run 1: events / skipped / scans / cache hits", { onacc: `${st.onacc.events} / ${st.onacc.skipped} / ${st.onacc.scans} / ${st.onacc.cacheHits}` });
    unpackRow("tar", "grep -r after it, no extra scanning: first opens (ms)", "", false, (r) => r.grepMs);
    infoRow("tar", "clamd scans: during tar + after it + during grep", scanCells(false));
  }
  if (has("extra")) {
    unpackRow("extra", `tar xf, OnAccessExtraScanning yes, median of ${o.tarRuns} (ms)`, "—", true, (r) => r.tarMs, { on: "ratio", op: "≤", value: 4 });
    unpackRow("extra", "then grep -r over it, after the background scans (ms)", "—", true, (r) => r.grepMs, { on: "ratio", op: "≤", value: 1.5 });
    settleRow("extra", true);
    const st = up("onacc", true)?.runs.find((r) => r.onacc);
    if (st?.onacc) infoRow("extra", "onacc status over tar + settle, run 1: events / skipped / scans / cache hits", { onacc: `${st.onacc.events} / ${st.onacc.skipped} / ${st.onacc.scans} / ${st.onacc.cacheHits}` });
    infoRow("extra", "clamd scans: during tar + after it + during grep", scanCells(true));
  }
  if (has("deny")) {
    basicRow("deny", `deny a fresh EICAR, p50 of ${o.deny} (ms; none: the open)`, "1.24×", (b) => b.denyP50, 3, "clamonacc", { on: "ratio", op: "≤", value: 1.0 });
    const d = (s: Setup) => res.basic.filter((b) => b.setup === s && b.denyCount).map((b) => `${b.denied}/${b.denyCount}`).join(" · ") || "-";
    infoRow("deny", "denied (EPERM), per round", { none: d("none"), onacc: d("onacc"), clamonacc: d("clamonacc") });
  }
  if (has("first")) basicRow("first", `first open+read of ${o.first} × 4 KiB, p50 (ms)`, "0.39×", (b) => b.firstP50, 3, "clamonacc", { on: "ratio", op: "≤", value: 0.39 });
  if (has("throughput")) basicRow("throughput", `4-reader first pass, ${o.first} files (opens/s)`, "3.7×", (b) => b.throughput, 0, "clamonacc", { on: "ratio", op: "≥", value: 3.7 });
  if (has("ddd")) {
    const find = (kind: "onacc" | "clamonacc", d: (typeof res.ddd)[number]) => d.agents.find((a) => a.variant.startsWith(kind === "onacc" ? "onacc" : "clamonacc"));
    const per = (kind: "onacc" | "clamonacc", get: (a: AgentResult) => number | undefined) => res.ddd.map((d) => get(find(kind, d) ?? ({} as AgentResult)) ?? NaN);
    const dirs = res.ddd[0]?.dirs ?? o.dddDirs;
    for (const [label, get, was, target, d] of [
      [`${dirs.toLocaleString("en")} directories: start → protection active (ms)`, (a: AgentResult) => a.ms, "0.47×", 0.3, 0],
      [`${dirs.toLocaleString("en")} directories: RSS when active (MiB)`, (a: AgentResult) => a.rssMiB, "1.77×", 1.1, 1],
      [`${dirs.toLocaleString("en")} directories: RSS 2 s after active (MiB)`, (a: AgentResult) => a.settledRssMiB, "—", 1.1, 1],
    ] as const) {
      const on = per("onacc", get);
      const co = per("clamonacc", get);
      const ratios = on.map((x, i) => x / co[i]!).filter((x) => !Number.isNaN(x));
      const ratio = ratioOf(mid(on), mid(co));
      rows.push({
        key: "ddd",
        label,
        was,
        cells: { onacc: fmt(mid(on), d), clamonacc: fmt(mid(co), d) },
        ratio,
        ratioText: ratio && !Number.isNaN(ratio) ? `${times(ratio)} clamonacc` : "-",
        target: { on: "ratio", op: "≤", value: target },
        spread: `ratio ${ratios.map((x) => times(x)).join(" · ")}${spreadPct(ratios)}`,
      });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------
// Main.

function versionLine(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "ignore", timeout: 5000 });
  return r.stdout.toString().split("\n")[0]!.trim() || "?";
}

/** Whether the checkout dist/onacc was built from has changes to tracked files. */
function uncommitted(): boolean {
  const r = Bun.spawnSync(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], { stdout: "pipe", stderr: "ignore", timeout: 5000 });
  return r.stdout.toString().trim() !== "";
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.help) {
    console.log(HELP);
    return;
  }
  if (process.getuid?.() !== 0) throw new Error("bench: run as root (fanotify needs CAP_SYS_ADMIN)");
  const setups = (["none", "onacc", "clamonacc"] as Setup[]).filter((s) => o.setups.has(s));
  const started = new Date();
  const env = {
    date: started.toISOString(),
    kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
    bun: Bun.version,
    onacc: `${versionLine([ONACC, "--version"])}, commit ${versionLine(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])}${uncommitted() ? " (+ uncommitted changes)" : ""}`,
    clamonacc: versionLine([CLAMONACC, "--version"]),
    clamd: versionLine(["clamd", "--version"]),
    cpus: Number(versionLine(["nproc"])),
  };
  console.log(`bench ${started.toISOString()} — kernel ${env.kernel}, Bun ${env.bun}, ${env.onacc}, clamonacc ${env.clamonacc}, ${env.cpus} CPUs`);
  console.log(`command: bun bench/all.ts ${process.argv.slice(2).join(" ")}`);
  console.log(`options: rounds ${o.rounds}, tar runs ${o.tarRuns}, load ${o.loadSeconds} s, rows ${[...o.only].join(",")}, setups ${setups.join(",")}`);
  const others0 = await busyOthers();
  console.log(`at start: load ${loadAvg().join(" ")}; busy other processes: ${others0.map((p) => `${p.comm}[${p.pid}] ${p.pct.toFixed(0)}%`).join(", ") || "none above 5%"}`);

  const res: Results = { basic: [], unpack: [], load: [], ddd: [], noise: [] };
  const phase = async (name: string, run: () => Promise<void>) => {
    const end = noiseWindow();
    console.error(`== ${name}`);
    await run();
    const w = end();
    res.noise.push({ phase: name, window: w });
    console.error(`   ${describeNoise(w)}`);
  };
  const total = noiseWindow();

  // clamd stops logging at LogFileMaxSize (1 MiB by default); its log is how scans are counted here.
  const clamd = await startClamd({ extra: ["MaxThreads 12", "LogFileMaxSize 0"] });
  const untrackClamd = onInterrupt(() => disposeClamd(clamd));
  const mount = mountTmpfs("/tmp/onacc-bench-all-", "4g");
  const work = mkdtempSync("/tmp/onacc-bench-work-");
  const untrackMount = onInterrupt(() => {
    mount.unmount();
    rmSync(work, { recursive: true, force: true });
  });
  try {
    const basicRows: RowKey[] = ["idle", "rss", "deny", "first", "throughput"];
    if (basicRows.some((r) => o.only.has(r))) {
      for (let round = 1; round <= o.rounds; round++) {
        // Every other round in reverse order, so a drift in the machine's load does not favour one setup.
        const order = round % 2 ? setups : [...setups].reverse();
        for (const s of order) {
          if (s === "none" && !(["deny", "first", "throughput"] as RowKey[]).some((r) => o.only.has(r))) continue;
          await phase(`round ${round}: ${s}`, async () => {
            const b = await basic(o, s, round, clamd, mount.path, work);
            console.error(`   ${JSON.stringify(b)}`);
            res.basic.push(b);
          });
        }
      }
    }
    if (o.only.has("tar") || o.only.has("extra")) {
      res.tarball = makeTarball(o.tarSource, o.tarRef, join(mount.path, "source.tar"));
      const t = res.tarball;
      console.error(`tarball: ${t.source} ${t.ref} (${t.commit.slice(0, 12)}): ${t.files} files in ${t.directories} directories, ${(t.contentBytes / 1048576).toFixed(1)} MiB, tar ${(t.tarBytes / 1048576).toFixed(1)} MiB`);
      const plan: [Setup, boolean][] = [];
      if (setups.includes("none")) plan.push(["none", false]);
      for (const s of setups.filter((x) => x !== "none")) {
        if (o.only.has("tar")) plan.push([s, false]);
        if (o.only.has("extra")) plan.push([s, true]);
      }
      for (const [s, extra] of plan) {
        await phase(`unpack: ${s}${extra ? " + extra scanning" : ""}`, async () => {
          const u = await unpack(o, s, extra, clamd, mount.path, work, t);
          for (const r of u.runs) console.error(`   ${JSON.stringify(r)}`);
          res.unpack.push(u);
        });
      }
    }
    if (o.only.has("peak")) {
      for (const s of setups.filter((x) => x !== "none") as ("onacc" | "clamonacc")[]) {
        await phase(`load test: ${s}`, async () => {
          const l = await runLoad({ agent: s, seconds: o.loadSeconds, readers: 4, files: 5000, clamd });
          printLoad(l);
          res.load.push(l);
        });
      }
    }
    if (o.only.has("ddd")) {
      const tree = join(mount.path, "ddd");
      const dirs = buildTree(tree, o.dddDirs);
      try {
        for (let round = 1; round <= o.rounds; round++) {
          await phase(`${dirs} directories, round ${round}`, async () => {
            res.ddd.push({ round, dirs, agents: await startupAgents(tree, dirs, clamd, work, PASS_TIMEOUT_MS, `r${round}`) });
          });
        }
      } finally {
        rmSync(tree, { recursive: true, force: true });
      }
    }
  } finally {
    untrackMount();
    untrackClamd();
    mount.unmount();
    rmSync(work, { recursive: true, force: true });
    await disposeClamd(clamd);
  }

  const all = total();
  const others1 = await busyOthers();
  const rows = buildRows(o, res);
  console.log("");
  console.log(render(rows, setups));
  console.log("");
  if (res.tarball) {
    const t = res.tarball;
    console.log(`tarball: git archive of ${t.source} at ${t.ref} (${t.commit.slice(0, 12)}): ${t.files.toLocaleString("en")} files in ${t.directories} directories, ${(t.contentBytes / 1048576).toFixed(1)} MiB of content, tar ${(t.tarBytes / 1048576).toFixed(1)} MiB`);
  }
  console.log(
    "clamonacc column: 1.4.6 --fdpass, same config; in the OnAccessExtraScanning rows it runs with extra scanning too. " +
      "ratio = onacc ÷ the named setup (for opens/s: onacc's rate ÷ its rate). \"issue: now\" = the figure issue 12 was filed with.",
  );
  console.log(`background work done = clamd's log and onacc's scan/event counters and queue unchanged for ${o.quietMs} ms (polled every 50 ms); the settle time is up to the last change.`);
  console.log("\nmachine noise per phase (other processes' CPU = the machine's busy time minus this bench's tree, in cores of 2):");
  for (const n of res.noise) console.log(`  ${n.phase.padEnd(34)} ${describeNoise(n.window)}`);
  console.log(`  ${"whole run".padEnd(34)} ${describeNoise(all)}`);
  console.log(`at end: busy other processes: ${others1.map((p) => `${p.comm}[${p.pid}] ${p.pct.toFixed(0)}%`).join(", ") || "none above 5%"}`);

  mkdirSync(join(o.json, ".."), { recursive: true });
  const out = JSON.stringify({ env, options: { ...o, only: [...o.only], setups }, rows: rows.map((r) => ({ ...r, met: met(r) })), results: res, noise: { atStart: others0, atEnd: others1, whole: all } }, null, 2);
  writeFileSync(o.json, out);
  const dated = o.json.replace(/\.json$/, `-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(dated, out);
  console.log(`\nJSON: ${o.json} (and ${dated})`);
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error && err.message.startsWith("bench:") ? err.message : err);
  process.exit(2);
}
