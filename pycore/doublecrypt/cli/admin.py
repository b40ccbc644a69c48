"""Image administration: ``init``, ``fsck``, ``info`` and ``speed``."""

from __future__ import annotations

import os
from typing import Any

import click

import doublecrypt

from .. import speed as speed_report
from .common import echo_json, image_argument, json_option, seconds_option
from .errors import EXIT_CORRUPT, EXIT_EXISTS, CliError, message_for
from .keys import (
    KeySource,
    TamperedError,
    kdf_option,
    kdf_params,
    key_options,
    open_volume,
    read_header,
)
from .objectstore import create_store_volume, is_object_store_url
from .progress import block_progress
from .sizes import check_geometry, format_size, geometry_options

__all__ = ["create_image_store", "fsck", "info", "init", "slot_dicts", "speed"]


def create_image_store(image: str, total: int, block_size: int) -> doublecrypt.FileStore:
    """A new image file of ``total`` random-filled blocks, with a progress bar;
    Ctrl-C cancels it cleanly (the file is removed)."""
    try:
        with block_progress("filling with random bytes") as update:
            return doublecrypt.FileStore.create(
                image, total, block_size=block_size, progress=update
            )
    except doublecrypt.errors.CancelledError:
        raise CliError(f"interrupted: {image} was not created") from None


@click.command()
@image_argument
@geometry_options("Image size, e.g. 512M, 1G (binary units).")
@kdf_option
@key_options
def init(image: str, size: int, block_size: int, kdf: str, keys: KeySource) -> None:
    """Create a new encrypted image, filled with random bytes.

    With a passphrase (asked twice), a random master key is made and wrapped
    in key slot 0. With --key-file, that key is the master key and no key
    slot is added (open the image with --key-file; add one with 'key add').
    """
    total = check_geometry(size, block_size)
    if is_object_store_url(image):
        how = create_store_volume(image, total, block_size, kdf, keys)
        click.echo(
            f"created {image}: {format_size(total * block_size)}, {total} blocks of "
            f"{format_size(block_size)}, {how}"
        )
        return
    if os.path.lexists(image):
        raise CliError(f"already exists: {image}", EXIT_EXISTS)
    if keys.key_file is not None:
        master = keys.key()
        passphrase = None
    else:
        passphrase = keys.passphrase("New passphrase", twice=True)
        master = bytearray(os.urandom(32))  # as open_image does
    try:
        store = create_image_store(image, total, block_size)
        try:
            with doublecrypt.FileSystem.format(store, master) as fs:
                slot = (
                    None if passphrase is None else fs.add_passphrase(passphrase, kdf_params(kdf))
                )
        except BaseException:
            os.unlink(image)
            raise
    finally:
        master[:] = bytes(len(master))
    how = "no key slot: open it with --key-file" if slot is None else f"key slot {slot}"
    click.echo(
        f"created {image}: {format_size(total * block_size)}, {total} blocks of "
        f"{format_size(block_size)}, {how}"
    )


@click.command()
@image_argument
@key_options
def fsck(image: str, keys: KeySource) -> None:
    """Verify every block and the whole tree of the volume.

    Exits 6 when it finds problems, including a volume that fails
    authentication although the passphrase is right.
    """
    try:
        fs = open_volume(image, keys, read_only=True)
    except TamperedError as exc:
        raise CliError(f"fsck found problems: {exc.message}", EXIT_CORRUPT) from None
    with fs:
        try:
            report = fs.fsck()
        except doublecrypt.DoubleCryptError as exc:
            raise CliError(f"fsck found problems: {message_for(exc)}", EXIT_CORRUPT) from None
    click.echo(
        f"{report.files} files, {report.directories} directories (besides /), "
        f"{report.metadata_blocks} metadata blocks, {report.data_blocks} data blocks"
    )
    click.echo(
        f"leaked blocks: {report.leaked_blocks}, bad references: {report.bad_references}, "
        f"errors: {report.errors}"
    )
    if report.errors or report.bad_references or report.leaked_blocks:
        raise CliError("fsck found problems", EXIT_CORRUPT)
    click.echo("clean")


def slot_dicts(slots: list[doublecrypt.KeySlot]) -> list[dict[str, Any]]:
    return [
        {
            "slot": s.index,
            "kdf": "argon2id",
            "opslimit": s.kdf.opslimit,
            "memlimit": s.kdf.memlimit,
        }
        for s in slots
    ]


def slot_line(slot: doublecrypt.KeySlot) -> str:
    return (
        f"slot {slot.index}: argon2id, opslimit {slot.kdf.opslimit}, "
        f"memlimit {format_size(slot.kdf.memlimit)}"
    )


@click.command()
@image_argument
@json_option
def info(image: str, as_json: bool) -> None:
    """Show the image's header (geometry, format, key slots); needs no key."""
    header = read_header(image)
    file_size = os.path.getsize(image)
    data: dict[str, Any] = {
        "path": image,
        "file_size": file_size,
        # image_info only accepts the format this engine reads.
        "format_version": doublecrypt.FORMAT_VERSION,
        "block_size": header.block_size,
        "total_blocks": header.total_blocks,
        "size": header.size,
        "key_slots": slot_dicts(header.key_slots),
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"image:        {image} ({format_size(file_size)} on disk)")
    click.echo(f"format:       doublecrypt version {doublecrypt.FORMAT_VERSION}")
    click.echo(f"volume size:  {format_size(header.size)} ({header.total_blocks} blocks)")
    click.echo(f"block size:   {format_size(header.block_size)}")
    click.echo(f"key slots:    {len(header.key_slots) or 'none (opened with a raw key)'}")
    for slot in header.key_slots:
        click.echo(f"  {slot_line(slot)}")


@click.command()
@seconds_option("--seconds", 0.4, "Time per measurement.")
def speed(seconds: float) -> None:
    """Measure the AEAD block codec and the filesystem engine on this machine."""
    for line in speed_report.report_lines(seconds):
        click.echo(line)
