// The whole test suite, as the README shows it (`bun run test`): builds dist/onacc (the engine tests run
// the compiled binary as a separate process), runs every test file serially with bun test, and ends with
// one plain line "N passed, N failed, N skipped" that CI reads.
import { existsSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const extra = process.argv.slice(2);

function run(cmd: string[]): number {
  const r = Bun.spawnSync(cmd, { cwd: root, stdio: ["inherit", "inherit", "inherit"] });
  return r.exitCode ?? 1;
}

if (existsSync(`${root}/src/main.ts`) && !process.env.ONACC_SKIP_BUILD) {
  if (run(["bun", "run", "build"]) !== 0) {
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

// bun test prints its summary on stderr; stream it through while counting.
// bunfig.toml cannot set the per-test timeout; engine tests start real processes and need more than 5 s.
const proc = Bun.spawn(["bun", "test", "--timeout", "60000", ...(extra.length ? extra : ["tests/"])], {
  cwd: root,
  stdout: "pipe",
  stderr: "pipe",
  env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" },
});
const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
const seen = { pass: false, fail: false };

async function pump(stream: ReadableStream<Uint8Array>, sink: NodeJS.WriteStream) {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    sink.write(chunk);
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const m = /^\s*(\d+) (pass|fail|skip|todo)$/.exec(line);
      if (m) {
        const kind = m[2] as keyof typeof counts;
        counts[kind] = Number(m[1]);
        if (kind === "pass" || kind === "fail") seen[kind] = true;
      }
    }
  }
}

await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)]);
const code = await proc.exited;
// A runner that died before its summary counts as one failure, never as a pass.
if (!seen.pass && !seen.fail) counts.fail = Math.max(counts.fail, 1);
if (code !== 0 && counts.fail === 0) counts.fail = 1;
console.log(`${counts.pass} passed, ${counts.fail} failed, ${counts.skip + counts.todo} skipped`);
process.exit(counts.fail > 0 ? 1 : 0);
