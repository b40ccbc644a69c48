"""The cffi module, status checking and the library version."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import errors
from .._native import ffi, lib

__all__ = ["borrow", "check", "ffi", "lib", "version"]


def _init() -> None:
    check(lib.dc_init())


def check(status: int, path: str | None = None) -> int:
    """Return a non-negative status unchanged; raise the mapped error otherwise."""
    if status < 0:
        message = ffi.string(lib.dc_strerror(status)).decode()
        raise errors.error_for_status(status, message, path)  # no local: no frame cycle
    return status


def version() -> str:
    """The version of the loaded C engine."""
    return str(ffi.string(lib.dc_version_string()).decode())


ffi.init_once(_init, "dc_init")


@contextmanager
def borrow(data: Any, *, writable: bool = False) -> Iterator[tuple[Any, int]]:
    """Lend a caller's buffer to C for the duration of a block: yields
    (cdata, byte length) and releases the buffer on exit.

    The release must be deterministic: a memoryview that still lends its
    buffer when a reference cycle (say, an exception's traceback holding the
    frame) is collected crashes CPython 3.11's garbage collector."""
    try:
        buf = ffi.from_buffer(data, require_writable=writable)
    except (TypeError, BufferError) as exc:
        what = "a writable" if writable else "a"
        raise errors.InvalidArgumentError(f"expected {what} contiguous buffer") from exc
    try:
        yield buf, len(buf)
    finally:
        ffi.release(buf)
