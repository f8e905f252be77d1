// One request at a time, waiting for its outcome: a capacity-1 multiplexer and its own short poll loop,
// for the callers that have nothing else to do meanwhile (CLI --ping/--version, the start-up probe,
// setup). The same engine as the many-in-flight scanners: one implementation of the protocol over sockets.
import { PollSet } from "../../ffi/poll.ts";
import type { ClamdError } from "../errors.ts";
import type { Request } from "./conversation.ts";
import { ClamdMultiplexer, type RequestOutcome } from "./multiplexer.ts";
import type { PoolSettings } from "./pool-settings.ts";
import type { ScanOutcome } from "./types.ts";

/** Waits at most this long in one poll() when nothing says how long: a guard against a stall, never reached in practice. */
const MAX_WAIT_MS = 1000;

export class BlockingRunner {
  private readonly set = new PollSet(1);
  private readonly mux: ClamdMultiplexer;
  private pending = false;
  private scanOutcome: ScanOutcome | undefined;
  private requestOutcome: RequestOutcome | undefined;
  /** The endpoint (index) that gave the last outcome; -1 when none was tried. */
  endpoint = -1;
  /** SO_PEERCRED pid seen on the last unix connection; undefined when unknown. */
  peerPid: number | undefined;

  constructor(pool: PoolSettings) {
    this.mux = new ClamdMultiplexer({
      pool,
      // Never read: every request here is given outright (submitRequest), none goes by the table.
      modes: pool.endpoints.map(() => "stream"),
      capacity: 1,
      onDone: (_token, outcome, endpoint) => {
        this.scanOutcome = outcome;
        this.endpoint = endpoint;
        this.pending = false;
      },
      onReply: (_token, outcome, endpoint) => {
        this.requestOutcome = outcome;
        this.endpoint = endpoint;
        this.pending = false;
      },
      onPeerPid: (_endpoint, pid) => {
        this.peerPid = pid;
      },
    });
  }

  /** A scan with the request given outright (fildes or instream). */
  scan(request: Request, fd: number, deadline: number): ScanOutcome {
    this.pending = true;
    this.mux.submitRequest(0, request, fd, deadline);
    this.run();
    return this.scanOutcome!;
  }

  /** PING or VERSION: the reply text; throws the ClamdError after the retries. */
  request(request: Request, deadline: number): string {
    this.pending = true;
    this.peerPid = undefined;
    this.mux.submitRequest(0, request, -1, deadline);
    this.run();
    const outcome = this.requestOutcome!;
    if (!outcome.ok) throw outcome.error satisfies ClamdError;
    return outcome.reply;
  }

  private run(): void {
    while (this.pending) {
      const n = this.mux.prepare(this.set, 0);
      const t = this.mux.timeoutMs();
      this.set.wait(t < 0 ? MAX_WAIT_MS : Math.min(t, MAX_WAIT_MS), n);
      this.mux.dispatch(this.set, 0, n);
    }
  }
}
