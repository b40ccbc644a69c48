"""Copying in and out of an image: ``put``, ``get`` and ``cat``."""

from __future__ import annotations

import os
import posixpath
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import click

import doublecrypt

from .common import CHUNK, image_argument, inner
from .errors import EXIT_FAILURE, EXIT_NOT_FOUND, CliError
from .keys import KeySource, key_options, open_volume
from .progress import byte_progress, stderr_console

__all__ = ["cat", "get", "put"]


@dataclass(frozen=True)
class Item:
    """One file or directory to copy (directories come before their contents)."""

    src: str
    dst: str
    is_dir: bool
    size: int
    mtime_ns: int


def _warn(message: str) -> None:
    stderr_console().print(f"doublecrypt: warning: {message}", markup=False, highlight=False)


def _copy(
    read: Callable[[int], bytes], write: Callable[[bytes], object], advance: Callable[[int], None]
) -> None:
    while chunk := read(CHUNK):
        write(chunk)
        advance(len(chunk))


# ---- put ---------------------------------------------------------------------


def _walk_local(src: str, dst: str, items: list[Item]) -> None:
    st = os.stat(src)
    if stat.S_ISDIR(st.st_mode):
        items.append(Item(src, dst, True, 0, st.st_mtime_ns))
        with os.scandir(src) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.is_symlink() and entry.is_dir():
                _warn(f"skipping symbolic link to a directory: {entry.path}")
                continue
            _walk_local(entry.path, posixpath.join(dst, entry.name), items)
    elif stat.S_ISREG(st.st_mode):
        items.append(Item(src, dst, False, st.st_size, st.st_mtime_ns))
    else:
        _warn(f"skipping {src}: not a regular file or directory")


def _target_dir(exists: bool, is_dir: bool, dest: str, many: bool, slash: bool) -> bool:
    """Whether sources go *into* DEST (True) or become DEST (False)."""
    if is_dir:
        return True
    if not (many or slash):
        return False
    if exists:
        raise CliError(f"not a directory: {dest}", EXIT_FAILURE)
    if many and not slash:
        raise CliError(f"no such directory: {dest} (end it with '/' to create it)", EXIT_NOT_FOUND)
    return True


def _put_stdin(fs: doublecrypt.FileSystem, dest: str) -> None:
    if fs.is_dir(dest):
        raise CliError(f"is a directory: {dest} ('-' copies stdin to a file path)")
    stdin = sys.stdin.buffer
    with byte_progress("stdin", None) as advance, fs.transaction(), fs.open(dest, "wb") as out:
        _copy(stdin.read, out.write, advance)


def _put_file(fs: doublecrypt.FileSystem, item: Item, advance: Callable[[int], None]) -> None:
    # One commit per file: it appears whole, with its mtime, or not at all.
    with open(item.src, "rb") as src, fs.transaction():
        with fs.open(item.dst, "wb") as out:
            _copy(src.read, out.write, advance)
        fs.set_mtime(item.dst, item.mtime_ns)


@click.command()
@image_argument
@click.argument("sources", metavar="SRC...", nargs=-1, required=True)
@click.argument("dest", metavar="DEST")
@key_options
def put(image: str, sources: tuple[str, ...], dest: str, keys: KeySource) -> None:
    """Copy local files and directories (recursively) into the image.

    Like cp -r: when DEST is a directory of the image, each SRC goes into it;
    else the one SRC becomes DEST. A DEST ending in '/' is a directory
    (created if missing). Modification times are kept. SRC '-' copies stdin
    into the file DEST.
    """
    if "-" in sources and len(sources) > 1:
        raise click.UsageError("'-' (stdin) must be the only SRC")
    target = inner(dest)
    with open_volume(image, keys, read_only=False) as fs:
        if sources == ("-",):
            _put_stdin(fs, target)
            return
        into = _target_dir(
            fs.exists(target), fs.is_dir(target), target, len(sources) > 1, dest.endswith("/")
        )
        items: list[Item] = []
        for src in sources:
            name = os.path.basename(os.path.abspath(src))
            _walk_local(src, posixpath.join(target, name) if into and name else target, items)
        if into:
            fs.mkdir(target, parents=True, exist_ok=True)
        with byte_progress("put", sum(i.size for i in items)) as advance:
            for item in items:
                if item.is_dir:
                    fs.mkdir(item.dst, exist_ok=True)
                else:
                    _put_file(fs, item, advance)
        # Directories last: adding their entries changed their mtimes.
        for item in reversed(items):
            if item.is_dir:
                fs.set_mtime(item.dst, item.mtime_ns)


# ---- get and cat -------------------------------------------------------------


def _walk_image(
    fs: doublecrypt.FileSystem, src: str, st: doublecrypt.StatResult, dst: str, items: list[Item]
) -> None:
    if not st.is_dir:
        items.append(Item(src, dst, False, st.size, st.mtime_ns))
        return
    items.append(Item(src, dst, True, 0, st.mtime_ns))
    for entry in fs.scandir(src):
        _walk_image(fs, entry.path, entry.stat, os.path.join(dst, entry.name), items)


def _stream_out(fs: doublecrypt.FileSystem, path: str, out: BinaryIO) -> None:
    with fs.open(path, "rb") as src:
        _copy(src.read, out.write, lambda _: None)
    out.flush()


@click.command()
@image_argument
@click.argument("sources", metavar="SRC...", nargs=-1, required=True)
@click.argument("dest", metavar="DEST")
@key_options
def get(image: str, sources: tuple[str, ...], dest: str, keys: KeySource) -> None:
    """Copy files and directories (recursively) out of the image.

    Like cp -r: when DEST is a local directory, each SRC goes into it; else
    the one SRC becomes DEST. A DEST ending in '/' is a directory (created if
    missing). Modification times are kept. DEST '-' writes the one file SRC to
    stdout.
    """
    with open_volume(image, keys, read_only=True) as fs:
        if dest == "-":
            if len(sources) != 1:
                raise click.UsageError("DEST '-' (stdout) takes exactly one SRC")
            _stream_out(fs, inner(sources[0]), sys.stdout.buffer)
            return
        into = _target_dir(
            os.path.exists(dest), os.path.isdir(dest), dest, len(sources) > 1, dest.endswith("/")
        )
        items: list[Item] = []
        for raw in sources:
            src = inner(raw)
            name = posixpath.basename(src)
            _walk_image(
                fs, src, fs.stat(src), os.path.join(dest, name) if into and name else dest, items
            )
        if into:
            os.makedirs(dest, exist_ok=True)
        with byte_progress("get", sum(i.size for i in items)) as advance:
            for item in items:
                if item.is_dir:
                    os.makedirs(item.dst, exist_ok=True)
                    continue
                with fs.open(item.src, "rb") as src_file, open(item.dst, "wb") as out:
                    _copy(src_file.read, out.write, advance)
                os.utime(item.dst, ns=(item.mtime_ns, item.mtime_ns))
        for item in reversed(items):
            if item.is_dir:
                os.utime(item.dst, ns=(item.mtime_ns, item.mtime_ns))


@click.command()
@image_argument
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@key_options
def cat(image: str, paths: tuple[str, ...], keys: KeySource) -> None:
    """Write files of the image to stdout (binary-safe)."""
    out = sys.stdout.buffer
    with open_volume(image, keys, read_only=True) as fs:
        for path in paths:
            _stream_out(fs, inner(path), out)
