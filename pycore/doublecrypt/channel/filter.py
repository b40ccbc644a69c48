"""The channel as a buffer filter (sans I/O): bytes from the network go into
:meth:`receive_data`, application messages come out; application messages go
into :meth:`send`, bytes for the network come out of :meth:`data_to_send`.

The wire (docs/PROTOCOL.md section 2): the initiator's 8-byte preamble in clear,
then every Noise message with a 2-byte big-endian length. The prologue is
``PROLOGUE_BASE || preamble``, so a preamble altered in transit fails the
handshake. Any failure ends the session: the channel raises
:class:`~doublecrypt.errors.ChannelError` and refuses further use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..errors import ChannelError, InvalidArgumentError, ProtocolError
from .keys import KEY_BYTES, Keypair
from .noise import BytesLike, HandshakeState
from .records import REKEY_INTERVAL, RecordReader, RecordWriter, check_rekey_interval

PROLOGUE_BASE: Final = b"doublecrypt/1 blockstore"
PREAMBLE_MAGIC: Final = b"DCN1"
PREAMBLE_SIZE: Final = 8
PATTERN_CODES: Final = {"XX": 1, "IK": 2}
HASH_CODES: Final = {"BLAKE2s": 1, "SHA256": 2}
DEFAULT_MAX_MESSAGE: Final = 16 * 1024 * 1024 + 4096


def make_preamble(pattern: str, hash_name: str) -> bytes:
    """``DCN1``, the pattern code, the hash code and two reserved zero bytes."""
    return PREAMBLE_MAGIC + bytes((PATTERN_CODES[pattern], HASH_CODES[hash_name], 0, 0))


def parse_preamble(preamble: BytesLike) -> tuple[str, str]:
    """``(pattern, hash_name)`` of a preamble; unknown values are refused."""
    data = bytes(preamble)
    if len(data) != PREAMBLE_SIZE or data[:4] != PREAMBLE_MAGIC:
        raise ProtocolError("not a doublecrypt Noise channel (bad preamble)")
    patterns = {code: name for name, code in PATTERN_CODES.items()}
    hashes = {code: name for name, code in HASH_CODES.items()}
    if data[4] not in patterns:
        raise ProtocolError(f"unknown handshake pattern code {data[4]} in the preamble")
    if data[5] not in hashes:
        raise ProtocolError(f"unknown hash code {data[5]} in the preamble")
    if data[6:8] != b"\0\0":
        raise ProtocolError("reserved preamble bytes are not zero")
    return patterns[data[4]], hashes[data[5]]


def frame(message: bytes) -> bytes:
    """One Noise message with its 2-byte big-endian length."""
    return len(message).to_bytes(2, "big") + message


class FrameDecoder:
    """Splits a byte stream into length-prefixed Noise messages."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not complete a frame yet."""
        return len(self._buffer)

    def feed(self, data: BytesLike) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        buffer, pos = self._buffer, 0
        while len(buffer) - pos >= 2:
            size = (buffer[pos] << 8) | buffer[pos + 1]
            if size == 0:
                raise ProtocolError("a zero-length frame")
            if len(buffer) - pos - 2 < size:
                break
            frames.append(bytes(buffer[pos + 2 : pos + 2 + size]))
            pos += 2 + size
        del buffer[:pos]
        return frames


