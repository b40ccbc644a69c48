"""The fsspec protocol ``doublecrypt``: files inside an encrypted volume for
pandas, pyarrow, dask and every other fsspec user.

    fsspec.open("doublecrypt:///data/x.csv", "w", image="vol.img", passphrase="...")
    pandas.read_parquet("doublecrypt:///t.parquet",
                        storage_options={"image": "vol.img", "passphrase": "..."})

Paths are absolute paths inside the volume (``doublecrypt://data/x.csv`` and
``doublecrypt:///data/x.csv`` name the same file). Storage options: ``image=``
(an image file) or ``remote=`` (``HOST:PORT`` of a block server, with
``volume=``, ``server_key=``, ``known_hosts=``, ``transport=``,
``tls_fingerprint=``, ``connect_timeout=``, ``io_timeout=``); ``passphrase=``
or ``key=`` (32 bytes or 64 hex digits; a remote volume takes only a key);
``read_only=``; ``auto_mkdir=`` (default True: writing a file makes its
directories, as object stores do); ``threads=`` (codec threads).

Every filesystem object naming one volume shares one open volume
(:mod:`.shared_volumes`); the secret is never kept, not even in fsspec's
instance cache. Each call that changes the volume syncs before it returns, so
what pandas wrote is durable once ``to_parquet`` is back.
"""

from __future__ import annotations

import datetime
import os
import posixpath
import secrets
import shutil
import stat
import threading
import time
from typing import IO, Any

from fsspec.config import apply_config
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem, _Cached
from fsspec.transaction import Transaction
from fsspec.utils import stringify_path
from typing_extensions import Buffer

from . import errors
from ._lowlevel.fs import StatResult
from .api import FileSystem
from .shared_volumes import (
    SHARED_VOLUMES,
    ImageVolume,
    RemoteVolume,
    Secret,
    VolumeLease,
    VolumeSpec,
)

__all__ = ["PROTOCOL", "DoubleCryptFile", "DoubleCryptFileSystem"]

PROTOCOL = "doublecrypt"
SECRET_OPTIONS = ("passphrase", "key")
# Storage options fsspec's own AbstractFileSystem understands (listings cache).
FSSPEC_OPTIONS = frozenset({"use_listings_cache", "listings_expiry_time", "max_paths"})
COPY_CHUNK = 4 << 20
GLOB_CHARACTERS = frozenset("*?[")

# The secret of the object being built, from the metaclass to __init__ on
# the same thread, so it never passes through fsspec's token or options.
_handoff = threading.local()


class _SecretsOutOfCache(_Cached):  # type: ignore[misc]  # fsspec is untyped
    """Keeps passphrases and keys out of fsspec's instance cache.

    fsspec hashes every storage option into the cache token (MD5 of their
    text) and keeps them on the object (``storage_options``, pickles,
    ``to_json``). Here the secret is taken out and replaced by its keyed
    digest ``key_digest``, which tells secrets apart without revealing them."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs = apply_config(cls, kwargs)  # a secret could come from fsspec's config
        secret = Secret.from_options(kwargs.pop("passphrase", None), kwargs.pop("key", None))
        if secret is not None:
            kwargs["key_digest"] = secret.digest
        _handoff.secret = secret
        try:
            return super().__call__(*args, **kwargs)
        finally:
            _handoff.secret = None
            if secret is not None:
                secret.wipe()


def _read_range(raw: IO[bytes], start: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``start`` (fewer only at the end of the file)."""
    out = bytearray(length)
    view = memoryview(out)
    raw.seek(start)
    got = 0
    while got < length:
        n = raw.readinto(view[got:])  # type: ignore[attr-defined]  # a RawFile
        if not n:
            break
        got += n
    view.release()
    del out[got:]
    return bytes(out)


