"""Filesystem benchmark report: ``make bench`` (or ``python bench/fs_report.py``).

Everything is measured in one run on this machine and reported as ratios to
baselines from the same run, because the machines are shared and noisy:

- sequential write and read of a large file through ``fs.open`` on an image
  file (one sync at the end), against min(raw two-thread XChaCha20-Poly1305
  from bench/c/bench_aead.c, plain file I/O of the same size in the same
  directory; reads with the page cache dropped when allowed);
- 10,000 files of 4 KiB created in one transaction: time and blocks written
  per file;
- blocks written by one small overwrite in a 1 GiB file;
- lookup time in directories of 1,000 vs 100,000 entries;
- mount time of a volume holding 100,000 files.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import doublecrypt
from codec_report import build_aead, run_aead

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fs.md"
KEY = bytes(range(32))
PIECE = 8 << 20  # bytes per write()/read() call in the sequential runs


class CountingStore(doublecrypt.CustomStore):
    """In-memory blocks that count how many are written."""

    def __init__(self, block_size: int, total_blocks: int) -> None:
        self.blocks: dict[int, bytes] = {}
        self.written = 0
        super().__init__(block_size, total_blocks)

    def read_into(self, ids: list[int], out: memoryview) -> None:
        bs = self.backend_block_size
        for i, block in enumerate(ids):
            out[i * bs : (i + 1) * bs] = self.blocks.get(block, bytes(bs))

    def write_from(self, ids: list[int], data: memoryview) -> None:
        bs = self.backend_block_size
        self.written += len(ids)
        for i, block in enumerate(ids):
            self.blocks[block] = bytes(data[i * bs : (i + 1) * bs])


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_disk(directory: Path, size: int) -> tuple[float, float]:
    """MB/s of writing `size` bytes (then fsync) and reading them back."""
    path = directory / "plain.bin"
    chunk = os.urandom(PIECE)

    def write() -> None:
        with open(path, "wb") as f:
            for _ in range(size // PIECE):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())

    w = timed(write)
    drop_caches()

    def read() -> None:
        with open(path, "rb", buffering=0) as f:
            while f.read(PIECE):
                pass

    r = timed(read)
    path.unlink()
    return size / w / 1e6, size / r / 1e6


def sequential(directory: Path, size: int) -> tuple[float, float]:
    """MB/s of writing and reading `size` bytes through fs.open."""
    image = directory / "seq.img"
    data = os.urandom(PIECE)
    fs = doublecrypt.open_image(image, key=KEY, create=True, size=size + size // 8 + (16 << 20))

    def write() -> None:
        with fs.open("/big", "wb") as f:
            for _ in range(size // PIECE):
                f.write(data)
        fs.sync()

    w = timed(write)
    fs.close()
    drop_caches()
    fs = doublecrypt.open_image(image, key=KEY)
    buf = bytearray(PIECE)

    def read() -> None:
        with fs.open("/big", "rb", buffering=0) as f:
            raw = cast(io.RawIOBase, f)
            while raw.readinto(buf):
                pass

    r = timed(read)
    fs.close()
    image.unlink()
    return size / w / 1e6, size / r / 1e6


def many_small_files(count: int = 10_000) -> tuple[float, float]:
    """(seconds, blocks written per file) for `count` 4 KiB files in one
    transaction on 64 KiB blocks."""
    store = CountingStore(65536, count + 2048)
    fs = doublecrypt.FileSystem.format(store, KEY)
    payload = os.urandom(4096)
    before = store.written

    def create() -> None:
        with fs.transaction():
            for i in range(count):
                fs.write_bytes(f"/f{i:05d}", payload)

    seconds = timed(create)
    per_file = (store.written - before) / count
    fs.close()
    return seconds, per_file


def small_overwrite(size: int = 1 << 30) -> tuple[int, int]:
    """Blocks written by one 100-byte overwrite in a file of `size` bytes, and
    the fsck metadata block count of that file's extent map for context."""
    store = CountingStore(65536, size // 65536 + 256)
    fs = doublecrypt.FileSystem.format(store, KEY)
    data = os.urandom(PIECE)
    with fs.open("/big", "wb") as f:
        for _ in range(size // PIECE):
            f.write(data)
    metadata = fs.fsck().metadata_blocks
    before = store.written
    with fs.open("/big", "r+b", buffering=0) as f:
        f.seek(size // 2 + 12345)
        f.write(os.urandom(100))
    written = store.written - before
    fs.close()
    return written, metadata


def lookups(entries: int, probes: int = 20_000) -> float:
    """Microseconds per stat() of a random existing name."""
    fs = doublecrypt.FileSystem.format(doublecrypt.MemoryStore(8192, 65536), KEY)
    fs.mkdir("/d")
    with fs.transaction():
        for i in range(entries):
            fs._h.create(f"/d/entry-{i:07d}", 0o644, True)
    rng = random.Random(1)
    names = [f"/d/entry-{rng.randrange(entries):07d}" for _ in range(probes)]

    def probe() -> None:
        for name in names:
            fs.stat(name)

    seconds = min(timed(probe) for _ in range(3))
    fs.close()
    return seconds / probes * 1e6


def mount_time(directory: Path, files: int = 100_000) -> float:
    image = directory / "mount.img"
    with doublecrypt.open_image(image, key=KEY, create=True, size=64 << 20) as fs:
        fs.mkdir("/m")
        with fs.transaction():
            for i in range(files):
                fs._h.create(f"/m/f{i:06d}", 0o644, True)
    drop_caches()
    seconds = min(timed(lambda: doublecrypt.open_image(image, key=KEY).close()) for _ in range(3))
    image.unlink()
    return seconds


def render(rows: list[tuple[str, str, str, str]]) -> str:
    out = ["| measurement | value | baseline / target | verdict |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256, help="sequential file size")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the images")
    args = parser.parse_args(argv)
    size = args.size_mib << 20
    directory = Path(tempfile.mkdtemp(prefix="dc-bench-", dir=args.dir))
    try:
        raw = run_aead(build_aead(), 0.5)
        aead_seal2 = raw["seal"]["65536"]["2"]
        aead_open2 = raw["open"]["65536"]["2"]
        disk_w, disk_r = plain_disk(directory, size)
        fs_w, fs_r = sequential(directory, size)
        small_s, per_file = many_small_files()
        overwrite, meta = small_overwrite()
        small_dir, big_dir = lookups(1_000), lookups(100_000)
        mount = mount_time(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    limit_w, limit_r = min(aead_seal2, disk_w), min(aead_open2, disk_r)
    lookup_ratio = big_dir / small_dir
    rows = [
        (
            "raw AEAD 64 KiB, 2 threads (seal / open)",
            f"{aead_seal2:.0f} / {aead_open2:.0f} MB/s",
            "physical limit",
            "",
        ),
        (
            f"plain file write+fsync / read, {args.size_mib} MiB",
            f"{disk_w:.0f} / {disk_r:.0f} MB/s",
            "disk baseline",
            "",
        ),
        (
            "fs.open sequential write (one sync)",
            f"{fs_w:.0f} MB/s",
            f"{fs_w / limit_w:.2f}x of {limit_w:.0f} (target >= 0.6x)",
            "PASS" if fs_w >= 0.6 * limit_w else "MISS",
        ),
        (
            "fs.open sequential read",
            f"{fs_r:.0f} MB/s",
            f"{fs_r / limit_r:.2f}x of {limit_r:.0f} (target >= 0.7x)",
            "PASS" if fs_r >= 0.7 * limit_r else "MISS",
        ),
        (
            "10,000 x 4 KiB files, one transaction",
            f"{small_s:.2f} s ({10_000 / small_s:.0f} files/s)",
            f"{per_file:.3f} blocks written per file",
            "",
        ),
        (
            "100-byte overwrite in a 1 GiB file",
            f"{overwrite} blocks written",
            f"data + extent path + namespace path + superblock + root pointer ({meta} map blocks)",
            "",
        ),
        (
            "stat() in 1,000 vs 100,000 entries",
            f"{small_dir:.1f} / {big_dir:.1f} us",
            f"ratio {lookup_ratio:.2f} (target < 3)",
            "PASS" if lookup_ratio < 3 else "MISS",
        ),
        ("mount of a volume with 100,000 files", f"{mount * 1000:.0f} ms", "", ""),
    ]
    table = render(rows)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
