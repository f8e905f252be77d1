// Who and what is never scanned, decided in the reader before an event is queued: excluded users (exact
// uids, resolved from names at start) and, for mount marks, excluded path prefixes. (onacc's own PID and
// clamd's processes are checked by the reader itself; see trusted-processes.ts.)
import type { ProcReader } from "../../ffi/procfs.ts";
import { dirPrefixes, isUnderPrefix } from "./paths.ts";

export interface ExclusionSettings {
  uids: number[];
  /** Absolute directory paths; matched on whole path components. */
  paths: string[];
  /** What is watched on purpose (include and mount paths): used while temporary mount marks are up. */
  watched: string[];
}

export class Exclusions {
  private readonly uids: Set<number>;
  private readonly prefixes: Uint8Array[];
  private readonly watchedPrefixes: Uint8Array[];

  constructor(s: ExclusionSettings) {
    this.uids = new Set(s.uids);
    this.prefixes = dirPrefixes(s.paths);
    this.watchedPrefixes = dirPrefixes(s.watched);
  }

  get hasUids(): boolean {
    return this.uids.size > 0;
  }
  get hasPaths(): boolean {
    return this.prefixes.length > 0;
  }

  /**
   * True when the opener's effective uid is excluded. Read afresh for every event: a remembered uid would
   * outlive its process, and the next process on that PID (anyone's) would inherit the exclusion. An
   * opener onacc cannot see (pid 0: another PID namespace) or one already gone is not excluded.
   */
  uid(pid: number, proc: ProcReader): boolean {
    if (this.uids.size === 0 || pid <= 0) return false;
    const uid = proc.effectiveUid(pid);
    return uid >= 0 && this.uids.has(uid);
  }

  /** True when `path` (bytes) lies inside an excluded directory. */
  path(path: Uint8Array): boolean {
    return isUnderPrefix(path, this.prefixes);
  }

  /** True when `path` lies inside an include or mount path. */
  watched(path: Uint8Array): boolean {
    return isUnderPrefix(path, this.watchedPrefixes);
  }
}
