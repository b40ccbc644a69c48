"""pytest-benchmark benchmarks of the block codec (group "codec").

Every plaintext fills its block (``max_plaintext`` bytes), so no padding is
generated and the numbers are AEAD throughput plus envelope overhead.
``extra_info["plaintext_bytes"]`` is the plaintext per call, for MB/s.

``pytest bench --benchmark-disable`` runs each benchmark once as a smoke test;
``bench/codec_report.py`` gives the MB/s table against raw libsodium.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest

import doublecrypt
import pure_codec

BLOCK_SIZES = [4096, 65536]
THREADS = [1, 2]
BATCH = 64
KIND = int(doublecrypt.ObjectKind.DATA)
KEY = os.urandom(32)
VOLUME_ID = os.urandom(16)

pytestmark = pytest.mark.benchmark(group="codec")

block_sizes = pytest.mark.parametrize("block_size", BLOCK_SIZES, ids=lambda b: f"{b // 1024}K")
thread_counts = pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"t{t}")


@functools.cache
def _codec(block_size: int, threads: int) -> doublecrypt.Codec:
    return doublecrypt.Codec(KEY, VOLUME_ID, block_size=block_size, threads=threads)


@functools.cache
def _plaintexts(block_size: int) -> list[bytes]:
    size = block_size - pure_codec.OVERHEAD_BYTES
    return [os.urandom(size) for _ in range(BATCH)]


def _note(benchmark: Any, block_size: int, items: int) -> None:
    benchmark.extra_info["block_size"] = block_size
    benchmark.extra_info["plaintext_bytes"] = items * (block_size - pure_codec.OVERHEAD_BYTES)


@block_sizes
def test_seal(benchmark: Any, block_size: int) -> None:
    codec, plaintext = _codec(block_size, 1), _plaintexts(block_size)[0]
    _note(benchmark, block_size, 1)
    block = benchmark(codec.seal, 7, KIND, plaintext)
    assert codec.open(7, KIND, block) == plaintext


@block_sizes
def test_open(benchmark: Any, block_size: int) -> None:
    codec, plaintext = _codec(block_size, 1), _plaintexts(block_size)[0]
    block = codec.seal(7, KIND, plaintext)
    _note(benchmark, block_size, 1)
    assert benchmark(codec.open, 7, KIND, block) == plaintext


@block_sizes
@thread_counts
def test_seal_batch(benchmark: Any, block_size: int, threads: int) -> None:
    codec, plaintexts = _codec(block_size, threads), _plaintexts(block_size)
    ids = list(range(BATCH))
    _note(benchmark, block_size, BATCH)
    blocks = benchmark(codec.seal_batch, ids, KIND, plaintexts)
    assert codec.open_batch(ids, KIND, blocks)[BATCH - 1] == plaintexts[-1]


@block_sizes
@thread_counts
def test_open_batch(benchmark: Any, block_size: int, threads: int) -> None:
    codec, plaintexts = _codec(block_size, threads), _plaintexts(block_size)
    ids = list(range(BATCH))
    blocks = bytes(codec.seal_batch(ids, KIND, plaintexts))
    _note(benchmark, block_size, BATCH)
    opened = benchmark(codec.open_batch, ids, KIND, blocks)
    assert opened[0] == plaintexts[0]
    assert opened[BATCH - 1] == plaintexts[-1]


@block_sizes
def test_pure_seal(benchmark: Any, block_size: int) -> None:
    plaintext = _plaintexts(block_size)[0]
    _note(benchmark, block_size, 1)
    block = benchmark(pure_codec.seal, KEY, VOLUME_ID, block_size, 7, KIND, plaintext)
    assert _codec(block_size, 1).open(7, KIND, block) == plaintext


@block_sizes
def test_pure_open(benchmark: Any, block_size: int) -> None:
    plaintext = _plaintexts(block_size)[0]
    block = _codec(block_size, 1).seal(7, KIND, plaintext)
    _note(benchmark, block_size, 1)
    opened = benchmark(pure_codec.open, KEY, VOLUME_ID, block_size, 7, KIND, block)
    assert opened == plaintext
