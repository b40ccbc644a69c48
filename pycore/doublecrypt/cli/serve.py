"""The block server side: ``serve`` and the ``volume`` admin group.

``serve`` prints one JSON line on stdout once it listens (``{"event":
"listening", "noise": ..., "tls": ..., "server_key": ..., "tls_fingerprint":
...}``, plus ``"admin": HOST:PORT`` with ``--admin``, and ``"admin_token_file"``
when that start wrote the bootstrap admin token) and logs to stderr; SIGTERM
or SIGINT stop it cleanly (requests already received are answered, every
volume is synced) with exit code 0.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import pathlib
import signal
import sys
from typing import Any

import click

from ..net import wire
from ..net.object_volumes import ObjectVolumeStore
from ..net.volumes import VolumeStore, check_volume_name
from ..objectstore.location import S3Settings, is_object_store_url
from .common import echo_json, json_option, seconds_option
from .sizes import SIZE, format_size, geometry_options

__all__ = ["parse_host_port", "serve", "volume"]

_MIN_MAX_MESSAGE = 4096


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port). Raises ValueError."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:7400 or [::1]:7400), got {text!r}")
    return host, int(port_text)


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    try:
        return parse_host_port(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _check_backend(backend: str) -> None:
    if not is_object_store_url(backend):
        raise click.BadParameter("must look like s3://BUCKET/PREFIX", param_hint="'--backend'")


def _data_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--data",
        "data_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=pathlib.Path),
        help="The server's data directory (keys, certificate, volumes/).",
    )(func)


@click.command()
@click.option(
    "--listen",
    required=True,
    callback=_address,
    metavar="HOST:PORT",
    help="Address of the Noise listener (port 0: any free port).",
)
@_data_option
@click.option(
    "--tls-listen",
    callback=_address,
    metavar="HOST:PORT",
    help="Also listen for TLS (self-signed certificate, pinned by clients).",
)
@click.option("--no-create", is_flag=True, help="Refuse to create volumes for clients.")
@click.option(
    "--max-message",
    type=SIZE,
    default=str(wire.DEFAULT_MAX_MESSAGE),
    show_default=True,
    help="Largest request or response, in bytes.",
)
@seconds_option("--idle-timeout", 120.0, "Close a connection idle for this many seconds.")
@seconds_option(
    "--handshake-timeout", 10.0, "Close a connection whose handshake takes longer than this."
)
@click.option(
    "--admin",
    "admin_listen",
    callback=_address,
    metavar="HOST:PORT",
    help="Also serve the management API (HTTP behind ncryptf; docs/PROTOCOL.md section 6). "
    "The first start writes an admin token to DATA/admin/admin-token.json.",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Keep the management API's key and replay caches in Redis (redis://HOST:PORT/DB) "
    "instead of in memory.",
)
@click.option(
    "--backend",
    metavar="s3://BUCKET/PREFIX",
    help="Keep the volumes in this object store (S3 API) instead of DATA/volumes/.",
)
@click.option(
    "--s3-endpoint",
    metavar="URL",
    help="S3 endpoint for --backend (default: $AWS_ENDPOINT_URL, else AWS).",
)
def serve(
    listen: tuple[str, int],
    data_dir: pathlib.Path,
    tls_listen: tuple[str, int] | None,
    no_create: bool,
    max_message: int,
    idle_timeout: float,
    handshake_timeout: float,
    admin_listen: tuple[str, int] | None,
    redis_url: str | None,
    backend: str | None,
    s3_endpoint: str | None,
) -> None:
    """Run the block server: volumes of ciphertext blocks for remote clients.

    With --backend s3://BUCKET/PREFIX the volumes live in an object store
    (credentials as boto3 finds them) and the server keeps no state of its
    own there: several servers can front one bucket, each client's commits
    guarded by its writer lease (docs/OBJECT_STORE.md)."""
    from ..net.server import BlockServer, ServerConfig

    if backend is not None:
        _check_backend(backend)
    if backend is not None and admin_listen is not None:
        raise click.UsageError(
            "--admin manages volumes in DATA/volumes; it does not work with --backend yet"
        )
    if s3_endpoint is not None and backend is None:
        raise click.UsageError("--s3-endpoint only works with --backend s3://BUCKET/PREFIX")
    if redis_url is not None and admin_listen is None:
        raise click.UsageError("--redis is for the management API: give --admin HOST:PORT too")
    if max_message < _MIN_MAX_MESSAGE:
        raise click.BadParameter(f"at least {_MIN_MAX_MESSAGE} bytes", param_hint="'--max-message'")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s doublecrypt-server %(levelname)s %(message)s",
    )
    config = ServerConfig(
        data_dir=data_dir,
        listen=listen,
        tls_listen=tls_listen,
        allow_create=not no_create,
        backend=backend,
        backend_settings=None if backend is None else S3Settings(endpoint_url=s3_endpoint),
        max_message=max_message,
        idle_timeout=idle_timeout,
        handshake_timeout=handshake_timeout,
    )

    async def run() -> None:
        server = BlockServer(config)
        admin = bootstrap = None
        if admin_listen is not None:  # first: it finishes interrupted resizes
            from ..net.admin_api import start_admin

            assert isinstance(server.store, VolumeStore)  # --admin needs DATA/volumes
            admin, bootstrap = await start_admin(server.store, admin_listen, redis_url=redis_url)
        await server.start()
        line = {
            "event": "listening",
            "noise": server.noise_address,
            "tls": server.tls_address,
            "server_key": server.server_key.hex(),
            "tls_fingerprint": server.tls_fingerprint,
        }
        if admin is not None:
            line["admin"] = admin.address
            if bootstrap is not None:
                line["admin_token_file"] = str(bootstrap)
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        logging.getLogger("doublecrypt.server").info("stopping")
        if admin is not None:
            await admin.stop()
        await server.shutdown()

    asyncio.run(run())


@click.group()
def volume() -> None:
    """Manage the block server's volumes (run on the server)."""


