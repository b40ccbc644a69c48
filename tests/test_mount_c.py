"""``doublecrypt mount --engine c``: the C FUSE layer (csrc/tools/dc_fuse.c,
``make fuse``) under a subset of tests/test_mount.py, whose helpers (and two
of whose tests, called with a C mount) are reused: cp -a and diff -r of a
source tree, tar, sqlite with transactions, errno and attribute checks, a
concurrent writer and reader, read-only mode, start-up errors, and an fsck
after every unmount.

Needs /dev/fuse, fusermount3, root and build/doublecrypt-fuse (or
$DOUBLECRYPT_FUSE); skipped otherwise."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_mount as tm
from test_mount import (
    KEY,
    MOUNT_TIMEOUT,
    SOURCE_TREE,
    Mount,
    _compare_with_image,
    _errno_of,
    _force_unmount,
    _fsck,
    _same_tree,
    _sqlite_work,
    _wait_until,
    doublecrypt_command,
    make_image,
    run,
)

import doublecrypt

REPO = Path(__file__).resolve().parent.parent
PROGRAM = Path(os.environ.get("DOUBLECRYPT_FUSE") or REPO / "build" / "doublecrypt-fuse")
ENGINE = ("--engine", "c")


def _c_fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if os.geteuid() != 0:
        return "FUSE mounts in these tests need root"
    if shutil.which("fusermount3") is None:
        return "fusermount3 (Debian fuse3) is not installed"
    if not os.access(PROGRAM, os.X_OK):
        return f"{PROGRAM} is not built (make fuse)"
    return None


_MISSING = _c_fuse_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"no C FUSE here: {_MISSING}")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "vol.key"
    path.write_bytes(KEY)
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path)


@pytest.fixture
def c_mounted(image: Path, key_file: Path, tmp_path: Path) -> Iterator[Mount]:
    with Mount(image, tmp_path / "mnt", key_file, *ENGINE) as mount:
        yield mount
        mount.unmount()
    report = _fsck(image)
    assert report.errors == 0 and report.leaked_blocks == 0


def _clean(image: Path) -> None:
    report = _fsck(image)
    assert report.errors == 0 and report.leaked_blocks == 0 and report.bad_references == 0


def test_c_real_tools_then_remount_and_compare(image: Path, key_file: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file, *ENGINE) as mount:
        run("cp", "-a", SOURCE_TREE, mnt / "cp")
        _same_tree(SOURCE_TREE, mnt / "cp")

        archive = tmp_path / "src.tar"
        run("tar", "-cf", archive, "-C", SOURCE_TREE.parent, SOURCE_TREE.name)
        (mnt / "tar").mkdir()
        run("tar", "-xf", archive, "-C", mnt / "tar")
        _same_tree(SOURCE_TREE, mnt / "tar" / SOURCE_TREE.name)
        run("tar", "-cf", mnt / "again.tar", "-C", mnt / "tar", SOURCE_TREE.name)

        _sqlite_work(mnt / "db.sqlite")
        mount.unmount()

    _clean(image)
    assert _compare_with_image(image, SOURCE_TREE, "/cp") > 20

    # Again in the background: the command returns once the mount is ready.
    result = subprocess.run(
        doublecrypt_command("mount", image, mnt, "--key-file", key_file, *ENGINE),
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
        assert run("sqlite3", mnt / "db.sqlite", "SELECT count(*) FROM t;").strip() == "1000"
        run("tar", "-tf", mnt / "again.tar")
        subprocess.run(["fusermount3", "-u", str(mnt)], timeout=10, check=True)
        _wait_until(lambda: not Path(f"/proc/{daemon}").exists(), "the daemon to exit")
    finally:
        _force_unmount(mnt)
    _clean(image)
    assert _compare_with_image(image, SOURCE_TREE, "/tar/doublecrypt") > 20


def test_c_errno_and_attributes(c_mounted: Mount) -> None:
    tm.test_errno_and_attributes(c_mounted)


def test_c_concurrent_writer_and_reader(c_mounted: Mount) -> None:
    tm.test_concurrent_writer_and_reader(c_mounted)


def test_c_unmount_by_signal_syncs(c_mounted: Mount) -> None:
    (c_mounted.mountpoint / "kept").write_bytes(b"kept")
    c_mounted.unmount(use_signal=True)
    with doublecrypt.open_image(c_mounted.image, key=KEY, read_only=True) as fs:
        assert fs.read_bytes("/kept") == b"kept"


def test_c_read_only_mount_refuses_changes(image: Path, key_file: Path, tmp_path: Path) -> None:
    with doublecrypt.open_image(image, key=KEY) as fs:
        fs.write_bytes("/kept", b"kept")
    with Mount(image, tmp_path / "mnt", key_file, "--read-only", *ENGINE) as mount:
        mnt = mount.mountpoint
        assert (mnt / "kept").read_bytes() == b"kept"
        assert _errno_of((mnt / "new").write_bytes, b"x") == errno.EROFS
        assert _errno_of(open, mnt / "kept", "r+b") == errno.EROFS
        assert _errno_of(os.mkdir, mnt / "d") == errno.EROFS
        assert _errno_of(os.unlink, mnt / "kept") == errno.EROFS
        mount.unmount()
    _clean(image)


def test_c_start_up_errors(image: Path, tmp_path: Path) -> None:
    """Errors come back before the command returns, with its exit codes."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(bytes(32))
    try:
        result = subprocess.run(
            doublecrypt_command("mount", image, mnt, "--key-file", wrong, *ENGINE),
            capture_output=True,
            text=True,
            timeout=MOUNT_TIMEOUT,
            check=False,
        )
        assert result.returncode == 5, result.stderr  # EXIT_AUTH
        assert "authentication" in result.stderr
        assert not os.path.ismount(mnt)

        missing = tmp_path / "nothing-here"
        env = {**os.environ, "DOUBLECRYPT_FUSE": str(missing)}
        result = subprocess.run(
            doublecrypt_command("mount", image, mnt, "--key-file", wrong, *ENGINE),
            capture_output=True,
            text=True,
            timeout=MOUNT_TIMEOUT,
            check=False,
            env=env,
        )
        assert result.returncode == 1, result.stderr
        assert "make fuse" in result.stderr
    finally:
        _force_unmount(mnt)


