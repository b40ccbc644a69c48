"""The AEAD block codec: round trips, tampering, padding, and an independent
cross-check of the envelope with PyNaCl."""

from __future__ import annotations

import os
import struct
import threading

import nacl.bindings
import pytest
from hypothesis import given
from hypothesis import strategies as st

import doublecrypt
from doublecrypt import Codec, ObjectKind, errors

KEY = bytes(range(32))
VOLUME = bytes(range(100, 116))
BLOCK_SIZES = [4096 << i for i in range(9)]  # 4 KiB .. 1 MiB

# Byte positions of the envelope, by field (header layout in codec.h).
FIELDS = {
    "length": range(0, 4),
    "kind": range(4, 5),
    "version": range(5, 6),
    "reserved": range(6, 8),
    "nonce": range(8, 32),
}


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec(KEY, VOLUME, block_size=4096)


@given(
    block_size=st.sampled_from(BLOCK_SIZES),
    block_id=st.integers(0, 2**64 - 1),
    kind=st.integers(1, 255),
    data=st.data(),
)
def test_round_trip(block_size: int, block_id: int, kind: int, data: st.DataObject) -> None:
    codec = Codec(KEY, VOLUME, block_size=block_size, threads=1)
    plaintext = data.draw(st.binary(max_size=min(codec.max_plaintext, 4096)))
    if data.draw(st.booleans()):  # sometimes fill the block completely
        plaintext = os.urandom(codec.max_plaintext)
    block = codec.seal(block_id, kind, plaintext)
    assert len(block) == block_size
    assert codec.open(block_id, kind, block) == plaintext


@given(
    plaintext=st.binary(min_size=1, max_size=300),
    field=st.sampled_from([*FIELDS, "ciphertext", "tag"]),
    data=st.data(),
)
def test_any_altered_envelope_byte_fails_authentication(
    codec: Codec, plaintext: bytes, field: str, data: st.DataObject
) -> None:
    block = bytearray(codec.seal(7, ObjectKind.INODE, plaintext))
    body_end = 32 + len(plaintext) + 16
    positions = {
        **FIELDS,
        "ciphertext": range(32, 32 + len(plaintext)),
        "tag": range(32 + len(plaintext), body_end),
    }[field]
    position = data.draw(st.sampled_from(positions))
    flip = data.draw(st.integers(1, 255))
    block[position] ^= flip
    with pytest.raises(errors.AuthenticationError) as info:
        codec.open(7, ObjectKind.INODE, block)
    assert str(info.value) == "authentication failed"  # no detail, no oracle


def test_padding_is_not_authenticated_but_carries_nothing(codec: Codec) -> None:
    block = bytearray(codec.seal(7, ObjectKind.DATA, b"abc"))
    block[-1] ^= 0xFF
    assert codec.open(7, ObjectKind.DATA, block) == b"abc"


@pytest.mark.parametrize(
    "change",
    ["block id", "kind", "volume", "key", "format version"],
)
def test_envelope_is_bound_to_its_place(codec: Codec, change: str) -> None:
    block = codec.seal(7, ObjectKind.INODE, b"inode bytes")
    with pytest.raises(errors.AuthenticationError):
        if change == "block id":
            codec.open(8, ObjectKind.INODE, block)
        elif change == "kind":
            codec.open(7, ObjectKind.DIRECTORY, block)
        elif change == "volume":
            Codec(KEY, bytes(16), block_size=4096).open(7, ObjectKind.INODE, block)
        elif change == "key":
            Codec(bytes(32), VOLUME, block_size=4096).open(7, ObjectKind.INODE, block)
        else:
            forged = bytearray(block)
            forged[5] = 1
            codec.open(7, ObjectKind.INODE, forged)


def test_random_garbage_never_opens(codec: Codec) -> None:
    for _ in range(200):
        with pytest.raises(errors.AuthenticationError):
            codec.open(1, 1, os.urandom(4096))
    with pytest.raises(errors.AuthenticationError):
        codec.open(1, 1, bytes(4096))


