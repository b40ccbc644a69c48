"""The fsspec protocol ``doublecrypt`` on real images: fsspec.open and
fsspec.filesystem, pandas CSV and Parquet through storage_options, pyarrow
through the filesystem object, fsspec's own abstract test suite, errors,
secrets kept out of fsspec's cache, one open volume shared by every object
(and thread) naming it, transactions, and a volume on a block server."""

from __future__ import annotations

import errno
import pickle
import posixpath
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractGetTests,
    AbstractOpenTests,
    AbstractPipeTests,
    AbstractPutTests,
)

import doublecrypt
from doublecrypt import errors
from doublecrypt.fsspec_filesystem import DoubleCryptFileSystem
from doublecrypt.shared_volumes import SHARED_VOLUMES
from netserver import start_serve

PASSPHRASE = "correct horse battery staple"
SIZE = 32 << 20
# Long and distinctive: no chance of turning up in ciphertext by accident.
MARKER = "plaintext-that-must-never-reach-the-image"


def make_image(path: Path, *, key: bytes | None = None) -> Path:
    """A fresh image, opened by PASSPHRASE (cheap KDF) or by ``key``."""
    if key is None:
        kdf = doublecrypt.KdfParams.minimum()
        doublecrypt.open_image(path, passphrase=PASSPHRASE, create=True, size=SIZE, kdf=kdf).close()
    else:
        doublecrypt.open_image(path, key=key, create=True, size=SIZE).close()
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "vol.img")


@pytest.fixture
def options(image: Path) -> dict[str, Any]:
    return {"image": str(image), "passphrase": PASSPHRASE}


@pytest.fixture
def fs(options: dict[str, Any]) -> DoubleCryptFileSystem:
    filesystem: DoubleCryptFileSystem = fsspec.filesystem("doublecrypt", **options)
    return filesystem


@pytest.fixture(autouse=True)
def close_cached_filesystems() -> Iterator[None]:
    """Each test ends with its cached filesystems closed (images synced)."""
    yield
    for instance in list(DoubleCryptFileSystem._cache.values()):
        instance.close()


def reopen(image: Path) -> doublecrypt.FileSystem:
    return doublecrypt.open_image(image, passphrase=PASSPHRASE, read_only=True)


# ---- fsspec.open and the registry ------------------------------------------------------


def test_protocol_is_registered_by_entry_point() -> None:
    assert fsspec.get_filesystem_class("doublecrypt") is DoubleCryptFileSystem


def test_open_round_trip(image: Path, options: dict[str, Any]) -> None:
    csv = f"name,value\n{MARKER},1\nother,2\n"
    with fsspec.open("doublecrypt:///data/x.csv", "w", **options) as f:
        f.write(csv)
    with fsspec.open("doublecrypt:///data/x.csv", "r", **options) as f:
        assert f.read() == csv
    # No host part: "data" is the top directory either way.
    with fsspec.open("doublecrypt://data/x.csv", "rb", **options) as f:
        assert f.read() == csv.encode()
    fsspec.filesystem("doublecrypt", **options).close()
    with reopen(image) as volume:
        assert volume.read_text("/data/x.csv") == csv


def test_image_never_holds_the_plaintext(image: Path, options: dict[str, Any]) -> None:
    frame = pd.DataFrame({"label": [f"{MARKER}-{i}" for i in range(500)], "n": range(500)})
    frame.to_csv("doublecrypt:///clear.csv", storage_options=options, index=False)
    frame.to_parquet("doublecrypt:///clear.parquet", storage_options=options, compression=None)
    with fsspec.open("doublecrypt:///notes.txt", "w", **options) as f:
        f.write(MARKER * 100)
    fsspec.filesystem("doublecrypt", **options).close()
    raw = image.read_bytes()
    assert MARKER.encode() not in raw
    assert b"label,n" not in raw
    with reopen(image) as volume:
        assert MARKER.encode() in volume.read_bytes("/clear.parquet")
        assert volume.read_text("/clear.csv").startswith(f"label,n\n{MARKER}-0,0\n")


