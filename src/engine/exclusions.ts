// Who and what is never scanned, decided in the reader before an event is queued: onacc's own PID,
// clamd's PID (so clamd never waits on onacc), excluded users (exact uids, resolved from names at start)
// and, for mount marks, excluded path prefixes.
import { readFileSync } from "node:fs";

export interface ExclusionSettings {
  pids: number[];
  uids: number[];
  /** Absolute directory paths; matched on whole path components. */
  paths: string[];
  /** What is watched on purpose (include and mount paths): used while temporary mount marks are up. */
  watched: string[];
}

const UID_TTL_MS = 2000;
const UID_CACHE_MAX = 4096;

export class Exclusions {
  private readonly pids: Set<number>;
  private readonly uids: Set<number>;
  private readonly prefixes: Uint8Array[];
  private readonly watchedPrefixes: Uint8Array[];
  private readonly uidCache = new Map<number, { uid: number; until: number }>();

  constructor(s: ExclusionSettings) {
    this.pids = new Set(s.pids);
    this.uids = new Set(s.uids);
    const enc = new TextEncoder();
    this.prefixes = s.paths.map((p) => enc.encode(p.endsWith("/") ? p : `${p}/`));
    this.watchedPrefixes = s.watched.map((p) => enc.encode(p.endsWith("/") ? p : `${p}/`));
  }

  get hasUids(): boolean {
    return this.uids.size > 0;
  }
  get hasPaths(): boolean {
    return this.prefixes.length > 0;
  }

  pid(pid: number): boolean {
    return this.pids.has(pid);
  }

  /** True when the process's effective uid is excluded. A process already gone is not excluded. */
  uidOf(pid: number, now: number): boolean {
    if (this.uids.size === 0) return false;
    let hit = this.uidCache.get(pid);
    if (!hit || hit.until < now) {
      const uid = effectiveUid(pid);
      if (uid === undefined) return false;
      if (this.uidCache.size >= UID_CACHE_MAX) this.uidCache.clear();
      hit = { uid, until: now + UID_TTL_MS };
      this.uidCache.set(pid, hit);
    }
    return this.uids.has(hit.uid);
  }

  /** True when `path` (bytes) lies inside an excluded directory. */
  path(path: Uint8Array): boolean {
    return underAny(path, this.prefixes);
  }

  /** True when `path` lies inside an include or mount path. */
  watched(path: Uint8Array): boolean {
    return underAny(path, this.watchedPrefixes);
  }
}

/**
 * The effective uid from /proc/PID/status ("Uid:\treal\teffective\tsaved\tfs"). Not the owner of /proc/PID:
 * a process that changed uid (clamd dropping to User clamav) is non-dumpable and its /proc dir shows root.
 */
export function effectiveUid(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "latin1");
  } catch {
    return undefined;
  }
  const m = /\nUid:\s+\d+\s+(\d+)/.exec(status);
  return m ? Number(m[1]) : undefined;
}

function underAny(path: Uint8Array, prefixes: Uint8Array[]): boolean {
  outer: for (const prefix of prefixes) {
    if (path.length < prefix.length) continue;
    for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) continue outer;
    return true;
  }
  return false;
}
