"""The FUSE operations of a mounted volume, over the public FileSystem API.

mfusepy calls these from libfuse's worker threads, several at once.
:class:`doublecrypt.FileSystem` is thread-safe (the engine serialises calls),
so the shared state here is the table of open files, the write-behind
buffer (:mod:`.writebehind`) and a change counter that keeps read-ahead
windows (:mod:`.openfile`) current. Paths are the ones libfuse passes: it keeps them current
across renames, and hides a file that is unlinked while open under a
``.fuse_hidden*`` name until its last close.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import posixpath
import stat
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from .. import StatResult, errors
from ..api import FileSystem
from .errno_map import log, reports_errno
from .openfile import OpenFile
from .writebehind import WriteBehind

__all__ = ["VolumeOperations"]

# <linux/fs.h> flags of renameat2(2)
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

IO_SIZE_HINT = 1 << 20
"""st_blksize: tools such as cp and tar size their buffers by it, and one
1 MiB request costs the engine far less than eight of 128 KiB."""

STAT_BLOCK = 512  # st_blocks counts 512-byte units whatever the block size

P = ParamSpec("P")
R = TypeVar("R")


def _after_pending_writes(
    operation: Callable[Concatenate[VolumeOperations, P], R],
) -> Callable[Concatenate[VolumeOperations, P], R]:
    """Give buffered writes to the engine before the operation, so that it
    sees the volume as the writer left it."""

    def wrapper(self: VolumeOperations, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self._flush_pending()
        return operation(self, *args, **kwargs)

    functools.update_wrapper(wrapper, operation)  # its name, for mfusepy's log
    return wrapper


class VolumeOperations:
    """mfusepy operations serving one FileSystem.

    Only the operations defined here are registered with libfuse; the rest
    (xattrs, locks, fallocate) answer ENOSYS/EOPNOTSUPP from the kernel, and
    POSIX and flock locks are then kept by the kernel itself."""

    use_ns = True  # mfusepy: times in nanoseconds

    def __init__(
        self,
        fs: FileSystem,
        *,
        read_only: bool = False,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._fs = fs
        self._read_only = read_only
        self._on_ready = on_ready
        self.was_mounted = False
        self._files: dict[int, OpenFile] = {}
        self._files_lock = threading.Lock()
        self._handle_numbers = itertools.count(1)
        stats = fs.statvfs()
        self._block_size = stats.block_size
        self._chunk_size = stats.chunk_size
        # Counts changes to the volume; open files drop read-ahead data older
        # than the last one (next() on a count is atomic under the GIL).
        self._changes = itertools.count(1)
        self._generation = 0
        self._pending = WriteBehind(stats.chunk_size)
        # The format keeps no owners: everything belongs to whoever mounted it.
        self._uid = os.getuid()
        self._gid = os.getgid()

    # -- life cycle ------------------------------------------------------------

    def init(self, path: str) -> None:
        """The kernel's first request arrived: the mount is usable."""
        self.was_mounted = True
        if self._on_ready is not None:
            self._on_ready()

    def destroy(self, path: str) -> None:
        """Unmounted: sync and close the volume (the caller closes it again
        if libfuse never got this far; closing twice is harmless)."""
        self._flush_pending()
        with self._files_lock:
            for handle in self._files.values():
                try:
                    handle.raise_deferred_error()
                except Exception as exc:  # nobody is left to tell but the log
                    log.error("buffered writes lost at unmount: %s", exc)
                handle.close()
            self._files.clear()
        self._fs.close()

    # -- metadata ----------------------------------------------------------------

    def _attrs(self, st: StatResult) -> dict[str, int]:
        kind = stat.S_IFDIR if st.is_dir else stat.S_IFREG
        return {
            "st_mode": kind | (st.mode & 0o7777),
            "st_ino": st.inode,
            # 1 for directories too: "link count unknown", so tools such as
            # find do not guess subdirectory counts from it.
            "st_nlink": 1,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_size": st.size,
            "st_blocks": st.blocks * self._block_size // STAT_BLOCK,
            "st_blksize": IO_SIZE_HINT,
            "st_atime": st.mtime_ns,  # no access times are kept
            "st_mtime": st.mtime_ns,
            "st_ctime": st.ctime_ns,
        }

    @reports_errno
    @_after_pending_writes
    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        return self._attrs(self._fs.stat(path))

    @reports_errno
    @_after_pending_writes
    def readdir(self, path: str, fh: int) -> list[str | tuple[str, dict[str, int], int]]:
        # "." and ".." need their inode numbers: readdir(3) skips entries with 0.
        parent = posixpath.dirname(path)
        entries: list[str | tuple[str, dict[str, int], int]] = [
            (".", self._dirent_attrs(self._fs.stat(path)), 0),
            ("..", self._dirent_attrs(self._fs.stat(parent)), 0),
        ]
        for entry in self._fs.scandir(path):
            entries.append((entry.name, self._dirent_attrs(entry.stat), 0))
        return entries

    @staticmethod
    def _dirent_attrs(st: StatResult) -> dict[str, int]:
        """What a directory entry carries: its type and inode number."""
        kind = stat.S_IFDIR if st.is_dir else stat.S_IFREG
        return {"st_mode": kind | (st.mode & 0o7777), "st_ino": st.inode}

    @reports_errno
    @_after_pending_writes
    def statfs(self, path: str) -> dict[str, int]:
        vs = self._fs.statvfs()
        return {
            "f_bsize": vs.block_size,
            "f_frsize": vs.block_size,
            "f_blocks": vs.total_blocks,
            "f_bfree": vs.free_blocks,
            "f_bavail": vs.free_blocks,
            # Every file or directory needs at least one free block.
            "f_files": vs.files + vs.directories + vs.free_blocks,
            "f_ffree": vs.free_blocks,
            "f_favail": vs.free_blocks,
            "f_namemax": vs.max_name,
        }

    @reports_errno
    @_after_pending_writes
    def chmod(self, path: str, mode: int) -> None:
        self._fs.chmod(path, mode & 0o7777)

    @reports_errno
    @_after_pending_writes
    def chown(self, path: str, uid: int, gid: int) -> None:
        """Accepted and ignored: the format keeps no owners (like vfat's
        ``quiet`` option), so ``cp -a`` and ``rsync -a`` work as root."""
        self._fs.stat(path)  # but a missing path is still ENOENT

    @reports_errno
    @_after_pending_writes
    def utimens(self, path: str, mtime_ns: int) -> None:
        self._fs.set_mtime(path, mtime_ns)

    # -- names -------------------------------------------------------------------

    @reports_errno
    @_after_pending_writes
    def mkdir(self, path: str, mode: int) -> None:
        self._fs.mkdir(path, mode & 0o7777)

    @reports_errno
    @_after_pending_writes
    def rmdir(self, path: str) -> None:
        self._fs.rmdir(path)

    @reports_errno
    @_after_pending_writes
    def unlink(self, path: str) -> None:
        self._fs.remove(path)
        self._changed()

    @reports_errno
    @_after_pending_writes
    def rename(self, old: str, new: str, flags: int) -> None:
        if flags & RENAME_EXCHANGE or flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise errors.InvalidArgumentError("only RENAME_NOREPLACE is supported")
        if not flags & RENAME_NOREPLACE:
            self._fs.rename(old, new)
            self._changed()
            return
        # The transaction holds the volume's lock: nothing appears at ``new``
        # between the check and the rename.
        with self._fs.transaction():
            if self._fs.exists(new):
                raise errors.AlreadyExistsError(errno.EEXIST, "already exists", new)
            self._fs.rename(old, new)
        self._changed()

    @reports_errno
    def symlink(self, target: str, source: str) -> None:
        raise errors.UnsupportedError("the volume format has no symbolic links")

    @reports_errno
    def link(self, target: str, source: str) -> None:
        raise errors.UnsupportedError("the volume format has no hard links")

    @reports_errno
    @_after_pending_writes
    def mknod(self, path: str, mode: int, dev: int) -> None:
        if not stat.S_ISREG(mode):
            raise errors.UnsupportedError("the volume holds only files and directories")
        self._create(path, mode, exclusive=True)

    # -- contents -------------------------------------------------------------------

    def _create(self, path: str, mode: int, *, exclusive: bool) -> None:
        """Create ``path`` with ``mode``; without ``exclusive`` a file that
        appeared meanwhile is opened as it is (its mode unchanged, as POSIX
        says for O_CREAT)."""
        try:
            with self._fs.transaction():  # the file and its mode in one commit
                self._fs.open(path, "xb", buffering=0).close()
                self._fs.chmod(path, mode & 0o7777)
        except errors.AlreadyExistsError:
            if exclusive or self._fs.is_dir(path):
                raise
        self._changed()

    def _flush_pending(self) -> None:
        if self._pending.flush():
            self._changed()

    def _changed(self) -> None:
        self._generation = next(self._changes)

    def _current_generation(self) -> int:
        return self._generation

    def _open_file(self, path: str, writable: bool) -> OpenFile:
        return OpenFile(
            self._fs,
            path,
            writable=writable,
            chunk_size=self._chunk_size,
            generation=self._current_generation,
        )

    def _register(self, handle: OpenFile) -> int:
        with self._files_lock:
            number = next(self._handle_numbers)
            self._files[number] = handle
        return number

    def _handle(self, fh: int) -> OpenFile:
        with self._files_lock:
            handle = self._files.get(fh)
        if handle is None:
            raise errors.InvalidArgumentError(f"no open file {fh}")
        return handle

    @reports_errno
    @_after_pending_writes
    def create(self, path: str, mode: int, flags: int) -> int:
        self._create(path, mode, exclusive=bool(flags & os.O_EXCL))
        return self._register(self._open_file(path, writable=True))

    @reports_errno
    @_after_pending_writes
    def open(self, path: str, flags: int) -> int:
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        if writable and self._read_only:
            raise errors.ReadOnlyError(errno.EROFS, "mounted read-only", path)
        return self._register(self._open_file(path, writable))

    @reports_errno
    @_after_pending_writes
    def read(self, path: str, size: int, offset: int, fh: int) -> bytearray | memoryview:
        return self._handle(fh).read(path, size, offset)

    @reports_errno
    def write(self, path: str, data: memoryview, offset: int, fh: int) -> int:
        try:
            self._pending.write(self._handle(fh), path, data, offset)
        finally:
            self._changed()
        return len(data)

    @reports_errno
    @_after_pending_writes
    def flush(self, path: str, fh: int) -> None:
        """close(2): report a failure of this file's buffered writes."""
        self._handle(fh).raise_deferred_error()

    @reports_errno
    @_after_pending_writes
    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        self._fs.truncate(path, length)
        self._changed()

    @reports_errno
    @_after_pending_writes
    def release(self, path: str, fh: int) -> None:
        with self._files_lock:
            handle = self._files.pop(fh, None)
        if handle is not None:
            handle.close()

    @reports_errno
    @_after_pending_writes
    def fsync(self, path: str, datasync: int, fh: int) -> None:
        self._handle(fh).raise_deferred_error()
        self._fs.sync()  # the engine makes every commit so far durable at once

    @reports_errno
    @_after_pending_writes
    def fsyncdir(self, path: str, datasync: int, fh: int) -> None:
        self._fs.sync()
