// One command, one reply, without blocking the event loop: for the main thread, whose timers (watchdog,
// cache invalidation) must keep running while clamd takes its time. Scans use the synchronous client.
import type { ClamdEndpoint } from "../config/types.ts";
import { ClamdError } from "../errors.ts";
import { describeEndpoint } from "./transport.ts";

/** Sends `command` (e.g. "zVERSION\0") and resolves with the reply text up to the first NUL. */
export function requestAsync(endpoint: ClamdEndpoint, command: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let reply = "";
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(reply.split("\0")[0]!);
    };
    const timer = setTimeout(() => finish(new ClamdError("timeout", `clamd at ${describeEndpoint(endpoint)} did not answer ${command.replace("\0", "")} within ${timeoutMs} ms`)), timeoutMs);
    const handlers = {
      open(s: { write(d: string): number }) {
        s.write(command);
      },
      data(s: { end(): void }, chunk: Buffer) {
        reply += chunk.toString("latin1");
        if (reply.includes("\0")) {
          s.end();
          finish(null);
        }
      },
      close() {
        finish(reply ? null : new ClamdError("protocol", `clamd at ${describeEndpoint(endpoint)} closed the connection without a reply`));
      },
      error(_s: unknown, err: Error) {
        finish(new ClamdError("connect", `clamd at ${describeEndpoint(endpoint)}: ${err.message}`));
      },
      connectError(_s: unknown, err: Error) {
        finish(new ClamdError("connect", `Cannot connect to clamd at ${describeEndpoint(endpoint)}: ${err.message}`));
      },
    };
    const connecting = endpoint.kind === "unix" ? Bun.connect({ unix: endpoint.path, socket: handlers }) : Bun.connect({ hostname: endpoint.host, port: endpoint.port, socket: handlers });
    connecting.catch((err: Error) => finish(new ClamdError("connect", `Cannot connect to clamd at ${describeEndpoint(endpoint)}: ${err.message}`)));
  });
}
