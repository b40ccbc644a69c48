"""``doublecrypt mount``: a volume as a directory, through libfuse 3 (mfusepy).

:func:`serve_mount` mounts an open :class:`doublecrypt.FileSystem` and
serves it until unmounted; :class:`VolumeOperations` are the FUSE operations
(over the public FileSystem API only). The volume format has files and
directories only: symbolic links, hard links and device nodes are refused
with ENOTSUP, owners are not kept (everything belongs to the user who
mounted it; chown is accepted and ignored), and access times are the mtimes.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import errors
from ..api import FileSystem
from .binding import KernelTuning, run_fuse
from .errno_map import errno_for
from .operations import VolumeOperations

__all__ = ["KernelTuning", "VolumeOperations", "errno_for", "serve_mount"]


def serve_mount(
    fs: FileSystem,
    mountpoint: str,
    *,
    read_only: bool = False,
    on_ready: Callable[[], None] | None = None,
    tuning: KernelTuning | None = None,
    debug: bool = False,
) -> None:
    """Mount ``fs`` on ``mountpoint`` and serve it until it is unmounted
    (``umount``, ``fusermount3 -u``, or SIGINT/SIGTERM/SIGHUP to this
    process); then sync and close ``fs``. ``on_ready`` runs (in a libfuse
    thread) once the kernel has connected."""
    operations = VolumeOperations(fs, read_only=read_only, on_ready=on_ready)
    try:
        status = run_fuse(operations, mountpoint, read_only=read_only, tuning=tuning, debug=debug)
    finally:
        fs.close()
    # Once the kernel had connected, a status is how libfuse reports the
    # signal that ended the session: the unmount itself was clean.
    if status != 0 and not operations.was_mounted:
        raise errors.DoubleCryptError(f"libfuse could not mount on {mountpoint} (status {status})")
