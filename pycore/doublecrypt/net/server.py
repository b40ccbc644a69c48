"""The block server (docs/PROTOCOL.md): asyncio listeners for the Noise
channel and, optionally, TLS; one task per connection.

Each connection has a reader (decrypts, parses, enforces the in-flight
limit and the idle timeout) and a worker that answers the requests in the
order they arrived, so writes on one connection apply in request order and a
client that matches responses by order (doublecrypt-core) still works. Block
I/O is done directly with pread/pwrite (page-cache speed, faster than a
thread hop for 4 KiB-1 MiB blocks); fsync runs in a thread.

The server sees ciphertext blocks and the BLAKE3 hash of each volume's auth
token, nothing else; it imports nothing from the filesystem layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from ..channel import Keypair, ServerChannel, fingerprint, open_channel
from ..errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    CorruptionError,
    DoubleCryptError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
    ProtocolError,
)
from ..objectstore.location import S3Settings
from . import tls, wire
from .object_volumes import ObjectSessionVolume, ObjectVolumeStore
from .volumes import TOKEN_BYTES, Volume, VolumeStore, check_volume_name, token_hash
from .wire import pb

__all__ = ["NOISE_KEY_FILE", "BlockServer", "ServerConfig", "format_address", "load_noise_key"]

log = logging.getLogger("doublecrypt.server")

NOISE_KEY_FILE = "server_noise.key"
_KEY_BYTES = 32
_RESPONSE_OVERHEAD = 64  # protobuf envelope around a ReadBlocks payload, generously
_QUEUED_BYTES_PER_CONNECTION = 4  # times max_message: then the reader pauses
_CLOSE_TIMEOUT = 2.0
_TLS_READ = 1 << 20  # bytes per read from a TLS stream
_TLS_JOIN_BELOW = 1 << 16  # smaller responses go out with their header in one TLS record


def load_noise_key(data_dir: str | os.PathLike[str]) -> Keypair:
    """The server's Noise static key from ``DATA/server_noise.key`` (32 raw
    bytes, mode 0600), made on first use."""
    directory = pathlib.Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / NOISE_KEY_FILE
    if not path.exists():
        fresh = Keypair.generate().private_bytearray()
        try:
            tls.write_private(path, fresh)
        finally:
            fresh[:] = bytes(len(fresh))
    private = bytearray(path.read_bytes())
    try:
        if len(private) != _KEY_BYTES:
            raise CorruptionError(f"{path}: a Noise key is {_KEY_BYTES} bytes, not {len(private)}")
        return Keypair.from_private(private)
    finally:
        private[:] = bytes(len(private))


def format_address(sockname: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class ServerConfig:
    data_dir: pathlib.Path
    listen: tuple[str, int] | None = ("127.0.0.1", 0)
    tls_listen: tuple[str, int] | None = None
    allow_create: bool = True
    # Volumes in an object store (s3://BUCKET/PREFIX) instead of DATA/volumes/.
    backend: str | None = None
    backend_settings: S3Settings | None = None
    max_message: int = wire.DEFAULT_MAX_MESSAGE
    idle_timeout: float = 120.0
    handshake_timeout: float = 10.0
    shutdown_timeout: float = 30.0


class MessageStream(Protocol):
    """One transport's message interface (a Noise ChannelStream, or TLS framing)."""

    async def recv(self) -> bytes: ...
    def send_nowait(self, message: bytes | bytearray) -> None: ...
    async def drain(self) -> None: ...
    async def close(self) -> None: ...


