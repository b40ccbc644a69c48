"""The block server's management API: an HTTP (Starlette) app behind ncryptf,
served by uvicorn on the block server's own event loop
(``doublecrypt serve --admin HOST:PORT``; docs/PROTOCOL.md section 6).

Every route but ``GET /v1/health`` and the key bootstrap ``GET /ncryptf/ek``
needs an ncryptf ``Authorization`` from a token in ``DATA/admin/tokens.json``
(:mod:`.admin_tokens`) and speaks only encrypted JSON
(``application/vnd.ncryptf+json``). Routes::

    GET    /v1/health                 {"status": "ok"} (public, plain JSON)
    GET    /ncryptf/ek                a server key (public, plain JSON)
    GET    /v1/whoami                 the calling token (id, label, role, expiry)
    GET    /v1/volumes                [usage of each volume]
    POST   /v1/volumes                {name, size|total_blocks, block_size, token_hash}
    GET    /v1/volumes/{name}         usage of one volume
    PATCH  /v1/volumes/{name}         {size|total_blocks}: resize (not while open)
    DELETE /v1/volumes/{name}         delete (not while open)
    GET    /v1/usage                  every volume's usage, totals, free disk space
    GET    /v1/tokens                 tokens without their secrets
    POST   /v1/tokens                 {label?, role?, lifetime?}: issue (returns the token once)
    DELETE /v1/tokens/{id}            revoke

A ``read-only`` token may use the GET routes only (403 otherwise). Errors are
``{"error": CODE, "message": TEXT}`` with 400 invalid, 401, 403, 404
not_found, 409 exists / busy / in_use, 500, 507 no_space.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import shutil
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .. import __version__
from ..errors import (
    AlreadyExistsError,
    DoubleCryptError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
)
from ..ncryptf.asgi import (
    NcryptfMiddleware,
    allow_plain,
    ncryptf_request,
    policy_for_routes,
    public,
)
from ..ncryptf.cache import KeyCache, SaltCache, make_caches
from ..ncryptf.endpoints import ek_route
from .admin_tokens import DEFAULT_LIFETIME, IssuedToken, TokenRegistry
from .admin_volumes import (
    VolumeBusyError,
    VolumeInUseError,
    delete_volume,
    parse_total_blocks,
    recover_resizes,
    resize_volume,
    volume_usage,
)
from .volumes import VolumeStore, check_volume_name

__all__ = [
    "AdminServer",
    "build_admin_app",
    "listening_socket",
    "start_admin",
    "start_admin_server",
]

log = logging.getLogger("doublecrypt.admin")

_Endpoint = Callable[[Request], Awaitable[Response]]

# Checked in order: the first class the error is an instance of gives the answer.
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (VolumeBusyError, 409, "busy"),
    (VolumeInUseError, 409, "in_use"),
    (NotFoundError, 404, "not_found"),
    (AlreadyExistsError, 409, "exists"),
    (NoSpaceError, 507, "no_space"),
    (InvalidArgumentError, 400, "invalid"),
    (DoubleCryptError, 500, "server_error"),
)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _on_error(request: Request, exc: Exception) -> Response:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            if status >= 500:
                log.error("%s %s: %s", request.method, request.url.path, exc)
            return _error(status, code, str(exc))
    raise exc


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise InvalidArgumentError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError("the body must be a JSON object")
    return data


class _Api:
    """The route handlers, over one volume store and token registry."""

    def __init__(self, store: VolumeStore, registry: TokenRegistry) -> None:
        self.store = store
        self.registry = registry

    def caller(self, request: Request) -> IssuedToken:
        token = ncryptf_request(request).token
        entry = None if token is None else self.registry.lookup(token.access_token)
        if entry is None:  # revoked between verification and now
            raise _Forbidden("the token is not registered")
        return entry

    def writer(self, request: Request) -> IssuedToken:
        entry = self.caller(request)
        if entry.role != "admin":
            raise _Forbidden(f"a {entry.role} token cannot change anything")
        return entry

    def usage_dicts(self) -> list[dict[str, Any]]:
        return [volume_usage(self.store, info).to_dict() for info in self.store.list_volumes()]

    async def whoami(self, request: Request) -> Response:
        return JSONResponse(self.caller(request).public_dict())

    async def list_volumes(self, request: Request) -> Response:
        self.caller(request)
        return JSONResponse({"volumes": self.usage_dicts()})

    async def create_volume(self, request: Request) -> Response:
        self.writer(request)
        body = await _json_body(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidArgumentError("name must be a string")
        check_volume_name(name)
        block_size = body.get("block_size", 65536)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size <= 0:
            raise InvalidArgumentError("block_size must be a positive integer")
        total_blocks = parse_total_blocks(body, block_size)
        token_hash = body.get("token_hash")
        try:
            digest = bytes.fromhex(token_hash) if isinstance(token_hash, str) else b""
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise InvalidArgumentError(
                "token_hash must be 64 hex digits: the BLAKE3 hash of the client's volume "
                "token (doublecrypt remote token-hash)"
            )
        info = await asyncio.to_thread(self.store.create, name, block_size, total_blocks, digest)
        log.info("admin: created volume %r (%d blocks)", name, total_blocks)
        return JSONResponse(volume_usage(self.store, info).to_dict(), status_code=201)

    async def get_volume(self, request: Request) -> Response:
        self.caller(request)
        info = self.store.info(request.path_params["name"])
        return JSONResponse(volume_usage(self.store, info).to_dict())

    async def resize_volume(self, request: Request) -> Response:
        self.writer(request)
        name = request.path_params["name"]
        info = self.store.info(name)
        body = await _json_body(request)
        total_blocks = parse_total_blocks(body, info.block_size)
        # Synchronous on purpose: see admin_volumes (no client may open it meanwhile).
        resized = resize_volume(self.store, name, total_blocks)
        return JSONResponse(volume_usage(self.store, resized).to_dict())

    async def delete_volume(self, request: Request) -> Response:
        self.writer(request)
        name = request.path_params["name"]
        delete_volume(self.store, name)
        log.info("admin: deleted volume %r", name)
        return JSONResponse({"deleted": name})

    async def usage(self, request: Request) -> Response:
        self.caller(request)
        volumes = self.usage_dicts()
        disk = shutil.disk_usage(self.store.data_dir)
        return JSONResponse(
            {
                "volumes": volumes,
                "total": {
                    "volumes": len(volumes),
                    "size": sum(v["size"] for v in volumes),
                    "bytes_on_disk": sum(v["bytes_on_disk"] for v in volumes),
                },
                "disk": {"total": disk.total, "free": disk.free},
            }
        )

    async def list_tokens(self, request: Request) -> Response:
        self.caller(request)
        return JSONResponse({"tokens": [e.public_dict() for e in self.registry.entries()]})

    async def issue_token(self, request: Request) -> Response:
        self.writer(request)
        body = await _json_body(request)
        label = body.get("label", "")
        role = body.get("role", "admin")
        lifetime = body.get("lifetime", DEFAULT_LIFETIME)
        if not isinstance(label, str) or not isinstance(role, str):
            raise InvalidArgumentError("label and role must be strings")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            raise InvalidArgumentError("lifetime must be a number of seconds")
        entry = await asyncio.to_thread(
            self.registry.issue, label=label, role=role, lifetime=float(lifetime)
        )
        log.info("admin: issued %s token %s (%r)", entry.role, entry.id, entry.label)
        return JSONResponse({**entry.public_dict(), "token": entry.token.to_dict()}, 201)

    async def revoke_token(self, request: Request) -> Response:
        self.writer(request)
        entry = await asyncio.to_thread(self.registry.revoke, request.path_params["token_id"])
        log.info("admin: revoked token %s (%r)", entry.id, entry.label)
        return JSONResponse({"revoked": entry.id})


class _Forbidden(DoubleCryptError):
    pass


@public
@allow_plain
async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


async def _on_forbidden(request: Request, exc: Exception) -> Response:
    return _error(403, "forbidden", str(exc))


def build_admin_app(
    store: VolumeStore,
    registry: TokenRegistry,
    key_cache: KeyCache,
    salt_cache: SaltCache,
    *,
    drift: float = 90.0,
) -> ASGIApp:
    """The management API over ``store`` (the block server's own, so it sees
    which volumes are open), wrapped in :class:`NcryptfMiddleware`. Finishes
    any resize a crash interrupted first."""
    recover_resizes(store)
    api = _Api(store, registry)
    routes = [
        Route("/v1/health", health, methods=["GET"]),
        ek_route(key_cache),
        Route("/v1/whoami", api.whoami, methods=["GET"]),
        Route("/v1/volumes", api.list_volumes, methods=["GET"]),
        Route("/v1/volumes", api.create_volume, methods=["POST"]),
        Route("/v1/volumes/{name}", api.get_volume, methods=["GET"]),
        Route("/v1/volumes/{name}", api.resize_volume, methods=["PATCH"]),
        Route("/v1/volumes/{name}", api.delete_volume, methods=["DELETE"]),
        Route("/v1/usage", api.usage, methods=["GET"]),
        Route("/v1/tokens", api.list_tokens, methods=["GET"]),
        Route("/v1/tokens", api.issue_token, methods=["POST"]),
        Route("/v1/tokens/{token_id}", api.revoke_token, methods=["DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={_Forbidden: _on_forbidden, DoubleCryptError: _on_error},
    )
    return NcryptfMiddleware(
        app,
        lookup=registry.lookup_token,
        key_cache=key_cache,
        salt_cache=salt_cache,
        policy=policy_for_routes(routes),
        drift=drift,
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the block server owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """The management API being served on this event loop."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], address: str) -> None:
        self._server = server
        self._task = task
        self.address = address

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, finish the requests under way (up to ``timeout``)."""
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            self._server.force_exit = True
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 1.0)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener on ``host:port`` (0: any free port) to hand to uvicorn.

    Made with protocol IPPROTO_TCP on purpose: asyncio sets TCP_NODELAY only on
    accepted sockets whose ``proto`` says TCP, and ``socket.create_server``
    leaves it 0, which lets Nagle's algorithm and delayed ACKs add ~40 ms to
    every response (uvicorn writes headers and body separately)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def start_admin_server(app: ASGIApp, host: str, port: int) -> AdminServer:
    """Serve ``app`` on ``host:port`` (0: any free port) in the running loop."""
    sock = listening_socket(host, port)
    bound = sock.getsockname()
    address = (
        f"[{bound[0]}]:{bound[1]}" if sock.family == socket.AF_INET6 else f"{bound[0]}:{bound[1]}"
    )
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise OSError(f"the management API could not start on {address}")
        await asyncio.sleep(0.01)
    log.info("management API listening on http://%s (pid %d)", address, os.getpid())
    return AdminServer(server, task, address)


async def start_admin(
    store: VolumeStore,
    listen: tuple[str, int],
    *,
    redis_url: str | None = None,
    drift: float = 90.0,
) -> tuple[AdminServer, pathlib.Path | None]:
    """What ``serve --admin`` runs: load the tokens of ``store``'s data
    directory (issuing the bootstrap admin token when no valid one exists),
    make the caches (Redis when ``redis_url``), serve the API on ``listen``.
    Returns the server and the bootstrap token file if one was written now."""
    registry = TokenRegistry(store.data_dir)
    bootstrap = registry.ensure_admin()
    if bootstrap is not None:
        log.warning("wrote a new admin token to %s (doublecrypt admin --token-file)", bootstrap)
    key_cache, salt_cache = make_caches(redis_url)
    app = build_admin_app(store, registry, key_cache, salt_cache, drift=drift)
    server = await start_admin_server(app, *listen)
    return server, bootstrap
