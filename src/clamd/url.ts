// clamd endpoints written as URLs on the command line (`--clamd`): unix:///run/clamav/clamd.ctl,
// tcp://10.0.0.5:3310, tcp://[::1]:3310, tls://clamd.example:3311, tls://clamd.example@10.0.0.5:3311.
import type { ClamdEndpoint } from "../config/types.ts";
import { UNIX_PATH_MAX } from "../../ffi/socket.ts";
import { parseIPv4, parseIPv6 } from "./address.ts";

// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export const CLAMD_URL_FORMS = "unix:///path/to/clamd.sock, tcp://HOST:PORT or tls://HOST:PORT";

/** A host as written in a URL: a name, an IPv4 address, or an IPv6 address in brackets (returned without). */
function parseUrlHost(text: string): string | undefined {
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return undefined;
    return parseIPv6(text) ? text.slice(1, -1) : undefined;
  }
  if (parseIPv4(text)) return text;
  if (/^\d+(\.\d+)*$/.test(text)) return undefined; // looks numeric but is no IPv4 address
  return HOST_NAME.test(text) ? text : undefined;
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** "host:port" / "[v6]:port" → parts, or why not. */
export function parseHostPort(text: string): { host: string; port: number } | { error: string } {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return { error: "no port (expected HOST:PORT)" };
  const hostText = text.slice(0, colon);
  const port = parsePort(text.slice(colon + 1));
  if (port === undefined) return { error: `port "${text.slice(colon + 1)}" is not a number from 1 to 65535` };
  if (hostText.includes(":") && !hostText.startsWith("[")) return { error: "an IPv6 address needs brackets, e.g. [::1]:3310" };
  const host = parseUrlHost(hostText);
  if (host === undefined) return { error: `"${hostText}" is not a host name or IP address` };
  return { host, port };
}

/**
 * Parses one `--clamd` URL. TLS endpoints come back with verifyHostname on and no files; the caller adds
 * --tls-ca/--tls-cert/--tls-key. `tls://NAME@ADDRESS:PORT` connects to ADDRESS and expects NAME in the
 * certificate (as describeEndpoint() shows a resolved endpoint).
 */
export function parseClamdUrl(text: string): { endpoint: ClamdEndpoint } | { error: string } {
  const m = /^([a-z]+):(.*)$/i.exec(text);
  if (!m || !/^(unix|tcp|tls)$/i.test(m[1]!)) {
    if (text.startsWith("/")) return { error: `no scheme (did you mean unix://${text}?)` };
    if (!("error" in parseHostPort(text))) return { error: `no scheme (did you mean tcp://${text}?)` };
  }
  if (!m) return { error: "no scheme" };
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === "unix") {
    // unix:///run/x.sock (URL form) or unix:/run/x.sock (as messages show it).
    const path = rest.startsWith("//") ? rest.slice(2) : rest;
    if (!path.startsWith("/")) return { error: "a unix socket path must be absolute (unix:///run/clamav/clamd.ctl)" };
    if (new TextEncoder().encode(path).length >= UNIX_PATH_MAX) return { error: `the socket path is longer than ${UNIX_PATH_MAX - 1} bytes` };
    return { endpoint: { kind: "unix", path } };
  }
  if (scheme !== "tcp" && scheme !== "tls") return { error: `unknown scheme "${m[1]}:"` };
  if (!rest.startsWith("//")) return { error: `expected ${scheme}://HOST:PORT` };
  let authority = rest.slice(2);
  if (authority.endsWith("/")) authority = authority.slice(0, -1);
  if (authority.includes("/") || authority.includes("?") || authority.includes("#")) return { error: "a path, query or fragment means nothing here" };
  let servername: string | undefined;
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    if (scheme !== "tls") return { error: "NAME@ADDRESS is only for tls:// (the name the certificate carries)" };
    servername = parseUrlHost(authority.slice(0, at));
    if (servername === undefined || authority.slice(0, at).startsWith("[")) return { error: `"${authority.slice(0, at)}" is not a host name` };
    authority = authority.slice(at + 1);
  }
  const hp = parseHostPort(authority);
  if ("error" in hp) return hp;
  if (scheme === "tcp") return { endpoint: { kind: "tcp", host: hp.host, port: hp.port } };
  return { endpoint: { kind: "tls", host: hp.host, port: hp.port, verifyHostname: true, ...(servername !== undefined ? { servername } : {}) } };
}
