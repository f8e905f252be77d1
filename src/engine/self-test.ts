// The agent's side of `onacc status --check`: a one-time nonce handed out over the root-only status socket,
// the test files the checker registers under it, and the table the scanners consult when clamd finds
// something. A test file is known by device, inode and birth time, looked up by the agent itself: a file
// merely named like one, or one that got a freed test file's inode number, is an ordinary detection. A
// registered test file is denied like any other infected file; only the log line and the action differ:
// a notice instead of a FOUND line, no quarantine, no count as infected.
import { randomBytes } from "node:crypto";
import { fstatSync, lstatSync, type BigIntStats } from "node:fs";
import { basename, dirname, posix } from "node:path";
import { AT_STATX_DONT_SYNC, Fstat, closeFd, emptyStat, openParentNoSymlinks, unlinkAt } from "../../ffi/fs.ts";
import type { EndpointHealth, SelfTestBegin, SelfTestHandler, SelfTestProbeResult } from "../status/types.ts";

/** Test files registered at once (all checks together). */
const MAX_PROBES = 64;
/** A check that does not end within this is abandoned: its files are unregistered and removed. */
export const SELF_TEST_TTL_MS = 60_000;
/**
 * After a check ends, its files stay known this long: a scan of one may still be under way (a write's
 * extra scan, a notification-mode scan) and must not end as a FOUND line and a quarantined copy.
 */
export const SELF_TEST_GRACE_MS = 10_000;
const PROBE_PREFIX = ".onacc-selftest-";

// Layout: Int32 [state × MAX, detections × MAX], then Float64 [dev, ino, birth s, birth ns] × MAX.
const INT_BYTES = MAX_PROBES * 2 * 4;
const ID_WORDS = 4;
const FREE = 0;
const ACTIVE = 1;
const RETIRED = 2;

/** A file's identity: device, inode and birth time (which no user can set, and a reused inode renews). */
export interface ProbeIdentity {
  dev: number;
  ino: number;
  birthSec: number;
  birthNsec: number;
}

export function probeIdentity(st: BigIntStats): ProbeIdentity {
  return { dev: Number(st.dev), ino: Number(st.ino), birthSec: Number(st.birthtimeNs / 1_000_000_000n), birthNsec: Number(st.birthtimeNs % 1_000_000_000n) };
}

/** Shared between the main thread (registers) and the scanners (look up, count detections). */
export class ProbeRegistry {
  private readonly ints: Int32Array;
  private readonly ids: Float64Array;

  static create(): ProbeRegistry {
    return new ProbeRegistry(new SharedArrayBuffer(INT_BYTES + MAX_PROBES * ID_WORDS * 8));
  }
  static attach(sab: SharedArrayBuffer): ProbeRegistry {
    return new ProbeRegistry(sab);
  }
  private constructor(readonly sab: SharedArrayBuffer) {
    this.ints = new Int32Array(sab, 0, MAX_PROBES * 2);
    this.ids = new Float64Array(sab, INT_BYTES, MAX_PROBES * ID_WORDS);
  }

  /** Main thread: a free slot for the file, or -1 when all are taken. */
  register(id: ProbeIdentity): number {
    for (let i = 0; i < MAX_PROBES; i++) {
      if (Atomics.load(this.ints, i) !== FREE) continue;
      this.ids.set([id.dev, id.ino, id.birthSec, id.birthNsec], i * ID_WORDS);
      Atomics.store(this.ints, MAX_PROBES + i, 0);
      // The identity is written before the slot is marked: a scanner that sees it marked sees it whole.
      Atomics.store(this.ints, i, ACTIVE);
      return i;
    }
    return -1;
  }

  /** Main thread: the check is over, but its file stays known for the grace period. Its detections so far. */
  retire(slot: number): number {
    Atomics.store(this.ints, slot, RETIRED);
    return Atomics.load(this.ints, MAX_PROBES + slot);
  }

  free(slot: number): void {
    Atomics.store(this.ints, slot, FREE);
  }

  /** Scanner: is any test file registered (or in its grace period)? */
  any(): boolean {
    for (let i = 0; i < MAX_PROBES; i++) if (Atomics.load(this.ints, i) !== FREE) return true;
    return false;
  }

