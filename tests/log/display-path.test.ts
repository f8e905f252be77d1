import { describe, expect, test } from "bun:test";
import { displayPath, oneLine } from "../../src/log/display-path.ts";
import { localIsoTimestamp } from "../../src/log/format.ts";

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));

// Reads a displayPath() rendering back into bytes: the test of "unambiguous".
function parseDisplay(shown: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < shown.length; ) {
    if (shown[i] !== "\\") {
      const cp = shown.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out.push(Buffer.from(ch));
      i += ch.length;
      continue;
    }
    const next = shown[i + 1];
    if (next === "n") out.push(Buffer.from([0x0a]));
    else if (next === "t") out.push(Buffer.from([0x09]));
    else if (next === "r") out.push(Buffer.from([0x0d]));
    else if (next === "\\") out.push(Buffer.from([0x5c]));
    else if (next === "x") {
      out.push(Buffer.from([parseInt(shown.slice(i + 2, i + 4), 16)]));
      i += 4;
      continue;
    } else throw new Error(`bad escape at ${i} in ${shown}`);
    i += 2;
  }
  return Buffer.concat(out);
}

describe("displayPath()", () => {
  test("displayPath() keeps a plain path unchanged", () => {
    expect(displayPath("/srv/www/index.html")).toBe("/srv/www/index.html");
    expect(displayPath(bytes("/srv/a b/c-d_e.txt"))).toBe("/srv/a b/c-d_e.txt");
  });

  test("displayPath() keeps printable UTF-8 such as accents, CJK and emoji", () => {
    expect(displayPath(bytes("/home/zoë/文件/🦀.txt"))).toBe("/home/zoë/文件/🦀.txt");
  });

  test("displayPath() escapes newline, tab, carriage return and backslash by name", () => {
    expect(displayPath(bytes("/tmp/a\nb\tc\rd\\e"))).toBe("/tmp/a\\nb\\tc\\rd\\\\e");
  });

  test("displayPath() escapes other control characters and DEL as \\xNN", () => {
    expect(displayPath(bytes("/tmp/", [0x01, 0x1b, 0x7f], "x"))).toBe("/tmp/\\x01\\x1b\\x7fx");
  });

  test("displayPath() escapes each invalid UTF-8 byte as \\xNN", () => {
    expect(displayPath(bytes("/tmp/", [0xff, 0xfe], "name"))).toBe("/tmp/\\xff\\xfename");
    // overlong "/", an encoded UTF-16 surrogate, a truncated sequence, a lone continuation byte
    expect(displayPath(bytes([0xc0, 0xaf]))).toBe("\\xc0\\xaf");
    expect(displayPath(bytes([0xed, 0xa0, 0x80]))).toBe("\\xed\\xa0\\x80");
    expect(displayPath(bytes("a", [0xe6, 0x96]))).toBe("a\\xe6\\x96");
    expect(displayPath(bytes([0x80], "z"))).toBe("\\x80z");
  });

  test("displayPath() escapes C1 controls, line separators and bidi overrides byte by byte", () => {
    expect(displayPath(bytes("a\u0085b"))).toBe("a\\xc2\\x85b");
    expect(displayPath(bytes("a\u2028b"))).toBe("a\\xe2\\x80\\xa8b");
    expect(displayPath(bytes("invoice\u202Efdp.exe"))).toBe("invoice\\xe2\\x80\\xaefdp.exe");
  });

  test("displayPath() accepts a string and renders it as its UTF-8 bytes", () => {
    expect(displayPath("/tmp/new\nline")).toBe("/tmp/new\\nline");
    expect(displayPath("/tmp/é")).toBe("/tmp/é");
  });

  test("displayPath() output is one line from which the exact bytes can be recovered", () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff;
    const interesting = [0x0a, 0x0d, 0x5c, 0x78, 0xc3, 0xa9, 0xe2, 0x80, 0xa8, 0xf0, 0x9f, 0xa6, 0x80, 0x2f];
    for (let round = 0; round < 500; round++) {
      const length = 1 + (random() % 40);
      const input = new Uint8Array(length);
      for (let i = 0; i < length; i++) input[i] = random() % 3 === 0 ? interesting[random() % interesting.length]! : random();
      const shown = displayPath(input);
      expect(shown).not.toMatch(/[\n\r\u2028\u2029\u0085]/);
      expect(parseDisplay(shown).equals(Buffer.from(input))).toBe(true);
    }
  });
});

describe("oneLine()", () => {
  test("oneLine() leaves ordinary text and existing backslashes alone", () => {
    expect(oneLine('Cannot open "C:\\x": EACCES')).toBe('Cannot open "C:\\x": EACCES');
  });

  test("oneLine() escapes line breaks and control characters", () => {
    expect(oneLine("first\nsecond\r\u0007\u2028")).toBe("first\\nsecond\\r\\x07\\u2028");
  });
});

describe("localIsoTimestamp()", () => {
  test("localIsoTimestamp() writes local time with milliseconds and an offset that parses back exactly", () => {
    const time = new Date(2026, 10, 26, 21, 22, 6, 7);
    const stamp = localIsoTimestamp(time);
    expect(stamp).toMatch(/^2026-11-26T21:22:06\.007[+-]\d\d:\d\d$/);
    expect(new Date(stamp).getTime()).toBe(time.getTime());
  });
});
