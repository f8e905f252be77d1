// Worker entry: the fanotify reader thread. Thin: the loop lives in src/engine/reader.ts.
import { runReader } from "../engine/reader.ts";
import { steadyThread } from "../engine/footprint.ts";
import type { EngineSettings, WorkerMessage } from "../engine/settings.ts";

declare const self: Worker;

steadyThread();

self.onmessage = (e: MessageEvent<{ settings: EngineSettings }>) => {
  const post = (m: WorkerMessage) => self.postMessage(m);
  try {
    runReader(e.data.settings, post);
  } catch (err) {
    post({ type: "fatal", worker: "reader", message: err instanceof Error ? err.message : String(err) });
  }
  process.exit(0);
};