  /** Scanner: could (dev, ino) be a registered test file? The birth time decides (detected()). */
  has(dev: number, ino: number): boolean {
    for (let i = 0; i < MAX_PROBES; i++) {
      if (Atomics.load(this.ints, i) !== FREE && this.ids[i * ID_WORDS] === dev && this.ids[i * ID_WORDS + 1] === ino) return true;
    }
    return false;
  }

  /** Scanner: true (and counted) when the file is a registered test file. */
  detected(id: ProbeIdentity): boolean {
    for (let i = 0; i < MAX_PROBES; i++) {
      if (Atomics.load(this.ints, i) === FREE) continue;
      const b = i * ID_WORDS;
      const ids = this.ids;
      if (ids[b] === id.dev && ids[b + 1] === id.ino && ids[b + 2] === id.birthSec && ids[b + 3] === id.birthNsec) {
        Atomics.add(this.ints, MAX_PROBES + i, 1);
        return true;
      }
    }
    return false;
  }
}

/** Scanner side of the registry, for the scanner loop's self-test hook (asked about infected files only). */
export class ProbeCheck {
  private readonly registry: ProbeRegistry;
  private readonly fstat = new Fstat();
  private readonly st = emptyStat();
  constructor(sab: SharedArrayBuffer) {
    this.registry = ProbeRegistry.attach(sab);
  }
  /**
   * True when the file behind `fd` is a registered test file (its detection is then counted). Costs nothing
   * outside a check; a full stat (for the birth time) only for a file on a test file's device and inode, so
   * an infected file on a stalled network or FUSE file system never makes a scanner wait here.
   */
  isProbe(fd: number): boolean {
    if (!this.registry.any()) return false;
    if (this.fstat.stat(fd, this.st, AT_STATX_DONT_SYNC) !== 0 || !this.registry.has(this.st.dev, this.st.ino)) return false;
    let st: BigIntStats;
    try {
      st = fstatSync(fd, { bigint: true });
    } catch {
      return false;
    }
    return this.registry.detected(probeIdentity(st));
  }
}

export interface SelfTestContext {
  registry: ProbeRegistry;
  /** The trees the agent protects now. */
  trees(): string[];
  prevention: boolean;
  denyOnError: boolean;
  rootExcluded: boolean;
  endpoints(): EndpointHealth[];
  log: { warn(message: string): void; verbose(message: string): void };
  now?: () => number;
}

interface _Probe {
  path: string;
  id: ProbeIdentity;
  slot: number;
}

interface _Session {
  expires: number;
  probes: _Probe[];
}

/**
 * The main thread's self-test service, behind the status socket's selftest-* commands. A reload's new
 * engine takes it over with its checks in progress (their files must stay known); each engine holds it
 * with acquire() and lets go with release(): the last release stops it.
 */
export class SelfTest implements SelfTestHandler {
  private readonly sessions = new Map<string, _Session>();
  /** Slots of ended checks, freed once their grace period is over. */
  private retired: { slot: number; until: number }[] = [];
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private holders = 0;

  constructor(private c: SelfTestContext) {
    this.now = c.now ?? Date.now;
  }

  get registry(): ProbeRegistry {
    return this.c.registry;
  }

  /** A new engine's facts (trees, prevention, its clamd health); the registry stays the same. */
  retarget(c: Omit<SelfTestContext, "registry" | "now">): void {
    this.c = { ...c, registry: this.c.registry, now: this.now };
  }

  acquire(): void {
    this.holders++;
  }

  /** One engine lets go; the last one stops the service. */
  release(): void {
    if (--this.holders <= 0) this.stop();
  }

