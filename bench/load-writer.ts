// Helper of load-test.ts: the writer. Every second, appends a byte to 50 random files of the list argv[2]
// (never an EICAR one: every 100th), so they are scanned again on their next open; stops after argv[3] ms
// and prints the number of writes. Its own process, so a write that waits on the agent never stalls the test.
import { appendFileSync, readFileSync } from "node:fs";

const files = readFileSync(process.argv[2]!, "utf8").split("\n").filter(Boolean);
const until = Date.now() + Number(process.argv[3]);
let writes = 0;
while (Date.now() < until) {
  await Bun.sleep(1000);
  for (let k = 0; k < 50; k++) {
    const i = 1 + Math.floor(Math.random() * (files.length - 1));
    if (i % 100 !== 0) {
      appendFileSync(files[i]!, "x");
      writes++;
    }
  }
}
process.stdout.write(String(writes));