# ---- the filesystem object --------------------------------------------------------------


def test_listing_and_info(fs: DoubleCryptFileSystem) -> None:
    fs.pipe("/a/one.bin", b"1" * 10)
    fs.pipe("/a/b/two.bin", b"2" * 20)
    assert fs.ls("/a", detail=False) == ["/a/b", "/a/one.bin"]
    by_name = {entry["name"]: entry for entry in fs.ls("doublecrypt:///a/")}
    assert by_name["/a/b"]["type"] == "directory"
    assert by_name["/a/one.bin"] | {"mtime": 0, "ctime": 0, "ino": 0} == {
        "name": "/a/one.bin",
        "size": 10,
        "type": "file",
        "mtime": 0,
        "ctime": 0,
        "mode": 0o100644,
        "ino": 0,
    }
    assert fs.ls("/a/one.bin", detail=False) == ["/a/one.bin"]
    assert fs.info("/a/b/two.bin")["size"] == 20
    assert fs.info("/")["type"] == "directory"
    assert fs.find("/", detail=False) == ["/a/b/two.bin", "/a/one.bin"]
    assert fs.glob("/a/**/*.bin") == ["/a/b/two.bin", "/a/one.bin"]
    assert fs.du("/a") == 30
    assert [top for top, _, _ in fs.walk("/")] == ["/", "/a", "/a/b"]
    assert fs.isdir("/a/b") and not fs.isfile("/a/b")
    assert fs.isfile("/a/one.bin") and not fs.isdir("/a/one.bin")
    assert fs.exists("/a") and not fs.exists("/nothing") and not fs.exists("/a/one.bin/x")
    assert fs.fsid.startswith("doublecrypt-")
    assert fs.unstrip_protocol("/a/one.bin") == "doublecrypt:///a/one.bin"


