// Renders byte paths (and other untrusted text) for log lines: one record stays one line, and the bytes
// behind any escaped character can be read back exactly (`\xNN` is always one byte, `\\` a backslash).

const BACKSLASH = 0x5c;
const namedEscapes = new Map<number, string>([
  [0x0a, "\\n"],
  [0x09, "\\t"],
  [0x0d, "\\r"],
  [BACKSLASH, "\\\\"],
]);

/**
 * A path as one unambiguous line: printable UTF-8 as is; `\n`, `\t`, `\r`, `\\`; every other control
 * character, line/paragraph separator, bidi override and invalid UTF-8 byte as `\xNN` per byte.
 * A string argument is taken as its UTF-8 encoding (a lone surrogate has already become U+FFFD).
 */
export function displayPath(path: string | Uint8Array): string {
  const bytes = typeof path === "string" ? Buffer.from(path, "utf8") : path;
  if (_isPlainAscii(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      out += b >= 0x20 && b < 0x7f && b !== BACKSLASH ? String.fromCharCode(b) : _escapeByte(b);
      i += 1;
      continue;
    }
    const seqLength = _utf8SequenceLength(bytes, i);
    if (seqLength === 0) {
      out += _escapeByte(b);
      i += 1;
      continue;
    }
    const codePoint = _decode(bytes, i, seqLength);
    if (_mustEscape(codePoint)) {
      for (let k = 0; k < seqLength; k++) out += _escapeByte(bytes[i + k]!);
    } else {
      out += String.fromCodePoint(codePoint);
    }
    i += seqLength;
  }
  return out;
}

/**
 * Free text (error messages, signature names) made safe for one log line: control characters and line
 * separators are escaped, everything else (including backslashes already used as escapes) is kept.
 */
export function oneLine(text: string): string {
  // Hint: the common case is already clean; test before building a new string.
  if (!/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(text)) return text;
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => {
    const code = ch.charCodeAt(0);
    const named = namedEscapes.get(code);
    if (named) return named;
    // Hint: `\xNN` means a byte in displayPath(); code points from U+0080 up are written `\uNNNN` here.
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function _isPlainAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x20 || b >= 0x7f || b === BACKSLASH) return false;
  }
  return true;
}

function _escapeByte(b: number): string {
  return namedEscapes.get(b) ?? `\\x${b.toString(16).padStart(2, "0")}`;
}

/** Length of the valid UTF-8 sequence starting at i, or 0 when it is invalid (RFC 3629 table). */
function _utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i]!;
  let length: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) length = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    if (b0 === 0xe0) lo = 0xa0; // overlong
    if (b0 === 0xed) hi = 0x9f; // UTF-16 surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    if (b0 === 0xf0) lo = 0x90; // overlong
    if (b0 === 0xf4) hi = 0x8f; // above U+10FFFF
  } else return 0;
  if (i + length > bytes.length) return 0;
  const b1 = bytes[i + 1]!;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < length; k++) {
    const b = bytes[i + k]!;
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return length;
}

function _decode(bytes: Uint8Array, i: number, length: number): number {
  const b0 = bytes[i]!;
  let cp = length === 2 ? b0 & 0x1f : length === 3 ? b0 & 0x0f : b0 & 0x07;
  for (let k = 1; k < length; k++) cp = (cp << 6) | (bytes[i + k]! & 0x3f);
  return cp;
}

// Why: C1 controls and U+2028/2029 break lines in some viewers; bidi controls can make a path read as
// another one ("Trojan Source"); U+FEFF and U+200B-200D are invisible.
function _mustEscape(cp: number): boolean {
  return (
    (cp >= 0x80 && cp <= 0x9f) ||
    cp === 0x061c ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0xfeff
  );
}
