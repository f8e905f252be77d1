// Reply parsing and request framing as pure functions: every reply form clamd 1.4 sends, no clamd needed.
import { describe, expect, test } from "bun:test";
import {
  CLAMD_COMMAND_BUFFER,
  CLEAN_REPLY,
  parsePong,
  parseVersion,
  ReplyTally,
  replyError,
  scanPathProblem,
  streamChunkBytes,
  type ParsedReply,
} from "../../src/clamd/protocol.ts";

const enc = new TextEncoder();
type Subject = { kind: "path"; path: Uint8Array } | { kind: "fd" } | { kind: "stream" };
const path = (p: string | Uint8Array): Subject => ({ kind: "path", path: typeof p === "string" ? enc.encode(p) : p });
const FD: Subject = { kind: "fd" };
const STREAM: Subject = { kind: "stream" };

/** The verdict of a scan whose reply was `records`, tallied as a conversation tallies them. */
function parseScanReply(records: (string | Uint8Array)[], subject: Subject): ParsedReply {
  const tally = new ReplyTally();
  tally.reset(subject.kind, subject.kind === "path" ? subject.path : undefined);
  for (const r of records) {
    const bytes = typeof r === "string" ? enc.encode(r) : r;
    tally.add(bytes, 0, bytes.length);
  }
  return tally.result();
}

/** The path's bytes, or why clamd cannot be sent it. */
function checkScanPath(p: string | Uint8Array, commandName: string): { bytes: Uint8Array } | { reason: string } {
  const bytes = typeof p === "string" ? enc.encode(p) : p;
  const reason = scanPathProblem(bytes, bytes.length, commandName);
  return reason === undefined ? { bytes } : { reason };
}

