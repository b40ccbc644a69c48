"""The block server as a real subprocess (`doublecrypt serve`), driven by a
small raw client written here (Noise via doublecrypt.channel + protobuf, or
TLS framing), so that it can also send bad traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import ssl
import time
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import blake3
import pytest
from click.testing import CliRunner, Result

from doublecrypt import errors
from doublecrypt.channel import ChannelStream, ClientChannel, Keypair, open_channel
from doublecrypt.cli import main as cli_main
from doublecrypt.net import tls, wire
from doublecrypt.net.volumes import VolumeStore
from doublecrypt.net.wire import pb
from netserver import start_serve

T = TypeVar("T")

BLOCK = 4096
BLOCKS = 64
TIMEOUT = 10.0  # any single wait in these tests


class Server:
    """A `doublecrypt serve` subprocess and what it printed once listening."""

    def __init__(self, data_dir: pathlib.Path, *args: str) -> None:
        self.data_dir = data_dir
        self.serve = start_serve(data_dir, *args, timeout=TIMEOUT * 2)
        self.process = self.serve.proc
        self.info = self.serve.info
        self.noise = _split(self.info["noise"])
        self.server_key = bytes.fromhex(self.info["server_key"])

    def stderr(self) -> str:
        return self.serve.log_text()

    def stop(self) -> None:
        self.serve.stop(timeout=TIMEOUT)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def run(coro: Awaitable[T], timeout: float = 25.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def token() -> bytes:
    return os.urandom(32)


class RawClient:
    """Requests and responses over a Noise channel, one protobuf per message."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: ChannelStream
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.stream = stream
        self.next_id = 1

    @classmethod
    async def connect(cls, server: Server, *, pin: bool = True) -> RawClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*server.noise), TIMEOUT)
        channel = ClientChannel(Keypair.generate(), server_key=server.server_key if pin else None)
        stream = await open_channel(reader, writer, channel, handshake_timeout=TIMEOUT)
        assert stream.channel.remote_static == server.server_key
        return cls(reader, writer, stream)

    def send(self, **command: Any) -> int:
        rid = self.next_id
        self.next_id += 1
        self.stream.send_nowait(pb.Request(request_id=rid, **command).SerializeToString())
        return rid

    async def recv(self) -> pb.Response:
        return pb.Response.FromString(await asyncio.wait_for(self.stream.recv(), TIMEOUT))

    async def call(self, **command: Any) -> pb.Response:
        rid = self.send(**command)
        await self.stream.drain()
        response = await self.recv()
        assert response.request_id == rid
        return response

    async def authenticate(
        self, auth_token: bytes, volume: str = "", create: tuple[int, int] | None = None
    ) -> pb.Response:
        request = pb.AuthenticateRequest(auth_token=auth_token, volume=volume)
        if create is not None:
            request.create.block_size, request.create.total_blocks = create
        return await self.call(authenticate=request)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (within TIMEOUT); any
        bytes still arriving are skipped."""
        deadline = time.monotonic() + TIMEOUT
        try:
            while await asyncio.wait_for(self.reader.read(1 << 16), deadline - time.monotonic()):
                pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


def error_code(response: pb.Response) -> int:
    assert response.WhichOneof("result") == "error", response
    return response.error.code


async def authenticated(server: Server, name: str, secret: bytes) -> RawClient:
    client = await RawClient.connect(server)
    response = await client.authenticate(secret, name, create=(BLOCK, BLOCKS))
    assert response.WhichOneof("result") == "authenticate", response
    return client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("srv") / "data", "--tls-listen", "127.0.0.1:0")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Small limits and short timeouts."""
    options = "--tls-listen 127.0.0.1:0 --max-message 64K --idle-timeout 1.5 --handshake-timeout 1"
    srv = Server(tmp_path_factory.mktemp("strict") / "data", *options.split())
    yield srv
    srv.stop()


# ---- the happy path ----------------------------------------------------------


