"""API tokens of the management API, kept in ``DATA/admin/tokens.json``.

The file (mode 0600, written atomically) holds what the server needs to
verify a request: each token's ncryptf secrets (``ikm`` for the HMAC, the
Ed25519 ``signing`` key it signs responses with), its expiry, a public id
used to revoke it, a label and a role. Only the server and the token's holder
know these secrets, so the file is as sensitive as the tokens themselves.

Roles: ``admin`` may do everything; ``read-only`` may only read (GET).

Bootstrap: when no unexpired admin token exists (first start, or every admin
token expired or revoked), :meth:`TokenRegistry.ensure_admin` issues one and
writes it, in the client's login-response shape, to
``DATA/admin/admin-token.json`` (mode 0600) for ``doublecrypt admin
--token-file``.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptionError, InvalidArgumentError, NotFoundError, StorageIOError
from ..ncryptf import Token
from .tls import write_private

__all__ = [
    "ADMIN_DIR",
    "BOOTSTRAP_FILE",
    "BOOTSTRAP_LIFETIME",
    "DEFAULT_LIFETIME",
    "ROLES",
    "TOKENS_FILE",
    "IssuedToken",
    "TokenRegistry",
]

ADMIN_DIR = "admin"
TOKENS_FILE = "tokens.json"
BOOTSTRAP_FILE = "admin-token.json"
ROLES = ("admin", "read-only")
DEFAULT_LIFETIME = 30 * 86400.0
BOOTSTRAP_LIFETIME = 365 * 86400.0
MAX_LIFETIME = 10 * 365 * 86400.0
_FORMAT = 1
_MAX_LABEL = 200


@dataclass(frozen=True)
class IssuedToken:
    """One registered token: its public id, label, role and the secrets."""

    id: str
    label: str
    role: str
    created_at: float
    token: Token

    def public_dict(self, now: float | None = None) -> dict[str, Any]:
        """What listing shows: everything but the secrets."""
        return {
            "id": self.id,
            "label": self.label,
            "role": self.role,
            "created_at": self.created_at,
            "expires_at": self.token.expires_at,
            "expired": self.token.expired(now),
        }

    def to_record(self) -> dict[str, Any]:
        record = self.public_dict()
        del record["expired"]
        record["token"] = json.loads(self.token.to_json())
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IssuedToken:
        token = Token.from_json(json.dumps(record["token"]))
        role = record["role"]
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        return cls(
            id=str(record["id"]),
            label=str(record["label"]),
            role=role,
            created_at=float(record["created_at"]),
            token=token,
        )


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgumentError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_lifetime(lifetime: float) -> float:
    if not 0 < lifetime <= MAX_LIFETIME:
        raise InvalidArgumentError(
            f"a token lifetime is more than 0 and at most {MAX_LIFETIME:.0f} seconds, "
            f"got {lifetime}"
        )
    return lifetime


class TokenRegistry:
    """The tokens of one data directory, loaded once and written through.

    Thread-safe; lookups are by access token (what a request presents)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(data_dir) / ADMIN_DIR
        self.path = self.directory / TOKENS_FILE
        self.bootstrap_path = self.directory / BOOTSTRAP_FILE
        self._lock = threading.Lock()
        self._by_id: dict[str, IssuedToken] = {}
        self._by_access: dict[str, IssuedToken] = {}
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageIOError(f"cannot read {self.path}: {exc}") from None
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise ValueError(f"unsupported format {data.get('format')!r}")
            entries = [IssuedToken.from_record(record) for record in data["tokens"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(f"{self.path}: invalid token registry ({exc})") from None
        for entry in entries:
            self._by_id[entry.id] = entry
            self._by_access[entry.token.access_token] = entry

    def _save(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {
            "format": _FORMAT,
            "tokens": [entry.to_record() for entry in self._by_id.values()],
        }
        try:
            write_private(self.path, (json.dumps(data, indent=2) + "\n").encode())
        except OSError as exc:
            raise StorageIOError(f"cannot write {self.path}: {exc}") from None

    def lookup(self, access_token: str) -> IssuedToken | None:
        """The registered token presenting ``access_token`` (expired ones too:
        verification reports those as expired, not as unknown)."""
        with self._lock:
            return self._by_access.get(access_token)

    def lookup_token(self, access_token: str) -> Token | None:
        """:meth:`lookup` in the shape ncryptf's verification wants."""
        entry = self.lookup(access_token)
        return None if entry is None else entry.token

    def entries(self) -> list[IssuedToken]:
        """Every token, oldest first."""
        with self._lock:
            return sorted(self._by_id.values(), key=lambda e: (e.created_at, e.id))

    def issue(
        self, *, label: str = "", role: str = "admin", lifetime: float = DEFAULT_LIFETIME
    ) -> IssuedToken:
        """Register a fresh token and return it (with its secrets, once)."""
        check_role(role)
        check_lifetime(lifetime)
        if len(label) > _MAX_LABEL:
            raise InvalidArgumentError(f"a label has at most {_MAX_LABEL} characters")
        entry = IssuedToken(
            id=secrets.token_hex(6),
            label=label,
            role=role,
            created_at=time.time(),
            token=Token.generate(lifetime),
        )
        with self._lock:
            self._by_id[entry.id] = entry
            self._by_access[entry.token.access_token] = entry
            self._save()
        return entry

    def revoke(self, token_id: str) -> IssuedToken:
        """Forget a token: requests made with it fail from now on."""
        with self._lock:
            entry = self._by_id.pop(token_id, None)
            if entry is None:
                raise NotFoundError(f"no such token: {token_id!r}")
            del self._by_access[entry.token.access_token]
            self._save()
        return entry

    def ensure_admin(self) -> pathlib.Path | None:
        """Issue a bootstrap admin token into :attr:`bootstrap_path` unless an
        unexpired admin token exists; the path when one was written."""
        now = time.time()
        if any(e.role == "admin" and not e.token.expired(now) for e in self.entries()):
            return None
        entry = self.issue(label="bootstrap", role="admin", lifetime=BOOTSTRAP_LIFETIME)
        try:
            write_private(self.bootstrap_path, (entry.token.to_json() + "\n").encode())
        except OSError as exc:
            raise StorageIOError(f"cannot write {self.bootstrap_path}: {exc}") from None
        return self.bootstrap_path
