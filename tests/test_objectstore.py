"""Volumes in an object store, against a real SeaweedFS cluster (tests/s3server.py:
master, two volume servers, filer, S3 gateway with signed requests): the
filesystem model, several writers on one volume, replication and a volume
server going away, the CLI, and block servers with an object-store backend."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from test_fs_stateful import FileSystemMachine

import doublecrypt
from doublecrypt import errors
from doublecrypt.net.store import auth_token_hash
from doublecrypt.objectstore import ObjectStore, ObjectVolume, S3Settings
from doublecrypt.objectstore.lease import WriterLease
from doublecrypt.objectstore.s3io import S3IO
from netserver import start_serve
from s3server import SeaweedCluster, require_weed, start_cluster

KEY = bytes(range(32))
_names = itertools.count()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedCluster]:
    require_weed()
    with start_cluster(tmp_path_factory.mktemp("seaweed"), replication="001") as cluster:
        cluster.make_bucket("vols")  # two copies of every object
        cluster.make_bucket("single", replication="000")
        yield cluster


def settings_for(s3: SeaweedCluster) -> dict[str, Any]:
    return {
        "endpoint_url": s3.endpoint_url,
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
        "region": s3.region,
    }


def fresh(bucket: str = "vols") -> str:
    return f"s3://{bucket}/t{next(_names)}-{os.getpid()}"


def create(s3: SeaweedCluster, url: str, size: int = 16 << 20, **kw: Any) -> doublecrypt.FileSystem:
    return doublecrypt.open_object_store(
        url, key=KEY, create=True, size=size, block_size=4096, **settings_for(s3), **kw
    )


def reopen(s3: SeaweedCluster, url: str, **kw: Any) -> doublecrypt.FileSystem:
    kw.setdefault("key", KEY)
    return doublecrypt.open_object_store(url, **settings_for(s3), **kw)


def objects(s3: SeaweedCluster, url: str) -> dict[str, bytes]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = s3.client()
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            found[o["Key"]] = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return found


# ---- one client ----------------------------------------------------------------------


def test_round_trip_layout_and_ciphertext_only(s3: SeaweedCluster) -> None:
    url = fresh()
    secret = b"the plaintext that must never reach the store " * 200
    with create(s3, url) as fs:
        fs.makedirs("/a/b")
        fs.write_bytes("/a/b/secret.txt", secret)
    stored = objects(s3, url)
    prefix = url.removeprefix("s3://vols/")
    meta = json.loads(stored[f"{prefix}/meta.json"])
    assert meta == {
        "format": "doublecrypt-object-store",
        "version": 1,
        "block_size": 4096,
        "total_blocks": 4096,
    }
    blocks = [k for k in stored if k.startswith(f"{prefix}/blocks/")]
    assert len(blocks) >= 6 and all(len(stored[k]) == 4096 for k in blocks)
    assert not any(b"plaintext" in data for data in stored.values())
    with reopen(s3, url, read_only=True) as fs:
        assert fs.read_bytes("/a/b/secret.txt") == secret
        report = fs.fsck()
        assert report.errors == 0


def test_passphrase_lives_in_the_header_object(s3: SeaweedCluster) -> None:
    url = fresh()
    kdf = doublecrypt.KdfParams.minimum()
    fs = doublecrypt.open_object_store(
        url, passphrase="correct horse", create=True, size=8 << 20, kdf=kdf, **settings_for(s3)
    )
    fs.write_bytes("/x", b"y")
    fs.close()
    with doublecrypt.open_object_store(url, passphrase="correct horse", **settings_for(s3)) as fs:
        assert fs.read_bytes("/x") == b"y"
    with pytest.raises(errors.AuthenticationError):
        doublecrypt.open_object_store(url, passphrase="wrong", **settings_for(s3))


def test_failures_are_clear_errors(s3: SeaweedCluster) -> None:
    url = fresh()
    create(s3, url).close()
    with pytest.raises(errors.AlreadyExistsError, match="already exists"):
        create(s3, url)
    with pytest.raises(errors.NotFoundError, match="no volume"):
        reopen(s3, fresh())
    with pytest.raises(errors.AuthenticationError):
        reopen(s3, url, key=bytes(32))
    with pytest.raises(errors.InvalidArgumentError, match="s3://"):
        doublecrypt.open_object_store("vols/x", key=KEY, **settings_for(s3))
    wrong = {**settings_for(s3), "secret_key": "not-the-secret"}
    with pytest.raises(errors.ObjectStoreError, match=r"meta\.json"):
        doublecrypt.open_object_store(url, key=KEY, **wrong)
    away = S3Settings(endpoint_url="http://127.0.0.1:9", connect_timeout=1, max_attempts=2)
    with pytest.raises(errors.ObjectStoreError, match="failed"):  # nothing listens there
        ObjectVolume(url, settings=away)
    # A block replaced in the store: detected, never returned as data.
    with reopen(s3, url) as fs:
        fs.write_bytes("/f", b"intact" * 1000)
    bucket = url.removeprefix("s3://").partition("/")[0]
    client = s3.client()
    keys = sorted(k for k in objects(s3, url) if "/blocks/" in k)
    victim = keys[-1]
    body = bytearray(client.get_object(Bucket=bucket, Key=victim)["Body"].read())
    body[100] ^= 1
    client.put_object(Bucket=bucket, Key=victim, Body=bytes(body))
    with (
        pytest.raises((errors.AuthenticationError, errors.CorruptionError)),
        reopen(s3, url) as fs,
    ):
        fs.fsck()
        fs.read_bytes("/f")


class ObjectStoreMachine(FileSystemMachine):
    """The filesystem model on a fresh object-store volume (every remount
    reopens it), with the engine's write-back cache in front."""

    cluster: ClassVar[SeaweedCluster | None] = None

    def __init__(self) -> None:
        self.url = fresh()
        self.created = False
        super().__init__()

    def make_store(self) -> doublecrypt.Store:
        assert self.cluster is not None
        store = ObjectStore(
            ObjectVolume(
                self.url,
                create=None if self.created else (4096, 2048),
                settings=S3Settings(**settings_for(self.cluster)),
            )
        )
        self.created = True
        return doublecrypt.CachedStore(store, 64)


