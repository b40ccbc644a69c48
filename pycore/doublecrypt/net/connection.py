"""The client side of a block server connection (docs/PROTOCOL.md):
server addresses, whole messages over a blocking socket through the Noise
channel or the TLS framing, and write requests encoded with one copy of the
data. :mod:`.client` builds the block client on these."""

from __future__ import annotations

import collections
import ipaddress
import socket
import ssl
from collections.abc import Sequence

from typing_extensions import Buffer

from ..channel import ClientChannel
from ..errors import InvalidArgumentError, NetworkError
from . import wire
from .wire import pb

__all__ = [
    "DEFAULT_PORT",
    "Connection",
    "TlsFraming",
    "WriteMessage",
    "encode_request",
    "format_address",
    "parse_address",
    "send_buffers",
    "tune_socket",
]

DEFAULT_PORT = 7450

_RECV_BUFFER = 1 << 20
_SOCKET_BUFFER = 4 << 20
_IOV_MAX = 512  # buffers per sendmsg (Linux takes up to 1024)
_LARGE_PIECE = 1 << 16  # over TLS, smaller pieces are joined before sending


# ---- addresses ---------------------------------------------------------------


def parse_address(address: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InvalidArgumentError(f"bad address {address!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        sep, port_text = (":", rest[1:]) if rest.startswith(":") else ("", "")
        if rest and not sep:
            raise InvalidArgumentError(f"bad address {address!r}: expected [HOST]:PORT")
    elif not sep or ":" in host:
        host, sep, port_text = text, "", ""
        if ":" in host:
            raise InvalidArgumentError(f"bad address {address!r}: write IPv6 hosts as [HOST]:PORT")
    if not host:
        raise InvalidArgumentError(f"bad address {address!r}: no host")
    if not sep:
        if default_port is None:
            raise InvalidArgumentError(f"bad address {address!r}: expected HOST:PORT")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidArgumentError(f"bad address {address!r}: port must be 1..65535")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """The ``host:port`` form used in messages and known-hosts files."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


# ---- transports ---------------------------------------------------------------


def _io_error(where: str, what: str, exc: BaseException) -> NetworkError:
    if isinstance(exc, TimeoutError):
        return NetworkError(f"{where}: timed out while {what}")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return NetworkError(f"{where}: connection lost while {what} ({reason or type(exc).__name__})")


def tune_socket(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)


def send_buffers(sock: socket.socket, buffers: Sequence[Buffer]) -> None:
    """``sendall`` of the buffers one after the other, without joining them
    (gathering writes of at most _IOV_MAX buffers; over TLS, which has no
    sendmsg, the large ones are sent alone and the small ones joined)."""
    views = [memoryview(piece).cast("B") for piece in buffers]
    if isinstance(sock, ssl.SSLSocket):
        small: list[memoryview] = []
        for view in views:
            if view.nbytes < _LARGE_PIECE:
                small.append(view)
                continue
            if small:
                sock.sendall(b"".join(small))
                small = []
            sock.sendall(view)
        if small:
            sock.sendall(b"".join(small))
        return
    start = 0
    while start < len(views):
        batch = views[start : start + _IOV_MAX]
        sent = sock.sendmsg(batch)
        for view in batch:
            if sent < view.nbytes:
                views[start] = view[sent:]
                break
            sent -= view.nbytes
            start += 1


class TlsFraming:
    """The TLS transport's framing with the sans-IO interface of a channel."""

    def __init__(self) -> None:
        self._decoder = wire.TlsFrameDecoder()
        self._outbox: list[bytes | memoryview] = []

    def send(self, message: bytes | memoryview) -> None:
        self._outbox += (wire.tls_header(len(message)), message)  # no copy of the message

    def data_to_send_buffers(self) -> list[bytes | memoryview]:
        out, self._outbox = self._outbox, []
        return out

    def receive_data(self, data: memoryview) -> list[bytes]:
        return self._decoder.feed(data)

    def end_of_input(self) -> None:
        self._decoder.end_of_input()


class Connection:
    """Whole messages over a blocking socket, through the sans-IO Noise
    channel or the TLS framing."""

    def __init__(
        self, sock: socket.socket, channel: ClientChannel | TlsFraming, where: str
    ) -> None:
        self.sock = sock
        self.channel = channel
        self.where = where
        self._inbox: collections.deque[bytes] = collections.deque()
        self._buffer = bytearray(_RECV_BUFFER)
        self._view = memoryview(self._buffer)

    def queue(self, message: bytes | memoryview) -> None:
        self.channel.send(message)

    def flush(self) -> None:
        buffers = self.channel.data_to_send_buffers()
        if buffers:
            try:
                send_buffers(self.sock, buffers)
            except OSError as exc:
                raise _io_error(self.where, "sending", exc) from exc

    def receive(self) -> bytes:
        while not self._inbox:
            self.flush()  # e.g. the handshake message the channel queued while receiving
            try:
                n = self.sock.recv_into(self._buffer)
            except OSError as exc:
                raise _io_error(self.where, "receiving", exc) from exc
            if n == 0:
                self.channel.end_of_input()
                raise NetworkError(f"{self.where}: the server closed the connection")
            self._inbox.extend(self.channel.receive_data(self._view[:n]))
        return self._inbox.popleft()

    def close(self) -> None:
        self._view.release()
        self.sock.close()


_WRITE_BLOCKS_TAG = b"\x42"  # Request.write_blocks: field 8, length-delimited
_DATA_TAG = b"\x12"  # WriteBlocksRequest.data: field 2, length-delimited
_REQUEST_ID_TAG = b"\x08"  # Request.request_id: field 1, varint
_ID_ROOM = bytes(11)  # room for the request id: its tag and a varint of up to 64 bits


class WriteMessage:
    """A ``Request{write_blocks}`` encoded once, with the data copied once.

    The request id goes last (protobuf fields may come in any order), so a
    retry on a new connection rewrites only the tail; the bytes are what
    protobuf itself would produce, field order apart."""

    def __init__(self, ids: list[int], data: memoryview) -> None:
        self.ids = ids
        self.nbytes = data.nbytes
        head = pb.WriteBlocksRequest(block_ids=ids).SerializeToString()
        head += _DATA_TAG + wire.varint(data.nbytes)
        prefix = _WRITE_BLOCKS_TAG + wire.varint(len(head) + data.nbytes) + head
        self._end = len(prefix) + data.nbytes
        self._buffer = bytearray().join((prefix, data, _ID_ROOM))  # the one copy, no zero-fill

    def with_id(self, request_id: int) -> memoryview:
        tail = _REQUEST_ID_TAG + wire.varint(request_id)
        self._buffer[self._end : self._end + len(tail)] = tail
        return memoryview(self._buffer)[: self._end + len(tail)]


def encode_request(message: pb.Request | WriteMessage, request_id: int) -> bytes | memoryview:
    if isinstance(message, WriteMessage):
        return message.with_id(request_id)
    message.request_id = request_id
    return message.SerializeToString()
