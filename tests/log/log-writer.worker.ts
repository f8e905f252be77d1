// Test Worker: builds its own Logger from posted LogSettings (as scanner Workers do), writes numbered
// lines of varied length on request, and reopens the file when told (as the engine's Workers do when the
// main thread bumps the log generation).
import { createLogger, type LogSettings, type Logger } from "../../src/log/logger.ts";

declare const self: Worker;

type Command =
  | { cmd: "start"; settings: LogSettings }
  | { cmd: "write"; tag: string; count: number }
  | { cmd: "reopen" }
  | { cmd: "close" };

let logger: Logger | undefined;

self.onmessage = (event: MessageEvent<Command>) => {
  const data = event.data;
  if (data.cmd === "start") {
    logger = createLogger(data.settings);
    self.postMessage({ started: true });
  } else if (data.cmd === "write") {
    for (let i = 0; i < data.count; i++) {
      // Lengths up to ~12 KiB: well past PIPE_BUF, so whole lines come from O_APPEND, not luck.
      const padding = "x".repeat((i * 997) % 12000);
      logger!.error(`${data.tag} ${i} ${padding} end`);
    }
    self.postMessage({ written: data.count, failures: logger!.writeFailures });
  } else if (data.cmd === "reopen") {
    self.postMessage({ reopened: logger?.reopen() ?? false });
  } else if (data.cmd === "close") {
    logger?.close();
    self.postMessage({ closed: true });
  }
};
