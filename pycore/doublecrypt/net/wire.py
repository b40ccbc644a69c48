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
    ConflictError,
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
    "WRITE_CONFLICT",
    "TlsFrameDecoder",
    "error_from_response",
    "pb",
    "read_blocks_response",
    "split_read_blocks_response",
    "tls_frame",
    "tls_header",
    "varint",
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
WRITE_CONFLICT = 412  # another client committed first (shared object store)
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
    if err.code == WRITE_CONFLICT:
        return ConflictError(text)
    if err.code == OUT_OF_RANGE:
        return InvalidArgumentError(text)
    if err.code == NO_SPACE:
        return NoSpaceError(text)
    return ServerError(err.code, err.message or "no detail")


def varint(value: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_RESPONSE_ID_TAG = b"\x08"  # Response.request_id: field 1, varint
_READ_BLOCKS_TAG = b"\x42"  # Response.read_blocks: field 8, length-delimited
_READ_DATA_TAG = b"\x0a"  # ReadBlocksResponse.data: field 1, length-delimited


def read_blocks_response(request_id: int, size: int) -> tuple[bytearray, int]:
    """An encoded ``Response{request_id, read_blocks{data}}`` whose ``size``
    bytes of data are still to be filled in, and the offset of those bytes:
    the server reads the blocks straight into the message."""
    inner = _READ_DATA_TAG + varint(size)
    head = _RESPONSE_ID_TAG + varint(request_id) + _READ_BLOCKS_TAG
    head += varint(len(inner) + size) + inner
    message = bytearray(len(head) + size)
    message[: len(head)] = head
    return message, len(head)


def _take_varint(view: memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the offset after it; (-1, pos) if there is none."""
    value = shift = 0
    for index in range(pos, min(pos + 10, view.nbytes)):
        byte = view[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    return -1, pos


def split_read_blocks_response(message: bytes | bytearray) -> tuple[int, memoryview] | None:
    """``(request_id, data)`` of a ``Response{request_id, read_blocks{data}}``
    in the layout protobuf and :func:`read_blocks_response` write, the data a
    view into ``message`` (not copied); None for any other message, which
    protobuf parses."""
    view = memoryview(message)
    end = view.nbytes
    if end < 6 or view[0] != 0x08:
        return None
    request_id, pos = _take_varint(view, 1)
    if request_id < 0 or pos >= end or view[pos] != _READ_BLOCKS_TAG[0]:
        return None
    size, pos = _take_varint(view, pos + 1)
    if size != end - pos or pos >= end or view[pos] != _READ_DATA_TAG[0]:
        return None
    size, pos = _take_varint(view, pos + 1)
    if size != end - pos:
        return None
    return request_id, view[pos:]


def tls_header(size: int) -> bytes:
    """The frame header of a message of ``size`` bytes: its length (4 bytes,
    little-endian)."""
    if size > 0xFFFFFFFF:
        raise InvalidArgumentError(f"message of {size} bytes is too large to frame")
    return _TLS_LENGTH.pack(size)


def tls_frame(message: bytes | bytearray) -> bytes:
    """``message`` preceded by its length (4 bytes, little-endian)."""
    return tls_header(len(message)) + message


class TlsFrameDecoder:
    """Splits a byte stream into length-prefixed messages (sans-IO).

    Refuses a frame longer than ``max_message`` as soon as its length is
    read, so a peer cannot make it buffer more than that."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        if max_message < 1:
            raise InvalidArgumentError(f"max_message must be positive, got {max_message}")
        self.max_message = max_message
        self._buffer = bytearray()
        self._needed = _TLS_LENGTH.size  # buffered bytes before feed() looks again
        self._dead = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; returns the messages now complete (possibly none)."""
        if self._dead:
            raise ProtocolError("TLS frame decoder used after a framing error")
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        if size < self._needed:  # the frame under way is still incomplete
            return []
        messages: list[bytes] = []
        offset = 0
        header = _TLS_LENGTH.size
        with memoryview(buffer) as view:  # one copy per message, out of the buffer
            while size - offset >= header:
                (length,) = _TLS_LENGTH.unpack_from(view, offset)
                if length > self.max_message:
                    self._dead = True
                    break
                end = offset + header + length
                if size < end:
                    break
                messages.append(bytes(view[offset + header : end]))
                offset = end
        if self._dead:
            buffer.clear()
            raise ProtocolError(
                f"frame of {length} bytes exceeds the limit of {self.max_message} bytes"
            )
        del buffer[:offset]
        self._needed = end - offset if size - offset >= header else header
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
