// A StatusSnapshot for people (the `onacc status` table) and for Prometheus (text exposition 0.0.4,
// served at /metrics by --metrics-listen). Both read only the snapshot, so they always agree.
import type { StatusSnapshot, TopTalker, TopTalkers } from "./types.ts";

/** "3d 4h 5m 6s", "5m 0s", "12s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const parts: [number, string][] = [
    [Math.floor(s / 86400), "d"],
    [Math.floor((s % 86400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"],
    [s % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first < 0 ? 3 : first)
    .map(([n, unit]) => `${n}${unit}`)
    .join(" ");
}

function ms(v: number | null): string {
  if (v === null) return "-";
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
}

function table(rows: string[][], indent = "  "): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length)));
  return rows.map((r) => indent + r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join("  ").trimEnd());
}

/** The human view: a header, the endpoint table, then one line per area. */
export function renderStatusTable(s: StatusSnapshot): string {
  const lines: string[] = [];
  lines.push(`onacc ${s.version} (pid ${s.pid}), up ${formatDuration(s.uptimeSeconds)} since ${s.startedAt}`);
  if (s.reload) lines.push(`last reload ${s.reload.at}: ${s.reload.ok ? "applied" : "refused"} (${s.reload.message})`);
  lines.push("");
  lines.push("clamd endpoints:");
  const rows = [["ENDPOINT", "STATE", "IN FLIGHT", "SCANS", "FAILURES", "NOTE"]];
  for (const e of s.endpoints) {
    const note = e.up ? "" : `down ${(e.downForMs / 1000).toFixed(1)} s${e.lastError ? `: ${e.lastError}` : ""}${e.nextProbeInMs !== undefined ? ` (next PING in ${(e.nextProbeInMs / 1000).toFixed(1)} s)` : ""}`;
    rows.push([e.endpoint, e.up ? "up" : "DOWN", String(e.inFlight), String(e.scans), String(e.failures), note]);
  }
  if (s.endpoints.length === 0) lines.push("  (none reported)");
  else lines.push(...table(rows));
  lines.push("");
  const hitRate = s.cache.hits + s.cache.misses > 0 ? ` (${((100 * s.cache.hits) / (s.cache.hits + s.cache.misses)).toFixed(1)}% hits)` : "";
  const byMode = Object.entries(s.scans.byMode)
    .map(([mode, n]) => `${mode} ${n}`)
    .join(", ");
  const errors = Object.entries(s.errors)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
  lines.push(
    ...table(
      [
        ["events:", `seen ${s.events.seen}, allowed ${s.events.allowed}, denied ${s.events.denied}, skipped ${s.events.skipped}`],
        ["scans:", `${s.scans.total} (clean ${s.scans.clean}, infected ${s.scans.infected}, errors ${s.scans.errors})${byMode ? `; by mode: ${byMode}` : ""}`],
        ["cache:", `hits ${s.cache.hits}, misses ${s.cache.misses}${hitRate}, evictions ${s.cache.evictions}, flushes ${s.cache.flushes}`],
        ["queue:", `depth ${s.queue.depth}, oldest pending ${ms(s.queue.oldestPendingMs)}`],
        ["latency:", `p50 ${ms(s.latency.p50Ms)}, p99 ${ms(s.latency.p99Ms)} over ${s.latency.count} scans`],
        ["errors:", errors || "none"],
        ...(s.protectedTrees ? [["protecting:", s.protectedTrees.join(", ") || "(nothing)"]] : []),
      ],
      "",
    ),
  );
  if (s.exclusions?.length) {
    lines.push("", "exclusions (opens skipped without a scan):");
    const rows = s.exclusions.map((e) => [e.rule, String(e.skipped), e.refused ? `(${e.refused} refused: the path led to another file here)` : ""]);
    lines.push(...table(rows));
  }
  return `${lines.join("\n")}\n`;
}

