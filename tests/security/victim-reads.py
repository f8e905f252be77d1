#!/usr/bin/env python3
# The victim: opens PATH N times and counts what it was served. Prints "served-infected denied clean".
import sys

path, n, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
infected = denied = clean = 0
for _ in range(n):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        denied += 1
        continue
    if marker in data:
        infected += 1
    else:
        clean += 1
print(infected, denied, clean, flush=True)
