// Endpoints without clamd: how they are described, which numeric addresses the synchronous client uses,
// and the one asynchronous host-name lookup at startup.
import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { describeEndpoint, parseIPv4, parseIPv6, resolveEndpoint, socketAddresses } from "../../src/clamd/address.ts";
import { AF_INET, AF_INET6, AF_UNIX } from "../../ffi/socket.ts";
import { ClamdError } from "../../src/errors.ts";

describe("describeEndpoint()", () => {
  test("shows unix sockets as unix:PATH and TCP as a URL with IPv6 in brackets", () => {
    expect(describeEndpoint({ kind: "unix", path: "/run/clamav/clamd.ctl" })).toBe("unix:/run/clamav/clamd.ctl");
    expect(describeEndpoint({ kind: "tcp", host: "127.0.0.1", port: 3310 })).toBe("tcp://127.0.0.1:3310");
    expect(describeEndpoint({ kind: "tcp", host: "::1", port: 3310 })).toBe("tcp://[::1]:3310");
    expect(describeEndpoint({ kind: "tcp", host: "clamd.example", port: 3310 })).toBe("tcp://clamd.example:3310");
  });
});

describe("numeric addresses", () => {
  test("parseIPv4() reads dotted quads and rejects anything else", () => {
    expect(parseIPv4("127.0.0.1")).toEqual(new Uint8Array([127, 0, 0, 1]));
    expect(parseIPv4("255.255.255.255")).toEqual(new Uint8Array([255, 255, 255, 255]));
    for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "a.b.c.d", "localhost", "::1"]) expect(parseIPv4(bad)).toBeUndefined();
  });

  test("parseIPv6() reads compressed, full, bracketed, scoped and IPv4-mapped forms", () => {
    const loop = new Uint8Array(16);
    loop[15] = 1;
    expect(parseIPv6("::1")).toEqual({ address: loop, scopeId: 0 });
    expect(parseIPv6("[::1]")).toEqual({ address: loop, scopeId: 0 });
    expect(parseIPv6("0:0:0:0:0:0:0:1")).toEqual({ address: loop, scopeId: 0 });
    expect(parseIPv6("::")?.address).toEqual(new Uint8Array(16));
    expect(Array.from(parseIPv6("2001:db8::ff00:42:8329")!.address)).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]);
    expect(Array.from(parseIPv6("::ffff:192.0.2.1")!.address.subarray(10))).toEqual([0xff, 0xff, 192, 0, 2, 1]);
    expect(parseIPv6("fe80::1%2")?.scopeId).toBe(2);
  });

  test("parseIPv6() rejects malformed text", () => {
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "g::1", "127.0.0.1", "localhost"]) {
      expect(parseIPv6(bad)).toBeUndefined();
    }
  });

  test("socketAddresses() maps each endpoint kind to the sockaddr family to connect", () => {
    expect(socketAddresses({ kind: "unix", path: "/x/clamd.sock" })).toEqual([{ family: AF_UNIX, path: new TextEncoder().encode("/x/clamd.sock") }]);
    expect(socketAddresses({ kind: "tcp", host: "127.0.0.1", port: 3310 })[0]).toMatchObject({ family: AF_INET, port: 3310 });
    expect(socketAddresses({ kind: "tcp", host: "::1", port: 3310 })[0]).toMatchObject({ family: AF_INET6, port: 3310 });
    expect(socketAddresses({ kind: "tcp", host: "localhost", port: 3310 }).map((a) => a.family)).toEqual([AF_INET, AF_INET6]);
  });

  test("socketAddresses() refuses an unresolved host name instead of resolving it synchronously", () => {
    expect(() => socketAddresses({ kind: "tcp", host: "clamd.example", port: 3310 })).toThrow(
      'Cannot connect to clamd at tcp://clamd.example:3310: host name "clamd.example" is not resolved (resolveEndpoint() must run at startup)',
    );
  });
});

describe("resolveEndpoint()", () => {
  test("returns unix sockets, numeric hosts and localhost unchanged", async () => {
    for (const e of [
      { kind: "unix", path: "/x.sock" },
      { kind: "tcp", host: "10.1.2.3", port: 3310 },
      { kind: "tcp", host: "::1", port: 3310 },
      { kind: "tcp", host: "localhost", port: 3310 },
    ] as const) {
      expect(await resolveEndpoint(e, () => Promise.reject(new Error("must not look up")))).toEqual(e);
    }
  });

  test("replaces a host name with its first IPv4 address, else its first address", async () => {
    const both = async () => [
      { address: "2001:db8::5", family: 6 },
      { address: "192.0.2.5", family: 4 },
    ];
    expect(await resolveEndpoint({ kind: "tcp", host: "clamd.example", port: 3310 }, both)).toEqual({ kind: "tcp", host: "192.0.2.5", port: 3310 });
    const v6 = async () => [{ address: "2001:db8::5", family: 6 }];
    expect(await resolveEndpoint({ kind: "tcp", host: "clamd.example", port: 3310 }, v6)).toEqual({ kind: "tcp", host: "2001:db8::5", port: 3310 });
  });

  test("turns a failed lookup into a ClamdError naming the host", async () => {
    const fail = () => Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));
    const err = await resolveEndpoint({ kind: "tcp", host: "nowhere.invalid", port: 3310 }, fail).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClamdError);
    expect((err as ClamdError).kind).toBe("connect");
    expect((err as ClamdError).message).toBe('Cannot resolve clamd host "nowhere.invalid" (tcp://nowhere.invalid:3310): ENOTFOUND');
  });

  test("resolves this machine's own host name with the system resolver", async () => {
    const r = await resolveEndpoint({ kind: "tcp", host: hostname(), port: 3310 });
    expect(r.kind).toBe("tcp");
    if (r.kind === "tcp") expect(parseIPv4(r.host) ?? parseIPv6(r.host)).toBeDefined();
  });
});