def test_directories(fs: DoubleCryptFileSystem) -> None:
    fs.mkdir("/p/q/r")  # create_parents defaults to True
    assert fs.isdir("/p/q/r")
    with pytest.raises(FileExistsError):
        fs.mkdir("/p/q/r")
    with pytest.raises(FileNotFoundError):
        fs.mkdir("/x/y", create_parents=False)
    fs.makedirs("/p/q/r", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs("/p/q/r")
    with pytest.raises(OSError) as info:
        fs.rmdir("/p/q")
    assert info.value.errno == errno.ENOTEMPTY
    fs.rmdir("/p/q/r")
    assert not fs.exists("/p/q/r")


def test_remove_move_copy(fs: DoubleCryptFileSystem) -> None:
    fs.pipe({"/t/a.txt": b"alpha", "/t/sub/b.txt": b"beta", "/t/sub/c.txt": b"gamma"})
    with pytest.raises(IsADirectoryError):
        fs.rm("/t/sub")
    fs.rm("/t/sub/c.txt")
    fs.rm_file("/t/sub/b.txt")
    assert fs.ls("/t/sub") == []

    fs.mv("/t/a.txt", "/t/renamed.txt")
    assert fs.cat("/t/renamed.txt") == b"alpha" and not fs.exists("/t/a.txt")
    fs.mv("/t/renamed.txt", "/t/sub")  # an existing directory: moved into it
    assert fs.cat("/t/sub/renamed.txt") == b"alpha"
    fs.mv("/t/sub", "/moved/deeper")  # whole directories, parents made
    assert fs.find("/moved", detail=False) == ["/moved/deeper/renamed.txt"]

    fs.cp_file("/moved/deeper/renamed.txt", "/copies/one.txt")
    fs.copy("/moved", "/copies/tree", recursive=True)
    assert fs.cat("/copies/one.txt") == b"alpha"
    assert fs.cat("/copies/tree/deeper/renamed.txt") == b"alpha"
    with pytest.raises(errors.InvalidArgumentError):
        fs.cp_file("/copies/one.txt", "/copies/one.txt")

    fs.rm("/copies", recursive=True)
    assert not fs.exists("/copies")


def test_contents_and_ranges(fs: DoubleCryptFileSystem) -> None:
    data = bytes(range(256)) * 40
    fs.pipe_file("/r.bin", data)
    assert fs.cat_file("/r.bin") == data
    assert fs.cat_file("/r.bin", 10, 20) == data[10:20]
    assert fs.cat_file("/r.bin", -5) == data[-5:]
    assert fs.cat_file("/r.bin", 100, -100) == data[100:-100]
    assert fs.cat_file("/r.bin", 5000, 10**9) == data[5000:]
    assert fs.cat_file("/r.bin", 20, 10) == b""
    assert fs.cat_ranges(["/r.bin", "/r.bin"], [0, 7], [3, 9]) == [data[:3], data[7:9]]
    assert fs.head("/r.bin", 4) == data[:4] and fs.tail("/r.bin", 4) == data[-4:]
    with pytest.raises(FileExistsError):
        fs.pipe_file("/r.bin", b"new", mode="create")
    fs.pipe_file("/fresh.bin", b"new", mode="create")
    assert fs.cat("/fresh.bin") == b"new"
    assert fs.read_text("/fresh.bin") == "new"


def test_touch_and_modified(fs: DoubleCryptFileSystem) -> None:
    fs.touch("/t/empty")
    assert fs.cat("/t/empty") == b""
    fs.pipe("/t/full", b"keep")
    before = fs.modified("/t/full")
    assert before.tzinfo is not None
    time.sleep(0.01)
    fs.touch("/t/full", truncate=False)
    assert fs.cat("/t/full") == b"keep"
    assert fs.modified("/t/full") > before
    fs.touch("/t/full")
    assert fs.cat("/t/full") == b""
    with pytest.raises(NotImplementedError):  # the format keeps no birth time
        fs.created("/t/full")


def test_buffered_files_larger_than_a_block(fs: DoubleCryptFileSystem) -> None:
    data = bytes(range(251)) * 20_000  # ~5 MiB, a prime-sized pattern
    block = 1 << 20
    with fs.open("/big.bin", "wb", block_size=block) as f:
        for start in range(0, len(data), 300_000):
            f.write(data[start : start + 300_000])
        assert f.tell() == len(data)
    assert fs.size("/big.bin") == len(data)
    with fs.open("/big.bin", "rb", block_size=block) as f:
        assert f.size == len(data)
        f.seek(3_000_001)
        assert f.read(10) == data[3_000_001:3_000_011]
        f.seek(-7, 2)
        assert f.read() == data[-7:]
        f.seek(0)
        assert f.read() == data
    with fs.open("/big.bin", "rb", cache_type="none") as f:
        assert f.read(5) == data[:5]


def test_append_and_exclusive_modes(fs: DoubleCryptFileSystem) -> None:
    fs.pipe("/log.txt", b"one\n")
    with fs.open("/log.txt", "ab") as f:
        assert f.tell() == 4
        f.write(b"two\n")
    with fs.open("/log.txt", "a") as f:
        f.write("three\n")
    assert fs.cat("/log.txt") == b"one\ntwo\nthree\n"
    with pytest.raises(FileExistsError):
        fs.open("/log.txt", "xb")
    with fs.open("/new.txt", "xb") as f:
        f.write(b"x")
    assert fs.cat("/new.txt") == b"x"
    with pytest.raises(errors.InvalidArgumentError):
        fs.open("/log.txt", "r+b")


def test_missing_paths_raise_file_not_found(fs: DoubleCryptFileSystem) -> None:
    fs.mkdir("/dir")
    calls: list[Callable[[], object]] = [
        lambda: fs.info("/missing"),
        lambda: fs.ls("/missing"),
        lambda: fs.cat_file("/missing"),
        lambda: fs.open("/missing", "rb"),
        lambda: fs.rm_file("/missing"),
        lambda: fs.rm("/missing"),
        lambda: fs.rmdir("/missing"),
        lambda: fs.mv("/missing", "/elsewhere"),
        lambda: fs.cp_file("/missing", "/elsewhere"),
        lambda: fs.modified("/missing"),
        lambda: fs.size("/missing"),
    ]
    for call in calls:
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert isinstance(info.value, errors.DoubleCryptError)
        assert info.value.errno == errno.ENOENT
    with pytest.raises(IsADirectoryError):
        fs.open("/dir", "rb")
    with pytest.raises(IsADirectoryError):
        fs.cat_file("/dir")
    assert not fs.exists("/elsewhere")


def test_transaction_commits_all_files_at_once(fs: DoubleCryptFileSystem) -> None:
    with fs.transaction:
        for i in range(3):
            with fs.open(f"/batch/{i}.txt", "wb") as f:
                f.write(b"x" * i)
        assert not any(fs.exists(f"/batch/{i}.txt") for i in range(3))
    assert fs.ls("/batch", detail=False) == [f"/batch/{i}.txt" for i in range(3)]
    assert fs.cat("/batch/2.txt") == b"xx"

    with pytest.raises(KeyError), fs.transaction:
        with fs.open("/batch/0.txt", "wb") as f:
            f.write(b"replaced")
        with fs.open("/batch/new.txt", "wb") as f:
            f.write(b"new")
        raise KeyError("abandon")
    assert fs.ls("/batch", detail=False) == [f"/batch/{i}.txt" for i in range(3)]
    assert fs.cat("/batch/0.txt") == b""


# ---- secrets, sharing, life cycle -----------------------------------------------------------


def test_wrong_passphrase_or_key(image: Path, options: dict[str, Any]) -> None:
    with pytest.raises(errors.AuthenticationError):
        fsspec.filesystem("doublecrypt", image=str(image), passphrase="wrong")
    fs = fsspec.filesystem("doublecrypt", **options)
    fs.pipe("/secret.txt", b"s")
    # The volume is open now; a wrong secret still opens nothing.
    with pytest.raises(errors.AuthenticationError):
        fsspec.filesystem("doublecrypt", image=str(image), passphrase="wrong")
    with pytest.raises(errors.AuthenticationError):
        fsspec.filesystem("doublecrypt", image=str(image), key=bytes(32))
    with pytest.raises(errors.InvalidArgumentError):
        fsspec.filesystem("doublecrypt", image=str(image))
    with pytest.raises(errors.InvalidArgumentError):
        fsspec.filesystem("doublecrypt", image=str(image), passphrase="x", key=bytes(32))
    with pytest.raises(errors.InvalidArgumentError):
        fsspec.filesystem("doublecrypt", image=str(image), key="not hex")
    with pytest.raises(errors.InvalidArgumentError):
        fsspec.filesystem("doublecrypt", image=str(image), passphrse=PASSPHRASE)
    with pytest.raises(FileNotFoundError):
        fsspec.filesystem("doublecrypt", image=str(image) + ".missing", passphrase="p")


def test_secrets_stay_out_of_the_cache(image: Path, options: dict[str, Any]) -> None:
    fs = fsspec.filesystem("doublecrypt", **options)
    assert fsspec.filesystem("doublecrypt", **options) is fs  # fsspec's instance cache
    assert "passphrase" not in fs.storage_options
    for text in (
        repr(fs.storage_options),
        fs.to_json(),
        fs._fs_token,
        repr(DoubleCryptFileSystem._cache),
    ):
        assert PASSPHRASE not in text
    assert PASSPHRASE.encode() not in pickle.dumps(fs)
    assert fs.storage_options["key_digest"] != PASSPHRASE

    key = bytes(range(32))
    keyed = make_image(image.with_name("keyed.img"), key=key)
    by_bytes = fsspec.filesystem("doublecrypt", image=str(keyed), key=key)
    by_hex = fsspec.filesystem("doublecrypt", image=str(keyed), key=key.hex())
    assert by_hex is by_bytes  # the same key, the same digest
    assert key.hex() not in by_bytes.to_json() and key not in pickle.dumps(by_bytes)


def test_pickled_filesystem_reopens_only_in_this_process(options: dict[str, Any]) -> None:
    fs = fsspec.filesystem("doublecrypt", **options)
    fs.pipe("/p.txt", b"pickled")
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.cat("/p.txt") == b"pickled"
    with fs.open("/p.txt", "rb") as f:
        assert pickle.loads(pickle.dumps(f)).read() == b"pickled"
    blob = pickle.dumps(fs)
    fs.close()
    # The digest alone never opens a volume that is not open in this process.
    with pytest.raises(errors.InvalidArgumentError):
        pickle.loads(blob)


def test_one_volume_shared_by_objects_and_threads(image: Path, options: dict[str, Any]) -> None:
    fs = fsspec.filesystem("doublecrypt", **options)
    assert SHARED_VOLUMES.open_count() == 1
    # Another passphrase of the same volume shares it too.
    fs.volume.add_passphrase("second", doublecrypt.KdfParams.minimum())
    other = fsspec.filesystem("doublecrypt", image=str(image), passphrase="second")
    assert other is not fs and other.volume is fs.volume

    found: dict[int, Any] = {}

    def work(n: int) -> None:
        mine = fsspec.filesystem("doublecrypt", **options)  # one object per thread
        for i in range(20):
            mine.pipe(f"/threads/{n}/{i}", f"{n}:{i}".encode())
        found[n] = mine

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert len({id(mine) for mine in found.values()} | {id(fs)}) == 5
    assert all(mine.volume is fs.volume for mine in found.values())
    assert SHARED_VOLUMES.open_count() == 1
    assert len(fs.find("/threads")) == 80
    for mine in found.values():  # objects made on other threads are not in this cache
        mine.close()
    other.close()
    assert SHARED_VOLUMES.open_count() == 1
    fs.close()
    assert SHARED_VOLUMES.open_count() == 0


def test_close_syncs_and_releases(image: Path, options: dict[str, Any]) -> None:
    with fsspec.filesystem("doublecrypt", **options) as fs:
        fs.pipe("/kept.txt", b"kept")
    assert SHARED_VOLUMES.open_count() == 0
    with pytest.raises(errors.InvalidArgumentError):
        fs.ls("/")
    with reopen(image) as volume:
        assert volume.read_bytes("/kept.txt") == b"kept"
    again = fsspec.filesystem("doublecrypt", **options)
    assert again is not fs and again.cat("/kept.txt") == b"kept"


def test_read_only(image: Path, options: dict[str, Any]) -> None:
    with fsspec.filesystem("doublecrypt", **options) as fs:
        fs.pipe("/ro.txt", b"read me")
    ro = fsspec.filesystem("doublecrypt", **options, read_only=True)
    assert ro.cat("/ro.txt") == b"read me"
    writes: list[Callable[[], object]] = [
        lambda: ro.pipe("/x", b"x"),
        lambda: ro.open("/x", "wb"),
        lambda: ro.rm("/ro.txt"),
        lambda: ro.mkdir("/d"),
        lambda: ro.touch("/ro.txt"),
        lambda: ro.mv("/ro.txt", "/y"),
    ]
    for write in writes:
        with pytest.raises(OSError) as info:
            write()
        assert info.value.errno == errno.EROFS
    # Open read-only in this process: a writer must wait for it to close.
    with pytest.raises(errors.ReadOnlyError):
        fsspec.filesystem("doublecrypt", **options)
    ro.close()
    assert fsspec.filesystem("doublecrypt", **options).cat("/ro.txt") == b"read me"
    # A read-only object on a volume open for writing still refuses writes.
    with pytest.raises(errors.ReadOnlyError):
        fsspec.filesystem("doublecrypt", **options, read_only=True).pipe("/z", b"z")


# ---- pandas and pyarrow -------------------------------------------------------------------------


def sample_frame(rows: int = 2000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": [f"city-{i % 37}" for i in range(rows)],
            "day": range(rows),
            "temp": [round(i * 0.25 - 40, 2) for i in range(rows)],
        }
    )


