"""Caches an ncryptf server keeps: its ephemeral keys, and the salts it has seen.

Two protocols, each in memory (one process) and in Redis (shared by several
server processes, survives restarts):

* :class:`KeyCache` holds :class:`~.keys.EphemeralKey` by hash id until the
  key's ``expires_at``.
* :class:`SaltCache` remembers each accepted (access token, salt) pair for a
  TTL, so a replayed request is refused (:func:`~.authorization.verify_authorization`).
  Only a hash of the pair is stored, never the access token.

Redis failures raise :class:`~doublecrypt.errors.CacheUnavailableError`: a
server that cannot check for replay must refuse rather than accept. Calls are
synchronous (a loopback Redis answers in well under a millisecond); an async
server may run them in a thread.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import redis
import redis.exceptions

from ..errors import CacheUnavailableError, InvalidArgumentError, MalformedFrameError
from .keys import EphemeralKey

__all__ = [
    "KeyCache",
    "MemoryKeyCache",
    "MemorySaltCache",
    "RedisKeyCache",
    "RedisSaltCache",
    "SaltCache",
    "make_caches",
    "salt_fingerprint",
]

DEFAULT_PREFIX = "doublecrypt:ncryptf:"
REDIS_TIMEOUT = 5.0  # seconds, connect and each command


@runtime_checkable
class KeyCache(Protocol):
    def put(self, key: EphemeralKey) -> None:
        """Store ``key`` until its ``expires_at``."""

    def get(self, hash_id: str) -> EphemeralKey | None:
        """The key with this id, or None when unknown or expired."""

    def delete(self, hash_id: str) -> None:
        """Forget the key (no error when unknown)."""


@runtime_checkable
class SaltCache(Protocol):
    def remember(self, access_token: str, salt: bytes, ttl: float) -> bool:
        """Record the pair for ``ttl`` seconds; False when it was already recorded
        and has not expired (a replay). Atomic: of two concurrent calls with the
        same pair exactly one returns True."""


def salt_fingerprint(access_token: str, salt: bytes) -> str:
    """The cache name of an (access token, salt) pair: hex SHA-256 of both, so
    the cache holds nothing that could authorize a request."""
    digest = hashlib.sha256()
    digest.update(access_token.encode("utf-8"))
    digest.update(b"\0")
    digest.update(salt)
    return digest.hexdigest()


class MemoryKeyCache:
    """Ephemeral keys in this process, at most ``max_keys`` (oldest dropped first)."""

    def __init__(self, *, max_keys: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._keys: dict[str, EphemeralKey] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._clock = clock

    def put(self, key: EphemeralKey) -> None:
        with self._lock:
            now = self._clock()
            if len(self._keys) >= self._max_keys:
                for hash_id in [h for h, k in self._keys.items() if k.expired(now)]:
                    del self._keys[hash_id]
            while len(self._keys) >= self._max_keys:
                # dicts keep insertion order: the first entry is the oldest key
                del self._keys[next(iter(self._keys))]
            self._keys[key.hash_id] = key

    def get(self, hash_id: str) -> EphemeralKey | None:
        with self._lock:
            key = self._keys.get(hash_id)
            if key is not None and key.expired(self._clock()):
                del self._keys[hash_id]
                return None
            return key

    def delete(self, hash_id: str) -> None:
        with self._lock:
            self._keys.pop(hash_id, None)

    def __len__(self) -> int:
        return len(self._keys)


class MemorySaltCache:
    """Seen (access token, salt) pairs in this process, expired ones swept as it grows."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: dict[str, float] = {}  # fingerprint -> deadline
        self._lock = threading.Lock()
        self._clock = clock
        self._sweep_at = 1024

    def remember(self, access_token: str, salt: bytes, ttl: float) -> bool:
        name = salt_fingerprint(access_token, salt)
        with self._lock:
            now = self._clock()
            deadline = self._seen.get(name)
            if deadline is not None and deadline > now:
                return False
            self._seen[name] = now + ttl
            if len(self._seen) >= self._sweep_at:
                self._seen = {k: d for k, d in self._seen.items() if d > now}
                # amortised: sweep again only after the live set has doubled
                self._sweep_at = max(1024, 2 * len(self._seen))
            return True

    def __len__(self) -> int:
        return len(self._seen)


def redis_client(url: str) -> redis.Redis:
    """A Redis client with bounded timeouts (a dead Redis fails fast)."""
    try:
        return redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
    except (ValueError, redis.exceptions.RedisError) as exc:
        raise InvalidArgumentError(f"bad Redis URL: {exc}") from exc


def _ttl_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisKeyCache:
    """Ephemeral keys in Redis under ``<prefix>ek:<hash id>``, expiring with the key.

    The stored value holds the key's secrets: the Redis server must be as
    private as the server process (bind it to loopback or a private network)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client is None:
            if url is None:
                raise InvalidArgumentError("RedisKeyCache needs a url or a client")
            client = redis_client(url)
        self._redis = client
        self._prefix = prefix + "ek:"
        self._clock = clock

    def put(self, key: EphemeralKey) -> None:
        ttl = key.ttl(self._clock())
        if ttl <= 0:
            return
        try:
            self._redis.set(self._prefix + key.hash_id, key.to_json(), px=_ttl_ms(ttl))
        except redis.exceptions.RedisError as exc:
            raise CacheUnavailableError(f"Redis key cache: {exc}") from exc

    def get(self, hash_id: str) -> EphemeralKey | None:
        try:
            stored = self._redis.get(self._prefix + hash_id)
        except redis.exceptions.RedisError as exc:
            raise CacheUnavailableError(f"Redis key cache: {exc}") from exc
        if stored is None:
            return None
        if not isinstance(stored, (bytes, str)):
            raise CacheUnavailableError("Redis key cache returned an unexpected value")
        try:
            key = EphemeralKey.from_json(stored)
        except MalformedFrameError as exc:
            raise CacheUnavailableError("Redis key cache holds a damaged key") from exc
        return None if key.expired(self._clock()) else key

    def delete(self, hash_id: str) -> None:
        try:
            self._redis.delete(self._prefix + hash_id)
        except redis.exceptions.RedisError as exc:
            raise CacheUnavailableError(f"Redis key cache: {exc}") from exc

    def close(self) -> None:
        self._redis.close()


class RedisSaltCache:
    """Seen pairs in Redis under ``<prefix>salt:<fingerprint>``; ``SET NX PX``
    makes the check-and-record atomic across server processes."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if client is None:
            if url is None:
                raise InvalidArgumentError("RedisSaltCache needs a url or a client")
            client = redis_client(url)
        self._redis = client
        self._prefix = prefix + "salt:"

    def remember(self, access_token: str, salt: bytes, ttl: float) -> bool:
        name = self._prefix + salt_fingerprint(access_token, salt)
        try:
            created = self._redis.set(name, b"1", nx=True, px=_ttl_ms(ttl))
        except redis.exceptions.RedisError as exc:
            raise CacheUnavailableError(f"Redis salt cache: {exc}") from exc
        return bool(created)

    def close(self) -> None:
        self._redis.close()


def make_caches(
    redis_url: str | None = None, *, prefix: str = DEFAULT_PREFIX
) -> tuple[KeyCache, SaltCache]:
    """In-memory caches, or Redis caches sharing one client when ``redis_url``
    (``redis://host:port/db``) is given."""
    if redis_url is None:
        return MemoryKeyCache(), MemorySaltCache()
    client = redis_client(redis_url)
    return (
        RedisKeyCache(client=client, prefix=prefix),
        RedisSaltCache(client=client, prefix=prefix),
    )