def _volume_store_options(func: click.decorators.FC) -> click.decorators.FC:
    """``--data DIR`` or ``--backend s3://BUCKET/PREFIX`` (+ ``--s3-endpoint``):
    where the volumes are; the command gets ``store``."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        data_dir: pathlib.Path | None,
        backend: str | None,
        s3_endpoint: str | None,
        **kwargs: Any,
    ) -> Any:
        if (data_dir is None) == (backend is None):
            raise click.UsageError("give --data DIR or --backend s3://BUCKET/PREFIX")
        if s3_endpoint is not None and backend is None:
            raise click.UsageError("--s3-endpoint only works with --backend")
        store: VolumeStore | ObjectVolumeStore
        if backend is not None:
            if not is_object_store_url(backend):
                raise click.BadParameter(
                    "must look like s3://BUCKET/PREFIX", param_hint="'--backend'"
                )
            store = ObjectVolumeStore(backend, S3Settings(endpoint_url=s3_endpoint))
        else:
            assert data_dir is not None
            store = VolumeStore(data_dir)
        return func(*args, store=store, **kwargs)

    for option in (
        click.option("--s3-endpoint", metavar="URL", help="S3 endpoint for --backend."),
        click.option(
            "--backend",
            metavar="s3://BUCKET/PREFIX",
            help="The volumes of servers run with --backend (instead of --data).",
        ),
        click.option(
            "--data",
            "data_dir",
            type=click.Path(file_okay=False, path_type=pathlib.Path),
            help="The server's data directory (its volumes/).",
        ),
    ):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


@volume.command("create")
@_volume_store_options
@click.argument("name")
@geometry_options(
    "Volume size, e.g. 1G (binary units).",
    "Block size: a power of two; the client's image must use the same.",
)
@click.option(
    "--token-hash",
    required=True,
    metavar="HEX",
    help="BLAKE3 of the client's auth token (doublecrypt remote token-hash).",
)
def volume_create(
    store: VolumeStore | ObjectVolumeStore, name: str, size: int, block_size: int, token_hash: str
) -> None:
    """Create volume NAME for the client whose token hashes to HEX."""
    try:
        check_volume_name(name)
        digest = bytes.fromhex(token_hash)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if len(digest) != 32:
        raise click.BadParameter(
            f"64 hex digits (a BLAKE3 hash), got {len(token_hash)} characters",
            param_hint="'--token-hash'",
        )
    total_blocks = size // block_size if block_size else 0
    info = store.create(name, block_size, total_blocks, digest)
    click.echo(
        f"created volume {info.name}: {format_size(info.size)} "
        f"({info.total_blocks} blocks of {format_size(info.block_size)})"
    )


@volume.command("list")
@_volume_store_options
@json_option
def volume_list(store: VolumeStore | ObjectVolumeStore, as_json: bool) -> None:
    """List the volumes."""
    volumes = store.list_volumes()
    if as_json:
        echo_json(
            [
                {
                    "name": v.name,
                    "block_size": v.block_size,
                    "total_blocks": v.total_blocks,
                    "size": v.size,
                }
                for v in volumes
            ]
        )
        return
    for v in volumes:
        click.echo(
            f"{v.name}\t{format_size(v.size)}\t{v.total_blocks} blocks of "
            f"{format_size(v.block_size)}"
        )


@volume.command("remove")
@_volume_store_options
@click.argument("name")
def volume_remove(store: VolumeStore | ObjectVolumeStore, name: str) -> None:
    """Delete volume NAME and its blocks."""
    store.remove(name)
    click.echo(f"removed volume {name}")
