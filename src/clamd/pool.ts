// The blocking pool for scanner Workers that scan one file at a time: each call waits for its outcome
// (src/clamd/blocking.ts) while the multiplexer picks the endpoint, fails over and retries. Threads: the
// main thread calls createPoolSettings() once and posts the settings to each Worker, which builds
// `new ClamdPool(settings)`; the SharedArrayBuffer inside is shared, not copied.
import { monotonicMs } from "../../ffi/libc.ts";
import { BlockingRunner } from "./blocking.ts";
import { Request } from "./conversation.ts";
import type { PoolSettings } from "./pool-settings.ts";
import type { ScanOutcome } from "./types.ts";

// The engine imports these from here until its scanners use the multiplexer (src/clamd/multiplexer.ts).
export { createPoolSettings, type PoolOptions, type PoolSettings } from "./pool-settings.ts";
export { poolHealth, startHealthChecks, type EndpointHealth, type HealthChange, type HealthChecker } from "./health.ts";
export type { PoolCounters, PoolScanMode } from "./pool-shared.ts";

const encoder = new TextEncoder();

/**
 * Never throws for clamd's sake: every method returns a ScanOutcome, an error outcome when no endpoint
 * could answer within the scan deadline (settings.deadlineMs from the call).
 */
export class ClamdPool {
  readonly settings: PoolSettings;
  private readonly runner: BlockingRunner;

  constructor(settings: PoolSettings) {
    this.settings = settings;
    // The agent's table: descriptors to local clamds, contents to remote ones.
    this.runner = new BlockingRunner(
      settings,
      settings.endpoints.map((e) => (e.kind === "unix" ? "fdpass" : "stream")),
    );
  }

  /** FILDES on unix endpoints, INSTREAM on TCP and TLS endpoints (the modes table). */
  scanFd(fd: number): ScanOutcome {
    return this.runner.scanByTable(fd, monotonicMs() + this.settings.deadlineMs);
  }

  /** INSTREAM: works with every endpoint kind. */
  scanStream(fd: number): ScanOutcome {
    return this.runner.scan(Request.instream, fd, monotonicMs() + this.settings.deadlineMs);
  }

  /** CONTSCAN/ALLMATCHSCAN by path: clamd opens the file itself (for clamds that see this filesystem). */
  scanPath(path: string | Uint8Array, opts: { allmatch?: boolean } = {}): ScanOutcome {
    const bytes = typeof path === "string" ? encoder.encode(path) : path;
    return this.runner.scan(opts.allmatch ? Request.allmatch : Request.contscan, -1, monotonicMs() + this.settings.deadlineMs, bytes);
  }
}
