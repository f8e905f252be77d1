// Turns a node:fs error into the short reason that ends a log message: the errno symbol, then words
// for the ones people meet in practice ("ENOTDIR (not a directory)").
import { constants as osConstants } from "node:os";

const words: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EEXIST: "already exists",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EXDEV: "on another filesystem",
  EIO: "input/output error",
  ELOOP: "is a symbolic link",
  EMLINK: "too many links",
  ENAMETOOLONG: "name too long",
  EBUSY: "busy",
  EBADF: "bad file descriptor",
  EFBIG: "file too large",
};

/** "ENOSPC (no space left on device)" for an fs error; the message itself for anything else. */
export function fsReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
    const text = words[code];
    return text ? `${code} (${text})` : code;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The errno symbol of an fs error ("ENOENT"), or undefined. */
export function fsCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

const _errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** fsReason() for a bare errno number from an FFI call: "EROFS (read-only file system)". */
export function errnoReason(errno: number): string {
  const code = _errnoNames.get(errno);
  return code ? fsReason({ code }) : `errno ${errno}`;
}
