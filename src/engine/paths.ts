// "Is this path inside that directory?": the one rule every exclusion and include path uses, on whole
// path components, for text paths (configuration) and byte paths (what the kernel reports).

/** True when `path` is `dir` or lies below it (text paths, absolute and normalized). */
export function isUnder(path: string, dir: string): boolean {
  return path === dir || dir === "/" || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

export function isUnderAny(path: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => isUnder(path, d));
}

/** Directory prefixes as bytes with a trailing slash, for isUnderPrefix(). */
export function dirPrefixes(dirs: readonly string[]): Uint8Array[] {
  const enc = new TextEncoder();
  return dirs.map((d) => enc.encode(d.endsWith("/") ? d : `${d}/`));
}

/** True when the byte path lies strictly inside one of `prefixes` (each ending in "/"). */
export function isUnderPrefix(path: Uint8Array, prefixes: readonly Uint8Array[]): boolean {
  outer: for (const prefix of prefixes) {
    if (path.length < prefix.length) continue;
    for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) continue outer;
    return true;
  }
  return false;
}
