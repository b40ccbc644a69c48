"""The Python filesystem API end to end: images, file objects, errors,
transactions, threads, tampering and scale."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import doublecrypt
from doublecrypt import errors
from memstores import DictStore

KEY = bytes(range(32))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return tmp_path / "vol.img"


@pytest.fixture
def fs(image: Path) -> Iterator[doublecrypt.FileSystem]:
    with doublecrypt.open_image(image, key=KEY, create=True, size=8 << 20, block_size=4096) as f:
        yield f


def test_image_round_trip(image: Path) -> None:
    with doublecrypt.open_image(image, key=KEY, create=True, size=4 << 20, block_size=4096) as fs:
        fs.makedirs("/a/b")
        fs.write_bytes("/a/b/hello.txt", b"hello")
        with fs.open("/a/notes.txt", "w") as f:
            f.write("line 1\nline 2\n")
    assert image.stat().st_size == 4 << 20
    with doublecrypt.open_image(image, key=KEY) as fs:
        assert fs.read_bytes("/a/b/hello.txt") == b"hello"
        assert fs.read_text("/a/notes.txt").splitlines() == ["line 1", "line 2"]
        assert fs.listdir("/a") == ["b", "notes.txt"]
        assert [e.name for e in fs.scandir("/a")] == ["b", "notes.txt"]
        assert list(fs.walk("/")) == [
            ("/", ["a"], []),
            ("/a", ["b"], ["notes.txt"]),
            ("/a/b", [], ["hello.txt"]),
        ]
        report = fs.fsck()
        assert (report.files, report.directories, report.errors) == (2, 2, 0)


def test_wrong_key_leaves_image_untouched(image: Path) -> None:
    with doublecrypt.open_image(image, key=KEY, create=True, size=1 << 20, block_size=4096) as fs:
        fs.write_bytes("/x", b"secret")
    before = image.read_bytes()
    with pytest.raises(errors.AuthenticationError):
        doublecrypt.open_image(image, key=bytes(32))
    assert image.read_bytes() == before
    with doublecrypt.open_image(image, key=KEY, read_only=True) as fs:
        assert fs.read_bytes("/x") == b"secret"
        with pytest.raises(errors.ReadOnlyError):
            fs.write_bytes("/y", b"no")
    assert image.read_bytes() == before


def test_image_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        doublecrypt.open_image(tmp_path / "missing.img", key=KEY)
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(errors.CorruptionError):
        doublecrypt.open_image(junk, key=KEY)
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.open_image(tmp_path / "n.img", key=KEY, create=True)
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.open_image(tmp_path / "k.img", key=b"short", create=True, size=1 << 20)
    assert not (tmp_path / "k.img").exists()
    existing = tmp_path / "e.img"
    existing.write_bytes(b"")
    with pytest.raises(errors.AlreadyExistsError):
        doublecrypt.open_image(existing, key=KEY, create=True, size=1 << 20)


def test_truncated_image_is_refused(image: Path) -> None:
    with doublecrypt.open_image(image, key=KEY, create=True, size=1 << 20, block_size=4096) as fs:
        fs.write_bytes("/x", b"data")
    with open(image, "r+b") as f:
        f.truncate((1 << 20) - 100)
    with pytest.raises(errors.CorruptionError):
        doublecrypt.open_image(image, key=KEY)
    with open(image, "r+b") as f:
        f.truncate(8192)
    with pytest.raises(errors.CorruptionError):
        doublecrypt.open_image(image, key=KEY)


def test_file_objects(fs: doublecrypt.FileSystem) -> None:
    with fs.open("/f.bin", "wb") as f:
        assert isinstance(f, io.BufferedWriter)
        f.write(b"0123456789")
        f.write(b"abc")
    with fs.open("/f.bin", "rb") as f:
        assert isinstance(f, io.BufferedReader)
        assert f.read(4) == b"0123"
        f.seek(-3, io.SEEK_END)
        assert f.read() == b"abc"
        buf = bytearray(5)
        f.seek(2)
        assert f.readinto(buf) == 5 and buf == b"23456"
        assert f.tell() == 7
    with fs.open("/f.bin", "ab") as f:
        f.write(b"!")
    with fs.open("/f.bin", "r+b") as f:
        f.seek(1)
        f.write(b"XY")
        f.seek(0)
        assert f.read() == b"0XY3456789abc!"
        f.truncate(4)
    assert fs.read_bytes("/f.bin") == b"0XY3"
    with pytest.raises(FileExistsError):
        fs.open("/f.bin", "xb")
    with pytest.raises(FileNotFoundError):
        fs.open("/nope", "rb")
    with pytest.raises(IsADirectoryError):
        fs.open("/", "rb")
    with pytest.raises(ValueError):
        fs.open("/f.bin", "rw")
    with fs.open("/f.bin", "rb") as f, pytest.raises(io.UnsupportedOperation):
        f.write(b"x")


def test_big_file_with_holes(fs: doublecrypt.FileSystem) -> None:
    chunk = fs.statvfs().chunk_size
    data = os.urandom(3 * chunk + 123)
    with fs.open("/big", "wb") as f:
        f.seek(10 * chunk + 7)
        f.write(data)
    st = fs.stat("/big")
    assert st.size == 10 * chunk + 7 + len(data)
    assert st.blocks == 4  # the hole takes no blocks
    back = fs.read_bytes("/big")
    assert back[: 10 * chunk + 7] == bytes(10 * chunk + 7)
    assert back[10 * chunk + 7 :] == data
    fs.truncate("/big", 5)
    assert fs.read_bytes("/big") == bytes(5)
    assert fs.stat("/big").blocks == 0
    fs.fsck()


def test_path_errors_map_to_builtin_exceptions(fs: doublecrypt.FileSystem) -> None:
    fs.write_bytes("/file", b"x")
    fs.mkdir("/dir")
    fs.write_bytes("/dir/inner", b"y")
    with pytest.raises(FileNotFoundError):
        fs.stat("/missing")
    with pytest.raises(NotADirectoryError):
        fs.mkdir("/file/sub")
    with pytest.raises(FileExistsError):
        fs.mkdir("/dir")
    fs.mkdir("/dir", exist_ok=True)
    with pytest.raises(IsADirectoryError):
        fs.remove("/dir")
    with pytest.raises(NotADirectoryError):
        fs.rmdir("/file")
    with pytest.raises(OSError) as info:
        fs.rmdir("/dir")
    assert info.value.errno == 39  # ENOTEMPTY
    with pytest.raises(OSError) as info:
        fs.mkdir("/" + "n" * 256)
    assert info.value.errno == 36  # ENAMETOOLONG
    for bad in ["relative", "/a//b", "/.", "/..", "/x/../y", "/nul\0"]:
        with pytest.raises(ValueError):
            fs.mkdir(bad)
    with pytest.raises(errors.InvalidArgumentError):
        fs.rename("/dir", "/dir/inside")
    assert fs.exists("/file") and not fs.exists("/file/x") and fs.is_dir("/dir")


def test_rename_replaces_like_posix(fs: doublecrypt.FileSystem) -> None:
    fs.write_bytes("/a", b"A")
    fs.write_bytes("/b", b"B")
    fs.rename("/a", "/b")
    assert fs.read_bytes("/b") == b"A" and not fs.exists("/a")
    fs.makedirs("/d1/sub")
    fs.mkdir("/d2")
    fs.rename("/d1", "/d2")  # an empty directory target is replaced
    assert fs.listdir("/d2") == ["sub"]
    fs.mkdir("/d3")
    fs.write_bytes("/d3/x", b"")
    with pytest.raises(errors.DirectoryNotEmptyError):
        fs.rename("/d2", "/d3")
    assert fs.fsck().errors == 0


def test_transactions(fs: doublecrypt.FileSystem) -> None:
    before = fs.statvfs().generation
    with fs.transaction():
        for i in range(100):
            fs.write_bytes(f"/f{i}", b"x" * i)
    assert fs.statvfs().generation == before + 1
    with pytest.raises(RuntimeError), fs.transaction():
        fs.write_bytes("/gone", b"never")
        fs.remove("/f1")
        raise RuntimeError("roll back")
    assert not fs.exists("/gone") and fs.exists("/f1")
    assert fs.statvfs().generation == before + 1
    fs.fsck()


def test_no_space_keeps_committed_state(tmp_path: Path) -> None:
    with doublecrypt.open_image(
        tmp_path / "s.img", key=KEY, create=True, size=256 * 4096, block_size=4096
    ) as fs:
        fs.write_bytes("/keep", b"committed")
        with pytest.raises(errors.NoSpaceError) as info:
            fs.write_bytes("/huge", os.urandom(2 << 20))
        assert info.value.errno == 28
        assert fs.read_bytes("/keep") == b"committed"
        assert not fs.exists("/huge")
        fs.fsck()
        fs.write_bytes("/after", b"still works")
    with doublecrypt.open_image(tmp_path / "s.img", key=KEY) as fs:
        assert fs.read_bytes("/after") == b"still works"
        fs.fsck()


def test_shared_between_threads(fs: doublecrypt.FileSystem) -> None:
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            fs.mkdir(f"/t{n}")
            for i in range(30):
                data = os.urandom(100 + i * 50)
                fs.write_bytes(f"/t{n}/{i}", data)
                assert fs.read_bytes(f"/t{n}/{i}") == data
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(fs.listdir("/")) == ["t0", "t1", "t2", "t3"]
    fs.fsck()


def test_custom_store_failures_surface_as_errors() -> None:
    class Flaky(DictStore):
        fail = False

        def write_from(self, ids: list[int], data: memoryview) -> None:
            if self.fail:
                raise OSError(5, "disk on fire")
            super().write_from(ids, data)

    blocks: dict[int, bytes] = {}
    store = Flaky(blocks, 4096, 512)
    with doublecrypt.FileSystem.format(store, KEY) as fs:
        fs.write_bytes("/ok", b"fine")
        store.fail = True
        with pytest.raises(errors.StorageIOError) as info:
            fs.write_bytes("/bad", b"x" * 10000)
        assert "disk on fire" in str(info.value)
        store.fail = False
        assert fs.read_bytes("/ok") == b"fine"
        assert not fs.exists("/bad")
    with doublecrypt.FileSystem(Flaky(blocks, 4096, 512), KEY) as fs:
        assert fs.read_bytes("/ok") == b"fine"
        fs.fsck()


def test_cached_store_batches_io() -> None:
    blocks: dict[int, bytes] = {}
    inner = DictStore(blocks, 4096, 4096)
    with doublecrypt.FileSystem.format(doublecrypt.CachedStore(inner, 256), KEY) as fs:
        writes_before = inner.writes
        with fs.transaction():
            for i in range(50):
                fs.write_bytes(f"/f{i}", os.urandom(3000))
            assert inner.writes == writes_before  # nothing leaves the cache before the commit
        # The commit's 50+ blocks went out in a few batched calls; its root
        # pointer was written through at once (a shared store sees the commit).
        assert 0 < inner.writes - writes_before <= 4
        assert max(blocks) > 50
        writes_before_sync = inner.writes
        fs.sync()
        assert inner.writes == writes_before_sync and inner.syncs > 0
    with doublecrypt.FileSystem(DictStore(blocks, 4096, 4096), KEY) as fs:
        assert len(fs.listdir("/")) == 50
        fs.fsck()


def test_large_files_renamed_and_removed_inside_a_transaction(fs: doublecrypt.FileSystem) -> None:
    chunk = fs.statvfs().chunk_size
    big = os.urandom(12 * chunk + 5)  # more extents than fit inline: an extent tree
    with fs.transaction():
        fs.mkdir("/d")
        fs.write_bytes("/d/big", big)
        fs.rename("/d/big", "/d/renamed")
        with fs.open("/d/renamed", "r+b") as f:
            f.seek(3 * chunk)
            f.write(b"patched")
        fs.rename("/d", "/moved")
        fs.write_bytes("/gone", big)
        fs.remove("/gone")
    expected = bytearray(big)
    expected[3 * chunk : 3 * chunk + 7] = b"patched"
    assert fs.read_bytes("/moved/renamed") == bytes(expected)
    assert not fs.exists("/gone")
    report = fs.fsck()
    assert report.leaked_blocks == 0
    with fs.transaction():
        fs.truncate("/moved/renamed", 2 * chunk)  # back to inline extents
        fs.rename("/moved/renamed", "/small")
    assert fs.read_bytes("/small") == bytes(expected[: 2 * chunk])
    fs.fsck()


def test_kept_extent_maps_follow_every_change(fs: doublecrypt.FileSystem) -> None:
    """Reads keep the extent maps of large files between calls; every way of
    changing a file (or rolling a change back) must be seen by the next read."""
    chunk = fs.statvfs().chunk_size
    size = 20 * chunk  # an extent tree, not inline extents
    contents = {f"/f{i}": os.urandom(size) for i in range(6)}  # more files than kept maps
    for path, data in contents.items():
        fs.write_bytes(path, data)

    def check_all() -> None:
        for path, data in contents.items():
            for c in (0, 7, 19, 3, 5, 2, 12, 9):  # out of order; covers every change below
                with fs.open(path, "rb") as f:
                    f.seek(c * chunk)
                    assert f.read(100) == data[c * chunk : c * chunk + 100], (path, c)

    def warm(path: str) -> None:  # its map is kept when the change comes
        with fs.open(path, "rb") as f:
            f.seek(12 * chunk)
            f.read(10)

    check_all()
    warm("/f0")
    patched = bytearray(contents["/f0"])
    patched[5 * chunk : 5 * chunk + 4] = b"new!"
    with fs.open("/f0", "r+b") as f:
        f.seek(5 * chunk)
        f.write(b"new!")
    contents["/f0"] = bytes(patched)
    check_all()

    warm("/f1")
    with pytest.raises(RuntimeError), fs.transaction():
        with fs.open("/f1", "r+b") as f:
            f.seek(2 * chunk)
            f.write(b"rolled back")
        assert fs.read_bytes("/f1")[2 * chunk : 2 * chunk + 11] == b"rolled back"
        raise RuntimeError("roll back")
    check_all()

    warm("/f2")
    fs.remove("/f2")
    contents["/f2"] = os.urandom(size)
    fs.write_bytes("/f2", contents["/f2"])
    check_all()
    warm("/f3")
    fs.rename("/f3", "/f3-renamed")
    contents["/f3-renamed"] = contents.pop("/f3")
    warm("/f4")
    fs.truncate("/f4", 9 * chunk + 1)
    contents["/f4"] = contents["/f4"][: 9 * chunk + 1] + bytes(size - 9 * chunk - 1)
    fs.truncate("/f4", size)  # the cut-off range reads back as zeros
    check_all()
    for path, data in contents.items():
        assert fs.read_bytes(path) == data
    fs.fsck()


def test_refresh_follows_commits_of_another_handle() -> None:
    """Two handles on one shared store: refresh() moves the reader to the
    writer's newest generation, caches and kept maps included."""
    blocks: dict[int, bytes] = {}
    writer = doublecrypt.FileSystem.format(
        doublecrypt.CachedStore(DictStore(blocks, 4096, 2048), 64), KEY
    )
    chunk = writer.statvfs().chunk_size
    first = os.urandom(30 * chunk)
    writer.write_bytes("/big", first)
    reader = doublecrypt.FileSystem(
        doublecrypt.CachedStore(DictStore(blocks, 4096, 2048), 64), KEY, read_only=True
    )
    with writer, reader:
        assert reader.read_bytes("/big") == first
        generation = reader.statvfs().generation
        reader.refresh()  # nothing new: a no-op
        assert reader.statvfs().generation == generation
        second = os.urandom(30 * chunk)
        writer.write_bytes("/big", second)
        writer.mkdir("/new")
        assert not reader.exists("/new")  # still the generation it read
        reader.refresh()
        assert reader.exists("/new")
        assert reader.read_bytes("/big") == second
        assert reader.statvfs().generation == writer.statvfs().generation
        with pytest.raises(errors.InvalidArgumentError, match="transaction"), writer.transaction():
            writer.refresh()
        writer.refresh()
        reader.fsck()
