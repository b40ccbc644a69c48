"""Parts of the object-store backend that need no store: URL parsing and the
read-ahead of sequential single-block reads (the rest runs against SeaweedFS
in tests/test_objectstore.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from doublecrypt import errors
from doublecrypt.objectstore import S3Location
from doublecrypt.objectstore.readahead import ReadAhead


def test_locations() -> None:
    loc = S3Location.parse("s3://bucket/some/prefix/")
    assert (loc.bucket, loc.prefix) == ("bucket", "some/prefix")
    assert loc.key("meta.json") == "some/prefix/meta.json"
    assert loc.child("vol").key("server.json") == "some/prefix/vol/server.json"
    assert S3Location.parse("s3://bucket").key("meta.json") == "meta.json"
    for bad in ("bucket/prefix", "s3://", "s3:///prefix", "http://bucket/x"):
        with pytest.raises(errors.InvalidArgumentError):
            S3Location.parse(bad)


class Blocks:
    """A fake store: block i holds bytes([i % 256]); counts fetches."""

    def __init__(self) -> None:
        self.fetched: list[int] = []
        self.lock = threading.Lock()

    def fetch(self, block: int) -> bytes | None:
        with self.lock:
            self.fetched.append(block)
        return None if block == 13 else bytes([block % 256]) * 4


@pytest.fixture
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(4)


def test_sequential_reads_are_fetched_ahead(pool: ThreadPoolExecutor) -> None:
    blocks = Blocks()
    ahead = ReadAhead(pool, blocks.fetch, total_blocks=100, max_blocks=8)
    for block in range(3, 60):
        expected = None if block == 13 else bytes([block]) * 4
        assert ahead.read(block) == expected
    pool.shutdown(wait=True)
    assert sorted(set(blocks.fetched)) == list(range(3, 60 + 8))  # never past the window
    assert len(blocks.fetched) == len(set(blocks.fetched))  # each block fetched once


def test_reads_slightly_out_of_order_keep_the_window(pool: ThreadPoolExecutor) -> None:
    blocks = Blocks()
    ahead = ReadAhead(pool, blocks.fetch, total_blocks=100, max_blocks=8)
    order = [3, 4, 6, 5, 8, 7, 9, 12, 10, 11, 14, 13]  # two threads racing
    for block in order:
        assert ahead.read(block) == (None if block == 13 else bytes([block]) * 4)
    pool.shutdown(wait=True)
    assert len(blocks.fetched) == len(set(blocks.fetched))


def test_random_reads_fetch_nothing_extra(pool: ThreadPoolExecutor) -> None:
    blocks = Blocks()
    ahead = ReadAhead(pool, blocks.fetch, total_blocks=1000, max_blocks=8)
    for block in (500, 20, 900, 300, 700):
        assert ahead.read(block) == bytes([block % 256]) * 4
    pool.shutdown(wait=True)
    assert blocks.fetched == [500, 20, 900, 300, 700]


def test_writes_and_forget_drop_what_was_fetched(pool: ThreadPoolExecutor) -> None:
    blocks = Blocks()
    ahead = ReadAhead(pool, blocks.fetch, total_blocks=100, max_blocks=8)
    for block in range(3, 10):
        ahead.read(block)
    ahead.written([10, 11])
    ahead.forget()
    assert ahead.read(10) == bytes([10]) * 4
    pool.shutdown(wait=True)
    assert blocks.fetched.count(10) >= 2  # fetched again after being dropped


def test_a_failed_fetch_ahead_surfaces_when_read(pool: ThreadPoolExecutor) -> None:
    def fetch(block: int) -> bytes | None:
        if block == 7:
            raise errors.ObjectStoreError("GET failed")
        return b"x"

    ahead = ReadAhead(pool, fetch, total_blocks=100, max_blocks=8)
    for block in range(3, 7):
        ahead.read(block)
    with pytest.raises(errors.ObjectStoreError):
        ahead.read(7)
    assert ahead.read(8) == b"x"
