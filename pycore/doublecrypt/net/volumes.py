"""The block server's volumes: one preallocated image of ciphertext blocks
per volume in ``DATA/volumes/``, with its geometry and token hash beside it.

``DATA/volumes/NAME.img`` holds ``total_blocks * block_size`` bytes (blocks
never written read as zeros); ``DATA/volumes/NAME.json`` is
``{"format": 1, "block_size": ..., "total_blocks": ..., "token_hash": HEX}``,
written atomically. A volume exists once its ``.json`` does, so a creation
cut short leaves at most an orphan ``.img`` that the next creation replaces.

The server sees only ciphertext and the BLAKE3 hash of each volume's auth
token; this module never imports the filesystem layer.
"""

from __future__ import annotations

import errno
import hmac
import json
import os
import pathlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import blake3

from ..errors import (
    AlreadyExistsError,
    AuthenticationError,
    CorruptionError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
    StorageIOError,
)
from .wire import VOLUME_NAME_RE

__all__ = [
    "MAX_BLOCK_SIZE",
    "MIN_BLOCK_SIZE",
    "TOKEN_BYTES",
    "Volume",
    "VolumeInfo",
    "VolumeStore",
    "check_block_ids",
    "check_geometry",
    "check_volume_name",
    "token_hash",
]

VOLUME_FORMAT = 1
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 1 << 20
TOKEN_BYTES = 32
_HASH_BYTES = 32
_MAX_IMAGE_BYTES = (1 << 63) - 1  # off_t


def token_hash(token: bytes | bytearray) -> bytes:
    """BLAKE3 of an auth token: what the server stores instead of the token."""
    return blake3.blake3(bytes(token)).digest()


def check_volume_name(name: str) -> str:
    """``name`` if it is a valid volume name (``[A-Za-z0-9._-]{1,64}``, not
    ``.`` or ``..``), else :class:`InvalidArgumentError`."""
    if not VOLUME_NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidArgumentError(
            f"invalid volume name {name!r}: use 1 to 64 of A-Z a-z 0-9 . _ - (not . or ..)"
        )
    return name


def check_geometry(block_size: int, total_blocks: int) -> None:
    """:class:`InvalidArgumentError` unless the block size is a power of two
    from 512 B to 1 MiB and the volume has at least one block."""
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE or block_size & (block_size - 1):
        raise InvalidArgumentError(
            f"block size {block_size} must be a power of two from {MIN_BLOCK_SIZE} "
            f"to {MAX_BLOCK_SIZE} bytes"
        )
    if total_blocks < 1:
        raise InvalidArgumentError(f"a volume needs at least one block, got {total_blocks}")
    if total_blocks * block_size > _MAX_IMAGE_BYTES:
        raise InvalidArgumentError(
            f"{total_blocks} blocks of {block_size} bytes exceed the largest file size"
        )


@dataclass(frozen=True)
class VolumeInfo:
    """A volume's geometry and token hash, as recorded in ``NAME.json``."""

    name: str
    block_size: int
    total_blocks: int
    token_hash: bytes

    @property
    def size(self) -> int:
        return self.block_size * self.total_blocks

    def token_matches(self, token: bytes | bytearray) -> bool:
        """Whether ``token`` hashes to the recorded hash (constant time)."""
        return hmac.compare_digest(token_hash(token), self.token_hash)


def check_block_ids(info: VolumeInfo, block_ids: Sequence[int]) -> None:
    """InvalidArgumentError unless every id names a block of the volume."""
    for block_id in block_ids:
        if not 0 <= block_id < info.total_blocks:
            raise InvalidArgumentError(
                f"block {block_id} is out of range: volume {info.name!r} has "
                f"{info.total_blocks} blocks"
            )


