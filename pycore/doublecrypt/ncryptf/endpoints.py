"""The ephemeral-key bootstrap endpoint, ``GET /ncryptf/ek``.

A client that has no server key yet asks here for one: the answer is
:meth:`~.keys.EphemeralKey.public_info` (``public`` box key, ``signature``
= signing public key, the id as ``hash-id`` and ``hash_id``, ``expires_at``),
and the key stays in the server's key cache for 15 minutes. The route is
public and answers plain JSON; through :class:`~.asgi.NcryptfMiddleware`
a client that sends ``Accept: application/vnd.ncryptf+json`` and ``X-PubKey``
gets it encrypted instead (PHP test-server style), made with yet another
fresh key whose id comes back in ``x-hashid``.

Keys stay usable until they expire rather than being dropped after one
request: concurrent requests of one client may share a key, and a replayed
request is refused by its ``Authorization`` salt, not by the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .asgi import allow_plain, public
from .cache import KeyCache, MemoryKeyCache
from .keys import EPHEMERAL_KEY_LIFETIME, EphemeralKey

__all__ = ["EK_PATH", "ek_endpoint", "ek_route"]

EK_PATH = "/ncryptf/ek"


def ek_endpoint(
    key_cache: KeyCache, lifetime: float = EPHEMERAL_KEY_LIFETIME
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that issues a fresh server key, cached for ``lifetime``."""

    @public
    @allow_plain
    async def ek(request: Request) -> Response:
        key = EphemeralKey.generate(lifetime)
        if isinstance(key_cache, MemoryKeyCache):
            key_cache.put(key)
        else:  # Redis: keep a slow answer off the event loop
            await asyncio.to_thread(key_cache.put, key)
        return JSONResponse(key.public_info(), headers={"cache-control": "no-store"})

    return ek


def ek_route(
    key_cache: KeyCache, path: str = EK_PATH, lifetime: float = EPHEMERAL_KEY_LIFETIME
) -> Route:
    """``GET path`` -> :func:`ek_endpoint`."""
    return Route(path, ek_endpoint(key_cache, lifetime), methods=["GET"], name="ncryptf-ek")
