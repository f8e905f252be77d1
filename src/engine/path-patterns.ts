// ExcludePattern: patterns compiled once, then matched against the bytes of a file's path on every event
// without allocating. The grammar is globPatternProblem()'s (src/config/values.ts); paths may hold any
// bytes except NUL and "/" in a name, including newlines and invalid UTF-8.
//
// Characters are UTF-8 code points; a byte that starts no valid UTF-8 sequence is a character of its own
// that only `?`, `*` and a negated set match. A pattern without "/" matches a file's name (the last path
// component); an absolute pattern matches the whole path, component by component: `*` and `?` never cross
// a "/", `**` stands for any number of directories, and a trailing `/**` for one or more components
// (everything below the directory, not the directory itself).

const OP_LIT = 0;
const OP_ANY = 1; // ?
const OP_STAR = 2; // *
const OP_SET = 3;
/** An invalid byte b decodes to INVALID_BASE + b: never equal to a code point from a pattern. */
const INVALID_BASE = 0x110000;

interface _CharSet {
  negate: boolean;
  /** lo, hi pairs of code points, inclusive. */
  ranges: Int32Array;
}

/** One path component's pattern: [op, arg] pairs. */
interface _Component {
  ops: Int32Array;
  sets: _CharSet[];
}

/** A component of an absolute pattern: a component pattern, or `**` (any number of components). */
type _Step = _Component | "**";

export interface CompiledPattern {
  readonly source: string;
  /** Name patterns see the last component only. */
  readonly kind: "name" | "path";
}

interface _Compiled extends CompiledPattern {
  name?: _Component;
  steps?: _Step[];
}

/** Compiles one pattern; throws a RangeError naming it when it breaks the grammar (config validates first). */
export function compilePattern(source: string): CompiledPattern {
  if (source.includes("/") && !source.startsWith("/")) throw new RangeError(`ExcludePattern "${source}": a path pattern must start with /`);
  if (!source.startsWith("/")) return { source, kind: "name", name: _compileComponent(source, source) } as _Compiled;
  const parts = source.slice(1).split("/");
  const steps: _Step[] = [];
  parts.forEach((p, i) => {
    if (p === "" || p === "." || p === "..") throw new RangeError(`ExcludePattern "${source}": empty, "." or ".." component`);
    if (p !== "**") steps.push(_compileComponent(p, source));
    // "/dir/**" is everything below dir: one component at least, then any number.
    else if (i === parts.length - 1) steps.push(_compileComponent("*", source), "**");
    else if (steps[steps.length - 1] !== "**") steps.push("**");
  });
  return { source, kind: "path", steps } as _Compiled;
}

function _compileComponent(text: string, source: string): _Component {
  const cps = Array.from(text, (c) => c.codePointAt(0)!);
  const ops: number[] = [];
  const sets: _CharSet[] = [];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === 0x5c /* \ */) {
      if (i + 1 >= cps.length) throw new RangeError(`ExcludePattern "${source}": ends with a lone \\`);
      ops.push(OP_LIT, cps[++i]!);
    } else if (c === 0x2a /* * */) {
      if (ops[ops.length - 2] !== OP_STAR) ops.push(OP_STAR, 0); // "**" inside a name is one "*"
    } else if (c === 0x3f /* ? */) {
      ops.push(OP_ANY, 0);
    } else if (c === 0x5b /* [ */) {
      let j = i + 1;
      const negate = cps[j] === 0x21; /* ! */
      if (negate) j++;
      const ranges: number[] = [];
      let first = true;
      // As globPatternProblem() reads it: the set ends at the first "]" after an optional "!" and an
      // optional leading "]"; inside it every character stands for itself (no escapes), "a-z" is a range.
      for (; j < cps.length && (cps[j] !== 0x5d /* ] */ || first); j++) {
        first = false;
        const lo = cps[j]!;
        let hi = lo;
        if (cps[j + 1] === 0x2d /* - */ && j + 2 < cps.length && cps[j + 2] !== 0x5d) {
          hi = cps[j + 2]!;
          j += 2;
        }
        ranges.push(lo, hi); // a reversed range ("z-a") matches nothing, as in the shell
      }
      if (j >= cps.length) throw new RangeError(`ExcludePattern "${source}": "[" without its closing "]"`);
      ops.push(OP_SET, sets.length);
      sets.push({ negate, ranges: Int32Array.from(ranges) });
      i = j;
    } else {
      ops.push(OP_LIT, c);
    }
  }
  return { ops: Int32Array.from(ops), sets };
}

