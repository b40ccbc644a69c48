"""``import-v1``: migrate a doublecrypt-core (v1) image into a new native one.

The old image is opened read-only with its raw master key (``--old-key-file``);
the new image is created like ``init`` does with a passphrase (key slot 0),
then the whole tree is copied (:mod:`doublecrypt.compat.importer`). If any
step fails, or ``--verify`` finds a difference, the new image is removed: a
half-made copy is never left looking like a finished one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

import doublecrypt

from .admin import create_image_store
from .errors import EXIT_CORRUPT, EXIT_EXISTS, EXIT_NO_SPACE, CliError
from .keys import ENV_PASSPHRASE, KeySource, kdf_option, kdf_params, read_key_file
from .progress import byte_progress
from .sizes import SIZE, check_geometry, format_size

if TYPE_CHECKING:  # the reader (cryptography, blake3) loads only when the command runs
    from doublecrypt.compat import V1FileSystem
    from doublecrypt.compat.importer import ImportItem

__all__ = ["default_block_size", "import_v1"]

_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=str)


def default_block_size(old_block_size: int) -> int:
    """The old image's block size when a native volume can use it, else the default."""
    lo, hi = doublecrypt.MIN_BLOCK_SIZE, doublecrypt.MAX_BLOCK_SIZE
    if lo <= old_block_size <= hi and old_block_size & (old_block_size - 1) == 0:
        return old_block_size
    return doublecrypt.DEFAULT_BLOCK_SIZE


def _warn(message: str) -> None:
    click.echo(f"doublecrypt: warning: {message}", err=True)  # one line, never wrapped


def _create(
    image: str, total: int, block_size: int, passphrase: bytes, kdf: str
) -> tuple[doublecrypt.FileSystem, int]:
    """A new random-filled image with a fresh master key in a passphrase slot."""
    store = create_image_store(image, total, block_size)
    master = bytearray(os.urandom(doublecrypt.MASTER_KEY_BYTES))
    try:
        fs = doublecrypt.FileSystem.format(store, master)
        try:
            return fs, fs.add_passphrase(passphrase, kdf_params(kdf))
        except BaseException:
            fs.close()
            raise
    except BaseException:
        os.unlink(image)
        raise
    finally:
        master[:] = bytes(len(master))


def _copy(
    old: V1FileSystem,
    new: doublecrypt.FileSystem,
    plan: list[ImportItem],
    verify: bool,
) -> None:
    from doublecrypt.compat import import_v1 as import_tree
    from doublecrypt.compat import verify_import

    total_bytes = sum(item.size for item in plan)
    try:
        with byte_progress("import", total_bytes) as advance:
            report = import_tree(old, new, items=plan, progress=advance)
    except doublecrypt.errors.NoSpaceError:
        raise CliError(
            "the new image is full: give a larger --size (the partial copy is removed)",
            EXIT_NO_SPACE,
        ) from None
    click.echo(
        f"imported {report.files} files and {report.directories} directories "
        f"({format_size(report.bytes)}) from generation {report.source_generation}; "
        f"not kept: {', '.join(report.not_kept)}"
    )
    if not verify:
        return
    with byte_progress("verify", total_bytes) as advance:
        checked = verify_import(old, new, progress=advance)
    if not checked.ok:
        raise CliError(
            f"verify found {len(checked.mismatches)} differences: "
            + "; ".join(checked.mismatches[:5]),
            EXIT_CORRUPT,
        )
    click.echo(
        f"verified: {checked.files} files, {checked.directories} directories, "
        f"BLAKE3 of every file identical"
    )


@click.command("import-v1")
@click.argument("old_image", metavar="OLD.img", type=_FILE)
@click.argument("image", metavar="NEW.img", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--old-key-file",
    type=_FILE,
    required=True,
    help="The old image's raw 32-byte master key (or 64 hex digits).",
)
@click.option(
    "--size",
    type=SIZE,
    default=None,
    help="Size of the new image, e.g. 1G [default: the old image's size, or more "
    "when its tree needs it].",
)
@click.option(
    "--block-size",
    type=SIZE,
    default=None,
    help="Block size of the new image, a power of two from 4K to 1M [default: the old "
    "image's, else 64K].",
)
@click.option("--verify", is_flag=True, help="Re-read both images and compare every file's BLAKE3.")
@click.option(
    "--passphrase-file",
    type=_FILE,
    help=f"Read the new image's passphrase from the first line of FILE (else "
    f"${ENV_PASSPHRASE}, else a prompt asked twice).",
)
@kdf_option
def import_v1(
    old_image: str,
    image: str,
    old_key_file: str,
    size: int | None,
    block_size: int | None,
    verify: bool,
    passphrase_file: str | None,
    kdf: str,
) -> None:
    """Copy a doublecrypt-core 0.1 image (OLD.img) into a new image NEW.img.

    OLD.img is only read. NEW.img gets a random master key in a passphrase
    key slot; every directory and file is copied with its contents and
    modification time. With --verify both images are read again afterwards
    and compared.
    """
    from doublecrypt.compat import open_v1
    from doublecrypt.compat.importer import native_size_needed, plan_import

    if os.path.lexists(image):
        raise CliError(f"already exists: {image}", EXIT_EXISTS)
    old_key = read_key_file(old_key_file)
    try:
        old = open_v1(old_image, old_key)
    finally:
        old_key[:] = bytes(len(old_key))
    with old:
        for reason in old.skipped_roots:
            _warn(f"{old_image}: {reason}; reading generation {old.generation} instead")
        plan = plan_import(old)
        bs = block_size or default_block_size(old.block_size)
        old_bytes = old.total_blocks * old.block_size
        wanted = size if size is not None else max(old_bytes, native_size_needed(plan, bs))
        total = check_geometry(wanted, bs)
        passphrase = KeySource(passphrase_file=passphrase_file).passphrase(
            "New passphrase", twice=True
        )
        new, slot = _create(image, total, bs, passphrase, kdf)
        try:
            with new:
                _copy(old, new, plan, verify)
        except BaseException:
            os.unlink(image)
            raise
    click.echo(
        f"created {image}: {format_size(total * bs)}, {total} blocks of {format_size(bs)}, "
        f"key slot {slot}"
    )
