"""Block stores: memory, image file, raw device, write-back cache, and
``CustomStore`` for backends written in Python."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from typing_extensions import Buffer

from .. import errors
from ._core import borrow, check, ffi, lib

__all__ = [
    "CachedStore",
    "CustomStore",
    "DeviceStore",
    "FileStore",
    "MemoryStore",
    "Store",
    "probe_image",
]

Progress = Callable[[int, int], object]

HEADER_PROBE_BYTES: int = lib.DC_HEADER_PROBE_BYTES


class Store:
    """A handle on a C block store. Handing a store to a filesystem (or a
    cache) transfers the handle; the Python object then only keeps the
    backend alive."""

    def __init__(self, handle: Any) -> None:
        self._handle: Any = handle
        self._owned = True

    @property
    def block_size(self) -> int:
        return int(lib.dc_store_block_size(self._live()))

    @property
    def total_blocks(self) -> int:
        return int(lib.dc_store_total_blocks(self._live()))

    @property
    def blocks_read(self) -> int:
        return int(lib.dc_store_blocks_read(self._live()))

    @property
    def blocks_written(self) -> int:
        return int(lib.dc_store_blocks_written(self._live()))

    def _live(self) -> Any:
        if self._handle is None:
            raise errors.InvalidArgumentError("store is closed")
        return self._handle

    def read_blocks(self, ids: Sequence[int]) -> bytes:
        out = ffi.new("unsigned char[]", max(1, len(ids) * self.block_size))
        check(
            lib.dc_store_read_blocks(self._live(), ffi.new("uint64_t[]", list(ids)), len(ids), out)
        )
        return bytes(ffi.buffer(out, len(ids) * self.block_size))

    def write_blocks(self, ids: Sequence[int], data: Buffer) -> None:
        with borrow(data) as (buf, nbytes):
            if nbytes != len(ids) * self.block_size:
                raise errors.InvalidArgumentError("data must be len(ids) * block_size bytes")
            check(
                lib.dc_store_write_blocks(
                    self._live(), ffi.new("uint64_t[]", list(ids)), len(ids), buf
                )
            )

    def sync(self) -> None:
        check(lib.dc_store_sync(self._live()))

    def _take(self) -> Any:
        """Give the C handle to a new owner (a filesystem or a cache)."""
        handle = self._live()
        if not self._owned:
            raise errors.InvalidArgumentError("store already belongs to a filesystem")
        self._owned = False
        return handle

    def _released(self) -> None:
        """The owner freed the C store."""
        self._handle = None

    def close(self) -> None:
        """Free the store (without syncing) unless a filesystem owns it."""
        if getattr(self, "_handle", None) is not None and self._owned:
            handle, self._handle = self._handle, None
            lib.dc_store_free(handle)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def _new(fn: Callable[..., int], *args: Any, path: str | None = None) -> Any:
    out = ffi.new("dc_store **")
    check(fn(out, *args), path)
    return out[0]


def _path(path: str | os.PathLike[str]) -> bytes:
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise errors.InvalidArgumentError("path contains a NUL byte")
    return raw


class MemoryStore(Store):
    """Blocks in memory (never-written blocks read as zeros)."""

    def __init__(self, total_blocks: int, block_size: int = lib.DC_DEFAULT_BLOCK_SIZE) -> None:
        super().__init__(_new(lib.dc_store_new_memory, block_size, total_blocks))


def probe_image(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(block_size, total_blocks) from an image's header, without a key."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_PROBE_BYTES)
    except FileNotFoundError as exc:
        raise errors.error_for_status(-1, "no such image", os.fspath(path)) from exc
    block_size = ffi.new("uint32_t *")
    total = ffi.new("uint64_t *")
    check(lib.dc_fs_probe(head, len(head), block_size, total), os.fspath(path))
    return int(block_size[0]), int(total[0])


def _cancel_on_error(exception: object, exc_value: object, traceback: object) -> int:
    """A progress callback that raises (Ctrl-C included) cancels the work."""
    return 1


@ffi.def_extern(onerror=_cancel_on_error)  # type: ignore[untyped-decorator]
def _dc_py_progress(payload: Any, done: int, total: int) -> int:
    callback = ffi.from_handle(payload)
    try:
        return 1 if callback(int(done), int(total)) is False else 0
    except BaseException:  # a raising callback cancels
        return 1


class FileStore(Store):
    """An image file (pread/pwrite). ``block_size=None`` reads it from the
    volume header."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        block_size: int | None = None,
        read_only: bool = False,
    ) -> None:
        if block_size is None:
            block_size, _ = probe_image(path)
        super().__init__(self._open(_path(path), block_size, read_only, os.fspath(path)))
        self.path = os.fspath(path)

    def _open(self, path: bytes, block_size: int, read_only: bool, name: str) -> Any:
        return _new(lib.dc_store_open_file, path, block_size, int(read_only), path=name)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        total_blocks: int,
        *,
        block_size: int = lib.DC_DEFAULT_BLOCK_SIZE,
        progress: Progress | None = None,
    ) -> FileStore:
        """Create an image of ``total_blocks`` blocks filled with random bytes.
        ``progress(done, total)`` may return False (or raise) to cancel."""
        keep = ffi.new_handle(progress) if progress is not None else None
        handle = _new(
            lib.dc_store_create_file,
            _path(path),
            block_size,
            total_blocks,
            lib._dc_py_progress if progress is not None else ffi.NULL,
            keep if keep is not None else ffi.NULL,
            path=os.fspath(path),
        )
        store = cls.__new__(cls)
        Store.__init__(store, handle)
        store.path = os.fspath(path)
        return store


