// Worker entry: the scanner thread. Wiring only: the loop is src/engine/scanner.ts, detections go to
// src/actions/on-found.ts.
import { foundHandler } from "../actions/on-found.ts";
import { runScanner } from "../engine/scanner.ts";
import { steadyThread } from "../engine/footprint.ts";
import type { EngineSettings, WorkerMessage } from "../engine/settings.ts";
import { createLogger } from "../log/logger.ts";
import { displayPath } from "../log/display-path.ts";
import type { OpsShared } from "../engine/ops.ts";
import { ProbeCheck } from "../engine/self-test.ts";
import { TalkerRecorder } from "../engine/top-talkers.ts";

declare const self: Worker;

steadyThread();

self.onmessage = (e: MessageEvent<{ settings: EngineSettings; ops?: OpsShared }>) => {
  const s = e.data.settings;
  const ops = e.data.ops;
  const post = (m: WorkerMessage) => self.postMessage(m);
  try {
    const log = createLogger(s.log);
    // onacc ops (issue 14): top talkers, and the self-test's files (logged as a notice, no action).
    const talkers = ops ? new TalkerRecorder(ops.talkers, 0, s.scan.inFlight) : undefined;
    const probes = ops ? new ProbeCheck(ops.probes) : undefined;
    const selfTest = (fd: number, path: Uint8Array | null, signatures: string[]): boolean => {
      if (!probes?.isProbe(fd)) return false;
      log.notice(`self-test: ${path ? displayPath(path) : `fd ${fd}`}: the registered test file was detected (${signatures.join(", ")}); no action taken`);
      return true;
    };
    post({ type: "ready", worker: "scanner" });
    runScanner(s, {
      found: foundHandler(s.action, log, s.copiedFiles),
      error: (m) => log.error(m),
      verbose: (m) => log.verbose(m),
      reopenLog: () => void log.reopen(),
      clamdPid: (pid) => post({ type: "clamd-pid", pid }),
      talkers, // onacc ops
      selfTest, // onacc ops
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
