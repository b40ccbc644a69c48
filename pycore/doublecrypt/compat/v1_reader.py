"""Read-only access to a doublecrypt-core (v1) image: :class:`V1FileSystem`.

The image is opened ``O_RDONLY`` and never written. Paths follow the seed's
rules: ``/``-separated, leading and trailing ``/`` ignored, ``""`` and ``"/"``
name the root; components are compared as exact strings, so ``.`` and ``..``
are ordinary names and ``a//b`` looks for an empty name (which cannot exist).

Every object read is checked beyond what the seed checks (see
:mod:`.v1_format`), and so is the tree: an entry's kind and inode id must match
the inode it points to, a directory must have its page, and a file's extents
must be exactly chunks ``0 .. n-1`` of ``block_size - 200`` bytes (the last
one shorter) for its size. The seed's writer always fills a gap with real
zero chunks, so a missing chunk can only be damage; refusing it also bounds
what a forged size can make a reader allocate. Failures raise
:mod:`doublecrypt.errors`: AuthenticationError (wrong key, altered
ciphertext), CorruptionError (anything structurally wrong), UnsupportedError
(an unknown format version), NotFoundError / NotADirectoryError /
NotAFileError (paths), InvalidArgumentError (bad arguments, closed reader).
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from typing_extensions import Buffer

from .. import errors
from .v1_format import (
    BLOCK_ROOT_POINTER_A,
    BLOCK_ROOT_POINTER_B,
    CHUNK_OVERHEAD,
    FIRST_DATA_BLOCK,
    LENGTH_PREFIX_BYTES,
    DirectoryEntry,
    ExtentEntry,
    Inode,
    InodeKind,
    ObjectKind,
    RootChoice,
    StorageHeader,
    V1Cipher,
    decode_directory_page,
    decode_envelope,
    decode_extent_map,
    decode_inode,
    decode_storage_header,
    framed_payload,
    recover_root,
)

__all__ = ["V1FileSystem", "V1Stat", "open_v1"]

# The longest StorageHeader encoding: magic 8 + u32 5 + u32 5 + u64 10.
_MAX_HEADER_PAYLOAD = 28
# Larger blocks than any seed user is known to pick; a forged header must
# not make one block read allocate gigabytes.
MAX_BLOCK_SIZE = 16 << 20
# Decoded metadata objects kept, as the seed's own metadata cache.
_CACHE_ENTRIES = 256
_NATIVE_MAGIC = b"DCRYPTFS"


@dataclass(frozen=True, slots=True)
class V1Stat:
    """What a v1 inode records about a file or directory."""

    path: str  # absolute, normalised: "/docs/readme.md"
    kind: InodeKind
    size: int  # bytes of a file; 0 for a directory
    inode_id: int
    created_at: int  # Unix seconds
    modified_at: int  # Unix seconds

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_dir(self) -> bool:
        return self.kind == InodeKind.DIRECTORY

    @property
    def is_file(self) -> bool:
        return self.kind == InodeKind.FILE

    @property
    def mtime_ns(self) -> int:
        return self.modified_at * 1_000_000_000


def _components(path: str) -> list[str]:
    if not isinstance(path, str):
        raise errors.InvalidArgumentError(f"path must be str, not {type(path).__name__}")
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class _MetadataCache:
    """A small LRU of decrypted metadata plaintexts, keyed by block id and
    the kind the block was checked to hold (so a block named as another kind
    elsewhere is still refused)."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[tuple[int, ObjectKind], bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: tuple[int, ObjectKind]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[int, ObjectKind], value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


