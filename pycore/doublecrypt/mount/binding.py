"""libfuse 3 through mfusepy: loading it, the kernel-facing tuning, and the
two callbacks mfusepy forwards without what we need.

mfusepy's ``FUSE`` drops the flags of ``rename`` (so RENAME_NOREPLACE would
silently replace) and folds UTIME_NOW / UTIME_OMIT into plain numbers; the
subclass here passes both through. Everything else is mfusepy's high-level
path-based binding, multi-threaded.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from typing_extensions import Buffer

from .. import errors

# mfusepy binds the first libfuse it finds, and Debian installs libfuse 2
# beside 3 (its struct layouts differ): ask for 3 unless the user chose.
if not (os.environ.get("FUSE_LIBRARY_PATH") or os.environ.get("FUSE_LIBRARY_NAME")):
    os.environ["FUSE_LIBRARY_NAME"] = "fuse3"

try:
    import mfusepy  # type: ignore[import-untyped]  # ships no type information
except (ImportError, OSError) as exc:
    raise errors.UnsupportedError(
        "doublecrypt mount needs mfusepy and libfuse 3 (pip install 'doublecrypt[mount]'; "
        f"Debian: apt install fuse3): {exc}"
    ) from exc

if mfusepy.fuse_version_major != 3:
    raise errors.UnsupportedError(
        f"doublecrypt mount needs libfuse 3, found {mfusepy.fuse_version_major}."
        f"{mfusepy.fuse_version_minor} ({mfusepy._libfuse_path})"
    )

__all__ = ["FuseOSError", "KernelTuning", "MountedOperations", "run_fuse"]

FuseOSError: type[OSError] = mfusepy.FuseOSError
"""What an operation raises to fail a request with an errno."""

# <sys/stat.h>: special tv_nsec values of utimensat(2)
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


@dataclass(frozen=True)
class KernelTuning:
    """How much the kernel may cache and how big its requests are.

    The mount is the only writer of the image, so the kernel may keep pages
    across opens (``kernel_cache``) and trust names and attributes for a
    while: every change goes through it and updates its caches."""

    max_write: int = 1 << 20
    max_readahead: int = 1 << 20
    # The kernel starts a FUSE mount at 128 KiB whatever max_readahead says;
    # its sysfs knob (root only) lifts that, and 1 MiB requests read ~20%
    # faster than 128 KiB ones here.
    read_ahead_kb: int = 1024
    entry_timeout: float = 30.0
    attr_timeout: float = 30.0
    negative_timeout: float = 5.0
    kernel_cache: bool = True


class MountedOperations(Protocol):
    """What the binding calls beyond mfusepy's usual operations."""

    def rename(self, old: str, new: str, flags: int) -> None: ...

    def utimens(self, path: str, mtime_ns: int) -> None: ...

    def init(self, path: str) -> None: ...

    def read(self, path: str, size: int, offset: int, fh: int) -> Buffer: ...

    def write(self, path: str, data: memoryview, offset: int, fh: int) -> int: ...


def _mtime_ns(times: Any) -> int | None:
    """The new mtime of a utimens request; None leaves it unchanged."""
    if not times:  # a NULL array means "now" for both
        return time.time_ns()
    mtime = times.contents.modtime
    if mtime.tv_nsec == UTIME_OMIT:
        return None
    if mtime.tv_nsec == UTIME_NOW:
        return time.time_ns()
    return int(mtime.tv_sec) * 1_000_000_000 + int(mtime.tv_nsec)


def _set_read_ahead(mountpoint: str, kib: int) -> None:
    """Set the read-ahead of the mount's backing device, if allowed."""
    try:
        device = os.stat(mountpoint).st_dev
        knob = f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb"
        with open(knob, "w") as f:
            f.write(f"{kib}\n")
    except OSError:
        pass  # not root, or no sysfs: the kernel's default stays


