// valibot schemas for the value kinds of clamd.conf (BOOL, SIZE, NUMBER, paths, hosts): each takes the
// option's text as written and yields the typed value, or one message saying what was expected.
import * as v from "valibot";
import { isIP } from "node:net";
import { posix } from "node:path";

// clamd reads NUMBER options with atoi() into an int: nothing above this is meaningful to clamd either.
const CLAMD_INT_MAX = 2147483647;

/** BOOL: yes/no, true/false, 1/0 in any case (clamd matches them with REG_ICASE). */
export const booleanValue = v.pipe(
  v.string(),
  v.regex(/^(yes|no|true|false|1|0)$/i, "expected yes/no, true/false or 1/0"),
  v.transform((s) => /^(yes|true|1)$/i.test(s)),
);

const SIZE_UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * SIZE: bytes, or a number with a K/M/G suffix (either case; powers of 1024). 0 stays 0, which onacc
 * reads as "no limit" (clamd turns 0 into its maximum, the same thing).
 * Hint: clamd parses the digits with strtoll(…, 0), so "010M" would be octal there; we read decimal.
 */
export const sizeValue = v.pipe(
  v.string(),
  v.regex(/^\d+[kmg]?$/i, 'expected a size in bytes, optionally with a K, M or G suffix (e.g. "5M")'),
  v.transform((s) => {
    const unit = SIZE_UNITS[s.slice(-1).toLowerCase()];
    return unit === undefined ? Number(s) : Number(s.slice(0, -1)) * unit;
  }),
  v.check((n: number) => Number.isSafeInteger(n), "is too large"),
);

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A duration (onacc's own options): a whole number with s, m (minutes), h, d or w, e.g. "30d"; "0" means
 * never. Yields milliseconds.
 */
export const durationValue = v.pipe(
  v.string(),
  v.regex(/^(0|\d+[smhdw])$/, 'expected a whole number with s, m (minutes), h, d or w (e.g. "30d"), or 0 for never'),
  v.transform((s) => (s === "0" ? 0 : Number(s.slice(0, -1)) * DURATION_UNITS[s.slice(-1)]!)),
  v.check((n: number) => Number.isSafeInteger(n), "is too large"),
);

/** NUMBER: an unsigned whole number within [min, max]. */
export function numberValue(min: number, max = CLAMD_INT_MAX, unit = "") {
  const suffix = unit ? ` ${unit}` : "";
  return v.pipe(
    v.string(),
    v.regex(/^\d+$/, "expected a whole number"),
    v.transform(Number),
    v.check((n: number) => n >= min && n <= max, `must be between ${min} and ${max}${suffix}`),
  );
}

/** A TCP port, 1-65535. */
export const portValue = numberValue(1, 65535);

/** A user id: 0 to 2^32-2 ((uid_t)-1 means "no user" to the kernel). */
export const uidValue = numberValue(0, 4294967294);

/** Lexical normal form of an absolute path: no `.`/`..`/`//`, no trailing slash (except "/"). */
export function normalizePath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/** An absolute path, normalized. Relative paths make no sense for a daemon whose cwd is "/". */
export const absolutePathValue = v.pipe(
  v.string(),
  v.check((s) => s.startsWith("/"), "must be an absolute path (starting with /)"),
  v.transform(normalizePath),
);

/** Any non-empty text, kept as written (User, OnAccessExcludeUname). */
export const textValue = v.pipe(v.string(), v.minLength(1, "must not be empty"));

// RFC 1123 host names; "_" is tolerated because resolvers accept it in practice.
const HOST_NAME = /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

function isHostOrAddress(s: string): boolean {
  if (isIP(s) !== 0) return true;
  // "999.1.1.1" looks like a host name to the pattern, but is a mistyped IPv4 address.
  if (/^[\d.]+$/.test(s)) return false;
  return HOST_NAME.test(s);
}

/** TCPAddr: a host name, an IPv4 address or an IPv6 address (without brackets, as clamd wants it). */
export const hostValue = v.pipe(
  v.string(),
  v.check(isHostOrAddress, "expected a host name, an IPv4 address or an IPv6 address (without brackets)"),
);

/** clamd's "listen on every address" spellings: fine for a server, meaningless to connect to. */
export function isWildcardAddress(host: string): boolean {
  if (host.toLowerCase() === "any") return true;
  const kind = isIP(host);
  if (kind === 4) return host.split(".").every((part) => Number(part) === 0);
  if (kind === 6) return /^[0:]+$/.test(host);
  return false;
}
