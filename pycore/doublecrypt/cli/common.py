"""Arguments and output helpers shared by the command modules."""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

import doublecrypt

__all__ = [
    "echo_json",
    "format_mtime",
    "image_argument",
    "inner",
    "json_option",
    "kind",
    "seconds_option",
    "stat_dict",
]

R = TypeVar("R")

CHUNK = 1 << 20


def image_argument(func: Callable[..., R]) -> Callable[..., R]:
    """The IMAGE argument: the path of the image file."""
    return click.argument("image", type=click.Path(dir_okay=False, path_type=str))(func)


def json_option(func: Callable[..., R]) -> Callable[..., R]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def seconds_option(
    flag: str, default: float, help: str
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """An option taking a positive number of seconds."""
    return click.option(
        flag,
        type=click.FloatRange(min=0.0, min_open=True),
        default=default,
        show_default=True,
        help=help,
    )


def inner(path: str) -> str:
    """A path inside the image, absolute and normalised ('docs/a' -> '/docs/a')."""
    return posixpath.normpath("/" + path.lstrip("/"))


def kind(st: doublecrypt.StatResult) -> str:
    return "directory" if st.is_dir else "file"


def format_mtime(mtime_ns: int) -> str:
    """Local time, to the second: 2024-05-01 13:37:00."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime_ns // 1_000_000_000))


def stat_dict(name: str, st: doublecrypt.StatResult) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind(st),
        "size": st.size,
        "mtime_ns": st.mtime_ns,
        "inode": st.inode,
    }


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))