def test_create_write_read_sync_persisted(server: Server) -> None:
    secret = token()

    async def scenario() -> None:
        client = await RawClient.connect(server, pin=False)  # XX, first contact
        response = await client.authenticate(secret, "roundtrip", create=(BLOCK, BLOCKS))
        assert response.authenticate.created
        assert (response.authenticate.block_size, response.authenticate.total_blocks) == (
            BLOCK,
            BLOCKS,
        )
        info = await client.call(get_info=pb.GetInfoRequest())
        assert (info.get_info.block_size, info.get_info.total_blocks) == (BLOCK, BLOCKS)

        empty = await client.call(read_block=pb.ReadBlockRequest(block_id=7))
        assert empty.read_block.data == bytes(BLOCK)  # never written: zeros

        one = os.urandom(BLOCK)
        batch = os.urandom(3 * BLOCK)
        written = await client.call(write_block=pb.WriteBlockRequest(block_id=5, data=one))
        assert written.WhichOneof("result") == "write_block"
        written = await client.call(
            write_blocks=pb.WriteBlocksRequest(block_ids=[10, 11, 40], data=batch)
        )
        assert written.WhichOneof("result") == "write_blocks"
        synced = await client.call(sync=pb.SyncRequest())
        assert synced.WhichOneof("result") == "sync"

        got = await client.call(read_blocks=pb.ReadBlocksRequest(block_ids=[40, 5, 11, 10, 0]))
        assert got.read_blocks.data == (
            batch[2 * BLOCK :] + one + batch[BLOCK : 2 * BLOCK] + batch[:BLOCK] + bytes(BLOCK)
        )
        single = await client.call(read_block=pb.ReadBlockRequest(block_id=5))
        assert single.read_block.data == one
        await client.close()

        image = (server.data_dir / "volumes" / "roundtrip.img").read_bytes()
        assert len(image) == BLOCK * BLOCKS
        assert image[5 * BLOCK : 6 * BLOCK] == one
        assert image[10 * BLOCK : 12 * BLOCK] == batch[: 2 * BLOCK]
        assert image[40 * BLOCK : 41 * BLOCK] == batch[2 * BLOCK :]
        meta = json.loads((server.data_dir / "volumes" / "roundtrip.json").read_text())
        assert meta == {
            "format": 1,
            "block_size": BLOCK,
            "total_blocks": BLOCKS,
            "token_hash": blake3.blake3(secret).hexdigest(),
        }

        # A second connection (IK, pinned) sees the same volume; created is false.
        again = await RawClient.connect(server)
        response = await again.authenticate(secret, "roundtrip", create=(BLOCK, BLOCKS))
        assert not response.authenticate.created
        got = await again.call(read_block=pb.ReadBlockRequest(block_id=5))
        assert got.read_block.data == one
        # the same name with another geometry: 409
        await again.close()
        other = await RawClient.connect(server)
        conflict = await other.authenticate(secret, "roundtrip", create=(BLOCK, BLOCKS * 2))
        assert error_code(conflict) == wire.CONFLICT
        await other.close()

    run(scenario())
    assert (server.data_dir / "server_noise.key").stat().st_mode & 0o777 == 0o600


