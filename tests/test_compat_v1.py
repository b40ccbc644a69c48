"""doublecrypt-core (v1) images: read back to the reference manifest, migrate
into native images, and fail cleanly on every kind of damage.

The reference images and their manifest live in
``../shared/vectors/doublecrypt-core-v1`` (written by the Rust seed); the
damaged images are copies made here, some re-encrypted with the known key so
that a malformed plaintext gets past authentication.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

import doublecrypt
from doublecrypt import errors
from doublecrypt.cli import main
from doublecrypt.cli.keys import ENV_NEW_PASSPHRASE, ENV_PASSPHRASE
from doublecrypt.compat import V1FileSystem, import_v1, open_v1, verify_import
from doublecrypt.compat.importer import native_size_needed, plan_import
from doublecrypt.compat.postcard import PostcardReader
from doublecrypt.compat.v1_format import (
    CHUNK_OVERHEAD,
    NULL_BLOCK,
    DirectoryEntry,
    Envelope,
    Inode,
    InodeKind,
    ObjectKind,
    V1Cipher,
    decode_directory_page,
    decode_envelope,
    decode_extent_map,
    decode_inode,
    decode_root_pointer,
    decode_storage_header,
    decode_superblock,
    framed_payload,
)

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "doublecrypt-core-v1"
IMAGES = ("ref-64k.dcfs", "ref-4k.dcfs")
MASTER_KEY = bytes(range(32))
# HKDF of MASTER_KEY (shared/reference/doublecrypt-core.md, key schedule vectors).
BLOCK_KEY = "fc9bc8dfae16b099bf7e507694e4be376cc7eeac51cbd93dc12c8e81a3deb726"
PASS = "migrated pass"
# Errors a damaged or foreign image may raise; anything else is a bug.
CLEAN_FAILURES = (errors.AuthenticationError, errors.CorruptionError, errors.UnsupportedError)


# ---- the reference manifest ------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    geometry: dict[str, tuple[int, int]]  # image -> (block size, total blocks)
    entries: dict[str, tuple[str, int | None, str | None]]  # path -> (kind, size, BLAKE3)
    generations: tuple[int, int]  # slot A, slot B


def _table_rows(text: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|--"):
            yield [cell.strip() for cell in line.strip().strip("|").split("|")]


def _read_manifest() -> Manifest:
    readme = VECTORS / "README.md"
    if not readme.is_file():
        pytest.fail(f"the doublecrypt-core reference vectors are missing: {VECTORS}")
    text = readme.read_text()
    assert "Master key: the 32 bytes 0x00, 0x01, …, 0x1f." in text
    geometry: dict[str, tuple[int, int]] = {}
    entries: dict[str, tuple[str, int | None, str | None]] = {}
    for cells in _table_rows(text):
        if len(cells) == 3 and cells[0].endswith(".dcfs"):
            geometry[cells[0]] = (int(cells[1]), int(cells[2]))
        elif len(cells) == 4 and cells[1] in ("file", "directory"):
            path, kind, size, digest = cells
            entries["/" + path] = (kind, int(size) if size else None, digest or None)
    found = re.search(r"slot A generation (\d+), slot B generation (\d+)", text)
    assert found is not None
    assert set(geometry) == set(IMAGES) and len(entries) == 8
    return Manifest(geometry, entries, (int(found[1]), int(found[2])))


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return _read_manifest()


def reference(name: str) -> Path:
    path = VECTORS / name
    if not path.is_file():
        pytest.fail(f"reference image missing: {path}")
    return path


def digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def v1_tree(fs: V1FileSystem) -> dict[str, tuple[str, int | None, str | None]]:
    """Every entry of a v1 image below the root, in the manifest's shape."""
    tree: dict[str, tuple[str, int | None, str | None]] = {}
    for dirpath, dirnames, filenames in fs.walk():
        base = dirpath.rstrip("/")
        for name in dirnames:
            tree[f"{base}/{name}"] = ("directory", None, None)
        for name in filenames:
            data = fs.read_bytes(f"{base}/{name}")
            assert fs.stat(f"{base}/{name}").size == len(data)
            tree[f"{base}/{name}"] = ("file", len(data), digest(data))
    return tree


