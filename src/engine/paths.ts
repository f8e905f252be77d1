// "Is this path inside that directory?": the one rule every exclusion and include path uses, on whole
// path components, for text paths (configuration) and byte paths (what the kernel reports).

const SLASH = 0x2f;

/** True when `path` is `dir` or lies below it (text paths, absolute and normalized; `dir` may end in "/"). */
export function isUnder(path: string, dir: string): boolean {
  if (path === dir || dir === "/") return true;
  if (dir.endsWith("/")) return path.startsWith(dir);
  return path.length > dir.length && path.charCodeAt(dir.length) === SLASH && path.startsWith(dir);
}

export function isUnderAny(path: string, dirs: readonly string[]): boolean {
  for (const d of dirs) if (isUnder(path, d)) return true;
  return false;
}

/** isUnder() for byte paths (names need not be UTF-8): `path` is `dir` or lies below it. */
export function isUnderBytes(path: Uint8Array, dir: Uint8Array): boolean {
  if (path.length < dir.length) return false;
  for (let i = 0; i < dir.length; i++) if (path[i] !== dir[i]) return false;
  return path.length === dir.length || dir[dir.length - 1] === SLASH || path[dir.length] === SLASH;
}

/** Directory prefixes as bytes with a trailing slash, for isUnderPrefix(). */
export function dirPrefixes(dirs: readonly string[]): Uint8Array[] {
  const enc = new TextEncoder();
  return dirs.map((d) => enc.encode(d.endsWith("/") ? d : `${d}/`));
}

/** True when the byte path lies strictly inside one of `prefixes` (each ending in "/"): the reader's per-event test. */
export function isUnderPrefix(path: Uint8Array, prefixes: readonly Uint8Array[]): boolean {
  outer: for (const prefix of prefixes) {
    if (path.length < prefix.length) continue;
    for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) continue outer;
    return true;
  }
  return false;
}
