// What onacc does to stay small once protection is up (measured in bench/; see README "Figures"): the
// Workers run with a reluctant JIT (their hot paths are syscalls, not JavaScript worth optimising, and every
// optimising tier touches megabytes of compiler code and allocates code memory), and the main thread hands
// back the executable pages only start-up needed and collects start-up garbage.
import { pageOutExecutable } from "../../ffi/memory.ts";

/** JavaScriptCore's tier-up thresholds are scaled by this on the engine's threads. */
export const ENGINE_JIT_POLICY = 1000;

/** For a Worker of the engine, before its loop. */
export function steadyThread(): void {
  Bun.unsafe.setJITPolicy(ENGINE_JIT_POLICY);
}

/** For the main thread, once the Workers are running and the marks are placed. Returns the bytes paged out. */
export function releaseStartup(): number {
  Bun.gc(true);
  return pageOutExecutable();
}
