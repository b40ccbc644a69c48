"""The Pythonic filesystem API: :class:`FileSystem` and :func:`open_image`."""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from typing_extensions import Buffer

from . import errors
from ._lowlevel.codec import FIRST_DATA_BLOCK, FORMAT_VERSION, MASTER_KEY_BYTES
from ._lowlevel.fs import (
    FsckReport,
    FsHandle,
    KdfParams,
    KeySlot,
    StatResult,
    VolumeStats,
    keyslot_add,
    keyslot_list,
    keyslot_match,
    keyslot_remove,
    list_header_slots,
    unlock_header,
)
from ._lowlevel.store import CachedStore, FileStore, Store, probe_image
from .files import RawFile

if TYPE_CHECKING:
    from .channel import KnownHosts

__all__ = [
    "DirEntry",
    "FileSystem",
    "ImageInfo",
    "image_info",
    "open_image",
    "open_remote",
    "unlock_image",
]

DEFAULT_BUFFER_CHUNKS = 64


_T = TypeVar("_T")


@dataclass(frozen=True)
class DirEntry:
    """One entry of :meth:`FileSystem.scandir` (like os.DirEntry)."""

    name: str
    path: str
    stat: StatResult

    def is_dir(self) -> bool:
        return self.stat.is_dir

    def is_file(self) -> bool:
        return self.stat.is_file


