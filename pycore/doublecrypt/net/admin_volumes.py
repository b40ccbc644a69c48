"""Volume operations of the management API on top of :class:`VolumeStore`:
delete and resize only while no client has the volume open, and usage.

Coordination with the block server: the server opens a volume
(``VolumeStore.acquire``) synchronously on its event loop, and the
management API runs on the same loop, so each operation below checks "not
open" and changes the files without yielding to the loop in between: no
client can open the volume halfway through. (Running these from another
thread would lose that guarantee.)

Resize is crash-safe through a journal, ``DATA/admin/resizing/NAME``, that
exists while a resize is under way. The volume's ``NAME.json`` is the commit
point: a grow extends the image first and then records the new size; a
shrink records the new size first and then truncates the image. After a
crash, :func:`recover_resizes` makes each journalled image as long as its
``NAME.json`` says, which finishes or undoes the resize correctly in both
directions (the grown tail was zeros; the dropped tail was verified to be).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pathlib
from dataclasses import dataclass
from typing import Any

from ..errors import (
    DoubleCryptError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
    StorageIOError,
)
from .volumes import (
    VolumeInfo,
    VolumeStore,
    check_geometry,
    check_volume_name,
    fsync_dir,
    write_volume_meta,
)

__all__ = [
    "VolumeBusyError",
    "VolumeInUseError",
    "delete_volume",
    "recover_resizes",
    "resize_volume",
    "volume_usage",
]

log = logging.getLogger("doublecrypt.admin")

_JOURNAL_DIR = pathlib.Path("admin") / "resizing"
_SCAN_CHUNK = 1 << 20
_ZEROS = bytes(_SCAN_CHUNK)
_FS_MAGIC = b"DCRYPTFS"


class VolumeBusyError(DoubleCryptError):
    """The volume is open by a client: it cannot be deleted or resized now."""


class VolumeInUseError(DoubleCryptError):
    """A shrink would drop blocks that hold data."""


def _paths(store: VolumeStore, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    check_volume_name(name)
    return store.directory / f"{name}.json", store.directory / f"{name}.img"


def _journal(store: VolumeStore, name: str) -> pathlib.Path:
    return store.data_dir / _JOURNAL_DIR / name


def _is_open(store: VolumeStore, name: str) -> bool:
    return any(volume.name == name for volume in store.open_volumes())


def _refuse_if_open(store: VolumeStore, name: str, action: str) -> None:
    if _is_open(store, name):
        raise VolumeBusyError(
            f"volume {name!r} is open by a client: disconnect it before you {action} it"
        )


def _first_used_block(fd: int, info: VolumeInfo, start_block: int) -> int | None:
    """The first block from ``start_block`` on that is not all zeros (the
    server cannot tell free blocks from used ones otherwise: a block the
    engine never wrote reads as zeros, a written one never does)."""
    offset = start_block * info.block_size
    end = info.size
    while offset < end:
        chunk = os.pread(fd, min(_SCAN_CHUNK, end - offset), offset)
        if not chunk:
            break
        if chunk != _ZEROS[: len(chunk)]:
            nonzero = len(chunk) - len(chunk.lstrip(b"\0"))
            return (offset + nonzero) // info.block_size
        offset += len(chunk)
    return None


def _formatted_blocks(fd: int, info: VolumeInfo) -> int | None:
    """The block count a doublecrypt filesystem in the volume was formatted
    with, from its plaintext header (docs/FORMAT.md: block 0 starts with
    ``DCRYPTFS``, the block size at byte 12, the block count at byte 16, little
    endian); None when block 0 holds no such header."""
    head = os.pread(fd, 24, 0)
    if len(head) < 24 or head[:8] != _FS_MAGIC:
        return None
    if int.from_bytes(head[12:16], "little") != info.block_size:
        return None
    return int.from_bytes(head[16:24], "little")


def resize_volume(store: VolumeStore, name: str, total_blocks: int) -> VolumeInfo:
    """Give volume ``name`` ``total_blocks`` blocks (same block size).

    VolumeBusyError while a client has it open; VolumeInUseError when a shrink
    would go below the filesystem the volume holds or drop a block that is not
    all zeros; NoSpaceError if the disk is too small to grow it. Call on the
    block server's event loop (module docstring)."""
    meta_path, image_path = _paths(store, name)
    info = store.info(name)
    check_geometry(info.block_size, total_blocks)
    _refuse_if_open(store, name, "resize")
    if total_blocks == info.total_blocks:
        return info
    new_size = total_blocks * info.block_size
    resized = VolumeInfo(name, info.block_size, total_blocks, info.token_hash)
    journal = _journal(store, name)
    try:
        fd = os.open(image_path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise StorageIOError(f"volume {name!r}: cannot open {image_path}: {exc}") from None
    try:
        if total_blocks < info.total_blocks:
            # The engine refuses to mount a volume smaller than it was formatted
            # for, even when the dropped blocks were never written.
            formatted = _formatted_blocks(fd, info)
            if formatted is not None and total_blocks < formatted:
                raise VolumeInUseError(
                    f"volume {name!r} holds a filesystem of {formatted} blocks: it cannot "
                    f"shrink below that"
                )
            used = _first_used_block(fd, info, total_blocks)
            if used is not None:
                raise VolumeInUseError(
                    f"volume {name!r}: block {used} holds data, so it cannot shrink below "
                    f"{used + 1} blocks"
                )
        journal.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        journal.write_text(json.dumps({"from": info.total_blocks, "to": total_blocks}) + "\n")
        fsync_dir(journal.parent)
        if total_blocks > info.total_blocks:
            try:
                os.posix_fallocate(fd, info.size, new_size - info.size)
                os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, info.size)
                journal.unlink()
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise NoSpaceError(
                        f"no space to grow volume {name!r} to {new_size} bytes"
                    ) from None
                raise StorageIOError(f"cannot grow {image_path}: {exc}") from None
            write_volume_meta(meta_path, resized)
        else:
            write_volume_meta(meta_path, resized)
            os.ftruncate(fd, new_size)
            os.fsync(fd)
        journal.unlink()
    except DoubleCryptError:
        raise
    except OSError as exc:
        raise StorageIOError(f"volume {name!r}: resize failed: {exc}") from None
    finally:
        os.close(fd)
    log.info("volume %r resized from %d to %d blocks", name, info.total_blocks, total_blocks)
    return resized


