#!/usr/bin/env python3
"""Writes a deterministic tree of files for the benchmarks.

    gen-tree.py DIR --files N --bytes TOTAL [--big BYTES] [--seed S] [--per-dir K]

N files of varying sizes (1..~2x the mean) adding up to exactly TOTAL bytes,
K files per directory (d0000/f00000 ...). Every other file is random bytes,
the others compressible text, so gzip does real work on half the data.
With --big, one more file DIR/big.bin of BYTES (first half zeros, second
half random). Same arguments, same bytes: the generator is seeded and the
mtimes are fixed (SOURCE_DATE_EPOCH, else 2023-01-01), so a cold build sees
the same context every run.
"""
import argparse
import os
import random

CHUNK = 1 << 20


def write_random(f, rng, n):
    while n > 0:
        k = min(n, CHUNK)
        f.write(rng.randbytes(k))
        n -= k


def write_text(f, n, i):
    line = (f"line of file {i}: the quick brown goat jumps over the lazy builder\n").encode()
    block = line * (CHUNK // len(line) + 1)
    while n > 0:
        k = min(n, len(block))
        f.write(block[:k])
        n -= k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--per-dir", type=int, default=200)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "1672531200"))
    # Sizes: uniform weights in [1, 3), scaled so they sum to exactly --bytes.
    weights = [1 + 2 * rng.random() for _ in range(a.files)]
    scale = a.bytes / sum(weights) if weights else 0
    sizes = [max(1, int(w * scale)) for w in weights]
    if sizes:
        sizes[-1] += a.bytes - sum(sizes)
    os.makedirs(a.dir, exist_ok=True)
    dirs = set()
    for i, size in enumerate(sizes):
        d = os.path.join(a.dir, f"d{i // a.per_dir:04d}")
        if d not in dirs:
            os.makedirs(d, exist_ok=True)
            dirs.add(d)
        p = os.path.join(d, f"f{i:05d}")
        with open(p, "wb") as f:
            if i % 2:
                write_random(f, rng, size)
            else:
                write_text(f, size, i)
        os.utime(p, (mtime, mtime))
    if a.big:
        p = os.path.join(a.dir, "big.bin")
        with open(p, "wb") as f:
            zeros = a.big // 2
            z = bytes(CHUNK)
            n = zeros
            while n > 0:
                k = min(n, CHUNK)
                f.write(z[:k])
                n -= k
            write_random(f, rng, a.big - zeros)
        os.utime(p, (mtime, mtime))
    for d in sorted(dirs) + [a.dir]:
        os.utime(d, (mtime, mtime))


if __name__ == "__main__":
    main()
