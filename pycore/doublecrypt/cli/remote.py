"""Volumes on a block server: the global ``--remote`` option and the
``remote`` commands (``init``, ``token-hash``).

``doublecrypt --remote HOST:PORT [--volume NAME] CMD ...`` runs the file
commands (put, get, cat, ls, stat, df, mkdir, rm, mv, fsck) on a remote
volume: the group puts the pseudo-image ``remote://HOST:PORT/NAME`` in
front of the command's arguments, and :func:`open_remote_volume` opens it.
A remote volume is opened with ``--key-file``: its passphrase key slots would
sit on the server, which serves nothing before authentication.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click

import doublecrypt

from .errors import EXIT_EXISTS, EXIT_FAILURE, CliError, DoubleCryptGroup
from .keys import KeySource, key_options
from .sizes import check_geometry, format_size, geometry_options

__all__ = [
    "REMOTE_COMMANDS",
    "RemoteAwareGroup",
    "RemoteTarget",
    "is_remote",
    "open_remote_volume",
    "remote",
    "remote_options",
]

R = TypeVar("R")

SCHEME = "remote://"
DEFAULT_VOLUME = "default"
DEFAULT_PORT = 7450

REMOTE_COMMANDS = frozenset(
    {"put", "get", "cat", "ls", "stat", "df", "mkdir", "rm", "mv", "fsck", "mount"}
)
"""Commands that take an IMAGE and work on a remote volume too."""

_OPTION_NAMES = ("volume", "server_key", "known_hosts", "tls_fingerprint")


@dataclass(frozen=True)
class RemoteTarget:
    """A volume on a block server: ``remote://HOST:PORT/VOLUME``."""

    host: str
    port: int
    volume: str = DEFAULT_VOLUME

    @property
    def address(self) -> str:
        from ..net.connection import format_address  # the network code loads only when used

        return format_address(self.host, self.port)

    def __str__(self) -> str:
        return f"{SCHEME}{self.address}/{self.volume}"

    @classmethod
    def parse(cls, text: str) -> RemoteTarget:
        from ..net.connection import parse_address

        rest = text.removeprefix(SCHEME)
        address, _, volume = rest.partition("/")
        try:
            host, port = parse_address(address, DEFAULT_PORT)
        except doublecrypt.errors.InvalidArgumentError as exc:
            raise click.BadParameter(str(exc), param_hint="'--remote'") from None
        return cls(host, port, volume or DEFAULT_VOLUME)


def is_remote(image: str) -> bool:
    return image.startswith(SCHEME)


# ---- the global options ---------------------------------------------------------


