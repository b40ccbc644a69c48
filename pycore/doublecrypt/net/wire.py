"""The wire protocol's shared pieces (docs/PROTOCOL.md section 4): the
generated protobuf messages, the limits, the error codes and their mapping to
:mod:`doublecrypt.errors`, and the 4-byte length framing of the TLS transport.

Over Noise one protobuf message is one channel message, so no framing is
needed there; over TLS each message is preceded by its length as a 32-bit
little-endian integer (as in doublecrypt-core).
"""

from __future__ import annotations

import re
import struct

from ..errors import (
    AlreadyExistsError,
    AuthenticationError,
    DoubleCryptError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
    ProtocolError,
    ServerError,
)
from . import blockstore_pb2 as pb

__all__ = [
    "BAD_REQUEST",
    "CONFLICT",
    "DEFAULT_MAX_MESSAGE",
    "DEFAULT_VOLUME",
    "FORBIDDEN",
    "MAX_IN_FLIGHT",
    "NOT_AUTHENTICATED",
    "NO_SPACE",
    "NO_SUCH_VOLUME",
    "OUT_OF_RANGE",
    "SERVER_IO",
    "TOO_LARGE",
    "TOO_MANY_REQUESTS",
    "VOLUME_NAME_RE",
    "TlsFrameDecoder",
    "error_from_response",
    "pb",
    "tls_frame",
]

MAX_IN_FLIGHT = 64
"""Requests a client may have outstanding on one connection."""

DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024 + 4096
"""Largest protobuf message (request or response) by default: 16 MiB of
blocks plus room for the ids and the envelope."""

# ErrorResponse.code values (HTTP-like, docs/PROTOCOL.md section 4).
BAD_REQUEST = 400
NOT_AUTHENTICATED = 401
FORBIDDEN = 403
NO_SUCH_VOLUME = 404
CONFLICT = 409
TOO_LARGE = 413
OUT_OF_RANGE = 416
TOO_MANY_REQUESTS = 429
SERVER_IO = 500
NO_SPACE = 507

VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A volume name (match with ``fullmatch``); ``.`` and ``..`` are refused
separately, see :func:`doublecrypt.net.volumes.check_volume_name`."""

DEFAULT_VOLUME = "default"

_TLS_LENGTH = struct.Struct("<I")


def error_from_response(err: pb.ErrorResponse) -> DoubleCryptError:
    """The exception for a server's ``ErrorResponse``; its message keeps the
    server's own words."""
    text = f"server refused the request ({err.code}): {err.message or 'no detail'}"
    if err.code == FORBIDDEN:
        return AuthenticationError(text)
    if err.code == NO_SUCH_VOLUME:
        return NotFoundError(text)
    if err.code == CONFLICT:
        return AlreadyExistsError(text)
    if err.code == OUT_OF_RANGE:
        return InvalidArgumentError(text)
    if err.code == NO_SPACE:
        return NoSpaceError(text)
    return ServerError(err.code, err.message or "no detail")


def tls_frame(message: bytes) -> bytes:
    """``message`` preceded by its length (4 bytes, little-endian)."""
    if len(message) > 0xFFFFFFFF:
        raise InvalidArgumentError(f"message of {len(message)} bytes is too large to frame")
    return _TLS_LENGTH.pack(len(message)) + message


class TlsFrameDecoder:
    """Splits a byte stream into length-prefixed messages (sans-IO).

    Refuses a frame longer than ``max_message`` as soon as its length is
    read, so a peer cannot make it buffer more than that."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        if max_message < 1:
            raise InvalidArgumentError(f"max_message must be positive, got {max_message}")
        self.max_message = max_message
        self._buffer = bytearray()
        self._dead = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; returns the messages now complete (possibly none)."""
        if self._dead:
            raise ProtocolError("TLS frame decoder used after a framing error")
        self._buffer += data
        messages: list[bytes] = []
        offset = 0
        while len(self._buffer) - offset >= _TLS_LENGTH.size:
            (length,) = _TLS_LENGTH.unpack_from(self._buffer, offset)
            if length > self.max_message:
                self._dead = True
                self._buffer.clear()
                raise ProtocolError(
                    f"frame of {length} bytes exceeds the limit of {self.max_message} bytes"
                )
            end = offset + _TLS_LENGTH.size + length
            if len(self._buffer) < end:
                break
            messages.append(bytes(self._buffer[offset + _TLS_LENGTH.size : end]))
            offset = end
        del self._buffer[:offset]
        return messages

    def end_of_input(self) -> None:
        """The peer closed the stream: an error if a frame was left unfinished."""
        if self._buffer:
            pending = len(self._buffer)
            self._buffer.clear()
            raise ProtocolError(f"connection closed in the middle of a frame ({pending} bytes)")

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)
