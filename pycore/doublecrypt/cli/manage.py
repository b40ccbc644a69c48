"""Changing the tree of an image: ``mkdir``, ``rm`` and ``mv``."""

from __future__ import annotations

import posixpath

import click

import doublecrypt

from .common import image_argument, inner
from .errors import EXIT_FAILURE, CliError
from .keys import KeySource, key_options, open_volume

__all__ = ["mkdir", "mv", "rm"]


@click.command()
@image_argument
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@click.option("-p", "--parents", is_flag=True, help="Create missing parents; existing is fine.")
@key_options
def mkdir(image: str, paths: tuple[str, ...], parents: bool, keys: KeySource) -> None:
    """Create directories in the image."""
    with open_volume(image, keys, read_only=False) as fs:
        for path in paths:
            fs.mkdir(inner(path), parents=parents, exist_ok=parents)


def _remove_tree(fs: doublecrypt.FileSystem, top: str) -> None:
    """Files first, then directories deepest first (walk is top-down)."""
    dirs: list[str] = []
    for parent, _subdirs, files in fs.walk(top):
        dirs.append(parent)
        for name in files:
            fs.remove(posixpath.join(parent, name))
    for path in reversed(dirs):
        fs.rmdir(path)


@click.command()
@image_argument
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Remove directories and their contents.")
@key_options
def rm(image: str, paths: tuple[str, ...], recursive: bool, keys: KeySource) -> None:
    """Remove files (and with -r, directories) from the image.

    Each PATH is removed in one commit: a directory tree disappears whole.
    """
    with open_volume(image, keys, read_only=False) as fs:
        for path in paths:
            target = inner(path)
            st = fs.stat(target)
            if not st.is_dir:
                fs.remove(target)
            elif not recursive:
                raise CliError(f"is a directory: {target} (use -r)", EXIT_FAILURE)
            elif target == "/":
                raise CliError("refusing to remove the root directory '/'", EXIT_FAILURE)
            else:
                with fs.transaction():
                    _remove_tree(fs, target)


@click.command()
@image_argument
@click.argument("src")
@click.argument("dst")
@key_options
def mv(image: str, src: str, dst: str, keys: KeySource) -> None:
    """Move or rename SRC to DST inside the image.

    When DST is a directory, SRC moves into it; an existing file DST is replaced.
    """
    source, target = inner(src), inner(dst)
    with open_volume(image, keys, read_only=False) as fs:
        if fs.is_dir(target) and source != target:
            target = posixpath.join(target, posixpath.basename(source))
        fs.rename(source, target)
