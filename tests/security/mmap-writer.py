#!/usr/bin/env python3
# The attacker's writer: opens FILE read-write, maps it shared, and writes through the mapping only (no
# write(2): fsnotify raises no modify event for stores into a mapping). Commands on stdin, one per line:
#   put <offset> <hex bytes>   store bytes at offset, answer "ok"
#   quit                       unmap, close, exit
import mmap, os, sys

fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    if not words or words[0] == "quit":
        break
    if words[0] == "put":
        off, data = int(words[1]), bytes.fromhex(words[2])
        m[off:off + len(data)] = data
        print("ok", flush=True)
m.close()
os.close(fd)
