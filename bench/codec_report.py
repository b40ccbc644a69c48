"""Codec throughput report: the C codec from Python against raw libsodium.

Run by ``make bench`` (``.venv/bin/python bench/codec_report.py``). In one run it

1. compiles ``bench/c/bench_aead.c`` into ``build/bench/`` (``cc``/``$CC`` and
   ``pkg-config``) and runs it for the raw XChaCha20-Poly1305 baseline;
2. measures from Python, with ``time.perf_counter`` (best of several
   repetitions): ``Codec.seal_batch``/``open_batch`` of 64 KiB blocks with 1 and
   2 threads (also with a reused ``out=`` buffer, which shows what allocating
   the result costs), batch and single-call 4 KiB seal/open, single-call 64 KiB
   seal/open, and the pure-Python envelope (``bench/pure_codec.py``) at 4 KiB
   and 64 KiB;
3. prints a Markdown table of MB/s (plaintext bytes / 1e6 / s) and the
   project's target ratios, each marked PASS or MISS, and writes it to
   ``bench/results/codec.md``.

The machine is assumed to be shared and noisy. The run is a number of rounds;
each round times every Python row once and runs the raw benchmark once, in a
shuffled order, and every figure (the raw baseline included) is the best over
the rounds. Plaintexts fill their blocks, so no padding is generated. A MISS
does not fail the run unless ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cryptography

import doublecrypt
import pure_codec

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bench" / "c" / "bench_aead.c"
BINARY = ROOT / "build" / "bench" / "bench_aead"
RESULTS = ROOT / "bench" / "results" / "codec.md"

KIND = int(doublecrypt.ObjectKind.DATA)
SMALL, LARGE = 4096, 65536
BATCH = {SMALL: 256, LARGE: 64}  # blocks per batch call: 1 MiB and 4 MiB of plaintext


# ---- raw libsodium baseline -------------------------------------------------


def _pkg_config(flag: str) -> list[str]:
    out = subprocess.run(
        ["pkg-config", flag, "libsodium"], check=True, capture_output=True, text=True
    ).stdout
    return out.split()


def build_aead() -> Path:
    """Compile bench_aead.c (always: it takes well under a second)."""
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    cc = shlex.split(os.environ.get("CC", "cc"))
    cmd = [
        *cc,
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        *_pkg_config("--cflags"),
        str(SOURCE),
        "-o",
        str(BINARY),
        *_pkg_config("--libs"),
        "-pthread",
    ]
    subprocess.run(cmd, check=True)
    return BINARY


RawResults = dict[str, dict[str, dict[str, float]]]


def run_aead(binary: Path, seconds: float) -> RawResults:
    out = subprocess.run(
        [str(binary), str(seconds)], check=True, capture_output=True, text=True
    ).stdout
    result: RawResults = json.loads(out)
    return result


def merge_best(best: RawResults | None, new: RawResults) -> RawResults:
    if best is None:
        return new
    for op, sizes in new.items():
        for size, threads in sizes.items():
            for n, mbps in threads.items():
                best[op][size][n] = max(best[op][size][n], mbps)
    return best


# ---- Python measurements ----------------------------------------------------


@dataclass
class Timing:
    """One timed operation: ``fn`` processes ``nbytes`` of plaintext per call."""

    fn: Callable[[], object]
    nbytes: int
    loops: int = 1
    best: float = math.inf  # seconds for ``loops`` calls, fastest so far

    def calibrate(self, min_time: float) -> None:
        """Warm up, then find a loop count that runs for at least ``min_time``."""
        self.fn()  # warm caches, the allocator and the codec's threads
        while (elapsed := self._time()) < min_time:
            self.loops = max(self.loops * 2, int(self.loops * min_time * 1.2 / elapsed))

    def run(self) -> None:
        """One timing of ``loops`` calls."""
        self.best = min(self.best, self._time())

    def _time(self) -> float:
        fn, loops = self.fn, self.loops
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return max(time.perf_counter() - start, 1e-9)

    @property
    def mbps(self) -> float:
        return self.nbytes * self.loops / self.best / 1e6


@dataclass
class Row:
    path: str
    block: int
    threads: int
    seal: Timing
    open: Timing


class Measurer:
    """Builds every row's seal and open timings; keeps their codecs open."""

    def __init__(self) -> None:
        self.key = os.urandom(32)
        self.volume_id = os.urandom(16)
        self.codecs: list[doublecrypt.Codec] = []

    def codec(self, block_size: int, threads: int) -> doublecrypt.Codec:
        codec = doublecrypt.Codec(self.key, self.volume_id, block_size=block_size, threads=threads)
        self.codecs.append(codec)
        return codec

    def close(self) -> None:
        for codec in self.codecs:
            codec.close()

    def batch(self, block_size: int, threads: int, *, reuse_out: bool = False) -> Row:
        count = BATCH[block_size]
        codec = self.codec(block_size, threads)
        size = codec.max_plaintext
        plaintexts = [os.urandom(size) for _ in range(count)]
        ids = list(range(1000, 1000 + count))
        blocks = bytes(codec.seal_batch(ids, KIND, plaintexts))
        opened = codec.open_batch(ids, KIND, blocks)
        assert opened[0] == plaintexts[0] and opened[count - 1] == plaintexts[-1]
        if reuse_out:
            sealed_out = bytearray(count * block_size)
            opened_out = bytearray(count * size)
            return Row(
                f"C codec, batch of {count}, reused `out=` buffer",
                block_size,
                threads,
                Timing(
                    lambda: codec.seal_batch(ids, KIND, plaintexts, out=sealed_out), count * size
                ),
                Timing(lambda: codec.open_batch(ids, KIND, blocks, out=opened_out), count * size),
            )
        return Row(
            f"C codec, batch of {count}",
            block_size,
            threads,
            Timing(lambda: codec.seal_batch(ids, KIND, plaintexts), count * size),
            Timing(lambda: codec.open_batch(ids, KIND, blocks), count * size),
        )

    def single(self, block_size: int) -> Row:
        codec = self.codec(block_size, 1)
        plaintext = os.urandom(codec.max_plaintext)
        block = codec.seal(1, KIND, plaintext)
        assert codec.open(1, KIND, block) == plaintext
        return Row(
            "C codec, single call",
            block_size,
            1,
            Timing(lambda: codec.seal(1, KIND, plaintext), len(plaintext)),
            Timing(lambda: codec.open(1, KIND, block), len(plaintext)),
        )

    def pure(self, block_size: int) -> Row:
        key, vid = self.key, self.volume_id
        plaintext = os.urandom(block_size - pure_codec.OVERHEAD_BYTES)
        block = pure_codec.seal(key, vid, block_size, 1, KIND, plaintext)
        # The same format as the C codec, both ways.
        assert self.codec(block_size, 1).open(1, KIND, block) == plaintext
        block = self.codec(block_size, 1).seal(1, KIND, plaintext)
        assert pure_codec.open(key, vid, block_size, 1, KIND, block) == plaintext
        return Row(
            "pure Python (`cryptography`), single call",
            block_size,
            1,
            Timing(
                lambda: pure_codec.seal(key, vid, block_size, 1, KIND, plaintext), len(plaintext)
            ),
            Timing(lambda: pure_codec.open(key, vid, block_size, 1, KIND, block), len(plaintext)),
        )


