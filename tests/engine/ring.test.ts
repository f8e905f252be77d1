import { describe, expect, test } from "bun:test";
import { Counters } from "../../src/engine/counters.ts";
import { EventRing, SlotFlag, SlotState } from "../../src/engine/ring.ts";

describe("EventRing", () => {
  test("hands each queued event to exactly one taker, in order", () => {
    const ring = EventRing.create(8);
    for (let i = 0; i < 5; i++) expect(ring.push(100 + i, 1, SlotFlag.PERM, i)).toBe(true);
    expect(ring.depth()).toBe(5);
    const fds: number[] = [];
    for (let i = 0; i < 5; i++) {
      const slot = ring.tryTake();
      expect(ring.startScan(slot)).toBe(true);
      fds.push(ring.fd(slot));
    }
    expect(fds).toEqual([100, 101, 102, 103, 104]);
    expect(ring.tryTake()).toBe(-1);
  });

  test("push() reports a full ring instead of overwriting a busy slot", () => {
    const ring = EventRing.create(4);
    for (let i = 0; i < 4; i++) expect(ring.push(i, 1, SlotFlag.PERM, 0)).toBe(true);
    expect(ring.push(99, 1, SlotFlag.PERM, 0)).toBe(false);
    const slot = ring.tryTake();
    expect(ring.startScan(slot)).toBe(true);
    // Taken but still scanning: its slot is not free yet.
    expect(ring.push(99, 1, SlotFlag.PERM, 0)).toBe(false);
    const closed: number[] = [];
    ring.release(slot, (fd) => closed.push(fd));
    expect(closed).toEqual([0]);
    expect(ring.push(99, 1, SlotFlag.PERM, 0)).toBe(true);
  });

  test("a slow scan holds only its own slot: the others keep turning over", () => {
    const ring = EventRing.create(4);
    for (let i = 0; i < 4; i++) expect(ring.push(i, 1, SlotFlag.PERM, 0)).toBe(true);
    const slow = ring.tryTake();
    expect(ring.startScan(slow)).toBe(true); // held for the rest of the test
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 3; i++) {
        const slot = ring.tryTake();
        expect(slot).not.toBe(slow);
        expect(ring.startScan(slot)).toBe(true);
        ring.release(slot, () => {});
      }
      for (let i = 0; i < 3; i++) expect(ring.push(100 + i, 1, SlotFlag.PERM, 0)).toBe(true);
      expect(ring.push(999, 1, SlotFlag.PERM, 0)).toBe(false); // every slot in use now
    }
    expect(ring.inUse()).toBe(4);
  });

  test("each reuse of a slot bumps its generation", () => {
    const ring = EventRing.create(2);
    ring.push(1, 1, 0, 0);
    const slot = ring.tryTake();
    const g = ring.generation(slot);
    ring.startScan(slot);
    ring.release(slot, () => {});
    ring.push(2, 1, 0, 0);
    ring.push(3, 1, 0, 0);
    const gens = [ring.generation(0), ring.generation(1)];
    expect(gens).toContain(g + 1);
  });

  test("a slot answered by the watchdog while queued is not scanned, but its fd is closed once", () => {
    const ring = EventRing.create(4);
    ring.push(7, 1, SlotFlag.PERM, 0);
    const slot = 0;
    expect(ring.claimAnswer(slot, SlotState.QUEUED)).toBe(true);
    ring.answered(slot);
    const taken = ring.tryTake();
    expect(taken).toBe(slot);
    expect(ring.startScan(taken)).toBe(false);
    const closed: number[] = [];
    ring.release(taken, (fd) => closed.push(fd));
    expect(closed).toEqual([7]);
    expect(ring.state(slot)).toBe(SlotState.FREE);
  });

  test("only one of scanner and watchdog gets to answer a scanning slot", () => {
    const ring = EventRing.create(4);
    ring.push(7, 1, SlotFlag.PERM, 0);
    const slot = ring.tryTake();
    ring.startScan(slot);
    expect(ring.claimAnswer(slot, SlotState.SCANNING)).toBe(true);
    ring.answered(slot);
    expect(ring.claimAnswer(slot, SlotState.SCANNING)).toBe(false);
  });

  test("counters survive being read from another view of the same memory", () => {
    const counters = Counters.create();
    const other = Counters.attach(counters.sab);
    counters.count("denied", 3);
    other.count("denied");
    expect(counters.get("denied")).toBe(4);
  });

  test("several Worker consumers take every event exactly once", async () => {
    const ring = EventRing.create(64);
    const src = `
      import { EventRing } from ${JSON.stringify(new URL("../../src/engine/ring.ts", import.meta.url).pathname)};
      self.onmessage = (e) => {
        const ring = EventRing.attach(e.data.ring);
        const stop = new Int32Array(e.data.stop);
        const got = [];
        for (;;) {
          const slot = ring.tryTake();
          if (slot < 0) {
            if (Atomics.load(stop, 0)) break;
            continue;
          }
          if (!ring.startScan(slot)) continue;
          got.push(ring.fd(slot));
          ring.release(slot, () => {});
        }
        postMessage(got);
      };`;
    const file = `/tmp/onacc-ring-worker-${process.pid}.ts`;
    await Bun.write(file, src);
    const workers = Array.from({ length: 3 }, () => new Worker(file));
    const results = workers.map((w) => new Promise<number[]>((r) => (w.onmessage = (e) => r(e.data))));
    const stop = new SharedArrayBuffer(4);
    for (const w of workers) w.postMessage({ ring: ring.buffers, stop });
    let pushed = 0;
    while (pushed < 2000) {
      if (ring.push(pushed, 1, 0, 0)) pushed++;
      else await Bun.sleep(0);
    }
    while (ring.depth() > 0) await Bun.sleep(5);
    await Bun.sleep(50);
    Atomics.store(new Int32Array(stop), 0, 1);
    const all = (await Promise.all(results)).flat().sort((a, b) => a - b);
    for (const w of workers) w.terminate();
    await Bun.file(file).delete();
    expect(all.length).toBe(2000);
    expect(all).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});