class _Channel:
    """What the initiator and the responder share: framing, transport, failure."""

    def __init__(self, static: Keypair, max_message: int, rekey_interval: int) -> None:
        if not isinstance(static, Keypair):
            raise InvalidArgumentError("static must be a Keypair")
        if isinstance(max_message, bool) or not isinstance(max_message, int) or max_message < 1:
            raise InvalidArgumentError(
                f"max_message must be a positive integer, got {max_message!r}"
            )
        check_rekey_interval(rekey_interval)
        self._static = static
        self.max_message = max_message
        self.rekey_interval = rekey_interval
        self._handshake: HandshakeState | None = None
        self._writer: RecordWriter | None = None
        self._reader: RecordReader | None = None
        self._inbuf = bytearray()
        self._out: list[bytes | bytearray] = []  # wire chunks waiting for data_to_send()
        self._pending: list[bytes | None] = []  # held until ready; None = rekey
        self._failure: ChannelError | None = None
        self._input_closed = False
        self._handshake_hash = b""
        self._remote_static: bytes | None = None
        self._protocol_name = ""

    # ---- public API --------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        return self._writer is not None

    @property
    def handshake_hash(self) -> bytes:
        """The session id: the Noise handshake hash."""
        if not self._handshake_hash:
            raise ChannelError("the handshake is not complete: no session id yet")
        return self._handshake_hash

    @property
    def remote_static(self) -> bytes:
        """The peer's static public key."""
        if self._remote_static is None:
            raise ChannelError("the peer's static key is not known yet")
        return self._remote_static

    @property
    def protocol_name(self) -> str:
        if not self._protocol_name:
            raise ChannelError("the handshake has not started yet")
        return self._protocol_name

    def receive_data(self, data: BytesLike) -> list[bytes]:
        """Feed bytes received from the peer; returns the application messages
        they complete (possibly none)."""
        self._check_alive()
        if self._input_closed:
            raise self._die(ChannelError("data received after the end of input"))
        try:
            return self._receive(data)
        except ChannelError as exc:
            self._die(exc)
            raise
        except Exception as exc:
            raise self._die(ChannelError(f"channel failed: {exc}")) from exc

    def send(self, message: BytesLike) -> None:
        """Queue one application message (held until the handshake is done)."""
        if self._failure is not None:
            self._check_alive()
        size = message.nbytes if isinstance(message, memoryview) else len(message)
        if size > self.max_message:
            raise InvalidArgumentError(
                f"message of {size} bytes exceeds the limit of {self.max_message} bytes"
            )
        writer = self._writer
        if writer is None:
            self._pending.append(bytes(message))
            return
        try:
            writer.seal(message, self._out)
        except ChannelError as exc:
            self._die(exc)
            raise

    def data_to_send(self) -> bytes:
        """Every byte now waiting to go on the wire (taken: a second call
        returns only what was queued since; nothing once the channel failed)."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return b"".join(out)

    def data_to_send_buffers(self) -> list[bytes | bytearray]:
        """:meth:`data_to_send` without joining: the pieces, in order, for a
        gathering write (``socket.sendmsg``, ``writer.writelines``)."""
        out, self._out = self._out, []
        return out

    def end_of_input(self) -> None:
        """The peer closed its side; an error if it did so mid-handshake or
        mid-message."""
        self._check_alive()
        self._input_closed = True
        if self._writer is None:
            raise self._die(ChannelError("the peer closed the connection during the handshake"))
        if self._inbuf or (self._reader is not None and self._reader.in_message):
            raise self._die(
                ChannelError(
                    "the peer closed the connection in the middle of a message (truncated)"
                )
            )

    def rekey(self) -> None:
        """Rekey our sending direction now (the peer follows, signalled in-band)."""
        self._check_alive()
        writer = self._writer
        if writer is None:
            self._pending.append(None)
            return
        try:
            writer.seal_rekey(self._out)
        except ChannelError as exc:
            self._die(exc)
            raise

    def close(self) -> None:
        """End the session: wipe its keys; the channel refuses further use
        (the handshake hash and the peer's key stay readable)."""
        self._die(ChannelError("the channel was closed"))

    # ---- internals ---------------------------------------------------------

    def _check_alive(self) -> None:
        if self._failure is not None:
            raise ChannelError(f"the channel cannot be used any more: {self._failure}")

    def _die(self, error: ChannelError) -> ChannelError:
        """Mark the session over (keys wiped, nothing more sent); returns ``error``."""
        if self._failure is None:
            self._failure = error
        for part in (self._writer, self._reader):
            if part is not None:
                part.wipe()
        if self._handshake is not None:
            self._handshake.wipe()
        self._writer = self._reader = None
        self._handshake = None
        self._out = []
        self._pending = []
        self._inbuf = bytearray()
        return error

    def _queue_frame(self, message: bytes) -> None:
        self._out.append(frame(message))

    def _receive(self, data: BytesLike) -> list[bytes]:
        inbuf = self._inbuf
        source: BytesLike
        if inbuf:
            inbuf += data
            source = inbuf
        else:
            source = data
        messages: list[bytes] = []
        with memoryview(source) as view:
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            end, pos = view.nbytes, 0
            if self._writer is None and self._handshake is None:  # responder: preamble first
                if end < PREAMBLE_SIZE:
                    if source is not inbuf:
                        self._inbuf = bytearray(view)
                    return messages
                self._start(view[:PREAMBLE_SIZE])
                pos = PREAMBLE_SIZE
            while end - pos >= 2:
                size = (view[pos] << 8) | view[pos + 1]
                if size == 0:
                    raise ProtocolError("a zero-length frame")
                stop = pos + 2 + size
                if stop > end:
                    break
                reader = self._reader
                if reader is not None:
                    message = reader.open(view[pos + 2 : stop])
                    if message is not None:
                        messages.append(message)
                else:
                    self._handshake_message(view[pos + 2 : stop])
                pos = stop
            if source is not inbuf and pos < end:
                self._inbuf = bytearray(view[pos:])
        if source is inbuf and pos:
            del inbuf[:pos]
        return messages

    def _start(self, preamble: memoryview) -> None:
        raise ProtocolError("unexpected data before the handshake")  # responder overrides

    def _handshake_message(self, message: memoryview) -> None:
        raise NotImplementedError

    def _read_handshake(self, message: memoryview) -> HandshakeState:
        handshake = self._handshake
        if handshake is None or handshake.complete:
            raise ProtocolError("unexpected handshake message")
        if handshake.my_turn:
            raise ProtocolError("a handshake message arrived out of turn")
        if handshake.read_message(message):
            raise ProtocolError("handshake payloads must be empty")
        if handshake.remote_static is not None:
            self._remote_static = handshake.remote_static
        return handshake

    def _finish(self, handshake: HandshakeState) -> None:
        """Switch to transport and flush what was held back."""
        send_cipher, receive_cipher = handshake.transport_ciphers()
        self._handshake_hash = handshake.handshake_hash
        self._remote_static = handshake.remote_static
        self._writer = RecordWriter(send_cipher, self.rekey_interval)
        self._reader = RecordReader(receive_cipher, self.max_message)
        self._handshake = None
        pending, self._pending = self._pending, []
        for item in pending:
            if item is None:
                self.rekey()
            else:
                self.send(item)


class ClientChannel(_Channel):
    """The initiator: IK when the server's static key is pinned
    (``server_key``), XX (trust on first use) otherwise.

    ``verify_server(remote_static)`` is called as soon as the server's key is
    known (IK: now; XX: after message 2, before our static key is revealed);
    raising from it aborts the handshake. The preamble and the first handshake
    message are queued at once (see :meth:`data_to_send`).
    """

    def __init__(
        self,
        static: Keypair,
        *,
        server_key: bytes | None = None,
        hash_name: str = "BLAKE2s",
        verify_server: Callable[[bytes], None] | None = None,
        max_message: int = DEFAULT_MAX_MESSAGE,
        rekey_interval: int = REKEY_INTERVAL,
    ) -> None:
        super().__init__(static, max_message, rekey_interval)
        if hash_name not in HASH_CODES:
            raise InvalidArgumentError(
                f"unsupported hash {hash_name!r} (choose from {', '.join(HASH_CODES)})"
            )
        if server_key is not None and len(server_key) != KEY_BYTES:
            raise InvalidArgumentError(
                f"server_key must be a {KEY_BYTES}-byte public key, got {len(server_key)} bytes"
            )
        self._verify_server = verify_server
        pattern = "XX" if server_key is None else "IK"
        preamble = make_preamble(pattern, hash_name)
        if server_key is not None:
            self._check_server(bytes(server_key))
        handshake = HandshakeState(
            pattern,
            True,
            prologue=PROLOGUE_BASE + preamble,
            static=static,
            remote_static=server_key,
            hash_name=hash_name,
        )
        self._handshake = handshake
        self._protocol_name = handshake.protocol_name
        self._remote_static = handshake.remote_static
        self._out = [preamble]
        self._queue_frame(handshake.write_message(b""))

    def _check_server(self, server_key: bytes) -> None:
        if self._verify_server is None:
            return
        try:
            self._verify_server(server_key)
        except ChannelError:
            raise
        except Exception as exc:
            raise ChannelError(f"the server's key was rejected: {exc}") from exc

    def _handshake_message(self, message: memoryview) -> None:
        handshake = self._read_handshake(message)
        if not handshake.complete:  # XX message 2: decide on the server before revealing ourselves
            self._check_server(self.remote_static)
            self._queue_frame(handshake.write_message(b""))
        self._finish(handshake)


class ServerChannel(_Channel):
    """The responder: accepts XX or IK with BLAKE2s or SHA256, as the
    client's preamble says. The client's static key is ``remote_static`` once
    the handshake is complete."""

    def __init__(
        self,
        static: Keypair,
        *,
        max_message: int = DEFAULT_MAX_MESSAGE,
        rekey_interval: int = REKEY_INTERVAL,
    ) -> None:
        super().__init__(static, max_message, rekey_interval)

    @property
    def remote_static(self) -> bytes:
        """The client's static public key (after the handshake)."""
        if not self._handshake_hash:
            raise ChannelError("the client's static key is not known before the handshake ends")
        return super().remote_static

    def _start(self, preamble: memoryview) -> None:
        pattern, hash_name = parse_preamble(preamble)
        handshake = HandshakeState(
            pattern,
            False,
            prologue=PROLOGUE_BASE + bytes(preamble),
            static=self._static,
            hash_name=hash_name,
        )
        self._handshake = handshake
        self._protocol_name = handshake.protocol_name

    def _handshake_message(self, message: memoryview) -> None:
        handshake = self._read_handshake(message)
        if not handshake.complete:
            self._queue_frame(handshake.write_message(b""))
        if handshake.complete:
            self._finish(handshake)
