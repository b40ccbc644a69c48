"""Copy a doublecrypt-core (v1) tree into a native volume, and verify the copy.

What carries over: every directory and file, with its exact contents and
size, and its modification time (v1 keeps whole seconds, so the native mtime
is that second exactly). What cannot: the v1 creation time (the native format
has no birth time; its ctime is the time of the import) and the v1 inode ids
(native numbers are assigned afresh). Native volumes give every entry the
default mode (0644 files, 0755 directories); v1 has no modes.

v1 allows the names ``.`` and ``..``; a native volume does not, so a tree
holding one is refused before anything is written (UnsupportedError), as is a
path longer than the native limit or a time past 2262 (native nanoseconds are
signed 64-bit). Nothing is renamed or changed silently.

The copy runs in transactions of up to :data:`BATCH_ITEMS` entries or
:data:`BATCH_BYTES` of contents, so each commit (and its fsync) covers many
small files; directory times are set last, since adding entries changes them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import blake3

from .. import errors
from .._lowlevel.codec import FIRST_DATA_BLOCK, OVERHEAD_BYTES
from ..api import FileSystem
from .v1_reader import V1FileSystem

__all__ = [
    "BATCH_BYTES",
    "BATCH_ITEMS",
    "ImportItem",
    "ImportReport",
    "VerifyReport",
    "import_v1",
    "native_size_needed",
    "plan_import",
    "verify_import",
]

BATCH_ITEMS = 256
BATCH_BYTES = 64 << 20
COPY_CHUNK = 1 << 20
NATIVE_MAX_PATH_BYTES = 4096  # DC_MAX_PATH_BYTES
NATIVE_MAX_MTIME_NS = (1 << 63) - 1  # signed 64-bit nanoseconds (year 2262)
NOT_KEPT = ("v1 creation times (no native field)", "v1 inode ids (renumbered)")

# Native layout figures for the size estimate (docs/FORMAT.md): a namespace
# leaf entry is klen/vlen (4) + parent inode (8) + name + an inode record of
# 48 bytes with up to 4 inline extents of 36 bytes; an extent-tree leaf entry
# is 4 + 8 + 28 bytes; nodes split at a full block, so count them half full.
_NS_ENTRY_FIXED = 4 + 8 + 48 + 4 * 36
_EXTENT_ENTRY = 4 + 8 + 28
_INLINE_EXTENTS = 4
_NODE_HEADER = 4
# Blocks freed by one commit are reused only after the next one, and a
# commit rewrites changed tree nodes: room for the tree three times over.
_TREE_COPIES = 3
_SLACK_BLOCKS = 16


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One directory or file to copy (directories come before their contents)."""

    source: str  # path in the v1 image
    target: str  # path in the native volume
    is_dir: bool
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    files: int
    directories: int  # besides the top directory
    bytes: int
    source_generation: int
    source_root_slot: str
    skipped_roots: tuple[str, ...]  # non-empty: the v1 image fell back to an older root
    not_kept: tuple[str, ...] = NOT_KEPT


@dataclass(frozen=True, slots=True)
class VerifyReport:
    files: int
    directories: int
    bytes: int
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _target_path(dest: str, source: str) -> str:
    return dest if source == "/" else posixpath.join(dest, source.lstrip("/"))


def _normalised_dest(dest: str) -> str:
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise errors.InvalidArgumentError(f"the destination must be an absolute path: {dest!r}")
    parts = [part for part in dest.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise errors.InvalidArgumentError(
            f"'.' and '..' are not allowed in the destination: {dest!r}"
        )
    return "/" + "/".join(parts)


def plan_import(old: V1FileSystem, dest: str = "/") -> list[ImportItem]:
    """Every entry of the v1 tree, top-down, with where it goes under ``dest``
    (an absolute native path). Raises UnsupportedError, listing them, when
    names or paths cannot exist in a native volume."""
    dest = _normalised_dest(dest)
    items = [ImportItem("/", dest, True, 0, old.stat("/").mtime_ns)]
    refused: list[str] = []
    if items[0].mtime_ns > NATIVE_MAX_MTIME_NS:
        refused.append("/: a modification time past what a native volume stores")
    for dirpath, dirnames, _ in old.walk("/"):
        for stat in old.scandir(dirpath):
            target = _target_path(dest, stat.path)
            if stat.name in (".", ".."):
                refused.append(f"{stat.path}: the name {stat.name!r} is not allowed natively")
            elif len(target.encode("utf-8")) > NATIVE_MAX_PATH_BYTES:
                refused.append(
                    f"{stat.path}: longer than {NATIVE_MAX_PATH_BYTES} bytes under {dest}"
                )
            elif stat.mtime_ns > NATIVE_MAX_MTIME_NS:
                refused.append(f"{stat.path}: a modification time past what a native volume stores")
            items.append(ImportItem(stat.path, target, stat.is_dir, stat.size, stat.mtime_ns))
        dirnames[:] = [name for name in dirnames if name not in (".", "..")]
    if refused:
        more = f"; and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise errors.UnsupportedError(
            f"cannot import into a native volume: {'; '.join(refused[:5])}{more}"
        )
    return items


