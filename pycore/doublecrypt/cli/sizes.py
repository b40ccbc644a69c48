"""Byte sizes with binary suffixes: ``64K``, ``1G``, ``1.5GiB``, ``4096``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

import doublecrypt

if TYPE_CHECKING:  # generic only from click 8.4 on
    _ParamType = click.ParamType[int]
else:
    _ParamType = click.ParamType

__all__ = [
    "MIN_BLOCKS",
    "SIZE",
    "SizeType",
    "check_geometry",
    "format_size",
    "geometry_options",
    "parse_size",
]

R = TypeVar("R")

MIN_BLOCKS = 4
"""The fewest blocks ``--size`` may give."""

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional binary suffix K, M, G or T
    (``KiB``/``KB`` spellings too). Raises ValueError."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 64K, 512M, 1G)")
    number, unit = match.groups()
    scale = _UNITS[unit.upper()]
    if "." in number:
        return int(float(number) * scale)
    return int(number) * scale


def format_size(nbytes: int) -> str:
    """``65536`` -> ``64 KiB``; ``1572864`` -> ``1.5 MiB``; small values in bytes."""
    for suffix, unit in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= unit:
            if nbytes % unit == 0:
                return f"{nbytes // unit} {suffix}"
            return f"{nbytes / unit:.1f} {suffix}"
    return f"{nbytes} B"


class SizeType(_ParamType):
    """A click parameter type for :func:`parse_size`."""

    name = "size"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()


def geometry_options(
    size_help: str, block_help: str = "Block size: a power of two from 4K to 1M."
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """The ``--size`` (required) and ``--block-size`` (default 64K) options."""

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        func = click.option(
            "--block-size", type=SIZE, default="64K", show_default=True, help=block_help
        )(func)
        return click.option("--size", type=SIZE, required=True, help=size_help)(func)

    return decorate


def check_geometry(size: int, block_size: int) -> int:
    """The number of blocks of an image or volume of ``size`` bytes; a
    BadParameter unless the block size is a power of two the engine takes
    and there are at least MIN_BLOCKS of them."""
    lo, hi = doublecrypt.MIN_BLOCK_SIZE, doublecrypt.MAX_BLOCK_SIZE
    if not lo <= block_size <= hi or block_size & (block_size - 1):
        raise click.BadParameter(
            f"a power of two from {format_size(lo)} to {format_size(hi)}",
            param_hint="'--block-size'",
        )
    total = size // block_size
    if total < MIN_BLOCKS:
        raise click.BadParameter(
            f"at least {MIN_BLOCKS} blocks ({format_size(MIN_BLOCKS * block_size)})",
            param_hint="'--size'",
        )
    return total
