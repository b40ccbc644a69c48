"""Tampering and recovery: a reader never gets wrong data. Altered, swapped
or replayed blocks are authentication errors; a torn or forged newest root
pointer falls back to the other slot."""

from __future__ import annotations

import struct

import pytest

import doublecrypt
from doublecrypt import ObjectKind, errors
from memstores import DictStore

KEY = bytes(range(32))
BS = 4096


def mount(blocks: dict[int, bytes]) -> doublecrypt.FileSystem:
    return doublecrypt.FileSystem(DictStore(blocks, BS, 1024), KEY)


def kind_of(block: bytes) -> int:
    return block[4]


def blocks_of_kind(blocks: dict[int, bytes], kind: int) -> list[int]:
    return sorted(i for i, b in blocks.items() if i >= 3 and kind_of(b) == kind)


def fresh() -> dict[int, bytes]:
    blocks: dict[int, bytes] = {}
    with doublecrypt.FileSystem.format(DictStore(blocks, BS, 1024), KEY) as fs:
        fs.write_bytes("/a", b"A" * 100)
    return blocks


def newest_slot(blocks: dict[int, bytes]) -> int:
    gens = {slot: struct.unpack_from("<Q", blocks[slot])[0] for slot in (1, 2) if slot in blocks}
    return max(gens, key=lambda s: gens[s])


def test_flipped_data_byte_is_an_authentication_error() -> None:
    blocks = fresh()
    (data,) = blocks_of_kind(blocks, ObjectKind.DATA)
    b = bytearray(blocks[data])
    b[40] ^= 1
    blocks[data] = bytes(b)
    with mount(blocks) as fs:
        with pytest.raises(errors.AuthenticationError):
            fs.read_bytes("/a")
        with pytest.raises(errors.AuthenticationError):
            fs.fsck()


def test_replayed_older_block_is_detected() -> None:
    blocks = fresh()
    (old_id,) = blocks_of_kind(blocks, ObjectKind.DATA)
    old = blocks[old_id]
    with mount(blocks) as fs:
        fs.write_bytes("/a", b"B" * 100)
    live = [i for i in blocks_of_kind(blocks, ObjectKind.DATA) if i != old_id]
    assert live
    for i in live:  # put the old ciphertext where the new one lives
        blocks[i] = old
    with mount(blocks) as fs, pytest.raises(errors.AuthenticationError):
        fs.read_bytes("/a")


def test_swapped_metadata_blocks_are_detected() -> None:
    """A damaged tree below a valid root pointer is an error, never a silent
    fallback to an older generation."""
    blocks: dict[int, bytes] = {}
    fs = doublecrypt.FileSystem.format(DictStore(blocks, BS, 1024), KEY)
    with fs, fs.transaction():  # one commit: every namespace page is live
        for i in range(300):
            fs.write_bytes(f"/file-{i:04d}", b"x")
    pages = blocks_of_kind(blocks, ObjectKind.DIRECTORY)
    assert len(pages) >= 2
    a, b = pages[0], pages[1]
    blocks[a], blocks[b] = blocks[b], blocks[a]
    with pytest.raises((errors.AuthenticationError, errors.CorruptionError)):
        mount(blocks)


def test_torn_newest_root_pointer_falls_back() -> None:
    blocks = fresh()
    with mount(blocks) as fs:
        fs.write_bytes("/b", b"second")
        generation = fs.statvfs().generation
    slot = newest_slot(blocks)
    torn = bytearray(blocks[slot])
    torn[50] ^= 0xFF  # inside the MAC
    blocks[slot] = bytes(torn)
    with mount(blocks) as fs:
        assert fs.statvfs().generation == generation - 1
        assert fs.read_bytes("/a") == b"A" * 100
        assert not fs.exists("/b")
        fs.fsck()
        fs.write_bytes("/c", b"life goes on")
    with mount(blocks) as fs:
        assert fs.read_bytes("/c") == b"life goes on"


def test_root_pointer_copied_to_the_other_slot_is_refused() -> None:
    blocks = fresh()
    slot = newest_slot(blocks)
    blocks[3 - slot] = blocks[slot]  # the MAC binds the slot number
    with mount(blocks) as fs:
        assert fs.read_bytes("/a") == b"A" * 100  # the real slot still works
    blocks[slot] = bytes(BS)
    with pytest.raises(errors.CorruptionError):
        mount(blocks)


def test_garbage_superblock_falls_back_or_fails_cleanly() -> None:
    blocks = fresh()
    for i in blocks_of_kind(blocks, ObjectKind.SUPERBLOCK):
        blocks[i] = bytes(BS)
    with pytest.raises((errors.AuthenticationError, errors.CorruptionError)):
        mount(blocks)


def test_header_tampering_is_an_authentication_error() -> None:
    blocks = fresh()
    header = bytearray(blocks[0])
    header[40] = 1  # a reserved byte, covered by the header MAC
    blocks[0] = bytes(header)
    with pytest.raises(errors.AuthenticationError):
        mount(blocks)
