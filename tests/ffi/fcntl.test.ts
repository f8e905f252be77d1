// ffi/fcntl.ts against the platform: the open flags onacc defines itself must be the ones the C library
// of this architecture uses (Bun's fs.constants come from its headers), arm64's O_DIRECTORY/O_NOFOLLOW too.
import { expect, test } from "bun:test";
import { closeSync, constants, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errno, cstr, libc } from "../../ffi/libc.ts";
import { Errno } from "../../ffi/errors.ts";
import { AT_FDCWD, DIR_OPEN_FLAGS, FILE_PEEK_FLAGS, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR } from "../../ffi/fcntl.ts";

test("the open flags are this architecture's (fs.constants)", () => {
  expect({ O_RDONLY, O_RDWR, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW }).toEqual({
    O_RDONLY: constants.O_RDONLY,
    O_RDWR: constants.O_RDWR,
    O_NONBLOCK: constants.O_NONBLOCK,
    O_DIRECTORY: constants.O_DIRECTORY,
    O_NOFOLLOW: constants.O_NOFOLLOW,
  });
});

test("DIR_OPEN_FLAGS opens a directory and refuses a file and a symlink; FILE_PEEK_FLAGS refuses a symlink", () => {
  const dir = mkdtempSync("/tmp/onacc-fcntl-");
  try {
    mkdirSync(join(dir, "d"));
    writeFileSync(join(dir, "f"), "x");
    symlinkSync(join(dir, "d"), join(dir, "link-to-d"));
    symlinkSync(join(dir, "f"), join(dir, "link-to-f"));
    const open = (name: string, flags: number) => {
      const fd = libc.openat(AT_FDCWD, cstr(join(dir, name)), flags, 0);
      if (fd < 0) return errno();
      closeSync(fd);
      return 0;
    };
    expect(open("d", DIR_OPEN_FLAGS)).toBe(0);
    expect(open("f", DIR_OPEN_FLAGS)).toBe(Errno.ENOTDIR);
    // O_DIRECTORY with O_NOFOLLOW: the link itself is looked at, and it is no directory.
    expect(open("link-to-d", DIR_OPEN_FLAGS)).toBe(Errno.ENOTDIR);
    expect(open("f", FILE_PEEK_FLAGS)).toBe(0);
    expect(open("link-to-f", FILE_PEEK_FLAGS)).toBe(Errno.ELOOP);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
