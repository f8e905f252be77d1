// `bun run build`: one self-contained executable, dist/onacc, with the Worker entry files compiled in.
// Workers resolve relative to src/main.ts, so every Worker entry is listed as an extra entrypoint.
import { mkdirSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const entrypoints = ["src/main.ts", "src/workers/reader.ts", "src/workers/scanner.ts", "src/workers/dirwatch.ts"];
mkdirSync(`${root}/dist`, { recursive: true });

const cmd = ["bun", "build", "--compile", "--minify", ...entrypoints, "--outfile", "dist/onacc"];
const r = Bun.spawnSync(cmd, { cwd: root, stdout: "inherit", stderr: "inherit" });
process.exit(r.exitCode ?? 1);
