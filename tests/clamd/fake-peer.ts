// Worker entry for the failure tests: tiny fake clamd peers that misbehave, on their own thread so they keep
// running while the synchronous client blocks the test's thread. Counts accepted connections per peer.
declare const self: Worker;

export type PeerMode = "partial" | "hangup" | "garbage";

export interface FakePeerRequest {
  modes: PeerMode[];
  /** One counter per mode: connections accepted. */
  counts: Int32Array;
  /** A unix socket path for a "partial" peer too. */
  unixPath: string;
}

export interface FakePeerReady {
  ports: Record<PeerMode, number>;
}

const servers: { stop(closeActive?: boolean): void }[] = [];

function behave(mode: PeerMode, index: number, counts: Int32Array) {
  return {
    open(s: { end(): void }) {
      Atomics.add(counts, index, 1);
      if (mode === "hangup") s.end();
    },
    data(s: { write(data: string): number; end(): void }) {
      // Answer the first bytes of any request, then misbehave.
      if (mode === "partial") s.write("stream: Onacc.Test.EIC");
      if (mode === "garbage") s.write("HELLO THERE\0");
      s.end();
    },
  };
}

self.onmessage = (e: MessageEvent<FakePeerRequest | "stop">) => {
  if (e.data === "stop") {
    for (const s of servers) s.stop(true);
    self.postMessage("stopped");
    return;
  }
  const { modes, counts, unixPath } = e.data;
  const ports = {} as Record<PeerMode, number>;
  modes.forEach((mode, i) => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: behave(mode, i, counts) });
    servers.push(server);
    ports[mode] = server.port;
  });
  servers.push(Bun.listen({ unix: unixPath, socket: behave("partial", modes.length, counts) }));
  self.postMessage({ ports } satisfies FakePeerReady);
};
