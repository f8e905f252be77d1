// Keeps repeated problems (clamd down, ring full, queue overflow) to one log line per interval, with a
// count of what was suppressed, so an outage cannot flood the log.

export class RateLimit {
  private last = -Infinity;
  private suppressed = 0;
  constructor(private readonly intervalMs: number) {}

  /** Returns null to stay quiet, or how many occurrences were suppressed since the last report. */
  hit(now: number): number | null {
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return null;
    }
    this.last = now;
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}

export function withSuppressed(message: string, suppressed: number): string {
  return suppressed > 0 ? `${message} (and ${suppressed} more like it since the last report)` : message;
}