# ---- report -----------------------------------------------------------------


@dataclass
class Ratio:
    name: str
    value: float
    target: float

    @property
    def ok(self) -> bool:
        return self.value >= self.target


def mbps(row: Row, op: str) -> float:
    timing: Timing = getattr(row, op)
    return timing.mbps


def ratios(raw: RawResults, rows: dict[str, Row]) -> list[Ratio]:
    out = []
    for op in ("seal", "open"):
        raw1 = raw[op][str(LARGE)]["1"]
        b1, b2 = mbps(rows["batch64k-1"], op), mbps(rows["batch64k-2"], op)
        out.append(Ratio(f"(a) batch {op} 64 KiB, 1 thread / raw {op} 1 thread", b1 / raw1, 0.9))
        out.append(Ratio(f"(b) batch {op} 64 KiB, 2 threads / raw {op} 1 thread", b2 / raw1, 1.6))
    for op in ("seal", "open"):
        best = max(mbps(rows["batch4k-1"], op), mbps(rows["batch4k-2"], op))
        pure = mbps(rows["pure4k"], op)
        out.append(
            Ratio(f"(c) C codec {op} 4 KiB (best batch) / pure Python {op} 4 KiB", best / pure, 3.0)
        )
    return out


def render(
    raw: RawResults, rows: dict[str, Row], args: argparse.Namespace, loads: list[float]
) -> str:
    sodium = subprocess.run(
        ["pkg-config", "--modversion", "libsodium"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Codec throughput",
        "",
        f"`bench/codec_report.py`, {time.strftime('%Y-%m-%d %H:%M %Z')}: "
        f"{os.cpu_count()} CPUs ({platform.machine()}), libsodium {sodium or '?'}, "
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"doublecrypt {doublecrypt.__version__}. 1-minute load average "
        f"{loads[0]:.2f} before, {loads[-1]:.2f} after (the 2-thread figures need both "
        "CPUs: on a busy machine they fall towards the 1-thread ones).",
        "",
        "MB/s = plaintext bytes / 1e6 / second; plaintexts fill their blocks (no padding). "
        f"Every figure is the best of {args.rounds} rounds, each round timing every row once "
        f"(Python: a loop of at least {args.min_time} s, `time.perf_counter`) and running "
        f"`bench/c/bench_aead.c` ({args.aead_seconds} s per case, one buffer per thread, "
        "32 bytes of associated data like the codec).",
        "",
        "| Path | Block | Threads | Seal MB/s | Open MB/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for size in (LARGE, SMALL):
        for n in ("1", "2"):
            lines.append(
                f"| raw libsodium XChaCha20-Poly1305 (C) | {size} | {n} "
                f"| {raw['seal'][str(size)][n]:.0f} | {raw['open'][str(size)][n]:.0f} |"
            )
        lines += [
            f"| {row.path} | {row.block} | {row.threads} "
            f"| {row.seal.mbps:.0f} | {row.open.mbps:.0f} |"
            for row in rows.values()
            if row.block == size
        ]
    lines += ["", "| Target ratio | Value | Target | Result |", "|---|---:|---:|---|"]
    for r in ratios(raw, rows):
        lines.append(
            f"| {r.name} | {r.value:.3f} | >= {r.target:g} | {'PASS' if r.ok else 'MISS'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds; every figure is a best")
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per Python timing")
    parser.add_argument(
        "--aead-seconds", type=float, default=0.15, help="seconds per raw libsodium case"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS}")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.min_time <= 0 or args.aead_seconds <= 0:
        parser.error("--rounds, --min-time and --aead-seconds must be positive")

    binary = build_aead()
    loads = [os.getloadavg()[0]]
    m = Measurer()
    try:
        rows = {
            "batch64k-1": m.batch(LARGE, 1),
            "batch64k-2": m.batch(LARGE, 2),
            "batch64k-1-out": m.batch(LARGE, 1, reuse_out=True),
            "batch64k-2-out": m.batch(LARGE, 2, reuse_out=True),
            "single64k": m.single(LARGE),
            "pure64k": m.pure(LARGE),
            "batch4k-1": m.batch(SMALL, 1),
            "batch4k-2": m.batch(SMALL, 2),
            "single4k": m.single(SMALL),
            "pure4k": m.pure(SMALL),
        }
        timings = [t for row in rows.values() for t in (row.seal, row.open)]
        for timing in timings:
            timing.calibrate(args.min_time)
        # Rounds rather than back-to-back repetitions: on a shared machine a
        # busy spell then costs every row one sample, not one row all of them.
        # The order is shuffled each round so that no row always runs right
        # after the raw benchmark (or any other particular row).
        shuffle = random.Random(0x5EA1).shuffle
        raw: RawResults | None = None
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}", file=sys.stderr)
            order: list[Timing | None] = [*timings, None]  # None: the raw benchmark
            shuffle(order)
            for item in order:
                if item is None:
                    raw = merge_best(raw, run_aead(binary, args.aead_seconds))
                else:
                    item.run()
        assert raw is not None
    finally:
        m.close()

    loads.append(os.getloadavg()[0])
    report = render(raw, rows, args, loads)
    print(report, end="")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"(written to {RESULTS.relative_to(ROOT)})", file=sys.stderr)
    missed = [r for r in ratios(raw, rows) if not r.ok]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
