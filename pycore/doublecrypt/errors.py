"""The one exception hierarchy of doublecrypt, and the map from C status codes.

Every error raised by the package derives from :class:`DoubleCryptError`.
Where a builtin exception fits, the class also derives from it (``NotFoundError``
is a ``FileNotFoundError`` with ``errno == ENOENT``), so ordinary ``except``
clauses keep working.
"""

from __future__ import annotations

import builtins
import errno as _errno


class DoubleCryptError(Exception):
    """Base of every doublecrypt error. ``status`` is the C status code;
    ``report`` carries fsck's findings when fsck raised it."""

    status: int = -8
    report: object = None


class NotFoundError(DoubleCryptError, FileNotFoundError):
    status = -1


class AlreadyExistsError(DoubleCryptError, FileExistsError):
    status = -2


class NoSpaceError(DoubleCryptError, OSError):
    status = -3


class InvalidArgumentError(DoubleCryptError, ValueError):
    status = -4


class NotInitializedError(DoubleCryptError):
    status = -5


class StorageIOError(DoubleCryptError, OSError):
    status = -6


class AuthenticationError(DoubleCryptError):
    """Wrong key, or data that was altered, moved or replayed. Deliberately
    carries no detail about what failed."""

    status = -7


class InternalError(DoubleCryptError):
    status = -8


class BufferTooSmallError(DoubleCryptError, ValueError):
    status = -9


class NotAFileError(DoubleCryptError, IsADirectoryError):
    status = -10


class NotADirectoryError(DoubleCryptError, builtins.NotADirectoryError):
    status = -11


class DirectoryNotEmptyError(DoubleCryptError, OSError):
    status = -12


class NameTooLongError(DoubleCryptError, OSError):
    status = -13


class OutOfMemoryError(DoubleCryptError, MemoryError):
    status = -14


class CorruptionError(DoubleCryptError):
    """Structurally invalid data that authentication does not cover.

    Raised by ``FileSystem.fsck()`` too, then with the ``report``."""

    status = -15


class UnsupportedError(DoubleCryptError):
    """A format or options version this build does not know."""

    status = -16


class CancelledError(DoubleCryptError):
    """A progress callback asked the operation to stop."""

    status = -17


class ReadOnlyError(DoubleCryptError, OSError):
    status = -18


class ConflictError(DoubleCryptError):
    """Another writer committed to a shared volume (an object store) since
    this handle last read it, or holds the volume's writer lease right now.
    The change was rolled back and the last committed state is intact: call
    ``FileSystem.refresh()`` and retry (``FileSystem.retry_on_conflict``)."""

    status = -19


# ---- network (Python only: no C status of their own) -----------------------


class ObjectStoreError(StorageIOError):
    """An object store (S3 API) refused or failed a request after its
    retries: unreachable, timed out, access denied, missing bucket. The
    engine sees an I/O error, so the last committed state stays intact."""


class NetworkError(StorageIOError):
    """A block server could not be reached or the connection broke (refused,
    timed out, dropped, reset). The engine sees it as an I/O error, so the
    last committed state of the volume stays intact."""


class ChannelError(NetworkError):
    """The secure channel failed: handshake refused, a message that does not
    authenticate, bad framing or a protocol violation. The session is over."""


class HostKeyChangedError(ChannelError):
    """A server presented a different static key (or certificate) than the
    one recorded or pinned for it: possibly an impostor."""


class ServerError(NetworkError):
    """The server answered a request with an error (``code`` as in
    docs/PROTOCOL.md, e.g. 416 block out of range)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"server error {code}: {message}")
        self.code = code
        self.server_message = message


class ProtocolError(ChannelError):
    """The peer sent something the wire protocol does not allow."""


_BY_STATUS: dict[int, type[DoubleCryptError]] = {
    cls.status: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        NoSpaceError,
        InvalidArgumentError,
        NotInitializedError,
        StorageIOError,
        AuthenticationError,
        InternalError,
        BufferTooSmallError,
        NotAFileError,
        NotADirectoryError,
        DirectoryNotEmptyError,
        NameTooLongError,
        OutOfMemoryError,
        CorruptionError,
        UnsupportedError,
        CancelledError,
        ReadOnlyError,
        ConflictError,
    )
}

_ERRNO: dict[int, int] = {
    -1: _errno.ENOENT,
    -2: _errno.EEXIST,
    -3: _errno.ENOSPC,
    -6: _errno.EIO,
    -10: _errno.EISDIR,
    -11: _errno.ENOTDIR,
    -12: _errno.ENOTEMPTY,
    -13: _errno.ENAMETOOLONG,
    -18: _errno.EROFS,
}


def error_for_status(status: int, message: str, path: str | None = None) -> DoubleCryptError:
    """Build the exception for a negative C status (unknown codes give
    :class:`InternalError`)."""
    cls = _BY_STATUS.get(status, InternalError)
    err: DoubleCryptError
    if issubclass(cls, OSError) and status in _ERRNO:
        err = cls(_ERRNO[status], message, *(() if path is None else (path,)))
    else:
        err = cls(message if path is None else f"{message}: {path}")
    err.status = status
    return err


# ---- ncryptf (signed and encrypted HTTP; Python only) ----------------------


class NcryptfError(DoubleCryptError):
    """Base of every ncryptf failure (``doublecrypt.ncryptf``)."""


class PayloadError(NcryptfError):
    """An encrypted body that cannot be accepted; an HTTP server answers 400."""


class MalformedFrameError(PayloadError, InvalidArgumentError):
    """Not an ncryptf payload at all: too short, wrong magic, not base64,
    a key or nonce of the wrong length."""

    status = -4


class UnknownKeyError(PayloadError):
    """The server key a request names (``X-HashId``) is unknown or expired;
    the client should fetch a new one from the ``ek`` endpoint."""


class ChecksumError(PayloadError, AuthenticationError):
    """The v2 frame's BLAKE2b checksum does not match: the bytes were altered."""

    status = -7


class DecryptionError(PayloadError, AuthenticationError):
    """The box does not open: wrong key, or an altered ciphertext."""

    status = -7


class SignatureError(PayloadError, AuthenticationError):
    """The Ed25519 signature over the plaintext does not verify, or was made
    with a key other than the one required."""

    status = -7


class AuthorizationError(NcryptfError, AuthenticationError):
    """A request's ``Authorization`` was refused; an HTTP server answers 401."""

    status = -7


class MalformedAuthorizationError(AuthorizationError):
    """The ``Authorization`` (or ``X-Date``) header is missing or cannot be parsed."""


class UnknownTokenError(AuthorizationError):
    """No token is known for the access token the request names (or it was revoked)."""


class TokenExpiredError(AuthorizationError):
    """The token's ``expires_at`` has passed."""


class HmacMismatchError(AuthorizationError):
    """The request's HMAC does not match the one rebuilt from what arrived."""


class ClockDriftError(AuthorizationError):
    """The request's date is too far from the server's clock (the drift window)."""


class ReplayError(AuthorizationError):
    """This (access token, salt) pair was already accepted within the drift window."""


class MalformedTokenError(NcryptfError, InvalidArgumentError):
    """Token data of the wrong shape: a missing field, an ``ikm`` that is not
    32 bytes, a ``signing`` key that is not a valid 64-byte Ed25519 secret key."""

    status = -4


class CacheUnavailableError(NcryptfError, NetworkError):
    """The key or salt cache (Redis) could not be reached or answered an error;
    a server answers 503 rather than accept a request it cannot check for replay."""
