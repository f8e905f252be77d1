// What a watcher owes its owner between kernel reads: files to report once per drain (with the most telling
// reason) and problems met outside a drain, delivered at the next one.
import { textToBytes } from "./tree.ts";
import type { DirEvents } from "./types.ts";

export type LandedWhy = "close-write" | "moved-to" | "created";
/** A file closed after writing has its final contents; a created one may still be empty. */
const WHY_RANK: Record<LandedWhy, number> = { created: 0, "moved-to": 1, "close-write": 2 };

export class Reports {
  /** The events of the drain (or addTree/resync call) in progress. */
  sink: DirEvents | null = null;
  private readonly landed = new Map<string, { why: LandedWhy; where: () => string | null }>();
  private readonly pending: { limit: boolean; message: string }[] = [];

  /**
   * Queues a file report under `id` (the parent directory's identity + name). Within one drain a file is
   * reported once: fanotify merges CREATE|CLOSE_WRITE of a name into one event, inotify does not, and a
   * listing may meet a file whose event is queued too. The path is asked of `where` when the drain ends,
   * so a directory renamed later in the same drain yields the file's present path (null: it left).
   */
  land(id: string, why: LandedWhy, where: () => string | null): void {
    const before = this.landed.get(id);
    if (before === undefined) this.landed.set(id, { why, where });
    else if (WHY_RANK[why] > WHY_RANK[before.why]) before.why = why;
  }

  flushLanded(events: DirEvents): void {
    if (this.landed.size === 0) return;
    const all = [...this.landed.values()];
    this.landed.clear();
    // Two identities can name one file by the end (an event in a directory and a listing of it).
    const byPath = new Map<string, LandedWhy>();
    for (const { why, where } of all) {
      const path = where();
      if (path === null) continue;
      const before = byPath.get(path);
      if (before === undefined || WHY_RANK[why] > WHY_RANK[before]) byPath.set(path, why);
    }
    for (const [path, why] of byPath) events.fileLanded(textToBytes(path), why);
  }

  problem(limit: boolean, message: string): void {
    const sink = this.sink;
    if (sink) {
      if (limit) sink.limit(message);
      else sink.warning?.(message);
    } else {
      this.pending.push({ limit, message });
    }
  }

  flushProblems(events: DirEvents): void {
    for (const p of this.pending.splice(0)) {
      if (p.limit) events.limit(p.message);
      else events.warning?.(p.message);
    }
  }
}