def test_pandas_csv_and_parquet(options: dict[str, Any]) -> None:
    frame = sample_frame()
    frame.to_csv("doublecrypt:///pandas/data.csv", storage_options=options, index=False)
    back = pd.read_csv("doublecrypt:///pandas/data.csv", storage_options=options)
    pd.testing.assert_frame_equal(back, frame)
    frame.to_parquet("doublecrypt:///pandas/data.parquet", storage_options=options)
    pd.testing.assert_frame_equal(
        pd.read_parquet("doublecrypt:///pandas/data.parquet", storage_options=options), frame
    )
    compressed = "doublecrypt:///pandas/data.csv.gz"
    frame.to_csv(compressed, storage_options=options, index=False, compression="gzip")
    pd.testing.assert_frame_equal(pd.read_csv(compressed, storage_options=options), frame)


def test_pyarrow_through_the_filesystem(fs: DoubleCryptFileSystem) -> None:
    table = pa.Table.from_pandas(sample_frame(), preserve_index=False)
    pq.write_table(table, "/arrow/table.parquet", filesystem=fs, row_group_size=300)
    assert pq.read_table("/arrow/table.parquet", filesystem=fs).equals(table)
    assert pq.ParquetFile(fs.open("/arrow/table.parquet")).metadata.num_row_groups == 7
    pq.write_to_dataset(table, "/arrow/dataset", partition_cols=["city"], filesystem=fs)
    assert len(fs.ls("/arrow/dataset")) == 37
    back = pq.read_table("/arrow/dataset", filesystem=fs).to_pandas()
    assert sorted(back["day"]) == list(range(2000))


