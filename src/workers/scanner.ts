// Worker entry: one scanner thread. Wires the real clamd client, log and actions into the loop of
// src/engine/scanner.ts.
import { applyAction } from "../actions/apply.ts";
import { ClamdPool } from "../clamd/pool.ts";
import type { ScanOutcome } from "../clamd/types.ts";
import { runScanner } from "../engine/scanner.ts";
import type { EngineSettings, WorkerMessage } from "../engine/settings.ts";
import { ClamdError } from "../errors.ts";
import { displayPath } from "../log/display-path.ts";
import { createLogger } from "../log/logger.ts";
import { LatencyHistogram } from "../status/histogram.ts";
import { monotonicMs } from "../../ffi/libc.ts";
import { Fstat, emptyStat } from "../../ffi/fs.ts";
import { VerdictCache } from "../engine/cache.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent<{ settings: EngineSettings; index: number }>) => {
  const { settings: s, index } = e.data;
  const post = (m: WorkerMessage) => self.postMessage(m);
  try {
    const log = createLogger(s.log);
    const pool = new ClamdPool(s.scan.pool);
    const latency = LatencyHistogram.attach(s.scan.latency);
    const scanOnce = (fd: number, path: () => Uint8Array | null): ScanOutcome => {
      if (s.scan.mode === "path") {
        // The verdict is made on the event's own descriptor: by the time clamd opened a path, the name could
        // be another file's (a rename, another mount namespace). The path is asked about only to list every
        // signature of a file already found infected.
        const verdict = pool.scanFd(fd);
        if (!verdict.ok || verdict.verdict.kind !== "infected") return verdict;
        const p = path();
        if (!p || isDeletedPath(p)) return verdict;
        const all = pool.scanPath(p, { allmatch: true });
        if (!all.ok || all.verdict.kind !== "infected") return verdict;
        const signatures = [...new Set([...verdict.verdict.signatures, ...all.verdict.signatures])];
        return { ...verdict, verdict: { kind: "infected", signatures } };
      }
      return s.scan.mode === "fdpass" ? pool.scanFd(fd) : pool.scanStream(fd);
    };
    const scan = (fd: number, path: () => Uint8Array | null): ScanOutcome => {
      const t0 = monotonicMs();
      try {
        return scanOnce(fd, path);
      } catch (err) {
        // The pool reports failures as outcomes; anything thrown is a bug, and still must not kill the Worker.
        const error = err instanceof ClamdError ? err : new ClamdError("protocol", `scan failed: ${err instanceof Error ? err.message : String(err)}`);
        return { ok: false, error, attempts: 1 };
      } finally {
        latency.recordLatency(monotonicMs() - t0);
      }
    };
    // --copy: an infected file opened again and again (it is never cached as clean) is copied once, not
    // once per open, or anyone could fill the quarantine's disk with one file and a loop. The set of
    // copied file versions is shared by all scanners.
    const copied = s.copiedFiles ? VerdictCache.attach(s.copiedFiles) : undefined;
    const fstat = new Fstat();
    const st = emptyStat();
    const alreadyCopied = (fd: number): boolean => {
      if (!copied || fstat.stat(fd, st) !== 0) return false;
      if (copied.has(st)) return true;
      copied.add(st);
      return false;
    };
    post({ type: "ready", worker: `scanner-${index}` });
    runScanner(s, {
      scan,
      found(path, _fd, signatures) {
        const shown = path ?? new TextEncoder().encode(`(fd ${_fd})`);
        for (const sig of signatures) log.found(shown, sig);
        if (s.action.kind !== "none" && path && !alreadyCopied(_fd)) {
          const r = applyAction(s.action, path, log, _fd, { signatures });
          if (!r.ok) log.error(`${displayPath(path)}: ${r.message}`);
          else log.notice(`${displayPath(path)}: ${r.message}`);
        }
      },
      error: (m) => log.error(m),
      verbose: (m) => log.verbose(m),
      reopenLog: () => void log.reopen(),
      // Each scan leaves a little garbage; left to itself the heap of every scanner Worker grows by tens of
      // MiB before the collector runs. A full collection every few thousand scans costs a few ms.
      idle: () => Bun.gc(true),
    });
    log.close();
  } catch (err) {
    post({ type: "fatal", worker: `scanner-${index}`, message: err instanceof Error ? err.message : String(err) });
  }
  process.exit(0);
};

// readlink gives "/dir/name (deleted)" for an unlinked file: clamd could not open that path.
const DELETED = new TextEncoder().encode(" (deleted)");
function isDeletedPath(p: Uint8Array): boolean {
  if (p.length < DELETED.length) return false;
  for (let i = 0; i < DELETED.length; i++) if (p[p.length - DELETED.length + i] !== DELETED[i]) return false;
  return true;
}
