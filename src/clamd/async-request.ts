// One command, one reply, without blocking the event loop: for the main thread, whose timers (watchdog,
// cache invalidation, pool health checks) must keep running while clamd takes its time. Scans go through
// the multiplexer (src/clamd/multiplexer.ts). TLS endpoints use Bun's own TLS, checked against the same CA and name.
import { isIP } from "node:net";
import type { ClamdEndpoint, TlsEndpoint } from "../config/types.ts";
import { ClamdError } from "../errors.ts";
import { peerCredentials } from "../../ffi/socket.ts";
import { describeEndpoint } from "./address.ts";

/** Replies longer than this are not clamd's answer to a one-record command. */
const MAX_REPLY_BYTES = 64 * 1024;

/**
 * Sends `command` (e.g. "zVERSION\0") and resolves with the reply text up to the first NUL. For a unix
 * endpoint, `onPeerPid` learns the PID of the process serving the socket (SO_PEERCRED): clamd's.
 */
export function requestAsync(endpoint: ClamdEndpoint, command: string, timeoutMs: number, onPeerPid?: (pid: number) => void): Promise<string> {
  const where = describeEndpoint(endpoint);
  return new Promise<string>((resolve, reject) => {
    let reply = "";
    let settled = false;
    let socket: { end(): void; terminate?(): void } | undefined;
    // end() only half-closes: a peer that never answers would keep the fd. terminate() closes it now.
    const closeSocket = (s: { end(): void; terminate?(): void } | undefined) => (s?.terminate ? s.terminate() : s?.end());
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      closeSocket(socket);
      if (err) reject(err);
      else resolve(reply.split("\0")[0]!);
    };
    const timer = setTimeout(() => finish(new ClamdError("timeout", `clamd at ${where} did not answer ${command.replace("\0", "")} within ${timeoutMs} ms`)), timeoutMs);
    const tls = endpoint.kind === "tls" ? endpoint : undefined;
    const handlers = {
      open(s: { write(d: string): number; end(): void; terminate?(): void; fd?: number }) {
        // Connected after the timeout already gave up: close instead of sending.
        if (settled) {
          closeSocket(s);
          return;
        }
        socket = s;
        if (onPeerPid && endpoint.kind === "unix" && typeof s.fd === "number" && s.fd >= 0) {
          try {
            const pid = peerCredentials(s.fd).pid;
            if (pid > 1) onPeerPid(pid);
          } catch {
            /* not worth failing the request for */
          }
        }
        // Over TLS nothing is sent before the certificate was judged (in handshake()).
        if (!tls) s.write(command);
      },
      handshake(s: { write(d: string): number; end(): void }, _success: boolean, authorizationError: Error | null) {
        if (!tls) return;
        const refusal = authorizationError ? tlsRefusal(tls, where, authorizationError) : undefined;
        if (refusal) {
          finish(refusal);
          return;
        }
        s.write(command);
      },
      data(_s: unknown, chunk: Buffer) {
        reply += chunk.toString("latin1");
        if (reply.includes("\0")) {
          finish(null);
        } else if (reply.length > MAX_REPLY_BYTES) {
          finish(new ClamdError("protocol", `clamd at ${where} sent more than ${MAX_REPLY_BYTES} bytes without ending its reply to ${command.replace("\0", "")}`));
        }
      },
      close() {
        finish(reply ? null : new ClamdError("protocol", `clamd at ${where} closed the connection without a reply`));
      },
      error(_s: unknown, err: Error) {
        finish(new ClamdError("connect", `clamd at ${where}: ${err.message}`));
      },
      connectError(_s: unknown, err: Error) {
        finish(new ClamdError("connect", `Cannot connect to clamd at ${where}: ${err.message}`));
      },
    };
    const connecting =
      endpoint.kind === "unix"
        ? Bun.connect({ unix: endpoint.path, socket: handlers })
        : Bun.connect({ hostname: endpoint.host, port: endpoint.port, socket: handlers, ...(tls ? { tls: bunTlsOptions(tls) } : {}) });
    connecting.catch((err: Error) => finish(new ClamdError("connect", `Cannot connect to clamd at ${where}: ${err.message}`)));
  });
}

/** Bun's TLS options for an endpoint. The certificate is judged in handshake(), by the same rules as the sync client. */
function bunTlsOptions(e: TlsEndpoint) {
  const name = e.servername ?? e.host;
  return {
    ...(e.ca !== undefined ? { ca: Bun.file(e.ca) } : {}),
    ...(e.cert !== undefined ? { cert: Bun.file(e.cert) } : {}),
    ...(e.key !== undefined ? { key: Bun.file(e.key) } : {}),
    ...(isIP(name.replace(/^\[|\]$/g, "")) === 0 ? { serverName: name } : {}),
    rejectUnauthorized: false,
  };
}

/** The error for a certificate the endpoint must not accept; undefined when only the (unchecked) name differs. */
function tlsRefusal(e: TlsEndpoint, where: string, err: Error): ClamdError | undefined {
  const code = (err as { code?: string }).code ?? "";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" && !e.verifyHostname) return undefined;
  return new ClamdError("connect", `TLS handshake with clamd at ${where} refused its certificate: ${err.message}${code ? ` (${code})` : ""}`);
}
