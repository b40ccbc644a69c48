"""Server ephemeral keys: the keys clients encrypt requests to, and that
responses are made with.

A server hands one out at the bootstrap endpoint (``GET /ncryptf/ek``) and keeps
it in a :class:`~.cache.KeyCache` for 15 minutes; a client names it in
``X-HashId``. Every encrypted response uses a fresh one whose id and expiry go
back in ``x-hashid`` and ``x-public-key-expiration``.

The hash id is the hex BLAKE2b-256 of the box public key: opaque to clients,
unguessable, and derivable by anyone holding the public key (it reveals nothing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import MalformedFrameError
from .payload import BOX_KEY_BYTES, SIGNING_PUBLIC_BYTES, box_keypair, signing_keypair

__all__ = ["EPHEMERAL_KEY_LIFETIME", "EphemeralKey", "ServerPublicKey", "hash_id_of"]

EPHEMERAL_KEY_LIFETIME = 900.0  # 15 minutes


def hash_id_of(box_public: bytes) -> str:
    """The id a client uses to name a server key: hex BLAKE2b-256 of the public key."""
    return hashlib.blake2b(box_public, digest_size=32).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, field: str, length: int) -> bytes:
    if not isinstance(value, str):
        raise MalformedFrameError(f"key field {field!r} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedFrameError(f"key field {field!r} is not base64") from exc
    if len(raw) != length:
        raise MalformedFrameError(f"key field {field!r} must be {length} bytes")
    return raw


def _expiry(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedFrameError("expires_at must be a number of unix seconds")
    return float(value)


@dataclass(frozen=True, repr=False)
class EphemeralKey:
    """A server box keypair and signing keypair with their id and expiry.

    Holds secrets: ``to_json`` is for the server's own cache (Redis) only;
    clients get :meth:`public_info`."""

    box_public: bytes
    box_secret: bytes
    signing_public: bytes
    signing_secret: bytes
    hash_id: str
    expires_at: float

    def __repr__(self) -> str:
        return f"EphemeralKey(hash_id={self.hash_id!r}, expires_at={self.expires_at!r})"

    @classmethod
    def generate(
        cls, lifetime: float = EPHEMERAL_KEY_LIFETIME, *, now: float | None = None
    ) -> EphemeralKey:
        box = box_keypair()
        signing = signing_keypair()
        start = time.time() if now is None else now
        return cls(
            box_public=box.public,
            box_secret=box.secret,
            signing_public=signing.public,
            signing_secret=signing.secret,
            hash_id=hash_id_of(box.public),
            expires_at=float(math.floor(start + lifetime)),
        )

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires_at

    def ttl(self, now: float | None = None) -> float:
        """Seconds left before expiry (0 when expired)."""
        return max(0.0, self.expires_at - (time.time() if now is None else now))

    def public_info(self) -> dict[str, Any]:
        """The ``ek`` response body: ``public``, ``signature`` (the signing public
        key), the id under both spellings the reference servers use (``hash-id``
        PHP, ``hash_id`` Rust), ``expires_at`` and ``ephemeral``."""
        return {
            "public": _b64(self.box_public),
            "signature": _b64(self.signing_public),
            "hash-id": self.hash_id,
            "hash_id": self.hash_id,
            "expires_at": int(self.expires_at),
            "ephemeral": True,
        }

    def public_json(self) -> str:
        return json.dumps(self.public_info(), separators=(",", ":"))

    def public_key(self) -> ServerPublicKey:
        return ServerPublicKey(self.box_public, self.signing_public, self.hash_id, self.expires_at)

    def to_json(self) -> str:
        """Everything, secrets included, for the server's key cache."""
        return json.dumps(
            {
                "box_public": _b64(self.box_public),
                "box_secret": _b64(self.box_secret),
                "signing_public": _b64(self.signing_public),
                "signing_secret": _b64(self.signing_secret),
                "hash_id": self.hash_id,
                "expires_at": self.expires_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> EphemeralKey:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedFrameError("stored key is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("hash_id"), str):
            raise MalformedFrameError("stored key lacks a hash_id")
        return cls(
            box_public=_unb64(data.get("box_public"), "box_public", BOX_KEY_BYTES),
            box_secret=_unb64(data.get("box_secret"), "box_secret", BOX_KEY_BYTES),
            signing_public=_unb64(
                data.get("signing_public"), "signing_public", SIGNING_PUBLIC_BYTES
            ),
            signing_secret=_unb64(data.get("signing_secret"), "signing_secret", 64),
            hash_id=data["hash_id"],
            expires_at=_expiry(data.get("expires_at")),
        )


@dataclass(frozen=True)
class ServerPublicKey:
    """What a client learns from an ``ek`` response (or ``x-hashid`` + a frame)."""

    box_public: bytes
    signing_public: bytes
    hash_id: str
    expires_at: float

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires_at

    @classmethod
    def from_info(cls, data: Mapping[str, Any]) -> ServerPublicKey:
        """Parse an ``ek`` body; accepts ``hash-id`` (PHP) and ``hash_id`` (Rust).
        Without ``expires_at`` (PHP) the key is taken as valid for 15 minutes."""
        if not isinstance(data, Mapping):
            raise MalformedFrameError("ek response is not a JSON object")
        hash_id = data.get("hash_id", data.get("hash-id"))
        if not isinstance(hash_id, str) or not hash_id:
            raise MalformedFrameError("ek response lacks a hash id")
        expires = data.get("expires_at")
        return cls(
            box_public=_unb64(data.get("public"), "public", BOX_KEY_BYTES),
            signing_public=_unb64(data.get("signature"), "signature", SIGNING_PUBLIC_BYTES),
            hash_id=hash_id,
            expires_at=(
                time.time() + EPHEMERAL_KEY_LIFETIME if expires is None else _expiry(expires)
            ),
        )