class Volume:
    """An open volume image: block reads and writes with range and size
    checks (pread/pwrite), and ``sync`` (fsync). Shared by every connection
    that uses the volume; obtain and release it through :class:`VolumeStore`."""

    blocking_io = False  # local file I/O: fast enough for the event loop

    def __init__(self, info: VolumeInfo, path: pathlib.Path) -> None:
        self.info = info
        self.path = path
        self.block_size = info.block_size
        self.total_blocks = info.total_blocks
        try:
            self._fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise CorruptionError(f"volume {info.name!r}: image file {path} is missing") from None
        except OSError as exc:
            raise StorageIOError(f"volume {info.name!r}: cannot open {path}: {exc}") from None
        actual = os.fstat(self._fd).st_size
        if actual != info.size:
            os.close(self._fd)
            raise CorruptionError(
                f"volume {info.name!r}: image {path} has {actual} bytes, expected {info.size}"
            )
        self.references = 0

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _check_ids(self, block_ids: Sequence[int]) -> None:
        check_block_ids(self.info, block_ids)

    def _runs(self, block_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(first block, index in the request, count) for each run of consecutive ids."""
        runs: list[tuple[int, int, int]] = []
        for index, block_id in enumerate(block_ids):
            if runs:
                first, start, count = runs[-1]
                if block_id == first + count:
                    runs[-1] = (first, start, count + 1)
                    continue
            runs.append((block_id, index, 1))
        return runs

    def _io_error(self, action: str, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return NoSpaceError(f"volume {self.name!r}: no space left to {action}")
        return StorageIOError(f"volume {self.name!r}: cannot {action}: {exc}")

    def read_blocks(self, block_ids: Sequence[int]) -> bytes:
        """The blocks concatenated, in the order of ``block_ids``."""
        out = bytearray(len(block_ids) * self.block_size)
        with memoryview(out) as view:
            self.read_blocks_into(block_ids, view)
        return bytes(out)

    def read_blocks_into(self, block_ids: Sequence[int], out: memoryview) -> None:
        """Read the blocks into ``out`` (``len(block_ids) * block_size`` bytes),
        concatenated in the order of ``block_ids``."""
        self._check_ids(block_ids)
        size = self.block_size
        if out.nbytes != len(block_ids) * size:
            raise InvalidArgumentError(
                f"a buffer of {out.nbytes} bytes for {len(block_ids)} blocks of {size} bytes"
            )
        view = out.cast("B") if out.format != "B" or out.ndim != 1 else out
        try:
            for first, start, count in self._runs(block_ids):
                wanted = count * size
                done = 0
                while done < wanted:
                    chunk = view[start * size + done : (start + count) * size]
                    got = os.preadv(self._fd, [chunk], first * size + done)
                    if got == 0:
                        raise StorageIOError(
                            f"volume {self.name!r}: image {self.path} ended early "
                            f"(truncated by someone else?)"
                        )
                    done += got
        except OSError as exc:
            raise self._io_error("read", exc) from None

    def write_blocks(self, block_ids: Sequence[int], data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` (``len(block_ids) * block_size`` bytes) to the blocks."""
        size = self.block_size
        if len(data) != len(block_ids) * size:
            raise InvalidArgumentError(
                f"{len(block_ids)} blocks of {size} bytes need {len(block_ids) * size} bytes "
                f"of data, got {len(data)}"
            )
        self._check_ids(block_ids)
        view = memoryview(data)
        try:
            for first, start, count in self._runs(block_ids):
                chunk = view[start * size : (start + count) * size]
                offset = first * size
                while chunk:
                    written = os.pwrite(self._fd, chunk, offset)
                    chunk = chunk[written:]
                    offset += written
        except OSError as exc:
            raise self._io_error("write", exc) from None
        finally:
            view.release()

    def sync(self) -> None:
        """Make every write done so far durable."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._io_error("sync", exc) from None

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def fsync_dir(directory: pathlib.Path) -> None:
    """Make a rename or create in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_volume_meta(meta_path: pathlib.Path, info: VolumeInfo) -> None:
    """Write ``NAME.json`` atomically (temporary file, fsync, rename, fsync of
    the directory): the commit point of creating or resizing a volume."""
    meta = {
        "format": VOLUME_FORMAT,
        "block_size": info.block_size,
        "total_blocks": info.total_blocks,
        "token_hash": info.token_hash.hex(),
    }
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (json.dumps(meta, indent=2) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, meta_path)
    fsync_dir(meta_path.parent)


class VolumeStore:
    """The volumes of one data directory. Opened volumes are shared and
    reference counted (:meth:`acquire` / :meth:`release`). Thread-safe."""

    blocking_io = False

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = pathlib.Path(data_dir)
        self.directory = self.data_dir / "volumes"
        self._open: dict[str, Volume] = {}
        self._lock = threading.Lock()

    def _paths(self, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        check_volume_name(name)
        return self.directory / f"{name}.json", self.directory / f"{name}.img"

    def exists(self, name: str) -> bool:
        return self._paths(name)[0].exists()

    def info(self, name: str) -> VolumeInfo:
        """A volume's recorded geometry and token hash; NotFoundError if absent."""
        meta_path, _ = self._paths(name)
        try:
            text = meta_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"no such volume: {name!r} (in {self.directory})") from None
        except OSError as exc:
            raise StorageIOError(f"cannot read {meta_path}: {exc}") from None
        try:
            meta = json.loads(text)
            if meta.get("format") != VOLUME_FORMAT:
                raise CorruptionError(
                    f"{meta_path}: unsupported volume format {meta.get('format')!r}"
                )
            block_size = meta["block_size"]
            total_blocks = meta["total_blocks"]
            digest = bytes.fromhex(meta["token_hash"])
            if not (isinstance(block_size, int) and isinstance(total_blocks, int)):
                raise ValueError("geometry is not integers")
            check_geometry(block_size, total_blocks)
            if len(digest) != _HASH_BYTES:
                raise ValueError("token hash is not 32 bytes")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(f"{meta_path}: invalid volume metadata ({exc})") from None
        return VolumeInfo(name, block_size, total_blocks, digest)

    def list_volumes(self) -> list[VolumeInfo]:
        """Every volume, sorted by name."""
        if not self.directory.is_dir():
            return []
        names = sorted(
            path.stem
            for path in self.directory.glob("*.json")
            if VOLUME_NAME_RE.fullmatch(path.stem) and path.stem not in (".", "..")
        )
        return [self.info(name) for name in names]

    def create(
        self, name: str, block_size: int, total_blocks: int, token_digest: bytes
    ) -> VolumeInfo:
        """Create a volume (image preallocated with zeros, then its metadata).

        AlreadyExistsError if it exists, NoSpaceError if the disk is too small."""
        meta_path, image_path = self._paths(name)
        check_geometry(block_size, total_blocks)
        if len(token_digest) != _HASH_BYTES:
            raise InvalidArgumentError(
                f"token hash must be {_HASH_BYTES} bytes (BLAKE3), got {len(token_digest)}"
            )
        with self._lock:
            if meta_path.exists():
                raise AlreadyExistsError(f"volume {name!r} already exists (in {self.directory})")
            self.directory.mkdir(parents=True, exist_ok=True)
            size = block_size * total_blocks
            fd = os.open(image_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                image_path.unlink(missing_ok=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise NoSpaceError(
                        f"no space for volume {name!r} of {size} bytes in {self.directory}"
                    ) from None
                raise StorageIOError(f"cannot create {image_path}: {exc}") from None
            os.close(fd)
            info = VolumeInfo(name, block_size, total_blocks, bytes(token_digest))
            write_volume_meta(meta_path, info)
        return info

    def remove(self, name: str) -> None:
        """Delete a volume (metadata first, so a crash leaves no half volume).
        A server that has it open keeps serving the old image until it closes it."""
        meta_path, image_path = self._paths(name)
        with self._lock:
            try:
                meta_path.unlink()
            except FileNotFoundError:
                raise NotFoundError(f"no such volume: {name!r} (in {self.directory})") from None
            image_path.unlink(missing_ok=True)
            fsync_dir(self.directory)

    def acquire(self, name: str, token: bytes | bytearray) -> Volume:
        """Open (or share) a volume for a client presenting ``token``;
        AuthenticationError if the token's hash is not the volume's."""
        info = self.info(name)
        if not info.token_matches(token):
            raise AuthenticationError(f"wrong auth token for volume {name!r}")
        with self._lock:
            volume = self._open.get(name)
            if volume is None or volume.info != info:
                volume = Volume(info, self._paths(name)[1])
                self._open[name] = volume
            volume.references += 1
            return volume

    def release(self, volume: Volume) -> None:
        """Drop one reference; the last one syncs and closes the image (this
        can block on fsync: call it from a worker thread in async code)."""
        with self._lock:
            volume.references -= 1
            if volume.references > 0:
                return
            if self._open.get(volume.name) is volume:
                del self._open[volume.name]
        try:
            volume.sync()
        finally:
            volume.close()

    def open_volumes(self) -> list[Volume]:
        with self._lock:
            return list(self._open.values())
