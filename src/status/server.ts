// The control socket: a root-only unix socket (0600, in a 0700 directory, peers checked with SO_PEERCRED)
// speaking one JSON request per line and one JSON reply per line; plus, optionally, Prometheus /metrics
// over HTTP. Bad input gets an error reply; nothing a client sends can stop the server.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { peerCredentials } from "../../ffi/socket.ts";
import { OnaccError } from "../errors.ts";
import { renderPrometheus } from "./format.ts";
import type { StatusReply, StatusSource } from "./types.ts";

/** Longest request line (without its newline); a longer one gets an error reply and the connection closes. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Clients served at once; more are told so and closed. */
const MAX_CLIENTS = 32;
/** A client that sends nothing for this long is closed. */
const IDLE_TIMEOUT_SECONDS = 60;
const COMMANDS = ["status", "flush-cache", "ping", "selftest-begin", "selftest-probe", "selftest-end"] as const;

export interface MetricsAddress {
  host: string;
  port: number;
}

export interface StatusServerOptions {
  /** e.g. /run/onacc/status.sock; its directory is created 0700 when missing. null: metrics only. */
  socketPath: string | null;
  source: StatusSource;
  /** --metrics-listen: serve GET /metrics (Prometheus text) there. */
  metrics?: MetricsAddress;
  /** Peer uids allowed to talk (SO_PEERCRED); default root and the server's own uid. */
  allowedUids?: number[];
  /** Where the server reports refused peers and failures; silent when absent. */
  log?: { warn(message: string): void; verbose(message: string): void };
}

export interface StatusServer {
  readonly socketPath: string | null;
  /** "http://127.0.0.1:9115/metrics" when --metrics-listen is on. */
  readonly metricsUrl?: string;
  stop(): Promise<void>;
}

interface _Client {
  /** Bytes of a request line not complete yet. */
  pending: Buffer;
  /** Reply bytes the socket did not take yet (written on drain). */
  unsent: Buffer[];
  closing: boolean;
}

/**
 * Starts listening: the control socket (unless socketPath is null) and /metrics (when asked). Throws
 * OnaccError (E_RUNTIME) when the socket cannot be made safe: its directory is writable by others, the path
 * is something other than a socket, another onacc answers there; or when the metrics address cannot be bound.
 */
export async function startStatusServer(o: StatusServerOptions): Promise<StatusServer> {
  const control = o.socketPath === null ? undefined : await _listenControlSocket(o, o.socketPath);
  let metricsServer: ReturnType<typeof Bun.serve> | undefined;
  let metricsUrl: string | undefined;
  if (o.metrics) {
    const host = o.metrics.host.includes(":") ? `[${o.metrics.host}]` : o.metrics.host;
    try {
      metricsServer = _serveMetrics(o.metrics, o.source);
    } catch (err) {
      control?.stop();
      throw new OnaccError("E_RUNTIME", `Cannot serve metrics on ${host}:${o.metrics.port}: ${(err as Error).message}`, { cause: err });
    }
    metricsUrl = `http://${host}:${metricsServer.port}/metrics`;
  }

  let stopped = false;
  return {
    socketPath: o.socketPath,
    ...(metricsUrl !== undefined ? { metricsUrl } : {}),
    async stop() {
      if (stopped) return;
      stopped = true;
      control?.stop();
      await metricsServer?.stop(true);
    },
  };
}