def test_filesystem_model_on_the_object_store(s3: SeaweedCluster) -> None:
    ObjectStoreMachine.cluster = s3
    run_state_machine_as_test(
        ObjectStoreMachine,
        settings=settings(
            max_examples=int(os.environ.get("DC_OBJECT_STORE_EXAMPLES", "25")),
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


# ---- several writers -------------------------------------------------------------------


def test_two_writers_one_conflict_then_the_retry_succeeds(s3: SeaweedCluster) -> None:
    url = fresh()
    with create(s3, url) as fs:
        fs.write_bytes("/counter", b"0")
    a = reopen(s3, url)
    b = reopen(s3, url)
    with a, b:
        assert b.read_bytes("/counter") == b"0"  # b's view: generation of "0"
        a.write_bytes("/counter", b"1")  # a commits first (and holds the lease a moment)
        with pytest.raises(errors.ConflictError) as caught:
            b.write_bytes("/counter", b"1 from b")
        assert "refresh" in str(caught.value) or "another client" in str(caught.value)
        a.close()  # lets the lease go at once
        assert b.read_bytes("/counter") == b"0"  # the failed commit changed nothing
        b.refresh()
        assert b.read_bytes("/counter") == b"1"
        b.write_bytes("/counter", b"2")
    with reopen(s3, url, read_only=True) as fs:
        assert fs.read_bytes("/counter") == b"2"
        assert fs.fsck().errors == 0


def test_concurrent_writers_lose_no_update(s3: SeaweedCluster) -> None:
    """Three clients increment one counter 8 times each, retrying on
    conflict: every increment lands exactly once, and conflicts happened."""
    url = fresh()
    with create(s3, url) as fs:
        fs.write_bytes("/counter", b"0")
    conflicts = 0
    lock = threading.Lock()
    failures: list[BaseException] = []

    def increment(fs: doublecrypt.FileSystem) -> None:
        nonlocal conflicts
        for _ in range(8):
            for attempt in range(200):
                try:
                    with fs.transaction():
                        value = int(fs.read_bytes("/counter"))
                        fs.write_bytes("/counter", str(value + 1).encode())
                        fs.write_bytes(f"/log-{value + 1}", b"")
                    break
                except errors.ConflictError:
                    with lock:
                        conflicts += 1
                    time.sleep(0.02 * (1 + attempt % 5))
                    fs.refresh()
            else:
                raise AssertionError("never got through")

    def client() -> None:
        try:
            with reopen(s3, url) as fs:
                increment(fs)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    with reopen(s3, url, read_only=True) as fs:
        assert fs.read_bytes("/counter") == b"24"
        assert sorted(n for n in fs.listdir("/") if n.startswith("log-")) == sorted(
            f"log-{i}" for i in range(1, 25)
        )
        assert fs.fsck().errors == 0
    assert conflicts > 0


def test_retry_on_conflict_helper(s3: SeaweedCluster) -> None:
    url = fresh()
    with create(s3, url) as fs:
        fs.write_bytes("/n", b"0")
    a, b = reopen(s3, url), reopen(s3, url)
    with a, b:
        b.read_bytes("/n")
        a.write_bytes("/n", b"5")
        a.close()

        def add_one(fs: doublecrypt.FileSystem) -> int:
            value = int(fs.read_bytes("/n")) + 1
            fs.write_bytes("/n", str(value).encode())
            return value

        assert b.retry_on_conflict(add_one) == 6


def test_readers_see_only_committed_generations(s3: SeaweedCluster) -> None:
    url = fresh()
    with create(s3, url) as fs:
        fs.write_bytes("/state", b"committed 1")
    with reopen(s3, url) as writer, reopen(s3, url, read_only=True) as reader:
        with writer.transaction():
            writer.write_bytes("/state", b"uncommitted" * 3000)  # spills out of nothing yet
            writer.write_bytes("/more", os.urandom(600_000))  # > the cache: blocks go out
            reader.refresh()
            assert reader.read_bytes("/state") == b"committed 1"
            assert not reader.exists("/more")
        reader.refresh()
        assert reader.read_bytes("/state") == b"uncommitted" * 3000
        assert reader.exists("/more")


def test_a_dead_writers_lease_expires(s3: SeaweedCluster) -> None:
    """A client that took the lease and died blocks writers until the lease
    expires (by the service's clock), then the next writer takes over."""
    url = fresh()
    create(s3, url).close()
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    io = S3IO(s3.client(), bucket)
    dead = WriterLease(io, f"{prefix}/writer.json", lease_seconds=3.0, idle_release=0)
    dead.ensure(lambda: True)  # ... and never writes or releases again
    with reopen(s3, url) as fs:
        with pytest.raises(errors.ConflictError, match="another client is writing"):
            fs.write_bytes("/x", b"blocked")
        time.sleep(3.5)
        fs.refresh()
        fs.write_bytes("/x", b"after expiry")
        assert fs.read_bytes("/x") == b"after expiry"
    with pytest.raises(errors.ConflictError, match="lost"):
        dead._renewed = 0.0  # due for renewal: the CAS finds someone else's lease
        dead.ensure(lambda: True)


# ---- replication and a volume server going away -----------------------------------------


def test_reads_continue_with_a_volume_server_down_when_replicated(s3: SeaweedCluster) -> None:
    url = fresh("vols")
    data = os.urandom(2 << 20)
    with create(s3, url) as fs:
        fs.write_bytes("/big", data)
    s3.wait_replicated("vols", copies=2)
    s3.kill_volume_server(0)
    try:
        with reopen(s3, url, read_only=True, cache_bytes=0) as fs:
            assert fs.read_bytes("/big") == data
            assert fs.fsck().errors == 0
    finally:
        s3.start_volume_server(0)


def test_without_replication_a_lost_server_is_a_clear_error(s3: SeaweedCluster) -> None:
    url = fresh("single")
    data = os.urandom(1 << 20)
    with create(s3, url) as fs:
        fs.write_bytes("/big", data)
    holders = [
        i for i in range(2) if any(v.get("Collection") == "single" for v in s3.volume_status(i))
    ]
    assert holders
    for i in holders:
        s3.kill_volume_server(i)
    try:
        with (
            pytest.raises(errors.StorageIOError, match="object store"),
            reopen(s3, url, read_only=True, cache_bytes=0) as fs,
        ):
            fs.read_bytes("/big")
    finally:
        for i in holders:
            s3.start_volume_server(i)
    with reopen(s3, url, read_only=True) as fs:  # mounts again once it is back
        assert fs.read_bytes("/big") == data


# ---- command line and block servers -------------------------------------------------------


def cli_env(s3: SeaweedCluster) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": s3.region,
        "AWS_ENDPOINT_URL": s3.endpoint_url,
    }


def test_cli_store_option(s3: SeaweedCluster, tmp_path: Path) -> None:
    url = fresh()
    key = tmp_path / "vol.key"
    key.write_bytes(KEY)
    local = tmp_path / "note.txt"
    local.write_text("hello object store\n")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "doublecrypt", "--store", url, *args],
            env=cli_env(s3),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    assert (
        "created"
        in run("init", "--size", "8M", "--block-size", "4K", "--key-file", str(key)).stdout
    )
    run("mkdir", "/docs", "--key-file", str(key))
    run("put", str(local), "/docs/note.txt", "--key-file", str(key))
    assert "note.txt" in run("ls", "/docs", "--key-file", str(key)).stdout
    assert run("cat", "/docs/note.txt", "--key-file", str(key)).stdout == "hello object store\n"
    run("fsck", "--key-file", str(key))
    again = run("init", "--size", "8M", "--key-file", str(key), check=False)
    assert again.returncode == 4, again.stderr
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "doublecrypt",
            "--store",
            fresh(),
            "ls",
            "/",
            "--key-file",
            str(key),
        ],
        env=cli_env(s3),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 3 and "no volume" in missing.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "doublecrypt", "--store", "vols/x", "ls", "/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "s3://" in bad.stderr