/** `onacc status --top`: which executables and directories cause the scans, and what they cost. */
export function renderTopTalkers(t: TopTalkers): string {
  const lines = [`top talkers, last ${t.windowMinutes} minutes: ${t.scans} scans, openers waited ${ms(t.scanMs)}, ${t.denied} denied`];
  const section = (title: string, column: string, rows: TopTalker[]) => {
    lines.push("", `by ${title}:`);
    if (rows.length === 0) {
      lines.push("  (no scans)");
      return;
    }
    const share = (n: number) => (t.scans > 0 ? `${Math.round((100 * n) / t.scans)}%` : "-");
    lines.push(...table([["SCANS", "SHARE", "WAITED", "DENIED", column], ...rows.map((r) => [`${r.approximate ? "~" : ""}${r.scans}`, share(r.scans), ms(r.scanMs), String(r.denied), r.name])]));
  };
  section("executable", "EXECUTABLE", t.executables);
  section("directory", "DIRECTORY", t.directories);
  lines.push("", "~: approximate (a bounded table); exclude a busy program with ExcludeExe, a busy folder with ExcludePattern.");
  return `${lines.join("\n")}\n`;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

/** Prometheus text exposition format 0.0.4. */
export function renderPrometheus(s: StatusSnapshot): string {
  const out: string[] = [];
  const metric = (name: string, type: "counter" | "gauge" | "summary", help: string, samples: [labels: Record<string, string>, value: number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels);
      out.push(`${name}${l.length ? `{${l.map(([k, v]) => `${k}="${labelValue(v)}"`).join(",")}}` : ""} ${num(value)}`);
    }
  };
  const names = (labels: Record<string, string>, value: number): [Record<string, string>, number] => [labels, value];
  metric("onacc_uptime_seconds", "gauge", "Seconds since onacc started.", [names({}, s.uptimeSeconds)]);
  metric("onacc_clamd_up", "gauge", "1 when the clamd endpoint answers, 0 when it is down.", s.endpoints.map((e) => names({ endpoint: e.endpoint }, e.up ? 1 : 0)));
  metric("onacc_clamd_in_flight", "gauge", "Scans in flight per clamd endpoint.", s.endpoints.map((e) => names({ endpoint: e.endpoint }, e.inFlight)));
  metric("onacc_clamd_scans_total", "counter", "Verdicts per clamd endpoint.", s.endpoints.map((e) => names({ endpoint: e.endpoint }, e.scans)));
  metric("onacc_clamd_failures_total", "counter", "Failed attempts per clamd endpoint.", s.endpoints.map((e) => names({ endpoint: e.endpoint }, e.failures)));
  metric("onacc_events_total", "counter", "fanotify events by outcome.", [
    names({ outcome: "seen" }, s.events.seen),
    names({ outcome: "allowed" }, s.events.allowed),
    names({ outcome: "denied" }, s.events.denied),
    names({ outcome: "skipped" }, s.events.skipped),
  ]);
  metric("onacc_scans_total", "counter", "Scans by result.", [
    names({ result: "clean" }, s.scans.clean),
    names({ result: "infected" }, s.scans.infected),
    names({ result: "error" }, s.scans.errors),
  ]);
  metric("onacc_scans_by_mode_total", "counter", "Scans by how the file reached clamd.", Object.entries(s.scans.byMode).map(([mode, n]) => names({ mode }, n)));
  metric("onacc_cache_total", "counter", "Verdict cache activity.", [
    names({ event: "hit" }, s.cache.hits),
    names({ event: "miss" }, s.cache.misses),
    names({ event: "eviction" }, s.cache.evictions),
    names({ event: "flush" }, s.cache.flushes),
  ]);
  metric("onacc_queue_depth", "gauge", "Events waiting for a scanner.", [names({}, s.queue.depth)]);
  metric("onacc_oldest_pending_seconds", "gauge", "Age of the oldest unanswered permission event.", [names({}, s.queue.oldestPendingMs / 1000)]);
  metric("onacc_errors_total", "counter", "Problems by kind.", Object.entries(s.errors).map(([kind, n]) => names({ kind }, n)));
  metric("onacc_scan_duration_seconds", "summary", "Time one scan took, from sending to clamd to its verdict (failovers included).", [
    ...(s.latency.p50Ms !== null ? [names({ quantile: "0.5" }, s.latency.p50Ms / 1000)] : []),
    ...(s.latency.p99Ms !== null ? [names({ quantile: "0.99" }, s.latency.p99Ms / 1000)] : []),
  ]);
  out.push(`onacc_scan_duration_seconds_sum ${num(s.latency.sumMs / 1000)}`, `onacc_scan_duration_seconds_count ${s.latency.count}`);
  if (s.exclusions?.length) {
    metric("onacc_exclusion_skipped_total", "counter", "Opens allowed without a scan, per ExcludeExe/ExcludePattern rule.", s.exclusions.map((e) => names({ rule: e.rule }, e.skipped)));
    metric("onacc_exclusion_refused_total", "counter", "ExcludePattern hits not honoured: the path led to another file in onacc's namespace.", s.exclusions.map((e) => names({ rule: e.rule }, e.refused)));
  }
  if (s.top) {
    const t = s.top;
    const window = `${t.windowMinutes}m`;
    metric("onacc_top_window_scans", "gauge", "Scans over the top-talker window.", [names({ window }, t.scans)]);
    for (const [kind, rows] of [["executable", t.executables], ["directory", t.directories]] as const) {
      metric(`onacc_top_${kind}_scans`, "gauge", `Scans per ${kind} over the window (the busiest ones).`, rows.map((r) => names({ [kind]: r.name, window }, r.scans)));
      metric(`onacc_top_${kind}_wait_seconds`, "gauge", `Time openers waited on scans per ${kind} over the window.`, rows.map((r) => names({ [kind]: r.name, window }, r.scanMs / 1000)));
      metric(`onacc_top_${kind}_denied`, "gauge", `Denied opens per ${kind} over the window.`, rows.map((r) => names({ [kind]: r.name, window }, r.denied)));
    }
  }
  return `${out.join("\n")}\n`;
}