  /** Sweeps abandoned checks every few seconds until stop(). */
  start(): void {
    this.timer ??= setInterval(() => this.sweep(), 5000);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const nonce of [...this.sessions.keys()]) this._finish(nonce);
    for (const r of this.retired) this.c.registry.free(r.slot);
    this.retired = [];
  }

  begin(): SelfTestBegin {
    this.sweep();
    const nonce = randomBytes(16).toString("hex");
    this.sessions.set(nonce, { expires: this.now() + SELF_TEST_TTL_MS, probes: [] });
    return {
      nonce,
      probeName: probeName(nonce),
      trees: this.c.trees(),
      prevention: this.c.prevention,
      denyOnError: this.c.denyOnError,
      rootExcluded: this.c.rootExcluded,
      endpoints: this.c.endpoints(),
      expiresInMs: SELF_TEST_TTL_MS,
    };
  }

  /**
   * Registers the test file at `path`. Refused unless it is this check's name, directly in a protected
   * tree, and an empty regular file only root can read or write with a single link — the file the checker
   * has just created, before it writes the test signature into it.
   */
  probe(nonce: string, path: string): void {
    const session = this._session(nonce);
    if (typeof path !== "string" || !path.startsWith("/") || posix.normalize(path) !== path) throw new Error(`test file path ${JSON.stringify(path)} is not a normalized absolute path`);
    if (basename(path) !== probeName(nonce)) throw new Error(`test file "${path}" is not named ${probeName(nonce)}`);
    if (!this.c.trees().includes(dirname(path))) throw new Error(`test file "${path}" is not directly inside a protected tree`);
    if (session.probes.some((p) => p.path === path)) throw new Error(`test file "${path}" is registered already`);
    let st: BigIntStats;
    try {
      st = lstatSync(path, { bigint: true });
    } catch (err) {
      throw new Error(`test file "${path}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (!st.isFile() || st.uid !== 0n || st.nlink !== 1n || (st.mode & 0o077n) !== 0n || st.size !== 0n) {
      throw new Error(`"${path}" is not a freshly created test file (an empty regular file, owned by root, mode 0600, one link)`);
    }
    const id = probeIdentity(st);
    const slot = this.c.registry.register(id);
    if (slot < 0) throw new Error(`too many self-tests at once (limit ${MAX_PROBES} test files)`);
    session.probes.push({ path, id, slot });
  }

  end(nonce: string): SelfTestProbeResult[] {
    this._session(nonce);
    return this._finish(nonce);
  }

  /** Ends every check past its time: an interrupted `onacc status --check` leaves no file behind. */
  sweep(): void {
    const now = this.now();
    this.retired = this.retired.filter((r) => {
      if (r.until > now) return true;
      this.c.registry.free(r.slot);
      return false;
    });
    for (const [nonce, s] of this.sessions) {
      if (s.expires > now) continue;
      const results = this._finish(nonce);
      for (const r of results) if (!r.removed) this.c.log.warn(`self-test: abandoned test file "${r.path}" could not be removed`);
      if (results.length) this.c.log.verbose(`self-test ${nonce.slice(0, 8)}… abandoned: its ${results.length} test file(s) unregistered`);
    }
  }

  private _session(nonce: string): _Session {
    const s = typeof nonce === "string" ? this.sessions.get(nonce) : undefined;
    if (!s || s.expires <= this.now()) throw new Error("unknown or expired self-test: start again with selftest-begin");
    return s;
  }

  private _finish(nonce: string): SelfTestProbeResult[] {
    const s = this.sessions.get(nonce);
    this.sessions.delete(nonce);
    if (!s) return [];
    const until = this.now() + SELF_TEST_GRACE_MS;
    return s.probes.map((p) => {
      this.retired.push({ slot: p.slot, until });
      return { path: p.path, detections: this.c.registry.retire(p.slot), removed: removeIfSame(p) };
    });
  }
}

export function probeName(nonce: string): string {
  return `${PROBE_PREFIX}${nonce}`;
}

/**
 * Unlinks the test file when its name still holds the registered file: the directories on the way are
 * opened without following symlinks, and the entry is compared by device and inode right before. False when
 * the file is gone already (the checker removed it) or cannot be removed (a read-only view of the tree).
 */
function removeIfSame(p: _Probe): boolean {
  const dir = openParentNoSymlinks(new TextEncoder().encode(p.path));
  if (dir < 0) return false;
  try {
    const name = basename(p.path);
    let now: ProbeIdentity;
    try {
      now = probeIdentity(lstatSync(`/proc/self/fd/${dir}/${name}`, { bigint: true }));
    } catch {
      return false;
    }
    if (now.dev !== p.id.dev || now.ino !== p.id.ino || now.birthSec !== p.id.birthSec || now.birthNsec !== p.id.birthNsec) return false;
    return unlinkAt(dir, new TextEncoder().encode(name)) === 0;
  } finally {
    closeFd(dir);
  }
}