async function _listenControlSocket(o: StatusServerOptions, path: string): Promise<{ stop(): void }> {
  const allowed = new Set(o.allowedUids ?? [0, process.getuid?.() ?? 0]);
  prepareDirectory(dirname(path));
  await clearStalePath(path);

  const clients = new Set<Socket<_Client>>();
  let listener: UnixSocketListener<_Client>;
  try {
    // The socket is created with mode 0600 through the umask: no chmod by path afterwards, which would
    // follow a symlink planted at that path.
    const umask = process.umask(0o177);
    try {
    listener = Bun.listen<_Client>({
      unix: path,
      socket: {
        open(s) {
          s.data = { pending: Buffer.alloc(0), unsent: [], closing: false };
          if (clients.size >= MAX_CLIENTS) {
            reply(s, { ok: false, error: `too many status clients (limit ${MAX_CLIENTS}); try again` }, true);
            return;
          }
          const uid = peerUid(s);
          if (uid !== undefined && !allowed.has(uid)) {
            o.log?.warn(`status socket "${path}": refused a client running as uid ${uid} (root only)`);
            reply(s, { ok: false, error: `permission denied: the status socket answers root only (you are uid ${uid})` }, true);
            return;
          }
          clients.add(s);
          s.timeout(IDLE_TIMEOUT_SECONDS);
        },
        data(s, chunk) {
          if (s.data.closing) return;
          // Bytes, not text: a UTF-8 character split between two reads must not be mangled.
          s.data.pending = s.data.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([s.data.pending, chunk]);
          for (;;) {
            const nl = s.data.pending.indexOf(10);
            if ((nl < 0 ? s.data.pending.length : nl) > MAX_LINE_BYTES) {
              s.data.pending = Buffer.alloc(0);
              reply(s, { ok: false, error: `request line longer than ${MAX_LINE_BYTES} bytes; closing` }, true);
              return;
            }
            if (nl < 0) return;
            const line = s.data.pending.subarray(0, nl).toString("utf8").trim();
            s.data.pending = s.data.pending.subarray(nl + 1);
            if (line !== "") reply(s, answer(line, o));
            if (s.data.closing) return;
          }
        },
        drain(s) {
          flush(s);
        },
        timeout(s) {
          s.end();
        },
        close(s) {
          clients.delete(s);
        },
        error(s) {
          clients.delete(s);
        },
      },
    });
    } finally {
      process.umask(umask);
    }
  } catch (err) {
    throw new OnaccError("E_RUNTIME", `Cannot listen on status socket "${path}": ${(err as Error).message}`, { cause: err });
  }
  const created = lstatSync(path);
  if (!created.isSocket() || (created.mode & 0o777) !== 0o600 || created.uid !== (process.getuid?.() ?? created.uid)) {
    listener.stop(true);
    throw new OnaccError("E_RUNTIME", `Status socket "${path}" is not the 0600 socket onacc just created (mode ${(created.mode & 0o777).toString(8)}, uid ${created.uid}): refusing to serve it`);
  }
  return {
    stop() {
      listener.stop(true);
      for (const c of clients) c.end();
      clients.clear();
      removeOurSocket(path, created.ino);
    },
  };
}

function _serveMetrics(address: MetricsAddress, source: StatusSource): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    hostname: address.host,
    port: address.port,
    fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/metrics") return new Response("onacc serves /metrics only\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("GET /metrics\n", { status: 405, headers: { allow: "GET, HEAD" } });
      try {
        return new Response(renderPrometheus(source.snapshot()), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      } catch (err) {
        return new Response(`status unavailable: ${(err as Error).message}\n`, { status: 500 });
      }
    },
  });
}

/** Parses one request line and runs it; every failure is a reply, never a throw. */
function answer(line: string, o: StatusServerOptions): StatusReply {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    return { ok: false, error: `not JSON: ${JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)}; send e.g. {"cmd":"status"}` };
  }
  const cmd = typeof request === "object" && request !== null && !Array.isArray(request) ? (request as { cmd?: unknown }).cmd : undefined;
  if (typeof cmd !== "string") return { ok: false, error: `a request is a JSON object with a "cmd" string, e.g. {"cmd":"status"}` };
  try {
    switch (cmd) {
      case "status":
        return { ok: true, status: o.source.snapshot() };
      case "flush-cache":
        o.source.flushCaches("status socket request");
        return { ok: true, flushed: true };
      case "ping":
        return { ok: true, pong: true, pid: process.pid };
      case "selftest-begin":
      case "selftest-probe":
      case "selftest-end":
        return _selfTest(cmd, request as Record<string, unknown>, o);
      default:
        return { ok: false, error: `unknown command ${JSON.stringify(cmd)}; commands: ${COMMANDS.join(", ")}` };
    }
  } catch (err) {
    o.log?.warn(`status socket: "${cmd}" failed: ${(err as Error).message}`);
    return { ok: false, error: `"${cmd}" failed: ${(err as Error).message}` };
  }
}