// decode() returns the character at a position and leaves its length in _len: no object per character.
let _len = 1;
function decode(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  _len = 1;
  if (c < 0x80) return c;
  let need = 0;
  let cp = 0;
  let min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
    cp = c & 0x1f;
    min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    cp = c & 0x0f;
    min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return INVALID_BASE + c;
  }
  if (i + need >= end) return INVALID_BASE + c;
  for (let k = 1; k <= need; k++) {
    const n = b[i + k]!;
    if ((n & 0xc0) !== 0x80) return INVALID_BASE + c;
    cp = (cp << 6) | (n & 0x3f);
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return INVALID_BASE + c;
  _len = need + 1;
  return cp;
}

function inSet(set: _CharSet, cp: number): boolean {
  const r = set.ranges;
  let hit = false;
  for (let k = 0; k < r.length; k += 2) {
    if (cp >= r[k]! && cp <= r[k + 1]!) {
      hit = true;
      break;
    }
  }
  return hit !== set.negate;
}

/** Does the component pattern match bytes [start, end)? Greedy `*` with one backtrack point: linear-ish, no recursion. */
function matchComponent(p: _Component, b: Uint8Array, start: number, end: number): boolean {
  const ops = p.ops;
  const n = ops.length;
  let pi = 0;
  let si = start;
  let starPi = -1;
  let starSi = 0;
  while (si < end) {
    const cp = decode(b, si, end);
    const len = _len;
    if (pi < n) {
      const op = ops[pi]!;
      if (op === OP_STAR) {
        starPi = pi;
        starSi = si;
        pi += 2;
        continue;
      }
      if (op === OP_ANY || (op === OP_LIT && ops[pi + 1] === cp) || (op === OP_SET && inSet(p.sets[ops[pi + 1]!]!, cp))) {
        pi += 2;
        si += len;
        continue;
      }
    }
    if (starPi < 0) return false;
    pi = starPi + 2;
    decode(b, starSi, end);
    starSi += _len;
    si = starSi;
  }
  while (pi < n && ops[pi] === OP_STAR) pi += 2;
  return pi === n;
}

/**
 * The patterns of one thread, matched against path bytes. Component boundaries of the path go into a
 * reusable array, so matching allocates nothing.
 */
export class PathPatterns {
  private readonly compiled: _Compiled[];
  private readonly hasPathPatterns: boolean;
  // starts[k], ends[k]: byte range of the path's component k.
  private readonly starts = new Int32Array(2049);
  private readonly ends = new Int32Array(2049);

  constructor(patterns: readonly string[]) {
    this.compiled = patterns.map((p) => compilePattern(p) as _Compiled);
    this.hasPathPatterns = this.compiled.some((c) => c.kind === "path");
  }

  get size(): number {
    return this.compiled.length;
  }

  /** The index of the first pattern that matches the absolute path bytes [0, len), or -1. */
  match(path: Uint8Array, len: number): number {
    if (len <= 0 || path[0] !== 0x2f) return -1;
    let count = 0;
    if (this.hasPathPatterns) count = this._split(path, len);
    let nameStart = len;
    while (nameStart > 0 && path[nameStart - 1] !== 0x2f) nameStart--;
    for (let i = 0; i < this.compiled.length; i++) {
      const c = this.compiled[i]!;
      if (c.kind === "name" ? matchComponent(c.name!, path, nameStart, len) : this._matchSteps(c.steps!, path, count)) return i;
    }
    return -1;
  }

  private _split(path: Uint8Array, len: number): number {
    let count = 0;
    let i = 1;
    while (i < len && count < this.starts.length) {
      let j = i;
      while (j < len && path[j] !== 0x2f) j++;
      // readlink never returns empty components, but a doubled "/" must not become one.
      if (j > i) {
        this.starts[count] = i;
        this.ends[count] = j;
        count++;
      }
      i = j + 1;
    }
    return count;
  }

  /** Component-level glob: `**` is a `*` over whole components, with the same one-point backtracking. */
  private _matchSteps(steps: _Step[], path: Uint8Array, count: number): boolean {
    const n = steps.length;
    let si = 0;
    let ci = 0;
    let starSi = -1;
    let starCi = 0;
    while (ci < count) {
      if (si < n) {
        const step = steps[si]!;
        if (step === "**") {
          starSi = si;
          starCi = ci;
          si++;
          continue;
        }
        if (matchComponent(step, path, this.starts[ci]!, this.ends[ci]!)) {
          si++;
          ci++;
          continue;
        }
      }
      if (starSi < 0) return false;
      si = starSi + 1;
      ci = ++starCi;
    }
    while (si < n && steps[si] === "**") si++;
    return si === n;
  }
}
