// Finding clamd for `onacc setup`: what the local clamd.conf says (socket, User, StreamMaxLength), the
// address a person types ("/run/clamav/clamd.ctl", "unix:///…", "host:3310"), and a VERSION probe.
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import * as v from "valibot";
import { describeEndpoint, resolveEndpoint } from "../clamd/address.ts";
import { ClamdClient } from "../clamd/client.ts";
import { CLAMD_DEFAULT_CONFIG, clamdOptionOf } from "../config/clamd-options.ts";
import { readConfigLines } from "../config/syntax.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { hostValue, isWildcardAddress, normalizePath } from "../config/values.ts";

export const DEFAULT_CLAMD_CONF = CLAMD_DEFAULT_CONFIG;

/** Sockets distributions use, tried when clamd.conf names none that answers. */
const WELL_KNOWN_SOCKETS = ["/run/clamav/clamd.ctl", "/var/run/clamav/clamd.ctl", "/run/clamd.scan/clamd.sock", "/run/clamav/clamd.sock"];

export interface LocalClamdConf {
  file: string;
  /** LocalSocket first, then TCPAddr × TCPSocket (wildcard addresses become 127.0.0.1). */
  endpoints: ClamdEndpoint[];
  /** clamd's User: the exclusion setup suggests (clamd opening a file must never wait on onacc). */
  user?: string;
  streamMaxLength?: string;
  databaseDirectory?: string;
  /** Where clamd writes its scan temp files: copied into onacc's file, which then never watches it. */
  temporaryDirectory?: string;
}

/**
 * The parts of a clamd.conf that setup uses, read leniently (it is clamd's file, not ours: options onacc
 * does not know are fine here). Undefined when the file cannot be read.
 */
export function readLocalClamdConf(file: string): LocalClamdConf | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const first = new Map<string, string>();
  const addresses: string[] = [];
  for (const entry of readConfigLines(text, file).entries) {
    // clamd also takes its command-line names here (tempdir = TemporaryDirectory).
    const name = clamdOptionOf(entry.name) ?? entry.name;
    if (name === "TCPAddr") addresses.push(entry.value);
    else if (!first.has(name)) first.set(name, entry.value);
  }
  const endpoints: ClamdEndpoint[] = [];
  const socket = first.get("LocalSocket");
  if (socket?.startsWith("/")) endpoints.push({ kind: "unix", path: normalizePath(socket) });
  const port = Number(first.get("TCPSocket"));
  if (Number.isInteger(port) && port > 0 && port < 65536) {
    // clamd listening on every address is reachable on loopback.
    const hosts = addresses.length === 0 ? ["127.0.0.1"] : addresses.map((a) => (isWildcardAddress(a) ? "127.0.0.1" : a));
    for (const host of new Set(hosts)) endpoints.push({ kind: "tcp", host, port });
  }
  const conf: LocalClamdConf = { file, endpoints };
  const user = first.get("User");
  if (user) conf.user = user;
  const stream = first.get("StreamMaxLength");
  if (stream && /^\d+[kmg]?$/i.test(stream)) conf.streamMaxLength = stream;
  const db = first.get("DatabaseDirectory");
  if (db?.startsWith("/")) conf.databaseDirectory = db;
  const tmp = first.get("TemporaryDirectory");
  if (tmp?.startsWith("/")) conf.temporaryDirectory = normalizePath(tmp);
  return conf;
}

/** A clamd setup can offer: where it listens, the clamd.conf describing it, and what is known without asking. */
export interface ClamdChoice {
  endpoint: ClamdEndpoint;
  /** The clamd.conf it was found in (its User and StreamMaxLength), when known. */
  conf?: LocalClamdConf;
  /** The trial clamd of `onacc setup --trial` (EICAR only). */
  trial: boolean;
  /** Why it cannot answer, known without asking it (its clamd.conf names an empty database directory). */
  unusable?: string;
}

/**
 * The clamds to offer, most likely first and without duplicates: the local clamd.conf's sockets, then
 * existing well-known sockets, and the trial clamd's (first when `preferTrial`). A clamd whose database
 * directory holds no signatures cannot be running, so it is marked unusable instead of asked: a socket-
 * activated clamd (Debian's clamav-daemon.socket) would accept the connection and never answer.
 */
