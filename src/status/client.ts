// The other end of the control socket, for `onacc status`: one request line, one reply line.
import { OnaccError } from "../errors.ts";
import type { StatusReply, StatusRequest } from "./types.ts";

/** Replies larger than this are not from onacc. */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

const CONNECT_REASONS: Record<string, string> = {
  ENOENT: "onacc is not running, or runs with another --status-socket",
  ECONNREFUSED: "nothing listens on it: onacc is not running, or stopped without removing it",
  EACCES: "permission denied: onacc status must run as root",
  EPERM: "permission denied: onacc status must run as root",
  ENOTDIR: "a component of the path is not a directory",
};

/**
 * Sends `request` and resolves with onacc's reply. Rejects with an OnaccError (E_RUNTIME) that names the
 * socket and says why: not running, permission denied, no answer within `timeoutMs`, or a garbled reply.
 */
export function queryStatus(socketPath: string, request: StatusRequest, timeoutMs = 5000): Promise<StatusReply> {
  return new Promise<StatusReply>((resolve, reject) => {
    let received = Buffer.alloc(0);
    let settled = false;
    let socket: { end(): void } | undefined;
    const fail = (why: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.end();
      reject(new OnaccError("E_RUNTIME", `Cannot read onacc's status from "${socketPath}": ${why}`, { cause }));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    const finish = (line: string) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        fail(`the reply is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
        return;
      }
      if (typeof parsed !== "object" || parsed === null || typeof (parsed as { ok?: unknown }).ok !== "boolean") {
        fail(`unexpected reply ${JSON.stringify(line.slice(0, 80))}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket?.end();
      resolve(parsed as StatusReply);
    };
    const connectFailed = (err: Error) => {
      const code = (err as { code?: string }).code ?? "";
      fail(CONNECT_REASONS[code] ? `${CONNECT_REASONS[code]} (${code})` : err.message, err);
    };
    Bun.connect({
      unix: socketPath,
      socket: {
        open(s) {
          socket = s;
          s.write(`${JSON.stringify(request)}\n`);
        },
        data(_s, chunk) {
          received = Buffer.concat([received, chunk]);
          const nl = received.indexOf(10);
          if (nl >= 0) finish(received.subarray(0, nl).toString("utf8"));
          else if (received.length > MAX_REPLY_BYTES) fail(`the reply is longer than ${MAX_REPLY_BYTES} bytes`);
        },
        close() {
          fail("onacc closed the connection without answering");
        },
        error(_s, err) {
          fail(err.message, err);
        },
        connectError(_s, err) {
          connectFailed(err);
        },
      },
    }).catch(connectFailed);
  });
}
