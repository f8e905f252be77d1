// ffi/'s SyscallError stands on its own (ffi/ imports nothing from src/), and src/errors.ts still takes it
// as one of onacc's own errors: a one-line message naming the call, code E_SYSCALL, the runtime exit code.
import { expect, test } from "bun:test";
import { Errno, SyscallError } from "../../ffi/errors.ts";
import { AT_FDCWD } from "../../ffi/fcntl.ts";
import { check, cstr, libc } from "../../ffi/libc.ts";
import { ExitCode, exitCodeFor, isOnaccError } from "../../src/errors.ts";

test("a failed libc call is a SyscallError that src/errors.ts recognises", () => {
  let caught: unknown;
  try {
    check("open", libc.openat(AT_FDCWD, cstr("/nonexistent/onacc-test"), 0, 0), '"/nonexistent/onacc-test"');
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SyscallError);
  const err = caught as SyscallError;
  expect({ message: err.message, code: err.code, errno: err.errno, name: err.name }).toEqual({
    message: 'open "/nonexistent/onacc-test": ENOENT',
    code: "E_SYSCALL",
    errno: Errno.ENOENT,
    name: "SyscallError",
  });
  expect(isOnaccError(err)).toBe(true);
  expect(exitCodeFor(err)).toBe(ExitCode.runtime);
  expect(isOnaccError(new Error("something else"))).toBe(false);
});
