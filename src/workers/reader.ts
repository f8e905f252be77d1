// Worker entry: the fanotify reader thread. Thin: the loop lives in src/engine/reader.ts.
import { runReader } from "../engine/reader.ts";
import { steadyThread } from "../engine/footprint.ts";
import type { EngineSettings, WorkerMessage } from "../engine/settings.ts";
import type { OpsShared } from "../engine/ops.ts";

declare const self: Worker;

steadyThread();

self.onmessage = (e: MessageEvent<{ settings: EngineSettings; ops?: OpsShared }>) => {
  const post = (m: WorkerMessage) => self.postMessage(m);
  try {
    runReader(e.data.settings, post, e.data.ops); // onacc ops (issue 14): `ops`
  } catch (err) {
    post({ type: "fatal", worker: "reader", message: err instanceof Error ? err.message : String(err) });
  }
  process.exit(0);
};
