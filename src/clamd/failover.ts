// Which clamd endpoint a scan's next attempt goes to: the live endpoint with the fewest scans in flight,
// failover to the next one within the scan's deadline, and OnAccessRetryAttempts rounds. Attempts are
// retried here and nowhere else (a conversation with clamd never retries by itself).
import type { ClamdError, ClamdErrorKind } from "../errors.ts";
import type { PoolSettings } from "./pool-settings.ts";
import type { PoolShared } from "./pool-shared.ts";

/** Failures of the conversation, not of the file: the endpoint is suspect and another may answer. */
export function isEndpointFailure(kind: ClamdErrorKind): boolean {
  return kind === "connect" || kind === "timeout" || kind === "protocol";
}

/** Below this much time left, starting another attempt is pointless. */
export const MIN_ATTEMPT_MS = 20;

/** Route.next(): no time is left for another attempt. */
export const OUT_OF_TIME = -1;
/** Route.next(): every round is used up (or no endpoint may be tried at all). */
export const NO_ENDPOINT = -2;

const TRIED = 1; // in this round
const FAILED = 2; // by this scan, in any round

/**
 * The route of one scan through the pool. Reusable: begin() per scan; holds one byte per endpoint and
 * allocates nothing per scan.
 */
export class Route {
  /** Attempts that ran (a conversation was started). */
  tries = 0;
  /** The last endpoint failure, for the final error. */
  last: ClamdError | undefined;
  private round = 0;
  private triedThisRound = 0;
  private deadline = Infinity;
  private compatible: Uint8Array;
  private readonly flags: Uint8Array;

  constructor(
    private readonly shared: PoolShared,
    private readonly settings: PoolSettings,
  ) {
    this.flags = new Uint8Array(settings.endpoints.length);
    this.compatible = new Uint8Array(settings.endpoints.length).fill(1);
  }

  /** A new scan until `deadline` (monotonic ms); `compatible[i]` is 1 for the endpoints that can carry it. */
  begin(deadline: number, compatible: Uint8Array): void {
    this.deadline = deadline;
    this.compatible = compatible;
    this.flags.fill(0);
    this.tries = 0;
    this.last = undefined;
    this.round = 0;
    this.triedThisRound = 0;
  }

  /** The endpoint of the next attempt, or OUT_OF_TIME, or NO_ENDPOINT. */
  next(now: number): number {
    for (;;) {
      if (this.deadline - now < MIN_ATTEMPT_MS) return OUT_OF_TIME;
      const i = this.pick(now);
      if (i >= 0) {
        this.flags[i]! |= TRIED;
        this.triedThisRound++;
        if (this.tries++ > 0) this.shared.countFailover();
        return i;
      }
      if (this.triedThisRound === 0 || ++this.round > this.settings.retries) return NO_ENDPOINT;
      // A retry round (OnAccessRetryAttempts): every endpoint may be tried again.
      for (let k = 0; k < this.flags.length; k++) this.flags[k]! &= ~TRIED;
      this.triedThisRound = 0;
    }
  }

  /** The attempt on `i` failed in a way that makes the endpoint suspect: counted, marked down, not tried again this round. */
  failed(i: number, error: ClamdError, now: number): void {
    this.shared.countFailure(i, error.kind);
    this.shared.markDown(i, error.kind, now);
    this.flags[i]! |= FAILED;
    this.last = error;
  }

  /**
   * The live endpoint not yet tried in this round with the fewest scans in flight; ties go round-robin.
   * Down endpoints are candidates too (after the live ones) when no checker runs, and in a retry round
   * for the endpoints this scan itself saw fail. When every endpoint is down, those that failed fast
   * (refused, closed: not a timeout) are tried anyway: a clamd that just restarted answers at once, and
   * waiting for the next health PING would leave opens to the error policy meanwhile. A silent one is not
   * retried per scan, or every open would wait out its timeout.
   */
  private pick(now: number): number {
    const n = this.flags.length;
    const shared = this.shared;
    const trustMarks = shared.supervised(this.settings.healthIntervalMs, now);
    let lastResort = false;
    if (trustMarks) {
      let anyUp = false;
      for (let i = 0; i < n && !anyUp; i++) anyUp = shared.isUp(i);
      lastResort = !anyUp;
    }
    const offset = shared.nextTurn() % n;
    let best = -1;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (offset + k) % n;
      if (this.compatible[i] === 0 || this.flags[i]! & TRIED) continue;
      const up = shared.isUp(i);
      const retrying = this.round > 0 && (this.flags[i]! & FAILED) !== 0;
      const fastFailure = lastResort && shared.lastKind(i) !== "timeout";
      if (!up && trustMarks && !retrying && !fastFailure) continue;
      const score = shared.inFlight(i) + (up ? 0 : 1_000_000);
      if (score < bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return best;
  }
}
