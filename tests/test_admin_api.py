"""The management API end to end: ``doublecrypt serve --admin 127.0.0.1:0``
in a subprocess (tests/netserver.py), driven by the ``doublecrypt admin``
commands (click's CliRunner, real HTTP on loopback) and by httpx with
NcryptfAuth; volumes opened by real remote clients meanwhile.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest
from click.testing import CliRunner, Result

import doublecrypt
from doublecrypt import ncryptf
from doublecrypt.cli import main
from doublecrypt.ncryptf.client import NcryptfAuth
from doublecrypt.net import volumes
from doublecrypt.net.admin_volumes import recover_resizes, resize_volume
from doublecrypt.net.volumes import VolumeStore
from netserver import ServeProcess, start_serve
from redisserver import RedisServer

KEY = bytes(range(32))
BS = 4096
TIMEOUT = 10.0
_names = count(1)


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_names)}-{os.getpid()}"


def token_hash(key: bytes = KEY) -> str:
    return blake3.blake3(
        bytes(doublecrypt.derive_subkey(key, doublecrypt.SUBKEY_SERVER_AUTH))
    ).hexdigest()


def cli(*args: str, code: int = 0) -> Result:
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg,unused-ignore]
    else:
        runner = CliRunner()
    result = runner.invoke(main, list(args), prog_name="doublecrypt", env={"DOUBLECRYPT_DEBUG": ""})
    detail = f"{args}: exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exit_code == code, detail
    assert "Traceback" not in result.stderr + result.stdout, detail
    return result


class Admin:
    """``doublecrypt admin --url ... --token-file ...`` against one server."""

    def __init__(self, server: ServeProcess, token_file: Path) -> None:
        assert server.admin is not None
        self.url = f"http://{server.admin}"
        self.token_file = token_file

    def __call__(self, *args: str, code: int = 0) -> Result:
        return cli(
            "admin", "--url", self.url, "--token-file", str(self.token_file), *args, code=code
        )

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def http(self) -> httpx.Client:
        token = ncryptf.Token.from_json(self.token_file.read_text())
        return httpx.Client(base_url=self.url, auth=NcryptfAuth(token), timeout=TIMEOUT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    srv = start_serve(tmp_path_factory.mktemp("admin") / "data", "--admin", "127.0.0.1:0")
    yield srv
    assert srv.stop() == 0, "the server did not exit cleanly on SIGTERM"


@pytest.fixture(scope="module")
def admin(server: ServeProcess) -> Admin:
    return Admin(server, server.data / "admin" / "admin-token.json")


def open_fs(server: ServeProcess, volume: str, **kw: Any) -> doublecrypt.FileSystem:
    return doublecrypt.open_remote(
        server.noise,
        key=KEY,
        volume=volume,
        server_key=server.server_key,
        connect_timeout=5.0,
        io_timeout=10.0,
        **kw,
    )


def test_bootstrap_token_and_listening_line(server: ServeProcess, admin: Admin) -> None:
    assert server.admin is not None and server.admin.startswith("127.0.0.1:")
    bootstrap = server.data / "admin" / "admin-token.json"
    assert server.info["admin_token_file"] == str(bootstrap)
    for path in (bootstrap, server.data / "admin" / "tokens.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = ncryptf.Token.from_json(bootstrap.read_text())
    assert not token.expired()
    tokens = admin.json("token", "list")
    assert [(t["label"], t["role"], t["expired"]) for t in tokens] == [
        ("bootstrap", "admin", False)
    ]
    with admin.http() as http:
        assert http.get("/v1/whoami").json()["label"] == "bootstrap"
    with httpx.Client(base_url=admin.url, timeout=TIMEOUT) as plain:
        assert plain.get("/v1/health").json()["status"] == "ok"
        assert plain.get("/v1/volumes").status_code == 401
        assert plain.get("/ncryptf/ek").status_code == 200


def test_volume_lifecycle(admin: Admin, server: ServeProcess) -> None:
    name = fresh("life")
    out = admin(
        "volume", "create", name, "--size", "1M", "--block-size", "4K", "--token-hash", token_hash()
    ).stdout
    assert f"created {name}" in out and "256 blocks" in out
    listed = {v["name"]: v for v in admin.json("volume", "list")}
    assert listed[name]["total_blocks"] == 256 and listed[name]["open"] is False
    assert (server.data / "volumes" / f"{name}.img").stat().st_size == 1 << 20
    admin("volume", "create", name, "--size", "1M", "--token-hash", token_hash(), code=4)
    assert "512 blocks" in admin("volume", "resize", name, "--size", "2M").stdout
    assert (server.data / "volumes" / f"{name}.img").stat().st_size == 2 << 20
    assert "128 blocks" in admin("volume", "resize", name, "--size", "512K").stdout  # blank: ok
    usage = admin.json("usage")
    mine = next(v for v in usage["volumes"] if v["name"] == name)
    assert mine["size"] == 512 << 10 and mine["bytes_on_disk"] >= 512 << 10
    assert usage["disk"]["free"] > 0 and usage["total"]["volumes"] >= 1
    admin("volume", "delete", name)
    assert name not in {v["name"] for v in admin.json("volume", "list")}
    admin("volume", "delete", name, code=3)
    admin("volume", "resize", name, "--size", "1M", code=3)
    err = admin(
        "volume", "create", "bad/name", "--size", "1M", "--token-hash", token_hash(), code=1
    )
    assert "invalid volume name" in err.stderr
    admin("volume", "create", fresh("h"), "--size", "1M", "--token-hash", "abcd", code=1)


def test_resize_and_delete_wait_for_clients(admin: Admin, server: ServeProcess) -> None:
    name = fresh("busy")
    fs = open_fs(server, name, create=True, size=1 << 20, block_size=BS)
    try:
        with fs.open("/hello.txt", "wb") as f:
            f.write(b"hello admin\n")
        fs.sync()
        assert (
            admin.json("volume", "list")
            and next(v for v in admin.json("volume", "list") if v["name"] == name)["open"]
        )
        err = admin("volume", "resize", name, "--size", "2M", code=1).stderr
        assert "open by a client" in err
        assert "open by a client" in admin("volume", "delete", name, code=1).stderr
    finally:
        fs.close()
    deadline = time.monotonic() + TIMEOUT  # the server releases the volume after the close
    while next(v for v in admin.json("volume", "list") if v["name"] == name)["open"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # below the filesystem's size: refused even though those blocks were never written
    err = admin("volume", "resize", name, "--size", "64K", code=1).stderr
    assert "holds a filesystem of 256 blocks" in err
    admin("volume", "resize", name, "--size", "2M")  # grow: the filesystem keeps working
    fs = open_fs(server, name)
    try:
        with fs.open("/hello.txt", "rb") as f:
            assert f.read() == b"hello admin\n"
    finally:
        fs.close()


def test_shrink_keeps_written_blocks(admin: Admin, server: ServeProcess) -> None:
    name = fresh("raw")
    admin(
        "volume", "create", name, "--size", "1M", "--block-size", "4K", "--token-hash", token_hash()
    )
    image = server.data / "volumes" / f"{name}.img"
    with image.open("r+b") as f:  # as a client's write of block 200 would leave it
        f.seek(200 * BS + 17)
        f.write(b"\x01")
    err = admin("volume", "resize", name, "--size", "512K", code=1).stderr
    assert "block 200 holds data" in err
    assert "201 blocks" in admin("volume", "resize", name, "--size", str(201 * BS)).stdout
    assert image.stat().st_size == 201 * BS


def test_tokens(admin: Admin, tmp_path: Path) -> None:
    reader_file = tmp_path / "reader.json"
    out = admin(
        "token", "issue", "--role", "read-only", "--label", "ci", "--out", str(reader_file)
    ).stdout
    assert "issued read-only token" in out
    assert stat.S_IMODE(reader_file.stat().st_mode) == 0o600
    reader = Admin.__new__(Admin)
    reader.url, reader.token_file = admin.url, reader_file
    assert isinstance(reader.json("volume", "list"), list)
    err = reader(
        "volume", "create", fresh("ro"), "--size", "1M", "--token-hash", token_hash(), code=5
    )
    assert "read-only" in err.stderr
    reader("token", "issue", code=5)

    printed = json.loads(admin("token", "issue", "--lifetime", "1", "--label", "short").stdout)
    short_file = tmp_path / "short.json"
    short_file.write_text(json.dumps(printed["token"]))
    short = Admin.__new__(Admin)
    short.url, short.token_file = admin.url, short_file
    while time.time() <= printed["expires_at"]:
        time.sleep(0.05)
    assert "expired" in short("volume", "list", code=5).stderr

    reader_id = next(t["id"] for t in admin.json("token", "list") if t["label"] == "ci")
    assert f"revoked token {reader_id}" in admin("token", "revoke", reader_id).stdout
    reader("volume", "list", code=5)
    admin("token", "revoke", reader_id, code=3)
    assert reader_id not in {t["id"] for t in admin.json("token", "list")}


def test_replayed_and_tampered_requests_to_the_api(admin: Admin) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> None:
        request.read()
        sent.append(request)

    with admin.http() as http:
        http.event_hooks["request"].append(record)
        body = {"label": "replay-me", "lifetime": 60}
        assert http.post("/v1/tokens", json=body).status_code == 201
        assert http.post("/v1/tokens", json=body).status_code == 201
    first, second = sent[-2], sent[-1]
    with httpx.Client(base_url=admin.url, timeout=TIMEOUT) as plain:

        def resend(request: httpx.Request, content: bytes) -> httpx.Response:
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            return plain.post(request.url.path, content=content, headers=headers)

        replay = resend(first, first.content)
        assert replay.status_code == 401 and replay.json()["error"] == "replayed"
        frame = bytearray(ncryptf.decode_body(second.content))
        frame[100] ^= 0x40
        tampered = resend(second, ncryptf.encode_body(bytes(frame)))
        assert tampered.status_code == 400 and tampered.json()["error"] == "bad_payload"
    # only the two genuine requests issued tokens
    assert sum(t["label"] == "replay-me" for t in admin.json("token", "list")) == 2


def test_restart_keeps_tokens_and_redis_caches(tmp_path: Path) -> None:
    with RedisServer.start(tmp_path / "redis") as redis_server:
        data = tmp_path / "data"
        args = ("--admin", "127.0.0.1:0", "--redis", redis_server.url)
        first = start_serve(data, *args)
        try:
            admin = Admin(first, data / "admin" / "admin-token.json")
            issued = tmp_path / "issued.json"
            admin("token", "issue", "--label", "kept", "--out", str(issued))
        finally:
            assert first.stop() == 0
        second = start_serve(data, *args)
        try:
            assert "admin_token_file" not in second.info  # a valid admin token exists
            again = Admin(second, issued)
            assert {t["label"] for t in again.json("token", "list")} == {"bootstrap", "kept"}
        finally:
            assert second.stop() == 0


def test_unreachable_server_and_bad_token_file(admin: Admin, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    err = cli(
        "admin",
        "--url",
        f"http://127.0.0.1:{port}",
        "--token-file",
        str(admin.token_file),
        "usage",
        code=8,
    ).stderr
    assert "cannot reach" in err
    cli("admin", "--url", admin.url, "--token-file", str(tmp_path / "none.json"), "usage", code=3)
    stranger = tmp_path / "stranger.json"
    stranger.write_text(ncryptf.Token.generate().to_json())
    cli("admin", "--url", admin.url, "--token-file", str(stranger), "usage", code=5)


@pytest.mark.parametrize("direction", ["grow", "shrink"])
def test_interrupted_resize_is_finished_on_start(tmp_path: Path, direction: str) -> None:
    """A crash between the image change and the metadata change (or the other
    way round) leaves a journal; the next start makes the image match NAME.json."""
    store = VolumeStore(tmp_path)
    store.create("vol", BS, 64, volumes.token_hash(b"t"))
    image = tmp_path / "volumes" / "vol.img"
    journal = tmp_path / "admin" / "resizing" / "vol"
    journal.parent.mkdir(parents=True)
    journal.write_text('{"from": 64, "to": 128}')
    if direction == "grow":  # image extended, metadata not yet: undo
        with image.open("r+b") as f:
            f.truncate(128 * BS)
        expected = 64
    else:  # metadata says 32 blocks, image not truncated yet: finish
        resize_volume(store, "vol", 32)
        with image.open("r+b") as f:
            f.truncate(64 * BS)
        journal.write_text('{"from": 64, "to": 32}')
        expected = 32
    assert recover_resizes(store) == ["vol"]
    assert image.stat().st_size == expected * BS
    assert not journal.exists()
    volume = store.acquire("vol", b"t")  # opens: sizes agree again
    assert volume.total_blocks == expected
    store.release(volume)
