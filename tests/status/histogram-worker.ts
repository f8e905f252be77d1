// Test Worker: records latencies into a shared LatencyHistogram, as the scanner Workers do.
import { LatencyHistogram } from "../../src/status/histogram.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent<{ buffer: SharedArrayBuffer; from: number; to: number; rounds: number }>) => {
  const h = LatencyHistogram.attach(e.data.buffer);
  for (let r = 0; r < e.data.rounds; r++) for (let ms = e.data.from; ms <= e.data.to; ms++) h.recordLatency(ms);
  self.postMessage("done");
};