class V1FileSystem:
    """A doublecrypt-core image opened read-only with its master key.

    Attributes: ``block_size``, ``total_blocks`` (from the header),
    ``chunk_size`` (file bytes per data block), ``generation`` and
    ``root_slot`` (``"A"``/``"B"``) of the root pointer mounted, and
    ``skipped_roots``: what was wrong with a slot that may have named a newer
    tree (empty on a healthy image; otherwise the tree read may be an older
    generation than the last one written)."""

    def __init__(self, path: str | os.PathLike[str], key: Buffer) -> None:
        try:
            self._cipher = V1Cipher(key)
        except TypeError:
            raise errors.InvalidArgumentError("the key must be bytes-like") from None
        self.path = os.fspath(path)
        self._fd = -1
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise errors.error_for_status(-1, "no such image", self.path) from None
        except OSError as exc:
            raise errors.StorageIOError(exc.errno, exc.strerror, self.path) from None
        self._cache = _MetadataCache(_CACHE_ENTRIES)
        try:
            file_size = self._file_size()
            header = self._read_header(file_size)
            self.block_size = header.block_size
            self.total_blocks = header.total_blocks
            self.chunk_size = max(0, header.block_size - CHUNK_OVERHEAD)
            # A seed store opened without a block count uses the whole file,
            # so references may go past the header's count (never past the file).
            self._blocks_in_file = file_size // header.block_size
            root = recover_root(
                {
                    slot: self._read_block(slot)
                    for slot in (BLOCK_ROOT_POINTER_A, BLOCK_ROOT_POINTER_B)
                },
                self._open_object,
            )
            self._root: RootChoice = root
            self._root_inode = decode_inode(
                self._metadata(root.superblock.root_inode_block, ObjectKind.INODE)
            )
            if self._root_inode.kind != InodeKind.DIRECTORY:
                raise errors.CorruptionError("doublecrypt-core root inode is not a directory")
        except BaseException:
            self.close()
            raise

    # -- life cycle ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> V1FileSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generation(self) -> int:
        return self._root.pointer.generation

    @property
    def root_slot(self) -> str:
        return self._root.pointer.slot_name

    @property
    def skipped_roots(self) -> tuple[str, ...]:
        return self._root.skipped

    # -- blocks and objects ----------------------------------------------------------

    def _file_size(self) -> int:
        # Block devices report st_size 0; seeking to the end works for both.
        try:
            return os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as exc:
            raise errors.StorageIOError(exc.errno, exc.strerror, self.path) from None

    def _read_exact(self, offset: int, length: int) -> bytes:
        if self._fd < 0:
            raise errors.InvalidArgumentError("I/O operation on a closed doublecrypt-core image")
        try:
            data = os.pread(self._fd, length, offset)
        except OSError as exc:
            raise errors.StorageIOError(exc.errno, exc.strerror, self.path) from None
        if len(data) != length:
            raise errors.CorruptionError(f"doublecrypt-core image is truncated: {self.path}")
        return data

    def _read_header(self, file_size: int) -> StorageHeader:
        prefix = self._read_exact(0, min(file_size, LENGTH_PREFIX_BYTES + _MAX_HEADER_PAYLOAD))
        if prefix.startswith(_NATIVE_MAGIC):
            raise errors.CorruptionError(
                f"{self.path} is a native doublecrypt image, not a doublecrypt-core one"
            )
        payload = framed_payload(prefix)
        if payload is None:
            raise errors.CorruptionError(f"not a doublecrypt-core image: {self.path}")
        header = decode_storage_header(payload)
        if header.block_size < len(prefix):
            raise errors.CorruptionError(
                f"doublecrypt-core header: block size {header.block_size} cannot hold the header"
            )
        if header.block_size > MAX_BLOCK_SIZE:
            raise errors.UnsupportedError(
                f"doublecrypt-core block size {header.block_size} (this reader takes at "
                f"most {MAX_BLOCK_SIZE})"
            )
        if header.total_blocks <= FIRST_DATA_BLOCK:
            raise errors.CorruptionError(
                f"doublecrypt-core header: {header.total_blocks} blocks leave no room for data"
            )
        if file_size < header.total_blocks * header.block_size:
            raise errors.CorruptionError(
                f"doublecrypt-core image is truncated: {file_size} bytes, the header says "
                f"{header.total_blocks} blocks of {header.block_size}"
            )
        return header

    def _read_block(self, block: int) -> bytes:
        return self._read_exact(block * self.block_size, self.block_size)

    def _open_object(self, block: int, kind: ObjectKind) -> bytes:
        """Read, frame-check, decode and decrypt the ``kind`` object at ``block``."""
        if not FIRST_DATA_BLOCK <= block < self._blocks_in_file:
            raise errors.CorruptionError(
                f"doublecrypt-core reference to block {block}, outside "
                f"{FIRST_DATA_BLOCK}..{self._blocks_in_file - 1}"
            )
        payload = framed_payload(self._read_block(block))
        if payload is None:
            raise errors.CorruptionError(f"doublecrypt-core block {block} holds no object")
        return self._cipher.open(decode_envelope(payload), kind)

    def _metadata(self, block: int, kind: ObjectKind) -> bytes:
        cached = self._cache.get((block, kind))
        if cached is None:
            cached = self._open_object(block, kind)
            self._cache.put((block, kind), cached)
        return cached

    def _child_inode(self, entry: DirectoryEntry) -> Inode:
        inode = decode_inode(self._metadata(entry.inode_block, ObjectKind.INODE))
        if inode.kind != entry.kind or inode.id != entry.inode_id:
            raise errors.CorruptionError(
                f"doublecrypt-core entry {entry.name!r} does not match its inode "
                f"(kind {entry.kind.name}/{inode.kind.name}, id {entry.inode_id}/{inode.id})"
            )
        return inode

    def _entries(self, inode: Inode) -> list[DirectoryEntry]:
        if inode.directory_page_block is None:
            raise errors.CorruptionError(
                f"doublecrypt-core directory inode {inode.id} has no directory page"
            )
        return decode_directory_page(
            self._metadata(inode.directory_page_block, ObjectKind.DIRECTORY_PAGE)
        )

    def _extents(self, inode: Inode) -> list[ExtentEntry]:
        """The file's extents, checked to cover exactly its size."""
        if inode.size == 0 and inode.extent_map_block is None:
            return []
        if inode.extent_map_block is None:
            raise errors.CorruptionError(
                f"doublecrypt-core file inode {inode.id} of {inode.size} bytes has no extent map"
            )
        extents = decode_extent_map(self._metadata(inode.extent_map_block, ObjectKind.EXTENT_MAP))
        if inode.size and not self.chunk_size:
            raise errors.CorruptionError(
                f"doublecrypt-core blocks of {self.block_size} bytes cannot hold file data"
            )
        chunks = -(-inode.size // self.chunk_size) if inode.size else 0
        if len(extents) != chunks:
            raise errors.CorruptionError(
                f"doublecrypt-core file inode {inode.id}: {len(extents)} extents for "
                f"{inode.size} bytes ({chunks} chunks)"
            )
        for index, extent in enumerate(extents):
            expected = min(self.chunk_size, inode.size - index * self.chunk_size)
            if extent.chunk_index != index or extent.plaintext_len != expected:
                raise errors.CorruptionError(
                    f"doublecrypt-core file inode {inode.id}: extent {extent.chunk_index} of "
                    f"{extent.plaintext_len} bytes where chunk {index} of {expected} belongs"
                )
        return extents

    def _chunk(self, extent: ExtentEntry) -> bytes:
        data = self._open_object(extent.data_block, ObjectKind.FILE_DATA_CHUNK)
        if len(data) != extent.plaintext_len:
            raise errors.CorruptionError(
                f"doublecrypt-core data block {extent.data_block} holds {len(data)} bytes, "
                f"its extent says {extent.plaintext_len}"
            )
        return data

    # -- paths -------------------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[str, int, Inode]:
        """The normalised path, inode block and inode that ``path`` names."""
        parts = _components(path)
        block, inode = self._root.superblock.root_inode_block, self._root_inode
        for depth, name in enumerate(parts):
            if inode.kind != InodeKind.DIRECTORY:
                raise errors.error_for_status(-11, "not a directory", _join(parts[:depth]))
            entry = next((e for e in self._entries(inode) if e.name == name), None)
            if entry is None:
                raise errors.error_for_status(
                    -1, "no such file or directory", _join(parts[: depth + 1])
                )
            block, inode = entry.inode_block, self._child_inode(entry)
        return _join(parts), block, inode

    def _stat_of(self, path: str, inode: Inode) -> V1Stat:
        size = inode.size if inode.kind == InodeKind.FILE else 0
        return V1Stat(path, inode.kind, size, inode.id, inode.created_at, inode.modified_at)

    def _directory(self, path: str) -> tuple[str, int, Inode]:
        norm, block, inode = self._resolve(path)
        if inode.kind != InodeKind.DIRECTORY:
            raise errors.error_for_status(-11, "not a directory", norm)
        return norm, block, inode

    def _file(self, path: str) -> tuple[str, Inode]:
        norm, _, inode = self._resolve(path)
        if inode.kind != InodeKind.FILE:
            raise errors.error_for_status(-10, "is a directory", norm)
        return norm, inode

    # -- public reading API -----------------------------------------------------------------

    def stat(self, path: str) -> V1Stat:
        norm, _, inode = self._resolve(path)
        return self._stat_of(norm, inode)

    def exists(self, path: str) -> bool:
        try:
            self._resolve(path)
        except (errors.NotFoundError, errors.NotADirectoryError):
            return False
        return True

    def listdir(self, path: str = "/") -> list[str]:
        """Names in the directory, in the seed's order (creation order)."""
        _, _, inode = self._directory(path)
        return [entry.name for entry in self._entries(inode)]

    def scandir(self, path: str = "/") -> list[V1Stat]:
        """The directory's entries with their inodes, in the seed's order."""
        norm, _, inode = self._directory(path)
        base = "" if norm == "/" else norm
        return [
            self._stat_of(f"{base}/{entry.name}", self._child_inode(entry))
            for entry in self._entries(inode)
        ]

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like os.walk, top-down: ``(dirpath, dirnames, filenames)``.

        A directory reached twice (a cycle or a shared subtree, which no v1
        writer makes) raises CorruptionError rather than looping."""
        norm, block, inode = self._directory(top)
        seen: set[int] = {block}
        pending: list[tuple[str, Inode]] = [(norm, inode)]
        while pending:
            dirpath, directory = pending.pop()
            base = "" if dirpath == "/" else dirpath
            dirnames: list[str] = []
            filenames: list[str] = []
            subdirs: list[tuple[str, str, Inode]] = []  # name, path, inode
            for entry in self._entries(directory):
                if entry.kind == InodeKind.FILE:
                    filenames.append(entry.name)
                    continue
                if entry.inode_block in seen:
                    raise errors.CorruptionError(
                        f"doublecrypt-core directory {base}/{entry.name} is reached twice"
                    )
                seen.add(entry.inode_block)
                child = self._child_inode(entry)
                dirnames.append(entry.name)
                subdirs.append((entry.name, f"{base}/{entry.name}", child))
            yield dirpath, dirnames, filenames
            # As os.walk: the caller may prune dirnames in place.
            kept = set(dirnames)
            descend = [(path, child) for name, path, child in subdirs if name in kept]
            pending.extend(reversed(descend))  # popped in listing order

    def read_bytes(self, path: str) -> bytes:
        _, inode = self._file(path)
        return b"".join(self._chunk(extent) for extent in self._extents(inode))

    def open(self, path: str) -> io.BufferedReader:
        """A read-only, seekable binary file object over the file's contents."""
        norm, inode = self._file(path)
        raw = _V1RawFile(self, norm, inode.size, self._extents(inode))
        return io.BufferedReader(raw, max(self.chunk_size, io.DEFAULT_BUFFER_SIZE))


class _V1RawFile(io.RawIOBase):
    """Unbuffered positioned reads of one v1 file, a data chunk at a time
    (the last chunk read is kept, as sequential reads hit it repeatedly)."""

    def __init__(self, fs: V1FileSystem, path: str, size: int, extents: list[ExtentEntry]) -> None:
        super().__init__()
        self._fs = fs
        self.name = path
        self._size = size
        self._extents = extents
        self._pos = 0
        self._chunk_index = -1
        self._chunk_data = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        if self.closed:
            raise errors.InvalidArgumentError("I/O operation on closed file")
        if self._pos >= self._size:
            return 0
        chunk_size = self._fs.chunk_size
        index = self._pos // chunk_size
        if index != self._chunk_index:
            self._chunk_data = self._fs._chunk(self._extents[index])
            self._chunk_index = index
        offset = self._pos - index * chunk_size
        with memoryview(buffer) as view, view.cast("B") as out:
            count = min(len(out), len(self._chunk_data) - offset)
            out[:count] = self._chunk_data[offset : offset + count]
        self._pos += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise errors.InvalidArgumentError("I/O operation on closed file")
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise errors.InvalidArgumentError(f"invalid whence ({whence})")
        if position < 0:
            raise errors.InvalidArgumentError(f"negative seek position {position}")
        self._pos = position
        return position

    def tell(self) -> int:
        return self._pos


def open_v1(path: str | os.PathLike[str], key: Buffer) -> V1FileSystem:
    """Open the doublecrypt-core image at ``path`` read-only with its master
    ``key`` (the raw bytes the seed was given, normally 32)."""
    return V1FileSystem(path, key)
