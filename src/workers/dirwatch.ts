// Worker entry: the directory watcher thread (new folders, extra scanning). Thin: see src/engine/ddd.ts.
import { runDdd, type DddSettings } from "../engine/ddd.ts";
import type { EngineSettings, WorkerMessage } from "../engine/settings.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent<{ settings: EngineSettings; ddd: DddSettings }>) => {
  const post = (m: WorkerMessage) => self.postMessage(m);
  try {
    runDdd(e.data.settings, e.data.ddd, post);
  } catch (err) {
    post({ type: "fatal", worker: "dirwatch", message: err instanceof Error ? err.message : String(err) });
  }
  process.exit(0);
};
