#!/usr/bin/env python3
# A FUSE file system that stalls: a pass-through of BACKING mounted at MOUNTPOINT. Once a file named
# "stall*" has been opened, every later request about it (stat, read) is answered only when the daemon is
# killed. It stands for a hung NFS server or FUSE daemon. Prints "ready" once mounted.
import errno, os, sys, threading, time
from fusepy import FUSE, FuseOSError, Operations

backing, mountpoint = sys.argv[1], sys.argv[2]
forever = threading.Event()
opened = set()


class Stalling(Operations):
    def _full(self, path):
        return os.path.join(backing, path.lstrip("/"))

    def _stall(self, path):
        if path in opened:
            forever.wait(120)

    def getattr(self, path, fh=None):
        self._stall(path)
        try:
            st = os.lstat(self._full(path))
        except OSError as e:
            raise FuseOSError(e.errno)
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime", "st_ctime")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._full(path))

    def open(self, path, flags):
        fd = os.open(self._full(path), flags)
        if os.path.basename(path).startswith("stall"):
            opened.add(path)
        return fd

    def read(self, path, size, offset, fh):
        self._stall(path)
        os.lseek(fh, offset, 0)
        return os.read(fh, size)

    def release(self, path, fh):
        os.close(fh)


threading.Timer(0.5, lambda: print("ready", flush=True)).start()
FUSE(Stalling(), mountpoint, foreground=True, nothreads=False, allow_other=True, attr_timeout=0, entry_timeout=0, direct_io=True)
