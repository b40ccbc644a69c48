"""The record layer: application messages of any size over Noise transport
messages (docs/PROTOCOL.md section 2, "Records" and "Rekey").

Each transport plaintext is ``flags (1 byte) || fragment``. Bit 0 marks the
last fragment of a message (so truncation is detected), bit 1 says the sender
rekeyed its sending key after this transport message. A transport message with
an empty fragment and no end marker carries no data: the sender uses it as a
bare rekey signal (``flags == 0x02``).
"""

from __future__ import annotations

from typing import Final

from ..errors import InvalidArgumentError, ProtocolError
from .noise import MAX_TRANSPORT_PLAINTEXT, BytesLike, CipherState

FLAG_END: Final = 0x01
FLAG_REKEY: Final = 0x02
_KNOWN_FLAGS: Final = FLAG_END | FLAG_REKEY
MAX_FRAGMENT: Final = MAX_TRANSPORT_PLAINTEXT - 1  # 65518: one byte goes to the flags
REKEY_INTERVAL: Final = 1 << 20  # transport messages sent between two automatic rekeys

_FLAG_BYTES: Final = tuple(bytes((flags,)) for flags in range(_KNOWN_FLAGS + 1))
_END_BYTE: Final = _FLAG_BYTES[FLAG_END]


def check_rekey_interval(rekey_interval: int) -> None:
    if isinstance(rekey_interval, bool) or not isinstance(rekey_interval, int):
        raise InvalidArgumentError("rekey_interval must be an integer")
    if rekey_interval < 1:
        raise InvalidArgumentError(f"rekey_interval must be at least 1, got {rekey_interval}")


class RecordWriter:
    """Seals application messages into transport messages, each framed with its
    2-byte big-endian length, and rekeys the sending cipher every
    ``rekey_interval`` transport messages."""

    __slots__ = ("_cipher", "_until_rekey", "rekey_interval")

    def __init__(self, cipher: CipherState, rekey_interval: int = REKEY_INTERVAL) -> None:
        check_rekey_interval(rekey_interval)
        self._cipher = cipher
        self.rekey_interval = rekey_interval
        self._until_rekey = rekey_interval

    def seal(self, message: BytesLike, out: list[bytes | bytearray]) -> None:
        """Append to ``out`` the transport messages carrying ``message`` (one at
        least, even for an empty message), each as one buffer: its 2-byte length,
        then the transport message."""
        total = message.nbytes if isinstance(message, memoryview) else len(message)
        encrypt = self._cipher.encrypt_framed
        if total <= MAX_FRAGMENT and self._until_rekey > 1:  # the common case: one fragment
            self._until_rekey -= 1
            out.append(encrypt(_END_BYTE + message))
            return
        view = memoryview(message)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        flag_bytes = _FLAG_BYTES
        offset = 0
        while True:
            end = offset + MAX_FRAGMENT
            flags = FLAG_END if end >= total else 0
            self._until_rekey -= 1
            if self._until_rekey == 0:
                flags |= FLAG_REKEY
            out.append(encrypt(flag_bytes[flags] + view[offset:end]))
            if flags & FLAG_REKEY:
                self._rekey()
            if flags & FLAG_END:
                return
            offset = end

    def seal_rekey(self, out: list[bytes | bytearray]) -> None:
        """Append a bare rekey signal to ``out``; the sending key changes right after it."""
        out.append(self._cipher.encrypt_framed(_FLAG_BYTES[FLAG_REKEY]))
        self._rekey()

    def wipe(self) -> None:
        self._cipher.wipe()

    def _rekey(self) -> None:
        self._cipher.rekey()
        self._until_rekey = self.rekey_interval


class RecordReader:
    """Opens transport messages and reassembles application messages of at
    most ``max_message`` bytes."""

    __slots__ = ("_cipher", "_parts", "_size", "max_message")

    def __init__(self, cipher: CipherState, max_message: int) -> None:
        if isinstance(max_message, bool) or not isinstance(max_message, int) or max_message < 0:
            raise InvalidArgumentError(
                f"max_message must be a non-negative integer, got {max_message!r}"
            )
        self._cipher = cipher
        self.max_message = max_message
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def in_message(self) -> bool:
        """True between a message's first fragment and its end marker."""
        return bool(self._parts)

    def open(self, sealed: BytesLike) -> bytes | None:
        """Decrypt one transport message; returns the application message it
        completes, or None."""
        plaintext = self._cipher.decrypt_with_ad(None, sealed)
        if not plaintext:
            raise ProtocolError("a transport message without its record flags byte")
        flags = plaintext[0]
        if flags & ~_KNOWN_FLAGS:
            raise ProtocolError(f"unknown record flags 0x{flags:02x}")
        if flags & FLAG_REKEY:
            self._cipher.rekey()
        size = self._size + len(plaintext) - 1
        if size > self.max_message:
            raise ProtocolError(f"incoming message exceeds the limit of {self.max_message} bytes")
        parts = self._parts
        if flags & FLAG_END:
            if not parts:
                return plaintext[1:]
            parts.append(plaintext)
            message = b"".join([memoryview(part)[1:] for part in parts])
            parts.clear()
            self._size = 0
            return message
        if len(plaintext) > 1:
            parts.append(plaintext)
            self._size = size
        return None

    def wipe(self) -> None:
        self._cipher.wipe()
        self._parts.clear()
        self._size = 0
