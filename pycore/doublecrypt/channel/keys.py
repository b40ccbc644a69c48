"""X25519 key pairs for the Noise channel: generation, derivation from a
volume's master key (docs/PROTOCOL.md section 1) and fingerprints."""

from __future__ import annotations

import hashlib
import os
from typing import Final

import nacl.bindings

from ..errors import InvalidArgumentError

KEY_BYTES: Final = 32
MASTER_KEY_BYTES: Final = 32
CLIENT_KEY_SALT: Final = b"doublecrypt-v2"
CLIENT_KEY_INFO: Final = b"noise-client-static"


class Keypair:
    """An X25519 key pair. The private key is kept in a bytearray so that
    :meth:`wipe` can overwrite it; ``private`` hands out a copy."""

    __slots__ = ("_private", "public")

    def __init__(self, private: bytes | bytearray) -> None:
        if len(private) != KEY_BYTES:
            raise InvalidArgumentError(
                f"an X25519 private key must be {KEY_BYTES} bytes, got {len(private)}"
            )
        self._private = bytearray(private)
        # X25519 clamps the scalar itself, so any 32 bytes are a valid private key.
        self.public: bytes = nacl.bindings.crypto_scalarmult_base(bytes(private))

    @classmethod
    def generate(cls) -> Keypair:
        """A fresh key pair from the operating system's random source."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_private(cls, private: bytes | bytearray) -> Keypair:
        return cls(private)

    @property
    def private(self) -> bytes:
        """A copy of the 32-byte private key."""
        if not any(self._private):
            raise InvalidArgumentError("this key pair has been wiped")
        return bytes(self._private)

    def private_bytearray(self) -> bytearray:
        """A copy of the private key the caller can wipe."""
        return bytearray(self._private)

    def wipe(self) -> None:
        """Overwrite the private key; the key pair is unusable afterwards."""
        self._private[:] = bytes(len(self._private))

    def __repr__(self) -> str:
        return f"Keypair(public={fingerprint(self.public)})"


def derive_client_keypair(master_key: bytes | bytearray, epoch: int = 0) -> Keypair:
    """The client's static key pair for a volume: HKDF-SHA256 (salt
    ``doublecrypt-v2``, IKM the master key, info ``noise-client-static`` and the
    epoch as 4 bytes little-endian). A new epoch gives a new device key."""
    if len(master_key) != MASTER_KEY_BYTES:
        raise InvalidArgumentError(
            f"the master key must be {MASTER_KEY_BYTES} bytes, got {len(master_key)}"
        )
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**32:
        raise InvalidArgumentError(f"epoch must be an integer in 0..{2**32 - 1}, got {epoch!r}")
    # Imported here: only clients derive keys from a master key, and the
    # server must not load the engine (it only ever sees ciphertext).
    from .._lowlevel import hkdf_sha256

    info = CLIENT_KEY_INFO + epoch.to_bytes(4, "little")
    private = bytearray(hkdf_sha256(master_key, salt=CLIENT_KEY_SALT, info=info, length=KEY_BYTES))
    try:
        return Keypair(private)
    finally:
        private[:] = bytes(KEY_BYTES)


def fingerprint(public_key: bytes) -> str:
    """``ab:cd:...``: the first 16 bytes of SHA-256 of a public key, hex, colon
    separated (shown to users when a host key changes)."""
    if len(public_key) != KEY_BYTES:
        raise InvalidArgumentError(f"a public key must be {KEY_BYTES} bytes, got {len(public_key)}")
    return hashlib.sha256(public_key).digest()[:16].hex(":")