def test_two_servers_in_front_of_one_bucket(s3: SeaweedCluster, tmp_path: Path) -> None:
    """Stateless block servers on one object store: a volume created through
    one is served by the other, and two clients committing through different
    servers get one conflict, then the retry succeeds."""
    backend = fresh()
    env = cli_env(s3)
    first = start_serve(tmp_path / "one", "--backend", backend, env=env)
    second = start_serve(tmp_path / "two", "--backend", backend, env=env)
    try:
        fs = doublecrypt.open_remote(
            first.noise,
            key=KEY,
            volume="shared",
            create=True,
            size=16 << 20,
            block_size=4096,
            server_key=first.server_key,
        )
        fs.write_bytes("/hello", b"through the first server")
        fs.close()
        a = doublecrypt.open_remote(
            first.noise, key=KEY, volume="shared", server_key=first.server_key
        )
        b = doublecrypt.open_remote(
            second.noise, key=KEY, volume="shared", server_key=second.server_key
        )
        with a, b:
            assert b.read_bytes("/hello") == b"through the first server"
            a.write_bytes("/from-a", b"a")
            with pytest.raises(errors.ConflictError):
                b.write_bytes("/from-b", b"b")
            a.close()
            b.refresh()
            b.write_bytes("/from-b", b"b")
            assert sorted(b.listdir("/")) == ["from-a", "from-b", "hello"]
            b.fsck()
        assert any("/shared/blocks/" in k for k in objects(s3, backend))
    finally:
        first.stop()
        second.stop()

    def volume(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "doublecrypt", "volume", *args, "--backend", backend],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    token_hash = auth_token_hash(KEY)
    volume("create", "second", "--size", "1M", "--block-size", "4K", "--token-hash", token_hash)
    listed = json.loads(volume("list", "--json").stdout)
    assert [(v["name"], v["block_size"]) for v in listed] == [("second", 4096), ("shared", 4096)]
    volume("remove", "second")
    assert [v["name"] for v in json.loads(volume("list", "--json").stdout)] == ["shared"]
    assert not any("/second/" in k for k in objects(s3, backend))