describe("parseScanReply()", () => {
  test("reads OK for a path, an fd and a stream as clean", () => {
    expect(parseScanReply(["/srv/a.txt: OK"], path("/srv/a.txt"))).toEqual({ ok: true, verdict: { kind: "clean" } });
    expect(parseScanReply(["fd[12]: OK"], FD)).toEqual({ ok: true, verdict: { kind: "clean" } });
    expect(parseScanReply(["stream: OK"], STREAM)).toEqual({ ok: true, verdict: { kind: "clean" } });
  });

  test("reads FOUND for each subject form as infected with the signature name", () => {
    const infected: ParsedReply = { ok: true, verdict: { kind: "infected", signatures: ["Onacc.Test.EICAR.UNOFFICIAL"] } };
    expect(parseScanReply(["/srv/a.txt: Onacc.Test.EICAR.UNOFFICIAL FOUND"], path("/srv/a.txt"))).toEqual(infected);
    expect(parseScanReply(["fd[7]: Onacc.Test.EICAR.UNOFFICIAL FOUND"], FD)).toEqual(infected);
    expect(parseScanReply(["stream: Onacc.Test.EICAR.UNOFFICIAL FOUND"], STREAM)).toEqual(infected);
  });

  test("collects every signature of an ALLMATCHSCAN reply, in order and without duplicates", () => {
    const p = "/srv/both.bin";
    const r = parseScanReply(
      [`${p}: Onacc.Test.Marker.UNOFFICIAL FOUND`, `${p}: Onacc.Test.Marker2.UNOFFICIAL FOUND`, `${p}: Onacc.Test.Marker.UNOFFICIAL FOUND`],
      path(p),
    );
    expect(r).toEqual({ ok: true, verdict: { kind: "infected", signatures: ["Onacc.Test.Marker.UNOFFICIAL", "Onacc.Test.Marker2.UNOFFICIAL"] } });
  });

  test("parses a path containing \": \", spaces and \" FOUND\" from the right", () => {
    const p = "/srv/x: y FOUND z/odd: name .txt";
    expect(parseScanReply([`${p}: Eicar-Signature FOUND`], path(p))).toEqual({
      ok: true,
      verdict: { kind: "infected", signatures: ["Eicar-Signature"] },
    });
    expect(parseScanReply([`${p}: OK`], path(p))).toEqual({ ok: true, verdict: { kind: "clean" } });
  });

  test("keeps clamd's whole message for an error about the file, even when it contains \": \"", () => {
    const p = "/srv/gone: really";
    expect(parseScanReply([`${p}: lstat() failed: No such file or directory. ERROR`], path(p))).toEqual({
      ok: true,
      verdict: { kind: "error", message: "lstat() failed: No such file or directory. ERROR" },
    });
    expect(parseScanReply(["fd[9]: Not a regular file ERROR"], FD)).toEqual({ ok: true, verdict: { kind: "error", message: "Not a regular file ERROR" } });
    expect(parseScanReply(["stream: Can't allocate memory ERROR"], STREAM)).toEqual({
      ok: true,
      verdict: { kind: "error", message: "Can't allocate memory ERROR" },
    });
  });

  test("matches a path that is not UTF-8 byte for byte", () => {
    const p = new Uint8Array([...enc.encode("/srv/a\nb"), 0xff, 0xfe, ...enc.encode(".txt")]);
    const reply = new Uint8Array([...p, ...enc.encode(": Access denied. ERROR")]);
    expect(parseScanReply([reply], path(p))).toEqual({ ok: true, verdict: { kind: "error", message: "Access denied. ERROR" } });
  });

  test("treats clamd's Empty file status as clean", () => {
    expect(parseScanReply(["/srv/e: Empty file"], path("/srv/e"))).toEqual({ ok: true, verdict: { kind: "clean" } });
  });

  test("does not take clamd's Excluded statuses for clean: nothing was scanned", () => {
    for (const status of ["Excluded", "Excluded (another filesystem)"]) {
      const r = parseScanReply([`/srv/e: ${status}`], path("/srv/e"));
      expect(r.ok && r.verdict.kind).toBe("error");
    }
  });

  test("drops ExtendedDetectionInfo's (md5:size) from a signature name", () => {
    expect(parseScanReply(["stream: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND"], STREAM)).toEqual({
      ok: true,
      verdict: { kind: "infected", signatures: ["Eicar-Test-Signature"] },
    });
  });

  test("lets a FOUND record win over an error about another part of a directory scan", () => {
    const r = parseScanReply(["/srv/d/locked: Access denied. ERROR", "/srv/d/bad: Eicar FOUND"], path("/srv/d"));
    expect(r).toEqual({ ok: true, verdict: { kind: "infected", signatures: ["Eicar"] } });
  });

  test("reports the INSTREAM size limit as a size-limit failure, not a verdict", () => {
    expect(parseScanReply(["INSTREAM size limit exceeded. ERROR"], STREAM)).toEqual({
      ok: false,
      kind: "size-limit",
      message: "INSTREAM size limit exceeded. ERROR",
    });
  });

  test("reports clamd refusing the command as refused, never as clean", () => {
    for (const r of ["UNKNOWN COMMAND", "COMMAND UNAVAILABLE", "Command invalid inside IDSESSION. ERROR", "FILDES: didn't receive file descriptor. ERROR"]) {
      expect(parseScanReply([r], FD)).toMatchObject({ ok: false, kind: "refused", message: r });
    }
    expect(parseScanReply(["/srv/a: ALLMATCHSCAN command disabled by clamd configuration. ERROR"], path("/srv/a"))).toMatchObject({
      ok: false,
      kind: "refused",
    });
  });

  test("reports an empty or unreadable reply as a protocol failure", () => {
    expect(parseScanReply([], STREAM)).toMatchObject({ ok: false, kind: "protocol" });
    expect(parseScanReply(["stream: MAYBE"], STREAM)).toMatchObject({ ok: false, kind: "protocol" });
    expect(parseScanReply(["hello"], path("/srv/a"))).toMatchObject({ ok: false, kind: "protocol", message: 'unexpected reply "hello"' });
    expect(parseScanReply(["/srv/a: OK"], path("/srv/b"))).toMatchObject({ ok: false, kind: "protocol" });
  });
});

describe("ReplyTally", () => {
  test("takes records in place, from a range of a larger buffer, and answers OK with the one shared clean reply", () => {
    const t = new ReplyTally();
    const buf = enc.encode("xxfd[12]: OK\0stream: OK\0");
    t.reset("fd");
    t.add(buf, 2, 12);
    expect(t.result()).toBe(CLEAN_REPLY);
    t.reset("stream");
    t.add(buf, 13, 23);
    expect(t.result()).toBe(CLEAN_REPLY);
  });

  test("matches a path record against path[0..length) only, and is reusable across scans", () => {
    const t = new ReplyTally();
    const pathBuf = new Uint8Array(64);
    pathBuf.set(enc.encode("/srv/a b"));
    t.reset("path", pathBuf, 8);
    for (const r of ["/srv/a b/x: Eicar FOUND", "/srv/a b/y: OK", "/srv/a b: OK"]) t.add(enc.encode(r), 0, r.length);
    expect(t.records).toBe(3);
    expect(t.result()).toEqual({ ok: true, verdict: { kind: "infected", signatures: ["Eicar"] } });
    t.reset("path", pathBuf, 8);
    t.add(enc.encode("/srv/a b: OK"), 0, 12);
    expect(t.result()).toBe(CLEAN_REPLY);
    // "fd[]" without digits, or an OK about another path, is not the fast OK.
    t.reset("fd");
    t.add(enc.encode("fd[]: OK"), 0, 8);
    expect(t.result()).toMatchObject({ ok: false, kind: "protocol" });
    t.reset("path", pathBuf, 8);
    t.add(enc.encode("/srv/a: OK"), 0, 10);
    expect(t.result()).toMatchObject({ ok: false, kind: "protocol" });
  });

  test("a failure record wins over anything after it, and no record at all is a protocol failure", () => {
    const t = new ReplyTally();
    t.reset("stream");
    t.add(enc.encode("INSTREAM size limit exceeded. ERROR"), 0, 35);
    t.add(enc.encode("stream: OK"), 0, 10);
    expect(t.result()).toMatchObject({ ok: false, kind: "size-limit" });
    t.reset("stream");
    expect(t.result()).toEqual({ ok: false, kind: "protocol", message: "clamd closed the connection without answering" });
  });
});