# ---- a volume on a block server ------------------------------------------------------------------


def test_remote_volume(tmp_path: Path) -> None:
    server = start_serve(tmp_path / "srv")
    try:
        key = bytes(range(7, 39))
        with doublecrypt.open_remote(
            server.noise, key=key, create=True, size=8 << 20, server_key=server.server_key
        ):
            pass
        remote = {"remote": server.noise, "server_key": server.server_key, "key": key.hex()}
        frame = sample_frame(200)
        frame.to_parquet("doublecrypt:///r/frame.parquet", storage_options=remote)
        pd.testing.assert_frame_equal(
            pd.read_parquet("doublecrypt:///r/frame.parquet", storage_options=remote), frame
        )
        with pytest.raises(errors.InvalidArgumentError):
            fsspec.filesystem("doublecrypt", remote=server.noise, passphrase=PASSPHRASE)
        fsspec.filesystem("doublecrypt", **remote).close()
        assert SHARED_VOLUMES.open_count() == 0
    finally:
        assert server.stop() == 0


# ---- fsspec's own test suite ------------------------------------------------------------


# Bases in two groups, so each line can carry its ignore (fsspec is untyped).
class _CopyGetPut(AbstractCopyTests, AbstractGetTests, AbstractPutTests):  # type: ignore[misc]
    pass


class _OpenPipe(AbstractFixtures, AbstractOpenTests, AbstractPipeTests):  # type: ignore[misc]
    pass


class TestFsspecAbstractSuite(_CopyGetPut, _OpenPipe):
    """fsspec.tests.abstract: copy, get, put, open and pipe on one image."""

    @pytest.fixture(scope="class")
    @classmethod
    def fs(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoubleCryptFileSystem]:
        key = bytes(range(32, 64))
        image = make_image(tmp_path_factory.mktemp("abstract") / "vol.img", key=key)
        # Outside the instance cache, which the autouse fixture empties per test.
        filesystem = DoubleCryptFileSystem(image=str(image), key=key, skip_instance_cache=True)
        yield filesystem
        filesystem.close()

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join

    @pytest.fixture
    def fs_path(self) -> str:
        return "/abstract"
