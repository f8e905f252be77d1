// The watchdog answers permission events that outlive their deadline, exactly once, and leaves the fd to
// its owner. A FIFO stands in for the fanotify group so the responses it writes can be read back.
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, constants, openSync, readSync, rmSync } from "node:fs";
import { FAN_ALLOW, FAN_DENY } from "../../ffi/fanotify.ts";
import { Counters } from "../../src/engine/counters.ts";
import { EventRing, SlotFlag, SlotState } from "../../src/engine/ring.ts";
import { Watchdog } from "../../src/engine/watchdog.ts";

const fifo = `/tmp/onacc-watchdog-${process.pid}`;
let fd = -1;

function group(): number {
  rmSync(fifo, { force: true });
  Bun.spawnSync(["mkfifo", fifo]);
  fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  return fd;
}
afterEach(() => {
  if (fd >= 0) closeSync(fd);
  fd = -1;
  rmSync(fifo, { force: true });
});

/** The (fd, response) pairs written so far. */
function responses(): [number, number][] {
  const buf = Buffer.alloc(8 * 64);
  let n = 0;
  try {
    n = readSync(fd, buf, 0, buf.length, null);
  } catch {
    return [];
  }
  const out: [number, number][] = [];
  for (let i = 0; i + 8 <= n; i += 8) out.push([buf.readInt32LE(i), buf.readUInt32LE(i + 4)]);
  return out;
}

describe("Watchdog", () => {
  test("answers only permission events older than the deadline, with the error policy's response", () => {
    const ring = EventRing.create(8);
    const counters = Counters.create();
    const dog = new Watchdog(ring, counters, group(), 1000, FAN_DENY);
    ring.push(40, 1, SlotFlag.PERM, 0); // late, queued
    ring.push(41, 1, SlotFlag.PERM, 0); // late, being scanned
    ring.push(42, 1, SlotFlag.PERM, 4500); // not late yet
    ring.push(43, 1, 0, 0); // late but a notification: nobody waits on it
    expect(ring.startScan(ring.tryTake())).toBe(true);
    expect(dog.tick(5000)).toBe(2);
    expect(responses().sort()).toEqual([
      [40, FAN_DENY],
      [41, FAN_DENY],
    ]);
    expect(counters.get("watchdogAnswered")).toBe(2);
    // Each event is answered once: a second tick finds nothing new.
    expect(dog.tick(5000)).toBe(0);
  });

  test("a scanner finishing after the watchdog does not answer again, and still closes the fd once", () => {
    const ring = EventRing.create(4);
    const counters = Counters.create();
    const dog = new Watchdog(ring, counters, group(), 1000, FAN_ALLOW);
    ring.push(50, 1, SlotFlag.PERM, 0);
    const slot = ring.tryTake();
    expect(ring.startScan(slot)).toBe(true);
    dog.tick(2000);
    expect(ring.claimAnswer(slot, SlotState.SCANNING)).toBe(false);
    const closed: number[] = [];
    ring.release(slot, (f) => closed.push(f));
    expect(closed).toEqual([50]);
    expect(responses()).toEqual([[50, FAN_ALLOW]]);
  });

  test("answerAll() answers everything pending at shutdown; oldestPendingMs() reports the oldest", () => {
    const ring = EventRing.create(4);
    const counters = Counters.create();
    const dog = new Watchdog(ring, counters, group(), 60_000, FAN_DENY);
    ring.push(60, 1, SlotFlag.PERM, 100);
    ring.push(61, 1, SlotFlag.PERM, 900);
    expect(dog.oldestPendingMs(1000)).toBe(900);
    expect(dog.answerAll(FAN_ALLOW)).toBe(2);
    expect(responses()).toEqual([
      [60, FAN_ALLOW],
      [61, FAN_ALLOW],
    ]);
    expect(dog.oldestPendingMs(1000)).toBe(0);
  });
});
