// Where a clamd endpoint is: how messages name it, its numeric socket addresses, and the one asynchronous
// host-name lookup at start-up (the scanning threads never wait on DNS). No I/O besides that lookup.
import { lookup } from "node:dns/promises";
import { AF_INET, AF_INET6, AF_UNIX, type SocketAddress } from "../../ffi/socket.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { ClamdError } from "../errors.ts";

/**
 * An endpoint as messages show it: "unix:/run/clamav/clamd.ctl", "tcp://127.0.0.1:3310", "tcp://[::1]:3310",
 * "tls://clamd.example:3311" (a resolved TLS endpoint shows its name: "tls://clamd.example@10.0.0.5:3311").
 */
export function describeEndpoint(e: ClamdEndpoint): string {
  if (e.kind === "unix") return `unix:${e.path}`;
  const host = e.host.includes(":") && !e.host.startsWith("[") ? `[${e.host}]` : e.host;
  if (e.kind === "tls") {
    const named = e.servername !== undefined && e.servername !== e.host ? `${e.servername}@` : "";
    return `tls://${named}${host}:${e.port}`;
  }
  return `tcp://${host}:${e.port}`;
}

/** Dotted-quad IPv4 ("127.0.0.1") as 4 bytes, or undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p.startsWith("0"))) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/** Numeric IPv6 ("::1", "[fe80::1%2]", "::ffff:1.2.3.4") as 16 bytes and a numeric scope id, or undefined. */
export function parseIPv6(text: string): { address: Uint8Array; scopeId: number } | undefined {
  let t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  let scopeId = 0;
  const pct = t.indexOf("%");
  if (pct >= 0) {
    const scope = t.slice(pct + 1);
    if (!/^\d+$/.test(scope)) return undefined; // interface names would need if_nametoindex()
    scopeId = Number(scope);
    t = t.slice(0, pct);
  }
  if (!t.includes(":")) return undefined;
  const groups: number[] = [];
  const toGroups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const halves = t.split("::");
  if (halves.length > 2) return undefined;
  const head = toGroups(halves[0]!);
  const tail = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return undefined;
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    if (head.length !== 8) return undefined;
    groups.push(...head);
  }
  const address = new Uint8Array(16);
  groups.forEach((g, i) => {
    address[i * 2] = g >> 8;
    address[i * 2 + 1] = g & 0xff;
  });
  return { address, scopeId };
}

const LOOPBACK_V4 = new Uint8Array([127, 0, 0, 1]);
const LOOPBACK_V6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** The addresses to try for an endpoint, without DNS: numeric hosts and "localhost" only. */
export function socketAddresses(e: ClamdEndpoint): SocketAddress[] {
  if (e.kind === "unix") return [{ family: AF_UNIX, path: new TextEncoder().encode(e.path) }];
  const v4 = parseIPv4(e.host);
  if (v4) return [{ family: AF_INET, address: v4, port: e.port }];
  const v6 = parseIPv6(e.host);
  if (v6) return [{ family: AF_INET6, address: v6.address, port: e.port, scopeId: v6.scopeId }];
  if (e.host.toLowerCase() === "localhost") {
    return [
      { family: AF_INET, address: LOOPBACK_V4, port: e.port },
      { family: AF_INET6, address: LOOPBACK_V6, port: e.port, scopeId: 0 },
    ];
  }
  throw new ClamdError(
    "connect",
    `Cannot connect to clamd at ${describeEndpoint(e)}: host name "${e.host}" is not resolved (resolveEndpoint() must run at startup)`,
  );
}

/** How resolveEndpoint() looks a host name up (replaceable in tests). */
export type HostLookup = (host: string) => Promise<{ address: string; family: number }[]>;

const defaultLookup: HostLookup = (host) => lookup(host, { all: true });

/**
 * The endpoint with its host name replaced by a numeric address, looked up once (asynchronously, at startup)
 * so the synchronous client never waits on DNS. Unix sockets, numeric hosts and "localhost" come back as given.
 */
export async function resolveEndpoint(e: ClamdEndpoint, lookupHost: HostLookup = defaultLookup): Promise<ClamdEndpoint> {
  if (e.kind === "unix" || parseIPv4(e.host) || parseIPv6(e.host) || e.host.toLowerCase() === "localhost") return e;
  try {
    const found = await lookupHost(e.host);
    // IPv4 first, like getaddrinfo's usual order for a name with both.
    const first = found.find((a) => a.family === 4) ?? found[0];
    if (!first) throw new Error("no addresses");
    // TLS keeps the name: it is what the certificate must carry and what SNI sends.
    if (e.kind === "tls") return { ...e, host: first.address, servername: e.servername ?? e.host };
    return { kind: "tcp", host: first.address, port: e.port };
  } catch (err) {
    const why = err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err);
    throw new ClamdError("connect", `Cannot resolve clamd host "${e.host}" (${describeEndpoint(e)}): ${why}`, { cause: err });
  }
}
