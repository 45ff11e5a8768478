"""Single-core zlib speed at one level: raw deflate of the inputs (each file its own stream,
as zip does) read in 1 MiB chunks, up to LIMIT bytes in all. Prints one JSON line with the
bytes compressed, the compressed size and the seconds spent (reading included; the inputs
are in the page cache).

usage: zlib_floor.py LEVEL LIMIT PATH...
"""
import json
import os
import sys
import time
import zlib


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for n in sorted(names):
                    yield os.path.join(root, n)
        else:
            yield p


def main():
    level, limit = int(sys.argv[1]), int(sys.argv[2])
    total = out = 0
    t0 = time.perf_counter()
    for path in files(sys.argv[3:]):
        if total >= limit:
            break
        z = zlib.compressobj(level, zlib.DEFLATED, -15)
        with open(path, "rb") as f:
            while total < limit:
                chunk = f.read(min(1 << 20, limit - total))
                if not chunk:
                    break
                total += len(chunk)
                out += len(z.compress(chunk))
        out += len(z.flush())
    seconds = time.perf_counter() - t0
    print(json.dumps({"bytes": total, "compressed": out, "seconds": seconds, "zlib": zlib.ZLIB_RUNTIME_VERSION}))


if __name__ == "__main__":
    main()