def _abs(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise errors.InvalidArgumentError(f"paths inside a volume are absolute: {path!r}")
    return path


class FileSystem:
    """A mounted encrypted volume. Safe to share between threads.

    ``FileSystem(store, key)`` mounts; :meth:`format` creates a new volume.
    The filesystem takes over ``store``. Use it as a context manager, or call
    :meth:`close`, to sync and release it."""

    def __init__(
        self, store: Store, key: Buffer, *, read_only: bool = False, threads: int = 0
    ) -> None:
        self._h = FsHandle.mount(store, key, read_only=read_only, threads=threads)
        self.read_only = read_only

    @classmethod
    def format(cls, store: Store, key: Buffer, *, threads: int = 0) -> FileSystem:
        """Write an empty volume onto ``store`` and mount it."""
        fs = cls.__new__(cls)
        fs._h = FsHandle.format(store, key, threads=threads)
        fs.read_only = False
        return fs

    # -- life cycle -----------------------------------------------------------

    def close(self) -> None:
        self._h.close()

    def __enter__(self) -> FileSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync(self) -> None:
        """Make every commit so far durable."""
        self._h.sync()

    def refresh(self) -> None:
        """Continue from the newest committed generation in the store, for
        volumes other clients write too (an object store): after a
        :class:`~doublecrypt.errors.ConflictError`, and by readers that want
        to see newer commits. Not inside a transaction."""
        with self._h.lock:
            self._h.refresh()

    def retry_on_conflict(
        self, change: Callable[[FileSystem], _T], *, attempts: int = 5, backoff: float = 0.05
    ) -> _T:
        """Run ``change(self)`` as one transaction; when another writer got
        there first (ConflictError), refresh and run it again, up to
        ``attempts`` times with exponential backoff and jitter. ``change``
        must be safe to repeat: it sees the other writer's commit."""
        for attempt in range(attempts):
            try:
                with self.transaction():
                    return change(self)
            except errors.ConflictError:
                if attempt == attempts - 1:
                    raise
                time.sleep(backoff * 2**attempt * random.uniform(0.5, 1.5))
                self.refresh()
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[FileSystem]:
        """Group operations into one commit; an exception rolls them all back.

        Other threads' changes wait until the transaction ends."""
        with self._h.lock:
            self._h.begin()
            try:
                yield self
            except BaseException:
                if self._h.in_transaction():
                    self._h.abort()
                raise
            self._h.commit()

    # -- volume ---------------------------------------------------------------

    def statvfs(self) -> VolumeStats:
        return self._h.statvfs()

    @property
    def volume_id(self) -> bytes:
        return self._h.volume_id()

    def fsck(self) -> FsckReport:
        """Verify the whole volume; raises on any problem."""
        rc, report, detail = self._h.fsck()
        if rc < 0:
            err = errors.error_for_status(rc, f"fsck: {detail}")
            err.report = report  # what was found, for callers that report it
            raise err
        return report

    # -- passphrases ------------------------------------------------------------

    def add_passphrase(self, passphrase: str | Buffer, kdf: KdfParams | None = None) -> int:
        """Wrap the master key under a new passphrase; returns its key slot."""
        return keyslot_add(self._h, passphrase, kdf or KdfParams.interactive())

    def remove_key_slot(self, slot: int, *, allow_last: bool = False) -> None:
        """Erase a key slot (the last one only with ``allow_last``)."""
        keyslot_remove(self._h, slot, allow_last=allow_last)

    def key_slots(self) -> list[KeySlot]:
        return keyslot_list(self._h)

    def change_passphrase(
        self, old: str | Buffer, new: str | Buffer, kdf: KdfParams | None = None
    ) -> int:
        """Replace the slot ``old`` opens by one for ``new`` (added first, so a
        crash in between leaves both working); returns the new slot."""
        old_slot = keyslot_match(self._h, old)
        new_slot = self.add_passphrase(new, kdf)
        keyslot_remove(self._h, old_slot)
        return new_slot

    # -- metadata ---------------------------------------------------------------

    def stat(self, path: str) -> StatResult:
        return self._h.stat(_abs(path))

    def exists(self, path: str) -> bool:
        try:
            self._h.stat(_abs(path))
        except errors.NotFoundError:
            return False
        except errors.NotADirectoryError:
            return False
        return True

    def is_dir(self, path: str) -> bool:
        return self.exists(path) and self.stat(path).is_dir

    def is_file(self, path: str) -> bool:
        return self.exists(path) and self.stat(path).is_file

    def mkdir(
        self, path: str, mode: int = 0o755, *, parents: bool = False, exist_ok: bool = False
    ) -> None:
        if parents:
            self.makedirs(path, mode, exist_ok=exist_ok)
            return
        try:
            self._h.mkdir(_abs(path), mode)
        except errors.AlreadyExistsError:
            if not (exist_ok and self.is_dir(path)):
                raise

    def makedirs(self, path: str, mode: int = 0o755, *, exist_ok: bool = True) -> None:
        if not exist_ok and self.exists(path):
            raise errors.error_for_status(-2, "already exists", path)
        self._h.makedirs(_abs(path), mode)

    def remove(self, path: str) -> None:
        self._h.remove(_abs(path))

    unlink = remove

    def rmdir(self, path: str) -> None:
        self._h.rmdir(_abs(path))

    def rename(self, src: str, dst: str) -> None:
        """POSIX rename: replaces an existing file (or empty directory)."""
        self._h.rename(_abs(src), _abs(dst))

    replace = rename

    def truncate(self, path: str, size: int) -> None:
        self._h.truncate(_abs(path), size)

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        self._h.set_mtime(_abs(path), mtime_ns)

    def chmod(self, path: str, mode: int) -> None:
        self._h.chmod(_abs(path), mode)

    # -- directories ---------------------------------------------------------------

    def scandir(self, path: str = "/") -> Iterator[DirEntry]:
        """Entries of a directory in name order (a lazy iterator)."""
        base = _abs(path)
        for name, st in self._h.iterdir(base):
            yield DirEntry(name, posixpath.join(base, name), st)

    def listdir(self, path: str = "/") -> list[str]:
        return [name for name, _ in self._h.iterdir(_abs(path))]

    def iterdir(self, path: str = "/") -> Iterator[str]:
        for name, _ in self._h.iterdir(_abs(path)):
            yield name

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like os.walk (top-down)."""
        dirs: list[str] = []
        files: list[str] = []
        for entry in self.scandir(top):
            (dirs if entry.is_dir() else files).append(entry.name)
        yield top, dirs, files
        for d in dirs:
            yield from self.walk(posixpath.join(top, d))

    # -- contents -------------------------------------------------------------------

    def open(
        self,
        path: str,
        mode: str = "rb",
        buffering: int = -1,
        encoding: str | None = None,
        errors_: str | None = None,
        newline: str | None = None,
    ) -> IO[Any]:
        """Open a file like the builtin open(): modes r, w, x, a with b, t
        and +. Binary modes give io.BufferedReader/Writer/Random."""
        path = _abs(path)
        chars = set(mode)
        if (
            not chars <= set("rwxabt+")
            or len(mode) != len(chars)
            or sum(c in chars for c in "rwxa") != 1
            or {"b", "t"} <= chars
        ):
            raise ValueError(f"invalid mode: {mode!r}")
        binary = "b" in chars
        plus = "+" in chars
        readable = "r" in chars or plus
        writable = bool(chars & set("wxa")) or plus
        if "r" in chars:
            st = self._h.stat(path)
            if st.is_dir:
                raise errors.error_for_status(-10, "is a directory", path)
        elif "x" in chars:
            self._h.create(path, 0o644, True)
        else:
            self._h.create(path, 0o644, False)
            if "w" in chars:
                self._h.truncate(path, 0)
        raw = RawFile(self._h, path, readable=readable, writable=writable, append="a" in chars)
        if buffering == 0:
            if not binary:
                raise ValueError("can't have unbuffered text I/O")
            return raw  # type: ignore[return-value]  # RawIOBase is a binary IO
        size = buffering if buffering > 1 else self._buffer_size()
        buffered: io.BufferedIOBase
        if readable and writable:
            buffered = io.BufferedRandom(raw, size)
        elif writable:
            buffered = io.BufferedWriter(raw, size)
        else:
            buffered = io.BufferedReader(raw, size)
        if binary:
            return buffered
        return io.TextIOWrapper(
            buffered, encoding=encoding or "utf-8", errors=errors_, newline=newline
        )

    def _buffer_size(self) -> int:
        # Whole chunks, so buffered writes never straddle a data block.
        return self.statvfs().chunk_size * DEFAULT_BUFFER_CHUNKS

    def read_bytes(self, path: str) -> bytes:
        path = _abs(path)
        size = self._h.stat(path).size
        out = bytearray(size)
        n = self._h.readinto(path, 0, out) if size else 0
        return bytes(out[:n])

    def write_bytes(self, path: str, data: Buffer) -> int:
        """Create or replace a file with ``data`` in one commit."""
        path = _abs(path)
        with memoryview(data) as view:
            nbytes = view.nbytes
        # The lock is taken before asking whether a transaction is open.
        with self._h.lock, self.transaction() if not self._h.in_transaction() else _nothing():
            self._h.create(path, 0o644, False)
            self._h.truncate(path, 0)
            if nbytes:
                self._h.write(path, 0, data)
        return nbytes

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(path).decode(encoding)

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> int:
        return self.write_bytes(path, text.encode(encoding))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says without a key."""

    block_size: int
    total_blocks: int
    key_slots: list[KeySlot]
    format_version: int = FORMAT_VERSION  # probe_image refuses any other

    @property
    def size(self) -> int:
        return self.block_size * self.total_blocks


def _read_header(path: str | os.PathLike[str]) -> bytes:
    block_size, _ = probe_image(path)
    with open(path, "rb") as f:
        return f.read(block_size)


def image_info(path: str | os.PathLike[str]) -> ImageInfo:
    header = _read_header(path)
    block_size, total = probe_image(path)
    return ImageInfo(block_size, total, list_header_slots(header))


def unlock_image(path: str | os.PathLike[str], passphrase: str | Buffer) -> bytearray:
    """The master key of an image, from a passphrase (a bytearray: wipe it
    when done). Raises AuthenticationError for a wrong passphrase."""
    key, _ = unlock_header(_read_header(path), passphrase)
    return key


def _wipe(secret: bytearray) -> None:
    secret[:] = bytes(len(secret))


def _check_secret(key: Buffer | None, passphrase: str | Buffer | None) -> None:
    if (key is None) == (passphrase is None):
        raise errors.InvalidArgumentError("give exactly one of key= and passphrase=")


def _new_master_key(key: Buffer | None) -> bytearray:
    """A new volume's master key: ``key``, or random when a passphrase wraps it."""
    return bytearray(os.urandom(MASTER_KEY_BYTES)) if key is None else bytearray(key)


def _format(
    store: Store,
    master: Buffer,
    passphrase: str | Buffer | None,
    kdf: KdfParams | None,
    threads: int,
) -> FileSystem:
    """Format ``store``; with a passphrase, wrap the key in slot 0."""
    fs = FileSystem.format(store, master, threads=threads)
    try:
        if passphrase is not None:
            fs.add_passphrase(passphrase, kdf)
        return fs
    except BaseException:
        fs.close()
        raise


def open_image(
    path: str | os.PathLike[str],
    *,
    key: Buffer | None = None,
    passphrase: str | Buffer | None = None,
    create: bool = False,
    size: int | None = None,
    block_size: int | None = None,
    read_only: bool = False,
    threads: int = 0,
    kdf: KdfParams | None = None,
) -> FileSystem:
    """Open (or with ``create=True`` create and format) an image file.

    Give either the raw 32-byte master ``key`` or a ``passphrase``. Creating
    with a passphrase makes a random master key and wraps it in key slot 0
    (Argon2id costs ``kdf``, default interactive). ``size`` is the image size
    in bytes when creating (rounded down to whole blocks); ``block_size``
    defaults to 64 KiB for new images and to the header's value otherwise."""
    _check_secret(key, passphrase)
    if create:
        if size is None:
            raise errors.InvalidArgumentError("size is required to create an image")
        bs = block_size or 65536
        master = _new_master_key(key)
        store = FileStore.create(path, size // bs, block_size=bs)
        try:
            return _format(store, master, passphrase, kdf, threads)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            _wipe(master)
    if block_size is None:
        block_size, _ = probe_image(path)
    if passphrase is not None:
        master, _ = unlock_header(_read_header(path), passphrase)
    else:
        assert key is not None
        master = bytearray(key)
    try:
        store = FileStore(path, block_size=block_size, read_only=read_only)
        return FileSystem(store, master, read_only=read_only, threads=threads)
    finally:
        _wipe(master)


def open_object_store(
    url: str,
    *,
    key: Buffer | None = None,
    passphrase: str | Buffer | None = None,
    create: bool = False,
    size: int | None = None,
    block_size: int | None = None,
    read_only: bool = False,
    threads: int = 0,
    kdf: KdfParams | None = None,
    in_flight: int = 16,
    cache_bytes: int = 64 << 20,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    lease_seconds: float = 60.0,
    client: Any = None,
) -> FileSystem:
    """Open (or with ``create=True`` create and format) a volume in an
    S3-compatible object store at ``url`` (``s3://BUCKET/PREFIX``);
    docs/OBJECT_STORE.md.

    Keys as for :func:`open_image` (the passphrase slots live in the
    volume's header object). Endpoint, region and credentials default to
    what boto3 finds (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, profiles).
    Up to ``in_flight`` requests run at once; the engine's write-back cache
    of ``cache_bytes`` sits in front (0: none). Several clients may open one
    volume: a commit that another writer overtook fails with
    :class:`~doublecrypt.errors.ConflictError` and changes nothing; see
    :meth:`FileSystem.refresh` and :meth:`FileSystem.retry_on_conflict`."""
    from .objectstore import ObjectStore, ObjectVolume, S3Settings

    _check_secret(key, passphrase)
    settings = S3Settings(
        endpoint_url=endpoint_url, region=region, access_key=access_key, secret_key=secret_key
    )
    geometry: tuple[int, int] | None = None
    if create:
        if size is None:
            raise errors.InvalidArgumentError("size is required to create a volume")
        if read_only:
            raise errors.InvalidArgumentError("a volume cannot be created read-only")
        bs = block_size or 65536
        geometry = (bs, size // bs)
    volume = ObjectVolume(
        url,
        create=geometry,
        read_only=read_only,
        in_flight=in_flight,
        settings=settings,
        client=client,
        lease_seconds=lease_seconds,
    )
    objects = ObjectStore(volume)
    master: bytearray | None = None
    try:
        if create:
            master = _new_master_key(key)
        elif passphrase is not None:
            master, _ = unlock_header(objects.read_blocks([0]), passphrase)
        else:
            assert key is not None
            master = bytearray(key)
        cache_blocks = cache_bytes // volume.block_size
        store: Store = CachedStore(objects, cache_blocks) if cache_blocks > 0 else objects
        if create:
            return _format(store, master, passphrase, kdf, threads)
        return FileSystem(store, master, read_only=read_only, threads=threads)
    except BaseException:
        if create:  # a half-made volume goes; a failure to remove it must not hide why
            with contextlib.suppress(errors.DoubleCryptError):
                volume.delete()
        raise
    finally:
        if master is not None:
            _wipe(master)


def open_remote(
    address: str,
    *,
    key: Buffer,
    volume: str = "default",
    create: bool = False,
    size: int | None = None,
    block_size: int | None = None,
    server_key: bytes | str | None = None,
    known_hosts: KnownHosts | str | os.PathLike[str] | None = None,
    transport: Literal["noise", "tls"] = "noise",
    tls_fingerprint: str | None = None,
    connect_timeout: float = 10.0,
    io_timeout: float = 30.0,
    epoch: int = 0,
    threads: int = 0,
    read_only: bool = False,
) -> FileSystem:
    """Open (or with ``create=True`` create and format) a volume on a block
    server at ``address`` (``HOST:PORT``, ``[IPv6]:PORT``); docs/PROTOCOL.md.

    ``key`` is the 32-byte master key (a remote volume's passphrase slots are
    on the server, which serves nothing before authentication). Over Noise,
    ``server_key`` (32 bytes or 64 hex digits) pins the server; else its key
    is checked against ``known_hosts`` (a ``KnownHosts``, a path, or None for
    the default file) and recorded on first contact. ``transport="tls"``
    pins the certificate's SHA-256 ``tls_fingerprint`` instead. Creating
    needs ``size`` in bytes (rounded down to whole blocks of ``block_size``,
    default 64 KiB); it also formats a volume the server admin made for
    this key that holds nothing yet, and refuses one that holds a volume."""
    from .net.store import NetworkStore

    geometry: tuple[int, int] | None = None
    if create:
        if size is None:
            raise errors.InvalidArgumentError("size is required to create a remote volume")
        if read_only:
            raise errors.InvalidArgumentError("a volume cannot be created read-only")
        bs = block_size or 65536
        geometry = (bs, size // bs)
    master = bytearray(key)
    try:
        store = NetworkStore(
            address,
            key=master,
            volume=volume,
            create=geometry,
            server_key=server_key,
            known_hosts=known_hosts,
            transport=transport,
            tls_fingerprint=tls_fingerprint,
            connect_timeout=connect_timeout,
            io_timeout=io_timeout,
            epoch=epoch,
        )
        if not create:
            return FileSystem(store, master, read_only=read_only, threads=threads)
        try:
            if not store.created and any(store.client.read_blocks(range(FIRST_DATA_BLOCK))):
                raise errors.AlreadyExistsError(
                    f"volume {volume} on {store.address} already holds a filesystem"
                )
        except BaseException:
            store.close()
            raise
        return FileSystem.format(store, master, threads=threads)
    finally:
        _wipe(master)