def test_c_program_takes_the_key_only_from_a_descriptor(image: Path, tmp_path: Path) -> None:
    """A short key on the descriptor is refused before anything is mounted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, KEY[:16])
    os.close(write_fd)
    try:
        result = subprocess.run(
            [str(PROGRAM), "--key-fd", str(read_fd), "-f", str(image), str(mnt)],
            pass_fds=(read_fd,),
            capture_output=True,
            text=True,
            timeout=MOUNT_TIMEOUT,
            check=False,
        )
    finally:
        os.close(read_fd)
        _force_unmount(mnt)
    assert result.returncode == 1 and "exactly 32 bytes" in result.stderr, result.stderr


# ---- group commit (--commit-interval) ---------------------------------------


def _image_files(image: Path, directory: str = "/") -> dict[str, bytes]:
    """Every file directly in `directory` of the image, with its contents."""
    with doublecrypt.open_image(image, key=KEY, read_only=True) as fs:
        return {
            name: fs.read_bytes(f"{directory.rstrip('/')}/{name}")
            for name in fs.listdir(directory)
            if fs.is_file(f"{directory.rstrip('/')}/{name}")
        }


def _write(path: Path, data: bytes, *, fsync: bool = False) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def _crash(mount: Mount) -> None:
    """SIGKILL the daemon, then detach its dead mount."""
    mount.process.kill()
    mount.process.wait(timeout=MOUNT_TIMEOUT)
    _force_unmount(mount.mountpoint)
    assert not tm._in_mount_table(mount.mountpoint)


def _content(i: int) -> bytes:
    return (b"%06d" % i) * 700  # 4,200 bytes: more than one write for small buffers


def test_c_fsynced_data_survives_sigkill(image: Path, key_file: Path, tmp_path: Path) -> None:
    """With a long interval only fsync makes changes durable, and it does."""
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file, *ENGINE, "--commit-interval", "600") as mount:
        (mnt / "d").mkdir()
        for i in range(20):
            _write(mnt / "d" / f"f{i}", _content(i), fsync=(i == 19))
        _write(mnt / "after", b"not synced")
        _crash(mount)
    _clean(image)
    # The fsync committed the whole group: every earlier file too.
    assert _image_files(image, "/d") == {f"f{i}": _content(i) for i in range(20)}
    with Mount(image, mnt, key_file, *ENGINE) as mount:
        assert (mnt / "d" / "f7").read_bytes() == _content(7)
        mount.unmount()
    _clean(image)


def test_c_unsynced_data_is_whole_or_absent_after_sigkill(
    image: Path, key_file: Path, tmp_path: Path
) -> None:
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file, *ENGINE, "--commit-interval", "600") as mount:
        for i in range(50):
            _write(mnt / f"f{i}", _content(i))
        _crash(mount)
    _clean(image)
    found = _image_files(image)
    assert all(found[name] == _content(int(name[1:])) for name in found), sorted(found)
    assert found == {}  # nothing was synced, no timer ran
    with Mount(image, mnt, key_file, *ENGINE) as mount:
        _write(mnt / "again", b"mounts fine")
        mount.unmount()
    _clean(image)


def test_c_commit_interval_makes_changes_durable(
    image: Path, key_file: Path, tmp_path: Path
) -> None:
    """The timer commits a group without any fsync."""
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file, *ENGINE, "--commit-interval", "0.2") as mount:
        for i in range(10):
            _write(mnt / f"f{i}", _content(i))
        want = {f"f{i}": _content(i) for i in range(10)}

        def committed() -> bool:
            return _image_files(image) == want

        _wait_until(committed, "the timer's commit", timeout=10)
        _crash(mount)
    _clean(image)
    assert _image_files(image) == want


def test_c_commit_interval_zero_commits_every_operation(
    image: Path, key_file: Path, tmp_path: Path
) -> None:
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file, *ENGINE, "--commit-interval", "0") as mount:
        for i in range(10):
            _write(mnt / f"f{i}", _content(i))
        _crash(mount)
    _clean(image)
    assert _image_files(image) == {f"f{i}": _content(i) for i in range(10)}


def test_c_failed_operations_keep_the_group(image: Path, key_file: Path, tmp_path: Path) -> None:
    """Failures inside an open group (ENOTEMPTY, ENOSPC) lose nothing else:
    the engine would roll the whole transaction back on a failed change, so
    the mount commits before running out of space."""
    mnt = tmp_path / "mnt"
    with Mount(image, mnt, key_file, *ENGINE, "--commit-interval", "600") as mount:
        _write(mnt / "before", b"before")
        (mnt / "full").mkdir()
        _write(mnt / "full" / "x", b"x")
        assert _errno_of(os.rmdir, mnt / "full") == errno.ENOTEMPTY
        chunk = os.urandom(1 << 20)

        def fill() -> None:
            with open(mnt / "big", "wb") as f:
                for _ in range(128):  # 128 MiB into a 64 MiB image
                    f.write(chunk)
                    f.flush()

        assert _errno_of(fill) == errno.ENOSPC
        os.unlink(mnt / "big")
        _write(mnt / "after", b"after")
        _write(mnt / "last", b"last", fsync=True)
        _crash(mount)
    _clean(image)
    found = _image_files(image)
    assert {k: found.get(k) for k in ("before", "after", "last")} == {
        "before": b"before",
        "after": b"after",
        "last": b"last",
    }
    assert "big" not in found
    assert _image_files(image, "/full") == {"x": b"x"}


def test_c_is_the_default_engine_when_built(image: Path, key_file: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(
        doublecrypt_command("mount", image, mnt, "--key-file", key_file),
        capture_output=True,
        text=True,
        timeout=MOUNT_TIMEOUT,
        check=False,
    )
    try:
        assert result.returncode == 0, result.stderr
        found = re.search(r"\(process (\d+)\)", result.stderr)
        assert found, result.stderr  # only the C program says which process serves
        pid = int(found.group(1))
        assert Path(f"/proc/{pid}/comm").read_text().strip() == PROGRAM.name[:15]
        (mnt / "hello").write_bytes(b"from the C engine")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30, check=False)
        _force_unmount(mnt)
    _wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the daemon to exit")
    assert _image_files(image, "/") == {"hello": b"from the C engine"}


def test_c_commit_interval_needs_the_c_engine(image: Path, key_file: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(
        doublecrypt_command(
            "mount",
            image,
            mnt,
            "--key-file",
            key_file,
            "--engine",
            "python",
            "--commit-interval",
            "1",
            "-f",
        ),
        capture_output=True,
        text=True,
        timeout=MOUNT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1 and "--engine c" in result.stderr, result.stderr
    assert not os.path.ismount(mnt)