def remote_options(func: Callable[..., R]) -> Callable[..., R]:
    """The group's ``--remote``, ``--volume``, ``--server-key``,
    ``--known-hosts`` and ``--tls-fingerprint`` options."""
    options = [
        click.option(
            "--remote",
            metavar="HOST:PORT",
            help="Work on a volume of the block server at HOST:PORT ([IPv6]:PORT) instead "
            "of an IMAGE (file commands only; open it with --key-file).",
        ),
        click.option(
            "--volume",
            metavar="NAME",
            help=f"Volume on the server (default '{DEFAULT_VOLUME}').",
        ),
        click.option(
            "--server-key",
            metavar="HEX",
            help="Pin the server's Noise public key (64 hex digits; as 'serve' prints it).",
        ),
        click.option(
            "--known-hosts",
            type=click.Path(dir_okay=False, path_type=str),
            help="Known-hosts file for servers met without --server-key (default "
            "~/.config/doublecrypt/known_hosts); a server's key is recorded on first contact.",
        ),
        click.option(
            "--tls-fingerprint",
            metavar="HEX",
            help="Use TLS instead of Noise, pinning the server certificate's SHA-256 "
            "fingerprint (HOST:PORT is then the server's TLS listener).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_remote_options(params: dict[str, Any]) -> None:
    if params.get("remote") is None:
        given = [f"--{name.replace('_', '-')}" for name in _OPTION_NAMES if params.get(name)]
        if given:
            raise click.UsageError(f"{', '.join(given)} only work with --remote HOST:PORT")
    elif params.get("server_key") and params.get("tls_fingerprint"):
        raise click.UsageError("give --server-key (Noise) or --tls-fingerprint (TLS), not both")


def _root_params() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return dict(ctx.find_root().params) if ctx is not None else {}


class RemoteAwareGroup(DoubleCryptGroup):
    """With ``--remote``, file commands get ``remote://HOST:PORT/VOLUME`` as
    their IMAGE argument; other image commands are refused."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        address = ctx.params.get("remote")
        store = ctx.params.get("store")
        if command is None or name is None or (address is None and store is None):
            return name, command, rest
        if store is not None and address is None:
            from .objectstore import STORE_COMMANDS

            if name in STORE_COMMANDS:
                return name, command, [store, *rest]
            if not isinstance(command, click.Group) and any(
                isinstance(p, click.Argument) and p.name == "image" for p in command.params
            ):
                raise click.UsageError(f"'{name}' does not work on an object-store volume", ctx)
            return name, command, rest
        if address is None:
            return name, command, rest
        if name in REMOTE_COMMANDS:
            parsed = RemoteTarget.parse(address)
            target = RemoteTarget(
                parsed.host, parsed.port, ctx.params.get("volume") or DEFAULT_VOLUME
            )
            return name, command, [str(target), *rest]
        if not isinstance(command, click.Group) and any(
            isinstance(p, click.Argument) and p.name == "image" for p in command.params
        ):
            raise click.UsageError(f"'{name}' does not work on a remote volume", ctx)
        return name, command, rest


# ---- opening ----------------------------------------------------------------------


def _connect_options(params: dict[str, Any]) -> dict[str, Any]:
    transport: Literal["noise", "tls"] = "tls" if params.get("tls_fingerprint") else "noise"
    return {
        "server_key": params.get("server_key"),
        "known_hosts": params.get("known_hosts"),
        "transport": transport,
        "tls_fingerprint": params.get("tls_fingerprint"),
    }


def _remote_key(keys: KeySource, target: RemoteTarget) -> bytearray:
    if keys.key_file is None:
        raise CliError(
            f"{target}: a remote volume is opened with --key-file (its passphrase key "
            "slots would be on the server, which serves nothing before authentication)",
            EXIT_FAILURE,
        )
    return keys.key()


def open_remote_volume(image: str, keys: KeySource, *, read_only: bool) -> doublecrypt.FileSystem:
    """Mount the remote volume ``image`` (``remote://HOST:PORT/VOLUME``)."""
    target = RemoteTarget.parse(image)
    key = _remote_key(keys, target)
    try:
        return doublecrypt.open_remote(
            target.address,
            key=key,
            volume=target.volume,
            read_only=read_only,
            **_connect_options(_root_params()),
        )
    finally:
        key[:] = bytes(len(key))


# ---- the remote commands ------------------------------------------------------------


@click.group(cls=DoubleCryptGroup)
def remote() -> None:
    """Volumes on a block server ('doublecrypt serve'); see also --remote."""


@remote.command("token-hash")
@key_options
def token_hash(keys: KeySource) -> None:
    """Print the BLAKE3 hash of the auth token the master key gives.

    The server admin registers it with 'doublecrypt volume create --token-hash';
    the server never sees the key or the token itself before a client connects.
    """
    if keys.key_file is None:
        raise CliError("token-hash needs --key-file (the raw master key)", EXIT_FAILURE)
    from ..net.store import auth_token_hash

    key = keys.key()
    try:
        click.echo(auth_token_hash(key))
    finally:
        key[:] = bytes(len(key))


@remote.command("init")
@geometry_options("Volume size, e.g. 512M, 1G.")
@key_options
def remote_init(size: int, block_size: int, keys: KeySource) -> None:
    """Create and format the volume --volume on the server --remote.

    The server creates the volume when it allows that; a volume the admin
    made for this key is formatted if it is still blank. Needs --key-file.
    """
    params = _root_params()
    if params.get("remote") is None:
        raise click.UsageError("remote init needs --remote HOST:PORT (before 'remote')")
    total = check_geometry(size, block_size)
    parsed = RemoteTarget.parse(params["remote"])
    target = RemoteTarget(parsed.host, parsed.port, params.get("volume") or DEFAULT_VOLUME)
    key = _remote_key(keys, target)
    try:
        fs = doublecrypt.open_remote(
            target.address,
            key=key,
            volume=target.volume,
            create=True,
            size=total * block_size,
            block_size=block_size,
            **_connect_options(params),
        )
    except doublecrypt.errors.AlreadyExistsError as exc:
        raise CliError(f"{target}: {exc}", EXIT_EXISTS) from None
    finally:
        key[:] = bytes(len(key))
    with fs:
        stats = fs.statvfs()
    click.echo(
        f"created {target}: {format_size(stats.total_blocks * stats.block_size)}, "
        f"{stats.total_blocks} blocks of {format_size(stats.block_size)}"
    )
