"""Exit codes of the ``doublecrypt`` command, and the one place that maps
exceptions to them.

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     generic failure (invalid argument, is a directory, ...)
2     usage error (bad option or argument; click's own code)
3     not found (image, local file, or path inside the image)
4     already exists, or directory not empty
5     authentication failed: wrong passphrase or key, tampered data, a block
      server refusing the key, or a server key that changed
6     corrupt or unsupported image (and ``fsck`` finding problems)
7     no space left (in the image or on the local disk)
8     I/O error (a block server unreachable, or the connection lost)
====  ==========================================================

Every command runs under :class:`DoubleCryptGroup`, whose ``invoke`` turns
:mod:`doublecrypt.errors` exceptions (and local ``OSError``) into one line
``doublecrypt: error: ...`` on stderr and the exit code above, without a
traceback (set ``DOUBLECRYPT_DEBUG=1`` to see one).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from .. import errors

__all__ = [
    "EXIT_AUTH",
    "EXIT_CODES_HELP",
    "EXIT_CONFLICT",
    "EXIT_CORRUPT",
    "EXIT_EXISTS",
    "EXIT_FAILURE",
    "EXIT_IO",
    "EXIT_NOT_FOUND",
    "EXIT_NO_SPACE",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "DoubleCryptGroup",
    "exit_code_for",
    "handle_errors",
    "message_for",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_EXISTS = 4
EXIT_AUTH = 5
EXIT_CORRUPT = 6
EXIT_NO_SPACE = 7
EXIT_IO = 8
EXIT_CONFLICT = 9

EXIT_CODES_HELP = (
    "\b\nExit codes:\n"
    "  0  success\n"
    "  1  generic failure\n"
    "  2  usage error\n"
    "  3  not found (image, local file or path in the image)\n"
    "  4  already exists / directory not empty\n"
    "  5  authentication failed (wrong passphrase or key, tampered data,\n"
    "     block server key changed)\n"
    "  6  corrupt or unsupported image (fsck: problems found)\n"
    "  7  no space left\n"
    "  8  I/O error (block server or object store unreachable, connection lost)\n"
    "  9  conflict: another writer committed to the volume first (nothing changed;\n"
    "     run the command again)"
)

# Checked in order: the first class the exception is an instance of wins.
# doublecrypt errors that are also builtins (NotFoundError is a
# FileNotFoundError, ...) are covered by the builtin entries.
_BY_CLASS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.AuthenticationError, EXIT_AUTH),
    (errors.HostKeyChangedError, EXIT_AUTH),  # a block server that is not the one we know
    (errors.CorruptionError, EXIT_CORRUPT),
    (errors.UnsupportedError, EXIT_CORRUPT),
    (errors.NoSpaceError, EXIT_NO_SPACE),
    (errors.ConflictError, EXIT_CONFLICT),
    (FileNotFoundError, EXIT_NOT_FOUND),
    (NotADirectoryError, EXIT_NOT_FOUND),  # a path that goes through a file
    (FileExistsError, EXIT_EXISTS),
    (errors.DirectoryNotEmptyError, EXIT_EXISTS),
    (errors.StorageIOError, EXIT_IO),
    (errors.DoubleCryptError, EXIT_FAILURE),
    (IsADirectoryError, EXIT_FAILURE),
)

_BY_ERRNO: dict[int, int] = {
    errno.ENOSPC: EXIT_NO_SPACE,
    errno.EDQUOT: EXIT_NO_SPACE,
    errno.ENOTEMPTY: EXIT_EXISTS,
}


class CliError(click.ClickException):
    """A failure the command reports itself: one line on stderr, its own exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = exit_code

    @property  # click reads exit_code; its own subclasses fix it per class
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code

    def show(self, file: IO[Any] | None = None) -> None:
        line = " ".join(self.format_message().split("\n"))
        click.echo(f"doublecrypt: error: {line}", file=file, err=file is None)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception."""
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, OSError):
        return _BY_ERRNO.get(exc.errno or 0, EXIT_IO)
    return EXIT_FAILURE


def message_for(exc: BaseException) -> str:
    """A one-line message without the ``[Errno N]`` noise of OSError."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        for name in (exc.filename2, exc.filename):
            if name is not None:
                shown = os.fsdecode(name) if isinstance(name, bytes | os.PathLike) else str(name)
                if shown not in text:
                    text = f"{shown}: {text}"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, errors.AuthenticationError) and text == "authentication failed":
        text = "authentication failed (wrong key, or the image was altered)"
    return " ".join(text.split())


# Exceptions that click itself handles (usage errors, Abort, ctx.exit, EPIPE).
_CLICK_HANDLES = (click.ClickException, click.exceptions.Exit, click.Abort, EOFError)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn exceptions into :class:`CliError` with the documented exit code."""
    try:
        yield
    except click.Abort:  # a prompt got EOF or Ctrl-C
        raise CliError("aborted", EXIT_FAILURE) from None
    except KeyboardInterrupt:
        raise CliError("interrupted", EXIT_FAILURE) from None
    except _CLICK_HANDLES:
        raise
    except Exception as exc:
        if os.environ.get("DOUBLECRYPT_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
            raise  # click exits quietly on a closed pipe
        if isinstance(exc, errors.DoubleCryptError | OSError):
            raise CliError(message_for(exc), exit_code_for(exc)) from None
        raise CliError(
            f"internal error: {type(exc).__name__}: {message_for(exc)}", EXIT_FAILURE
        ) from None


class DoubleCryptGroup(click.Group):
    """A click group whose subcommands report errors through :func:`handle_errors`."""

    def invoke(self, ctx: click.Context) -> Any:
        with handle_errors():
            return super().invoke(ctx)
