// Test Worker: appends numbered lines through its own rotating Logger (as each scanner Worker would), so
// several threads rotate one --log file at once.
import { createLogger, type LogSettings } from "../../src/log/logger.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent<{ settings: LogSettings; tag: string; count: number }>) => {
  const { settings, tag, count } = e.data;
  const log = createLogger(settings);
  for (let i = 0; i < count; i++) log.error(`${tag} ${i} ${"x".repeat((i * 37) % 200)} end`);
  const failures = log.writeFailures;
  log.close();
  self.postMessage({ failures });
};
