"""A quick speed report of the block codec: ``python -m doublecrypt.speed``.

Seals and opens batches of blocks with a random key, checks every plaintext
comes back, and prints MB/s per block size and thread count.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

from . import _lowlevel
from ._lowlevel import Codec, ObjectKind


@dataclass(frozen=True)
class Measurement:
    block_size: int
    threads: int
    seal_mbps: float
    open_mbps: float


def _best_rate(fn: object, nbytes: int, seconds: float) -> float:
    """Best MB/s of repeated calls of ``fn`` within about ``seconds``."""
    assert callable(fn)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return nbytes / best / 1e6


def measure(block_size: int, threads: int, seconds: float = 0.4) -> Measurement:
    """Seal and open a batch of full blocks; verify the round trip."""
    key = bytearray(os.urandom(_lowlevel.KEY_BYTES))
    codec = Codec(
        key, os.urandom(_lowlevel.VOLUME_ID_BYTES), block_size=block_size, threads=threads
    )
    key[:] = bytes(len(key))  # the codec holds its own copy
    count = max(16, (8 << 20) // block_size)
    payload = os.urandom(codec.max_plaintext)
    plaintexts = [payload] * count
    ids = list(range(3, 3 + count))
    blocks = bytearray(count * block_size)
    plain_out = bytearray(count * codec.max_plaintext)
    codec.seal_batch(ids, ObjectKind.DATA, plaintexts, out=blocks)
    opened = codec.open_batch(ids, ObjectKind.DATA, blocks, out=plain_out)
    if any(opened[i] != payload for i in range(count)):
        raise RuntimeError("codec round trip failed")
    nbytes = count * codec.max_plaintext
    seal = _best_rate(
        lambda: codec.seal_batch(ids, ObjectKind.DATA, plaintexts, out=blocks), nbytes, seconds
    )
    open_ = _best_rate(
        lambda: codec.open_batch(ids, ObjectKind.DATA, blocks, out=plain_out), nbytes, seconds
    )
    codec.close()
    return Measurement(block_size, codec.threads, seal, open_)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.4, help="time per measurement")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    print(f"doublecrypt {_lowlevel.version()}: XChaCha20-Poly1305 block codec, {cpus} CPUs")
    print(f"{'block':>8} {'threads':>7} {'seal MB/s':>10} {'open MB/s':>10}")
    for block_size in (4096, 65536, 1 << 20):
        for threads in sorted({1, cpus}):
            m = measure(block_size, threads, args.seconds)
            print(f"{block_size:>8} {m.threads:>7} {m.seal_mbps:>10.0f} {m.open_mbps:>10.0f}")
    print("round trips verified: every opened block matched its plaintext")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
