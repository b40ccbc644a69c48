"""The Redis-backed ncryptf caches against a real redis-server on loopback
(tests/redisserver.py starts and stops it): keys, salts, TTLs, replay refusal
across "processes" (separate clients), atomicity, and failing closed when Redis
is gone.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from doublecrypt import ncryptf
from doublecrypt.errors import CacheUnavailableError, InvalidArgumentError, ReplayError
from redisserver import RedisServer

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with RedisServer.start(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own for each test sharing the module's server."""
    return f"test{next(_prefixes)}:"


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    yield client
    client.close()


def test_key_cache_stores_until_expiry(redis_url: str, prefix: str, raw: redis.Redis) -> None:
    cache = ncryptf.RedisKeyCache(redis_url, prefix=prefix)
    key = ncryptf.EphemeralKey.generate(lifetime=900)
    cache.put(key)
    assert cache.get(key.hash_id) == key
    other_process = ncryptf.RedisKeyCache(redis_url, prefix=prefix)
    assert other_process.get(key.hash_id) == key
    ttl_ms = raw.pttl(f"{prefix}ek:{key.hash_id}")
    assert isinstance(ttl_ms, int)
    assert 0 < ttl_ms <= 901_000
    cache.delete(key.hash_id)
    assert other_process.get(key.hash_id) is None
    assert cache.get("no-such-id") is None
    cache.close()
    other_process.close()


def test_key_cache_honours_expiry_in_redis_and_on_read(
    redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    clock = [time.time()]
    cache = ncryptf.RedisKeyCache(redis_url, prefix=prefix, clock=lambda: clock[0])
    short = dataclasses.replace(ncryptf.EphemeralKey.generate(), expires_at=clock[0] + 0.3)
    cache.put(short)
    assert cache.get(short.hash_id) == short
    time.sleep(0.5)
    assert raw.get(f"{prefix}ek:{short.hash_id}") is None  # Redis dropped it by itself
    assert cache.get(short.hash_id) is None
    long = ncryptf.EphemeralKey.generate(lifetime=100, now=clock[0])
    cache.put(long)
    clock[0] += 101
    assert cache.get(long.hash_id) is None  # expired by our clock even if Redis still has it
    stale = ncryptf.EphemeralKey.generate(lifetime=10, now=clock[0] - 100)
    cache.put(stale)  # already expired: not stored
    assert cache.get(stale.hash_id) is None
    cache.close()


def test_key_cache_reports_damaged_entries(redis_url: str, prefix: str, raw: redis.Redis) -> None:
    raw.set(f"{prefix}ek:broken", b"{not json")
    cache = ncryptf.RedisKeyCache(redis_url, prefix=prefix)
    with pytest.raises(CacheUnavailableError):
        cache.get("broken")
    cache.close()


def test_salt_cache_remembers_pairs_with_ttl(redis_url: str, prefix: str, raw: redis.Redis) -> None:
    salts = ncryptf.RedisSaltCache(redis_url, prefix=prefix)
    assert salts.remember("tok", b"s" * 32, 180)
    assert not salts.remember("tok", b"s" * 32, 180)
    assert salts.remember("tok2", b"s" * 32, 180)
    names = raw.keys(f"{prefix}salt:*")
    assert isinstance(names, list)
    assert len(names) == 2
    assert all(b"tok" not in name for name in names)  # only fingerprints stored
    ttl_ms = raw.pttl(names[0])
    assert isinstance(ttl_ms, int)
    assert 170_000 < ttl_ms <= 180_000
    assert salts.remember("short", b"t" * 32, 0.2)
    time.sleep(0.4)
    assert salts.remember("short", b"t" * 32, 0.2)  # expired, so new again
    salts.close()


def test_salt_cache_is_atomic_across_clients(redis_url: str, prefix: str) -> None:
    caches = [ncryptf.RedisSaltCache(redis_url, prefix=prefix) for _ in range(8)]
    results: list[bool] = []
    barrier = threading.Barrier(len(caches))

    def attempt(cache: ncryptf.RedisSaltCache) -> None:
        barrier.wait(timeout=10)
        results.append(cache.remember("tok", b"race" * 8, 60))

    threads = [threading.Thread(target=attempt, args=(cache,)) for cache in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [False] * 7 + [True]
    for cache in caches:
        cache.close()


@pytest.mark.parametrize("version", [1, 2])
def test_replay_refused_by_a_second_server_process(
    redis_url: str, prefix: str, version: int
) -> None:
    """Two servers sharing Redis: a request accepted by one is a replay at the other."""
    token = ncryptf.Token.generate()
    keys_a, salts_a = ncryptf.make_caches(redis_url, prefix=prefix)
    keys_b, salts_b = ncryptf.make_caches(redis_url, prefix=prefix)
    assert isinstance(salts_a, ncryptf.RedisSaltCache)
    assert isinstance(keys_a, ncryptf.RedisKeyCache)
    body = b'{"size": 1048576}'
    headers = ncryptf.authorization_header(token, "PUT", "/volumes/a", body, version=version)
    lookup = {token.access_token: token}.get
    found = ncryptf.verify_authorization(
        headers, "PUT", "/volumes/a", body, lookup=lookup, replay=salts_a
    )
    assert found is token
    with pytest.raises(ReplayError):
        ncryptf.verify_authorization(
            headers, "PUT", "/volumes/a", body, lookup=lookup, replay=salts_b
        )
    key = ncryptf.EphemeralKey.generate()
    keys_a.put(key)
    assert keys_b.get(key.hash_id) == key


def test_caches_fail_closed_when_redis_is_gone(tmp_path: Path) -> None:
    with RedisServer.start(tmp_path / "gone") as server:
        url = server.url
        keys, salts = ncryptf.make_caches(url, prefix="gone:")
        assert salts.remember("tok", b"a" * 32, 60)
    # stopped: nothing may be accepted without the replay check
    token = ncryptf.Token.generate()
    headers = ncryptf.authorization_header(token, "GET", "/")
    started = time.monotonic()
    with pytest.raises(CacheUnavailableError):
        ncryptf.verify_authorization(
            headers, "GET", "/", b"", lookup={token.access_token: token}.get, replay=salts
        )
    with pytest.raises(CacheUnavailableError):
        keys.put(ncryptf.EphemeralKey.generate())
    with pytest.raises(CacheUnavailableError):
        keys.get("x")
    with pytest.raises(CacheUnavailableError):
        keys.delete("x")
    assert time.monotonic() - started < 30  # bounded by the client timeouts


def test_bad_redis_url_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError):
        ncryptf.make_caches("http://not-redis")
