"""ncryptf encrypted bodies: the v2 frame and the legacy v1 ciphertext.

v2 frame (all raw bytes; L = 236 + len(plaintext))::

    offset   length  field
    0        4       magic DE 25 90 02
    4        24      nonce (random per message)
    28       32      sender's X25519 box public key
    60       n + 16  crypto_box(plaintext, nonce, recipient_pk, sender_sk)  (tag first)
    L - 160  32      sender's Ed25519 signing public key
    L - 128  64      Ed25519 detached signature of the *plaintext*
    L - 64   64      BLAKE2b-512 of bytes [0, L - 64), keyed with the nonce

:func:`decrypt_v2` checks in this order, each failure with its own error:
length and magic (:class:`MalformedFrameError`), checksum
(:class:`ChecksumError`), box (:class:`DecryptionError`), signature
(:class:`SignatureError`). Only the recipient's secret key is needed.

v1 is the bare box ciphertext; nonce, sender public key and the detached
signature travel in HTTP headers, so :func:`encrypt_v1` returns the nonce and
:func:`sign_v1` / :func:`verify_v1_signature` handle the signature.

On the wire a body is the standard base64 of the frame (:func:`encode_body`,
:func:`decode_body`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import NamedTuple

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError

from ..errors import ChecksumError, DecryptionError, MalformedFrameError, SignatureError

__all__ = [
    "BOX_KEY_BYTES",
    "CHECKSUM_BYTES",
    "NONCE_BYTES",
    "SIGNATURE_BYTES",
    "SIGNING_PUBLIC_BYTES",
    "SIGNING_SECRET_BYTES",
    "V1_MIN_LENGTH",
    "V2_MAGIC",
    "V2_MIN_LENGTH",
    "BoxKeyPair",
    "Decrypted",
    "SigningKeyPair",
    "V1Ciphertext",
    "box_keypair",
    "decode_body",
    "decrypt_v1",
    "decrypt_v2",
    "encode_body",
    "encrypt_v1",
    "encrypt_v2",
    "frame_public_key",
    "frame_signing_public_key",
    "payload_version",
    "sign_v1",
    "signing_keypair",
    "verify_v1_signature",
]

V2_MAGIC = bytes.fromhex("de259002")
NONCE_BYTES = bindings.crypto_box_NONCEBYTES  # 24
BOX_KEY_BYTES = bindings.crypto_box_PUBLICKEYBYTES  # 32, secret keys too
MAC_BYTES = 16
SIGNING_PUBLIC_BYTES = bindings.crypto_sign_PUBLICKEYBYTES  # 32
SIGNING_SECRET_BYTES = bindings.crypto_sign_SECRETKEYBYTES  # 64
SIGNATURE_BYTES = bindings.crypto_sign_BYTES  # 64
CHECKSUM_BYTES = 64
_HEADER_BYTES = len(V2_MAGIC) + NONCE_BYTES + BOX_KEY_BYTES  # 60
_TRAILER_BYTES = SIGNING_PUBLIC_BYTES + SIGNATURE_BYTES + CHECKSUM_BYTES  # 160
V2_MIN_LENGTH = _HEADER_BYTES + MAC_BYTES + _TRAILER_BYTES  # 236: empty plaintext
V1_MIN_LENGTH = MAC_BYTES  # a box of the empty plaintext


class BoxKeyPair(NamedTuple):
    """An X25519 keypair for crypto_box."""

    public: bytes
    secret: bytes


class SigningKeyPair(NamedTuple):
    """An Ed25519 keypair; ``secret`` is libsodium's 64 bytes (seed || public)."""

    public: bytes
    secret: bytes


class Decrypted(NamedTuple):
    """An opened v2 frame: the plaintext and the keys that vouched for it."""

    plaintext: bytes
    sender_public: bytes
    signing_public: bytes


class V1Ciphertext(NamedTuple):
    """A v1 body and the nonce that must travel with it (``X-Nonce``)."""

    ciphertext: bytes
    nonce: bytes


def box_keypair() -> BoxKeyPair:
    public, secret = bindings.crypto_box_keypair()
    return BoxKeyPair(public, secret)


