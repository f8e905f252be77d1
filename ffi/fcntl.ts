// Open flags and *at() constants of <fcntl.h>, defined once for every ffi/ module and the engine, for the
// two architectures onacc ships for: x86_64 and arm64 agree on all but O_DIRECTORY and O_NOFOLLOW.
const ARM64 = process.arch === "arm64";

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_NONBLOCK = 0x800;
export const O_DIRECTORY = ARM64 ? 0x4000 : 0x10000;
export const O_NOFOLLOW = ARM64 ? 0x8000 : 0x20000;
export const O_CLOEXEC = 0x80000;
/** Opens a name without opening the file: no read, no fanotify event, no wait on the file system. */
export const O_PATH = 0x200000;

/** The dirfd meaning "relative to the current directory" (absolute paths ignore it). */
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_EMPTY_PATH = 0x1000;

/** A directory and nothing else: never a symlink, and never a FIFO or device that could block the open. */
export const DIR_OPEN_FLAGS = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_DIRECTORY | O_NOFOLLOW;
/** A file onacc found by name: never blocks on a FIFO, never follows a symlink. */
export const FILE_PEEK_FLAGS = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;
