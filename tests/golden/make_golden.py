"""How tests/golden/v2/basic.img was made (kept for the record; the image
itself is frozen and must never be regenerated: it proves that volumes
written by this format version keep opening)."""

from __future__ import annotations

import sys
from pathlib import Path

import doublecrypt

KEY = bytes(range(0x40, 0x60))
CONTENT = {
    "/hello.txt": b"hello, golden world\n",
    "/empty": b"",
    "/docs/readme.md": b"# frozen\n" * 10,
    "/docs/nested/pattern.bin": bytes(i % 251 for i in range(20_000)),
}
SPARSE = ("/sparse.bin", 1 << 20, b"tail")  # path, offset, data


def make(path: Path) -> None:
    with doublecrypt.open_image(path, key=KEY, create=True, size=128 * 4096, block_size=4096) as fs:
        fs.makedirs("/docs/nested")
        fs.mkdir("/emptydir")
        for name, data in CONTENT.items():
            fs.write_bytes(name, data)
        with fs.open(SPARSE[0], "wb") as f:
            f.seek(SPARSE[1])
            f.write(SPARSE[2])
        fs.set_mtime("/hello.txt", 1_700_000_000_000_000_000)


if __name__ == "__main__":
    make(Path(sys.argv[1]))
