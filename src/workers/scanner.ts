// Worker entry: the scanner thread. Wiring only: the loop is src/engine/scanner.ts, detections go to
// src/actions/on-found.ts.
import { foundHandler } from "../actions/on-found.ts";
import { runScanner } from "../engine/scanner.ts";
import { steadyThread } from "../engine/footprint.ts";
import type { EngineSettings, WorkerMessage } from "../engine/settings.ts";
import { createLogger } from "../log/logger.ts";

declare const self: Worker;

steadyThread();

self.onmessage = (e: MessageEvent<{ settings: EngineSettings }>) => {
  const s = e.data.settings;
  const post = (m: WorkerMessage) => self.postMessage(m);
  try {
    const log = createLogger(s.log);
    post({ type: "ready", worker: "scanner" });
    runScanner(s, {
      found: foundHandler(s.action, log, s.copiedFiles),
      error: (m) => log.error(m),
      verbose: (m) => log.verbose(m),
      reopenLog: () => void log.reopen(),
      clamdPid: (pid) => post({ type: "clamd-pid", pid }),
      // Each scan leaves a little garbage; left to itself the Worker's heap grows by tens of MiB before the
      // collector runs. A full collection now and then costs a few ms.
      idle: () => Bun.gc(true),
    });
    log.close();
  } catch (err) {
    post({ type: "fatal", worker: "scanner", message: err instanceof Error ? err.message : String(err) });
  }
  process.exit(0);
};
