"""The physical limit of a blob upload on this machine: hashing and writing the bytes.

A registry that receives a blob must at least compute its sha256 and write it to storage. This
measures both, in-process, on the disk the benchmark's servers store their blobs on:

- ``sha256``: hashlib over ``size`` bytes already in memory (1 MiB chunks), MB/s;
- ``write``: ``size`` bytes written in 1 MiB chunks to a new file on that disk, then ``fsync``;
- ``combined``: both one after the other (1 / (1/sha256 + 1/write)), the rate of a server that
  neither overlaps them nor copies the bytes twice. A server that hashes while it writes (in two
  threads) can approach the slower of the two.

Run alone: ``python benchmarks/physical_limit.py [--size-mib 512] [--dir PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

MB = 1_000_000
MIB = 1 << 20


def measure(size: int, directory: Path) -> dict[str, float]:
    chunk = os.urandom(MIB)
    chunks = max(1, size // MIB)
    hasher = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(chunks):
        hasher.update(chunk)
    hasher.hexdigest()
    hash_s = time.perf_counter() - started

    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="physical-limit-", dir=directory)
    try:
        started = time.perf_counter()
        with os.fdopen(handle, "wb", buffering=0) as output:
            for _ in range(chunks):
                output.write(chunk)
            os.fsync(output.fileno())
        write_s = time.perf_counter() - started
    finally:
        os.unlink(name)
    total = chunks * MIB
    sha256_mb_s = total / hash_s / MB
    write_mb_s = total / write_s / MB
    return {
        "size_bytes": total,
        "sha256_mb_s": sha256_mb_s,
        "write_fsync_mb_s": write_mb_s,
        "combined_mb_s": 1 / (1 / sha256_mb_s + 1 / write_mb_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent / ".work")
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.size_mib * MIB, arguments.dir), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
