// onacc's own exclusions, ExcludeExe and ExcludePattern: checked by the reader for every event after the
// clamd and user exclusions, and counted per rule in shared memory, so `onacc status` shows what each one
// skips. The main thread builds the shared part (createExtraExclusions); the reader attaches to it.
import { ProcLink, ProcessFacts } from "../../ffi/procfs-process.ts";
import { PathResolver } from "../../ffi/resolve.ts";
import { ExeMatcher, ExeTable, type ProcessSource } from "./exclude-exe.ts";
import { PathPatterns } from "./path-patterns.ts";

export interface ExtraExclusionShared {
  /** ExcludeExe's identity table (exclude-exe.ts); absent without ExcludeExe. */
  exeTable?: SharedArrayBuffer;
  children: boolean;
  patterns: string[];
  /** Per rule, two BigInt64 words: opens skipped, and pattern hits refused because the path did not lead to the file. */
  counts: SharedArrayBuffer;
}

export interface ExclusionRule {
  option: "ExcludeExe" | "ExcludePattern";
  value: string;
}

/** Rule i's counters; ExcludeExe rules come first, then ExcludePattern rules, in configuration order. */
export class RuleCounts {
  private readonly words: BigInt64Array;
  static create(rules: number): RuleCounts {
    return new RuleCounts(new SharedArrayBuffer(Math.max(1, rules) * 16));
  }
  static attach(sab: SharedArrayBuffer): RuleCounts {
    return new RuleCounts(sab);
  }
  private constructor(readonly sab: SharedArrayBuffer) {
    this.words = new BigInt64Array(sab);
  }
  skipped(rule: number): void {
    Atomics.add(this.words, 2 * rule, 1n);
  }
  refused(rule: number): void {
    Atomics.add(this.words, 2 * rule + 1, 1n);
  }
  read(rule: number): { skipped: number; refused: number } {
    return { skipped: Number(Atomics.load(this.words, 2 * rule)), refused: Number(Atomics.load(this.words, 2 * rule + 1)) };
  }
}

/** Main thread: the shared part for the reader, the rule list for status, and the table to re-resolve. */
export function createExtraExclusions(o: { excludeExe: readonly string[]; children: boolean; patterns: readonly string[] }): {
  shared: ExtraExclusionShared;
  rules: ExclusionRule[];
  table: ExeTable | undefined;
  counts: RuleCounts;
} {
  const table = o.excludeExe.length > 0 ? ExeTable.create(o.excludeExe) : undefined;
  const rules: ExclusionRule[] = [
    ...o.excludeExe.map((value) => ({ option: "ExcludeExe" as const, value })),
    ...o.patterns.map((value) => ({ option: "ExcludePattern" as const, value })),
  ];
  const counts = RuleCounts.create(rules.length);
  return {
    shared: { ...(table ? { exeTable: table.sab } : {}), children: o.children, patterns: [...o.patterns], counts: counts.sab },
    rules,
    table,
    counts,
  };
}

/**
 * The reader's side. Nothing here allocates per event: /proc is read into reusable buffers, the patterns
 * are compiled once, and a pattern hit is confirmed with one cached-only lookup.
 */
export class ExtraExclusions {
  private readonly exe: ExeMatcher | undefined;
  private readonly exeRules: number;
  private readonly patterns: PathPatterns | undefined;
  private readonly counts: RuleCounts;
  private readonly link = new ProcLink();
  private readonly resolver = new PathResolver();

  constructor(shared: ExtraExclusionShared, proc: ProcessSource = new ProcessFacts()) {
    const table = shared.exeTable ? ExeTable.attach(shared.exeTable) : undefined;
    this.exe = table ? new ExeMatcher(table, shared.children, proc) : undefined;
    this.exeRules = table?.size ?? 0;
    this.patterns = shared.patterns.length > 0 ? new PathPatterns(shared.patterns) : undefined;
    this.counts = RuleCounts.attach(shared.counts);
  }

  get active(): boolean {
    return this.exe !== undefined || this.patterns !== undefined;
  }

  /**
   * True, counted against its rule, when the opener runs an excluded executable or the file's path matches
   * an excluded pattern. `st` is the event descriptor's stat.
   */
  skip(pid: number, fd: number, st: { dev: number; ino: number }, nowMs: number): boolean {
    if (this.exe) {
      const rule = this.exe.match(pid, nowMs);
      if (rule >= 0) {
        this.counts.skipped(rule);
        return true;
      }
    }
    if (this.patterns) {
      const rule = this.matchFile(fd, st);
      if (rule >= 0) {
        this.counts.skipped(this.exeRules + rule);
        return true;
      }
    }
    return false;
  }

  /**
   * The pattern the file's path matches, or -1. The path read back from /proc is the one the opener used,
   * seen from its own mount namespace: a user who bind-mounts a file over an excluded path in a namespace of
   * their own would make it read as excluded. So a hit counts only when the same path, looked up here
   * without following symlinks, leads to the same file; when it does not (another mount namespace, a bind
   * mount, a name not in the dentry cache), the file is scanned and the refusal counted.
   */
  private matchFile(fd: number, st: { dev: number; ino: number }): number {
    const b = this.link.bytes;
    const n = this.link.fdPath(fd);
    if (n <= 0 || n >= b.length) return -1; // no path, or one cut at PATH_MAX: not matched
    const rule = this.patterns!.match(b, n);
    if (rule < 0) return -1;
    b[n] = 0;
    if (this.resolver.sameFile(b, st.dev, st.ino) === "same") return rule;
    this.counts.refused(this.exeRules + rule);
    return -1;
  }
}
