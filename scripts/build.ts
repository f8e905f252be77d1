// `bun run build`: one self-contained executable, dist/onacc, with the Worker entry files compiled in.
// Workers resolve relative to src/main.ts, so every Worker entry is listed as an extra entrypoint.
import { mkdirSync } from "node:fs";
import { ENGINE_JIT_POLICY } from "../src/engine/jit-policy.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const ENTRYPOINTS = ["src/main.ts", "src/workers/reader.ts", "src/workers/scanner.ts"];
/** Start-up code runs once: the main thread starts with the engine's reluctant JIT (src/engine/footprint.ts). */
export const COMPILE_FLAGS = ["--compile", "--minify", `--compile-jit-policy=${ENGINE_JIT_POLICY}`];

if (import.meta.main) {
  mkdirSync(`${ROOT}/dist`, { recursive: true });
  const cmd = ["bun", "build", ...COMPILE_FLAGS, ...ENTRYPOINTS, "--outfile", "dist/onacc"];
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  process.exit(r.exitCode ?? 1);
}