describe("other replies", () => {
  test("parsePong() accepts only PONG", () => {
    expect(parsePong("PONG")).toEqual({ ok: true });
    expect(parsePong("PANG")).toMatchObject({ ok: false, kind: "protocol" });
    expect(parsePong("UNKNOWN COMMAND")).toMatchObject({ ok: false, kind: "refused" });
  });

  test("parseVersion() accepts the bare and the database-dated forms", () => {
    expect(parseVersion("ClamAV 1.4.6")).toEqual({ ok: true, version: "ClamAV 1.4.6" });
    expect(parseVersion("ClamAV 1.4.6/27000/Mon Jan  1 08:00:00 2024")).toEqual({ ok: true, version: "ClamAV 1.4.6/27000/Mon Jan  1 08:00:00 2024" });
    expect(parseVersion("COMMAND UNAVAILABLE")).toMatchObject({ ok: false, kind: "refused" });
  });

  test("replyError() names clamd and the command in its message", () => {
    const e = replyError("unix:/run/clamd.sock", "zINSTREAM", { ok: false, kind: "size-limit", message: "INSTREAM size limit exceeded. ERROR" });
    expect(e.kind).toBe("size-limit");
    expect(e.code).toBe("E_CLAMD");
    expect(e.message).toContain("clamd at unix:/run/clamd.sock refused zINSTREAM");
  });
});

describe("requests", () => {
  test("streamChunkBytes() keeps chunks within StreamMaxLength and 64 KiB, 0 meaning no limit", () => {
    expect(streamChunkBytes(1000)).toBe(1000);
    expect(streamChunkBytes(100 * 1024 * 1024)).toBe(64 * 1024);
    expect(streamChunkBytes(0)).toBe(64 * 1024);
  });

  test("scanPathProblem() accepts spaces, colons and bytes that are not UTF-8", () => {
    const p = new Uint8Array([...enc.encode("/srv/x: y z"), 0xff]);
    expect(checkScanPath(p, "CONTSCAN")).toEqual({ bytes: p });
    expect(checkScanPath("/srv/ä ö", "CONTSCAN")).toEqual({ bytes: enc.encode("/srv/ä ö") });
  });

  test("scanPathProblem() refuses relative, empty, NUL-containing and line-breaking paths", () => {
    expect(checkScanPath("srv/a", "CONTSCAN")).toEqual({ reason: expect.stringContaining("not absolute") });
    expect(checkScanPath("", "CONTSCAN")).toEqual({ reason: "is empty" });
    expect(checkScanPath("/srv/a\0b", "CONTSCAN")).toEqual({ reason: expect.stringContaining("NUL") });
    expect(checkScanPath("/srv/a\nb", "CONTSCAN")).toEqual({ reason: expect.stringContaining("line break") });
    expect(checkScanPath("/srv/a\rb", "CONTSCAN")).toEqual({ reason: expect.stringContaining("line break") });
  });

  test("scanPathProblem() judges path[0..length) only", () => {
    const buf = new Uint8Array(32);
    buf.set(enc.encode("/srv/a\nb"));
    expect(scanPathProblem(buf, 6, "CONTSCAN")).toBeUndefined();
    expect(scanPathProblem(buf, 8, "CONTSCAN")).toContain("line break");
    expect(scanPathProblem(buf, 0, "CONTSCAN")).toBe("is empty");
  });

  test("scanPathProblem() refuses a path whose command would not fit clamd's command buffer", () => {
    const fits = CLAMD_COMMAND_BUFFER - "zCONTSCAN ".length - 1;
    expect(checkScanPath(`/${"a".repeat(fits - 1)}`, "CONTSCAN")).toHaveProperty("bytes");
    expect(checkScanPath(`/${"a".repeat(fits)}`, "CONTSCAN")).toEqual({ reason: expect.stringContaining(`at most ${fits}`) });
  });
});
