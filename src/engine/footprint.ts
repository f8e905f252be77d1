// What onacc does to stay small once protection is up (measured in bench/; see README "Figures"): every
// thread runs with a reluctant JIT, except the reader during its start-up walk (the hot paths are syscalls,
// not JavaScript worth optimising, and every JIT tier touches megabytes of compiler code and allocates code
// memory: after 20,000 scans the executable's resident code was 22 MiB with a scale of 1000 on the Workers
// only, 16 MiB with 100,000 on every thread, at the same scan rate); the main thread hands back the
// executable pages only start-up needed, and the engine's threads collect their garbage as they go.
import { pageOutExecutable } from "../../ffi/memory.ts";
import { ENGINE_JIT_POLICY } from "./jit-policy.ts";

/** For a Worker of the engine before its loop, and for the main thread (`bun build --compile` bakes the same
 * scale into dist/onacc with --compile-jit-policy; this covers `bun src/main.ts`). */
export function steadyThread(): void {
  Bun.unsafe.setJITPolicy(ENGINE_JIT_POLICY);
}

/**
 * For an engine thread about to do its one heavy job, the start-up walk: 100,000 directories took 1.46 s
 * in the interpreter and 1.12 s with the normal JIT (bench/ddd-bench.ts). afterStartupBurst() ends it.
 */
export function startupBurst(): void {
  Bun.unsafe.setJITPolicy(1);
}

/**
 * The reluctant JIT again, and the walk's garbage collected now: at 100,000 directories the reader's heap
 * otherwise kept 28 MiB of it resident for good (8 ms to collect).
 */
export function afterStartupBurst(): void {
  steadyThread();
  Bun.gc(true);
}

/** For the main thread, once the Workers are running and the marks are placed. Returns the bytes paged out. */
export function releaseStartup(): number {
  steadyThread();
  Bun.gc(true);
  return pageOutExecutable();
}

/**
 * The reader collects its garbage once this many events came in and the kernel's queue is empty (or after
 * GC_BACKSTOP_FACTOR times as many, for a queue that never empties). Left to itself its heap kept growing in
 * the load test (bench/load-test.ts: 18.7 → 44.8 MiB anonymous over 60 s); with this it stayed at 22–29.
 * (The scanner does the same every 2,000 scans and when idle: scanner.ts.)
 */
export const GC_EVERY_EVENTS = 2000;
export const GC_BACKSTOP_FACTOR = 16;

/**
 * A collection on this thread (Bun.gc(false) skips only the eager sweep of a full collection: the thread
 * waits for the marking), so the reader calls it when no event is waiting.
 */
export function collectGarbage(): void {
  Bun.gc(false);
}