def test_pipelined_requests_answered_in_order(server: Server) -> None:
    async def scenario() -> None:
        client = await authenticated(server, "pipeline", token())
        blocks = {i: os.urandom(BLOCK) for i in range(wire.MAX_IN_FLIGHT // 2)}
        ids = [
            client.send(write_block=pb.WriteBlockRequest(block_id=i, data=d))
            for i, d in blocks.items()
        ]
        ids += [client.send(read_block=pb.ReadBlockRequest(block_id=i)) for i in blocks]
        await client.stream.drain()
        responses = [await client.recv() for _ in ids]
        assert [r.request_id for r in responses] == ids
        reads = responses[len(blocks) :]
        assert [r.read_block.data for r in reads] == list(blocks.values())
        await client.close()

    run(scenario())


# ---- authentication ----------------------------------------------------------


def test_wrong_token_is_403_and_closed(server: Server) -> None:
    async def scenario() -> None:
        owner = await authenticated(server, "guarded", token())
        await owner.close()
        thief = await RawClient.connect(server)
        response = await thief.authenticate(token(), "guarded")
        assert error_code(response) == wire.FORBIDDEN
        assert "guarded" in response.error.message
        assert await thief.closed_by_server()

    run(scenario())


def test_volume_unreachable_with_another_volumes_token(server: Server) -> None:
    token_a, token_b = token(), token()

    async def scenario() -> None:
        for name, secret in (("vol-a", token_a), ("vol-b", token_b)):
            await (await authenticated(server, name, secret)).close()
        client = await RawClient.connect(server)
        response = await client.authenticate(token_a, "vol-b")
        assert error_code(response) == wire.FORBIDDEN
        assert await client.closed_by_server()
        # creating "over" it with the other token does not help either
        client = await RawClient.connect(server)
        response = await client.authenticate(token_a, "vol-b", create=(BLOCK, BLOCKS))
        assert error_code(response) == wire.FORBIDDEN
        assert await client.closed_by_server()

    run(scenario())


def test_request_before_authenticate_is_401(server: Server) -> None:
    secret = token()

    async def scenario() -> None:
        client = await RawClient.connect(server)
        for command in (
            {"get_info": pb.GetInfoRequest()},
            {"read_block": pb.ReadBlockRequest(block_id=0)},
            {"write_blocks": pb.WriteBlocksRequest(block_ids=[0], data=bytes(BLOCK))},
            {"sync": pb.SyncRequest()},
        ):
            assert error_code(await client.call(**command)) == wire.NOT_AUTHENTICATED
        # the connection stays usable: authenticate, then it works
        response = await client.authenticate(secret, "late", create=(BLOCK, BLOCKS))
        assert response.authenticate.created
        assert (await client.call(get_info=pb.GetInfoRequest())).get_info.block_size == BLOCK
        again = await client.authenticate(secret, "late")
        assert error_code(again) == wire.BAD_REQUEST  # already authenticated
        await client.close()

    run(scenario())


def test_missing_volume_and_bad_names(server: Server) -> None:
    async def scenario() -> None:
        client = await RawClient.connect(server)
        assert error_code(await client.authenticate(token(), "absent")) == wire.NO_SUCH_VOLUME
        assert error_code(await client.authenticate(token(), "../etc")) == wire.BAD_REQUEST
        assert error_code(await client.authenticate(b"short", "x")) == wire.BAD_REQUEST
        bad_geometry = await client.authenticate(token(), "odd", create=(1000, 10))
        assert error_code(bad_geometry) == wire.BAD_REQUEST
        assert not (server.data_dir / "volumes" / "odd.json").exists()
        await client.close()

    run(scenario())


# ---- bad requests and limits ---------------------------------------------------


def test_out_of_range_and_wrong_length_are_416(server: Server) -> None:
    async def scenario() -> None:
        client = await authenticated(server, "ranges", token())
        bad: list[dict[str, Any]] = [
            {"read_block": pb.ReadBlockRequest(block_id=BLOCKS)},
            {"read_blocks": pb.ReadBlocksRequest(block_ids=[0, BLOCKS + 5])},
            {"write_block": pb.WriteBlockRequest(block_id=BLOCKS, data=bytes(BLOCK))},
            {"write_block": pb.WriteBlockRequest(block_id=0, data=bytes(BLOCK - 1))},
            {"write_blocks": pb.WriteBlocksRequest(block_ids=[1, 2], data=bytes(BLOCK))},
            {"write_blocks": pb.WriteBlocksRequest(block_ids=[2**63], data=bytes(BLOCK))},
        ]
        for command in bad:
            response = await client.call(**command)
            assert error_code(response) == wire.OUT_OF_RANGE, command
        # nothing was written by the refused batch; the connection still works
        got = await client.call(read_blocks=pb.ReadBlocksRequest(block_ids=[1, 2]))
        assert got.read_blocks.data == bytes(2 * BLOCK)
        no_command = await client.call()
        assert error_code(no_command) == wire.BAD_REQUEST
        await client.close()

    run(scenario())


def test_malformed_protobuf_is_400_and_closed(server: Server) -> None:
    async def scenario() -> None:
        client = await authenticated(server, "malformed", token())
        client.stream.send_nowait(b"\x0a\x05ab")  # a length beyond the message
        response = await client.recv()
        assert error_code(response) == wire.BAD_REQUEST
        assert await client.closed_by_server()

    run(scenario())


def test_too_many_in_flight_is_429(server: Server) -> None:
    async def scenario() -> None:
        client = await authenticated(server, "flood", token())
        # Writes followed by fsyncs keep the server busy while the rest arrives.
        for i in range(wire.MAX_IN_FLIGHT):
            client.send(
                write_block=pb.WriteBlockRequest(block_id=i % BLOCKS, data=os.urandom(BLOCK))
            )
            client.send(sync=pb.SyncRequest())
        await client.stream.drain()
        codes: list[int] = []
        while True:
            try:
                response = await client.recv()
            except (EOFError, errors.NetworkError):
                break
            if response.WhichOneof("result") == "error":
                codes.append(response.error.code)
        assert wire.TOO_MANY_REQUESTS in codes

    run(scenario())


def test_message_above_max_message_closes(strict_server: Server) -> None:
    secret = token()

    async def scenario() -> None:
        client = await authenticated(strict_server, "big", secret)
        ids = list(range(17))  # 17 * 4 KiB > 64 KiB
        # a response that would be too large: refused, connection kept
        response = await client.call(read_blocks=pb.ReadBlocksRequest(block_ids=ids))
        assert error_code(response) == wire.TOO_LARGE
        # a request that is too large: the Noise session ends
        client.send(write_blocks=pb.WriteBlocksRequest(block_ids=ids, data=bytes(17 * BLOCK)))
        await client.stream.drain()
        assert await client.closed_by_server()
        # others are still served
        other = await authenticated(strict_server, "big", secret)
        await other.close()

    run(scenario())


def test_oversized_tls_frame_is_413(strict_server: Server) -> None:
    async def scenario() -> None:
        reader, writer = await tls_connect(strict_server)
        writer.write((100_000).to_bytes(4, "little"))  # just the length of a huge frame
        await writer.drain()
        decoder = wire.TlsFrameDecoder()
        messages: list[bytes] = []
        while not messages:
            data = await asyncio.wait_for(reader.read(1 << 16), TIMEOUT)
            assert data, "closed without a response"
            messages += decoder.feed(data)
        response = pb.Response.FromString(messages[0])
        assert error_code(response) == wire.TOO_LARGE
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()

    run(scenario())


# ---- the secure channel under attack ---------------------------------------------


def test_replayed_noise_frame_closes_and_server_keeps_serving(server: Server) -> None:
    secret = token()

    async def scenario() -> None:
        client = await authenticated(server, "replay", secret)
        channel = client.stream.channel
        channel.send(pb.Request(request_id=99, get_info=pb.GetInfoRequest()).SerializeToString())
        captured = channel.data_to_send()
        client.writer.write(captured)
        await client.writer.drain()
        response = await client.recv()  # the original is answered
        assert response.request_id == 99
        client.writer.write(captured)  # the same ciphertext again
        await client.writer.drain()
        assert await client.closed_by_server()

        other = await RawClient.connect(server)
        response = await other.authenticate(secret, "replay")
        assert response.WhichOneof("result") == "authenticate"
        await other.close()

    run(scenario())


def test_tampered_noise_frame_closes(server: Server) -> None:
    async def scenario() -> None:
        client = await authenticated(server, "tamper", token())
        channel = client.stream.channel
        channel.send(pb.Request(request_id=5, get_info=pb.GetInfoRequest()).SerializeToString())
        frame = bytearray(channel.data_to_send())
        frame[-1] ^= 1  # the authentication tag
        client.writer.write(bytes(frame))
        await client.writer.drain()
        assert await client.closed_by_server()

    run(scenario())


def test_silent_client_dropped_after_handshake_timeout(strict_server: Server) -> None:
    async def scenario() -> None:
        reader, writer = await asyncio.open_connection(*strict_server.noise)
        start = time.monotonic()
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
        elapsed = time.monotonic() - start
        assert data == b""
        assert 0.8 <= elapsed < 6, elapsed  # --handshake-timeout 1
        writer.close()

    run(scenario())


def test_idle_connection_dropped_after_idle_timeout(strict_server: Server) -> None:
    async def scenario() -> None:
        client = await authenticated(strict_server, "idle", token())
        start = time.monotonic()
        assert await client.closed_by_server()
        elapsed = time.monotonic() - start
        assert 1.2 <= elapsed < 7, elapsed  # --idle-timeout 1.5

    run(scenario())


# ---- TLS -----------------------------------------------------------------------


async def tls_connect(
    server: Server, fingerprint: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = server.info["tls"]
    host, port = _split(address)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=tls.client_context(), server_hostname=host),
        TIMEOUT,
    )
    expected = fingerprint or server.info["tls_fingerprint"]
    try:
        tls.check_peer_fingerprint(writer.get_extra_info("ssl_object"), expected, address)
    except errors.HostKeyChangedError:
        writer.close()
        raise
    return reader, writer


def test_tls_roundtrip_with_pinned_fingerprint(server: Server) -> None:
    secret = token()
    assert len(server.info["tls_fingerprint"]) == 64

    async def scenario() -> None:
        reader, writer = await tls_connect(server)
        decoder = wire.TlsFrameDecoder()
        pending: list[bytes] = []

        async def call(request: pb.Request) -> pb.Response:
            writer.write(wire.tls_frame(request.SerializeToString()))
            await writer.drain()
            while not pending:
                data = await asyncio.wait_for(reader.read(1 << 16), TIMEOUT)
                assert data
                pending.extend(decoder.feed(data))
            return pb.Response.FromString(pending.pop(0))

        auth = pb.AuthenticateRequest(
            auth_token=secret,
            volume="tls",
            create=pb.CreateVolume(block_size=BLOCK, total_blocks=8),
        )
        response = await call(pb.Request(request_id=1, authenticate=auth))
        assert response.authenticate.created
        block = os.urandom(BLOCK)
        response = await call(
            pb.Request(request_id=2, write_block=pb.WriteBlockRequest(block_id=3, data=block))
        )
        assert response.WhichOneof("result") == "write_block"
        response = await call(pb.Request(request_id=3, read_block=pb.ReadBlockRequest(block_id=3)))
        assert (response.request_id, response.read_block.data) == (3, block)
        writer.close()

        with pytest.raises(errors.HostKeyChangedError, match=server.info["tls"]):
            await tls_connect(server, "00" * 32)

    run(scenario())


# ---- admin commands and --no-create ---------------------------------------------


def test_admin_volume_commands_and_no_create(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    secret = token()
    digest = blake3.blake3(secret).hexdigest()

    def admin(command: str) -> Result:
        words = command.replace("DATA", str(data)).replace("HASH", digest).split()
        return CliRunner().invoke(cli_main, ["volume", *words])

    result = admin("create --data DATA adm --size 256K --block-size 4K --token-hash HASH")
    assert result.exit_code == 0, result.output
    assert (data / "volumes" / "adm.img").stat().st_size == 256 * 1024
    again = admin("create --data DATA adm --size 256K --token-hash HASH")
    assert again.exit_code == 4, again.output  # already exists
    assert admin("create --data DATA x --size 1M --token-hash abcd").exit_code == 2
    listed = admin("list --data DATA --json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == [
        {"name": "adm", "block_size": 4096, "total_blocks": 64, "size": 256 * 1024}
    ]

    srv = Server(data, "--no-create")
    try:

        async def scenario() -> None:
            client = await RawClient.connect(srv)
            refused = await client.authenticate(token(), "fresh", create=(BLOCK, BLOCKS))
            assert error_code(refused) == wire.NO_SUCH_VOLUME
            assert "does not create" in refused.error.message
            response = await client.authenticate(secret, "adm")
            assert (response.authenticate.block_size, response.authenticate.total_blocks) == (
                4096,
                64,
            )
            await client.close()

        run(scenario())
    finally:
        srv.stop()
    assert not (data / "volumes" / "fresh.json").exists()

    removed = admin("remove --data DATA adm")
    assert removed.exit_code == 0, removed.output
    assert not (data / "volumes" / "adm.img").exists()
    assert admin("list --data DATA").output == ""
    missing = admin("remove --data DATA adm")
    assert missing.exit_code == 3


# ---- shutdown -------------------------------------------------------------------


def test_sigterm_answers_in_flight_and_keeps_acknowledged_writes(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    secret = token()
    srv = Server(data)
    acknowledged: dict[int, bytes] = {}
    try:

        async def scenario() -> None:
            client = await authenticated(srv, "term", secret)
            sent: dict[int, tuple[int, bytes]] = {}
            for i in range(wire.MAX_IN_FLIGHT // 2):
                block = os.urandom(BLOCK)
                rid = client.send(write_block=pb.WriteBlockRequest(block_id=i, data=block))
                sent[rid] = (i, block)
                client.send(sync=pb.SyncRequest())
            await client.stream.drain()
            first = await client.recv()
            srv.process.send_signal(signal.SIGTERM)
            responses = [first]
            while True:
                try:
                    responses.append(await client.recv())
                except (EOFError, errors.NetworkError):
                    break
            # answered in order, without a hole: nothing received was dropped
            assert [r.request_id for r in responses] == list(range(2, len(responses) + 2))
            for response in responses:
                assert response.WhichOneof("result") != "error", response
                if response.request_id in sent:
                    block_id, block = sent[response.request_id]
                    acknowledged[block_id] = block

        run(scenario())
        assert srv.process.wait(TIMEOUT * 2) == 0, srv.stderr()
    finally:
        srv.stop()
    assert acknowledged
    restarted = Server(data)
    try:

        async def check() -> None:
            client = await RawClient.connect(restarted)
            await client.authenticate(secret, "term")
            ids = sorted(acknowledged)
            got = await client.call(read_blocks=pb.ReadBlocksRequest(block_ids=ids))
            assert got.read_blocks.data == b"".join(acknowledged[i] for i in ids)
            await client.close()

        run(check())
    finally:
        restarted.stop()


# ---- the pieces in-process ------------------------------------------------------


def test_volume_store_sharing_and_damage(tmp_path: pathlib.Path) -> None:
    store = VolumeStore(tmp_path)
    secret = token()
    store.create("v", BLOCK, 4, blake3.blake3(secret).digest())
    with pytest.raises(errors.AlreadyExistsError):
        store.create("v", BLOCK, 4, bytes(32))
    with pytest.raises(errors.InvalidArgumentError):
        store.create("w", 3000, 4, bytes(32))
    with pytest.raises(errors.AuthenticationError):
        store.acquire("v", token())
    first, second = store.acquire("v", secret), store.acquire("v", secret)
    assert first is second and first.references == 2
    first.write_blocks([3, 1], b"a" * BLOCK + b"b" * BLOCK)
    store.release(first)
    assert not second.closed
    assert second.read_blocks([1, 3]) == b"b" * BLOCK + b"a" * BLOCK
    store.release(second)
    assert second.closed and store.open_volumes() == []

    (tmp_path / "volumes" / "v.img").write_bytes(bytes(BLOCK))  # truncated
    with pytest.raises(errors.CorruptionError, match="expected"):
        store.acquire("v", secret)
    (tmp_path / "volumes" / "v.json").write_text('{"format": 2}')
    with pytest.raises(errors.CorruptionError, match="format"):
        store.info("v")
    store.remove("v")
    assert not store.exists("v")
    with pytest.raises(errors.NotFoundError):
        store.info("v")
    with pytest.raises(errors.InvalidArgumentError):
        store.info("..")


def test_certificate_made_once_with_a_private_key(tmp_path: pathlib.Path) -> None:
    cert, key, fingerprint = tls.ensure_certificate(tmp_path)
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(fingerprint) == 64 and fingerprint == fingerprint.lower()
    assert tls.ensure_certificate(tmp_path) == (cert, key, fingerprint)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert tls.certificate_fingerprint(der) == fingerprint
