"""Volumes in an object store: the global ``--store s3://BUCKET/PREFIX``
option.

``doublecrypt --store s3://BUCKET/PREFIX CMD ...`` runs ``init`` and the file
commands (put, get, cat, ls, stat, df, mkdir, rm, mv, fsck, mount) on the
volume there: the group puts the URL in front of the command's arguments,
as it does for ``--remote``, and :func:`open_store_volume` opens it. The
endpoint and credentials are boto3's (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles), or
``--s3-endpoint``. A commit that another writer overtook exits with the
conflict code and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

import doublecrypt

from ..objectstore.location import is_object_store_url
from .keys import KeySource, kdf_params

__all__ = [
    "STORE_COMMANDS",
    "check_store_options",
    "create_store_volume",
    "is_object_store_url",
    "open_store_volume",
    "store_options",
]

R = TypeVar("R")

STORE_COMMANDS = frozenset(
    {"init", "put", "get", "cat", "ls", "stat", "df", "mkdir", "rm", "mv", "fsck", "mount"}
)
"""Commands that take an IMAGE and work on an object-store volume too."""


def store_options(func: Callable[..., R]) -> Callable[..., R]:
    """The group's ``--store`` and ``--s3-endpoint`` options."""
    func = click.option(
        "--s3-endpoint",
        metavar="URL",
        help="S3 endpoint for --store (default: $AWS_ENDPOINT_URL, else AWS).",
    )(func)
    return click.option(
        "--store",
        metavar="s3://BUCKET/PREFIX",
        help="Work on the volume at this object-store location (S3 API; credentials as "
        "boto3 finds them) instead of an IMAGE: init and the file commands.",
    )(func)


def check_store_options(params: dict[str, Any]) -> None:
    store = params.get("store")
    if store is None:
        if params.get("s3_endpoint"):
            raise click.UsageError("--s3-endpoint only works with --store s3://BUCKET/PREFIX")
        return
    if not is_object_store_url(store):
        raise click.BadParameter("must look like s3://BUCKET/PREFIX", param_hint="'--store'")
    if params.get("remote"):
        raise click.UsageError("give --remote or --store, not both")


def _endpoint() -> str | None:
    ctx = click.get_current_context(silent=True)
    params = ctx.find_root().params if ctx is not None else {}
    endpoint = params.get("s3_endpoint")
    return str(endpoint) if endpoint else None


def _secret(keys: KeySource, prompt: str, *, twice: bool = False) -> dict[str, Any]:
    """``key=`` (from --key-file) or ``passphrase=`` for open_object_store."""
    if keys.key_file is not None:
        return {"key": keys.key()}
    return {"passphrase": keys.passphrase(prompt, twice=twice)}


def _wipe(secret: dict[str, Any]) -> None:
    key = secret.get("key")
    if isinstance(key, bytearray):
        key[:] = bytes(len(key))


def open_store_volume(url: str, keys: KeySource, *, read_only: bool) -> doublecrypt.FileSystem:
    """Mount the object-store volume ``url`` with the key or passphrase."""
    secret = _secret(keys, f"Passphrase for {url}")
    try:
        return doublecrypt.open_object_store(
            url, read_only=read_only, endpoint_url=_endpoint(), **secret
        )
    finally:
        _wipe(secret)


def create_store_volume(url: str, total: int, block_size: int, kdf: str, keys: KeySource) -> str:
    """Create and format a volume at ``url``; what to say about its key."""
    secret = _secret(keys, "New passphrase", twice=True)
    try:
        doublecrypt.open_object_store(
            url,
            create=True,
            size=total * block_size,
            block_size=block_size,
            kdf=kdf_params(kdf),
            endpoint_url=_endpoint(),
            **secret,
        ).close()
    finally:
        _wipe(secret)
    return "key slot 0" if "passphrase" in secret else "no key slot: open it with --key-file"
