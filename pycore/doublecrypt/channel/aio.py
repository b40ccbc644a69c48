"""The channel over asyncio streams: run the handshake on a connected
``(StreamReader, StreamWriter)`` pair, then send and receive whole messages."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys

from ..errors import ChannelError, NetworkError
from .filter import ClientChannel, ServerChannel
from .noise import BytesLike

READ_CHUNK = 256 * 1024


_GATHERING_WRITELINES = sys.version_info >= (3, 12)  # sendmsg, no join, on plain sockets
_JOIN_BELOW = 1 << 16  # bytes: smaller output goes out in one write


class ChannelStream:
    """A finished channel on a stream pair. Use :func:`open_channel` to make one."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        channel: ClientChannel | ServerChannel,
        received: collections.deque[bytes] | None = None,
    ) -> None:
        self.channel = channel
        self._reader = reader
        self._writer = writer
        self._received = received if received is not None else collections.deque()
        self._eof = False

    async def send(self, message: BytesLike) -> None:
        """Encrypt ``message``, write it and wait until the transport drains."""
        self.send_nowait(message)
        await self.drain()

    def send_nowait(self, message: BytesLike) -> None:
        """Encrypt ``message`` and write it without waiting for the transport."""
        self.channel.send(message)
        self._flush()

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise NetworkError(f"connection lost while sending: {exc}") from exc

    async def recv(self) -> bytes:
        """The next message. :class:`EOFError` when the peer closed cleanly
        between messages; :class:`ChannelError` for anything else."""
        received = self._received
        while not received:
            if self._eof:
                raise EOFError("the peer closed the channel")
            data = await _read(self._reader)
            if not data:
                self._eof = True
                self.channel.end_of_input()  # raises when truncated
                raise EOFError("the peer closed the channel")
            received.extend(self.channel.receive_data(data))
            self._flush()
        return received.popleft()

    async def close(self) -> None:
        """Close the connection and wipe the session keys (errors while closing
        are ignored: the connection is going away)."""
        self.channel.close()
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    def _flush(self) -> None:
        buffers = self.channel.data_to_send_buffers()
        if len(buffers) == 1:
            self._writer.write(buffers[0])
        elif _GATHERING_WRITELINES or sum(map(len, buffers)) < _JOIN_BELOW:
            self._writer.writelines(buffers)
        else:
            # One write per transport message (about 64 KiB): sent at once while
            # the socket has room, copied into the transport's buffer otherwise;
            # never the join of a whole large message that writelines makes.
            for buffer in buffers:
                self._writer.write(buffer)


async def _read(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read(READ_CHUNK)
    except (ConnectionError, OSError) as exc:
        raise NetworkError(f"connection lost while receiving: {exc}") from exc


async def open_channel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    channel: ClientChannel | ServerChannel,
    *,
    handshake_timeout: float = 10.0,
) -> ChannelStream:
    """Run ``channel``'s handshake on a connected stream pair; the handshake
    must finish within ``handshake_timeout`` seconds."""
    received: collections.deque[bytes] = collections.deque()

    async def handshake() -> None:
        while True:
            data = channel.data_to_send()
            if data:
                writer.write(data)
                try:
                    await writer.drain()
                except (ConnectionError, OSError) as exc:
                    raise NetworkError(f"connection lost during the handshake: {exc}") from exc
            if channel.handshake_complete:
                return
            data = await _read(reader)
            if not data:
                channel.end_of_input()  # raises: the handshake is not complete
            # Messages sent right behind the last handshake message are kept.
            received.extend(channel.receive_data(data))

    try:
        await asyncio.wait_for(handshake(), handshake_timeout)
    except asyncio.TimeoutError:
        raise ChannelError(
            f"the Noise handshake did not finish within {handshake_timeout} s"
        ) from None
    return ChannelStream(reader, writer, channel, received)
