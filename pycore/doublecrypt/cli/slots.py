"""Passphrases and key slots: ``passwd`` and ``key add|remove|list``."""

from __future__ import annotations

import click

import doublecrypt

from .admin import slot_dicts, slot_line
from .common import echo_json, image_argument, json_option
from .errors import CliError
from .keys import (
    KeySource,
    image_passphrase,
    kdf_option,
    kdf_params,
    key_options,
    new_passphrase,
    new_passphrase_option,
    open_volume,
    read_header,
    require_passphrase,
)

__all__ = ["key", "passwd"]


@click.command()
@image_argument
@kdf_option
@new_passphrase_option
@key_options
def passwd(image: str, kdf: str, new_passphrase_file: str | None, keys: KeySource) -> None:
    """Change a passphrase: the slot the current one opens is replaced.

    The new slot is written before the old one is erased, so a crash in
    between leaves both passphrases working.
    """
    require_passphrase(keys, "passwd")
    current = image_passphrase(image, keys, f"Current passphrase for {image}")
    with doublecrypt.open_image(image, passphrase=current) as fs:
        new = new_passphrase(new_passphrase_file)
        slot = fs.change_passphrase(current, new, kdf_params(kdf))
    click.echo(f"passphrase changed (now key slot {slot})")


@click.group()
def key() -> None:
    """Manage the passphrase key slots of an image."""


@key.command("add")
@image_argument
@kdf_option
@new_passphrase_option
@key_options
def key_add(image: str, kdf: str, new_passphrase_file: str | None, keys: KeySource) -> None:
    """Add a passphrase (a new key slot), unlocking with an existing one or --key-file."""
    with open_volume(image, keys, read_only=False) as fs:
        slot = fs.add_passphrase(new_passphrase(new_passphrase_file), kdf_params(kdf))
    click.echo(f"added key slot {slot}")


@key.command("remove")
@image_argument
@click.argument("slot", type=click.IntRange(min=0))
@click.option(
    "--allow-last",
    is_flag=True,
    help="Allow removing the last slot: the image then opens only with --key-file.",
)
@key_options
def key_remove(image: str, slot: int, allow_last: bool, keys: KeySource) -> None:
    """Erase key slot SLOT (the numbers 'key list' shows)."""
    with open_volume(image, keys, read_only=False) as fs:
        in_use = [s.index for s in fs.key_slots()]
        if in_use == [slot] and not allow_last:
            raise CliError(
                f"key slot {slot} is the last passphrase: without it the image opens only "
                "with its raw key (--allow-last to remove it anyway)"
            )
        fs.remove_key_slot(slot, allow_last=allow_last)
    click.echo(f"removed key slot {slot}")


@key.command("list")
@image_argument
@json_option
def key_list(image: str, as_json: bool) -> None:
    """List the key slots in use and their Argon2id costs; needs no key."""
    slots = read_header(image).key_slots
    if as_json:
        echo_json(slot_dicts(slots))
        return
    if not slots:
        click.echo("no key slots (the image opens only with --key-file)")
    for s in slots:
        click.echo(slot_line(s))