/** `onacc status --check`'s steps (see src/engine/self-test.ts); a refusal is an error reply naming why. */
function _selfTest(cmd: string, request: Record<string, unknown>, o: StatusServerOptions): StatusReply {
  const handler = o.source.selfTest;
  if (!handler) return { ok: false, error: "this onacc offers no self-test" };
  const str = (name: string): string => {
    const v = request[name];
    if (typeof v !== "string" || v === "") throw new Error(`"${cmd}" needs a "${name}" string`);
    return v;
  };
  if (cmd === "selftest-begin") return { ok: true, selfTest: handler.begin() };
  if (cmd === "selftest-probe") {
    const path = str("path");
    handler.probe(str("nonce"), path);
    return { ok: true, registered: path };
  }
  return { ok: true, probes: handler.end(str("nonce")) };
}

function reply(s: Socket<_Client>, r: StatusReply, thenClose = false): void {
  s.data.unsent.push(Buffer.from(`${JSON.stringify(r)}\n`, "utf8"));
  if (thenClose) s.data.closing = true;
  flush(s);
}

/** Writes what the socket takes; the rest waits for drain. Closes after the last byte when asked to. */
function flush(s: Socket<_Client>): void {
  const q = s.data.unsent;
  while (q.length > 0) {
    const head = q[0]!;
    const n = s.write(head);
    if (n < 0) {
      s.end();
      return;
    }
    if (n < head.length) {
      q[0] = head.subarray(n);
      return;
    }
    q.shift();
  }
  if (s.data.closing) s.end();
}

function peerUid(s: Socket<_Client>): number | undefined {
  // Hint: Bun exposes the accepted socket's descriptor as `fd` (not in its typings).
  const fd = (s as unknown as { fd?: unknown }).fd;
  if (typeof fd !== "number" || fd < 0) return undefined;
  try {
    return peerCredentials(fd).uid;
  } catch {
    return undefined;
  }
}

/** Creates the directory 0700 when missing; refuses one others could write into (they could swap the socket). */
function prepareDirectory(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(`Cannot use status socket directory "${dir}"`, err);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    } catch (e) {
      throw fsError(`Cannot create status socket directory "${dir}"`, e);
    }
    return;
  }
  if (!st.isDirectory()) throw new OnaccError("E_RUNTIME", `Cannot use status socket directory "${dir}": not a directory`);
  // Whoever owns the directory can replace the socket in it: only onacc's own user (root) may.
  const me = process.getuid?.();
  if (me !== undefined && st.uid !== me) {
    throw new OnaccError("E_RUNTIME", `Status socket directory "${dir}" belongs to uid ${st.uid}, not to onacc's user ${me}: use a directory only root owns`);
  }
  const sticky = (st.mode & 0o1000) !== 0;
  if ((st.mode & 0o022) !== 0 && !sticky) {
    throw new OnaccError("E_RUNTIME", `Status socket directory "${dir}" is writable by others (mode ${(st.mode & 0o777).toString(8)}): use a directory only root can write`);
  }
}

/** Removes a socket nobody answers on; refuses to touch anything else, or a live onacc's socket. */
async function clearStalePath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new OnaccError("E_RUNTIME", `Cannot create status socket "${path}": the path exists and is not a socket`);
  if (await answers(path)) throw new OnaccError("E_RUNTIME", `Cannot create status socket "${path}": another onacc answers there (stop it, or pick another --status-socket)`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw fsError(`Cannot remove stale status socket "${path}"`, err);
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 1000);
    const done = (v: boolean) => {
      clearTimeout(timer);
      resolve(v);
    };
    Bun.connect({
      unix: path,
      socket: {
        open(s) {
          s.write('{"cmd":"ping"}\n');
        },
        data(s, chunk) {
          done(chunk.toString().includes('"pong":true'));
          s.end();
        },
        close() {
          done(false);
        },
        connectError() {
          done(false);
        },
        error() {
          done(false);
        },
      },
    }).catch(() => done(false));
  });
}

function removeOurSocket(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

function fsError(what: string, err: unknown): OnaccError {
  const e = err as NodeJS.ErrnoException;
  return new OnaccError("E_RUNTIME", `${what}: ${e.code ?? e.message}`, { cause: err });
}
