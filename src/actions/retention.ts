// Quarantine upkeep while the agent runs: deletes quarantined files and their records once they are older
// than QuarantineRetention, and temp files that a stopped (crashed) onacc left in DIR and its vault.
import { lstatSync, readdirSync, unlinkSync } from "node:fs";
import type { ActionOnFound } from "./types.ts";
import { displayPath } from "../log/display-path.ts";
import type { Logger } from "../log/logger.ts";
import { TEMP_PREFIX } from "./quarantine.ts";
import { deleteEntry, listRecords, recordTempPid, vaultDir, type VaultRecord } from "./vault.ts";

// A check every quarter of the retention, but never more often than this nor less often than hourly.
const _MIN_INTERVAL_MS = 10_000;
const _MAX_INTERVAL_MS = 3_600_000;

export interface PurgeResult {
  /** Records (and their files) deleted. */
  removed: VaultRecord[];
  /** What could not be read or deleted, one message each. */
  problems: string[];
}

/** Deletes every record older than `retentionMs` (by its time) and its file. */
export function purgeExpired(quarantineDir: string, retentionMs: number, now = Date.now()): PurgeResult {
  const { records, problems } = listRecords(quarantineDir);
  const removed: VaultRecord[] = [];
  for (const record of records) {
    if (Date.parse(record.time) > now - retentionMs) continue;
    try {
      deleteEntry(quarantineDir, record);
      removed.push(record);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  return { removed, problems };
}

/**
 * Removes onacc's temp files (DIR/.onacc-tmp-<pid>-…, DIR/.onacc-vault/.rec-<pid>-…) whose writer is no
 * longer running: what a crash mid-quarantine leaves. Files of a live process (another onacc using the
 * same directory, or a reused pid) are left alone. Returns how many were removed.
 */
export function sweepLeftovers(quarantineDir: string): number {
  let removed = 0;
  const sweep = (dir: string, pidOf: (name: string) => number | undefined) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const pid = pidOf(name);
      if (pid === undefined || pid === process.pid || _alive(pid)) continue;
      try {
        if (!lstatSync(`${dir}/${name}`).isFile()) continue;
        unlinkSync(`${dir}/${name}`);
        removed++;
      } catch {
        /* gone meanwhile */
      }
    }
  };
  sweep(quarantineDir, (name) => {
    const m = name.startsWith(TEMP_PREFIX) ? /^(\d+)-/.exec(name.slice(TEMP_PREFIX.length)) : null;
    return m ? Number(m[1]) : undefined;
  });
  sweep(vaultDir(quarantineDir), recordTempPid);
  return removed;
}

function _alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** How often the agent applies a retention. */
export function upkeepIntervalMs(retentionMs: number): number {
  return Math.min(_MAX_INTERVAL_MS, Math.max(_MIN_INTERVAL_MS, Math.floor(retentionMs / 4)));
}

/**
 * With --move/--copy: sweeps leftovers and applies the retention once now, then (with a retention) on a
 * timer. Every deletion is logged. Returns stop().
 */
export function startQuarantineUpkeep(action: ActionOnFound, retentionMs: number, log: Pick<Logger, "notice" | "warn" | "verbose">): { stop(): void } {
  if (action.kind !== "move" && action.kind !== "copy") {
    if (retentionMs > 0) log.warn("QuarantineRetention is set, but neither --move nor --copy is: there is no quarantine to keep");
    return { stop() {} };
  }
  const dir = action.dir;
  const once = () => {
    try {
      const swept = sweepLeftovers(dir);
      if (swept > 0) log.verbose(`quarantine "${dir}": removed ${swept} temp file(s) left by an onacc that stopped mid-quarantine`);
      if (retentionMs <= 0) return;
      const { removed, problems } = purgeExpired(dir, retentionMs);
      for (const r of removed) log.notice(`quarantine: deleted ${r.id} (${displayPath(r.originalPath)}, quarantined ${r.time}): older than QuarantineRetention`);
      for (const p of problems) log.warn(`quarantine retention: ${p}`);
    } catch (err) {
      log.warn(`quarantine retention: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  once();
  if (retentionMs <= 0) return { stop() {} };
  const timer = setInterval(once, upkeepIntervalMs(retentionMs));
  return { stop: () => clearInterval(timer) };
}