def native_tree(fs: doublecrypt.FileSystem) -> dict[str, tuple[str, int | None, str | None]]:
    tree: dict[str, tuple[str, int | None, str | None]] = {}
    for dirpath, dirnames, filenames in fs.walk("/"):
        base = dirpath.rstrip("/")
        for name in dirnames:
            tree[f"{base}/{name}"] = ("directory", None, None)
        for name in filenames:
            data = fs.read_bytes(f"{base}/{name}")
            tree[f"{base}/{name}"] = ("file", len(data), digest(data))
    return tree


def generation_12(manifest: Manifest) -> dict[str, tuple[str, int | None, str | None]]:
    """The tree slot B names: the last commit (sparse.bin's contents) not yet made."""
    older = dict(manifest.entries)
    older["/sparse.bin"] = ("file", 0, digest(b""))
    return older


# ---- reading the reference images --------------------------------------------------


@pytest.mark.parametrize("name", IMAGES)
def test_reference_image_reads_back_to_the_manifest(name: str, manifest: Manifest) -> None:
    with open_v1(reference(name), MASTER_KEY) as fs:
        assert (fs.block_size, fs.total_blocks) == manifest.geometry[name]
        assert fs.chunk_size == fs.block_size - CHUNK_OVERHEAD
        assert (fs.generation, fs.root_slot, fs.skipped_roots) == (manifest.generations[0], "A", ())
        assert v1_tree(fs) == manifest.entries
        assert sorted(fs.listdir("/")) == [
            "docs",
            "empty.txt",
            "emptydir",
            "hello.txt",
            "sparse.bin",
        ]
        deep = fs.read_bytes("/docs/nested/deep.bin")
        assert deep == bytes(i % 251 for i in range(200_000))
        assert fs.read_bytes("/sparse.bin") == bytes(100_000) + b"TAIL"
        # Inode ids 2..9 in creation order; v1 keeps Unix seconds.
        stats = {s.name: s for s in fs.scandir("/")}
        assert stats["hello.txt"].inode_id == 2 and stats["sparse.bin"].inode_id == 9
        assert stats["docs"].is_dir and stats["docs"].size == 0
        assert stats["hello.txt"].mtime_ns == stats["hello.txt"].modified_at * 10**9


@pytest.mark.parametrize("name", IMAGES)
def test_open_gives_a_seekable_read_only_file(name: str) -> None:
    expected = bytes(i % 251 for i in range(200_000))
    with open_v1(reference(name), MASTER_KEY) as fs:
        chunk = fs.chunk_size
        with fs.open("/docs/nested/deep.bin") as f:
            assert f.readable() and f.seekable() and not f.writable()
            assert f.read(10) == expected[:10]
            f.seek(chunk - 5)  # across a chunk boundary
            assert f.read(10) == expected[chunk - 5 : chunk + 5]
            assert f.seek(-4, io.SEEK_END) == 200_000 - 4
            assert f.read() == expected[-4:]
            assert f.read() == b""
            f.seek(0)
            assert f.read() == expected
            with pytest.raises(errors.InvalidArgumentError):
                f.seek(-1)
        with fs.open("empty.txt") as f:
            assert f.read() == b""
    with pytest.raises(errors.InvalidArgumentError):
        fs.read_bytes("/hello.txt")  # the reader is closed


def test_path_rules_follow_the_seed() -> None:
    with open_v1(reference("ref-4k.dcfs"), MASTER_KEY) as fs:
        assert fs.stat("").is_dir and fs.stat("/").path == "/"
        assert fs.stat("docs/readme.md") == fs.stat("/docs/readme.md/")  # slashes trimmed
        assert fs.listdir("//docs//") == ["readme.md", "nested"]
        assert fs.exists("/docs/nested") and not fs.exists("/docs/nope")
        for missing in ("/nope", "docs//readme.md", "/docs/.", "/docs/../hello.txt"):
            with pytest.raises(errors.NotFoundError):
                fs.stat(missing)  # '.', '..' and '' are ordinary (absent) names
        with pytest.raises(errors.NotADirectoryError):
            fs.stat("/hello.txt/x")
        with pytest.raises(errors.NotADirectoryError):
            fs.listdir("/hello.txt")
        with pytest.raises(errors.NotAFileError):
            fs.read_bytes("/docs")
        with pytest.raises(errors.NotAFileError):
            fs.open("/")
        with pytest.raises(errors.InvalidArgumentError):
            fs.stat(b"/hello.txt")  # type: ignore[arg-type]
        assert [d for d, _, _ in fs.walk("/docs")] == ["/docs", "/docs/nested"]
    for bad_key in (b"", "not bytes"):
        with pytest.raises(errors.InvalidArgumentError):
            open_v1(reference("ref-4k.dcfs"), bad_key)  # type: ignore[arg-type]
    with pytest.raises(errors.NotFoundError):
        open_v1(VECTORS / "no-such.dcfs", MASTER_KEY)


