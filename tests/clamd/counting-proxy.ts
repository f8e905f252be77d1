// Worker entry: a TCP proxy in front of the test clamd that counts the connections made through it, so a
// test can see from outside the client how many connections a session used.
import type { Socket } from "bun";

declare const self: Worker;

export interface ProxyRequest {
  targetPort: number;
  /** Index 0: connections accepted so far. */
  connections: Int32Array;
}

/** One direction of a proxied connection: writes everything, keeping what the socket did not take yet. */
class Outbox {
  socket: Socket<unknown> | undefined;
  private pending: Uint8Array[] = [];
  private ending = false;

  write(chunk: Uint8Array): void {
    this.pending.push(new Uint8Array(chunk));
    this.flush();
  }

  end(): void {
    this.ending = true;
    this.flush();
  }

  flush(): void {
    const s = this.socket;
    if (!s) return;
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = s.write(head);
      if (n < head.length) {
        this.pending[0] = head.subarray(Math.max(0, n));
        return; // the rest goes out on drain
      }
      this.pending.shift();
    }
    if (this.ending) s.end();
  }
}

interface Pair {
  toClamd: Outbox;
  toClient: Outbox;
}

let server: { stop(closeActive?: boolean): void; port: number } | undefined;

self.onmessage = (e: MessageEvent<ProxyRequest | "stop">) => {
  if (e.data === "stop") {
    server?.stop(true);
    self.postMessage("stopped");
    return;
  }
  const { targetPort, connections } = e.data;
  server = Bun.listen<Pair>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        Atomics.add(connections, 0, 1);
        const pair: Pair = { toClamd: new Outbox(), toClient: new Outbox() };
        pair.toClient.socket = client as Socket<unknown>;
        client.data = pair;
        void Bun.connect({
          hostname: "127.0.0.1",
          port: targetPort,
          socket: {
            open(up) {
              pair.toClamd.socket = up as Socket<unknown>;
              pair.toClamd.flush();
            },
            data: (_up, chunk) => pair.toClient.write(chunk),
            drain: () => pair.toClamd.flush(),
            close: () => pair.toClient.end(),
            error: () => pair.toClient.end(),
          },
        });
      },
      data: (client, chunk) => client.data.toClamd.write(chunk),
      drain: (client) => client.data.toClient.flush(),
      close: (client) => client.data.toClamd.end(),
    },
  });
  self.postMessage({ port: server.port });
};
