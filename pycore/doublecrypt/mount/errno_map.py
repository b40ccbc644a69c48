"""Which errno the kernel gets for each doublecrypt error.

FUSE answers every failed request with a negative errno; mfusepy turns an
``OSError`` raised by an operation into exactly that. Errors of
:mod:`doublecrypt.errors` that are ``OSError`` subclasses already carry the
right errno (``NotFoundError`` is ENOENT, ``ReadOnlyError`` EROFS, ...); the
others are mapped here.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .. import errors
from .binding import FuseOSError

__all__ = ["errno_for", "reports_errno"]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("doublecrypt.mount")

# Checked in order: the first class the exception is an instance of wins.
_BY_CLASS: tuple[tuple[type[BaseException], int], ...] = (
    # Tampered or damaged data: the read fails like a bad sector would.
    (errors.AuthenticationError, errno.EIO),
    (errors.CorruptionError, errno.EIO),
    (errors.InvalidArgumentError, errno.EINVAL),
    (errors.BufferTooSmallError, errno.EINVAL),
    (errors.UnsupportedError, errno.EOPNOTSUPP),
    (errors.OutOfMemoryError, errno.ENOMEM),
    (errors.CancelledError, errno.EINTR),
    (errors.ReadOnlyError, errno.EROFS),
    (errors.NoSpaceError, errno.ENOSPC),
    (errors.StorageIOError, errno.EIO),
)


def errno_for(exc: BaseException) -> int:
    """The errno that reports ``exc`` to the kernel (EIO when nothing fits)."""
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return exc.errno
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    return errno.EIO


def reports_errno(operation: Callable[P, R]) -> Callable[P, R]:
    """Make an operation fail with the errno of the doublecrypt error it raised.

    Anything else that escapes is a bug: it is logged with its traceback and
    the request fails with EIO (mfusepy alone would answer EINVAL)."""

    @functools.wraps(operation)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return operation(*args, **kwargs)
        except FuseOSError:
            raise
        except errors.DoubleCryptError as exc:
            raise FuseOSError(errno_for(exc)) from exc
        except OSError as exc:
            raise FuseOSError(errno_for(exc)) from exc
        except Exception as exc:
            log.exception("unexpected error in FUSE operation %s", operation.__name__)
            raise FuseOSError(errno.EIO) from exc

    return wrapper
