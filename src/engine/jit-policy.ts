// The engine's JIT tier-up scale, on its own so the build scripts can bake it into dist/onacc
// (`--compile-jit-policy`) without loading anything that binds libc. Why this value: footprint.ts.

/** JavaScriptCore's tier-up thresholds are scaled by this on the engine's threads. */
export const ENGINE_JIT_POLICY = 100_000;
