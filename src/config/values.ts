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

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
// A century: longer than any retention anyone means, and far inside what a timer or a Date can hold.
const DURATION_MAX_S = 36500 * 86400;

/**
 * A duration in seconds: a whole number with a unit, s, m (minutes), h or d ("30d", "12h"), or "0".
 * A bare number other than 0 is refused: "30" could mean days or seconds.
 */
export const durationValue = v.pipe(
  v.string(),
  v.regex(/^(0|\d+[smhd])$/, 'expected 0 or a whole number with a unit s, m (minutes), h or d (e.g. "30d" or "12h")'),
  v.transform((s) => (s === "0" ? 0 : Number(s.slice(0, -1)) * DURATION_UNITS[s.slice(-1)]!)),
  v.check((n: number) => n <= DURATION_MAX_S, "is longer than a century"),
);

// What is wrong with a file pattern, or undefined. The grammar (ExcludePattern): `*` any characters
// within one path component, `?` one character, `[abc]` `[a-z]` `[!abc]` one character of (not of) a
// set, `\c` the character c itself, and `**` as a whole component: any number of directories. A pattern
// without `/` matches a file's name in any directory (`*.log`); one starting with `/` matches the whole
// path (`/srv/*/cache/**`). Nothing else is accepted, so a pattern cannot silently mean something else.
export function globPatternProblem(pattern: string): string | undefined {
  if (pattern.includes("/") && !pattern.startsWith("/")) {
    return "expected a file-name pattern without / (e.g. *.log) or an absolute path pattern (e.g. /srv/*/cache/**)";
  }
  const absolute = pattern.startsWith("/");
  const components = absolute ? pattern.slice(1).split("/") : [pattern];
  if (absolute && pattern.endsWith("/")) return "must not end with /: write /dir/** for everything below a directory";
  for (const c of components) {
    if (c === "" || c === "." || c === "..") return 'must not contain empty, "." or ".." path components';
    if (c.includes("**") && c !== "**") return "** stands for whole directories: it must be a path component of its own (/srv/**/cache)";
    if (c === "**" && !absolute) return "** spans directories: use * in a file-name pattern, or write an absolute pattern";
    const problem = _componentProblem(c);
    if (problem) return problem;
  }
  return undefined;
}

function _componentProblem(c: string): string | undefined {
  for (let i = 0; i < c.length; i++) {
    if (c[i] === "\\") {
      if (i + 1 === c.length) return "ends with a lone \\ (it escapes the next character)";
      i++;
    } else if (c[i] === "[") {
      let j = i + 1;
      if (c[j] === "!") j++;
      if (c[j] === "]") j++; // a leading ] is a member, as in shell patterns
      while (j < c.length && c[j] !== "]") j++;
      if (j >= c.length) return `has a "[" without its closing "]"`;
      i = j;
    }
  }
  return undefined;
}

/** ExcludePattern: a pattern as written, once globPatternProblem() finds nothing wrong with it. */
export const globPatternValue = v.pipe(
  v.string(),
  v.check((s) => globPatternProblem(s) === undefined, (issue) => globPatternProblem(String(issue.input)) ?? "is not a valid pattern"),
);
