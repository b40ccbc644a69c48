"""Looking around an image: ``ls``, ``stat`` and ``df``."""

from __future__ import annotations

import posixpath
from typing import Any

import click

import doublecrypt

from .common import echo_json, format_mtime, image_argument, inner, json_option, kind, stat_dict
from .keys import KeySource, key_options, open_volume
from .sizes import format_size

__all__ = ["df", "ls", "stat"]


def _echo_fields(fields: list[tuple[str, object]]) -> None:
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{name + ':':<{width + 1}} {value}")


@click.command()
@image_argument
@click.argument("path", default="/")
@click.option("-l", "long", is_flag=True, help="Long listing: type, size, mtime, name.")
@json_option
@key_options
def ls(image: str, path: str, long: bool, as_json: bool, keys: KeySource) -> None:
    """List a directory of the image (default '/'), or show one file.

    JSON: a list of {name, type: "file"|"directory", size, mtime_ns, inode}.
    """
    target = inner(path)
    with open_volume(image, keys, read_only=True) as fs:
        st = fs.stat(target)
        if st.is_dir:
            entries = [(e.name, e.stat) for e in fs.scandir(target)]
        else:
            entries = [(posixpath.basename(target), st)]
    if as_json:
        echo_json([stat_dict(name, est) for name, est in entries])
        return
    if not long:
        for name, est in entries:
            click.echo(name + ("/" if est.is_dir else ""))
        return
    width = max((len(str(est.size)) for _, est in entries), default=1)
    for name, est in entries:
        kind_text = "dir " if est.is_dir else "file"
        mtime = format_mtime(est.mtime_ns)
        click.echo(f"{kind_text}  {est.size:>{width}}  {mtime}  {name}")


@click.command()
@image_argument
@click.argument("path")
@json_option
@key_options
def stat(image: str, path: str, as_json: bool, keys: KeySource) -> None:
    """Show the metadata of one file or directory of the image."""
    target = inner(path)
    with open_volume(image, keys, read_only=True) as fs:
        st = fs.stat(target)
    info: dict[str, Any] = {
        "path": target,
        **stat_dict(posixpath.basename(target) or "/", st),
        "mode": st.mode,
        "ctime_ns": st.ctime_ns,
        "blocks": st.blocks,
    }
    if as_json:
        echo_json(info)
        return
    _echo_fields(
        [
            ("path", target),
            ("type", kind(st)),
            ("size", f"{st.size} ({format_size(st.size)})"),
            ("blocks", st.blocks),
            ("mode", f"{st.mode:04o}"),
            ("inode", st.inode),
            ("modified", f"{format_mtime(st.mtime_ns)} ({st.mtime_ns} ns)"),
            ("changed", f"{format_mtime(st.ctime_ns)} ({st.ctime_ns} ns)"),
        ]
    )


def _volume_dict(vs: doublecrypt.VolumeStats) -> dict[str, int]:
    used = vs.total_blocks - vs.free_blocks
    return {
        "block_size": vs.block_size,
        "total_blocks": vs.total_blocks,
        "free_blocks": vs.free_blocks,
        "used_blocks": used,
        "total_bytes": vs.total_blocks * vs.block_size,
        "free_bytes": vs.free_blocks * vs.block_size,
        "used_bytes": used * vs.block_size,
        "files": vs.files,
        "directories": vs.directories,
        "generation": vs.generation,
    }


@click.command()
@image_argument
@json_option
@key_options
def df(image: str, as_json: bool, keys: KeySource) -> None:
    """Show the space and counts of the volume (blocks include encryption overhead)."""
    with open_volume(image, keys, read_only=True) as fs:
        info = _volume_dict(fs.statvfs())
    if as_json:
        echo_json(info)
        return
    bs = info["block_size"]
    _echo_fields(
        [
            ("block size", format_size(bs)),
            ("total", f"{format_size(info['total_bytes'])} ({info['total_blocks']} blocks)"),
            ("used", f"{format_size(info['used_bytes'])} ({info['used_blocks']} blocks)"),
            ("free", f"{format_size(info['free_bytes'])} ({info['free_blocks']} blocks)"),
            ("files", info["files"]),
            ("directories", info["directories"]),
            ("generation", info["generation"]),
        ]
    )