@pytest.mark.parametrize(
    ("master", "block_key"),
    [
        (MASTER_KEY, BLOCK_KEY),
        (bytes(32), "903f8ae427e5dffd64ed296e2b276122364ec20badbf3ee06ce136a09f6f146e"),
        (b"\xaa" * 32, "e9d4a761542715bbba38970858906086a8dea306b7a83a758f98a960e9a438da"),
    ],
)
def test_key_schedule_matches_the_research_vectors(master: bytes, block_key: str) -> None:
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(bytes.fromhex(block_key)).encrypt(nonce, b"payload", None)
    envelope = Envelope(ObjectKind.INODE, 1, nonce, sealed)
    assert V1Cipher(master).open(envelope, ObjectKind.INODE) == b"payload"
    with pytest.raises(errors.CorruptionError):
        V1Cipher(master).open(envelope, ObjectKind.EXTENT_MAP)  # the kind is checked too


# ---- migration ------------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("block_size", [4096, 65536])
def test_import_through_the_python_api(
    name: str, block_size: int, manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(flags)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("doublecrypt.compat.v1_reader.os.open", spy)
    target = tmp_path / "new.img"
    with open_v1(reference(name), MASTER_KEY) as old:
        size = native_size_needed(plan_import(old), block_size)
        key = os.urandom(32)
        with doublecrypt.open_image(
            target, key=key, create=True, size=size, block_size=block_size
        ) as new:
            report = import_v1(old, new)
            assert (report.files, report.directories, report.bytes) == (5, 3, 300_043)
            assert (report.source_generation, report.skipped_roots) == (13, ())
            checked = verify_import(old, new)
            assert checked.ok and (checked.files, checked.directories) == (5, 3)
            v1_mtimes = {s.path: s.mtime_ns for s in old.scandir("/")}
    assert opened == [os.O_RDONLY | os.O_CLOEXEC]  # the old image is never opened for writing
    with doublecrypt.open_image(target, key=key, read_only=True) as new:
        fsck = new.fsck()
        assert (fsck.files, fsck.directories, fsck.errors, fsck.leaked_blocks) == (5, 3, 0, 0)
        assert native_tree(new) == manifest.entries
        assert {f"/{e.name}": e.stat.mtime_ns for e in new.scandir("/")} == v1_mtimes


def test_import_into_a_subdirectory_and_verify_finds_differences(tmp_path: Path) -> None:
    with (
        open_v1(reference("ref-4k.dcfs"), MASTER_KEY) as old,
        doublecrypt.open_image(tmp_path / "n.img", key=bytes(32), create=True, size=4 << 20) as new,
    ):
        import_v1(old, new, "/old/v1")
        assert verify_import(old, new, "/old/v1").ok
        assert new.read_bytes("/old/v1/docs/readme.md") == old.read_bytes("/docs/readme.md")
        with pytest.raises(errors.AlreadyExistsError):
            import_v1(old, new, "/old/v1")  # never overwrites
        new.write_bytes("/old/v1/hello.txt", b"changed! same size..")
        new.remove("/old/v1/empty.txt")
        new.write_bytes("/old/v1/docs/extra", b"")
        problems = verify_import(old, new, "/old/v1").mismatches
        assert any("hello.txt: contents differ" in p for p in problems)
        assert any("empty.txt: missing" in p for p in problems)
        assert any("entries the original lacks: extra" in p for p in problems)
        with pytest.raises(errors.InvalidArgumentError):
            import_v1(old, new, "relative")


def cli(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    kwargs: dict[str, Any] = {}
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        kwargs["mix_stderr"] = False  # click < 8.2 mixes them otherwise
    full_env = {ENV_PASSPHRASE: PASS, ENV_NEW_PASSPHRASE: "", "DOUBLECRYPT_DEBUG": ""}
    result = CliRunner(**kwargs).invoke(
        main, list(args), env={**full_env, **(env or {})}, prog_name="doublecrypt"
    )
    detail = f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert result.exit_code == code, detail
    assert "Traceback" not in result.stdout + result.stderr, detail
    if code not in (0, 2):
        assert result.stderr.startswith("doublecrypt: error: "), detail
    return result


@pytest.fixture
def old_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.key"
    path.write_text(MASTER_KEY.hex() + "\n")
    return path


@pytest.mark.parametrize("name", IMAGES)
def test_import_through_the_command_with_verify(
    name: str, manifest: Manifest, tmp_path: Path, old_key_file: Path
) -> None:
    new = tmp_path / "new.img"
    out = cli(
        "import-v1", str(reference(name)), str(new), "--old-key-file", str(old_key_file),
        "--verify", "--kdf", "minimum",
    ).stdout  # fmt: skip
    assert "imported 5 files and 3 directories" in out and "verified: 5 files" in out
    block_size, total = manifest.geometry[name]
    info = doublecrypt.image_info(new)
    assert (info.block_size, info.size, len(info.key_slots)) == (block_size, block_size * total, 1)
    assert "clean" in cli("fsck", str(new)).stdout
    with doublecrypt.open_image(new, passphrase=PASS, read_only=True) as fs:
        assert native_tree(fs) == manifest.entries


def test_command_options_and_failures(tmp_path: Path, old_key_file: Path) -> None:
    old = str(reference("ref-64k.dcfs"))
    new = tmp_path / "new.img"
    secret = tmp_path / "pass"
    secret.write_text("from a file\n")
    cli(
        "import-v1", old, str(new), "--old-key-file", str(old_key_file), "--block-size", "4K",
        "--size", "1M", "--passphrase-file", str(secret), "--kdf", "minimum",
    )  # fmt: skip
    assert doublecrypt.image_info(new).block_size == 4096 and new.stat().st_size == 1 << 20
    unlocked = doublecrypt.unlock_image(new, "from a file")
    unlocked[:] = bytes(len(unlocked))
    cli("import-v1", old, str(new), "--old-key-file", str(old_key_file), code=4)  # exists

    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(bytes(32))
    other = tmp_path / "other.img"
    cli("import-v1", old, str(other), "--old-key-file", str(wrong), code=5)
    cli(
        "import-v1", old, str(other), "--old-key-file", str(old_key_file), "--size", "64K",
        "--block-size", "4K", "--kdf", "minimum", code=7,
    )  # fmt: skip
    broken = tmp_path / "broken.dcfs"
    broken.write_bytes(reference("ref-4k.dcfs").read_bytes()[:100_000])
    cli("import-v1", str(broken), str(other), "--old-key-file", str(old_key_file), code=6)
    assert not other.exists()  # nothing is left behind by a failed import
    cli("--remote", "127.0.0.1:9", "import-v1", old, str(other), "--old-key-file", "x", code=2)


def test_command_warns_when_it_falls_back_to_the_older_root(
    tmp_path: Path, old_key_file: Path, manifest: Manifest
) -> None:
    torn = ImageCopy(reference("ref-4k.dcfs"), tmp_path / "torn.dcfs")
    torn.flip(1, 20)  # inside slot A's checksum
    new = tmp_path / "new.img"
    result = cli(
        "import-v1", str(torn.path), str(new), "--old-key-file", str(old_key_file),
        "--verify", "--kdf", "minimum",
    )  # fmt: skip
    assert "warning" in result.stderr and "reading generation 12 instead" in result.stderr
    with doublecrypt.open_image(new, passphrase=PASS, read_only=True) as fs:
        assert native_tree(fs) == generation_12(manifest)


# ---- damaged copies ---------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class ImageCopy:
    """A writable copy of a reference image, with the seed's key for surgery."""

    def __init__(self, source: Path, target: Path) -> None:
        shutil.copyfile(source, target)
        self.path = target
        with open(target, "rb") as f:
            header = decode_storage_header(framed_payload(f.read(32)) or b"")
        self.block_size = header.block_size
        self.aead = ChaCha20Poly1305(bytes.fromhex(BLOCK_KEY))

    def block(self, index: int) -> bytearray:
        with open(self.path, "rb") as f:
            f.seek(index * self.block_size)
            return bytearray(f.read(self.block_size))

    def write_block(self, index: int, data: bytes | bytearray) -> None:
        with open(self.path, "r+b") as f:
            f.seek(index * self.block_size)
            f.write(data)

    def flip(self, index: int, offset: int, bit: int = 0) -> None:
        data = self.block(index)
        data[offset] ^= 1 << bit
        self.write_block(index, data)

    def plaintext(self, index: int) -> bytes:
        envelope = decode_envelope(framed_payload(bytes(self.block(index))) or b"")
        return self.aead.decrypt(envelope.nonce, envelope.ciphertext, None)

    def seal(self, index: int, kind: int, plaintext: bytes, *, version: int = 1) -> None:
        """Replace the object at ``index`` by ``plaintext``, encrypted with the key."""
        nonce = os.urandom(12)
        sealed = self.aead.encrypt(nonce, plaintext, None)
        envelope = varint(kind) + varint(version) + nonce + varint(len(sealed)) + sealed
        data = self.block(index)
        data[: 4 + len(envelope)] = len(envelope).to_bytes(4, "little") + envelope
        self.write_block(index, data)

    def root_inode_block(self) -> int:
        pointer = decode_root_pointer(framed_payload(bytes(self.block(1))) or b"", 1)
        return decode_superblock(self.plaintext(pointer.superblock_block)).root_inode_block

    def entry(self, path: str) -> tuple[int, DirectoryEntry]:
        """The directory page block holding ``path``'s entry, and the entry."""
        inode_block = self.root_inode_block()
        *parents, leaf = path.strip("/").split("/")
        for name in [*parents, leaf]:
            page = decode_inode(self.plaintext(inode_block)).directory_page_block
            assert page is not None
            found = next(e for e in decode_directory_page(self.plaintext(page)) if e.name == name)
            if name == leaf:
                return page, found
            inode_block = found.inode_block
        raise AssertionError(path)


def encode_inode(inode: Inode, *, size: int) -> bytes:
    refs = (inode.directory_page_block, inode.extent_map_block)
    fields = [inode.id, inode.kind, size, *(NULL_BLOCK if r is None else r for r in refs)]
    return b"".join(varint(v) for v in (*fields, inode.created_at, inode.modified_at))


def encode_directory_page(entries: list[DirectoryEntry]) -> bytes:
    out = bytearray(varint(len(entries)))
    for e in entries:
        raw = e.name.encode()
        out += varint(len(raw)) + raw + varint(e.inode_block) + varint(e.inode_id) + varint(e.kind)
    return bytes(out)


@pytest.fixture(params=IMAGES)
def damaged(request: pytest.FixtureRequest, tmp_path: Path) -> ImageCopy:
    return ImageCopy(reference(request.param), tmp_path / "copy.dcfs")


def expect(cls: type[Exception], action: Callable[[], object]) -> None:
    with pytest.raises(cls):
        action()


def open_and_read_everything(path: Path) -> tuple[V1FileSystem, dict[str, Any]]:
    with open_v1(path, MASTER_KEY) as fs:
        return fs, v1_tree(fs)


def test_wrong_key_is_an_authentication_error(damaged: ImageCopy) -> None:
    for key in (bytes(32), MASTER_KEY[:31], MASTER_KEY + b"\0"):
        with pytest.raises(errors.AuthenticationError):
            open_v1(damaged.path, key)


def test_a_flipped_bit_in_either_root_pointer_falls_back_to_the_other(
    damaged: ImageCopy, manifest: Manifest
) -> None:
    gen_a, gen_b = manifest.generations
    for slot, survivor, generation in ((1, "B", gen_b), (2, "A", gen_a)):
        length = int.from_bytes(damaged.block(slot)[:4], "little")
        for offset in range(4 + length):  # every byte of the framed pointer
            damaged.flip(slot, offset, offset % 8)
            with open_v1(damaged.path, MASTER_KEY) as fs:
                assert (fs.root_slot, fs.generation) == (survivor, generation), offset
                assert fs.stat("/sparse.bin").size == (100_004 if survivor == "A" else 0)
            damaged.flip(slot, offset, offset % 8)
    length_a = int.from_bytes(damaged.block(1)[:4], "little")
    damaged.flip(1, 4 + length_a - 1)  # the checksum's last byte: a torn slot A
    fs, tree = open_and_read_everything(damaged.path)
    assert tree == generation_12(manifest)
    assert fs.skipped_roots and "checksum" in fs.skipped_roots[0]


def test_both_root_pointers_broken(damaged: ImageCopy) -> None:
    for slot in (1, 2):
        damaged.flip(slot, 10)
    expect(errors.CorruptionError, lambda: open_v1(damaged.path, MASTER_KEY))
    for slot in (1, 2):
        damaged.write_block(slot, bytes(damaged.block_size))  # empty slots
    expect(errors.CorruptionError, lambda: open_v1(damaged.path, MASTER_KEY))


def test_an_envelope_length_past_the_block(damaged: ImageCopy) -> None:
    bs = damaged.block_size
    _, entry = damaged.entry("/docs/readme.md")
    for length in (bs - 3, bs, 0xFFFFFFFF):
        data = damaged.block(entry.inode_block)
        data[:4] = length.to_bytes(4, "little")
        damaged.write_block(entry.inode_block, data)
        with open_v1(damaged.path, MASTER_KEY) as fs:
            assert "readme.md" in fs.listdir("/docs")  # the page is fine...
            with pytest.raises(errors.CorruptionError):
                fs.stat("/docs/readme.md")  # ...not the inode it names
    root = damaged.root_inode_block()
    damaged.write_block(root, (bs - 3).to_bytes(4, "little"))
    expect(errors.CorruptionError, lambda: open_v1(damaged.path, MASTER_KEY))


def test_unknown_enum_values(damaged: ImageCopy) -> None:
    page, entry = damaged.entry("/hello.txt")
    inode = bytearray(damaged.plaintext(entry.inode_block))
    kind_at = len(varint(decode_inode(bytes(inode)).id))
    inode[kind_at] = 2  # InodeKind has variants 0 and 1
    damaged.seal(entry.inode_block, ObjectKind.INODE, bytes(inode))
    with open_v1(damaged.path, MASTER_KEY) as fs:
        expect(errors.CorruptionError, lambda: fs.read_bytes("/hello.txt"))
        assert fs.read_bytes("/docs/readme.md")  # the rest stays readable
    entries = decode_directory_page(damaged.plaintext(page))
    raw = bytearray(encode_directory_page(entries))
    raw[-1] = 7  # the last entry's kind
    damaged.seal(page, ObjectKind.DIRECTORY_PAGE, bytes(raw))
    expect(errors.CorruptionError, lambda: open_and_read_everything(damaged.path))
    damaged.seal(damaged.root_inode_block(), 6, b"")  # ObjectKind has 6 variants
    expect(errors.CorruptionError, lambda: open_v1(damaged.path, MASTER_KEY))


def test_unknown_format_versions(damaged: ImageCopy) -> None:
    root = damaged.root_inode_block()
    damaged.seal(root, ObjectKind.INODE, damaged.plaintext(root), version=2)
    expect(errors.UnsupportedError, lambda: open_v1(damaged.path, MASTER_KEY))
    header = damaged.block(0)
    header[4 + 8] = 2  # StorageHeader.version
    damaged.write_block(0, header)
    expect(errors.UnsupportedError, lambda: open_v1(damaged.path, MASTER_KEY))


def test_altered_ciphertext_is_an_authentication_error(damaged: ImageCopy) -> None:
    _, entry = damaged.entry("/docs/nested/deep.bin")
    extents_block = decode_inode(damaged.plaintext(entry.inode_block)).extent_map_block
    assert extents_block is not None
    data_block = decode_extent_map(damaged.plaintext(extents_block))[1].data_block
    damaged.flip(data_block, 100)
    with open_v1(damaged.path, MASTER_KEY) as fs:
        expect(errors.AuthenticationError, lambda: fs.read_bytes("/docs/nested/deep.bin"))
        with fs.open("/docs/nested/deep.bin") as f:
            assert f.read(fs.chunk_size) == bytes(i % 251 for i in range(fs.chunk_size))
            expect(errors.AuthenticationError, lambda: f.read(1))
    damaged.flip(damaged.root_inode_block(), 10)  # inside the nonce
    expect(errors.AuthenticationError, lambda: open_v1(damaged.path, MASTER_KEY))


def test_inconsistent_trees(damaged: ImageCopy) -> None:
    _, hello = damaged.entry("/hello.txt")
    inode = decode_inode(damaged.plaintext(hello.inode_block))
    assert damaged.plaintext(hello.inode_block) == encode_inode(inode, size=inode.size)
    for size in (21, 2**63):  # the extents no longer cover the size exactly
        damaged.seal(hello.inode_block, ObjectKind.INODE, encode_inode(inode, size=size))
        with open_v1(damaged.path, MASTER_KEY) as fs, pytest.raises(errors.CorruptionError):
            fs.read_bytes("/hello.txt")
    # A directory that contains its own parent: walking must not loop.
    _, nested = damaged.entry("/docs/nested")
    _, docs = damaged.entry("/docs")
    nested_page = decode_inode(damaged.plaintext(nested.inode_block)).directory_page_block
    assert nested_page is not None
    loop = DirectoryEntry("loop", docs.inode_block, docs.inode_id, InodeKind.DIRECTORY)
    entries = [*decode_directory_page(damaged.plaintext(nested_page)), loop]
    damaged.seal(nested_page, ObjectKind.DIRECTORY_PAGE, encode_directory_page(entries))
    with open_v1(damaged.path, MASTER_KEY) as fs:
        assert fs.listdir("/docs/nested/loop/nested/loop") == ["readme.md", "nested"]
        expect(errors.CorruptionError, lambda: list(fs.walk()))
        expect(errors.CorruptionError, lambda: plan_import(fs))
    # An entry whose kind disagrees with its inode.
    wrong = [DirectoryEntry(e.name, e.inode_block, e.inode_id, InodeKind.FILE) for e in entries]
    damaged.seal(nested_page, ObjectKind.DIRECTORY_PAGE, encode_directory_page(wrong))
    with open_v1(damaged.path, MASTER_KEY) as fs:
        expect(errors.CorruptionError, lambda: fs.stat("/docs/nested/loop"))


def test_names_a_native_volume_cannot_hold_are_refused(
    damaged: ImageCopy, tmp_path: Path, old_key_file: Path
) -> None:
    page, hello = damaged.entry("/hello.txt")
    renamed = [
        DirectoryEntry(".", e.inode_block, e.inode_id, e.kind) if e == hello else e
        for e in decode_directory_page(damaged.plaintext(page))
    ]
    damaged.seal(page, ObjectKind.DIRECTORY_PAGE, encode_directory_page(renamed))
    with open_v1(damaged.path, MASTER_KEY) as fs:
        assert fs.read_bytes("/.") == fs.read_bytes("./") == b"Hello, doublecrypt!\n"
        with pytest.raises(errors.UnsupportedError, match=r"'\.' is not allowed"):
            plan_import(fs)
    new = tmp_path / "new.img"
    cli("import-v1", str(damaged.path), str(new), "--old-key-file", str(old_key_file), code=6)
    assert not new.exists()


def test_truncated_and_foreign_files(damaged: ImageCopy, tmp_path: Path) -> None:
    whole = damaged.path.read_bytes()
    for keep in (0, 3, 30, damaged.block_size * 3, len(whole) // 2, len(whole) - 1):
        damaged.path.write_bytes(whole[:keep])
        expect(errors.CorruptionError, lambda: open_v1(damaged.path, MASTER_KEY))
    damaged.path.write_bytes(os.urandom(len(whole)))
    expect(errors.CorruptionError, lambda: open_v1(damaged.path, MASTER_KEY))
    native = tmp_path / "native.img"
    doublecrypt.open_image(native, key=MASTER_KEY, create=True, size=1 << 20).close()
    expect(errors.CorruptionError, lambda: open_v1(native, MASTER_KEY))
    expect(errors.StorageIOError, lambda: open_v1(tmp_path, MASTER_KEY))


# ---- random input -------------------------------------------------------------------------

_DECODERS: list[Callable[[bytes], object]] = [
    decode_storage_header,
    lambda data: decode_root_pointer(data, 1),
    decode_envelope,
    decode_superblock,
    decode_inode,
    decode_directory_page,
    decode_extent_map,
]


@given(st.binary(max_size=400))
def test_decoders_take_random_bytes(data: bytes) -> None:
    for decode in _DECODERS:
        with contextlib.suppress(*CLEAN_FAILURES):
            decode(data)
    block = framed_payload(data)
    if block is not None:
        with contextlib.suppress(*CLEAN_FAILURES):
            decode_envelope(block)


@given(st.binary(max_size=40), st.integers(0, 8))
def test_postcard_reader_takes_random_bytes(data: bytes, variants: int) -> None:
    reader = PostcardReader(data, "fuzz")
    try:
        for read in (reader.u64, reader.u32, reader.string, reader.byte_seq, reader.u8):
            read()
        reader.enum_index(variants, "E")
        reader.seq_len(3, "item")
        reader.finish()
    except errors.CorruptionError:
        pass


def test_postcard_reader_strictness() -> None:
    assert PostcardReader(b"\xff\xff\xff\xff\x0f", "t").u32() == 2**32 - 1
    assert PostcardReader(b"\xff" * 9 + b"\x01", "t").u64() == 2**64 - 1
    for bad, read in (
        (b"\xff\xff\xff\xff\x10", "u32"),  # overflows u32
        (b"\xff" * 9 + b"\x02", "u64"),  # overflows u64
        (b"\x80\x00", "u64"),  # overlong zero
        (b"\x80", "u64"),  # runs past the end
        (b"\x05abc", "string"),
        (b"\x02\xc3\x28", "string"),  # invalid UTF-8
    ):
        expect(errors.CorruptionError, getattr(PostcardReader(bad, "t"), read))
    reader = PostcardReader(b"\x01\x00", "t")
    assert reader.u8() == 1
    expect(errors.CorruptionError, reader.finish)
    expect(errors.CorruptionError, lambda: PostcardReader(b"\x02", "t").enum_index(2, "E"))
    expect(errors.CorruptionError, lambda: PostcardReader(b"\x10", "t").seq_len(1, "x"))


@pytest.fixture(scope="module")
def mutable_copy(tmp_path_factory: pytest.TempPathFactory) -> ImageCopy:
    return ImageCopy(reference("ref-4k.dcfs"), tmp_path_factory.mktemp("fuzz") / "f.dcfs")


@pytest.fixture(scope="module")
def used_blocks(mutable_copy: ImageCopy) -> list[int]:
    """Header, both root pointers and every object of both generations' trees."""
    copy = mutable_copy
    used = {0, 1, 2}
    for slot in (1, 2):
        pointer = decode_root_pointer(framed_payload(bytes(copy.block(slot))) or b"", slot)
        used.add(pointer.superblock_block)
        pending = [decode_superblock(copy.plaintext(pointer.superblock_block)).root_inode_block]
        while pending:
            block = pending.pop()
            used.add(block)
            inode = decode_inode(copy.plaintext(block))
            for ref in (inode.directory_page_block, inode.extent_map_block):
                if ref is not None:
                    used.add(ref)
            if inode.directory_page_block is not None:
                page = decode_directory_page(copy.plaintext(inode.directory_page_block))
                pending.extend(e.inode_block for e in page)
            if inode.extent_map_block is not None:
                extents = decode_extent_map(copy.plaintext(inode.extent_map_block))
                used.update(e.data_block for e in extents)
    return sorted(used)


@given(data=st.data())
def test_a_flipped_bit_anywhere_never_gives_wrong_data(
    data: st.DataObject, mutable_copy: ImageCopy, used_blocks: list[int], manifest: Manifest
) -> None:
    copy = mutable_copy
    block = data.draw(st.sampled_from(used_blocks))
    length = int.from_bytes(copy.block(block)[:4], "little")
    offset = data.draw(st.integers(0, min(4 + length, copy.block_size) - 1))
    bit = data.draw(st.integers(0, 7))
    copy.flip(block, offset, bit)
    try:
        fs, tree = open_and_read_everything(copy.path)
    except CLEAN_FAILURES:
        return
    finally:
        copy.flip(block, offset, bit)
    if fs.generation == manifest.generations[0]:
        assert tree == manifest.entries
    else:
        assert (fs.root_slot, tree) == ("B", generation_12(manifest))