def recover_resizes(store: VolumeStore) -> list[str]:
    """Finish or undo resizes a crash interrupted; the volumes repaired."""
    directory = store.data_dir / _JOURNAL_DIR
    if not directory.is_dir():
        return []
    repaired = []
    for journal in sorted(directory.iterdir()):
        name = journal.name
        try:
            meta_path, image_path = _paths(store, name)
            if meta_path.exists():
                info = store.info(name)
                if image_path.stat().st_size != info.size:
                    with open(image_path, "r+b") as image:
                        image.truncate(info.size)
                        os.fsync(image.fileno())
                    repaired.append(name)
                    log.warning("volume %r: interrupted resize completed", name)
            journal.unlink()
        except (OSError, DoubleCryptError) as exc:
            log.error("volume %r: cannot recover an interrupted resize: %s", name, exc)
    return repaired


def delete_volume(store: VolumeStore, name: str) -> None:
    """Delete a volume nobody has open (VolumeBusyError otherwise)."""
    store.info(name)  # NotFoundError first
    _refuse_if_open(store, name, "delete")
    store.remove(name)


@dataclass(frozen=True)
class Usage:
    name: str
    block_size: int
    total_blocks: int
    size: int
    bytes_on_disk: int
    open: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "block_size": self.block_size,
            "total_blocks": self.total_blocks,
            "size": self.size,
            "bytes_on_disk": self.bytes_on_disk,
            "open": self.open,
        }


def volume_usage(store: VolumeStore, info: VolumeInfo) -> Usage:
    """Geometry, the bytes the image occupies on disk, and whether it is open."""
    _, image_path = _paths(store, info.name)
    try:
        on_disk = image_path.stat().st_blocks * 512
    except FileNotFoundError:
        raise NotFoundError(f"volume {info.name!r}: image {image_path} is missing") from None
    except OSError as exc:
        raise StorageIOError(f"cannot stat {image_path}: {exc}") from None
    return Usage(
        info.name,
        info.block_size,
        info.total_blocks,
        info.size,
        on_disk,
        _is_open(store, info.name),
    )


def parse_total_blocks(body: dict[str, Any], block_size: int) -> int:
    """Blocks from a request's ``total_blocks`` or ``size`` (bytes, a
    multiple of the block size)."""
    if "total_blocks" in body:
        value = body["total_blocks"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgumentError("total_blocks must be an integer")
        return value
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidArgumentError("give total_blocks or size (bytes) as an integer")
    if size % block_size:
        raise InvalidArgumentError(f"size {size} is not a multiple of the block size {block_size}")
    return size // block_size
