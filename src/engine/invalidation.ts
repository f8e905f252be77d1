// When the verdict caches must forget: clamd's signatures changed. Three signals, because none is
// enough alone: clamd's VERSION reply (carries the database version with official databases), changes in
// clamd's DatabaseDirectory on this host (custom databases leave VERSION unchanged), and SIGUSR2.
import { existsSync, watch, type FSWatcher } from "node:fs";
import { requestAsync } from "../clamd/async-request.ts";
import type { ClamdEndpoint } from "../config/types.ts";

export interface InvalidationOptions {
  endpoint: ClamdEndpoint;
  /** clamd's DatabaseDirectory when it is on this host. */
  databaseDirectory?: string;
  timeoutMs: number;
  /** VERSION poll interval. */
  pollMs?: number;
  /**
   * After the database directory changes, nothing is cached for this long: clamd reloads in the
   * background (freshclam tells it to), and a scan made with the old signatures meanwhile must not be
   * remembered as clean. The caches are flushed again when the window ends.
   */
  settleMs?: number;
  flush(reason: string): void;
  suspendCaching(on: boolean): void;
  /** clamd's PID as seen on each poll of a local clamd (it changes when clamd restarts). */
  clamdPid?(pid: number): void;
  warn(message: string): void;
}

export class Invalidation {
  private version: string | undefined;
  private poller: ReturnType<typeof setInterval> | undefined;
  private watcher: FSWatcher | undefined;
  private settleTimer: ReturnType<typeof setTimeout> | undefined;
  private polling = false;

  constructor(private readonly o: InvalidationOptions) {}

  start(): void {
    const pollMs = this.o.pollMs ?? 5000;
    void this.pollVersion();
    this.poller = setInterval(() => void this.pollVersion(), pollMs);
    const dir = this.o.databaseDirectory;
    if (dir && existsSync(dir)) {
      try {
        this.watcher = watch(dir, () => this.databaseChanged());
      } catch (err) {
        this.o.warn(`cannot watch DatabaseDirectory "${dir}" for signature updates: ${(err as Error).message}; relying on clamd's VERSION`);
      }
    }
  }

  stop(): void {
    clearInterval(this.poller);
    clearTimeout(this.settleTimer);
    this.watcher?.close();
  }

  /** SIGUSR2 or a control request. */
  flushNow(reason: string): void {
    this.o.flush(reason);
  }

  private databaseChanged(): void {
    const settleMs = this.o.settleMs ?? 60_000;
    if (this.settleTimer === undefined) {
      this.o.suspendCaching(true);
      this.o.flush("clamd's database directory changed");
    }
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      this.o.flush("database change settled");
      this.o.suspendCaching(false);
    }, settleMs);
  }

  private async pollVersion(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const v = await requestAsync(this.o.endpoint, "zVERSION\0", this.o.timeoutMs, this.o.clamdPid);
      if (this.version !== undefined && v !== this.version) this.o.flush(`clamd's version changed: ${v}`);
      this.version = v;
    } catch {
      // clamd unreachable: scans report it; a restarted clamd may have new signatures, so forget the old
      // version and compare afresh once it answers.
      if (this.version !== undefined) this.o.flush("clamd did not answer VERSION (it may be reloading)");
      this.version = undefined;
    } finally {
      this.polling = false;
    }
  }
}
