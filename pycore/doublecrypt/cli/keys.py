"""Where keys come from, for every command that opens an image.

A passphrase comes from ``--passphrase-file FILE`` (its first line), else the
``DOUBLECRYPT_PASSPHRASE`` environment variable, else an interactive prompt
without echo; never from a plain argument. ``--key-file FILE`` instead gives
the raw 32-byte master key (32 bytes, or 64 hex digits and an optional
newline). A new passphrase (``passwd``, ``key add``) comes from
``--new-passphrase-file``, ``DOUBLECRYPT_NEW_PASSPHRASE`` or a prompt asked twice.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

import doublecrypt

from .errors import EXIT_AUTH, EXIT_CORRUPT, EXIT_FAILURE, CliError

__all__ = [
    "ENV_NEW_PASSPHRASE",
    "ENV_PASSPHRASE",
    "KDF_CHOICES",
    "KeySource",
    "TamperedError",
    "image_passphrase",
    "kdf_option",
    "kdf_params",
    "key_options",
    "new_passphrase",
    "new_passphrase_option",
    "open_volume",
    "read_header",
    "read_key_file",
    "read_passphrase_file",
    "require_passphrase",
]

ENV_PASSPHRASE = "DOUBLECRYPT_PASSPHRASE"
ENV_NEW_PASSPHRASE = "DOUBLECRYPT_NEW_PASSPHRASE"
KEY_BYTES = 32

R = TypeVar("R")

KDF_CHOICES: dict[str, Callable[[], doublecrypt.KdfParams]] = {
    "interactive": doublecrypt.KdfParams.interactive,
    "moderate": doublecrypt.KdfParams.moderate,
    "minimum": doublecrypt.KdfParams.minimum,
}

_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=str)


def read_passphrase_file(path: str) -> bytes:
    """The first line of ``path``, without its line ending."""
    with open(path, "rb") as f:
        line = f.readline()
    line = line.removesuffix(b"\n").removesuffix(b"\r")
    if not line:
        raise CliError(f"empty passphrase in {path}")
    return line


def read_key_file(path: str) -> bytearray:
    """A raw master key: exactly 32 bytes, or 64 hex digits (+ newline)."""
    with open(path, "rb") as f:
        data = bytearray(f.read(KEY_BYTES * 2 + 3))
    try:
        if len(data) == KEY_BYTES:
            return bytearray(data)  # a copy: ``data`` is wiped below
        text = bytes(data).removesuffix(b"\n").removesuffix(b"\r")
        if len(text) == KEY_BYTES * 2:
            try:
                return bytearray.fromhex(text.decode("ascii"))
            except ValueError:
                pass
        raise CliError(f"{path}: a key file holds exactly 32 bytes, or 64 hex digits and a newline")
    finally:
        data[:] = bytes(len(data))


def _prompt(text: str, *, twice: bool) -> bytes:
    value: str = click.prompt(text, hide_input=True, confirmation_prompt=twice, err=True)
    return value.encode("utf-8")


@dataclass(frozen=True)
class KeySource:
    """The key options of one command invocation."""

    passphrase_file: str | None = None
    key_file: str | None = None

    @property
    def has_key_file(self) -> bool:
        return self.key_file is not None

    def passphrase(self, prompt: str, *, twice: bool = False) -> bytes:
        """The passphrase: from the file, the environment, or a prompt."""
        if self.passphrase_file is not None:
            return read_passphrase_file(self.passphrase_file)
        env = os.environ.get(ENV_PASSPHRASE)
        if env:
            return os.fsencode(env)
        return _prompt(prompt, twice=twice)

    def key(self) -> bytearray:
        if self.key_file is None:
            raise CliError("no --key-file given")
        return read_key_file(self.key_file)


def key_options(func: Callable[..., R]) -> Callable[..., R]:
    """Add ``--passphrase-file`` and ``--key-file``; the command gets ``keys``."""

    @functools.wraps(func)
    def wrapper(*args: Any, passphrase_file: str | None, key_file: str | None, **kwargs: Any) -> R:
        if passphrase_file is not None and key_file is not None:
            raise click.UsageError("give --passphrase-file or --key-file, not both")
        return func(*args, keys=KeySource(passphrase_file, key_file), **kwargs)

    with_key = click.option(
        "--key-file",
        type=_FILE,
        help="File holding the raw 32-byte master key (or 64 hex digits) instead of a passphrase.",
    )(wrapper)
    return click.option(
        "--passphrase-file",
        type=_FILE,
        help=f"Read the passphrase from the first line of FILE (else ${ENV_PASSPHRASE}, "
        "else a prompt).",
    )(with_key)


def new_passphrase_option(func: Callable[..., R]) -> Callable[..., R]:
    """Add ``--new-passphrase-file`` (the command gets ``new_passphrase_file``)."""
    return click.option(
        "--new-passphrase-file",
        type=_FILE,
        help=f"Read the new passphrase from the first line of FILE (else "
        f"${ENV_NEW_PASSPHRASE}, else a prompt asked twice).",
    )(func)


def new_passphrase(path: str | None) -> bytes:
    """The new passphrase of ``passwd`` and ``key add``."""
    if path is not None:
        return read_passphrase_file(path)
    env = os.environ.get(ENV_NEW_PASSPHRASE)
    if env:
        return os.fsencode(env)
    return _prompt("New passphrase", twice=True)


def kdf_option(func: Callable[..., R]) -> Callable[..., R]:
    """Add ``--kdf`` (the command gets ``kdf``, a name of KDF_CHOICES)."""
    return click.option(
        "--kdf",
        type=click.Choice(list(KDF_CHOICES)),
        default="interactive",
        show_default=True,
        help="Argon2id cost of the new key slot; 'minimum' is for tests only (weak).",
    )(func)


def kdf_params(name: str) -> doublecrypt.KdfParams:
    return KDF_CHOICES[name]()


def read_header(image: str) -> doublecrypt.ImageInfo:
    """What the header of ``image`` says, with a clear error for other files."""
    try:
        return doublecrypt.image_info(image)
    except doublecrypt.errors.CorruptionError:
        raise CliError(
            f"not a doublecrypt image, or its header is damaged: {image}", EXIT_CORRUPT
        ) from None
    except doublecrypt.errors.UnsupportedError:
        raise CliError(
            f"{image}: an image format this version does not read (it reads version "
            f"{doublecrypt.FORMAT_VERSION})",
            EXIT_CORRUPT,
        ) from None


def image_passphrase(image: str, keys: KeySource, prompt: str | None = None) -> bytes:
    """The passphrase for ``image``, asked only once its header has been read
    (so a missing or foreign file, or one without key slots, fails first)."""
    if not read_header(image).key_slots:
        raise CliError(f"{image} has no passphrase key slot: open it with --key-file", EXIT_AUTH)
    return keys.passphrase(prompt or f"Passphrase for {image}")


class TamperedError(CliError):
    """The passphrase opened a key slot, yet the volume fails authentication:
    its blocks were altered, damaged or rolled back."""

    def __init__(self, image: str) -> None:
        super().__init__(
            f"{image}: the passphrase is right but the volume fails authentication "
            "(altered or damaged data)",
            EXIT_AUTH,
        )


def open_volume(image: str, keys: KeySource, *, read_only: bool) -> doublecrypt.FileSystem:
    """Mount ``image`` with the key or passphrase ``keys`` gives; a wrong
    passphrase or key fails before anything is written. ``remote://...``
    names a volume on a block server (see :mod:`.remote`), ``s3://...`` one
    in an object store (:mod:`.objectstore`)."""
    from .objectstore import is_object_store_url, open_store_volume
    from .remote import is_remote, open_remote_volume

    if is_remote(image):
        return open_remote_volume(image, keys, read_only=read_only)
    if is_object_store_url(image):
        return open_store_volume(image, keys, read_only=read_only)
    if keys.key_file is None:
        key = doublecrypt.unlock_image(image, image_passphrase(image, keys))
    else:
        read_header(image)
        key = keys.key()
    try:
        return doublecrypt.open_image(image, key=key, read_only=read_only)
    except doublecrypt.AuthenticationError:
        if keys.key_file is None:
            raise TamperedError(image) from None
        raise
    finally:
        key[:] = bytes(len(key))


def require_passphrase(keys: KeySource, what: str) -> None:
    """Commands that match a passphrase to its slot cannot use a raw key."""
    if keys.key_file is not None:
        raise CliError(f"{what} needs the current passphrase, not --key-file", EXIT_FAILURE)
