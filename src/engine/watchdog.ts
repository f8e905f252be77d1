// The watchdog: every permission event gets an answer by its deadline. Events still queued or scanning
// past OnAccessCurlTimeout × (retries + 1) plus a margin are answered by the error policy; the scanner
// that owns them still closes their fd. Runs on the main thread, which never blocks.
import { ResponseWriter } from "../../ffi/fanotify.ts";
import type { Counters } from "./counters.ts";
import { EventRing, SlotFlag, SlotState } from "./ring.ts";

export class Watchdog {
  private readonly responder: ResponseWriter;
  constructor(
    private readonly ring: EventRing,
    private readonly counters: Counters,
    group: number,
    private readonly deadlineMs: number,
    private readonly lateResponse: number,
  ) {
    this.responder = new ResponseWriter(group);
  }

  /** Answers every pending permission event older than the deadline; returns how many. */
  tick(now: number): number {
    return this.answerWhere((enqueuedAt) => now - enqueuedAt > this.deadlineMs, this.lateResponse, "watchdogAnswered");
  }

  /** Shutdown: answers every pending permission event with `response`. */
  answerAll(response: number): number {
    return this.answerWhere(() => true, response, null);
  }

  /** Age in ms of the oldest pending permission event (0 when none): the status interface shows it. */
  oldestPendingMs(now: number): number {
    let oldest = 0;
    for (let slot = 0; slot < this.ring.capacity; slot++) {
      const st = this.ring.state(slot);
      if ((st === SlotState.QUEUED || st === SlotState.SCANNING) && this.ring.flags(slot) & SlotFlag.PERM) {
        oldest = Math.max(oldest, now - this.ring.enqueued(slot));
      }
    }
    return oldest;
  }

  private answerWhere(late: (enqueuedAt: number) => boolean, response: number, counter: "watchdogAnswered" | null): number {
    const ring = this.ring;
    let answered = 0;
    for (let slot = 0; slot < ring.capacity; slot++) {
      const gen = ring.generation(slot);
      const st = ring.state(slot);
      if (st !== SlotState.QUEUED && st !== SlotState.SCANNING) continue;
      if (!(ring.flags(slot) & SlotFlag.PERM) || !late(ring.enqueued(slot))) continue;
      if (!ring.claimAnswer(slot, st)) continue;
      // Claimed: the slot cannot change hands now. If it took a new event between the reads above and the
      // claim, that event is not ours to answer.
      if (ring.generation(slot) !== gen) {
        ring.unclaim(slot, st);
        continue;
      }
      this.responder.respond(ring.fd(slot), response);
      ring.answered(slot);
      if (counter) this.counters.count(counter);
      answered++;
    }
    return answered;
  }
}
