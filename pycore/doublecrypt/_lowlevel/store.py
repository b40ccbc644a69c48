"""Block stores: memory, image file, raw device, write-back cache,
``CustomStore`` for backends written in Python, and ``FaultyStore``, a
simulated disk that loses power (for crash-consistency tests)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

from typing_extensions import Buffer

from .. import errors
from ._core import borrow, c_call, check, ffi, lib, u64_array

__all__ = [
    "CachedStore",
    "CustomStore",
    "DeviceStore",
    "FaultMode",
    "FaultyStore",
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
        return int(c_call(lib.dc_store_block_size, self._live()))

    @property
    def total_blocks(self) -> int:
        return int(c_call(lib.dc_store_total_blocks, self._live()))

    @property
    def blocks_read(self) -> int:
        return int(c_call(lib.dc_store_blocks_read, self._live()))

    @property
    def blocks_written(self) -> int:
        return int(c_call(lib.dc_store_blocks_written, self._live()))

    def _live(self) -> Any:
        if self._handle is None:
            raise errors.InvalidArgumentError("store is closed")
        return self._handle

    def read_blocks(self, ids: Sequence[int]) -> bytes:
        out = ffi.new("unsigned char[]", max(1, len(ids) * self.block_size))
        check(
            c_call(
                lib.dc_store_read_blocks,
                self._live(),
                u64_array(ids),
                len(ids),
                out,
            )
        )
        return bytes(ffi.buffer(out, len(ids) * self.block_size))

    def write_blocks(self, ids: Sequence[int], data: Buffer) -> None:
        with borrow(data) as (buf, nbytes):
            if nbytes != len(ids) * self.block_size:
                raise errors.InvalidArgumentError("data must be len(ids) * block_size bytes")
            check(
                c_call(
                    lib.dc_store_write_blocks,
                    self._live(),
                    u64_array(ids),
                    len(ids),
                    buf,
                )
            )

    def sync(self) -> None:
        check(c_call(lib.dc_store_sync, self._live()))

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
            c_call(lib.dc_store_free, handle)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def _new(fn: Callable[..., int], *args: Any, path: str | None = None) -> Any:
    out = ffi.new("dc_store **")
    check(c_call(fn, out, *args), path)
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
    except IsADirectoryError as exc:
        raise errors.error_for_status(-10, "is a directory", os.fspath(path)) from exc
    except OSError as exc:
        raise errors.error_for_status(-6, str(exc), os.fspath(path)) from exc
    block_size = ffi.new("uint32_t *")
    total = ffi.new("uint64_t *")
    check(c_call(lib.dc_fs_probe, head, len(head), block_size, total), os.fspath(path))
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
        handle = inner._take()
        inner._released()  # the cache owns (or, on failure, has freed) it
        super().__init__(_new(lib.dc_store_new_cached, handle, capacity_blocks))


# ---- fault injection -------------------------------------------------------

FaultMode = Literal["drop_volatile", "keep_prefix", "tear_last", "reorder"]

_FAULT_MODES: dict[str, int] = {
    "drop_volatile": lib.DC_FAULT_DROP_VOLATILE,
    "keep_prefix": lib.DC_FAULT_KEEP_PREFIX,
    "tear_last": lib.DC_FAULT_TEAR_LAST,
    "reorder": lib.DC_FAULT_REORDER,
}


def _fault_options(crash_after: int, mode: FaultMode, fail_after_crash: bool, seed: int) -> Any:
    if mode not in _FAULT_MODES:
        raise errors.InvalidArgumentError(f"unknown fault mode {mode!r}")
    if crash_after < 0:
        raise errors.InvalidArgumentError("crash_after must be >= 0")
    opts = ffi.new("dc_fault_options *")
    c_call(lib.dc_fault_options_init, opts)
    opts.crash_after = crash_after
    opts.mode = _FAULT_MODES[mode]
    opts.fail_after_crash = int(fail_after_crash)
    opts.seed = seed & 0xFFFFFFFFFFFFFFFF
    return opts


class _Disk:
    """The caller's reference to a C ``dc_fault``; every handle on the disk
    shares it, and it keeps the inner store's Python object (a custom
    backend) alive as long as the disk may call it."""

    def __init__(self, handle: Any, inner: Store) -> None:
        self.handle: Any = handle
        self.inner = inner

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle is not None:
            c_call(lib.dc_fault_free, handle)


class FaultyStore(Store):
    """A simulated disk with a volatile write cache over ``inner``, which it
    takes over, that loses power right after block write ``crash_after``
    (counted from 1 in this boot; 0: never) or on :meth:`power_off`.

    Reads see every write; a completed :meth:`sync` puts the writes so far
    on ``inner``. When power is lost, ``mode`` decides what ``inner`` keeps
    of the writes since the last sync: ``"drop_volatile"`` none,
    ``"keep_prefix"`` all of them in order, ``"tear_last"`` all but a
    random-length prefix of the last block's new bytes over its old ones,
    ``"reorder"`` a random subset (seeded by ``seed``). Later writes and
    syncs are dropped: they return normally, or raise (the C status
    ``DC_ERR_IO``) with ``fail_after_crash``. :meth:`restart` powers the disk
    on again over what it kept and returns a new handle to remount it.

    Handing this store to a filesystem hands over the handle only: the
    counters (:attr:`writes`, :attr:`syncs`, :attr:`durable_writes`,
    :attr:`power_lost`) and :meth:`restart` keep working after the
    filesystem is closed, on every handle of the disk.
    """

    def __init__(
        self,
        inner: Store,
        *,
        crash_after: int = 0,
        mode: FaultMode = "drop_volatile",
        fail_after_crash: bool = False,
        seed: int = 0,
    ) -> None:
        opts = _fault_options(crash_after, mode, fail_after_crash, seed)
        out = ffi.new("dc_fault **")
        handle = inner._take()
        inner._released()  # the disk owns (or, on failure, has freed) it
        check(c_call(lib.dc_fault_new, out, handle, opts))
        self._disk = _Disk(out[0], inner)
        super().__init__(_new(lib.dc_store_new_fault, self._disk.handle))

    def restart(
        self,
        *,
        crash_after: int = 0,
        mode: FaultMode = "drop_volatile",
        fail_after_crash: bool = False,
        seed: int = 0,
    ) -> FaultyStore:
        """Power-cycle the disk (losing power first if that has not
        happened) with new options, and return a new handle on it. Reads see
        only what the disk kept; the counters start again at 0. Close the
        filesystem of the old boot first."""
        opts = _fault_options(crash_after, mode, fail_after_crash, seed)
        check(c_call(lib.dc_fault_restart, self._disk.handle, opts))
        return self.reopen()

    def reopen(self) -> FaultyStore:
        """A new handle on the disk in the same boot: what a new process
        sees after the old one died without syncing while the disk kept
        power (its volatile writes are still in the disk's cache)."""
        store = FaultyStore.__new__(FaultyStore)
        store._disk = self._disk
        Store.__init__(store, _new(lib.dc_store_new_fault, self._disk.handle))
        return store

    def power_off(self) -> None:
        """Lose power now (if it has not happened yet)."""
        check(c_call(lib.dc_fault_power_off, self._disk.handle))

    @property
    def writes(self) -> int:
        """Block writes seen in this boot, including dropped ones."""
        return int(c_call(lib.dc_fault_writes, self._disk.handle))

    @property
    def syncs(self) -> int:
        """Sync calls seen in this boot, including dropped ones."""
        return int(c_call(lib.dc_fault_syncs, self._disk.handle))

    @property
    def durable_writes(self) -> int:
        """Writes ``1..durable_writes`` are on the inner store (the write
        count at the last sync that completed in this boot)."""
        return int(c_call(lib.dc_fault_durable_writes, self._disk.handle))

    @property
    def power_lost(self) -> bool:
        return bool(c_call(lib.dc_fault_power_lost, self._disk.handle))


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
def _dc_py_forget(payload: Any) -> int:
    store = _backend(payload)
    try:
        store.forget()
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
        backend.forget = lib._dc_py_forget
        super().__init__(_new(lib.dc_store_new_custom, backend, self._payload))

    def read_into(self, ids: list[int], out: memoryview) -> None:
        """Fill ``out[i*block_size:(i+1)*block_size]`` with block ``ids[i]``."""
        raise NotImplementedError

    def write_from(self, ids: list[int], data: memoryview) -> None:
        """Store ``data[i*block_size:(i+1)*block_size]`` as block ``ids[i]``."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make completed writes durable."""

    def forget(self) -> None:
        """Drop anything kept in memory: other clients may have written
        (``FileSystem.refresh``)."""

    def release(self) -> None:
        """The engine is done with this store."""