@given(plaintext=st.binary(max_size=1000))
def test_two_seals_differ_everywhere_after_the_header(codec: Codec, plaintext: bytes) -> None:
    a = codec.seal(9, ObjectKind.DATA, plaintext)
    b = codec.seal(9, ObjectKind.DATA, plaintext)
    assert a[:8] == b[:8]  # length, kind, version, reserved
    equal = sum(x == y for x, y in zip(a[8:], b[8:], strict=True))
    # Independent random bytes agree with probability 1/256 each: ~16 of 4088.
    assert equal < 64


def test_padding_looks_random(codec: Codec) -> None:
    block = codec.seal(1, ObjectKind.DATA, b"")
    padding = block[32 + 16 :]
    counts = [padding.count(bytes([v])) for v in range(256)]
    # 4048 bytes: mean 15.8 per value; a stuck or zeroed generator fails this.
    assert max(counts) < 45
    assert len(set(padding)) > 200


def test_envelope_is_standard_xchacha20poly1305() -> None:
    """Open a C-sealed envelope with PyNaCl (its own libsodium build)."""
    codec = Codec(KEY, VOLUME, block_size=8192)
    plaintext = b"interoperable " * 40
    block_id = 0x0102030405060708
    block = codec.seal(block_id, ObjectKind.EXTENT_MAP, plaintext)
    body_len, kind, version, reserved = struct.unpack_from("<IBBH", block)
    assert (kind, version, reserved) == (ObjectKind.EXTENT_MAP, 2, 0)
    assert body_len == len(plaintext) + 16
    nonce = block[8:32]
    ad = VOLUME + struct.pack("<Q", block_id) + block[:8]
    opened = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        block[32 : 32 + body_len], ad, nonce, KEY
    )
    assert opened == plaintext
    # And the other direction: PyNaCl seals, the C codec opens.
    nonce = os.urandom(24)
    header = struct.pack("<IBBH", len(plaintext) + 16, ObjectKind.EXTENT_MAP, 2, 0)
    ad = VOLUME + struct.pack("<Q", block_id) + header
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, KEY)
    forged = header + nonce + ct
    forged += os.urandom(8192 - len(forged))
    assert codec.open(block_id, ObjectKind.EXTENT_MAP, forged) == plaintext


@given(
    threads=st.sampled_from([1, 2, 4]),
    lengths=st.lists(st.integers(0, 4096 - 48), min_size=1, max_size=40),
)
def test_batch_round_trip(threads: int, lengths: list[int]) -> None:
    codec = Codec(KEY, VOLUME, block_size=4096, threads=threads)
    plaintexts = [os.urandom(n) for n in lengths]
    ids = [1000 + i for i in range(len(lengths))]
    kinds = bytes((i % 5) + 1 for i in range(len(lengths)))
    blocks = codec.seal_batch(ids, kinds, plaintexts)
    for i, block_id in enumerate(ids):
        single = codec.open(block_id, kinds[i], blocks[i * 4096 : (i + 1) * 4096])
        assert single == plaintexts[i]
    opened = codec.open_batch(ids, kinds, blocks)
    assert len(opened) == len(ids)
    assert [bytes(opened[i]) for i in range(len(ids))] == plaintexts
    assert opened.lengths == lengths


def test_batch_reports_the_failing_block() -> None:
    codec = Codec(KEY, VOLUME, block_size=4096, threads=2)
    blocks = codec.seal_batch(list(range(10)), ObjectKind.DATA, [b"x" * 10] * 10)
    blocks[4096 * 6 + 40] ^= 1
    with pytest.raises(errors.AuthenticationError):
        codec.open_batch(list(range(10)), ObjectKind.DATA, blocks)
    # Moving two valid blocks (swapping their places) is also caught.
    swapped = bytearray(codec.seal_batch([1, 2], ObjectKind.DATA, [b"a", b"b"]))
    swapped[:4096], swapped[4096:] = swapped[4096:], swapped[:4096]
    with pytest.raises(errors.AuthenticationError):
        codec.open_batch([1, 2], ObjectKind.DATA, swapped)


