"""The filesystem handle (``dc_fs_*``), one method per C call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from typing_extensions import Buffer

from .. import errors
from ._core import borrow, c_call, ffi, lib
from .codec import MASTER_KEY_BYTES
from .store import Store

__all__ = [
    "FsHandle",
    "FsckReport",
    "KdfParams",
    "KeySlot",
    "StatResult",
    "VolumeStats",
    "keyslot_add",
    "keyslot_list",
    "keyslot_match",
    "keyslot_remove",
    "list_header_slots",
    "unlock_header",
]

TYPE_FILE: int = lib.DC_TYPE_FILE
TYPE_DIRECTORY: int = lib.DC_TYPE_DIRECTORY
MAX_NAME_BYTES: int = lib.DC_MAX_NAME_BYTES


@dataclass(frozen=True)
class StatResult:
    inode: int
    is_dir: bool
    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    blocks: int

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    @property
    def is_file(self) -> bool:
        return not self.is_dir


@dataclass(frozen=True)
class VolumeStats:
    block_size: int
    total_blocks: int
    free_blocks: int
    chunk_size: int
    files: int
    directories: int
    generation: int
    max_name: int


@dataclass(frozen=True)
class FsckReport:
    files: int
    directories: int
    metadata_blocks: int
    data_blocks: int
    leaked_blocks: int
    bad_references: int
    errors: int


def _stat(st: Any) -> StatResult:
    return StatResult(
        inode=int(st.inode),
        is_dir=st.type == TYPE_DIRECTORY,
        mode=int(st.mode),
        size=int(st.size),
        mtime_ns=int(st.mtime_ns),
        ctime_ns=int(st.ctime_ns),
        blocks=int(st.blocks),
    )


def _check_key(nbytes: int) -> None:
    if nbytes != MASTER_KEY_BYTES:
        raise errors.InvalidArgumentError(f"the key must be {MASTER_KEY_BYTES} bytes")


def _path(path: str) -> bytes:
    if not isinstance(path, str):
        raise TypeError(f"path must be str, not {type(path).__name__}")
    raw = path.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise errors.InvalidArgumentError(f"path contains a NUL byte: {path!r}")
    return raw


class FsHandle:
    """A mounted volume. Takes over the store it is given.

    ``lock`` serialises calls from Python threads, so an error's detail is
    read before another thread's call replaces it, and so a transaction
    (which belongs to the whole handle in C) can hold it to keep other
    threads' changes out. The C engine serialises calls anyway, so this costs
    no parallelism."""

    def __init__(self, handle: Any, store: Store) -> None:
        self._fs: Any = handle
        self._store = store  # keeps a Python backend alive
        self.lock = threading.RLock()

    @classmethod
    def _open(cls, fn: Any, store: Store, key: Buffer, read_only: bool, threads: int) -> FsHandle:
        opts = ffi.new("dc_fs_options *")
        c_call(lib.dc_fs_options_init, opts)
        opts.read_only = int(read_only)
        if not 0 <= threads <= lib.DC_CODEC_MAX_THREADS:
            raise errors.InvalidArgumentError(
                f"threads must be 0..{lib.DC_CODEC_MAX_THREADS} (0: one per CPU)"
            )
        opts.threads = threads
        out = ffi.new("dc_fs **")
        with borrow(key) as (raw_key, nbytes):
            _check_key(nbytes)
            handle = store._take()
            store._released()
            rc = c_call(fn, out, handle, raw_key, opts)
        if rc < 0:
            detail = ""
            if isinstance(getattr(store, "last_error", None), BaseException):
                detail = f": {store.last_error}"  # type: ignore[attr-defined]
            raise errors.error_for_status(
                rc, ffi.string(c_call(lib.dc_strerror, rc)).decode() + detail
            ) from getattr(store, "last_error", None)
        return cls(out[0], store)

    @classmethod
    def format(cls, store: Store, key: Buffer, *, threads: int = 0) -> FsHandle:
        return cls._open(lib.dc_fs_format, store, key, False, threads)

    @classmethod
    def mount(
        cls, store: Store, key: Buffer, *, read_only: bool = False, threads: int = 0
    ) -> FsHandle:
        return cls._open(lib.dc_fs_mount, store, key, read_only, threads)

    # -- plumbing --------------------------------------------------------

    def _live(self) -> Any:
        if self._fs is None:
            raise errors.InvalidArgumentError("filesystem is closed")
        return self._fs

    def _call(self, fn: Any, *args: Any, path: str | None = None) -> int:
        """Call a dc_fs_* function on this handle and check its status."""
        with self.lock:
            return self._check(c_call(fn, self._live(), *args), path)

    def _check(self, rc: int, path: str | None = None) -> int:
        if rc >= 0:
            return rc
        detail = ffi.string(c_call(lib.dc_fs_errmsg, self._fs)).decode("utf-8", "replace")
        if detail == "no error":  # the engine gave no detail: use the code's text
            detail = ffi.string(c_call(lib.dc_strerror, rc)).decode()
        store = self._store
        while getattr(store, "last_error", None) is None and hasattr(store, "inner"):
            store = store.inner  # a cache in front of a custom store
        cause = getattr(store, "last_error", None)
        if cause is not None and rc in (lib.DC_ERR_IO, lib.DC_ERR_NO_SPACE, lib.DC_ERR_CONFLICT):
            detail = f"{detail} ({cause})"
            setattr(store, "last_error", None)  # noqa: B010 (any store type)
        err = errors.error_for_status(rc, detail, path)
        if isinstance(cause, BaseException):
            raise err from cause
        raise err

    def close(self) -> None:
        """Sync and release the volume (idempotent)."""
        with self.lock:
            if self._fs is not None:
                handle, self._fs = self._fs, None
                c_call(lib.dc_fs_free, handle)

    # -- volume ----------------------------------------------------------

    def sync(self) -> None:
        self._call(lib.dc_fs_sync)

    def refresh(self) -> None:
        self._call(lib.dc_fs_refresh)

    def begin(self) -> None:
        self._call(lib.dc_fs_begin)

    def commit(self) -> None:
        self._call(lib.dc_fs_commit)

    def abort(self) -> None:
        self._call(lib.dc_fs_abort)

    def in_transaction(self) -> bool:
        with self.lock:
            return bool(c_call(lib.dc_fs_in_transaction, self._live()))

    def statvfs(self) -> VolumeStats:
        out = ffi.new("dc_statvfs *")
        self._call(lib.dc_fs_statvfs, out)
        return VolumeStats(
            block_size=int(out.block_size),
            total_blocks=int(out.total_blocks),
            free_blocks=int(out.free_blocks),
            chunk_size=int(out.chunk_size),
            files=int(out.files),
            directories=int(out.directories),
            generation=int(out.generation),
            max_name=int(out.max_name),
        )

    def volume_id(self) -> bytes:
        out = ffi.new("unsigned char[]", lib.DC_CODEC_VOLUME_IDBYTES)
        self._call(lib.dc_fs_volume_id, out)
        return bytes(ffi.buffer(out))

    def fsck(self) -> tuple[int, FsckReport, str]:
        """(status, report, detail): status 0 when clean, else negative."""
        out = ffi.new("dc_fsck_report *")
        with self.lock:
            rc = c_call(lib.dc_fs_fsck, self._live(), out)
            detail = self.errmsg()
        report = FsckReport(
            files=int(out.files),
            directories=int(out.directories),
            metadata_blocks=int(out.metadata_blocks),
            data_blocks=int(out.data_blocks),
            leaked_blocks=int(out.leaked_blocks),
            bad_references=int(out.bad_references),
            errors=int(out.errors),
        )
        return int(rc), report, detail

    def errmsg(self) -> str:
        return str(ffi.string(c_call(lib.dc_fs_errmsg, self._live())).decode("utf-8", "replace"))

    # -- paths -------------------------------------------------------------

    def stat(self, path: str) -> StatResult:
        out = ffi.new("dc_stat *")
        self._call(lib.dc_fs_stat, _path(path), out, path=path)
        return _stat(out)

    def mkdir(self, path: str, mode: int) -> None:
        self._call(lib.dc_fs_mkdir, _path(path), mode, path=path)

    def makedirs(self, path: str, mode: int) -> None:
        self._call(lib.dc_fs_makedirs, _path(path), mode, path=path)

    def create(self, path: str, mode: int, exclusive: bool) -> None:
        self._call(lib.dc_fs_create, _path(path), mode, int(exclusive), path=path)

    def write(self, path: str, offset: int, data: Buffer) -> None:
        if offset < 0:
            raise errors.InvalidArgumentError("negative offset")
        with borrow(data) as (buf, nbytes):
            self._call(lib.dc_fs_write, _path(path), offset, buf, nbytes, path=path)

    def readinto(self, path: str, offset: int, buf: Buffer) -> int:
        if offset < 0:
            raise errors.InvalidArgumentError("negative offset")
        got = ffi.new("size_t *")
        with borrow(buf, writable=True) as (dst, nbytes):
            self._call(lib.dc_fs_read, _path(path), offset, dst, nbytes, got, path=path)
        return int(got[0])

    def truncate(self, path: str, size: int) -> None:
        if size < 0:
            raise errors.InvalidArgumentError("negative size")
        self._call(lib.dc_fs_truncate, _path(path), size, path=path)

    def remove(self, path: str) -> None:
        self._call(lib.dc_fs_remove, _path(path), path=path)

    def rmdir(self, path: str) -> None:
        self._call(lib.dc_fs_rmdir, _path(path), path=path)

    def rename(self, src: str, dst: str) -> None:
        self._call(lib.dc_fs_rename, _path(src), _path(dst), path=src)

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        self._call(lib.dc_fs_set_mtime, _path(path), mtime_ns, path=path)

    def chmod(self, path: str, mode: int) -> None:
        self._call(lib.dc_fs_chmod, _path(path), mode, path=path)

    def iterdir(self, path: str) -> Iterator[tuple[str, StatResult]]:
        """Entries in name order; safe against concurrent changes."""
        out = ffi.new("dc_dir **")
        with self.lock:
            self._check(c_call(lib.dc_fs_opendir, out, self._live(), _path(path)), path)
        cursor = ffi.gc(out[0], lib.dc_dir_free)
        name = ffi.new("char[]", MAX_NAME_BYTES + 1)
        st = ffi.new("dc_stat *")
        while True:
            with self.lock:
                self._live()
                rc = c_call(lib.dc_dir_next, cursor, name, MAX_NAME_BYTES + 1, st)
                if rc == 0:
                    return
                self._check(rc, path)
            yield ffi.string(name).decode("utf-8", "surrogateescape"), _stat(st)


# ---- key slots ---------------------------------------------------------------

KEYSLOTS: int = lib.DC_KEYSLOTS


@dataclass(frozen=True)
class KdfParams:
    """Argon2id costs of a key slot (libsodium crypto_pwhash units)."""

    opslimit: int
    memlimit: int

    @classmethod
    def interactive(cls) -> KdfParams:
        return cls(lib.DC_KEYSLOT_OPSLIMIT_INTERACTIVE, lib.DC_KEYSLOT_MEMLIMIT_INTERACTIVE)

    @classmethod
    def moderate(cls) -> KdfParams:
        return cls(lib.DC_KEYSLOT_OPSLIMIT_MODERATE, lib.DC_KEYSLOT_MEMLIMIT_MODERATE)

    @classmethod
    def minimum(cls) -> KdfParams:
        """The cheapest costs libsodium accepts: for tests only."""
        return cls(lib.DC_KEYSLOT_OPSLIMIT_MIN, lib.DC_KEYSLOT_MEMLIMIT_MIN)


@dataclass(frozen=True)
class KeySlot:
    index: int
    kdf: KdfParams


def _slots(infos: Any) -> list[KeySlot]:
    return [
        KeySlot(i, KdfParams(int(infos[i].opslimit), int(infos[i].memlimit)))
        for i in range(KEYSLOTS)
        if infos[i].in_use
    ]


def _secret(passphrase: str | Buffer) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


def unlock_header(header: Buffer, passphrase: str | Buffer) -> tuple[bytearray, int]:
    """(master key, slot) from a volume header and a passphrase; the key is a
    bytearray so the caller can wipe it."""
    secret = _secret(passphrase)
    key = bytearray(MASTER_KEY_BYTES)
    slot = ffi.new("int *")
    with borrow(header) as (hbuf, hlen), borrow(key, writable=True) as (kbuf, _):
        rc = c_call(lib.dc_keyslot_unlock, kbuf, slot, hbuf, hlen, secret, len(secret))
    if rc == lib.DC_ERR_AUTH:
        raise errors.error_for_status(rc, "wrong passphrase (no key slot opens)")
    if rc == lib.DC_ERR_NOT_FOUND:
        raise errors.error_for_status(rc, "the volume has no passphrase key slot")
    if rc < 0:
        raise errors.error_for_status(rc, ffi.string(c_call(lib.dc_strerror, rc)).decode())
    return key, int(slot[0])


def list_header_slots(header: Buffer) -> list[KeySlot]:
    infos = ffi.new("dc_keyslot_info[]", KEYSLOTS)
    with borrow(header) as (hbuf, hlen):
        rc = c_call(lib.dc_keyslot_list, infos, hbuf, hlen)
    if rc < 0:
        raise errors.error_for_status(rc, ffi.string(c_call(lib.dc_strerror, rc)).decode())
    return _slots(infos)


def keyslot_add(fs: FsHandle, passphrase: str | Buffer, kdf: KdfParams) -> int:
    secret = _secret(passphrase)
    slot = ffi.new("int *")
    fs._call(lib.dc_fs_keyslot_add, slot, secret, len(secret), kdf.opslimit, kdf.memlimit)
    return int(slot[0])


def keyslot_remove(fs: FsHandle, slot: int, *, allow_last: bool = False) -> None:
    fs._call(lib.dc_fs_keyslot_remove, slot, int(allow_last))


def keyslot_list(fs: FsHandle) -> list[KeySlot]:
    infos = ffi.new("dc_keyslot_info[]", KEYSLOTS)
    fs._call(lib.dc_fs_keyslot_list, infos)
    return _slots(infos)


def keyslot_match(fs: FsHandle, passphrase: str | Buffer) -> int:
    secret = _secret(passphrase)
    slot = ffi.new("int *")
    fs._call(lib.dc_fs_keyslot_match, slot, secret, len(secret))
    return int(slot[0])