export function clamdChoices(conf: LocalClamdConf | undefined, trial: LocalClamdConf | undefined, preferTrial: boolean): ClamdChoice[] {
  const system: ClamdChoice[] = [];
  const noDatabase = conf === undefined ? undefined : missingDatabase(conf);
  for (const endpoint of conf?.endpoints ?? []) {
    system.push({ endpoint, conf: conf!, trial: false, ...(noDatabase ? { unusable: noDatabase } : {}) });
  }
  for (const path of WELL_KNOWN_SOCKETS) if (existsSync(path)) system.push({ endpoint: { kind: "unix", path }, trial: false });
  const trials: ClamdChoice[] = (trial?.endpoints ?? []).map((endpoint) => ({ endpoint, conf: trial!, trial: true }));
  const seen = new Set<string>();
  return (preferTrial ? [...trials, ...system] : [...system, ...trials]).filter((c) => {
    const key = endpointKey(c.endpoint);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Identity of an endpoint: a socket by its real path (/var/run is often a link to /run). */
export function endpointKey(endpoint: ClamdEndpoint): string {
  if (endpoint.kind === "unix") {
    try {
      return `unix:${realpathSync(endpoint.path)}`;
    } catch {
      return `unix:${endpoint.path}`;
    }
  }
  return describeEndpoint(endpoint);
}

/** "clamd has no signature database in DIR…" when the clamd.conf's database directory is empty. */
export function missingDatabase(conf: LocalClamdConf): string | undefined {
  const db = conf.databaseDirectory ?? "/var/lib/clamav";
  if (hasSignatures(db)) return undefined;
  return `clamd has no signature database in ${db} (${conf.file}), so it cannot start: get one with freshclam (needs Internet access), then systemctl restart clamav-daemon; or try onacc with a test signature: onacc setup --trial`;
}

/**
 * A clamd address as typed: a socket path ("/run/clamav/clamd.ctl", "unix:/…", "unix:///…") or TCP
 * ("host:3310", "tcp://host:3310", "[::1]:3310"). Returns the endpoint or what is wrong with the text.
 */
export function parseClamdAddress(text: string): ClamdEndpoint | string {
  const input = text.trim();
  if (input === "") return "Give clamd's socket path or host:port";
  const unix = /^unix:(?:\/\/)?(\/.*)$/.exec(input) ?? /^(\/.*)$/.exec(input);
  if (unix) return { kind: "unix", path: normalizePath(unix[1]!) };
  if (input.startsWith("unix:")) return `clamd socket "${input}" must be an absolute path (unix:///run/clamav/clamd.ctl)`;

  const tcp = /^(?:tcp:\/\/)?(?:\[([^\]]+)\]|([^:/\[\]]+)):(\d+)\/?$/.exec(input);
  if (!tcp) return `"${input}" is neither a socket path (/run/clamav/clamd.ctl) nor host:port (127.0.0.1:3310)`;
  const host = tcp[1] ?? tcp[2]!;
  const port = Number(tcp[3]);
  if (!(port >= 1 && port <= 65535)) return `Port ${tcp[3]} in "${input}" is out of range (1-65535)`;
  if (!v.safeParse(hostValue, host).success) return `"${host}" is not a host name or IP address`;
  if (isWildcardAddress(host)) return `"${host}" means every address: give the address clamd can be reached at (e.g. 127.0.0.1)`;
  return { kind: "tcp", host, port };
}

export type ProbeResult = { ok: true; version: string } | { ok: false; message: string };

/** Asks clamd for VERSION (resolving a host name first): proves it is reachable and shows what it is. */
export async function probeClamd(endpoint: ClamdEndpoint, timeoutMs = 5000): Promise<ProbeResult> {
  try {
    const resolved = await resolveEndpoint(endpoint);
    const client = new ClamdClient({ endpoint: resolved, timeoutMs, retries: 0, streamMaxLength: 1 });
    return { ok: true, version: client.version() };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

/** Does `dir` hold a signature database (official .cvd/.cld, or any of clamd's signature files)? */
export function hasSignatures(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => /\.(cvd|cld|cud|hdb|hsb|ndb|ldb|mdb|msb|ign2?|fp|sfp|yar|yara|cbc|pdb|gdb|wdb|ftm|cdb|crb|idb|info)$/i.test(name));
  } catch {
    return false;
  }
}

/** Why clamd did not answer, plus what to do when the likely cause is a missing database. */
export function unreachableHint(conf: LocalClamdConf | undefined): string {
  const noDatabase = missingDatabase(conf ?? { file: DEFAULT_CLAMD_CONF, endpoints: [] });
  return noDatabase !== undefined ? `${noDatabase}.` : "Is clamd running? (systemctl status clamav-daemon)";
}