def test_batch_into_caller_buffers() -> None:
    codec = Codec(KEY, VOLUME, block_size=4096)
    out = bytearray(3 * 4096)
    view = codec.seal_batch([5, 6, 7], ObjectKind.DATA, [b"1", b"22", b"333"], out=out)
    assert view.obj is out
    plain = bytearray(3 * codec.max_plaintext)
    opened = codec.open_batch([5, 6, 7], ObjectKind.DATA, out, out=plain)
    assert opened.buffer.obj is plain
    assert bytes(opened[-1]) == b"333"
    with pytest.raises(IndexError):
        opened[3]


def test_bad_arguments() -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Codec(KEY, VOLUME, block_size=5000)
    with pytest.raises(errors.InvalidArgumentError):
        Codec(KEY, VOLUME, block_size=2048)
    with pytest.raises(errors.InvalidArgumentError):
        Codec(KEY, VOLUME, block_size=2 * 1024 * 1024)
    with pytest.raises(errors.InvalidArgumentError):
        Codec(KEY[:31], VOLUME)
    with pytest.raises(errors.InvalidArgumentError):
        Codec(KEY, VOLUME[:15])
    with pytest.raises(errors.InvalidArgumentError):
        Codec(KEY, VOLUME, threads=-1)
    codec = Codec(KEY, VOLUME, block_size=4096)
    with pytest.raises(errors.InvalidArgumentError):
        codec.seal(1, 0, b"x")
    with pytest.raises(errors.InvalidArgumentError):
        codec.seal(1, 256, b"x")
    with pytest.raises(errors.InvalidArgumentError):
        codec.seal(1, 1, bytes(codec.max_plaintext + 1))
    with pytest.raises(errors.InvalidArgumentError):
        codec.open(1, 1, bytes(4095))
    with pytest.raises(errors.InvalidArgumentError):
        codec.seal_batch([1, 2], 1, [b"x"])
    with pytest.raises(errors.InvalidArgumentError):
        codec.seal_batch([1], 1, [b"x"], out=bytes(4096))
    with pytest.raises(errors.InvalidArgumentError):
        codec.open_batch([1, 2], 1, bytes(4096))
    with pytest.raises(errors.InvalidArgumentError):
        codec.seal_batch([1], bytes([1, 2]), [b"x"])
    codec.close()
    codec.close()
    with pytest.raises(errors.InvalidArgumentError, match="closed"):
        codec.seal(1, 1, b"x")


def test_shared_between_threads() -> None:
    codec = Codec(KEY, VOLUME, block_size=4096, threads=2)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(50):
                ids = [seed * 1000 + i * 8 + j for j in range(8)]
                plain = [os.urandom(100 + j) for j in range(8)]
                blocks = codec.seal_batch(ids, ObjectKind.DATA, plain)
                opened = codec.open_batch(ids, ObjectKind.DATA, blocks)
                assert [bytes(opened[j]) for j in range(8)] == plain
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []


def test_constants_agree_with_the_header() -> None:
    assert doublecrypt.MIN_BLOCK_SIZE == 4096
    assert doublecrypt.MAX_BLOCK_SIZE == 1 << 20
    assert doublecrypt.DEFAULT_BLOCK_SIZE == 65536
    assert doublecrypt.FORMAT_VERSION == 2
    codec = Codec(KEY, VOLUME)
    assert codec.block_size == 65536
    assert codec.max_plaintext == 65536 - 48
    assert codec.threads >= 1


def test_random_bytes() -> None:
    a, b = doublecrypt.random_bytes(4096), doublecrypt.random_bytes(4096)
    assert len(a) == 4096 and a != b
    assert doublecrypt.random_bytes(0) == b""
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.random_bytes(-1)


def test_random_stream_differs_after_fork() -> None:
    read_fd, write_fd = os.pipe()
    doublecrypt.random_bytes(32)  # seed in the parent first
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(write_fd, doublecrypt.random_bytes(32))
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_fd, 32)
    os.close(read_fd)
    os.close(write_fd)
    assert child != doublecrypt.random_bytes(32)
    assert len(child) == 32
