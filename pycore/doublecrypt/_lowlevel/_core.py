"""The cffi module, status checking and the library version."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import errors
from .._native import ffi, lib

__all__ = ["borrow", "c_call", "check", "ffi", "lib", "u64_array", "version"]


def _init() -> None:
    check(lib.dc_init())


def c_call(fn: Any, *args: Any) -> Any:
    """Call a C function; a Python int that does not fit the C parameter
    (a negative size, an offset of 2**64) is an InvalidArgumentError, not
    cffi's OverflowError."""
    try:
        return fn(*args)
    except OverflowError:
        name = getattr(fn, "__name__", "a C function")
        raise errors.InvalidArgumentError(f"a number is out of range for {name}") from None


def u64_array(values: Any) -> Any:
    """A C uint64_t[] of block ids; out-of-range values are invalid arguments."""
    try:
        return ffi.new("uint64_t[]", list(values))
    except OverflowError:
        raise errors.InvalidArgumentError("a block id is out of range") from None


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