def test_mount_an_object_store_volume(
    s3: SeaweedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``doublecrypt --store s3://... mount``: the Python engine serves it."""
    import test_mount as tm

    if tm._MISSING is not None:
        pytest.skip(f"no FUSE here: {tm._MISSING}")
    url = fresh()
    create(s3, url).close()
    key = tmp_path / "vol.key"
    key.write_bytes(KEY)
    for name, value in cli_env(s3).items():
        monkeypatch.setenv(name, value)
    with tm.Mount(None, tmp_path / "mnt", key, global_options=("--store", url)) as mount:
        (mount.mountpoint / "docs").mkdir()
        (mount.mountpoint / "docs" / "a.txt").write_bytes(b"through FUSE")
        mount.unmount()
    with reopen(s3, url, read_only=True) as fs:
        assert fs.read_bytes("/docs/a.txt") == b"through FUSE"
        assert fs.fsck().errors == 0


def test_dropped_connections_keep_the_last_commit(s3: SeaweedCluster) -> None:
    """Connections to the store dropped and refused in the middle of a commit:
    a clear error, the last commit intact, the lease not kept, and the same
    handle goes on once the store is reachable again."""
    from test_remote import Relay

    url = fresh()
    create(s3, url).close()
    relay = Relay(s3.endpoint_url.removeprefix("http://"))
    settings_via_relay = S3Settings(
        **{**settings_for(s3), "endpoint_url": f"http://{relay.address}"},
        connect_timeout=2,
        read_timeout=5,
        max_attempts=2,
    )
    try:
        fs = doublecrypt.FileSystem(
            doublecrypt.CachedStore(
                ObjectStore(ObjectVolume(url, settings=settings_via_relay)), 256
            ),
            KEY,
        )
        with fs:
            fs.write_bytes("/kept", b"committed before the outage")
            relay.refuse = True
            relay.cut()
            with pytest.raises(errors.StorageIOError, match="object store"):
                fs.write_bytes("/lost", os.urandom(3 << 20))
            relay.refuse = False
            with reopen(s3, url) as other:  # the lease was not kept by the failed commit
                time.sleep(2.5)  # ... once its holder has been idle (idle_release)
                other.write_bytes("/other", b"another writer")
            fs.refresh()
            assert fs.read_bytes("/kept") == b"committed before the outage"
            assert not fs.exists("/lost")
            assert fs.read_bytes("/other") == b"another writer"
            fs.write_bytes("/after", b"back")
        with reopen(s3, url, read_only=True) as fs:
            assert sorted(fs.listdir("/")) == ["after", "kept", "other"]
            report = fs.fsck()
            assert report.errors == 0
    finally:
        relay.close()
