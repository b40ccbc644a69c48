"""``doublecrypt mount``: a real image mounted through FUSE in a subprocess,
with real tools run against it (cp, diff, tar, git, sqlite, rsync), errno
checks, a concurrent writer and reader, read-only mode, a full volume, and
after every unmount an fsck of the image and a comparison through the
Python API.

Needs /dev/fuse, fusermount3 and root (as on the development machines); the
whole module is skipped otherwise. Every wait has a timeout, and a mount
that outlives its test is killed and lazily unmounted."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import doublecrypt
from netserver import start_serve

REPO = Path(__file__).resolve().parent.parent
SOURCE_TREE = REPO / "pycore" / "doublecrypt"
KEY = bytes(range(32))
MOUNT_TIMEOUT = 15.0  # seconds for a mount to appear or a daemon to exit
TOOL_TIMEOUT = 60.0


def _fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if os.geteuid() != 0:
        return "FUSE mounts in these tests need root"
    if shutil.which("fusermount3") is None:
        return "fusermount3 (Debian fuse3) is not installed"
    try:
        import doublecrypt.mount  # loads mfusepy and libfuse 3, or says why not
    except doublecrypt.errors.UnsupportedError as exc:
        return str(exc)
    return None


_MISSING = _fuse_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"no FUSE here: {_MISSING}")


# ---- mounting -----------------------------------------------------------------------


def _wait_until(condition: object, what: str, timeout: float = MOUNT_TIMEOUT) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def doublecrypt_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "doublecrypt", *map(str, args)]


def _in_mount_table(mountpoint: Path) -> bool:
    """os.path.ismount is False for a dead FUSE mount (its stat fails with
    ENOTCONN), so look in the mount table."""
    with open("/proc/self/mounts") as table:
        return any(line.split()[1] == str(mountpoint) for line in table)


def _force_unmount(mountpoint: Path) -> None:
    if os.path.ismount(mountpoint) or _in_mount_table(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], timeout=10, check=False)


class Mount:
    """``doublecrypt [GLOBAL] mount IMAGE MOUNTPOINT --foreground`` in a
    subprocess (no IMAGE with ``--remote`` among the global options)."""

    def __init__(
        self,
        image: Path | None,
        mountpoint: Path,
        key_file: Path,
        *extra: str,
        global_options: tuple[str, ...] = (),
    ) -> None:
        self.image = image or mountpoint
        self.mountpoint = mountpoint
        self.log = mountpoint.with_suffix(".log")
        mountpoint.mkdir(exist_ok=True)
        target = [] if image is None else [image]
        if "--engine" not in extra:
            extra = ("--engine", "python", *extra)  # this file tests the Python engine
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                doublecrypt_command(
                    *global_options,
                    "mount",
                    *target,
                    mountpoint,
                    "--foreground",
                    "--key-file",
                    key_file,
                    *extra,
                ),
                stdout=log,
                stderr=log,
            )
        try:
            _wait_until(self._ready, f"the mount on {mountpoint}")
        except BaseException:
            self.kill()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"mount exited {self.process.returncode}: {self.output()}")
        return os.path.ismount(self.mountpoint)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def unmount(self, *, use_signal: bool = False) -> None:
        """A clean unmount: the daemon syncs and closes the image, then exits 0."""
        if self.process.poll() == 0 and not os.path.ismount(self.mountpoint):
            return  # already done
        if use_signal:
            self.process.send_signal(signal.SIGTERM)
        else:
            subprocess.run(["fusermount3", "-u", str(self.mountpoint)], timeout=10, check=True)
        code = self.process.wait(timeout=MOUNT_TIMEOUT)
        assert code == 0, self.output()
        assert not os.path.ismount(self.mountpoint)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=MOUNT_TIMEOUT)
        _force_unmount(self.mountpoint)

    def __enter__(self) -> Mount:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def make_image(tmp_path: Path, size: int = 64 << 20, block_size: int = 65536) -> Path:
    image = tmp_path / "vol.img"
    doublecrypt.open_image(
        image, key=KEY, create=True, size=size, block_size=block_size, threads=1
    ).close()
    return image


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "vol.key"
    path.write_bytes(KEY)
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path)


@pytest.fixture
def mounted(image: Path, key_file: Path, tmp_path: Path) -> Iterator[Mount]:
    with Mount(image, tmp_path / "mnt", key_file) as mount:
        yield mount
        mount.unmount()
    _fsck(image)


def _fsck(image: Path) -> doublecrypt.FsckReport:
    with doublecrypt.open_image(image, key=KEY, read_only=True) as fs:
        return fs.fsck()


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{cmd}: {result.stdout}{result.stderr}"
    return result.stdout


def _same_tree(a: Path, b: Path) -> None:
    run("diff", "-r", a, b)


def _compare_with_image(image: Path, local: Path, inner: str) -> int:
    """Every file under ``local`` equals its copy at ``inner`` in the image,
    read through the Python API; returns how many files were compared."""
    count = 0
    with doublecrypt.open_image(image, key=KEY, read_only=True) as fs:
        for path in local.rglob("*"):
            if path.is_file():
                relative = path.relative_to(local).as_posix()
                assert fs.read_bytes(f"{inner}/{relative}") == path.read_bytes(), relative
                count += 1
    return count


# ---- real tools ---------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return run("git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args, cwd=repo)


def _sqlite_work(db: Path) -> None:
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)")
        with conn:  # a transaction that commits
            conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(2000)])
        with pytest.raises(sqlite3.IntegrityError), conn:  # one that rolls back
            conn.execute("INSERT INTO t VALUES (5000, 'x')")
            conn.execute("INSERT INTO t VALUES (1, 'duplicate')")
        conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()
    # The sqlite3 command line tool on the same database, in WAL mode too.
    out = run(
        "sqlite3",
        db,
        "PRAGMA journal_mode=WAL; BEGIN; DELETE FROM t WHERE n >= 1000;"
        " COMMIT; SELECT count(*) FROM t;",
    )
    assert out.split() == ["wal", "1000"]


def test_real_tools_then_remount_and_compare(image: Path, key_file: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file) as mount:
        run("cp", "-a", SOURCE_TREE, mnt / "cp")
        _same_tree(SOURCE_TREE, mnt / "cp")

        archive = tmp_path / "src.tar"
        run("tar", "-cf", archive, "-C", SOURCE_TREE.parent, SOURCE_TREE.name)
        (mnt / "tar").mkdir()
        run("tar", "-xf", archive, "-C", mnt / "tar")
        _same_tree(SOURCE_TREE, mnt / "tar" / SOURCE_TREE.name)
        run("tar", "-cf", mnt / "again.tar", "-C", mnt / "tar", SOURCE_TREE.name)

        repo = mnt / "repo"
        repo.mkdir()
        _git(repo, "init", "-q")
        run("cp", "-a", SOURCE_TREE / "mount", repo / "mount")
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", "first")
        (repo / "mount" / "__init__.py").write_text("changed\n")
        _git(repo, "commit", "-q", "-a", "-m", "second")
        _git(repo, "fsck", "--strict")

        _sqlite_work(mnt / "db.sqlite")

        run("rsync", "-a", f"{SOURCE_TREE}/", mnt / "rsync")
        _same_tree(SOURCE_TREE, mnt / "rsync")
        run("rsync", "-a", "--delete", f"{mnt / 'rsync'}/", tmp_path / "back")
        _same_tree(SOURCE_TREE, tmp_path / "back")
        mount.unmount()

    report = _fsck(image)
    assert report.errors == 0 and report.leaked_blocks == 0
    assert _compare_with_image(image, SOURCE_TREE, "/cp") > 20

    # Again, mounted in the background: the command returns once it is ready.
    result = subprocess.run(
        doublecrypt_command("mount", image, mnt, "--key-file", key_file, "--engine", "python"),
        capture_output=True,
        text=True,
        timeout=MOUNT_TIMEOUT,
        check=False,
    )
    try:
        assert result.returncode == 0, result.stderr
        assert os.path.ismount(mnt)
        found = re.search(r"process (\d+)", result.stderr)
        assert found, result.stderr
        daemon = int(found.group(1))
        _same_tree(SOURCE_TREE, mnt / "tar" / SOURCE_TREE.name)
        assert "second" in _git(mnt / "repo", "log", "--format=%s")
        assert run("sqlite3", mnt / "db.sqlite", "SELECT count(*) FROM t;").strip() == "1000"
        run("tar", "-tf", mnt / "again.tar")
        subprocess.run(["umount", str(mnt)], timeout=10, check=True)
        _wait_until(lambda: not Path(f"/proc/{daemon}").exists(), "the daemon to exit")
    finally:
        _force_unmount(mnt)
    report = _fsck(image)
    assert report.errors == 0 and report.leaked_blocks == 0
    assert _compare_with_image(image, SOURCE_TREE, "/rsync") > 20


# ---- semantics and errno ----------------------------------------------------------------


def _errno_of(call: object, *args: object) -> int:
    assert callable(call)
    with pytest.raises(OSError) as caught:
        call(*args)
    assert caught.value.errno is not None
    return caught.value.errno


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def _renameat2(old: Path, new: Path, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, bytes(old), AT_FDCWD, bytes(new), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(old))


def test_errno_and_attributes(mounted: Mount) -> None:
    mnt = mounted.mountpoint
    (mnt / "dir" / "sub").mkdir(parents=True)
    (mnt / "file").write_bytes(b"hello")

    assert _errno_of(open, mnt / "missing") == errno.ENOENT
    assert _errno_of(os.stat, mnt / "missing" / "x") == errno.ENOENT
    assert _errno_of(os.mkdir, mnt / "dir") == errno.EEXIST
    assert _errno_of(os.open, mnt / "file", os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    assert _errno_of(os.rmdir, mnt / "dir") == errno.ENOTEMPTY
    assert _errno_of(open, mnt / "dir", "wb") == errno.EISDIR
    assert _errno_of(os.unlink, mnt / "dir") == errno.EISDIR
    assert _errno_of(os.mkdir, mnt / "file" / "x") == errno.ENOTDIR
    assert _errno_of(os.listdir, mnt / "file") == errno.ENOTDIR
    assert _errno_of(os.rmdir, mnt / "file") == errno.ENOTDIR
    assert _errno_of(os.rename, mnt / "file", mnt / "dir") == errno.EISDIR
    (mnt / "other").mkdir()
    assert _errno_of(os.rename, mnt / "other", mnt / "dir") == errno.ENOTEMPTY
    assert _errno_of(os.symlink, "file", mnt / "link") == errno.EOPNOTSUPP
    assert _errno_of(os.link, mnt / "file", mnt / "hard") == errno.EOPNOTSUPP
    assert _errno_of(os.mkfifo, mnt / "fifo") == errno.EOPNOTSUPP
    assert _errno_of(os.open, mnt / ("n" * 300), os.O_CREAT | os.O_WRONLY) == errno.ENAMETOOLONG

    # RENAME_NOREPLACE refuses to replace; plain rename replaces.
    (mnt / "second").write_bytes(b"second")
    assert _errno_of(_renameat2, mnt / "second", mnt / "file", RENAME_NOREPLACE) == errno.EEXIST
    assert (mnt / "file").read_bytes() == b"hello"
    assert _errno_of(_renameat2, mnt / "second", mnt / "file", RENAME_EXCHANGE) == errno.EINVAL
    _renameat2(mnt / "second", mnt / "third", RENAME_NOREPLACE)
    os.rename(mnt / "third", mnt / "file")
    assert (mnt / "file").read_bytes() == b"second"
    assert not (mnt / "third").exists()

    # Sizes, offsets, holes, truncation, modes and nanosecond mtimes.
    with open(mnt / "sparse", "wb") as f:
        f.seek(3 << 20)
        f.write(b"end")
    assert os.stat(mnt / "sparse").st_size == (3 << 20) + 3
    with open(mnt / "sparse", "rb") as f:
        assert f.read(4096) == bytes(4096)
        f.seek(3 << 20)
        assert f.read() == b"end"
    fd = os.open(mnt / "sparse", os.O_RDWR)
    try:
        assert os.pwrite(fd, b"middle", 1 << 20) == 6
        assert os.pread(fd, 6, 1 << 20) == b"middle"
        os.ftruncate(fd, 10)
        os.fsync(fd)
    finally:
        os.close(fd)
    assert (mnt / "sparse").read_bytes() == bytes(10)
    os.chmod(mnt / "file", 0o600)
    os.utime(mnt / "file", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    st = os.stat(mnt / "file")
    assert (st.st_mode & 0o7777, st.st_mtime_ns, st.st_size) == (
        0o600,
        1_600_000_000_123_456_789,
        6,
    )
    os.chown(mnt / "file", 1234, 1234)  # accepted, not kept: no owners in the format
    assert os.stat(mnt / "file").st_uid == os.getuid()
    assert sorted(os.listdir(mnt)) == ["dir", "file", "other", "sparse"]
    inode = os.stat(mnt / "dir").st_ino
    vfs = os.statvfs(mnt)
    assert vfs.f_bsize == 65536 and 0 < vfs.f_bfree < vfs.f_blocks and vfs.f_namemax == 255

    # An open file that is unlinked stays readable until closed.
    with open(mnt / "dir" / "sub" / "open", "w+b") as f:
        f.write(b"still here")
        f.flush()
        os.unlink(mnt / "dir" / "sub" / "open")
        f.seek(0)
        assert f.read() == b"still here"
    # libfuse keeps it as .fuse_hidden* until the release, which the kernel
    # sends after close() returns: wait for it before the directory can go.
    _wait_until(lambda: not os.listdir(mnt / "dir" / "sub"), "the unlinked file's release")
    os.rmdir(mnt / "dir" / "sub")

    mounted.unmount()
    with doublecrypt.open_image(mounted.image, key=KEY, read_only=True) as fs:
        assert fs.stat("/dir").inode == inode  # the volume's own inode numbers
        assert fs.stat("/file").mtime_ns == 1_600_000_000_123_456_789
        assert fs.read_bytes("/file") == b"second"


def test_concurrent_writer_and_reader(mounted: Mount) -> None:
    """One thread appends numbered records while another reads the growing
    file; every byte the reader sees is the byte written there."""
    path = mounted.mountpoint / "log"
    record = 4096
    count = 400
    path.write_bytes(b"")
    done = threading.Event()
    problems: list[str] = []

    def expected(index: int) -> bytes:
        return (b"%08d" % index) * (record // 8)

    def writer() -> None:
        try:
            with open(path, "ab") as f:
                for i in range(count):
                    f.write(expected(i))
                    f.flush()
        except OSError as exc:
            problems.append(f"writer: {exc}")
        finally:
            done.set()

    def reader() -> None:
        seen = 0
        deadline = time.monotonic() + TOOL_TIMEOUT
        with open(path, "rb", buffering=0) as f:
            while seen < count and time.monotonic() < deadline:
                data = f.read(record)
                if len(data) < record:  # not written yet: read it again
                    f.seek(seen * record)
                    if done.is_set() and os.stat(path).st_size == seen * record:
                        break
                    continue
                if data != expected(seen):
                    problems.append(f"record {seen} differs")
                    return
                seen += 1
        if seen != count:
            problems.append(f"reader saw {seen} of {count} records")

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TOOL_TIMEOUT)
        assert not thread.is_alive()
    assert problems == []
    assert path.read_bytes() == b"".join(expected(i) for i in range(count))


def test_read_only_mount_refuses_changes(image: Path, key_file: Path, tmp_path: Path) -> None:
    with doublecrypt.open_image(image, key=KEY) as fs:
        fs.write_bytes("/kept", b"kept")
        fs.mkdir("/dir")
    generation = doublecrypt.open_image(image, key=KEY, read_only=True)
    with generation as fs:
        before = fs.statvfs().generation
    with Mount(image, tmp_path / "mnt", key_file, "--read-only") as mount:
        mnt = mount.mountpoint
        assert (mnt / "kept").read_bytes() == b"kept"
        assert _errno_of(open, mnt / "kept", "r+b") == errno.EROFS
        assert _errno_of(open, mnt / "new", "wb") == errno.EROFS
        assert _errno_of(os.mkdir, mnt / "d2") == errno.EROFS
        assert _errno_of(os.unlink, mnt / "kept") == errno.EROFS
        assert _errno_of(os.rmdir, mnt / "dir") == errno.EROFS
        assert _errno_of(os.rename, mnt / "kept", mnt / "moved") == errno.EROFS
        assert _errno_of(os.utime, mnt / "kept") == errno.EROFS
        assert _errno_of(os.chmod, mnt / "kept", 0o600) == errno.EROFS
        mount.unmount(use_signal=True)  # SIGTERM unmounts cleanly too
    with doublecrypt.open_image(image, key=KEY, read_only=True) as fs:
        assert fs.statvfs().generation == before  # nothing was written
        fs.fsck()


def test_full_volume_gives_enospc(tmp_path: Path, key_file: Path) -> None:
    image = make_image(tmp_path, size=256 * 4096, block_size=4096)
    with Mount(image, tmp_path / "mnt", key_file) as mount:
        mnt = mount.mountpoint
        chunk = os.urandom(256 << 10)
        with pytest.raises(OSError) as caught, open(mnt / "big", "wb") as f:
            for _ in range(16):  # 4 MiB into a 1 MiB volume
                f.write(chunk)
                f.flush()
        assert caught.value.errno == errno.ENOSPC
        os.unlink(mnt / "big")  # the space comes back
        (mnt / "small").write_bytes(b"fits")
        mount.unmount()
    report = _fsck(image)
    assert report.errors == 0 and report.files == 1


def test_mount_errors_are_reported_before_detaching(
    image: Path, key_file: Path, tmp_path: Path
) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(bytes(32))

    def mount(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            doublecrypt_command("mount", *args, "--engine", "python"),
            capture_output=True,
            text=True,
            timeout=MOUNT_TIMEOUT,
            check=False,
        )

    try:
        result = mount(image, mnt, "--key-file", wrong)
        assert result.returncode == 5, result.stderr  # authentication failed
        assert "doublecrypt: error:" in result.stderr
        assert not os.path.ismount(mnt)
        result = mount(tmp_path / "missing.img", mnt, "--key-file", key_file)
        assert result.returncode == 3, result.stderr
        assert mount(image, tmp_path / "no-such-dir", "--key-file", key_file).returncode == 2
        with Mount(image, mnt, key_file) as running:
            result = mount(image, mnt, "--key-file", key_file)
            assert result.returncode == 1 and "already a mount point" in result.stderr
            running.unmount()
    finally:
        _force_unmount(mnt)


def test_remote_volume(tmp_path: Path, key_file: Path) -> None:
    """``doublecrypt --remote HOST:PORT mount``: a volume of a block server."""
    server = start_serve(tmp_path / "srv")
    try:
        known_hosts = tmp_path / "known_hosts"
        remote = ("--remote", server.noise, "--volume", "mnt", "--known-hosts", str(known_hosts))
        run(
            *doublecrypt_command(*remote, "remote", "init", "--size", "16M"), "--key-file", key_file
        )
        with Mount(None, tmp_path / "mnt", key_file, global_options=remote) as mount:
            run("cp", "-a", SOURCE_TREE / "cli", mount.mountpoint / "cli")
            _same_tree(SOURCE_TREE / "cli", mount.mountpoint / "cli")
            mount.unmount()
        fs = doublecrypt.open_remote(server.noise, key=KEY, volume="mnt", known_hosts=known_hosts)
        with fs:
            fs.fsck()
            assert fs.read_bytes("/cli/mount.py") == (SOURCE_TREE / "cli" / "mount.py").read_bytes()
    finally:
        server.stop()


def test_read_window_and_write_behind_stay_coherent() -> None:
    """The operations object alone (no kernel, so no page cache in between):
    read-ahead windows and buffered writes never show stale data, and a
    buffered write's failure reaches its writer."""
    from doublecrypt.mount import VolumeOperations
    from doublecrypt.mount.binding import FuseOSError

    store = doublecrypt.MemoryStore(block_size=4096, total_blocks=2048)
    fs = doublecrypt.FileSystem.format(store, KEY, threads=1)
    ops = VolumeOperations(fs)
    data = os.urandom(3 << 20)
    step = 128 << 10
    writer = ops.create("/f", 0o640, os.O_WRONLY)
    for offset in range(0, len(data), step):
        ops.write("/f", memoryview(data)[offset : offset + step], offset, writer)
    assert ops.getattr("/f")["st_size"] == len(data)  # pending bytes flushed first
    assert ops.getattr("/f")["st_mode"] & 0o7777 == 0o640

    reader = ops.open("/f", os.O_RDONLY)
    assert bytes(ops.read("/f", 4096, 0, reader)) == data[:4096]
    assert bytes(ops.read("/f", step, 4096, reader)) == data[4096 : 4096 + step]  # a window
    ops.write("/f", memoryview(b"X" * 10), 8192, writer)  # buffered
    assert bytes(ops.read("/f", 16, 8192, reader)) == b"X" * 10 + data[8202:8208]
    ops.truncate("/f", 100, writer)
    assert bytes(ops.read("/f", 4096, 0, reader)) == data[:100]
    ops.rename("/f", "/g", 0)
    assert bytes(ops.read("/g", 50, 50, reader)) == data[50:100]  # follows the rename
    ops.release("/g", reader)
    ops.release("/g", writer)

    # 8 MiB into an 8 MiB volume: the buffered write fails, and says so.
    writer = ops.create("/full", 0o600, os.O_WRONLY)
    with pytest.raises(FuseOSError) as caught:
        for offset in range(0, 8 << 20, step):
            ops.write("/full", memoryview(data)[:step], offset, writer)
        ops.flush("/full", writer)
    assert caught.value.errno == errno.ENOSPC
    ops.release("/full", writer)
    ops.unlink("/full")
    ops.destroy("/")
