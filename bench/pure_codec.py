"""The doublecrypt block envelope in pure Python, on the ``cryptography`` package.

A reference point for the benchmarks: what the C codec is worth over the
obvious pure-Python implementation of the same format. The layout is the one
documented at the top of ``include/doublecrypt/codec.h``::

    0   u32 LE  body length L (ciphertext + 16-byte tag)
    4   u8      object kind (1..255)
    5   u8      format version (2)
    6   u16     reserved, zero
    8   24      random XChaCha20-Poly1305 nonce
    32  L       ciphertext || tag
    32+L        random padding up to block_size

with associated data = volume id (16) || block id (u64 LE) || the 8 header
bytes.

``cryptography`` has no XChaCha20-Poly1305, so it is built here the standard
way: the HChaCha20 sub-key of the key and the first 16 nonce bytes, then
ChaCha20-Poly1305 (RFC 8439) under that sub-key with the nonce
``4 zero bytes || last 8 nonce bytes``. HChaCha20 is the ChaCha20 block
function without the final addition of the input state, so it is recovered
from the first 64-byte keystream block of ``cryptography``'s ChaCha20 (whose
16-byte nonce is state words 12-15) by subtracting the input words 0-3 and
12-15 from the output words 0-3 and 12-15.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

__all__ = [
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "KEY_BYTES",
    "NONCE_BYTES",
    "OVERHEAD_BYTES",
    "TAG_BYTES",
    "VOLUME_ID_BYTES",
    "AuthenticationError",
    "hchacha20",
    "open",
    "seal",
    "xchacha20poly1305_decrypt",
    "xchacha20poly1305_encrypt",
]

FORMAT_VERSION = 2
KEY_BYTES = 32
VOLUME_ID_BYTES = 16
NONCE_BYTES = 24
TAG_BYTES = 16
HEADER_BYTES = 32
OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES
MIN_BLOCK_SIZE = 4096
MAX_BLOCK_SIZE = 1048576

# "expand 32-byte k", the ChaCha20 constants (state words 0-3).
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_WORDS = struct.Struct("<16I")
_SUBKEY = struct.Struct("<8I")
_HEADER = struct.Struct("<IBBH")
_U64 = struct.Struct("<Q")
_ZERO_BLOCK = bytes(64)
_MASK = 0xFFFFFFFF
# Below this many bytes of padding one os.urandom call is cheapest; above it a
# ChaCha20 keystream under a fresh random key is much faster than the kernel.
_URANDOM_PADDING_MAX = 256


class AuthenticationError(Exception):
    """The block is not an authentic envelope for this key, volume, block id
    and kind (the pure-Python counterpart of ``doublecrypt.AuthenticationError``)."""


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20(key, nonce16): 32 bytes, from one ChaCha20 keystream block."""
    encryptor = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor()
    out = _WORDS.unpack(encryptor.update(_ZERO_BLOCK))
    n = struct.unpack("<4I", nonce16)
    return _SUBKEY.pack(
        (out[0] - _SIGMA[0]) & _MASK,
        (out[1] - _SIGMA[1]) & _MASK,
        (out[2] - _SIGMA[2]) & _MASK,
        (out[3] - _SIGMA[3]) & _MASK,
        (out[12] - n[0]) & _MASK,
        (out[13] - n[1]) & _MASK,
        (out[14] - n[2]) & _MASK,
        (out[15] - n[3]) & _MASK,
    )


def _ietf(key: bytes, nonce: bytes) -> tuple[ChaCha20Poly1305, bytes]:
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])), b"\0\0\0\0" + nonce[16:]


def xchacha20poly1305_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """XChaCha20-Poly1305 (IETF): ciphertext || 16-byte tag."""
    aead, nonce12 = _ietf(key, nonce)
    return aead.encrypt(nonce12, plaintext, ad)


def xchacha20poly1305_decrypt(
    key: bytes, nonce: bytes, ciphertext: bytes | memoryview, ad: bytes
) -> bytes:
    """Inverse of :func:`xchacha20poly1305_encrypt`; raises ``InvalidTag``."""
    aead, nonce12 = _ietf(key, nonce)
    return aead.decrypt(nonce12, ciphertext, ad)


def _padding(length: int) -> bytes:
    if length <= _URANDOM_PADDING_MAX:
        return os.urandom(length)
    seed = os.urandom(48)
    encryptor = Cipher(algorithms.ChaCha20(seed[:32], seed[32:]), mode=None).encryptor()
    return encryptor.update(bytes(length))


def _check_common(key: bytes, volume_id: bytes, block_size: int, kind: int) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes")
    if len(volume_id) != VOLUME_ID_BYTES:
        raise ValueError(f"volume id must be {VOLUME_ID_BYTES} bytes")
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE or block_size & (block_size - 1):
        raise ValueError(f"bad block size {block_size}")
    if not 1 <= kind <= 255:
        raise ValueError(f"kind must be 1..255, got {kind}")


def seal(
    key: bytes, volume_id: bytes, block_size: int, block_id: int, kind: int, plaintext: bytes
) -> bytes:
    """Seal ``plaintext`` as object ``kind`` of block ``block_id``: block_size bytes."""
    _check_common(key, volume_id, block_size, kind)
    if len(plaintext) > block_size - OVERHEAD_BYTES:
        raise ValueError(f"plaintext longer than {block_size - OVERHEAD_BYTES} bytes")
    header = _HEADER.pack(len(plaintext) + TAG_BYTES, kind, FORMAT_VERSION, 0)
    nonce = os.urandom(NONCE_BYTES)
    body = xchacha20poly1305_encrypt(
        key, nonce, plaintext, volume_id + _U64.pack(block_id) + header
    )
    pad = block_size - HEADER_BYTES - len(body)
    if pad == 0:
        return b"".join((header, nonce, body))
    return b"".join((header, nonce, body, _padding(pad)))


def open(  # the codec's verb, as in doublecrypt.Codec.open
    key: bytes, volume_id: bytes, block_size: int, block_id: int, kind: int, block: bytes
) -> bytes:
    """Open a sealed block; :class:`AuthenticationError` if anything is wrong."""
    _check_common(key, volume_id, block_size, kind)
    if len(block) != block_size:
        raise ValueError(f"block must be {block_size} bytes, got {len(block)}")
    body_len, block_kind, version, reserved = _HEADER.unpack_from(block)
    # As in the C codec, every structural defect is an authentication failure.
    if (
        not TAG_BYTES <= body_len <= block_size - HEADER_BYTES
        or block_kind != kind
        or version != FORMAT_VERSION
        or reserved != 0
    ):
        raise AuthenticationError("not an authentic block")
    view = memoryview(block)
    ad = volume_id + _U64.pack(block_id) + bytes(view[:8])
    try:
        return xchacha20poly1305_decrypt(
            key, bytes(view[8:HEADER_BYTES]), view[HEADER_BYTES : HEADER_BYTES + body_len], ad
        )
    except InvalidTag:
        raise AuthenticationError("not an authentic block") from None
