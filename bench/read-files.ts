// Helper of cache-bench.ts and all.ts, run as its own process so an agent that hangs an open cannot hang
// the benchmark: opens and reads to the end every file listed in argv[2] (one path per line) and prints
// the per-open latencies in ms as one JSON array — or, with argv[3] = "--errors", {ms, errors} where
// errors[i] is the open's error code ("" when it opened). Exit code 3 when an open failed.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

const buf = Buffer.alloc(1 << 20);
const times: number[] = [];
const errors: string[] = [];
let failed = 0;
for (const f of readFileSync(process.argv[2]!, "utf8").split("\n")) {
  if (!f) continue;
  const t0 = performance.now();
  let error = "";
  try {
    const fd = openSync(f, "r");
    while (readSync(fd, buf, 0, buf.length, null) > 0) {
      /* to the end: clamonacc's FAN_ACCESS_PERM costs per read */
    }
    closeSync(fd);
  } catch (e) {
    failed++;
    error = (e as NodeJS.ErrnoException).code ?? String(e);
  }
  times.push(performance.now() - t0);
  errors.push(error);
}
process.stdout.write(JSON.stringify(process.argv[3] === "--errors" ? { ms: times, errors } : times));
process.exit(failed ? 3 : 0);
