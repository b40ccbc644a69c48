"""The cffi module, status checking and the library version."""

from __future__ import annotations

from .. import errors
from .._native import ffi, lib

__all__ = ["check", "ffi", "lib", "version"]


def _init() -> None:
    check(lib.dc_init())


def check(status: int, path: str | None = None) -> int:
    """Return a non-negative status unchanged; raise the mapped error otherwise."""
    if status < 0:
        message = ffi.string(lib.dc_strerror(status)).decode()
        raise errors.error_for_status(status, message, path)
    return status


def version() -> str:
    """The version of the loaded C engine."""
    return str(ffi.string(lib.dc_version_string()).decode())


ffi.init_once(_init, "dc_init")
