"""The ncryptf token: what a server issues at login and a client keeps.

JSON shape (the ncryptf login response, field names exact)::

    {"access_token": str, "refresh_token": str, "ikm": base64 of 32 bytes,
     "signing": base64 of the 64-byte Ed25519 secret key, "expires_at": unix seconds}

``access_token`` names the token in every ``Authorization`` header; ``ikm`` is the
input key material of the per-request HKDF; ``signature`` (``signing`` in JSON, the
name every ncryptf library uses inside) is an Ed25519 secret key both sides hold,
used to sign encrypted request bodies. A token is expired once ``now > expires_at``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nacl import bindings

from ..errors import MalformedTokenError

__all__ = ["DEFAULT_TOKEN_LIFETIME", "IKM_BYTES", "SIGNING_SECRET_BYTES", "Token"]

IKM_BYTES = 32
SIGNING_SECRET_BYTES = bindings.crypto_sign_SECRETKEYBYTES  # 64: seed || public key
DEFAULT_TOKEN_LIFETIME = 14400.0  # 4 hours, as the reference test server issues


def _b64decode(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedTokenError(f"token field {field!r} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedTokenError(f"token field {field!r} is not valid base64") from exc


@dataclass(frozen=True, repr=False)
class Token:
    """An issued token. Immutable; ``repr`` shows no secret."""

    access_token: str
    refresh_token: str
    ikm: bytes
    signature: bytes
    expires_at: float

    def __post_init__(self) -> None:
        if not self.access_token or not isinstance(self.access_token, str):
            raise MalformedTokenError("access_token must be a non-empty string")
        # A comma would split the v1 header ("HMAC token,hmac,salt") in the wrong place.
        if "," in self.access_token or any(c.isspace() for c in self.access_token):
            raise MalformedTokenError("access_token must not contain commas or whitespace")
        if not isinstance(self.refresh_token, str):
            raise MalformedTokenError("refresh_token must be a string")
        if not isinstance(self.ikm, bytes) or len(self.ikm) != IKM_BYTES:
            raise MalformedTokenError(f"ikm must be {IKM_BYTES} bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNING_SECRET_BYTES:
            raise MalformedTokenError(f"signing key must be {SIGNING_SECRET_BYTES} bytes")
        # Random bytes are not a usable Ed25519 key (a known upstream bug): the second
        # half must be the public key derived from the first.
        derived_public, _ = bindings.crypto_sign_seed_keypair(self.signature[:32])
        if not hmac.compare_digest(derived_public, self.signature[32:]):
            raise MalformedTokenError("signing key is not a valid Ed25519 secret key")
        if isinstance(self.expires_at, bool) or not isinstance(self.expires_at, (int, float)):
            raise MalformedTokenError("expires_at must be a number of unix seconds")
        if not math.isfinite(self.expires_at):
            raise MalformedTokenError("expires_at must be finite")

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at!r})"

    @property
    def signing_public_key(self) -> bytes:
        """The Ed25519 public key of :attr:`signature` (its last 32 bytes)."""
        return self.signature[32:]

    def expired(self, now: float | None = None) -> bool:
        """True once ``now`` (default: the current time) is past ``expires_at``."""
        return (time.time() if now is None else now) > self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """The login-response object (``expires_at`` an integer when it is whole)."""
        expires: int | float = self.expires_at
        if float(expires).is_integer():
            expires = int(expires)
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "ikm": base64.b64encode(self.ikm).decode("ascii"),
            "signing": base64.b64encode(self.signature).decode("ascii"),
            "expires_at": expires,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        """Parse a login-response object; ``signature`` is accepted for ``signing``."""
        if not isinstance(data, Mapping):
            raise MalformedTokenError("token must be a JSON object")
        signing = data.get("signing", data.get("signature"))
        missing = [
            name
            for name, value in (
                ("access_token", data.get("access_token")),
                ("refresh_token", data.get("refresh_token")),
                ("ikm", data.get("ikm")),
                ("signing", signing),
                ("expires_at", data.get("expires_at")),
            )
            if value is None
        ]
        if missing:
            raise MalformedTokenError(f"token lacks {', '.join(missing)}")
        expires_at = data["expires_at"]
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            raise MalformedTokenError("expires_at must be a number of unix seconds")
        return cls(
            access_token=data["access_token"],
            refresh_token=data["refresh_token"],
            ikm=_b64decode(data["ikm"], "ikm"),
            signature=_b64decode(signing, "signing"),
            expires_at=float(expires_at),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Token:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedTokenError("token is not valid JSON") from exc
        return cls.from_dict(data)

    @classmethod
    def generate(
        cls, lifetime: float = DEFAULT_TOKEN_LIFETIME, *, now: float | None = None
    ) -> Token:
        """A fresh token for a server to issue: random URL-safe access and refresh
        tokens, random ``ikm``, a new Ed25519 keypair, whole-second expiry."""
        start = time.time() if now is None else now
        _, signing_secret = bindings.crypto_sign_keypair()
        return cls(
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            ikm=secrets.token_bytes(IKM_BYTES),
            signature=signing_secret,
            expires_at=float(math.floor(start + lifetime)),
        )
