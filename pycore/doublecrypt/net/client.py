"""The block client: one authenticated connection to a block server
(docs/PROTOCOL.md), over Noise or TLS, with pipelined batch reads and writes.

Blocking sockets on purpose: the engine calls its store from C, one batch at
a time; a thread-safe blocking client is the simplest thing that fits. A
batch is split into requests of about 1 MiB of block data, with up to 64
requests in flight. Writes may return once sent (``wait=False``): their
answers are taken during later calls, so the engine encrypts the next batch
while the server stores this one; a sync first waits for all of them.

On a dropped connection, a timeout or a channel error the client reconnects
once (new handshake, new ``Authenticate``) and retries the whole batch; block
writes are idempotent. Since a ``Sync`` vouches only for writes its own
connection acknowledged, the writes sent since the last sync (up to
``replay_limit`` bytes) are written again right after reconnecting; beyond
that, only the unanswered ones are, and the next ``sync`` fails instead of
vouching for writes it cannot see. A server's ``ErrorResponse`` is never
retried.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from typing_extensions import Buffer

from ..channel import ClientChannel, Keypair, KnownHosts
from ..errors import (
    AuthenticationError,
    ChannelError,
    ConflictError,
    DoubleCryptError,
    HostKeyChangedError,
    InvalidArgumentError,
    NetworkError,
    ProtocolError,
    ServerError,
)
from . import tls, wire
from .connection import (
    Connection,
    TlsFraming,
    WriteMessage,
    encode_request,
    format_address,
    tune_socket,
)
from .wire import pb

__all__ = ["REQUEST_DATA_BYTES", "BlockClient", "Ticket", "VolumeInfo"]

REQUEST_DATA_BYTES = 1 << 20
"""Block data carried by one read or write request (at least one block)."""
DEFAULT_REPLAY_LIMIT = 64 << 20
"""Unsynced written bytes kept to write again after a reconnect."""

Transport = Literal["noise", "tls"]


# ---- the client -----------------------------------------------------------------


@dataclass(frozen=True)
class VolumeInfo:
    """The geometry of the remote volume (``created``: by this connection)."""

    block_size: int
    total_blocks: int
    created: bool


# One request of a batch, and what to do with its response.
# A handler gets the response and, when it was a read taken apart without
# protobuf (wire.split_read_blocks_response), its data, not in the response.
_Handler = Callable[[pb.Response, memoryview | None], None]
_Job = tuple[pb.Request | WriteMessage, _Handler]


class BlockClient:
    """A connection to one volume on a block server. Thread-safe.

    ``transport="noise"`` needs ``client_static`` and either ``server_key``
    (the pinned 32-byte key: Noise IK) or ``known_hosts`` (Noise XX, the key
    recorded on first contact and checked afterwards). ``transport="tls"``
    needs ``tls_fingerprint`` (SHA-256 of the server certificate, hex).
    ``create=(block_size, total_blocks)`` creates the volume when missing.
    The constructor connects and authenticates (raising on failure)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        auth_token: Buffer,
        volume: str = wire.DEFAULT_VOLUME,
        create: tuple[int, int] | None = None,
        transport: Transport = "noise",
        client_static: Keypair | None = None,
        server_key: bytes | None = None,
        known_hosts: KnownHosts | None = None,
        tls_fingerprint: str | None = None,
        hash_name: str = "BLAKE2s",
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
        replay_limit: int = DEFAULT_REPLAY_LIMIT,
    ) -> None:
        self.host, self.port = host, port
        self.address = format_address(host, port)
        self.volume = volume
        if not wire.VOLUME_NAME_RE.fullmatch(volume) or volume in (".", ".."):
            raise InvalidArgumentError(
                f"bad volume name {volume!r}: 1 to 64 of A-Z a-z 0-9 . _ - (not . or ..)"
            )
        if transport == "noise":
            if client_static is None:
                raise InvalidArgumentError("the noise transport needs client_static")
            if server_key is None and known_hosts is None:
                raise InvalidArgumentError(
                    "the noise transport needs server_key (a pin) or known_hosts (first use)"
                )
            if server_key is not None and len(server_key) != 32:
                raise InvalidArgumentError(f"server_key must be 32 bytes, got {len(server_key)}")
        elif transport == "tls":
            if not tls_fingerprint:
                raise InvalidArgumentError("the tls transport needs tls_fingerprint")
        else:
            raise InvalidArgumentError(f"unknown transport {transport!r} (noise or tls)")
        if connect_timeout <= 0 or io_timeout <= 0:
            raise InvalidArgumentError("connect_timeout and io_timeout must be positive")
        token = bytearray(auth_token)
        if len(token) != 32:
            token[:] = bytes(len(token))
            raise InvalidArgumentError(f"auth_token must be 32 bytes, got {len(token)}")
        self._token = token
        self._create = create
        self.transport = transport
        self._static = client_static
        self._server_key = server_key
        self._known_hosts = known_hosts
        self._tls_fingerprint = tls_fingerprint
        self._hash_name = hash_name
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self.replay_limit = replay_limit
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._conn: Connection | None = None
        self._channel: ClientChannel | None = None
        self._closed = False
        # Requests sent on this connection and not answered yet, in order
        # (with the message of each write, to send again after a reconnect).
        self._pending: dict[int, tuple[_Handler, WriteMessage | None]] = {}
        # Writes sent since the last sync, written again after a reconnect.
        self._unsynced: list[WriteMessage] = []
        self._unsynced_bytes = 0
        self._unsynced_overflow = False
        self._unanswered: list[WriteMessage] = []  # by connections lost since
        self._sync_failure: str | None = None  # why the next sync must fail
        self._sync_conflict = False  # ... because another client committed first
        self.reconnects = 0
        self.requests = 0
        self.replayed_blocks = 0
        self._host_key_error: HostKeyChangedError | None = None
        self._geometry: tuple[int, int] | None = None
        self.info: VolumeInfo
        try:
            with self._lock:
                self.info = self._connect()
        except BaseException:
            self._token[:] = bytes(len(self._token))
            raise
        self.block_size = self.info.block_size
        self.total_blocks = self.info.total_blocks

    # -- properties ---------------------------------------------------------------

    @property
    def session_id(self) -> bytes | None:
        """The Noise handshake hash of the current connection (None over TLS)."""
        return self._channel.handshake_hash if self._channel is not None else None

    @property
    def protocol_name(self) -> str:
        return self._channel.protocol_name if self._channel is not None else "TLS"

    # -- connecting ---------------------------------------------------------------

    def _open_socket(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {self.connect_timeout:g} s"
            else:
                reason = exc.strerror or str(exc)
            raise NetworkError(f"cannot connect to block server {self.address}: {reason}") from exc
        tune_socket(sock)
        return sock

    def _verify_server(self, public_key: bytes) -> None:
        assert self._known_hosts is not None
        try:
            self._known_hosts.check(self.address, public_key)
        except HostKeyChangedError as exc:
            self._host_key_error = exc
            raise

    def _new_connection(self) -> Connection:
        sock = self._open_socket()
        try:
            if self.transport == "tls":
                return self._tls_connection(sock)
            assert self._static is not None
            channel = ClientChannel(
                self._static,
                server_key=self._server_key,
                hash_name=self._hash_name,
                verify_server=self._verify_server if self._server_key is None else None,
            )
            self._channel = channel
            return Connection(sock, channel, f"block server {self.address}")
        except BaseException:
            sock.close()
            raise

    def _tls_connection(self, sock: socket.socket) -> Connection:
        assert self._tls_fingerprint is not None
        where = f"block server {self.address} (TLS)"
        try:
            tls_sock = tls.client_context().wrap_socket(sock, server_hostname=None)
        except (OSError, ValueError) as exc:
            raise ChannelError(f"{where}: TLS handshake failed: {exc}") from exc
        try:
            tls.check_peer_fingerprint(tls_sock, self._tls_fingerprint, self.address)
        except BaseException:
            tls_sock.close()
            raise
        self._channel = None
        return Connection(tls_sock, TlsFraming(), where)

    def _connect(self) -> VolumeInfo:
        """Connect, handshake and authenticate (the caller holds the lock)."""
        self._drop_connection()
        conn = self._new_connection()
        try:
            conn.sock.settimeout(self.connect_timeout)
            request = pb.Request(request_id=next(self._ids))
            auth = request.authenticate
            auth.auth_token = bytes(self._token)
            auth.volume = self.volume
            if self._create is not None:
                auth.create.block_size, auth.create.total_blocks = self._create
            # Noise holds this until the handshake is done (XX: with message 3).
            conn.queue(request.SerializeToString())
            response = self._parse(self._receive_handshake(conn))
            if response.request_id != request.request_id:
                raise ProtocolError(
                    f"block server {self.address}: answer to request {response.request_id}, "
                    f"expected {request.request_id}"
                )
            if response.WhichOneof("result") == "error":
                raise wire.error_from_response(response.error)
            self._expect("authenticate")(response, None)
            result = response.authenticate
            info = VolumeInfo(result.block_size, result.total_blocks, result.created)
            geometry = (info.block_size, info.total_blocks)
            if self._geometry is not None and geometry != self._geometry:
                raise ProtocolError(
                    f"block server {self.address}: volume {self.volume} changed geometry "
                    f"from {self._geometry} to {geometry} across a reconnect"
                )
            if info.block_size == 0 or info.total_blocks == 0:
                raise ProtocolError(f"block server {self.address}: empty volume geometry")
            self._geometry = geometry
            conn.sock.settimeout(self.io_timeout)
        except BaseException:
            conn.close()
            self._channel = None
            raise
        self._conn = conn
        return info

    def _receive_handshake(self, conn: Connection) -> bytes:
        self._host_key_error = None
        try:
            return conn.receive()
        except HostKeyChangedError:
            raise
        except ChannelError as exc:
            if self._host_key_error is not None:  # raised by our check, maybe wrapped
                raise self._host_key_error from None
            raise ChannelError(
                f"block server {self.address}: secure channel failed during the handshake: "
                f"{exc}{self._pin_hint()}"
            ) from exc
        except NetworkError as exc:
            raise NetworkError(f"{exc} (during the handshake{self._pin_hint()})") from exc

    def _pin_hint(self) -> str:
        if self.transport == "noise" and self._server_key is not None:
            return "; the pinned server key may not be this server's"
        return ""

    def _drop_connection(self) -> None:
        """Close the connection, keeping the writes it left unanswered."""
        conn, self._conn = self._conn, None
        self._channel = None
        self._unanswered += [m for _, m in self._pending.values() if m is not None]
        self._pending.clear()
        if conn is not None:
            conn.close()

    # -- requests -------------------------------------------------------------------

    def _parse(self, raw: bytes) -> pb.Response:
        response = pb.Response()
        try:
            response.ParseFromString(raw)
        except Exception as exc:  # protobuf's DecodeError is no DoubleCryptError
            raise ProtocolError(
                f"block server {self.address}: undecodable response ({exc})"
            ) from None
        return response

    def _receive_one(self, conn: Connection) -> None:
        raw = conn.receive()
        read = wire.split_read_blocks_response(raw)  # the bulk of the data: no copies
        data: memoryview | None = None
        if read is not None:
            response = pb.Response(request_id=read[0])
            response.read_blocks.SetInParent()
            data = read[1]
        else:
            response = self._parse(raw)
        entry = self._pending.pop(response.request_id, None)
        if entry is None:
            raise ProtocolError(
                f"block server {self.address}: response to unknown request {response.request_id}"
            )
        handler, write = entry
        if response.WhichOneof("result") == "error":
            error = wire.error_from_response(response.error)
            if write is not None:  # that write is lost: its commit must not become durable
                self._fail_next_sync(f"a write was refused ({error})")
                if isinstance(error, ConflictError):
                    # That commit is over: nothing of it is to be written again.
                    self._sync_conflict = True
                    self._forget_unsynced()
                elif write in self._unsynced:
                    self._unsynced.remove(write)
                    self._unsynced_bytes -= write.nbytes
            raise _Refused(error)
        handler(response, data)

    def _run(
        self, conn: Connection, jobs: Sequence[_Job], *, wait: bool = True, drain: bool = False
    ) -> Ticket:
        """Send ``jobs`` with at most MAX_IN_FLIGHT requests outstanding and,
        with ``wait``, take responses until each job has had its own (they may
        come in any order, among those of earlier writes that did not wait).
        ``drain`` first takes the responses to every earlier request."""
        while drain and self._pending:
            conn.flush()
            self._receive_one(conn)
        ticket = Ticket(len(jobs))
        for message, handler in jobs:
            while len(self._pending) >= wire.MAX_IN_FLIGHT:
                conn.flush()
                self._receive_one(conn)
            request_id = next(self._ids)
            write = message if isinstance(message, WriteMessage) else None
            self._pending[request_id] = (ticket.counted(handler), write)
            ticket.request_ids.append(request_id)
            conn.queue(encode_request(message, request_id))
            self.requests += 1
        conn.flush()
        while wait and ticket.left:
            self._receive_one(conn)
        return ticket

    def _batch(
        self,
        what: str,
        jobs: Callable[[], Sequence[_Job]],
        *,
        wait: bool = True,
        drain: bool = False,
    ) -> Ticket:
        """Run a batch; on a connection failure reconnect and retry it once."""
        with self._lock:
            if self._closed:
                raise InvalidArgumentError(f"block client for {self.address} is closed")
            first: BaseException | None = None
            while True:
                try:
                    if self._conn is None:
                        self._reconnect()
                    assert self._conn is not None
                    return self._run(self._conn, jobs(), wait=wait, drain=drain)
                except _Refused as refused:
                    self._drop_connection()  # later answers are of no use now
                    raise refused.error from None
                except (HostKeyChangedError, AuthenticationError):
                    self._drop_connection()
                    raise
                except (NetworkError, OSError) as exc:
                    self._drop_connection()
                    if first is None:
                        first = exc
                        continue
                    cls = ChannelError if isinstance(exc, ChannelError) else NetworkError
                    raise cls(
                        f"block server {self.address}, volume {self.volume}: {what} failed "
                        f"({_reason(first)}), and again after reconnecting ({_reason(exc)})"
                    ) from exc

    def _reconnect(self) -> None:
        """Connect again and write again what the server may have missed:
        every write since the last sync, or when those were too many to
        keep, the writes left unanswered (and the next sync fails)."""
        self._connect()
        self.reconnects += 1
        if self._unsynced_overflow:
            self._fail_next_sync(
                f"the connection was lost with more than {self.replay_limit} bytes of "
                "unsynced writes, too many to write again"
            )
            replay = list(dict.fromkeys(self._unanswered))
        else:
            replay = self._unsynced
        self._unanswered = []
        assert self._conn is not None
        self._run(self._conn, [(m, self._expect("write_blocks")) for m in replay])
        self.replayed_blocks += sum(len(m.ids) for m in replay)

    def _fail_next_sync(self, reason: str) -> None:
        if self._sync_failure is None:
            self._sync_failure = reason

    # -- block I/O -------------------------------------------------------------------

    def _chunks(self, ids: Sequence[int]) -> Iterator[tuple[int, int]]:
        per_request = max(1, REQUEST_DATA_BYTES // self.block_size)
        for start in range(0, len(ids), per_request):
            yield start, min(len(ids), start + per_request)

    def _check_ids(self, ids: Sequence[int]) -> None:
        for block_id in ids:
            if not 0 <= block_id < self.total_blocks:
                raise InvalidArgumentError(
                    f"block {block_id} is out of range for volume {self.volume} "
                    f"({self.total_blocks} blocks)"
                )

    def read_blocks_into(self, ids: Sequence[int], out: memoryview, *, wait: bool = True) -> Ticket:
        """Read blocks ``ids`` into ``out`` (``len(ids) * block_size`` bytes).

        ``wait=False`` only sends the requests (a prefetch): ``out`` is
        filled while later calls take answers, or by :meth:`finish`."""
        bs = self.block_size
        if out.nbytes != len(ids) * bs:
            raise InvalidArgumentError(
                f"buffer of {out.nbytes} bytes for {len(ids)} blocks of {bs} bytes"
            )
        self._check_ids(ids)
        target = out.cast("B") if out.format != "B" or out.ndim != 1 else out

        def jobs() -> list[_Job]:
            result: list[_Job] = []
            for start, end in self._chunks(ids):
                request = pb.Request()
                request.read_blocks.block_ids.extend(ids[start:end])
                result.append((request, self._read_handler(target[start * bs : end * bs])))
            return result

        return self._batch(f"reading {len(ids)} blocks", jobs, wait=wait)

    def finish(self, ticket: Ticket) -> bool:
        """Wait for the answers to a batch sent with ``wait=False``; False
        when they will not come (connection lost, a request refused), and
        the caller should read again (which reports any error)."""
        with self._lock:
            try:
                while ticket.left and self._conn is not None:
                    if not any(rid in self._pending for rid in ticket.request_ids):
                        break
                    self._conn.flush()
                    self._receive_one(self._conn)
            except (_Refused, NetworkError, OSError):
                self._drop_connection()  # a refused write has already failed the next sync
            return ticket.left == 0

    def _read_handler(self, dest: memoryview) -> _Handler:
        def handle(response: pb.Response, data: memoryview | None) -> None:
            self._expect("read_blocks")(response, None)
            if data is None:
                data = memoryview(response.read_blocks.data)
            if data.nbytes != dest.nbytes:
                raise ProtocolError(
                    f"block server {self.address}: read returned {data.nbytes} bytes, "
                    f"expected {dest.nbytes}"
                )
            dest[:] = data

        return handle

    def read_blocks(self, ids: Sequence[int]) -> bytes:
        out = bytearray(len(ids) * self.block_size)
        with memoryview(out) as view:
            self.read_blocks_into(ids, view)
        return bytes(out)

    def write_blocks(self, ids: Sequence[int], data: Buffer, *, wait: bool = True) -> None:
        """Write ``data`` (``len(ids) * block_size`` bytes) to blocks ``ids``.

        ``wait=False`` returns once the requests are sent: their answers
        are taken during later calls, and a refused write makes the next
        :meth:`sync` fail (a sync always waits for every write first)."""
        bs = self.block_size
        with memoryview(data) as raw:
            view = raw.cast("B") if raw.format != "B" or raw.ndim != 1 else raw
            if view.nbytes != len(ids) * bs:
                raise InvalidArgumentError(
                    f"{view.nbytes} bytes of data for {len(ids)} blocks of {bs} bytes"
                )
            self._check_ids(ids)
            pieces = [
                WriteMessage(list(ids[start:end]), view[start * bs : end * bs])
                for start, end in self._chunks(ids)
            ]
        with self._lock:
            for piece in pieces:
                self._remember(piece)
            self._batch(
                f"writing {len(ids)} blocks",
                lambda: [(piece, self._expect("write_blocks")) for piece in pieces],
                wait=wait,
            )

    def _remember(self, message: WriteMessage) -> None:
        if self._unsynced_overflow:
            return
        if self._unsynced_bytes + message.nbytes > self.replay_limit:
            self._forget_unsynced()
            self._unsynced_overflow = True
            return
        self._unsynced.append(message)
        self._unsynced_bytes += message.nbytes

    def forget(self) -> None:
        """Start over after another client's commit (``FileSystem.refresh``):
        a write refused for that is not to fail a later sync."""
        with self._lock:
            if self._sync_conflict:
                self._sync_failure = None
                self._sync_conflict = False
                self._forget_unsynced()

    def _forget_unsynced(self) -> None:
        self._unsynced = []
        self._unsynced_bytes = 0
        self._unsynced_overflow = False

    def sync(self) -> None:
        """Make every write so far durable on the server (after their answers)."""
        with self._lock:

            def jobs() -> list[_Job]:
                request = pb.Request()
                request.sync.SetInParent()
                return [(request, self._expect("sync"))]

            self._batch("sync", jobs, drain=True)
            failure, self._sync_failure = self._sync_failure, None
            conflict, self._sync_conflict = self._sync_conflict, False
            self._forget_unsynced()
            if failure is not None and conflict:
                raise ConflictError(
                    f"block server {self.address}, volume {self.volume}: {failure}; refresh "
                    "and retry"
                )
            if failure is not None:
                raise NetworkError(
                    f"block server {self.address}, volume {self.volume}: {failure}; this sync "
                    "cannot vouch for the writes since the previous one"
                )

    def _expect(self, kind: str) -> _Handler:
        def handle(response: pb.Response, data: memoryview | None) -> None:
            if response.WhichOneof("result") != kind:
                raise ProtocolError(
                    f"block server {self.address}: expected {kind}, got "
                    f"{response.WhichOneof('result')}"
                )

        return handle

    # -- life cycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and wipe the auth token (idempotent)."""
        with self._lock:
            self._closed = True
            self._drop_connection()
            self._token[:] = bytes(len(self._token))
            self._forget_unsynced()
            self._unanswered = []

    def __enter__(self) -> BlockClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Ticket:
    """The requests of one batch on the connection, and how many of them
    still await their answer."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.request_ids: list[int] = []

    def counted(self, handler: _Handler) -> _Handler:
        def handle(response: pb.Response, data: memoryview | None) -> None:
            handler(response, data)
            self.left -= 1

        return handle


class _Refused(Exception):
    """Carries a server's ErrorResponse past the retry logic (never retried)."""

    def __init__(self, error: DoubleCryptError) -> None:
        super().__init__(str(error))
        self.error = error


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ServerError):
        return str(exc)
    return str(exc) or type(exc).__name__