class _Fuse(mfusepy.FUSE):  # type: ignore[misc]  # mfusepy is untyped (Any)
    """mfusepy's binding with rename flags, exact utimens and kernel tuning."""

    def __init__(
        self, operations: MountedOperations, mountpoint: str, tuning: KernelTuning, **options: Any
    ) -> None:
        self._tuning = tuning  # set first: the constructor runs the whole mount
        self._mountpoint = mountpoint
        super().__init__(operations, mountpoint, **options)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        self.operations.rename(self._decode(old), self._decode(new), flags)
        return 0

    def utimens_fuse_3(self, path: bytes | None, times: Any, fip: Any) -> int:
        mtime_ns = _mtime_ns(times)
        if mtime_ns is not None and path is not None:
            self.operations.utimens(self._decode(path), mtime_ns)
        return 0

    # read and write without mfusepy's copies: 1 MiB requests through a
    # Python bytes object each cost more than the kernel's own copy. Paths
    # are never NULL here: the binding does not ask libfuse for nullpath_ok.

    def read(self, path: bytes, buf: Any, size: int, offset: int, fip: Any) -> int:
        data = self.operations.read(self._decode(path), size, offset, fip.contents.fh)
        with memoryview(data) as view:
            count = view.nbytes
            if count > size:
                raise errors.InternalError(f"read returned {count} bytes for {size}")
            if count:
                if view.readonly:
                    ctypes.memmove(buf, bytes(view), count)
                else:
                    ctypes.memmove(buf, (ctypes.c_char * count).from_buffer(view), count)
        return count

    def write(self, path: bytes, buf: Any, size: int, offset: int, fip: Any) -> int:
        address = ctypes.cast(buf, ctypes.c_void_p).value
        request = (ctypes.c_char * size).from_address(address or 0)
        with memoryview(request).cast("B") as data:  # valid during this call only
            written: int = self.operations.write(self._decode(path), data, offset, fip.contents.fh)
        return written

    def init_fuse_3(self, conn: Any, config: Any) -> None:
        tuning = self._tuning
        if conn:
            conn.contents.max_write = tuning.max_write
            conn.contents.max_readahead = min(conn.contents.max_readahead, tuning.max_readahead)
        if config:
            cfg = config.contents
            cfg.use_ino = 1  # the volume's inode numbers, not libfuse's own
            cfg.entry_timeout = tuning.entry_timeout
            cfg.attr_timeout = tuning.attr_timeout
            cfg.negative_timeout = tuning.negative_timeout
            cfg.kernel_cache = int(tuning.kernel_cache)
        super().init_fuse_3(conn, config)
        # Not here: finding the mount's device needs a stat of the mount,
        # which waits for this very request to be answered.
        threading.Thread(
            target=_set_read_ahead,
            args=(self._mountpoint, tuning.read_ahead_kb),
            name="doublecrypt-read-ahead",
            daemon=True,
        ).start()

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self.encoding, self.errors)


def run_fuse(
    operations: MountedOperations,
    mountpoint: str,
    *,
    read_only: bool,
    tuning: KernelTuning | None = None,
    debug: bool = False,
) -> int:
    """Mount and serve requests until unmounted (or SIGINT/SIGTERM/SIGHUP,
    which libfuse turns into an unmount); returns fuse_main's status, which
    is not 0 when mounting failed (libfuse printed why) but also after a
    clean unmount by signal. Always in the foreground: the CLI daemonizes
    itself before, so it can report errors first."""
    options: dict[str, Any] = {
        "foreground": True,
        "debug": debug,
        "fsname": "doublecrypt",
        "subtype": "doublecrypt",
        # The kernel checks permission bits against st_uid/st_mode, as on a
        # local filesystem, rather than letting every request through.
        "default_permissions": True,
    }
    if read_only:
        options["ro"] = True
    try:
        _Fuse(operations, mountpoint, tuning or KernelTuning(), raw_fi=False, **options)
    except RuntimeError as exc:  # mfusepy's way of reporting fuse_main's status
        return int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else -1
    return 0
