// A scanner: takes events from the ring, asks clamd, writes the one fanotify response, then logs, acts
// on detections and closes the event fd exactly once. Each scanner Worker runs one of these loops.
import { FAN_ALLOW, FAN_DENY, ResponseWriter } from "../../ffi/fanotify.ts";
import { FdPath, Fstat, WriterProbe, emptyStat } from "../../ffi/fs.ts";
import { libc, monotonicMs } from "../../ffi/libc.ts";
import type { ScanOutcome } from "../clamd/types.ts";
import { displayPath } from "../log/display-path.ts";
import { VerdictCache } from "./cache.ts";
import { changedRecently, noWriters, sameVersion } from "./cache-rules.ts";
import { KernelCache } from "./kernel-cache.ts";
import { errorResponse, responseFor } from "./policy.ts";
import { RateLimit, withSuppressed } from "./ratelimit.ts";
import { EventRing, SlotFlag, SlotState } from "./ring.ts";
import type { EngineSettings } from "./settings.ts";

/** What a scanner needs from the outside world; the Worker wires the real clamd client, log and actions. */
export interface ScannerDeps {
  /** Scans the file behind `fd`; `path` is given when known (path mode needs it). Never throws. */
  scan(fd: number, path: () => Uint8Array | null): ScanOutcome;
  found(path: Uint8Array | null, fd: number, signatures: string[]): void;
  error(message: string): void;
  verbose(message: string): void;
  /** Called when the ring's log generation changed (SIGHUP). */
  reopenLog(): void;
  /** Called when no event came for a while, and every GC_EVERY_SCANS scans under steady load. */
  idle?(): void;
}

/** Under steady load a scanner collects its garbage this often (see the Worker's idle()). */
const GC_EVERY_SCANS = 2000;

const closeFd = (fd: number) => {
  libc.close(fd);
};

export function runScanner(s: EngineSettings, deps: ScannerDeps): void {
  const ring = EventRing.attach(s.ring);
  const responder = new ResponseWriter(s.group);
  const fdPath = new FdPath();
  const fstat = new Fstat();
  const before = emptyStat();
  const after = emptyStat();
  const cache = s.cache.user ? VerdictCache.attach(s.cache.user) : undefined;
  const kernelCache = s.cache.kernel ? new KernelCache(s.group, s.cache.ignoreMask) : undefined;
  const probe = new WriterProbe();
  const errorLimit = new RateLimit(10_000);
  let logGen = ring.logGeneration();
  let scansSinceIdle = 0;

  /**
   * Remembers a clean verdict before the opener goes on (it may write next): both caches are keyed to the
   * file version that was scanned. Not cached: a version that changed during the scan, one anybody holds
   * open for writing, one changed more recently than its file system's timestamps can tell apart, and a
   * scan that overlapped a cache flush (it may have used the old signatures). The flush check comes again
   * after the insert: a flush that began in between may have missed the new entry, which is then taken back.
   */
  const remember = (fd: number, flushGen: number) => {
    if (ring.cachingSuspended() || ring.flushGeneration() !== flushGen || changedRecently(before)) return;
    let unchanged = false;
    let marked = false;
    if (kernelCache) {
      const r = kernelCache.markClean(fd, before, fstat, after, probe);
      if (r === "marked") ring.count("kernelMarks");
      else if (r === "undone") ring.count("kernelMarksUndone");
      marked = r === "marked";
      unchanged = marked || (r === "off" && fstat.stat(fd, after) === 0 && sameVersion(before, after) && noWriters(fd, probe));
    } else {
      unchanged = fstat.stat(fd, after) === 0 && sameVersion(before, after) && noWriters(fd, probe);
    }
    const added = cache !== undefined && unchanged;
    if (added && cache.add(before)) ring.count("cacheEvictions");
    if (ring.flushGeneration() !== flushGen || ring.cachingSuspended()) {
      if (marked) kernelCache!.unmark(fd);
      if (added) cache.remove(before);
    }
  };

  const scanOne = (slot: number, fd: number, perm: boolean, local: boolean) => {
    let path: Uint8Array | null | undefined;
    const pathOnce = () => (path === undefined ? (path = fdPath.path(fd)) : path);

    // Network and FUSE files get no stat here (it may hang on a dead server) and are never cached.
    const statOk = local && fstat.stat(fd, before) === 0;
    const flushGen = ring.flushGeneration();
    ring.scanEntered();
    let outcome: ScanOutcome;
    try {
      outcome = deps.scan(fd, pathOnce);
    } finally {
      ring.scanLeft();
    }
    ring.count("scanned");

    const response = responseFor(outcome, s);
    if (statOk && outcome.ok && outcome.verdict.kind === "clean") remember(fd, flushGen);
    if (perm) {
      if (ring.claimAnswer(slot, SlotState.SCANNING)) {
        responder.respond(fd, response);
        ring.answered(slot);
        ring.count(response === FAN_DENY ? "denied" : "allowed");
      } else {
        deps.verbose(`verdict arrived after the deadline (${Math.round(monotonicMs() - ring.enqueued(slot))} ms): already answered by the error policy`);
      }
    }

    if (outcome.ok && outcome.verdict.kind === "clean") {
      ring.count("clean");
    } else if (outcome.ok && outcome.verdict.kind === "infected") {
      ring.count("infected");
      deps.found(pathOnce(), fd, outcome.verdict.signatures);
    } else {
      ring.count("scanErrors");
      const reason = outcome.ok ? (outcome.verdict.kind === "error" ? outcome.verdict.message : "") : outcome.error.message;
      const n = errorLimit.hit(monotonicMs());
      if (n !== null) {
        const p = pathOnce();
        const where = p ? displayPath(p) : `fd ${fd}`;
        const decision = perm ? (response === FAN_ALLOW ? "allowed" : "denied") : "not scanned";
        deps.error(withSuppressed(`${where}: scan failed, ${decision}: ${reason}`, n));
      }
    }
  };

  for (;;) {
    const slot = ring.take(1000);
    if (slot === -2) return;
    if (ring.logGeneration() !== logGen) {
      logGen = ring.logGeneration();
      deps.reopenLog();
    }
    if (slot === -1) {
      if (scansSinceIdle > 0) deps.idle?.();
      scansSinceIdle = 0;
      continue;
    }
    if (!ring.startScan(slot)) {
      // The watchdog answered it while it waited in the ring.
      ring.release(slot, closeFd);
      continue;
    }
    const fd = ring.fd(slot);
    const flags = ring.flags(slot);
    const perm = (flags & SlotFlag.PERM) !== 0;
    try {
      scanOne(slot, fd, perm, (flags & SlotFlag.NOT_LOCAL) === 0);
    } catch (err) {
      deps.error(`scanner failed on fd ${fd}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      // Whatever happened above, the opener gets an answer and the slot goes back.
      if (perm && ring.claimAnswer(slot, SlotState.SCANNING)) {
        responder.respond(fd, errorResponse(s));
        ring.answered(slot);
      }
      ring.release(slot, closeFd);
    }
    if (++scansSinceIdle >= GC_EVERY_SCANS) {
      scansSinceIdle = 0;
      deps.idle?.();
    }
  }
}
