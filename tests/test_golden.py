"""Frozen images of each format version still open, verify and read back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from golden.make_golden import CONTENT, KEY, SPARSE

import doublecrypt
from doublecrypt import errors

GOLDEN = Path(__file__).resolve().parent / "golden"


def test_v2_basic_image_reads_back(tmp_path: Path) -> None:
    image = tmp_path / "basic.img"
    shutil.copy(GOLDEN / "v2" / "basic.img", image)  # mounting syncs: work on a copy
    with doublecrypt.open_image(image, key=KEY, read_only=True) as fs:
        for name, data in CONTENT.items():
            assert fs.read_bytes(name) == data, name
        path, offset, tail = SPARSE
        assert fs.read_bytes(path) == bytes(offset) + tail
        assert fs.stat("/hello.txt").mtime_ns == 1_700_000_000_000_000_000
        assert fs.listdir("/") == ["docs", "empty", "emptydir", "hello.txt", "sparse.bin"]
        assert fs.listdir("/emptydir") == []
        report = fs.fsck()
        assert (report.files, report.directories) == (5, 3)
    with pytest.raises(errors.AuthenticationError):
        doublecrypt.open_image(image, key=bytes(32))
