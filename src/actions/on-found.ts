// What happens when clamd finds something: one FOUND line per signature, then the configured action
// (--remove/--move/--copy). With --copy, a file version is copied once, not once per open: it is never
// cached as clean, so anyone could otherwise fill the quarantine's disk with one file and a loop.
import type { ActionOnFound } from "./types.ts";
import { VerdictCache, type CacheBuffers } from "../engine/cache.ts";
import { displayPath } from "../log/display-path.ts";
import type { Logger } from "../log/logger.ts";
import { Fstat, emptyStat } from "../../ffi/fs.ts";
import { applyAction } from "./apply.ts";

export function foundHandler(action: ActionOnFound, log: Logger, copiedFiles?: CacheBuffers): (path: Uint8Array | null, fd: number, signatures: string[]) => void {
  const copied = copiedFiles ? VerdictCache.attach(copiedFiles) : undefined;
  const fstat = new Fstat();
  const st = emptyStat();
  const alreadyCopied = (fd: number): boolean => {
    if (!copied || fstat.stat(fd, st) !== 0) return false;
    if (copied.has(st)) return true;
    copied.add(st);
    return false;
  };
  return (path, fd, signatures) => {
    const shown = path ?? new TextEncoder().encode(`(fd ${fd})`);
    for (const sig of signatures) log.found(shown, sig);
    if (action.kind !== "none" && path && !alreadyCopied(fd)) {
      const r = applyAction(action, path, log, fd, { signatures });
      if (!r.ok) log.error(`${displayPath(path)}: ${r.message}`);
      else log.notice(`${displayPath(path)}: ${r.message}`);
    }
  };
}
