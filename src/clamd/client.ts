// A synchronous clamd client for one endpoint: PING, VERSION, clamd's PID, and scans by descriptor or
// stream, each waiting for its outcome (src/clamd/blocking.ts). Failed attempts are retried by the pool's
// one retry layer (src/clamd/failover.ts); errors of scans are outcomes, errors of PING/VERSION are thrown.
import type { ClamdEndpoint } from "../config/types.ts";
import { BlockingRunner } from "./blocking.ts";
import { Request } from "./conversation.ts";
import { createPoolSettings } from "./pool-settings.ts";
import type { ScanOutcome } from "./types.ts";

export interface ClamdClientOptions {
  endpoint: ClamdEndpoint;
  /** OnAccessCurlTimeout: bound on connecting, on each wait to send, and on waiting for each reply record. */
  timeoutMs: number;
  /** Absolute bound (monotonic ms) on each request, retries included, whatever the per-step timeouts allow. */
  deadlineAt?: number;
  /** OnAccessRetryAttempts: extra attempts after a transport failure or timeout. */
  retries: number;
  /** StreamMaxLength in bytes, 0 = no limit: INSTREAM chunks never exceed it. */
  streamMaxLength: number;
}

export class ClamdClient {
  readonly endpoint: ClamdEndpoint;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly streamMaxLength: number;
  private readonly deadlineAt: number;
  private readonly runner: BlockingRunner;

  /** Throws RangeError for a timeout ≤ 0, negative retries or StreamMaxLength. */
  constructor(opts: ClamdClientOptions) {
    const pool = createPoolSettings({ endpoints: [opts.endpoint], timeoutMs: opts.timeoutMs, retries: opts.retries, streamMaxLength: opts.streamMaxLength });
    this.endpoint = opts.endpoint;
    this.timeoutMs = opts.timeoutMs;
    this.retries = opts.retries;
    this.streamMaxLength = opts.streamMaxLength;
    this.deadlineAt = opts.deadlineAt ?? Infinity;
    this.runner = new BlockingRunner(pool);
  }

  /** zPING → "PONG"; throws ClamdError after the configured retries. */
  ping(): void {
    this.runner.request(Request.ping, this.deadlineAt);
  }

  /** zVERSION: "ClamAV 1.4.6", or "ClamAV 1.4.6/27000/<date>" when clamd has an official database. */
  version(): string {
    return this.runner.request(Request.version, this.deadlineAt);
  }

  /**
   * clamd's PID from SO_PEERCRED on a unix connection (the engine never scans it, so clamd opening a file
   * cannot wait on onacc). undefined for TCP and TLS, and when not known: PID 0 (another PID namespace) or
   * 1 (systemd's socket activation holds the listener). Throws ClamdError when clamd cannot be reached.
   */
  peerPid(): number | undefined {
    if (this.endpoint.kind !== "unix") return undefined;
    // A PING makes the visit an ordinary, complete conversation for clamd.
    this.runner.request(Request.ping, this.deadlineAt);
    return this.runner.peerPid;
  }

  /** zFILDES: passes the descriptor itself (unix sockets only); clamd reads the file through it. */
  scanFd(fd: number): ScanOutcome {
    return this.runner.scan(Request.fildes, fd, this.deadlineAt);
  }

  /** zINSTREAM: the file's contents, read with pread64 from offset 0; works for any fd and any name. */
  scanStream(fd: number): ScanOutcome {
    return this.runner.scan(Request.instream, fd, this.deadlineAt);
  }
}
