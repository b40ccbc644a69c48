"""Scale: no single-page limits. 100,000 entries in one directory, a 4 GiB
sparse file, an extent map of tens of thousands of chunks, deep nesting."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import doublecrypt

KEY = bytes(range(32))


def test_hundred_thousand_files_in_one_directory(tmp_path: Path) -> None:
    image = tmp_path / "many.img"
    n = 100_000
    with doublecrypt.open_image(image, key=KEY, create=True, size=64 << 20, block_size=65536) as fs:
        fs.mkdir("/big")
        with fs.transaction():
            for i in range(n):
                fs._h.create(f"/big/file-{i:06d}", 0o644, True)
        assert fs.stat("/big").size == n
    with doublecrypt.open_image(image, key=KEY) as fs:
        rng = random.Random(7)
        for i in rng.sample(range(n), 200):
            assert fs.stat(f"/big/file-{i:06d}").size == 0
        assert not fs.exists("/big/file-100000")
        names = fs.listdir("/big")
        assert len(names) == n
        assert names == sorted(names)
        report = fs.fsck()
        assert report.files == n and report.errors == 0
        # The namespace spans many pages: it is a real tree.
        assert report.metadata_blocks > 10
        # Removing half keeps everything consistent (pages merge).
        with fs.transaction():
            for i in range(0, n, 2):
                fs.remove(f"/big/file-{i:06d}")
        assert len(fs.listdir("/big")) == n // 2
        fs.fsck()


def test_sparse_four_gib_file(tmp_path: Path) -> None:
    with doublecrypt.open_image(
        tmp_path / "sparse.img", key=KEY, create=True, size=16 << 20, block_size=65536
    ) as fs:
        size = 4 << 30
        with fs.open("/sparse", "wb") as f:
            f.write(b"start")
            f.seek(size // 2)
            f.write(b"middle")
            f.seek(size - 3)
            f.write(b"end")
        st = fs.stat("/sparse")
        assert st.size == size and st.blocks == 3
        with fs.open("/sparse", "rb") as f:
            assert f.read(5) == b"start"
            f.seek(size // 2 - 4)
            assert f.read(10) == b"\0\0\0\0middle"
            f.seek(size - 3)
            assert f.read() == b"end"
            f.seek(size // 4)
            assert f.read(1 << 20) == bytes(1 << 20)
        free = fs.statvfs().free_blocks
        assert free > fs.statvfs().total_blocks - 20  # holes take nothing
        fs.fsck()


def test_extent_map_of_many_chunks(tmp_path: Path) -> None:
    # 4 KiB blocks: ~100 extents per page, so 20,000 chunks need a two-level
    # extent tree; overwrite a scattered few and truncate through the middle.
    image = tmp_path / "extents.img"
    with doublecrypt.open_image(image, key=KEY, create=True, size=128 << 20, block_size=4096) as fs:
        chunk = fs.statvfs().chunk_size
        data = bytearray(os.urandom(20_000 * chunk))
        with fs.open("/f", "wb") as f:
            f.write(data)
        rng = random.Random(3)
        with fs.open("/f", "r+b") as f:
            for _ in range(50):
                at = rng.randrange(len(data) - 100)
                patch = os.urandom(100)
                f.seek(at)
                f.write(patch)
                data[at : at + 100] = patch
        fs.truncate("/f", len(data) // 2 + 17)
        del data[len(data) // 2 + 17 :]
    with doublecrypt.open_image(image, key=KEY) as fs:
        back = fs.read_bytes("/f")
        assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
        report = fs.fsck()
        assert report.data_blocks == (len(data) + chunk - 1) // chunk
        assert report.metadata_blocks > 50


def test_twenty_levels_of_nesting() -> None:
    with doublecrypt.FileSystem.format(doublecrypt.MemoryStore(512, 4096), KEY) as fs:
        deep = "/" + "/".join(f"level{i:02d}" for i in range(20))
        fs.makedirs(deep)
        fs.write_bytes(deep + "/leaf.txt", b"deep")
        assert fs.read_bytes(deep + "/leaf.txt") == b"deep"
        fs.rename("/level00", "/moved")
        moved = deep.replace("/level00", "/moved", 1)
        assert fs.read_bytes(moved + "/leaf.txt") == b"deep"
        assert len(list(fs.walk("/"))) == 21  # the root and 20 levels
        fs.fsck()
