"""The pure-Python envelope (bench/pure_codec.py) and the C codec agree.

If they did not, the codec benchmarks would compare two different formats.
"""

from __future__ import annotations

import os

import pytest
from nacl import bindings

import doublecrypt
import pure_codec

BLOCK_SIZES = [4096, 65536]


def _lengths(block_size: int) -> list[int]:
    top = block_size - pure_codec.OVERHEAD_BYTES
    return [0, 1, 255, 1000, top - 257, top - 1, top]


def test_hchacha20_known_answer() -> None:
    # draft-irtf-cfrg-xchacha-03, section 2.2.1
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    expected = bytes.fromhex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    assert pure_codec.hchacha20(key, nonce) == expected


@pytest.mark.parametrize("length", [0, 1, 64, 1000, 65536])
def test_xchacha20poly1305_matches_libsodium(length: int) -> None:
    key, nonce, ad, message = os.urandom(32), os.urandom(24), os.urandom(32), os.urandom(length)
    ours = pure_codec.xchacha20poly1305_encrypt(key, nonce, message, ad)
    assert ours == bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)
    assert pure_codec.xchacha20poly1305_decrypt(key, nonce, ours, ad) == message


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_pure_seal_opens_with_c_codec(block_size: int) -> None:
    key, volume_id = os.urandom(32), os.urandom(16)
    codec = doublecrypt.Codec(key, volume_id, block_size=block_size, threads=1)
    for i, length in enumerate(_lengths(block_size)):
        block_id, kind = (1 << 64) - 1 - i, 1 + i * 37 % 255
        plaintext = os.urandom(length)
        block = pure_codec.seal(key, volume_id, block_size, block_id, kind, plaintext)
        assert len(block) == block_size
        assert codec.open(block_id, kind, block) == plaintext
        with pytest.raises(doublecrypt.AuthenticationError):
            codec.open(block_id ^ 1, kind, block)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_c_seal_opens_with_pure_codec(block_size: int) -> None:
    key, volume_id = os.urandom(32), os.urandom(16)
    codec = doublecrypt.Codec(key, volume_id, block_size=block_size, threads=1)
    for i, length in enumerate(_lengths(block_size)):
        block_id, kind = i * 0x0101010101, 255 - i
        plaintext = os.urandom(length)
        block = codec.seal(block_id, kind, plaintext)
        assert pure_codec.open(key, volume_id, block_size, block_id, kind, block) == plaintext


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_c_batch_seal_opens_with_pure_codec(block_size: int) -> None:
    key, volume_id = os.urandom(32), os.urandom(16)
    codec = doublecrypt.Codec(key, volume_id, block_size=block_size, threads=2)
    lengths = _lengths(block_size)
    plaintexts = [os.urandom(n) for n in lengths]
    ids = list(range(100, 100 + len(lengths)))
    blocks = codec.seal_batch(ids, doublecrypt.ObjectKind.DATA, plaintexts)
    for i, plaintext in enumerate(plaintexts):
        block = bytes(blocks[i * block_size : (i + 1) * block_size])
        opened = pure_codec.open(key, volume_id, block_size, ids[i], 5, block)
        assert opened == plaintext


def test_pure_open_rejects_what_the_c_codec_rejects() -> None:
    key, volume_id, block_size = os.urandom(32), os.urandom(16), 4096
    codec = doublecrypt.Codec(key, volume_id, block_size=block_size, threads=1)
    good = codec.seal(42, 3, b"secret")
    for offset in (0, 4, 5, 6, 8, 31, 32, 32 + 6 + 15):
        bad = bytearray(good)
        bad[offset] ^= 0x01
        with pytest.raises(pure_codec.AuthenticationError):
            pure_codec.open(key, volume_id, block_size, 42, 3, bytes(bad))
        with pytest.raises(doublecrypt.AuthenticationError):
            codec.open(42, 3, bytes(bad))
    # Padding is not authenticated by either implementation.
    padded = bytearray(good)
    padded[-1] ^= 0x01
    assert pure_codec.open(key, volume_id, block_size, 42, 3, bytes(padded)) == b"secret"
    assert codec.open(42, 3, bytes(padded)) == b"secret"
    for args in ((43, 3), (42, 4)):
        with pytest.raises(pure_codec.AuthenticationError):
            pure_codec.open(key, volume_id, block_size, *args, good)
    with pytest.raises(pure_codec.AuthenticationError):
        pure_codec.open(key, os.urandom(16), block_size, 42, 3, good)
    with pytest.raises(pure_codec.AuthenticationError):
        pure_codec.open(os.urandom(32), volume_id, block_size, 42, 3, good)