def native_size_needed(items: list[ImportItem], block_size: int) -> int:
    """A generous estimate, in bytes, of a native volume that holds ``items``
    with blocks of ``block_size`` (room for copy-on-write included)."""
    chunk = block_size - OVERHEAD_BYTES
    half_node = (block_size - OVERHEAD_BYTES - _NODE_HEADER) // 2
    data_blocks = sum(-(-item.size // chunk) for item in items if not item.is_dir)
    namespace_bytes = sum(
        _NS_ENTRY_FIXED + len(posixpath.basename(item.target).encode("utf-8")) for item in items
    )
    namespace_nodes = -(-namespace_bytes // half_node)
    tree_nodes = namespace_nodes + namespace_nodes // 8 + 2
    for item in items:
        chunks = -(-item.size // chunk)
        if chunks > _INLINE_EXTENTS:
            leaves = -(-chunks * _EXTENT_ENTRY // half_node)
            tree_nodes += leaves + leaves // 8 + 1
    blocks = FIRST_DATA_BLOCK + data_blocks + _TREE_COPIES * tree_nodes + _SLACK_BLOCKS
    return blocks * block_size


def _batches(items: list[ImportItem]) -> Iterator[list[ImportItem]]:
    batch: list[ImportItem] = []
    batch_bytes = 0
    for item in items:
        if batch and (len(batch) >= BATCH_ITEMS or batch_bytes + item.size > BATCH_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(item)
        batch_bytes += item.size
    if batch:
        yield batch


def _copy_file(
    old: V1FileSystem, new: FileSystem, item: ImportItem, advance: Callable[[int], None]
) -> None:
    copied = 0
    with old.open(item.source) as source, new.open(item.target, "xb") as target:
        while chunk := source.read(COPY_CHUNK):
            target.write(chunk)
            copied += len(chunk)
            advance(len(chunk))
    if copied != item.size:  # the v1 image changed under us
        raise errors.CorruptionError(
            f"{item.source}: read {copied} bytes of a {item.size}-byte file"
        )
    new.set_mtime(item.target, item.mtime_ns)


def import_v1(
    old: V1FileSystem,
    new: FileSystem,
    dest: str = "/",
    *,
    progress: Callable[[int], None] | None = None,
    items: list[ImportItem] | None = None,
) -> ImportReport:
    """Copy the whole v1 tree into ``new`` under ``dest`` (created if
    missing; names already there make it fail with AlreadyExistsError).

    ``progress(nbytes)`` is called as file contents are copied; ``items``
    is a plan from :func:`plan_import` when the caller made one already. An
    error leaves the transactions committed so far in place."""
    plan = plan_import(old, dest) if items is None else items
    advance = progress or (lambda _nbytes: None)
    top = plan[0]
    if top.target != "/":
        new.makedirs(top.target, exist_ok=True)
    for batch in _batches(plan[1:]):
        with new.transaction():
            for item in batch:
                if item.is_dir:
                    new.mkdir(item.target)
                else:
                    _copy_file(old, new, item, advance)
    with new.transaction():
        for item in reversed(plan):
            if item.is_dir:
                new.set_mtime(item.target, item.mtime_ns)
    files = [item for item in plan if not item.is_dir]
    return ImportReport(
        files=len(files),
        directories=len(plan) - len(files) - 1,
        bytes=sum(item.size for item in files),
        source_generation=old.generation,
        source_root_slot=old.root_slot,
        skipped_roots=old.skipped_roots,
    )


def _hash_v1(old: V1FileSystem, path: str, advance: Callable[[int], None]) -> str:
    hasher = blake3.blake3()
    with old.open(path) as source:
        while chunk := source.read(COPY_CHUNK):
            hasher.update(chunk)
            advance(len(chunk))
    return hasher.hexdigest()


def _hash_native(new: FileSystem, path: str) -> str:
    hasher = blake3.blake3()
    with new.open(path, "rb") as source:
        while chunk := source.read(COPY_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _differences(new: FileSystem, item: ImportItem, names: set[str], digest: str) -> list[str]:
    """What differs between the copy of ``item`` and the original's
    ``names`` (a directory) or contents ``digest`` (a file)."""
    try:
        copy = new.stat(item.target)
    except (errors.NotFoundError, errors.NotADirectoryError):
        return [f"{item.target}: missing"]
    if copy.is_dir != item.is_dir:
        return [f"{item.target}: a {'file' if copy.is_file else 'directory'} in the copy"]
    found: list[str] = []
    if copy.mtime_ns != item.mtime_ns:
        found.append(f"{item.target}: mtime {copy.mtime_ns} ns, the original {item.mtime_ns} ns")
    if item.is_dir:
        extra = sorted(set(new.listdir(item.target)) - names)
        if extra:
            found.append(f"{item.target}: entries the original lacks: {', '.join(extra)}")
    elif copy.size != item.size:
        found.append(f"{item.target}: {copy.size} bytes, the original {item.size}")
    elif _hash_native(new, item.target) != digest:
        found.append(f"{item.target}: contents differ (BLAKE3)")
    return found


def verify_import(
    old: V1FileSystem,
    new: FileSystem,
    dest: str = "/",
    *,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Re-read both trees and compare kinds, sizes, mtimes, names and the
    BLAKE3 of every file's contents. Damage in the v1 image raises; every
    difference in the copy is listed in the report (``report.ok``)."""
    plan = plan_import(old, dest)
    advance = progress or (lambda _nbytes: None)
    mismatches: list[str] = []
    for item in plan:
        # The original first: damage there raises, it is no difference.
        names = set(old.listdir(item.source)) if item.is_dir else set()
        digest = "" if item.is_dir else _hash_v1(old, item.source, advance)
        try:
            mismatches.extend(_differences(new, item, names, digest))
        except errors.DoubleCryptError as exc:
            mismatches.append(f"{item.target}: cannot read the copy: {exc}")
    files = [item for item in plan if not item.is_dir]
    return VerifyReport(
        files=len(files),
        directories=len(plan) - len(files) - 1,
        bytes=sum(item.size for item in files),
        mismatches=tuple(mismatches),
    )
