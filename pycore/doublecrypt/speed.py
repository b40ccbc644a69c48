"""A quick speed report: ``python -m doublecrypt.speed`` or ``doublecrypt speed``.

Seals and opens batches of blocks with a random key (the AEAD block codec,
XChaCha20-Poly1305), then writes and reads a file through the whole engine on
a volume in memory. Every plaintext is checked to come back, and the report
gives MB/s per block size and thread count.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from . import _lowlevel
from ._lowlevel import Codec, ObjectKind
from ._lowlevel.store import MemoryStore
from .api import FileSystem

__all__ = [
    "BLOCK_SIZES",
    "EngineMeasurement",
    "Measurement",
    "main",
    "measure",
    "measure_engine",
    "report_lines",
]

BLOCK_SIZES: tuple[int, ...] = (4096, 65536, 1 << 20)


@dataclass(frozen=True)
class Measurement:
    block_size: int
    threads: int
    seal_mbps: float
    open_mbps: float


@dataclass(frozen=True)
class EngineMeasurement:
    block_size: int
    file_bytes: int
    write_mbps: float
    read_mbps: float


def _best_rate(fn: Callable[[], object], nbytes: int, seconds: float) -> float:
    """Best MB/s of repeated calls of ``fn`` within about ``seconds``."""
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


def measure_engine(
    block_size: int = 65536, file_bytes: int = 16 << 20, seconds: float = 0.4
) -> EngineMeasurement:
    """Write a file in one commit and read it back through the filesystem, on
    a volume in memory (room for a few versions, as copy-on-write needs)."""
    total_blocks = 3 * file_bytes // block_size + 64
    key = bytearray(os.urandom(_lowlevel.MASTER_KEY_BYTES))
    with FileSystem.format(MemoryStore(total_blocks, block_size), key) as fs:
        key[:] = bytes(len(key))
        data = os.urandom(file_bytes)

        def write() -> None:
            fs.write_bytes("/speed", data)
            fs.sync()  # makes the old version's blocks reusable

        write()
        if fs.read_bytes("/speed") != data:
            raise RuntimeError("engine round trip failed")
        write_mbps = _best_rate(write, file_bytes, seconds)
        read_mbps = _best_rate(lambda: fs.read_bytes("/speed"), file_bytes, seconds)
    return EngineMeasurement(block_size, file_bytes, write_mbps, read_mbps)


def report_lines(seconds: float = 0.4, block_sizes: Sequence[int] = BLOCK_SIZES) -> Iterator[str]:
    """The report, line by line as each measurement finishes."""
    cpus = os.cpu_count() or 1
    yield f"doublecrypt {_lowlevel.version()}: XChaCha20-Poly1305 block codec, {cpus} CPUs"
    yield f"{'block':>8} {'threads':>7} {'seal MB/s':>10} {'open MB/s':>10}"
    for block_size in block_sizes:
        for threads in sorted({1, cpus}):
            m = measure(block_size, threads, seconds)
            yield f"{block_size:>8} {m.threads:>7} {m.seal_mbps:>10.0f} {m.open_mbps:>10.0f}"
    yield ""
    yield "filesystem engine, one file on a volume in memory"
    yield f"{'block':>8} {'file MiB':>8} {'write MB/s':>10} {'read MB/s':>10}"
    for block_size in block_sizes:
        e = measure_engine(block_size, seconds=seconds)
        mib = e.file_bytes >> 20
        yield f"{block_size:>8} {mib:>8} {e.write_mbps:>10.0f} {e.read_mbps:>10.0f}"
    yield "round trips verified: every opened block and read file matched its plaintext"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.4, help="time per measurement")
    args = parser.parse_args(argv)
    for line in report_lines(args.seconds):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