def signing_keypair() -> SigningKeyPair:
    public, secret = bindings.crypto_sign_keypair()
    return SigningKeyPair(public, secret)


def _require(value: bytes, length: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != length:
        raise MalformedFrameError(f"{what} must be {length} bytes")
    return bytes(value)


def _signing_public_of(signing_secret: bytes) -> bytes:
    _require(signing_secret, SIGNING_SECRET_BYTES, "signing secret key")
    return bytes(bindings.crypto_sign_ed25519_sk_to_pk(bytes(signing_secret)))


def _sign(plaintext: bytes, signing_secret: bytes) -> bytes:
    # crypto_sign returns signature || message; the detached signature is its head.
    return bytes(bindings.crypto_sign(plaintext, signing_secret)[:SIGNATURE_BYTES])


def _verify(plaintext: bytes, signature: bytes, signing_public: bytes) -> None:
    try:
        bindings.crypto_sign_open(signature + plaintext, signing_public)
    except (BadSignatureError, CryptoError, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


def _checksum(head: bytes, nonce: bytes) -> bytes:
    return hashlib.blake2b(head, digest_size=CHECKSUM_BYTES, key=nonce).digest()


def encrypt_v2(
    plaintext: bytes,
    *,
    recipient_public: bytes,
    sender_secret: bytes,
    signing_secret: bytes,
    nonce: bytes | None = None,
) -> bytes:
    """The v2 frame of ``plaintext``, boxed from ``sender_secret`` to
    ``recipient_public`` and signed with ``signing_secret`` (64 bytes). ``nonce``
    (default random) is a parameter for the vectors only: never reuse one."""
    recipient_public = _require(recipient_public, BOX_KEY_BYTES, "recipient public key")
    sender_secret = _require(sender_secret, BOX_KEY_BYTES, "sender secret key")
    signing_public = _signing_public_of(signing_secret)
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    nonce = _require(nonce, NONCE_BYTES, "nonce")
    plaintext = bytes(plaintext)
    sender_public = bytes(bindings.crypto_scalarmult_base(sender_secret))
    boxed = bindings.crypto_box(plaintext, nonce, recipient_public, sender_secret)
    head = b"".join(
        (
            V2_MAGIC,
            nonce,
            sender_public,
            boxed,
            signing_public,
            _sign(plaintext, bytes(signing_secret)),
        )
    )
    return head + _checksum(head, nonce)


def decrypt_v2(
    frame: bytes, *, recipient_secret: bytes, expected_signing_public: bytes | None = None
) -> Decrypted:
    """Open a v2 frame with the recipient's box secret key.

    ``expected_signing_public``, when given, must equal the frame's signing key
    (e.g. a client checks that a response was signed with its token's key);
    otherwise any key whose signature verifies is accepted and returned."""
    frame = bytes(frame)
    if len(frame) < V2_MIN_LENGTH:
        raise MalformedFrameError(f"v2 payload is shorter than {V2_MIN_LENGTH} bytes")
    if frame[:4] != V2_MAGIC:
        raise MalformedFrameError("not a v2 payload (wrong magic)")
    recipient_secret = _require(recipient_secret, BOX_KEY_BYTES, "recipient secret key")
    nonce = frame[4:28]
    checksum_at = len(frame) - CHECKSUM_BYTES
    if not hmac.compare_digest(_checksum(frame[:checksum_at], nonce), frame[checksum_at:]):
        raise ChecksumError("v2 payload checksum does not match")
    sender_public = frame[28:_HEADER_BYTES]
    boxed = frame[_HEADER_BYTES : len(frame) - _TRAILER_BYTES]
    signing_public = frame[len(frame) - _TRAILER_BYTES : len(frame) - 128]
    signature = frame[len(frame) - 128 : checksum_at]
    try:
        plaintext = bytes(bindings.crypto_box_open(boxed, nonce, sender_public, recipient_secret))
    except (CryptoError, ValueError) as exc:
        raise DecryptionError("v2 payload does not decrypt with this key") from exc
    _verify(plaintext, signature, signing_public)
    if expected_signing_public is not None and not hmac.compare_digest(
        signing_public, bytes(expected_signing_public)
    ):
        raise SignatureError("payload was signed with an unexpected key")
    return Decrypted(plaintext, sender_public, signing_public)


def encrypt_v1(
    plaintext: bytes,
    *,
    recipient_public: bytes,
    sender_secret: bytes,
    nonce: bytes | None = None,
) -> V1Ciphertext:
    """The bare v1 box of ``plaintext`` and its nonce (random unless given, for
    the vectors). Sign the plaintext separately with :func:`sign_v1`."""
    recipient_public = _require(recipient_public, BOX_KEY_BYTES, "recipient public key")
    sender_secret = _require(sender_secret, BOX_KEY_BYTES, "sender secret key")
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    nonce = _require(nonce, NONCE_BYTES, "nonce")
    boxed = bindings.crypto_box(bytes(plaintext), nonce, recipient_public, sender_secret)
    return V1Ciphertext(bytes(boxed), nonce)


def decrypt_v1(
    ciphertext: bytes, *, recipient_secret: bytes, sender_public: bytes, nonce: bytes
) -> bytes:
    """Open a v1 box: needs the peer's public key and the nonce from the headers."""
    ciphertext = bytes(ciphertext)
    if len(ciphertext) < V1_MIN_LENGTH:
        raise MalformedFrameError(f"v1 payload is shorter than {V1_MIN_LENGTH} bytes")
    recipient_secret = _require(recipient_secret, BOX_KEY_BYTES, "recipient secret key")
    sender_public = _require(sender_public, BOX_KEY_BYTES, "sender public key")
    nonce = _require(nonce, NONCE_BYTES, "nonce")
    try:
        return bytes(bindings.crypto_box_open(ciphertext, nonce, sender_public, recipient_secret))
    except (CryptoError, ValueError) as exc:
        raise DecryptionError("v1 payload does not decrypt with this key") from exc


def sign_v1(plaintext: bytes, signing_secret: bytes) -> bytes:
    """The 64-byte Ed25519 detached signature of ``plaintext`` (v1 ``X-Signature``)."""
    return _sign(bytes(plaintext), _require(signing_secret, SIGNING_SECRET_BYTES, "signing key"))


def verify_v1_signature(plaintext: bytes, signature: bytes, signing_public: bytes) -> None:
    """Raise :class:`SignatureError` unless ``signature`` signs ``plaintext``."""
    signature = _require(signature, SIGNATURE_BYTES, "signature")
    signing_public = _require(signing_public, SIGNING_PUBLIC_BYTES, "signing public key")
    _verify(bytes(plaintext), signature, signing_public)


def payload_version(payload: bytes) -> int:
    """2 when ``payload`` starts with the v2 magic, else 1 (a v1 body has no
    marker). Shorter than 16 bytes is not a payload of either version."""
    if len(payload) < V1_MIN_LENGTH:
        raise MalformedFrameError(f"payload is shorter than {V1_MIN_LENGTH} bytes")
    return 2 if bytes(payload[:4]) == V2_MAGIC else 1


def frame_public_key(frame: bytes) -> bytes:
    """The sender's box public key inside a v2 frame (no checks beyond shape):
    a server encrypts its response to this key."""
    if len(frame) < V2_MIN_LENGTH or bytes(frame[:4]) != V2_MAGIC:
        raise MalformedFrameError("not a v2 payload")
    return bytes(frame[28:_HEADER_BYTES])


def frame_signing_public_key(frame: bytes) -> bytes:
    """The signing public key inside a v2 frame (no checks beyond shape)."""
    if len(frame) < V2_MIN_LENGTH or bytes(frame[:4]) != V2_MAGIC:
        raise MalformedFrameError("not a v2 payload")
    end = len(frame) - SIGNATURE_BYTES - CHECKSUM_BYTES
    return bytes(frame[end - SIGNING_PUBLIC_BYTES : end])


def encode_body(payload: bytes) -> bytes:
    """The HTTP body for a payload: standard base64 with padding."""
    return base64.b64encode(payload)


def decode_body(body: bytes | str) -> bytes:
    """The payload inside an HTTP body (surrounding whitespace ignored)."""
    try:
        text = body.strip() if isinstance(body, bytes) else body.strip().encode("ascii")
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise MalformedFrameError("body is not base64") from exc
