"""The Noise Protocol Framework, revision 34: the parts doublecrypt uses.

DH ``25519`` (PyNaCl), ciphers ``ChaChaPoly`` and ``AESGCM`` (``cryptography``),
hashes ``BLAKE2s`` and ``SHA256`` (``hashlib``/``hmac``), and the handshake
patterns ``NN``, ``XX`` and ``IK``. The channel itself only runs XX and IK with
ChaChaPoly; AESGCM and NN are here so that every matching official test vector
can be replayed. Names follow the specification (``CipherState``,
``SymmetricState``, ``HandshakeState``, ``MixKey``, ``Split``, ``REKEY``).

Differences from a bare transcription of the spec, all deliberate:

* A DH result of all zeros (the peer sent a low-order point) ends the
  handshake with :class:`~doublecrypt.errors.ChannelError` (spec section 12.1
  allows this check).
* Nonces advance only after a successful encrypt or decrypt; the nonce
  ``2**64 - 1`` is never used for a message.
* No plaintext longer than 65519 bytes is encrypted and no ciphertext longer
  than 65535 bytes is decrypted, so no message exceeds the Noise limit.
* A :class:`HandshakeState` that failed once refuses further use.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..errors import ChannelError, InvalidArgumentError, ProtocolError
from .keys import Keypair

if TYPE_CHECKING:
    from _hashlib import _HashObject

DHLEN: Final = 32
HASHLEN: Final = 32
TAGLEN: Final = 16
MAX_NOISE_MESSAGE: Final = 65535
MAX_TRANSPORT_PLAINTEXT: Final = MAX_NOISE_MESSAGE - TAGLEN
MAX_NONCE: Final = 2**64 - 1  # reserved: never used to encrypt a message

BytesLike = bytes | bytearray | memoryview

_ZERO_DH = bytes(DHLEN)
_FRAME_LENGTH = struct.Struct(">H")  # every Noise message goes out behind its length
_FRAME_IN_PLACE = 4096  # plaintext bytes from which encrypt_framed encrypts into its buffer
_REKEY_PLAINTEXT = bytes(32)


class _HashNew(Protocol):
    def __call__(self, data: bytes = ..., /) -> _HashObject: ...


# Hash name -> hashlib constructor (also the fastest digestmod for hmac.digest).
_HASHES: Final[dict[str, _HashNew]] = {"BLAKE2s": hashlib.blake2s, "SHA256": hashlib.sha256}

# Cipher name -> (AEAD class, nonce encoder: 4 zero bytes then the 64-bit counter).
_AeadClass = type[ChaCha20Poly1305] | type[AESGCM]
_CIPHERS: Final[dict[str, tuple[_AeadClass, Callable[[int], bytes]]]] = {
    "ChaChaPoly": (ChaCha20Poly1305, struct.Struct("<4xQ").pack),
    "AESGCM": (AESGCM, struct.Struct(">4xQ").pack),
}

# Pattern -> (initiator pre-message, responder pre-message, message token lists).
_Tokens = tuple[str, ...]
PATTERNS: Final[dict[str, tuple[_Tokens, _Tokens, tuple[_Tokens, ...]]]] = {
    "NN": ((), (), (("e",), ("e", "ee"))),
    "XX": ((), (), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    "IK": ((), ("s",), (("e", "es", "s", "ss"), ("e", "ee", "se"))),
}


def protocol_name(pattern: str, cipher_name: str = "ChaChaPoly", hash_name: str = "BLAKE2s") -> str:
    """The full Noise protocol name, e.g. ``Noise_IK_25519_ChaChaPoly_BLAKE2s``."""
    return f"Noise_{pattern}_25519_{cipher_name}_{hash_name}"


def parse_protocol_name(name: str) -> tuple[str, str, str]:
    """``(pattern, cipher, hash)`` of a protocol name this module implements."""
    parts = name.split("_")
    if (
        len(parts) != 5
        or parts[0] != "Noise"
        or parts[1] not in PATTERNS
        or parts[2] != "25519"
        or parts[3] not in _CIPHERS
        or parts[4] not in _HASHES
    ):
        raise InvalidArgumentError(f"unsupported Noise protocol {name!r}")
    return parts[1], parts[3], parts[4]


def dh(keypair: Keypair, public_key: bytes) -> bytes:
    """X25519 of our key pair and a peer's public key; an all-zero result
    (a low-order peer key) raises :class:`ChannelError`."""
    if len(public_key) != DHLEN:  # libsodium reads exactly 32 bytes: never pass fewer
        raise ProtocolError(f"peer public key must be {DHLEN} bytes, got {len(public_key)}")
    try:
        shared = nacl.bindings.crypto_scalarmult(keypair.private, public_key)
    except nacl.exceptions.CryptoError:  # libsodium refuses an all-zero result itself
        shared = _ZERO_DH
    if hmac.compare_digest(shared, _ZERO_DH):
        raise ChannelError(
            "peer public key is a low-order point (X25519 result is all zeros): handshake refused"
        )
    return shared


class CipherState:
    """A key (possibly none yet) and a 64-bit nonce counter ``n``."""

    __slots__ = ("_aead", "_aead_class", "_key", "_pack_nonce", "cipher_name", "n")

    def __init__(self, cipher_name: str = "ChaChaPoly", key: BytesLike | None = None) -> None:
        if cipher_name not in _CIPHERS:
            raise InvalidArgumentError(f"unsupported Noise cipher {cipher_name!r}")
        self.cipher_name = cipher_name
        self._aead_class, self._pack_nonce = _CIPHERS[cipher_name]
        self._aead: ChaCha20Poly1305 | AESGCM | None = None
        self._key = bytearray()
        self.n = 0
        self.initialize_key(key)

    def initialize_key(self, key: BytesLike | None) -> None:
        """``InitializeKey(k)``: set the key (or none) and reset the nonce."""
        self._wipe_key()
        if key is not None:
            if len(memoryview(key)) != 32:
                raise InvalidArgumentError("a Noise cipher key must be 32 bytes")
            self._key = bytearray(key)
            self._aead = self._aead_class(self._key)
        self.n = 0

    def has_key(self) -> bool:
        return self._aead is not None

    def set_nonce(self, nonce: int) -> None:
        if not 0 <= nonce <= MAX_NONCE:
            raise InvalidArgumentError(f"nonce must be in 0..{MAX_NONCE}")
        self.n = nonce

    def encrypt_with_ad(self, ad: BytesLike | None, plaintext: BytesLike) -> bytes:
        """``ENCRYPT(k, n++, ad, plaintext)``, or the plaintext while there is no key."""
        aead = self._aead
        if aead is None:
            return bytes(plaintext)
        if len(plaintext) > MAX_TRANSPORT_PLAINTEXT:
            raise InvalidArgumentError(
                f"Noise plaintext of {len(plaintext)} bytes exceeds the limit of "
                f"{MAX_TRANSPORT_PLAINTEXT} bytes"
            )
        n = self.n
        if n >= MAX_NONCE:
            raise ChannelError("Noise nonce exhausted: the session must end")
        ciphertext = aead.encrypt(self._pack_nonce(n), plaintext, ad)
        self.n = n + 1
        return ciphertext

    def encrypt_framed(self, plaintext: BytesLike) -> bytes | bytearray:
        """A transport message as it goes on the wire, in one buffer: the
        2-byte big-endian length, then ``ENCRYPT(k, n++, empty, plaintext)``
        (large plaintexts are encrypted straight into that buffer where the
        cryptography library can: no copy to put the length in front)."""
        size = len(plaintext)
        encrypt_into = getattr(self._aead, "encrypt_into", None)  # newer cryptography
        if encrypt_into is None or size < _FRAME_IN_PLACE:
            sealed = self.encrypt_with_ad(None, plaintext)
            return _FRAME_LENGTH.pack(len(sealed)) + sealed
        if size > MAX_TRANSPORT_PLAINTEXT:
            raise InvalidArgumentError(
                f"Noise plaintext of {size} bytes exceeds the limit of "
                f"{MAX_TRANSPORT_PLAINTEXT} bytes"
            )
        n = self.n
        if n >= MAX_NONCE:
            raise ChannelError("Noise nonce exhausted: the session must end")
        out = bytearray(2 + size + TAGLEN)
        _FRAME_LENGTH.pack_into(out, 0, size + TAGLEN)
        with memoryview(out) as view:
            encrypt_into(self._pack_nonce(n), plaintext, None, view[2:])
        self.n = n + 1
        return out

    def decrypt_with_ad(self, ad: BytesLike | None, ciphertext: BytesLike) -> bytes:
        """``DECRYPT(k, n++, ad, ciphertext)``; ``n`` is unchanged when it fails."""
        aead = self._aead
        if aead is None:
            return bytes(ciphertext)
        size = len(ciphertext)
        if size > MAX_NOISE_MESSAGE:
            raise ProtocolError(
                f"Noise message of {size} bytes exceeds the limit of {MAX_NOISE_MESSAGE} bytes"
            )
        n = self.n
        if n >= MAX_NONCE:
            raise ChannelError("Noise nonce exhausted: the session must end")
        try:
            plaintext = aead.decrypt(self._pack_nonce(n), ciphertext, ad)
        except InvalidTag:
            raise ChannelError(
                "a Noise message failed to authenticate (altered, replayed or out of order)"
            ) from None
        self.n = n + 1
        return plaintext

    def rekey(self) -> None:
        """``Rekey()``: ``k = REKEY(k)`` (first 32 bytes of encrypting 32 zero bytes
        under the reserved nonce); ``n`` is kept."""
        aead = self._aead
        if aead is None:
            raise ChannelError("cannot rekey a cipher state without a key")
        new_key = bytearray(aead.encrypt(self._pack_nonce(MAX_NONCE), _REKEY_PLAINTEXT, b"")[:32])
        n = self.n
        self.initialize_key(new_key)
        self.n = n
        new_key[:] = bytes(32)

    def wipe(self) -> None:
        """Forget the key (the session using it is over)."""
        self._wipe_key()

    def _wipe_key(self) -> None:
        key = self._key
        key[:] = bytes(len(key))
        self._aead = None


class SymmetricState:
    """The chaining key ``ck``, the handshake hash ``h`` and a :class:`CipherState`."""

    __slots__ = ("_hash_new", "cipher_state", "ck", "h")

    def __init__(self, name: bytes, cipher_name: str, hash_name: str) -> None:
        if hash_name not in _HASHES:
            raise InvalidArgumentError(f"unsupported Noise hash {hash_name!r}")
        hash_new = _HASHES[hash_name]
        self._hash_new = hash_new
        self.h = name.ljust(HASHLEN, b"\0") if len(name) <= HASHLEN else hash_new(name).digest()
        self.ck = self.h
        self.cipher_state = CipherState(cipher_name)

    def hkdf(self, ikm: bytes, outputs: int) -> list[bytes]:
        """Noise ``HKDF(ck, ikm, outputs)`` (RFC 5869 with ``ck`` as salt, empty info)."""
        digest, hash_new = hmac.digest, self._hash_new
        temp_key = digest(self.ck, ikm, hash_new)
        result = [digest(temp_key, b"\x01", hash_new)]
        for index in range(2, outputs + 1):
            result.append(digest(temp_key, result[-1] + bytes((index,)), hash_new))
        return result

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = self.hkdf(ikm, 2)
        self.cipher_state.initialize_key(temp_k)

    def mix_hash(self, data: BytesLike) -> None:
        digest = self._hash_new(self.h)
        digest.update(data)
        self.h = digest.digest()

    def encrypt_and_hash(self, plaintext: BytesLike) -> bytes:
        ciphertext = self.cipher_state.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: BytesLike) -> bytes:
        plaintext = self.cipher_state.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """``Split()``: the initiator-to-responder and responder-to-initiator states."""
        temp_k1, temp_k2 = self.hkdf(b"", 2)
        cipher_name = self.cipher_state.cipher_name
        return CipherState(cipher_name, temp_k1), CipherState(cipher_name, temp_k2)


class HandshakeState:
    """One side of a Noise handshake (``NN``, ``XX`` or ``IK``).

    ``static`` is our static key pair (needed by XX and IK), ``remote_static`` the
    peer's static public key known in advance (IK initiator). ``fixed_ephemeral``
    replaces the fresh ephemeral key: for replaying test vectors only.
    """

    __slots__ = (
        "_dead",
        "_e",
        "_index",
        "_messages",
        "_re",
        "_rs",
        "_s",
        "_split",
        "_symmetric",
        "handshake_hash",
        "initiator",
        "pattern",
        "protocol_name",
    )

    def __init__(
        self,
        pattern: str,
        initiator: bool,
        *,
        prologue: BytesLike = b"",
        static: Keypair | None = None,
        remote_static: bytes | None = None,
        hash_name: str = "BLAKE2s",
        cipher_name: str = "ChaChaPoly",
        fixed_ephemeral: Keypair | None = None,
    ) -> None:
        if pattern not in PATTERNS:
            raise InvalidArgumentError(f"unsupported Noise pattern {pattern!r}")
        initiator_pre, responder_pre, messages = PATTERNS[pattern]
        self.pattern = pattern
        self.initiator = initiator
        self.protocol_name = protocol_name(pattern, cipher_name, hash_name)
        self._symmetric = SymmetricState(self.protocol_name.encode(), cipher_name, hash_name)
        self._messages = messages
        self._index = 0
        self._dead = False
        self._split: tuple[CipherState, CipherState] | None = None
        self.handshake_hash = b""
        self._s = static
        self._e = fixed_ephemeral
        self._rs: bytes | None = None
        self._re: bytes | None = None

        uses_static = any("s" in tokens for tokens in messages[0 if initiator else 1 :: 2])
        ours_pre, theirs_pre = (
            (initiator_pre, responder_pre) if initiator else (responder_pre, initiator_pre)
        )
        if (uses_static or ours_pre) and static is None:
            raise InvalidArgumentError(f"Noise {pattern} needs our static key pair")
        if theirs_pre:
            if remote_static is None or len(remote_static) != DHLEN:
                raise InvalidArgumentError(
                    f"Noise {pattern} needs the peer's {DHLEN}-byte static public key"
                )
            self._rs = bytes(remote_static)

        symmetric = self._symmetric
        symmetric.mix_hash(prologue)
        # Pre-messages are hashed initiator's first; only "s" occurs in ours.
        for tokens, is_ours in ((initiator_pre, initiator), (responder_pre, not initiator)):
            for _token in tokens:
                key = self._static().public if is_ours else self._remote_static()
                symmetric.mix_hash(key)

    # ---- state -------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self._split is not None

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key once known (pre-message or handshake)."""
        return self._rs

    @property
    def my_turn(self) -> bool:
        """True when the next call must be :meth:`write_message`."""
        return (self._index % 2 == 0) == self.initiator

    def transport_ciphers(self) -> tuple[CipherState, CipherState]:
        """``(send, receive)`` cipher states for our role, after the handshake."""
        if self._split is None:
            raise ChannelError("the Noise handshake is not complete")
        first, second = self._split
        return (first, second) if self.initiator else (second, first)

    # ---- messages ----------------------------------------------------------

    def write_message(self, payload: BytesLike = b"") -> bytes:
        """Build our next handshake message carrying ``payload``."""
        tokens = self._next_tokens(writing=True)
        try:
            symmetric = self._symmetric
            out = bytearray()
            for token in tokens:
                if token == "e":
                    if self._e is None:
                        self._e = Keypair.generate()
                    out += self._e.public
                    symmetric.mix_hash(self._e.public)
                elif token == "s":
                    out += symmetric.encrypt_and_hash(self._static().public)
                else:
                    symmetric.mix_key(self._dh_token(token))
            out += symmetric.encrypt_and_hash(payload)
            if len(out) > MAX_NOISE_MESSAGE:
                raise InvalidArgumentError(
                    f"Noise handshake message of {len(out)} bytes exceeds the limit of "
                    f"{MAX_NOISE_MESSAGE} bytes"
                )
            self._advance()
            return bytes(out)
        except BaseException:
            self._fail()
            raise

    def read_message(self, message: BytesLike) -> bytes:
        """Process the peer's next handshake message; returns its payload."""
        tokens = self._next_tokens(writing=False)
        try:
            view = memoryview(message)
            if view.nbytes > MAX_NOISE_MESSAGE:
                raise ProtocolError(
                    f"Noise handshake message of {view.nbytes} bytes exceeds the limit of "
                    f"{MAX_NOISE_MESSAGE} bytes"
                )
            symmetric = self._symmetric
            number = self._index + 1
            pos = 0
            for token in tokens:
                if token in ("e", "s"):
                    size = DHLEN + (
                        TAGLEN if token == "s" and symmetric.cipher_state.has_key() else 0
                    )
                    if view.nbytes - pos < size:
                        raise ProtocolError(f"Noise handshake message {number} is too short")
                    field = bytes(view[pos : pos + size])
                    pos += size
                    if token == "e":
                        self._re = field
                        symmetric.mix_hash(field)
                    else:
                        self._rs = symmetric.decrypt_and_hash(field)
                else:
                    symmetric.mix_key(self._dh_token(token))
            if symmetric.cipher_state.has_key() and view.nbytes - pos < TAGLEN:
                raise ProtocolError(f"Noise handshake message {number} is too short")
            payload = symmetric.decrypt_and_hash(view[pos:])
            self._advance()
            return payload
        except BaseException:
            self._fail()
            raise

    # ---- internals ---------------------------------------------------------

    def _next_tokens(self, *, writing: bool) -> _Tokens:
        if self._dead:
            raise ChannelError("the Noise handshake failed earlier and cannot continue")
        if self._split is not None:
            raise ChannelError("the Noise handshake is already complete")
        if self.my_turn != writing:
            expected = "write" if self.my_turn else "read"
            raise ChannelError(f"Noise handshake out of order: the next step is to {expected}")
        return self._messages[self._index]

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._messages):
            symmetric = self._symmetric
            self.handshake_hash = symmetric.h
            self._split = symmetric.split()
            symmetric.cipher_state.wipe()
            symmetric.ck = b""
            if self._e is not None:
                self._e.wipe()  # forward secrecy: the ephemeral key is never needed again

    def wipe(self) -> None:
        """Abandon the handshake: forget its keys and refuse further use."""
        self._fail()
        for state in self._split or ():
            state.wipe()

    def _fail(self) -> None:
        self._dead = True
        self._symmetric.cipher_state.wipe()
        self._symmetric.ck = b""
        if self._e is not None:
            self._e.wipe()

    def _static(self) -> Keypair:
        if self._s is None:
            raise InvalidArgumentError("no static key pair was given")
        return self._s

    def _remote_static(self) -> bytes:
        if self._rs is None:
            raise ProtocolError("the peer's static key is not known yet")
        return self._rs

    def _dh_token(self, token: str) -> bytes:
        """The DH named by ``ee``/``es``/``se``/``ss`` for our role (spec 5.3)."""
        # In "es" the initiator contributes e and the responder s; "se" the reverse.
        ours_first = self.initiator
        local = token[0] if ours_first else token[1]
        remote = token[1] if ours_first else token[0]
        local_key = self._e if local == "e" else self._s
        remote_key = self._re if remote == "e" else self._rs
        if local_key is None or remote_key is None:
            raise ProtocolError(f"Noise token {token!r} before its keys are known")
        return dh(local_key, remote_key)
