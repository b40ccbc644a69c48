"""Bad input to every public entry point (docs/RELIABILITY.md, "Bad input").

- The C API: tests/c/test_bad_input.c is the table (run by `make ctest`
  under ASan and UBSan); here we check that every public function of the
  headers has a row there, or an entry in its no_rows[] with a reason, so a
  new API function without a bad-input row fails this test.
- The Python API: one table of calls with bad arguments, each with the
  exception class it documents (exactly that class). Every row runs on a
  fresh copy of an image; afterwards the image must still mount, pass fsck
  and hold its files.
- A full volume and a full device: the last committed state survives.
- The command: a few bad invocations give their documented exit code and
  one error line, no traceback.
"""

# ruff: noqa: E501 - the tables below keep one row per line

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

import doublecrypt
from doublecrypt import KdfParams, errors
from doublecrypt.cli import main
from doublecrypt.cli.errors import (
    EXIT_AUTH,
    EXIT_CORRUPT,
    EXIT_EXISTS,
    EXIT_FAILURE,
    EXIT_NO_SPACE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from doublecrypt.cli.keys import ENV_PASSPHRASE
from memstores import DictStore

ROOT = Path(__file__).resolve().parent.parent
C_TABLE = ROOT / "tests" / "c" / "test_bad_input.c"
sys.path.insert(0, str(ROOT / "csrc"))
import header_decls  # noqa: E402

KEY = bytes(range(32))
WRONG_KEY = bytes(32)
BS = 4096
TOTAL = 256
HELLO = b"hello world"
PASS = "bad input passphrase"
KDF = KdfParams.minimum()

COUNTS: dict[str, int] = {}


def report_line(config: pytest.Config, line: str) -> None:
    """Print `line` on pytest's terminal, past output capturing."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - plugins disabled
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write("\n")
        reporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    c = COUNTS.get
    line = (
        f"bad input (Python): {c('refused', 0) + c('accepted', 0)} rows "
        f"({c('refused', 0)} refused with their documented exception, {c('accepted', 0)} "
        f"accepted), {c('scenarios', 0)} full-volume/full-device scenarios, "
        f"{c('cli', 0)} CLI invocations; the C table covers {c('c functions', 0)} functions"
    )
    report_line(request.config, line)


def count(what: str) -> None:
    COUNTS[what] = COUNTS.get(what, 0) + 1


# ---- the C table covers every public function --------------------------------------


def c_rows() -> tuple[set[str], dict[str, str]]:
    """Functions with a ROW in the C table, and no_rows[] entries with reasons."""
    source = C_TABLE.read_text()
    rows = set(re.findall(r"\b(?:PATH_)?ROWS?\(\s*((?:dc|fs)_\w+)\s*,", source))
    table = re.search(r"no_rows\[\]\[2\] = \{(.*?)\n\};", source, re.S)
    assert table is not None, "no_rows[] not found"
    allowed = dict(re.findall(r'\{\s*"(\w+)",\s*"([^"]*)"\s*\}', table.group(1)))
    return rows, allowed


def test_every_c_function_has_a_bad_input_row() -> None:
    rows, allowed = c_rows()
    public = set(header_decls.exported_functions()) | set(header_decls.compat_functions())
    missing = public - rows - set(allowed)
    assert not missing, f"public functions without a row in {C_TABLE.name}: {sorted(missing)}"
    assert not (set(allowed) - public), "no_rows[] names functions that do not exist"
    assert not (rows - public), f"rows for unknown functions: {rows - public}"
    assert all(reason.strip() for reason in allowed.values())
    assert not (rows & set(allowed)), "a function is both in a row and in no_rows[]"
    # no_rows[] is only for functions that take no arguments.
    decls = header_decls.cdef_source()
    for name in allowed:
        assert re.search(rf"\b{name}\s*\(\s*void\s*\)", decls), f"{name} takes arguments"
    COUNTS["c functions"] = len(rows)


# ---- the Python table ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image with /dir/file, /dir/sub/, /empty/, /scratch and a key slot."""
    image = tmp_path_factory.mktemp("bad-input") / "pristine.img"
    with doublecrypt.open_image(
        image, key=KEY, create=True, size=TOTAL * BS, block_size=BS, threads=1
    ) as fs:
        fs.makedirs("/dir/sub")
        fs.mkdir("/empty")
        fs.write_bytes("/dir/file", HELLO)
        fs.write_bytes("/scratch", b"")
        fs.add_passphrase(PASS, KDF)
    return image


@dataclass
class Ctx:
    """What a row works on: a copy of the image, mounted read-write."""

    image: Path
    tmp: Path
    fs: doublecrypt.FileSystem
    others: list[doublecrypt.FileSystem] = field(default_factory=list)

    def ro(self) -> doublecrypt.FileSystem:
        fs = doublecrypt.FileSystem(
            doublecrypt.FileStore(self.image, read_only=True), KEY, read_only=True
        )
        self.others.append(fs)
        return fs

    def closed(self) -> doublecrypt.FileSystem:
        self.fs.close()
        return self.fs

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def truncated(self, size: int) -> Path:
        path = self.tmp / f"truncated-{size}.img"
        shutil.copy(self.image, path)
        os.truncate(path, size)
        return path

    def close(self) -> None:
        for fs in [*self.others, self.fs]:
            fs.close()


@pytest.fixture
def ctx(pristine: Path, tmp_path: Path) -> Iterator[Ctx]:
    image = tmp_path / "vol.img"
    shutil.copy(pristine, image)
    c = Ctx(image, tmp_path, doublecrypt.open_image(image, key=KEY, threads=1))
    try:
        yield c
    finally:
        c.close()
    # Whatever the row did, the image mounts, verifies and holds its file.
    with doublecrypt.open_image(image, key=KEY, threads=1) as fs:
        report = fs.fsck()
        assert report.errors == 0 and report.leaked_blocks == 0
        assert fs.read_bytes("/dir/file") == HELLO


def elf() -> bytes:
    with open(sys.executable, "rb") as f:
        head = f.read(TOTAL * BS)
    assert head[:4] == b"\x7fELF"
    return head


def two_enters(fs: doublecrypt.FileSystem) -> None:
    with fs.transaction(), fs.transaction():
        pass  # pragma: no cover - the inner one raises


def cancel(done: int, total: int) -> bool:
    return False


E = errors
OK = None  # the call must succeed (and return True, if it returns a bool)
Row = tuple[str, Callable[[Ctx], object], type[BaseException] | None]

LONG = "n" * 256
LONG_UTF8 = "é" * 128  # 128 characters, 256 bytes

ROWS: list[Row] = [
    # paths: None, bytes, empty, relative, bad components, NUL, non-UTF-8
    ("stat None", lambda c: c.fs.stat(None), TypeError),  # type: ignore[arg-type]
    ("stat bytes", lambda c: c.fs.stat(b"/dir"), TypeError),  # type: ignore[arg-type]
    ("stat empty", lambda c: c.fs.stat(""), E.InvalidArgumentError),
    ("stat relative", lambda c: c.fs.stat("dir"), E.InvalidArgumentError),
    ("stat empty component", lambda c: c.fs.stat("/dir//file"), E.InvalidArgumentError),
    ("stat '//' (the root, one trailing slash)", lambda c: c.fs.stat("//").is_dir, OK),
    ("stat '///'", lambda c: c.fs.stat("///"), E.InvalidArgumentError),
    ("stat '.'", lambda c: c.fs.stat("/dir/."), E.InvalidArgumentError),
    ("stat '..'", lambda c: c.fs.stat("/dir/.."), E.InvalidArgumentError),
    ("stat NUL", lambda c: c.fs.stat("/dir/fi\0le"), E.InvalidArgumentError),
    ("stat not UTF-8", lambda c: c.fs.stat("/\udcff"), E.InvalidArgumentError),
    ("stat 256-byte name", lambda c: c.fs.stat("/" + LONG), E.NameTooLongError),
    ("stat 256-byte UTF-8 name", lambda c: c.fs.stat("/" + LONG_UTF8), E.NameTooLongError),
    ("stat 4097-byte path", lambda c: c.fs.stat("/d" * 2049), E.NameTooLongError),
    ("stat through a file", lambda c: c.fs.stat("/dir/file/x"), E.NotADirectoryError),
    ("stat missing parent", lambda c: c.fs.stat("/missing/x"), E.NotFoundError),
    ("exists through a file", lambda c: c.fs.exists("/dir/file/x") is False, OK),
    ("exists relative", lambda c: c.fs.exists("dir"), E.InvalidArgumentError),
    ("mkdir root", lambda c: c.fs.mkdir("/"), E.AlreadyExistsError),
    ("mkdir existing file", lambda c: c.fs.mkdir("/dir/file", exist_ok=True), E.AlreadyExistsError),
    ("mkdir missing parent", lambda c: c.fs.mkdir("/missing/x"), E.NotFoundError),
    ("mkdir through a file", lambda c: c.fs.mkdir("/dir/file/x"), E.NotADirectoryError),
    ("mkdir '..'", lambda c: c.fs.mkdir("/dir/.."), E.InvalidArgumentError),
    ("mkdir 256-byte name", lambda c: c.fs.mkdir("/" + LONG), E.NameTooLongError),
    ("mkdir 255-byte name", lambda c: c.fs.mkdir("/" + LONG[1:]), OK),
    ("makedirs existing, exist_ok=False", lambda c: c.fs.makedirs("/dir", exist_ok=False), E.AlreadyExistsError),
    ("makedirs through a file", lambda c: c.fs.makedirs("/dir/file/x/y"), E.NotADirectoryError),
    ("makedirs NUL", lambda c: c.fs.makedirs("/a\0/b"), E.InvalidArgumentError),
    ("remove directory", lambda c: c.fs.remove("/empty"), E.NotAFileError),
    ("remove root", lambda c: c.fs.remove("/"), E.InvalidArgumentError),
    ("remove missing", lambda c: c.fs.remove("/missing"), E.NotFoundError),
    ("rmdir file", lambda c: c.fs.rmdir("/scratch"), E.NotADirectoryError),
    ("rmdir not empty", lambda c: c.fs.rmdir("/dir"), E.DirectoryNotEmptyError),
    ("rmdir root", lambda c: c.fs.rmdir("/"), E.InvalidArgumentError),
    ("rename into itself", lambda c: c.fs.rename("/dir", "/dir/sub/x"), E.InvalidArgumentError),
    ("rename file onto dir", lambda c: c.fs.rename("/scratch", "/empty"), E.NotAFileError),
    ("rename dir onto file", lambda c: c.fs.rename("/empty", "/scratch"), E.NotADirectoryError),
    ("rename onto non-empty dir", lambda c: c.fs.rename("/empty", "/dir"), E.DirectoryNotEmptyError),
    ("rename missing", lambda c: c.fs.rename("/missing", "/x"), E.NotFoundError),
    ("rename to missing parent", lambda c: c.fs.rename("/scratch", "/m/x"), E.NotFoundError),
    ("rename to 256-byte name", lambda c: c.fs.rename("/scratch", "/" + LONG), E.NameTooLongError),
    ("rename to NUL", lambda c: c.fs.rename("/scratch", "/a\0"), E.InvalidArgumentError),
    ("rename root", lambda c: c.fs.rename("/", "/x"), E.InvalidArgumentError),
    ("listdir file", lambda c: c.fs.listdir("/dir/file"), E.NotADirectoryError),
    ("listdir missing", lambda c: c.fs.listdir("/missing"), E.NotFoundError),
    ("walk missing", lambda c: list(c.fs.walk("/missing")), E.NotFoundError),
    # contents: sizes and offsets
    ("read_bytes directory", lambda c: c.fs.read_bytes("/dir"), E.NotAFileError),
    ("read_bytes missing", lambda c: c.fs.read_bytes("/missing"), E.NotFoundError),
    ("write_bytes directory", lambda c: c.fs.write_bytes("/dir", b"x"), E.NotAFileError),
    ("write_bytes through a file", lambda c: c.fs.write_bytes("/dir/file/x", b"x"), E.NotADirectoryError),
    ("write_bytes not a buffer", lambda c: c.fs.write_bytes("/x", "text"), TypeError),  # type: ignore[arg-type]
    ("write_bytes empty", lambda c: c.fs.write_bytes("/scratch", b"") == 0, OK),
    ("write_text bad encoding", lambda c: c.fs.write_text("/x", "é", "ascii"), UnicodeEncodeError),
    ("open bad mode", lambda c: c.fs.open("/scratch", "rw"), ValueError),
    ("open directory", lambda c: c.fs.open("/dir"), E.NotAFileError),
    ("open 'x' existing", lambda c: c.fs.open("/scratch", "x"), E.AlreadyExistsError),
    ("open missing", lambda c: c.fs.open("/missing"), E.NotFoundError),
    ("open unbuffered text", lambda c: c.fs.open("/scratch", "w", buffering=0), ValueError),
    ("truncate -1", lambda c: c.fs.truncate("/scratch", -1), E.InvalidArgumentError),
    ("truncate 2**63", lambda c: c.fs.truncate("/scratch", 2**63), E.InvalidArgumentError),
    # Past 64 bits cffi refuses the conversion before C sees it.
    ("truncate 2**64", lambda c: c.fs.truncate("/scratch", 2**64), errors.InvalidArgumentError),
    ("truncate 2**63-1 (sparse)", lambda c: c.fs.truncate("/scratch", 2**63 - 1), OK),
    ("truncate directory", lambda c: c.fs.truncate("/dir", 0), E.NotAFileError),
    ("write offset -1", lambda c: c.fs._h.write("/scratch", -1, b"x"), E.InvalidArgumentError),
    ("write offset 2**63", lambda c: c.fs._h.write("/scratch", 2**63, b"x"), E.InvalidArgumentError),
    ("write ending past 2**63-1", lambda c: c.fs._h.write("/scratch", 2**63 - 1, b"xy"), E.InvalidArgumentError),
    ("write offset 2**64", lambda c: c.fs._h.write("/scratch", 2**64, b"x"), errors.InvalidArgumentError),
    ("write one byte at 2**62", lambda c: c.fs._h.write("/scratch", 2**62, b"z"), OK),
    ("read offset -1", lambda c: c.fs._h.readinto("/dir/file", -1, bytearray(1)), E.InvalidArgumentError),
    ("read offset 2**63: nothing", lambda c: c.fs._h.readinto("/dir/file", 2**63, bytearray(1)) == 0, OK),
    ("read into a read-only buffer", lambda c: c.fs._h.readinto("/dir/file", 0, b"x"), E.InvalidArgumentError),
    ("file seek 2**63", lambda c: c.fs.open("/dir/file").seek(2**63), ValueError),
    ("file seek negative", lambda c: c.fs.open("/dir/file").seek(-1), E.InvalidArgumentError),
    ("file read past the end", lambda c: c.fs.open("/dir/file").read(1 << 20) == HELLO, OK),
    ("file write read-only mode", lambda c: c.fs.open("/dir/file").write(b"x"), io.UnsupportedOperation),
    ("set_mtime 2**63", lambda c: c.fs.set_mtime("/scratch", 2**63), errors.InvalidArgumentError),
    ("set_mtime -2**63", lambda c: c.fs.set_mtime("/scratch", -(2**63)), OK),
    ("chmod -1", lambda c: c.fs.chmod("/scratch", -1), errors.InvalidArgumentError),
    ("chmod 2**32", lambda c: c.fs.chmod("/scratch", 2**32), errors.InvalidArgumentError),
    ("chmod missing", lambda c: c.fs.chmod("/missing", 0o600), E.NotFoundError),
    # transactions
    ("nested transaction", lambda c: two_enters(c.fs), E.InvalidArgumentError),
    ("commit without begin", lambda c: c.fs._h.commit(), E.InvalidArgumentError),
    ("abort without begin", lambda c: c.fs._h.abort(), E.InvalidArgumentError),
    # passphrases
    ("add_passphrase empty", lambda c: c.fs.add_passphrase(""), E.InvalidArgumentError),
    ("add_passphrase opslimit 0", lambda c: c.fs.add_passphrase("p", KdfParams(0, 8192)), E.InvalidArgumentError),
    ("add_passphrase memlimit 2**63", lambda c: c.fs.add_passphrase("p", KdfParams(1, 2**63)), E.InvalidArgumentError),
    ("remove_key_slot -1", lambda c: c.fs.remove_key_slot(-1), E.InvalidArgumentError),
    ("remove_key_slot 8", lambda c: c.fs.remove_key_slot(8), E.InvalidArgumentError),
    ("remove_key_slot empty", lambda c: c.fs.remove_key_slot(5), E.NotFoundError),
    ("remove_key_slot last", lambda c: c.fs.remove_key_slot(0), E.InvalidArgumentError),
    ("change_passphrase wrong", lambda c: c.fs.change_passphrase("wrong", "new", KDF), E.AuthenticationError),
    # closed and read-only handles
    ("closed: stat", lambda c: c.closed().stat("/"), E.InvalidArgumentError),
    ("closed: write_bytes", lambda c: c.closed().write_bytes("/x", b"x"), E.InvalidArgumentError),
    ("closed: fsck", lambda c: c.closed().fsck(), E.InvalidArgumentError),
    ("closed: listdir", lambda c: c.closed().listdir("/"), E.InvalidArgumentError),
    ("closed: close again", lambda c: c.closed().close(), OK),
    ("closed: iterator", lambda c: next(iter_then_close(c)), E.InvalidArgumentError),
    ("read-only: mkdir", lambda c: c.ro().mkdir("/x"), E.ReadOnlyError),
    ("read-only: write_bytes", lambda c: c.ro().write_bytes("/x", b"x"), E.ReadOnlyError),
    ("read-only: truncate", lambda c: c.ro().truncate("/dir/file", 0), E.ReadOnlyError),
    ("read-only: remove", lambda c: c.ro().remove("/dir/file"), E.ReadOnlyError),
    ("read-only: rename", lambda c: c.ro().rename("/dir/file", "/x"), E.ReadOnlyError),
    ("read-only: chmod", lambda c: c.ro().chmod("/dir/file", 0), E.ReadOnlyError),
    ("read-only: transaction", lambda c: c.ro().transaction().__enter__(), E.ReadOnlyError),
    ("read-only: add_passphrase", lambda c: c.ro().add_passphrase("p", KDF), E.ReadOnlyError),
    ("read-only: open for writing", lambda c: c.ro().open("/x", "wb"), E.ReadOnlyError),
    ("read-only: fsck", lambda c: c.ro().fsck().errors == 0, OK),
    ("read-only store, read-write mount", lambda c: rw_mount_of_read_only_store(c), E.ReadOnlyError),
    # images
    ("open_image key and passphrase", lambda c: doublecrypt.open_image(c.image, key=KEY, passphrase=PASS), E.InvalidArgumentError),
    ("open_image no key", lambda c: doublecrypt.open_image(c.image), E.InvalidArgumentError),
    ("open_image 31-byte key", lambda c: doublecrypt.open_image(c.image, key=KEY[:31]), E.InvalidArgumentError),
    ("open_image wrong key", lambda c: doublecrypt.open_image(c.image, key=WRONG_KEY), E.AuthenticationError),
    ("open_image wrong passphrase", lambda c: doublecrypt.open_image(c.image, passphrase="wrong"), E.AuthenticationError),
    ("open_image missing", lambda c: doublecrypt.open_image(c.tmp / "missing.img", key=KEY), E.NotFoundError),
    ("open_image empty file", lambda c: doublecrypt.open_image(c.file("empty", b""), key=KEY), E.CorruptionError),
    ("open_image zeros", lambda c: doublecrypt.open_image(c.file("z", bytes(TOTAL * BS)), key=KEY), E.CorruptionError),
    ("open_image random", lambda c: doublecrypt.open_image(c.file("r", os.urandom(TOTAL * BS)), key=KEY), E.CorruptionError),
    ("open_image ELF", lambda c: doublecrypt.open_image(c.file("elf", elf()), key=KEY), E.CorruptionError),
    ("open_image truncated mid-block", lambda c: doublecrypt.open_image(c.truncated(TOTAL * BS - 100), key=KEY), E.CorruptionError),
    ("open_image truncated to half", lambda c: doublecrypt.open_image(c.truncated(TOTAL * BS // 2), key=KEY), E.CorruptionError),
    ("open_image truncated to 2 blocks", lambda c: doublecrypt.open_image(c.truncated(2 * BS), key=KEY), E.CorruptionError),
    ("open_image truncated to 100 bytes", lambda c: doublecrypt.open_image(c.truncated(100), key=KEY), E.CorruptionError),
    ("open_image 8 KiB blocks", lambda c: doublecrypt.open_image(c.image, key=KEY, block_size=2 * BS), E.CorruptionError),
    ("open_image 64 KiB blocks", lambda c: doublecrypt.open_image(c.image, key=KEY, block_size=16 * BS), E.CorruptionError),
    ("open_image block size 1000", lambda c: doublecrypt.open_image(c.image, key=KEY, block_size=1000), E.InvalidArgumentError),
    # A directory is refused by Python's open() before the engine sees it.
    ("open_image a directory", lambda c: doublecrypt.open_image(c.tmp, key=KEY), errors.NotAFileError),
    ("open_image create existing", lambda c: doublecrypt.open_image(c.image, key=KEY, create=True, size=1 << 20), E.AlreadyExistsError),
    ("open_image create no size", lambda c: doublecrypt.open_image(c.tmp / "n.img", key=KEY, create=True), E.InvalidArgumentError),
    ("open_image create size 0", lambda c: doublecrypt.open_image(c.tmp / "n.img", key=KEY, create=True, size=0), E.InvalidArgumentError),
    ("open_image create 3 blocks", lambda c: doublecrypt.open_image(c.tmp / "n.img", key=KEY, create=True, size=3 * BS, block_size=BS), E.InvalidArgumentError),
    ("open_image create missing dir", lambda c: doublecrypt.open_image(c.tmp / "m" / "n.img", key=KEY, create=True, size=1 << 20), E.NotFoundError),
    ("open_image create block size 1000", lambda c: doublecrypt.open_image(c.tmp / "n.img", key=KEY, create=True, size=1 << 20, block_size=1000), E.InvalidArgumentError),
    ("open_image threads -1", lambda c: doublecrypt.open_image(c.image, key=KEY, threads=-1), errors.InvalidArgumentError),
    ("open_image threads 65", lambda c: doublecrypt.open_image(c.image, key=KEY, threads=65), E.InvalidArgumentError),
    ("image_info random", lambda c: doublecrypt.image_info(c.file("r", os.urandom(BS))), E.CorruptionError),
    ("image_info missing", lambda c: doublecrypt.image_info(c.tmp / "missing"), E.NotFoundError),
    ("unlock_image wrong", lambda c: doublecrypt.unlock_image(c.image, "wrong"), E.AuthenticationError),
    ("unlock_image no slot", lambda c: doublecrypt.unlock_image(no_slot_image(c), PASS), E.NotFoundError),
    # stores
    ("MemoryStore 3 blocks", lambda c: doublecrypt.MemoryStore(3, BS), E.InvalidArgumentError),
    ("MemoryStore block size 1000", lambda c: doublecrypt.MemoryStore(16, 1000), E.InvalidArgumentError),
    ("MemoryStore 2**51 blocks", lambda c: doublecrypt.MemoryStore(2**51, BS), E.OutOfMemoryError),
    ("MemoryStore 2**52 blocks", lambda c: doublecrypt.MemoryStore(2**52, BS), E.InvalidArgumentError),
    ("MemoryStore 2**64 blocks", lambda c: doublecrypt.MemoryStore(2**64, BS), errors.InvalidArgumentError),
    ("FileStore missing", lambda c: doublecrypt.FileStore(c.tmp / "missing", block_size=BS), E.NotFoundError),
    ("FileStore directory", lambda c: doublecrypt.FileStore(c.tmp, block_size=BS), E.NotAFileError),
    ("FileStore NUL", lambda c: doublecrypt.FileStore("/tmp/a\0b", block_size=BS), E.InvalidArgumentError),
    ("FileStore.create existing", lambda c: doublecrypt.FileStore.create(c.image, 16, block_size=BS), E.AlreadyExistsError),
    ("FileStore.create 3 blocks", lambda c: doublecrypt.FileStore.create(c.tmp / "n", 3, block_size=BS), E.InvalidArgumentError),
    ("FileStore.create cancelled", lambda c: created_nothing(c, cancel), E.CancelledError),
    ("FileStore.create raising", lambda c: created_nothing(c, raising), E.CancelledError),
    ("DeviceStore empty device", lambda c: doublecrypt.DeviceStore("/dev/null", block_size=BS), E.CorruptionError),
    ("CachedStore capacity 0", lambda c: doublecrypt.CachedStore(doublecrypt.MemoryStore(16, BS), 0), E.InvalidArgumentError),
    ("store read past the end", lambda c: doublecrypt.MemoryStore(16, BS).read_blocks([16]), E.InvalidArgumentError),
    ("store read id -1", lambda c: doublecrypt.MemoryStore(16, BS).read_blocks([-1]), errors.InvalidArgumentError),
    ("store write wrong length", lambda c: doublecrypt.MemoryStore(16, BS).write_blocks([3], b"x"), E.InvalidArgumentError),
    ("store write read-only", lambda c: doublecrypt.FileStore(c.image, read_only=True).write_blocks([3], bytes(BS)), E.ReadOnlyError),
    ("store used twice", lambda c: mount_twice(), E.InvalidArgumentError),
    ("store closed", lambda c: closed_store().read_blocks([0]), E.InvalidArgumentError),
    ("FileSystem 31-byte key", lambda c: doublecrypt.FileSystem(doublecrypt.MemoryStore(16, BS), KEY[:31]), E.InvalidArgumentError),
    ("FileSystem blank store", lambda c: doublecrypt.FileSystem(doublecrypt.MemoryStore(16, BS), KEY), E.CorruptionError),
    ("FileSystem.format read-only store", lambda c: doublecrypt.FileSystem.format(doublecrypt.FileStore(c.image, read_only=True), KEY), E.ReadOnlyError),
    ("CustomStore raising in read", lambda c: doublecrypt.FileSystem(Failing(), KEY), E.StorageIOError),
    # codec, allocator, key derivation
    ("Codec 31-byte key", lambda c: doublecrypt.Codec(KEY[:31], bytes(16)), E.InvalidArgumentError),
    ("Codec 15-byte volume id", lambda c: doublecrypt.Codec(KEY, bytes(15)), E.InvalidArgumentError),
    ("Codec block size 1000", lambda c: doublecrypt.Codec(KEY, bytes(16), block_size=1000), E.InvalidArgumentError),
    ("Codec threads -1", lambda c: doublecrypt.Codec(KEY, bytes(16), threads=-1), E.InvalidArgumentError),
    ("Codec threads 65", lambda c: doublecrypt.Codec(KEY, bytes(16), threads=65), E.InvalidArgumentError),
    ("Codec seal kind 0", lambda c: codec().seal(3, 0, b"x"), E.InvalidArgumentError),
    ("Codec seal kind 256", lambda c: codec().seal(3, 256, b"x"), E.InvalidArgumentError),
    ("Codec seal too long", lambda c: codec().seal(3, 5, bytes(BS)), E.InvalidArgumentError),
    ("Codec open short block", lambda c: codec().open(3, 5, bytes(10)), E.InvalidArgumentError),
    ("Codec open zeros", lambda c: codec().open(3, 5, bytes(BS)), E.AuthenticationError),
    ("Codec open wrong id", lambda c: (lambda k: k.open(4, 5, k.seal(3, 5, b"x")))(codec()), E.AuthenticationError),
    ("Codec seal_batch mismatch", lambda c: codec().seal_batch([3, 4], 5, [b"x"]), E.InvalidArgumentError),
    ("Codec seal_batch kinds mismatch", lambda c: codec().seal_batch([3, 4], b"\x05", [b"x", b"y"]), E.InvalidArgumentError),
    ("Codec open_batch short", lambda c: codec().open_batch([3, 4], 5, bytes(BS)), E.InvalidArgumentError),
    ("Codec closed", lambda c: closed_codec().seal(3, 5, b"x"), E.InvalidArgumentError),
    ("Allocator 3 blocks", lambda c: doublecrypt.Allocator(3), E.InvalidArgumentError),
    ("Allocator -1 blocks", lambda c: doublecrypt.Allocator(-1), errors.InvalidArgumentError),
    ("Allocator exhausted", lambda c: exhaust(doublecrypt.Allocator(5)), E.NoSpaceError),
    ("Allocator release reserved", lambda c: doublecrypt.Allocator(8).release(0), E.InvalidArgumentError),
    ("Allocator run 0", lambda c: doublecrypt.Allocator(8).alloc_run(0), E.InvalidArgumentError),
    ("Allocator mark twice", lambda c: mark_twice(), E.AlreadyExistsError),
    ("derive_subkey 31-byte key", lambda c: doublecrypt.derive_subkey(KEY[:31], 1), E.InvalidArgumentError),
    ("derive_subkey purpose 0", lambda c: doublecrypt.derive_subkey(KEY, 0), E.InvalidArgumentError),
    ("hkdf length 0", lambda c: doublecrypt.hkdf_sha256(KEY, length=0), E.InvalidArgumentError),
    ("hkdf length 8161", lambda c: doublecrypt.hkdf_sha256(KEY, length=8161), E.InvalidArgumentError),
    ("random_bytes -1", lambda c: doublecrypt.random_bytes(-1), E.InvalidArgumentError),
    ("random_bytes 0", lambda c: doublecrypt.random_bytes(0) == b"", OK),
    ("KdfParams 0 in a slot", lambda c: c.fs.add_passphrase("p", KdfParams(1, 0)), E.InvalidArgumentError),
]  # fmt: skip


def rw_mount_of_read_only_store(c: Ctx) -> None:
    with doublecrypt.FileSystem(doublecrypt.FileStore(c.image, read_only=True), KEY) as fs:
        fs.mkdir("/x")


def iter_then_close(c: Ctx) -> Iterator[str]:
    names = c.fs.iterdir("/")
    next(names)
    c.fs.close()
    return names


def no_slot_image(c: Ctx) -> Path:
    path = c.tmp / "no-slot.img"
    with doublecrypt.open_image(path, key=KEY, create=True, size=16 * BS, block_size=BS):
        pass
    return path


def raising(done: int, total: int) -> bool:
    raise KeyboardInterrupt  # a Ctrl-C in the callback cancels too


def created_nothing(c: Ctx, progress: Callable[[int, int], bool]) -> None:
    target = c.tmp / "cancelled.img"
    try:
        doublecrypt.FileStore.create(target, 64, block_size=BS, progress=progress)
    finally:
        assert not target.exists()


def mount_twice() -> None:
    store = doublecrypt.MemoryStore(16, BS)
    doublecrypt.FileSystem.format(store, KEY).close()
    doublecrypt.FileSystem(store, KEY)


def closed_store() -> doublecrypt.Store:
    store = doublecrypt.MemoryStore(16, BS)
    store.close()
    return store


def codec() -> doublecrypt.Codec:
    return doublecrypt.Codec(KEY, bytes(16), block_size=BS, threads=1)


def closed_codec() -> doublecrypt.Codec:
    k = codec()
    k.close()
    return k


def exhaust(alloc: doublecrypt.Allocator) -> None:
    while True:
        alloc.alloc()


def mark_twice() -> None:
    alloc = doublecrypt.Allocator(8)
    alloc.mark_used(4)
    alloc.mark_used(4)


class Failing(doublecrypt.CustomStore):
    def __init__(self) -> None:
        super().__init__(BS, 16)

    def read_into(self, ids: list[int], out: memoryview) -> None:
        raise OSError(errno.EIO, "the device is gone")


@pytest.mark.parametrize(("call", "error"), [pytest.param(c, e, id=n) for n, c, e in ROWS])
def test_bad_python_input(
    ctx: Ctx, call: Callable[[Ctx], object], error: type[BaseException] | None
) -> None:
    if error is None:
        assert call(ctx) in (True, None)  # accepted (a bool result must be True)
        count("accepted")
        return
    with pytest.raises(error) as caught:
        call(ctx)
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    count("refused")


def test_rows_are_unique() -> None:
    names = [name for name, _, _ in ROWS]
    assert len(names) == len(set(names))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any file")
def test_image_without_write_permission(ctx: Ctx) -> None:
    """An image the user may not write: ReadOnlyError on a read-write open,
    and it opens read-only."""
    ctx.fs.close()
    ctx.image.chmod(0o444)
    try:
        with pytest.raises(errors.ReadOnlyError):
            doublecrypt.open_image(ctx.image, key=KEY)
        with doublecrypt.open_image(ctx.image, key=KEY, read_only=True) as fs:
            assert fs.read_bytes("/dir/file") == HELLO
    finally:
        ctx.image.chmod(0o644)
    count("scenarios")


# ---- full volume, full device -------------------------------------------------------------


def check_files(fs: doublecrypt.FileSystem, files: dict[str, bytes]) -> None:
    assert set(fs.listdir("/")) == {name.lstrip("/") for name in files}
    for name, data in files.items():
        assert fs.read_bytes(name) == data
    report = fs.fsck()
    assert report.errors == 0 and report.leaked_blocks == 0


def test_full_volume_keeps_the_last_commit(tmp_path: Path) -> None:
    """Write files until NoSpaceError: every committed file is intact, fsck is
    clean, the image remounts the same, and freeing space makes room again."""
    image = tmp_path / "small.img"
    files: dict[str, bytes] = {}
    with doublecrypt.open_image(image, key=KEY, create=True, size=64 * BS, block_size=BS) as fs:
        with pytest.raises(errors.NoSpaceError):
            for i in range(1000):
                data = bytes([i % 256]) * (3 * BS + i)
                fs.write_bytes(f"/f{i}", data)
                files[f"/f{i}"] = data
        assert len(files) >= 5
        check_files(fs, files)
        with pytest.raises(errors.NoSpaceError):  # still full, still refused
            fs.write_bytes("/again", bytes(4 * BS))
        check_files(fs, files)
    with doublecrypt.open_image(image, key=KEY) as fs:
        check_files(fs, files)
        fs.remove("/f0")
        del files["/f0"]
        fs.write_bytes("/after", b"room again")
        files["/after"] = b"room again"
    with doublecrypt.open_image(image, key=KEY) as fs:
        check_files(fs, files)
    count("scenarios")


class FillingDevice(DictStore):
    """A device that fills up: writes after the first `budget` blocks fail
    with ENOSPC (nothing of the failing batch is stored)."""

    def __init__(self, blocks: dict[int, bytes], budget: int) -> None:
        self.budget = budget
        super().__init__(blocks, BS, 64)

    def write_from(self, ids: list[int], data: memoryview) -> None:
        if len(ids) > self.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(ids)
        super().write_from(ids, data)


def test_full_device_keeps_the_last_commit() -> None:
    """The device under the volume fills up at every possible point of one
    commit (data, metadata, superblock, root pointer): NoSpaceError, then a
    handle that refuses or rolls back, and a remount that shows the last
    commit, fsck clean."""
    blocks: dict[int, bytes] = {}
    with doublecrypt.FileSystem.format(DictStore(blocks, BS, 64), KEY) as fs:
        fs.write_bytes("/kept", b"committed before the device filled up")
    base = dict(blocks)
    files = {"/kept": b"committed before the device filled up"}
    new = bytes(range(256)) * 40
    for budget in range(12):
        blocks = dict(base)
        device = FillingDevice(blocks, budget)
        with doublecrypt.FileSystem(device, KEY, threads=1) as fs:
            try:
                fs.write_bytes("/new", new)
            except errors.NoSpaceError as exc:
                assert isinstance(exc.__cause__, OSError)
            else:
                assert budget >= 5  # the whole commit fit
                continue
            device.budget = 0  # completely full now
            try:
                fs.mkdir("/more")
            except errors.NoSpaceError:  # rolled back: the last commit
                check_files(fs, files)
            except errors.ReadOnlyError:
                # The root pointer write itself failed: the handle cannot
                # know whether it landed, keeps showing what it committed
                # and refuses changes until a remount decides.
                assert fs.read_bytes("/new") == new
                assert fs.read_bytes("/kept") == files["/kept"]
            else:  # pragma: no cover
                raise AssertionError("a change on a full device succeeded")
        with doublecrypt.FileSystem(DictStore(blocks, BS, 64), KEY) as fs:
            check_files(fs, files)
            fs.write_bytes("/after", b"x")  # and it is writable again
        count("scenarios")


# ---- the command ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = tmp_path_factory.mktemp("cli") / "vol.img"
    result = CliRunner().invoke(
        main,
        ["init", str(image), "--size", "1M", "--kdf", "minimum"],
        env={ENV_PASSPHRASE: PASS},
    )
    assert result.exit_code == 0, result.output
    CliRunner().invoke(main, ["mkdir", str(image), "/dir"], env={ENV_PASSPHRASE: PASS})
    return image


def tampered(image: Path, tmp: Path) -> Path:
    """The image with every data-kind block's ciphertext altered."""
    copy = tmp / "tampered.img"
    data = bytearray(image.read_bytes())
    bs = doublecrypt.image_info(image).block_size
    for start in range(3 * bs, len(data), bs):
        if data[start + 4] in (1, 3):  # superblock, namespace page
            data[start + 40] ^= 1
    copy.write_bytes(bytes(data))
    return copy


CLI_ROWS: list[tuple[str, Callable[[Path, Path], list[str]], str, int]] = [
    ("missing image", lambda i, t: ["ls", str(t / "missing.img")], PASS, EXIT_NOT_FOUND),
    ("missing path", lambda i, t: ["cat", str(i), "/missing"], PASS, EXIT_NOT_FOUND),
    ("wrong passphrase", lambda i, t: ["ls", str(i)], "wrong", EXIT_AUTH),
    ("tampered image", lambda i, t: ["ls", str(tampered(i, t))], PASS, EXIT_AUTH),
    ("foreign file", lambda i, t: ["ls", str(foreign(t))], PASS, EXIT_CORRUPT),
    ("init existing", lambda i, t: ["init", str(i), "--size", "1M", "--kdf", "minimum"], PASS, EXIT_EXISTS),
    ("mkdir existing", lambda i, t: ["mkdir", str(i), "/dir"], PASS, EXIT_EXISTS),
    ("cat a directory", lambda i, t: ["cat", str(i), "/dir"], PASS, EXIT_FAILURE),
    ("put too much", lambda i, t: ["put", str(i), str(big_file(t)), "/big"], PASS, EXIT_NO_SPACE),
    ("unknown command", lambda i, t: ["frobnicate"], PASS, EXIT_USAGE),
    ("bad size", lambda i, t: ["init", str(t / "n.img"), "--size", "lots"], PASS, EXIT_USAGE),
]  # fmt: skip


def foreign(tmp: Path) -> Path:
    path = tmp / "foreign.bin"
    path.write_bytes(os.urandom(1 << 20))
    return path


def big_file(tmp: Path) -> Path:
    path = tmp / "big.bin"
    path.write_bytes(bytes(2 << 20))
    return path


@pytest.mark.parametrize(
    ("make_args", "passphrase", "code"),
    [pytest.param(a, p, c, id=n) for n, a, p, c in CLI_ROWS],
)
def test_bad_cli_invocation(
    cli_image: Path,
    tmp_path: Path,
    make_args: Callable[[Path, Path], list[str]],
    passphrase: str,
    code: int,
) -> None:
    image = tmp_path / "vol.img"
    shutil.copy(cli_image, image)
    env = {ENV_PASSPHRASE: passphrase, "DOUBLECRYPT_DEBUG": ""}
    result = CliRunner().invoke(main, make_args(image, tmp_path), env=env)
    detail = f"exit {result.exit_code}\n{result.output}"
    assert result.exit_code == code, detail
    assert "Traceback" not in result.output, detail
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), detail
    if code != EXIT_USAGE:
        lines = [ln for ln in result.output.splitlines() if ln.startswith("doublecrypt: error: ")]
        assert len(lines) == 1, detail
    # The image is still fine.
    with doublecrypt.open_image(image, passphrase=PASS) as fs:
        assert fs.fsck().errors == 0
        assert fs.is_dir("/dir")
    count("cli")
