"""Remote volumes end to end: a real ``doublecrypt serve`` process on
127.0.0.1 (port 0, its JSON line parsed), the client over Noise (XX with
trust on first use, IK with a pinned key) and TLS, the filesystem model test
run remotely, connection loss (a relay that cuts or refuses connections, a
server killed with SIGKILL and restarted), 50 concurrent clients and the
``--remote`` command line."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any, ClassVar

import blake3
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from test_fs_stateful import KEY, FileSystemMachine

import doublecrypt
from doublecrypt import errors
from doublecrypt.channel import KnownHosts, derive_client_keypair, fingerprint
from doublecrypt.cli import main
from doublecrypt.net.client import BlockClient
from doublecrypt.net.connection import WriteMessage, format_address, parse_address, send_buffers
from doublecrypt.net.store import NetworkStore
from doublecrypt.net.wire import pb
from netserver import ServeProcess, start_serve

OTHER_KEY = bytes(range(100, 132))
BS = 4096
SMALL = 256 * BS  # a 1 MiB volume
START_TIMEOUT = 30.0
_volume_numbers = count(1)


def fresh_volume(prefix: str = "v") -> str:
    return f"{prefix}{next(_volume_numbers)}-{os.getpid()}"


# ---- the server process ------------------------------------------------------------


Server = ServeProcess


def start_server(data: Path, *, listen: str = "127.0.0.1:0", tls: bool = False) -> Server:
    """Start ``doublecrypt serve`` and wait for its ``listening`` line."""
    extra = ["--tls-listen", "127.0.0.1:0"] if tls else []
    return start_serve(data, *extra, listen=listen, timeout=START_TIMEOUT)


def ik_client(srv: Server, address: str, volume: str, **kw: Any) -> BlockClient:
    """A BlockClient for KEY over Noise IK (``srv``'s key pinned) to ``address``
    (the server or a relay in front of it), creating a 64-block volume."""
    host, port = parse_address(address)
    return BlockClient(
        host,
        port,
        auth_token=doublecrypt.derive_subkey(KEY, doublecrypt.SUBKEY_SERVER_AUTH),
        volume=volume,
        create=(BS, 64),
        client_static=derive_client_keypair(KEY),
        server_key=bytes.fromhex(srv.server_key),
        **kw,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("srv") / "data", tls=True)
    yield srv
    srv.stop()
    assert srv.proc.returncode == 0, "the server did not exit cleanly on SIGTERM"


def open_fs(srv: Server | str, key: bytes = KEY, **kw: Any) -> doublecrypt.FileSystem:
    """A remote volume over Noise IK (the pinned key) unless told otherwise."""
    if isinstance(srv, Server):
        kw.setdefault("server_key", srv.server_key)
        address = srv.noise
    else:
        address = srv
    kw.setdefault("connect_timeout", 5.0)
    kw.setdefault("io_timeout", 10.0)
    return doublecrypt.open_remote(address, key=key, **kw)


def create_fs(
    srv: Server | str, volume: str, size: int = SMALL, **kw: Any
) -> doublecrypt.FileSystem:
    return open_fs(srv, volume=volume, create=True, size=size, block_size=BS, **kw)


# ---- a relay that loses connections on demand --------------------------------------


class Relay:
    """TCP relay on 127.0.0.1 in front of the server: ``cut()`` drops every
    open connection; with ``refuse`` set, new connections are closed at once;
    with ``swallow`` set, what clients send is dropped."""

    def __init__(self, target: str) -> None:
        self.target = parse_address(target)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.address = format_address("127.0.0.1", self.listener.getsockname()[1])
        self.refuse = False
        self.swallow = False
        self.accepted = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._start(self._accept_loop)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.refuse:
                conn.close()
                continue
            upstream = socket.create_connection(self.target, timeout=5)
            conn.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [conn, upstream]
            self._start(self._pump, conn, upstream, True)
            self._start(self._pump, upstream, conn, False)

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if not (from_client and self.swallow):
                    dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def relay(server: Server) -> Iterator[Relay]:
    r = Relay(server.noise)
    yield r
    r.close()


# ---- the filesystem model, remotely ---------------------------------------------------


class RemoteFileSystemMachine(FileSystemMachine):
    """The stateful filesystem test with every mount on a fresh remote volume."""

    address: ClassVar[str] = ""
    server_key: ClassVar[str] = ""

    def __init__(self) -> None:
        self.volume = fresh_volume("model")
        super().__init__()

    def make_store(self) -> doublecrypt.Store:
        return NetworkStore(
            self.address,
            key=KEY,
            volume=self.volume,
            create=(4096, 2048),
            server_key=self.server_key,
            connect_timeout=5.0,
            io_timeout=10.0,
        )


def test_filesystem_model_remote(server: Server) -> None:
    RemoteFileSystemMachine.address = server.noise
    RemoteFileSystemMachine.server_key = server.server_key
    run_state_machine_as_test(
        RemoteFileSystemMachine,
        settings=settings(
            max_examples=int(os.environ.get("DC_REMOTE_EXAMPLES", "60")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


# ---- channels: XX + known hosts, IK, TLS ----------------------------------------------


def test_first_contact_records_key_and_a_changed_key_is_refused(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    first = start_server(tmp_path / "first")
    try:
        fs = create_fs(first.noise, "tofu", known_hosts=str(known))
        fs.write_bytes("/hello", b"first contact")
        fs.close()
        recorded = KnownHosts(known).lookup(first.noise)
        assert recorded is not None and recorded.hex() == first.server_key
        with open_fs(first.noise, volume="tofu", known_hosts=str(known)) as fs:  # matches
            assert fs.read_bytes("/hello") == b"first contact"
    finally:
        first.stop()
    # Another server (another key) at the same address.
    second = start_server(tmp_path / "second", listen=first.noise)
    try:
        with pytest.raises(errors.HostKeyChangedError) as info:
            open_fs(second.noise, volume="tofu", known_hosts=str(known))
        message = str(info.value)
        assert first.noise in message
        assert fingerprint(bytes.fromhex(first.server_key)) in message
        assert fingerprint(bytes.fromhex(second.server_key)) in message
        key_file = tmp_path / "key"
        key_file.write_bytes(KEY)
        result = cli(
            "--remote",
            second.noise,
            "--known-hosts",
            str(known),
            "--volume",
            "tofu",
            "ls",
            "/",
            "--key-file",
            str(key_file),
            code=5,
        )
        assert "fingerprint" in result.stderr or "key" in result.stderr
    finally:
        second.stop()


def test_pinned_key_uses_ik(server: Server) -> None:
    volume = fresh_volume("ik")
    token = doublecrypt.derive_subkey(KEY, doublecrypt.SUBKEY_SERVER_AUTH)
    static = derive_client_keypair(KEY)
    for hash_name in ("BLAKE2s", "SHA256"):
        with ik_client(server, server.noise, volume, hash_name=hash_name) as client:
            assert client.protocol_name == f"Noise_IK_25519_ChaChaPoly_{hash_name}"
            assert client.session_id is not None and len(client.session_id) == 32
            client.write_blocks([5, 9], b"a" * BS + b"b" * BS)
            client.sync()
            assert client.read_blocks([9, 5]) == b"b" * BS + b"a" * BS
            assert (client.info.block_size, client.info.total_blocks) == (BS, 64)
    with create_fs(server, fresh_volume("ik")) as fs:
        fs.write_bytes("/pinned", b"ik")
        assert fs.read_bytes("/pinned") == b"ik"
    # A pin that is not the server's key: the server cannot read message 1.
    host, port = parse_address(server.noise)
    with pytest.raises(errors.ChannelError, match="pinned server key"):
        BlockClient(
            host,
            port,
            auth_token=token,
            volume=volume,
            client_static=static,
            server_key=bytes(range(32)),
            connect_timeout=5,
        )


def test_tls_with_pinned_certificate(server: Server) -> None:
    assert server.tls is not None and server.tls_fingerprint is not None
    volume = fresh_volume("tls")
    with create_fs(
        server.tls, volume, transport="tls", tls_fingerprint=server.tls_fingerprint
    ) as fs:
        fs.write_bytes("/over-tls", b"x" * 100_000)
    with open_fs(
        server.tls, volume=volume, transport="tls", tls_fingerprint=server.tls_fingerprint
    ) as fs:
        assert fs.read_bytes("/over-tls") == b"x" * 100_000
        fs.fsck()
    with open_fs(server, volume=volume) as fs:  # the same volume over Noise
        assert fs.read_bytes("/over-tls") == b"x" * 100_000
    with pytest.raises(errors.HostKeyChangedError, match="fingerprint"):
        open_fs(server.tls, volume=volume, transport="tls", tls_fingerprint="00" * 32)


def test_wrong_master_key_and_missing_volume(server: Server) -> None:
    volume = fresh_volume("auth")
    create_fs(server, volume).close()
    with pytest.raises(errors.AuthenticationError):
        open_fs(server, OTHER_KEY, volume=volume)
    with pytest.raises(errors.NotFoundError):
        open_fs(server, volume=fresh_volume("missing"))
    with pytest.raises(errors.AlreadyExistsError, match="already holds"):
        create_fs(server, volume)  # never formats over a volume


# ---- losing the connection ----------------------------------------------------------------


def test_dropped_connection_is_retried_once(server: Server, relay: Relay) -> None:
    volume = fresh_volume("drop")
    fs = create_fs(relay.address, volume, server_key=server.server_key)
    store = fs._h._store
    assert isinstance(store, NetworkStore)
    fs.write_bytes("/a", b"a" * 50_000)
    relay.cut()  # dropped between operations: the next batch reconnects
    fs.write_bytes("/b", b"b" * 50_000)
    assert store.client.reconnects >= 1
    relay.refuse = True
    relay.cut()  # and now the retry fails too
    with pytest.raises(errors.StorageIOError) as info:
        fs.write_bytes("/c", b"c" * 50_000)
    cause = info.value.__cause__
    assert isinstance(cause, errors.NetworkError)
    assert "after reconnecting" in str(cause) and relay.address in str(cause)
    relay.refuse = False
    fs.write_bytes("/d", b"d" * 50_000)  # the client recovers
    fs.close()
    with open_fs(server, volume=volume) as fs:  # the last commit, no half commit
        assert fs.listdir("/") == ["a", "b", "d"]
        assert fs.read_bytes("/d") == b"d" * 50_000
        fs.fsck()


def test_unsynced_writes_are_replayed_after_a_reconnect(server: Server, relay: Relay) -> None:
    volume = fresh_volume("replay")

    def client(**kw: Any) -> BlockClient:
        return ik_client(server, relay.address, volume, **kw)

    with client() as c:
        c.write_blocks([1, 2], b"1" * BS + b"2" * BS)
        relay.cut()
        c.sync()  # reconnects, writes 1 and 2 again, then syncs
        assert (c.reconnects, c.replayed_blocks) == (1, 2)
        assert c.read_blocks([1, 2]) == b"1" * BS + b"2" * BS
    with client(replay_limit=0) as c:
        c.write_blocks([3], b"3" * BS)
        relay.cut()
        with pytest.raises(errors.NetworkError, match="cannot vouch"):
            c.sync()
        c.sync()  # the next sync is honest again
        # A write that did not wait, lost on the way: sent again even so.
        relay.swallow = True
        c.write_blocks([4], b"4" * BS, wait=False)
        relay.cut()
        relay.swallow = False
        with pytest.raises(errors.NetworkError, match="too many to write again"):
            c.sync()
        assert c.replayed_blocks == 1
        assert c.read_blocks([3, 4]) == b"3" * BS + b"4" * BS


def test_server_killed_and_restarted_mid_workload(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    volume = "crash"
    fs = create_fs(srv, volume, 32 << 20, io_timeout=5.0, connect_timeout=2.0)
    committed: dict[str, bytes] = {}
    failures: list[BaseException] = []
    after_restart: list[str] = []
    restarted = threading.Event()
    stop = threading.Event()

    def workload() -> None:
        rng = random.Random(7)
        for i in range(100_000):
            if stop.is_set():
                return
            path, data = f"/f{i:05d}", rng.randbytes(rng.randrange(1, 20_000))
            try:
                fs.write_bytes(path, data)
            except errors.DoubleCryptError as exc:  # failing cleanly is allowed
                failures.append(exc)
                time.sleep(0.02)
                continue
            committed[path] = data
            if restarted.is_set():
                after_restart.append(path)

    worker = threading.Thread(target=workload)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(committed) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.stop(signal.SIGKILL)
        srv = start_server(srv.data, listen=srv.noise)
        restarted.set()
        deadline = time.monotonic() + 10
        while len(after_restart) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=30)
    try:
        assert not worker.is_alive()
        unclean = [exc for exc in failures if not isinstance(exc, errors.StorageIOError)]
        assert unclean == []
        assert len(after_restart) >= 10, "the client did not recover after the restart"
        with contextlib.suppress(errors.DoubleCryptError):
            fs.close()
        with open_fs(srv, volume=volume) as fs:
            for path, data in committed.items():
                assert fs.read_bytes(path) == data, path
            fs.fsck()
    finally:
        srv.stop()


# ---- many clients ----------------------------------------------------------------------


def test_fifty_concurrent_clients(server: Server) -> None:
    clients = 50
    seconds = float(os.environ.get("DC_REMOTE_SOAK_SECONDS", "5"))
    errors_seen: list[BaseException] = []
    rounds = [0] * clients
    barrier = threading.Barrier(clients, timeout=60)

    def run(n: int) -> None:
        try:
            rng = random.Random(n)
            with create_fs(server, fresh_volume(f"many{n}-")) as fs:
                barrier.wait()
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    data = rng.randbytes(rng.randrange(1, 20_000))
                    path = f"/file{rounds[n] % 5}"
                    fs.write_bytes(path, data)
                    assert fs.read_bytes(path) == data
                    rounds[n] += 1
                fs.fsck()
        except BaseException as exc:
            errors_seen.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors_seen == []
    assert min(rounds) >= 1, rounds


# ---- the command line ------------------------------------------------------------------


def cli(*args: str, code: int = 0, input: bytes | None = None) -> Result:
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg,unused-ignore]
    else:
        runner = CliRunner()
    result = runner.invoke(
        main,
        list(args),
        input=input,
        prog_name="doublecrypt",
        env={"DOUBLECRYPT_PASSPHRASE": "", "DOUBLECRYPT_DEBUG": ""},
    )
    detail = f"{args}: exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exit_code == code, detail
    assert "Traceback" not in result.stderr + result.stdout, detail
    return result


def test_cli_remote(server: Server, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY.hex() + "\n")
    token_hash = cli("remote", "token-hash", "--key-file", str(key_file)).stdout.strip()
    token = doublecrypt.derive_subkey(KEY, doublecrypt.SUBKEY_SERVER_AUTH)
    assert token_hash == blake3.blake3(bytes(token)).hexdigest()

    known = tmp_path / "known_hosts"
    volume = fresh_volume("cli")
    remote = ["--remote", server.noise, "--volume", volume, "--known-hosts", str(known)]
    keys = ["--key-file", str(key_file)]
    out = cli(*remote, "remote", "init", "--size", "2M", "--block-size", "4K", *keys).stdout
    assert f"created remote://{server.noise}/{volume}" in out and "512 blocks" in out
    assert KnownHosts(known).lookup(server.noise) == bytes.fromhex(server.server_key)
    cli(*remote, "remote", "init", "--size", "2M", *keys, code=4)

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("alpha\n")
    (local / "b.bin").write_bytes(os.urandom(300_000))
    cli(*remote, "put", str(local / "a.txt"), str(local / "b.bin"), "/docs/", *keys)
    assert cli(*remote, "ls", "/docs", *keys).stdout.split() == ["a.txt", "b.bin"]
    assert cli(*remote, "cat", "/docs/a.txt", *keys).stdout == "alpha\n"
    cli(*remote, "get", "/docs/b.bin", str(tmp_path / "back.bin"), *keys)
    assert (tmp_path / "back.bin").read_bytes() == (local / "b.bin").read_bytes()
    cli(*remote, "mkdir", "/old", *keys)
    cli(*remote, "mv", "/docs/a.txt", "/old", *keys)
    cli(*remote, "rm", "/docs/b.bin", *keys)
    listing = json.loads(cli(*remote, "ls", "/old", "--json", *keys).stdout)
    assert [entry["name"] for entry in listing] == ["a.txt"]
    assert json.loads(cli(*remote, "stat", "/old/a.txt", "--json", *keys).stdout)["size"] == 6
    assert json.loads(cli(*remote, "df", "--json", *keys).stdout)["total_blocks"] == 512
    assert "clean" in cli(*remote, "fsck", *keys).stdout
    # Pinned key (Noise IK) instead of known hosts; TLS with its fingerprint.
    pinned = ["--remote", server.noise, "--volume", volume, "--server-key", server.server_key]
    assert cli(*pinned, "cat", "/old/a.txt", *keys).stdout == "alpha\n"
    assert server.tls is not None and server.tls_fingerprint is not None
    over_tls = [
        "--remote",
        server.tls,
        "--volume",
        volume,
        "--tls-fingerprint",
        server.tls_fingerprint,
    ]
    assert cli(*over_tls, "ls", "/", *keys).stdout.split() == ["docs/", "old/"]

    # Failures, each with its exit code and one clear line.
    other = tmp_path / "other"
    other.write_bytes(OTHER_KEY)
    cli(*remote, "ls", "/", "--key-file", str(other), code=5)
    passphrase = tmp_path / "pass"
    passphrase.write_text("secret\n")
    err = cli(*remote, "ls", "/", "--passphrase-file", str(passphrase), code=1).stderr
    assert "--key-file" in err
    cli(*remote, "info", "x.img", code=2)  # image commands other than file ones
    cli("--volume", "v", "ls", "x.img", code=2)  # remote options need --remote
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    err = cli(
        "--remote", f"127.0.0.1:{port}", "--server-key", server.server_key, "ls", "/", *keys, code=8
    ).stderr
    assert f"127.0.0.1:{port}" in err


def test_admin_made_volume_is_formatted_by_remote_init(server: Server, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    token_hash = cli("remote", "token-hash", "--key-file", str(key_file)).stdout.strip()
    volume = fresh_volume("admin")
    cli(
        "volume",
        "create",
        "--data",
        str(server.data),
        volume,
        "--size",
        "1M",
        "--block-size",
        "4K",
        "--token-hash",
        token_hash,
    )
    remote = ["--remote", server.noise, "--volume", volume, "--server-key", server.server_key]
    keys = ["--key-file", str(key_file)]
    cli(*remote, "ls", "/", *keys, code=6)  # blank: not a filesystem yet
    assert (
        "created"
        in cli(*remote, "remote", "init", "--size", "1M", "--block-size", "4K", *keys).stdout
    )
    cli(*remote, "mkdir", "/made", *keys)
    assert cli(*remote, "ls", "/", *keys).stdout.split() == ["made/"]


def test_write_requests_decode_as_protobuf() -> None:
    data = memoryview(os.urandom(3 * 512))
    message = WriteMessage([7, 300, 2**40], data)
    for request_id in (1, 127, 128, 2**63):
        request = pb.Request.FromString(bytes(message.with_id(request_id)))
        assert request.request_id == request_id
        assert list(request.write_blocks.block_ids) == [7, 300, 2**40]
        assert request.write_blocks.data == data


def test_sequential_reads_are_read_ahead(server: Server) -> None:
    store = NetworkStore(
        server.noise,
        key=KEY,
        volume=fresh_volume("ahead"),
        create=(BS, 1024),
        server_key=server.server_key,
    )
    try:
        blocks = {i: os.urandom(BS) for i in range(400)}
        store.write_blocks(list(blocks), b"".join(blocks.values()))
        before = store.client.requests
        for i in range(200):
            assert store.read_blocks([i]) == blocks[i]
        assert store.client.requests - before < 20  # not one round trip per block
        # A write into any window (the one before, the one in use, the one
        # read ahead) is seen by the reads that follow.
        ahead = store._read_ahead
        windows = (ahead.previous, ahead.current, ahead.ahead)
        targets = [window.start + 1 for window in windows if window is not None]
        assert len(targets) == 3
        for block in targets:
            blocks[block] = os.urandom(BS)
            store.write_blocks([block], blocks[block])
        for block in targets:
            assert store.read_blocks([block]) == blocks[block], block
        for i in range(targets[0], 400):
            assert store.read_blocks([i]) == blocks[i], i
        assert store.read_blocks([3, 1]) == blocks[3] + blocks[1]
    finally:
        store.close()


def test_addresses() -> None:
    assert parse_address("127.0.0.1:7450") == ("127.0.0.1", 7450)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert parse_address("example.org", 7450) == ("example.org", 7450)
    assert format_address("::1", 80) == "[::1]:80"
    for bad in ("::1:80", "host:0", "host:x", ":80", "[::1"):
        with pytest.raises(errors.InvalidArgumentError):
            parse_address(bad)


def test_send_buffers_survives_partial_sends() -> None:
    pieces: list[bytes | memoryview] = [os.urandom(n) for n in (2, 70000, 1, 1 << 20, 3) * 200]
    expected = b"".join(pieces)
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    left.settimeout(10)
    received = bytearray()

    def drain() -> None:
        while len(received) < len(expected):
            chunk = right.recv(1 << 16)
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        send_buffers(left, [memoryview(p) if i % 2 else p for i, p in enumerate(pieces)])
        reader.join(10)
    finally:
        left.close()
        right.close()
    assert bytes(received) == expected