class DeviceStore(FileStore):
    """A raw block device (size from seeking to its end)."""

    def _open(self, path: bytes, block_size: int, read_only: bool, name: str) -> Any:
        return _new(lib.dc_store_open_device, path, block_size, int(read_only), path=name)


class CachedStore(Store):
    """A write-back LRU cache of ``capacity_blocks`` over another store,
    which it takes over."""

    def __init__(self, inner: Store, capacity_blocks: int = 1024) -> None:
        self.inner = inner
        super().__init__(_new(lib.dc_store_new_cached, inner._take(), capacity_blocks))
        inner._released()


# ---- custom stores ---------------------------------------------------------


def _backend(payload: Any) -> CustomStore:
    store = ffi.from_handle(payload)
    assert isinstance(store, CustomStore)
    return store


def _status(store: CustomStore, exc: BaseException) -> int:
    # Without its traceback: the frames hold views of engine memory and the
    # store itself, a cycle the garbage collector must never have to break.
    store.last_error = exc.with_traceback(None)
    if isinstance(exc, errors.DoubleCryptError):
        return exc.status
    if isinstance(exc, OSError) and exc.errno in (28, 122):  # ENOSPC, EDQUOT
        return int(lib.DC_ERR_NO_SPACE)
    return int(lib.DC_ERR_IO)


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _dc_py_info(payload: Any, block_size: Any, total_blocks: Any) -> int:
    store = _backend(payload)
    block_size[0] = store.backend_block_size
    total_blocks[0] = store.backend_total_blocks
    return 0


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _dc_py_read_blocks(payload: Any, ids: Any, count: int, buf: Any) -> int:
    store = _backend(payload)
    # The view of engine memory is released before returning to C.
    view = memoryview(ffi.buffer(buf, count * store.backend_block_size))
    try:
        store.read_into(list(ids[0:count]), view)
        return 0
    except BaseException as exc:
        return _status(store, exc)
    finally:
        view.release()


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _dc_py_write_blocks(payload: Any, ids: Any, count: int, buf: Any) -> int:
    store = _backend(payload)
    raw = memoryview(ffi.buffer(buf, count * store.backend_block_size))
    view = raw.toreadonly()
    try:
        store.write_from(list(ids[0:count]), view)
        return 0
    except BaseException as exc:
        return _status(store, exc)
    finally:
        view.release()
        raw.release()


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _dc_py_sync(payload: Any) -> int:
    store = _backend(payload)
    try:
        store.flush()
        return 0
    except BaseException as exc:
        return _status(store, exc)


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _dc_py_close(payload: Any) -> None:
    store = _backend(payload)
    try:
        store.release()
    except BaseException as exc:
        store.last_error = exc.with_traceback(None)


class CustomStore(Store):
    """Base class for block stores written in Python (network, object store).

    Subclasses implement :meth:`read_into` and :meth:`write_from` (and
    :meth:`flush`, :meth:`release` when they need to). The engine calls them
    with whole batches of block ids. Raise a :class:`~doublecrypt.errors.
    DoubleCryptError` (or OSError) on failure; it becomes the C status and is
    kept in ``last_error``.
    """

    def __init__(self, block_size: int, total_blocks: int) -> None:
        self.backend_block_size = block_size
        self.backend_total_blocks = total_blocks
        self.last_error: BaseException | None = None
        self._payload = ffi.new_handle(self)
        backend = ffi.new("dc_store_backend *")
        backend.version = lib.DC_STORE_BACKEND_VERSION
        backend.info = lib._dc_py_info
        backend.read_blocks = lib._dc_py_read_blocks
        backend.write_blocks = lib._dc_py_write_blocks
        backend.sync = lib._dc_py_sync
        backend.close = lib._dc_py_close
        super().__init__(_new(lib.dc_store_new_custom, backend, self._payload))

    def read_into(self, ids: list[int], out: memoryview) -> None:
        """Fill ``out[i*block_size:(i+1)*block_size]`` with block ``ids[i]``."""
        raise NotImplementedError

    def write_from(self, ids: list[int], data: memoryview) -> None:
        """Store ``data[i*block_size:(i+1)*block_size]`` as block ``ids[i]``."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make completed writes durable."""

    def release(self) -> None:
        """The engine is done with this store."""
