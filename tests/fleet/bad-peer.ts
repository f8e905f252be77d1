// Worker entry: peers that misbehave at the byte level, on their own thread so they keep running while the
// synchronous client blocks the test's thread. "flood" answers any request with endless bytes and no NUL;
// "long" answers with one 100 KiB record, NUL-terminated.
declare const self: Worker;

export interface BadPeerReady {
  flood: number;
  long: number;
}

const servers: { stop(closeActive?: boolean): void }[] = [];
const chunk = Buffer.alloc(256 * 1024, "A");

self.onmessage = (e: MessageEvent<"start" | "stop">) => {
  if (e.data === "stop") {
    for (const s of servers) s.stop(true);
    self.postMessage("stopped");
    return;
  }
  const flood = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s) {
        // Keep the socket full until the client goes away.
        const pump = () => {
          while (s.write(chunk) === chunk.length) {
            /* the kernel took it all: go on */
          }
        };
        pump();
        (s as unknown as { data: () => void }).data = pump;
      },
      drain(s) {
        (s as unknown as { data?: () => void }).data?.();
      },
    },
  });
  const long = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s) {
        s.write(`stream: ${"B".repeat(100 * 1024)} FOUND\0`);
        s.end();
      },
    },
  });
  servers.push(flood, long);
  self.postMessage({ flood: flood.port, long: long.port } satisfies BadPeerReady);
};