def _temporary_name(path: str) -> str:
    """A fresh name next to ``path`` for a file written before it is committed."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail[:64]}.{secrets.token_hex(6)}.part")


class _VolumeTransaction(Transaction):  # type: ignore[misc]  # fsspec is untyped
    """``with fs.transaction:`` — the deferred files appear in one commit of
    the volume: all of them, or (after any failure) none."""

    def complete(self, commit: bool = True) -> None:
        fs: DoubleCryptFileSystem = self.fs
        files: list[DoubleCryptFile] = list(self.files)
        if not commit or not files:
            super().complete(commit)
            return
        volume = fs.volume
        fs._committing = True
        try:
            with volume.transaction():
                super().complete(True)
        except BaseException:
            # The volume rolled the renames back: remove every temporary file.
            for file in files:
                file.discard()
            raise
        finally:
            fs._committing = False
        volume.sync()


class DoubleCryptFileSystem(AbstractFileSystem, metaclass=_SecretsOutOfCache):  # type: ignore[misc]
    """fsspec filesystem over one doublecrypt volume (see the module docstring)."""

    protocol = PROTOCOL
    root_marker = "/"
    # Newer fsspec strips these from its token itself; the metaclass already did.
    _strip_tokenize_options = SECRET_OPTIONS
    transaction_type = _VolumeTransaction

    def __init__(
        self,
        image: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | Buffer | None = None,
        key: str | Buffer | None = None,
        key_digest: str | None = None,
        read_only: bool = False,
        auto_mkdir: bool = True,
        remote: str | None = None,
        volume: str = "default",
        server_key: str | None = None,
        known_hosts: str | None = None,
        transport: str = "noise",
        tls_fingerprint: str | None = None,
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
        threads: int = 0,
        **fsspec_options: Any,
    ) -> None:
        self._lease: VolumeLease | None = None
        unknown = sorted(set(fsspec_options) - FSSPEC_OPTIONS)
        if unknown:
            raise errors.InvalidArgumentError(f"unknown storage options: {', '.join(unknown)}")
        super().__init__(**fsspec_options)
        self.read_only = read_only
        self.auto_mkdir = auto_mkdir
        self._pid = os.getpid()
        self._committing = False  # inside _VolumeTransaction.complete
        spec: VolumeSpec
        if (image is None) == (remote is None):
            raise errors.InvalidArgumentError(
                "give image= (an image file) or remote= (HOST:PORT of a block server)"
            )
        if image is not None:
            spec = ImageVolume(os.fspath(image), threads)
        else:
            assert remote is not None
            if transport not in ("noise", "tls"):
                raise errors.InvalidArgumentError("transport= is 'noise' or 'tls'")
            spec = RemoteVolume(
                remote,
                volume,
                server_key,
                known_hosts,
                "tls" if transport == "tls" else "noise",
                tls_fingerprint,
                connect_timeout,
                io_timeout,
                threads,
            )
        secret: Secret | None = getattr(_handoff, "secret", None)
        # Built without the metaclass's help (a secret from fsspec's config
        # that fsspec put back): take it from the arguments.
        direct = None if secret is not None else Secret.from_options(passphrase, key)
        try:
            self._lease = SHARED_VOLUMES.borrow(
                spec, secret or direct, key_digest, read_only=read_only
            )
        finally:
            if direct is not None:
                direct.wipe()

    # -- life cycle -------------------------------------------------------------

    @property
    def volume(self) -> FileSystem:
        """The open volume (a :class:`doublecrypt.FileSystem`) behind this object."""
        if self._pid != os.getpid():
            # Two processes writing one image would corrupt it.
            raise errors.InvalidArgumentError(
                "this filesystem object was opened by the parent process: open another one here"
            )
        fs = None if self._lease is None else self._lease.fs
        if fs is None:
            raise errors.InvalidArgumentError("this doublecrypt filesystem is closed")
        return fs

    def _for_writing(self, path: str) -> FileSystem:
        if self.read_only:
            raise errors.error_for_status(-18, "opened read-only", path)
        return self.volume

    def _changed(self) -> None:
        """Make a change durable before the call that made it returns."""
        if not self._committing:
            self.volume.sync()

    def close(self) -> None:
        """Give the volume back (the last object using it syncs and closes it)
        and leave fsspec's cache, so the same options open a new object."""
        cls = type(self)
        with cls._instantiation_lock:
            if cls._cache.get(self._fs_token) is self:
                del cls._cache[self._fs_token]
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    def __enter__(self) -> DoubleCryptFileSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        lease = getattr(self, "_lease", None)
        if lease is not None and getattr(self, "_pid", None) == os.getpid():
            lease.release()

    def sync(self) -> None:
        """Make every change so far durable."""
        self.volume.sync()

    @property
    def fsid(self) -> str:
        return f"{PROTOCOL}-{self.volume.volume_id.hex()}"

    # -- paths ------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text: str = stringify_path(path)
        for prefix in (f"{PROTOCOL}://", f"{PROTOCOL}::"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
                break
        # "doublecrypt://data/x" has no host part: "data" is the top directory.
        return posixpath.normpath("/" + text.lstrip("/"))

    @classmethod
    def _parent(cls, path: Any) -> str:
        name: str = cls._strip_protocol(path)
        return posixpath.dirname(name)

    # -- metadata ---------------------------------------------------------------

    @staticmethod
    def _describe(path: str, st: StatResult) -> dict[str, Any]:
        kind = stat.S_IFDIR if st.is_dir else stat.S_IFREG
        return {
            "name": path,
            "size": 0 if st.is_dir else st.size,  # a directory's size counts entries
            "type": "directory" if st.is_dir else "file",
            "mtime": st.mtime,
            "ctime": st.ctime_ns / 1e9,  # last change (the format keeps no birth time)
            "mode": kind | (st.mode & 0o7777),
            "ino": st.inode,
        }

    def info(self, path: Any, **kwargs: Any) -> dict[str, Any]:
        name = self._strip_protocol(path)
        return self._describe(name, self.volume.stat(name))

    def ls(self, path: Any, detail: bool = True, **kwargs: Any) -> list[Any]:
        name = self._strip_protocol(path)
        volume = self.volume
        st = volume.stat(name)
        if st.is_dir:
            found = [self._describe(entry.path, entry.stat) for entry in volume.scandir(name)]
        else:
            found = [self._describe(name, st)]
        return found if detail else [entry["name"] for entry in found]

    def exists(self, path: Any, **kwargs: Any) -> bool:
        return self.volume.exists(self._strip_protocol(path))

    def isdir(self, path: Any) -> bool:
        return self.volume.is_dir(self._strip_protocol(path))

    def isfile(self, path: Any) -> bool:
        return self.volume.is_file(self._strip_protocol(path))

    def modified(self, path: Any) -> datetime.datetime:
        st = self.volume.stat(self._strip_protocol(path))
        return datetime.datetime.fromtimestamp(st.mtime_ns / 1e9, tz=datetime.timezone.utc)

    # -- directories --------------------------------------------------------------

    def mkdir(
        self, path: Any, create_parents: bool = True, mode: int = 0o755, **kwargs: Any
    ) -> None:
        name = self._strip_protocol(path)
        self._for_writing(name).mkdir(name, mode, parents=create_parents, exist_ok=False)
        self._changed()

    def makedirs(self, path: Any, exist_ok: bool = False) -> None:
        name = self._strip_protocol(path)
        self._for_writing(name).makedirs(name, exist_ok=exist_ok)
        self._changed()

    def rmdir(self, path: Any) -> None:
        name = self._strip_protocol(path)
        self._for_writing(name).rmdir(name)
        self._changed()

    def _make_parent(self, volume: FileSystem, path: str) -> None:
        parent = posixpath.dirname(path)
        if self.auto_mkdir and not volume.is_dir(parent):  # a stat costs less than a commit
            volume.makedirs(parent, exist_ok=True)

    # -- removing, moving, copying -------------------------------------------------

    def rm_file(self, path: Any) -> None:
        name = self._strip_protocol(path)
        self._for_writing(name).remove(name)
        self._changed()

    _rm = rm_file

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Remove files, and with ``recursive`` whole trees, in one commit:
        all of them go or none does. A directory without ``recursive`` is
        refused with IsADirectoryError."""
        names = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        volume = self._for_writing(names[0])
        with volume.transaction():
            for name in reversed(names):  # sorted, so children come before parents
                if not volume.is_dir(name):
                    volume.remove(name)
                elif recursive:
                    volume.rmdir(name)
                else:
                    raise errors.error_for_status(-10, "is a directory (use recursive=True)", name)
        self._changed()

    def mv(
        self,
        path1: Any,
        path2: Any,
        recursive: bool = False,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Rename (files and whole directories alike, in one commit); into
        ``path2`` when that is an existing directory. Lists and globs are
        copied and removed, as fsspec does for every filesystem."""
        if not isinstance(path1, str) or not isinstance(path2, str) or GLOB_CHARACTERS & set(path1):
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        volume = self._for_writing(target)
        if source == target:
            return
        if volume.is_dir(target):
            target = posixpath.join(target, posixpath.basename(source))
        self._make_parent(volume, target)
        volume.rename(source, target)
        self._changed()

    def cp_file(self, path1: Any, path2: Any, **kwargs: Any) -> None:
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        volume = self._for_writing(target)
        if volume.is_dir(source):
            volume.makedirs(target, exist_ok=True)
            self._changed()
            return
        if source == target:
            raise errors.InvalidArgumentError(f"cannot copy a file onto itself: {source}")
        self._make_parent(volume, target)
        with volume.open(source, "rb") as reader, volume.open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer, COPY_CHUNK)
        self._changed()

    # -- contents --------------------------------------------------------------------

    def cat_file(
        self, path: Any, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        name = self._strip_protocol(path)
        volume = self.volume
        st = volume.stat(name)
        if st.is_dir:
            raise errors.error_for_status(-10, "is a directory", name)
        size = st.size
        first = 0 if start is None else start if start >= 0 else max(0, size + start)
        stop = size if end is None else min(size, end if end >= 0 else size + end)
        if stop <= first:
            return b""
        with volume.open(name, "rb", buffering=0) as raw:
            return _read_range(raw, first, stop - first)

    def pipe_file(self, path: Any, value: Buffer, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write a whole file in one commit (``mode="create"``: only a new one)."""
        name = self._strip_protocol(path)
        volume = self._for_writing(name)
        self._make_parent(volume, name)
        if mode == "create":
            with volume.transaction():
                if volume.exists(name):
                    raise errors.error_for_status(-2, "already exists", name)
                volume.write_bytes(name, value)
        else:
            volume.write_bytes(name, value)
        self._changed()

    def touch(self, path: Any, truncate: bool = True, **kwargs: Any) -> None:
        name = self._strip_protocol(path)
        volume = self._for_writing(name)
        if truncate or not volume.exists(name):
            self.pipe_file(name, b"")
            return
        volume.set_mtime(name, time.time_ns())
        self._changed()

    def _open(
        self,
        path: Any,
        mode: str = "rb",
        block_size: int | str | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> DoubleCryptFile:
        return DoubleCryptFile(
            self,
            self._strip_protocol(path),
            mode,
            block_size,
            autocommit,
            cache_options=cache_options,
            **kwargs,
        )


class DoubleCryptFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A file of the volume as an fsspec file: modes rb (through fsspec's
    read cache, readahead by default), wb, ab and xb (buffered in blocks of
    ``block_size``, synced on close). With ``autocommit=False`` (inside
    ``fs.transaction``) the bytes go to a temporary file that :meth:`commit`
    renames into place."""

    def __init__(
        self,
        fs: DoubleCryptFileSystem,
        path: str,
        mode: str = "rb",
        block_size: int | str | None = "default",
        autocommit: bool = True,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("size", None)  # always the volume's own idea of the size
        self._raw: IO[bytes] | None = None
        self._temporary: str | None = None
        self._claimed = False  # "xb" outside autocommit: the name is taken at open
        if mode == "rb":
            self._volume = fs.volume
            st = self._volume.stat(path)
            if st.is_dir:
                raise errors.error_for_status(-10, "is a directory", path)
            kwargs["size"] = st.size
            self._raw = self._volume.open(path, "rb", buffering=0)
        elif mode in ("wb", "ab", "xb"):
            self._volume = fs._for_writing(path)
            fs._make_parent(self._volume, path)
            self._raw = self._open_for_writing(path, mode, autocommit)
        else:
            raise errors.InvalidArgumentError(f"mode {mode!r}: use rb, wb, ab or xb")
        try:
            super().__init__(
                fs,
                path,
                mode,
                block_size,
                autocommit,
                cache_type=cache_type,
                cache_options=cache_options,
                **kwargs,
            )
            if mode == "ab":  # tell() counts from the start of the file, as open() does
                self.loc = self._raw.seek(0, os.SEEK_END)
        except BaseException:
            self._raw.close()
            self._raw = None
            raise

    def _open_for_writing(self, path: str, mode: str, autocommit: bool) -> IO[bytes]:
        volume = self._volume
        if autocommit:
            return volume.open(path, mode, buffering=0)
        if mode == "xb":
            volume.open(path, "xb", buffering=0).close()
            self._claimed = True
        self._temporary = _temporary_name(path)
        if mode == "ab" and volume.is_file(path):
            with volume.open(path, "rb") as reader, volume.open(self._temporary, "wb") as writer:
                shutil.copyfileobj(reader, writer, COPY_CHUNK)
        return volume.open(self._temporary, "ab" if mode == "ab" else "wb", buffering=0)

    def _live_raw(self) -> IO[bytes]:
        if self._raw is None:
            raise ValueError("I/O operation on closed file")
        return self._raw

    def _fetch_range(self, start: int, end: int) -> bytes:
        return _read_range(self._live_raw(), start, end - start)

    def _initiate_upload(self) -> None:
        """Nothing to start: the file was created when it was opened."""

    def _upload_chunk(self, final: bool = False) -> bool:
        raw = self._live_raw()
        with self.buffer.getbuffer() as data:
            if data.nbytes:
                raw.write(data)
        if final:
            raw.close()
            self._raw = None
            if self.autocommit:
                self._volume.sync()
        return True

    def commit(self) -> None:
        """Rename the temporary file into place (autocommit=False only)."""
        if not self.closed:
            self.close()
        if self._temporary is None:
            return
        self._volume.rename(self._temporary, self.path)
        fs: DoubleCryptFileSystem = self.fs
        fs._changed()

    def discard(self) -> None:
        """Throw the temporary file (and a name "xb" took) away; idempotent."""
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        # The names stay known: a volume transaction that rolls back a commit
        # brings the temporary file back, and it is discarded again then.
        leftovers = [self._temporary, self.path if self._claimed else None]
        for name in leftovers:
            if name is not None and self._volume.exists(name):
                self._volume.remove(name)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._raw is not None:
                self._raw.close()
                self._raw = None
