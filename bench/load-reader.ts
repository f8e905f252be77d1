// Helper of load-test.ts: opens random files from the list argv[2] until argv[3] ms have passed or
// argv[4] opens were made, then prints {opens, denied, latencies} as JSON. Its own process, so an open
// that waits on onacc never stalls the benchmark.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

const files = readFileSync(process.argv[2]!, "utf8").split("\n").filter(Boolean);
const until = Date.now() + Number(process.argv[3]);
const maxOpens = Number(process.argv[4]);
const buf = Buffer.alloc(64 * 1024);
const latencies: number[] = [];
let denied = 0;
let seed = Number(process.argv[5] ?? 1);
const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
while (Date.now() < until && latencies.length < maxOpens) {
  const f = files[Math.floor(rand() * files.length)]!;
  const t0 = performance.now();
  try {
    const fd = openSync(f, "r");
    readSync(fd, buf, 0, buf.length, 0);
    closeSync(fd);
  } catch {
    denied++;
  }
  latencies.push(performance.now() - t0);
}
process.stdout.write(JSON.stringify({ opens: latencies.length, denied, latencies }));