class TlsMessageStream:
    """Length-prefixed protobuf messages over a TLS stream pair."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_message: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = wire.TlsFrameDecoder(max_message)
        self._pending: deque[bytes] = deque()
        self.too_large = False  # the peer sent a frame above max_message

    async def recv(self) -> bytes:
        while not self._pending:
            data = await self._reader.read(_TLS_READ)
            if not data:
                self._decoder.end_of_input()
                raise EOFError("connection closed")
            try:
                self._pending.extend(self._decoder.feed(data))
            except ProtocolError:
                self.too_large = True
                raise
        return self._pending.popleft()

    def send_nowait(self, message: bytes | bytearray) -> None:
        if len(message) < _TLS_JOIN_BELOW:  # one TLS record
            self._writer.write(wire.tls_frame(message))
        else:  # the SSL transport encrypts each piece as it is: no copy to add the header
            self._writer.writelines((wire.tls_header(len(message)), message))

    async def drain(self) -> None:
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)


def _error(request_id: int, code: int, message: str) -> pb.Response:
    return pb.Response(request_id=request_id, error=pb.ErrorResponse(code=code, message=message))


class _Refused(Exception):
    """A request answered with an ErrorResponse (internal control flow)."""

    def __init__(self, code: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


class Connection:
    """One client: reads requests, answers them in order, then closes."""

    def __init__(
        self,
        server: BlockServer,
        stream: MessageStream,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        self.server = server
        self.config = server.config
        self.stream = stream
        self.writer = writer
        self.peer = peer
        self.volume: Volume | ObjectSessionVolume | None = None
        self.queue: asyncio.Queue[tuple[pb.Request, int] | None] = asyncio.Queue()
        self.in_flight = 0
        self.queued_bytes = 0
        self.closing = asyncio.Event()  # stop reading; the worker finishes the queue
        self.discard = False  # the worker drops what is still queued
        self.has_room = asyncio.Event()
        self.has_room.set()
        self.last_activity = time.monotonic()

    def _send(self, response: pb.Response | bytearray) -> None:
        """Send a response (or one already encoded)."""
        encoded = response.SerializeToString() if isinstance(response, pb.Response) else response
        self.stream.send_nowait(encoded)
        self.last_activity = time.monotonic()

    def _close_after(self, response: pb.Response, reason: str) -> None:
        log.info("%s: closing: %s", self.peer, reason)
        with contextlib.suppress(DoubleCryptError, OSError):
            self._send(response)
        self.closing.set()

    async def run(self) -> None:
        worker = asyncio.create_task(self._work())
        try:
            await self._read()
        except (DoubleCryptError, OSError) as exc:
            log.info("%s: connection ended: %s", self.peer, exc)
        finally:
            self.queue.put_nowait(None)
            try:
                await asyncio.wait_for(worker, self.config.shutdown_timeout)
            except (asyncio.TimeoutError, DoubleCryptError, OSError) as exc:
                log.info("%s: gave up answering: %s", self.peer, exc or "timed out")
            await self.close_stream()
            if self.volume is not None:
                volume, self.volume = self.volume, None
                try:  # the last user syncs and closes the image: off the event loop
                    await asyncio.to_thread(self.server.release, volume)
                except DoubleCryptError as exc:
                    log.error("volume %r: sync on close failed: %s", volume.name, exc)

    async def close_stream(self) -> None:
        # A peer that stops reading could keep a graceful close waiting forever.
        try:
            await asyncio.wait_for(self.stream.close(), _CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, DoubleCryptError, OSError):
            self.writer.transport.abort()

    async def _read(self) -> None:
        stopping = asyncio.create_task(self.server.stopping.wait())
        closing = asyncio.create_task(self.closing.wait())
        receive: asyncio.Task[bytes] | None = None
        try:
            while True:
                if not self.has_room.is_set():
                    room = asyncio.create_task(self.has_room.wait())
                    await asyncio.wait(
                        {room, stopping, closing}, return_when=asyncio.FIRST_COMPLETED
                    )
                    room.cancel()
                if self.server.stopping.is_set() or self.closing.is_set():
                    return
                if receive is None:
                    receive = asyncio.create_task(self.stream.recv())
                idle_left = self.config.idle_timeout - (time.monotonic() - self.last_activity)
                done, _ = await asyncio.wait(
                    {receive, stopping, closing},
                    timeout=max(idle_left, 0.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if self.server.stopping.is_set() or self.closing.is_set():
                    return
                if receive not in done:
                    if not done and time.monotonic() - self.last_activity >= (
                        self.config.idle_timeout
                    ):
                        log.info("%s: idle for %ss, closing", self.peer, self.config.idle_timeout)
                        return
                    continue
                try:
                    message = receive.result()
                except EOFError:
                    return
                except ProtocolError as exc:
                    # TLS framing is still intact after an oversized frame, so
                    # the client can be told why; a broken Noise session cannot.
                    if isinstance(self.stream, TlsMessageStream) and self.stream.too_large:
                        self._close_after(_error(0, wire.TOO_LARGE, str(exc)), str(exc))
                        return
                    raise
                finally:
                    receive = None
                self.last_activity = time.monotonic()
                self._accept(message)
        finally:
            for task in (receive, stopping, closing):
                if task is not None:
                    task.cancel()

    def _accept(self, message: bytes) -> None:
        try:
            request = pb.Request.FromString(message)
        except DecodeError:
            self._close_after(
                _error(0, wire.BAD_REQUEST, "malformed request (not a protobuf Request)"),
                "malformed request",
            )
            return
        if self.in_flight >= wire.MAX_IN_FLIGHT:
            self._close_after(
                _error(
                    request.request_id,
                    wire.TOO_MANY_REQUESTS,
                    f"more than {wire.MAX_IN_FLIGHT} requests in flight",
                ),
                "too many requests in flight",
            )
            return
        self.in_flight += 1
        self.queued_bytes += len(message)
        if self.queued_bytes > _QUEUED_BYTES_PER_CONNECTION * self.config.max_message:
            self.has_room.clear()
        self.queue.put_nowait((request, len(message)))

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            request, size = item
            if self.discard:
                continue
            try:
                response = await self._answer(request)
            except _Refused as refused:
                response = _error(request.request_id, refused.code, refused.message)
                if refused.close:
                    self.discard = True
                    self._close_after(response, refused.message)
                    continue
            except Exception as exc:  # a bug must not leave the client waiting forever
                log.exception("%s: request %d failed", self.peer, request.request_id)
                response = _error(request.request_id, wire.SERVER_IO, f"internal error: {exc}")
            self.in_flight -= 1
            self.queued_bytes -= size
            if self.queued_bytes <= _QUEUED_BYTES_PER_CONNECTION * self.config.max_message:
                self.has_room.set()
            try:
                self._send(response)
                await self.stream.drain()
            except (DoubleCryptError, OSError) as exc:
                log.info("%s: cannot answer: %s", self.peer, exc)
                self.discard = True
                self.closing.set()

    async def _answer(self, request: pb.Request) -> pb.Response | bytearray:
        command = request.WhichOneof("command")
        rid = request.request_id
        if command is None:
            raise _Refused(wire.BAD_REQUEST, "request without a command this server knows")
        if command == "authenticate":
            return pb.Response(request_id=rid, authenticate=await self._authenticate(request))
        volume = self.volume
        if volume is None:
            raise _Refused(wire.NOT_AUTHENTICATED, "authenticate first")
        try:
            return await self._volume_command(volume, command, request)
        except InvalidArgumentError as exc:
            raise _Refused(wire.OUT_OF_RANGE, str(exc)) from None
        except NoSpaceError as exc:
            raise _Refused(wire.NO_SPACE, str(exc)) from None
        except ConflictError as exc:
            raise _Refused(wire.WRITE_CONFLICT, str(exc)) from None
        except DoubleCryptError as exc:
            log.error("%s: volume %r: %s", self.peer, volume.name, exc)
            raise _Refused(wire.SERVER_IO, str(exc)) from None

    async def _volume_command(
        self, volume: Volume | ObjectSessionVolume, command: str, request: pb.Request
    ) -> pb.Response | bytearray:
        rid = request.request_id

        async def run(fn: Callable[..., Any], *args: Any) -> Any:
            # Object-store volumes wait on the network: not on the event loop.
            return await asyncio.to_thread(fn, *args) if volume.blocking_io else fn(*args)

        if command == "read_blocks":
            ids = list(request.read_blocks.block_ids)
            nbytes = len(ids) * volume.block_size
            self._check_response_size(nbytes)
            # Encoded by hand, the blocks read into it: no copies of the data.
            message, start = wire.read_blocks_response(rid, nbytes)
            with memoryview(message) as view:
                await run(volume.read_blocks_into, ids, view[start:])
            return message
        if command == "write_blocks":
            ids = list(request.write_blocks.block_ids)
            await run(volume.write_blocks, ids, request.write_blocks.data)
            return pb.Response(request_id=rid, write_blocks=pb.WriteBlocksResponse())
        if command == "read_block":
            data = await run(volume.read_blocks, [request.read_block.block_id])
            return pb.Response(request_id=rid, read_block=pb.ReadBlockResponse(data=data))
        if command == "write_block":
            await run(volume.write_blocks, [request.write_block.block_id], request.write_block.data)
            return pb.Response(request_id=rid, write_block=pb.WriteBlockResponse())
        if command == "sync":
            await asyncio.to_thread(volume.sync)
            return pb.Response(request_id=rid, sync=pb.SyncResponse())
        if command == "get_info":
            info = pb.GetInfoResponse(
                block_size=volume.block_size, total_blocks=volume.total_blocks
            )
            return pb.Response(request_id=rid, get_info=info)
        raise _Refused(wire.BAD_REQUEST, f"unsupported command {command}")

    def _check_response_size(self, nbytes: int) -> None:
        if nbytes + _RESPONSE_OVERHEAD > self.config.max_message:
            raise _Refused(
                wire.TOO_LARGE,
                f"a response of {nbytes} bytes would exceed the limit of "
                f"{self.config.max_message} bytes: read fewer blocks at once",
            )

    async def _authenticate(self, request: pb.Request) -> pb.AuthenticateResponse:
        auth = request.authenticate
        if self.volume is not None:
            raise _Refused(wire.BAD_REQUEST, f"already authenticated to {self.volume.name!r}")
        name = auth.volume or wire.DEFAULT_VOLUME
        try:
            check_volume_name(name)
        except InvalidArgumentError as exc:
            raise _Refused(wire.BAD_REQUEST, str(exc)) from None
        if len(auth.auth_token) != TOKEN_BYTES:
            raise _Refused(
                wire.BAD_REQUEST,
                f"an auth token is {TOKEN_BYTES} bytes, got {len(auth.auth_token)}",
            )
        store = self.server.store

        async def call(fn: Callable[..., Any], *args: Any) -> Any:
            return await asyncio.to_thread(fn, *args) if store.blocking_io else fn(*args)

        created = False
        try:
            if auth.HasField("create") and not await call(store.exists, name):
                if not self.config.allow_create:
                    raise _Refused(
                        wire.NO_SUCH_VOLUME,
                        f"no such volume {name!r}, and this server does not create volumes "
                        "(ask its administrator: doublecrypt volume create)",
                    )
                async with self.server.create_lock:
                    if not await call(store.exists, name):
                        geometry = auth.create
                        await asyncio.to_thread(
                            store.create,
                            name,
                            geometry.block_size,
                            geometry.total_blocks,
                            token_hash(auth.auth_token),
                        )
                        created = True
                        log.info("%s: created volume %r", self.peer, name)
            volume = await call(store.acquire, name, auth.auth_token)
        except NotFoundError:
            raise _Refused(wire.NO_SUCH_VOLUME, f"no such volume {name!r}") from None
        except AuthenticationError:
            log.warning("%s: wrong auth token for volume %r", self.peer, name)
            raise _Refused(
                wire.FORBIDDEN, f"wrong auth token for volume {name!r}", close=True
            ) from None
        except InvalidArgumentError as exc:
            raise _Refused(wire.BAD_REQUEST, str(exc)) from None
        except NoSpaceError as exc:
            raise _Refused(wire.NO_SPACE, str(exc)) from None
        except AlreadyExistsError as exc:  # made meanwhile by an admin
            raise _Refused(wire.CONFLICT, str(exc)) from None
        except DoubleCryptError as exc:
            log.error("%s: volume %r: %s", self.peer, name, exc)
            raise _Refused(wire.SERVER_IO, str(exc)) from None
        if auth.HasField("create") and (auth.create.block_size, auth.create.total_blocks) != (
            volume.block_size,
            volume.total_blocks,
        ):
            await asyncio.to_thread(self.server.release, volume)
            raise _Refused(
                wire.CONFLICT,
                f"volume {name!r} exists with {volume.total_blocks} blocks of "
                f"{volume.block_size} bytes, not {auth.create.total_blocks} of "
                f"{auth.create.block_size}",
            )
        self.volume = volume
        log.info("%s: authenticated to volume %r", self.peer, name)
        return pb.AuthenticateResponse(
            block_size=volume.block_size, total_blocks=volume.total_blocks, created=created
        )


class BlockServer:
    """Serves the volumes of ``config.data_dir`` over Noise (and TLS if asked)."""

    def __init__(self, config: ServerConfig, noise_key: Keypair | None = None) -> None:
        self.config = config
        self.store: VolumeStore | ObjectVolumeStore = (
            VolumeStore(config.data_dir)
            if config.backend is None
            else ObjectVolumeStore(config.backend, config.backend_settings)
        )
        self.noise_key = noise_key if noise_key is not None else load_noise_key(config.data_dir)
        self.tls_fingerprint: str | None = None
        self.noise_address: str | None = None
        self.tls_address: str | None = None
        self.stopping = asyncio.Event()
        self.create_lock = asyncio.Lock()
        self._listeners: list[asyncio.Server] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def server_key(self) -> bytes:
        return self.noise_key.public

    def release(self, volume: Volume | ObjectSessionVolume) -> None:
        """Give back a session's volume (file volumes: the last user syncs)."""
        if isinstance(volume, ObjectSessionVolume):
            assert isinstance(self.store, ObjectVolumeStore)
            self.store.release(volume)
        else:
            assert isinstance(self.store, VolumeStore)
            self.store.release(volume)

    async def start(self) -> None:
        """Bind the listeners (port 0 picks a free port: see the addresses)."""
        if self.config.listen is not None:
            host, port = self.config.listen
            listener = await asyncio.start_server(self._on_noise, host, port)
            self._listeners.append(listener)
            self.noise_address = format_address(listener.sockets[0].getsockname())
            log.info(
                "Noise listening on %s, server key %s",
                self.noise_address,
                fingerprint(self.server_key),
            )
        if self.config.tls_listen is not None:
            cert_path, key_path, self.tls_fingerprint = tls.ensure_certificate(self.config.data_dir)
            context = tls.server_context(cert_path, key_path)
            host, port = self.config.tls_listen
            listener = await asyncio.start_server(
                self._on_tls,
                host,
                port,
                ssl=context,
                ssl_handshake_timeout=self.config.handshake_timeout,
            )
            self._listeners.append(listener)
            self.tls_address = format_address(listener.sockets[0].getsockname())
            log.info("TLS listening on %s, certificate %s", self.tls_address, self.tls_fingerprint)

    async def _on_noise(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = format_address(writer.get_extra_info("peername"))
        task = asyncio.current_task()
        assert task is not None
        self._handshakes.add(task)
        try:
            channel = ServerChannel(self.noise_key, max_message=self.config.max_message)
            stream = await open_channel(
                reader, writer, channel, handshake_timeout=self.config.handshake_timeout
            )
        except asyncio.CancelledError:
            writer.close()
            raise
        except Exception as exc:  # any handshake failure just ends this connection
            log.info("%s: Noise handshake failed: %s", peer, exc or type(exc).__name__)
            writer.close()
            return
        finally:
            self._handshakes.discard(task)
        log.info(
            "%s: Noise session (%s), client key %s",
            peer,
            channel.protocol_name,
            fingerprint(channel.remote_static),
        )
        await self._serve(Connection(self, stream, writer, peer), task)

    async def _on_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = format_address(writer.get_extra_info("peername"))
        task = asyncio.current_task()
        assert task is not None
        log.info("%s: TLS session", peer)
        stream = TlsMessageStream(reader, writer, self.config.max_message)
        await self._serve(Connection(self, stream, writer, peer + " (tls)"), task)

    async def _serve(self, connection: Connection, task: asyncio.Task[None]) -> None:
        if self.stopping.is_set():
            await connection.close_stream()
            return
        self._connections.add(task)
        try:
            await connection.run()
        finally:
            self._connections.discard(task)
            log.info("%s: closed", connection.peer)

    async def shutdown(self) -> None:
        """Stop accepting, answer the requests already received, sync and
        close every volume."""
        self.stopping.set()
        for listener in self._listeners:
            listener.close()
        for task in list(self._handshakes):
            task.cancel()
        pending = set(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.config.shutdown_timeout + 1)
            for task in late:
                task.cancel()
        for volume in self.store.open_volumes():
            try:
                await asyncio.to_thread(volume.sync)
            except DoubleCryptError as exc:
                log.error("volume %r: final sync failed: %s", volume.name, exc)
            volume.close()
        for listener in self._listeners:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), 1.0)
        log.info("server stopped")
