"""A volume of blocks in an S3-compatible object store: ``ObjectVolume`` (pure
Python, also what ``doublecrypt serve --backend s3://`` serves) and
``ObjectStore``, the engine's custom store over it.

One object per block (``PREFIX/blocks/<id>``), the geometry in
``PREFIX/meta.json``. The engine calls it through the custom-store vtable
with whole batches of block ids; a batch becomes that many requests on a
pool of ``in_flight`` threads (default 16). Every block is sealed before it
gets here, so the service sees ciphertext only.

Several clients may open one volume. Writes happen only under the volume's
writer lease (lease.py), and taking the lease checks that the engine's view
is current: the ETags of the two root-pointer objects must still be the
ones this store last read or wrote. Root pointers are themselves written by
compare-and-swap on that ETag. So a commit either builds on the latest
generation or fails with ConflictError before anything shared changed;
``FileSystem.refresh()`` then loads the latest generation to retry on.
docs/OBJECT_STORE.md has the whole model.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from ..errors import (
    AlreadyExistsError,
    ConflictError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
    ReadOnlyError,
    UnsupportedError,
)
from .lease import WriterLease
from .location import S3Location, S3Settings, make_client
from .readahead import ReadAhead
from .s3io import S3IO

__all__ = ["DEFAULT_IN_FLIGHT", "META_FORMAT", "ObjectVolume"]

DEFAULT_IN_FLIGHT = 16
META_FORMAT = "doublecrypt-object-store"
META_VERSION = 1
ROOT_POINTERS = (1, 2)  # blocks 1 and 2: the A/B root pointers
FIRST_DATA_BLOCK = 3  # before it: the header and the root pointers


class ObjectVolume:
    """A volume under ``location`` (``s3://BUCKET/PREFIX``). ``create=(block_size,
    total_blocks)`` makes a new volume there (refused if one exists). Each
    client (each server session) needs its own: it carries that client's
    view of the root pointers and its writer lease."""

    def __init__(
        self,
        location: str | S3Location,
        *,
        create: tuple[int, int] | None = None,
        read_only: bool = False,
        in_flight: int = DEFAULT_IN_FLIGHT,
        settings: S3Settings | None = None,
        client: Any = None,
        lease_seconds: float = 60.0,
        idle_release: float = 2.0,
    ) -> None:
        if in_flight < 1:
            raise InvalidArgumentError("in_flight must be at least 1")
        self.location = location if isinstance(location, S3Location) else S3Location.parse(location)
        self.read_only = read_only
        self.in_flight = in_flight
        self._io = S3IO(
            client or make_client(settings or S3Settings(), in_flight), self.location.bucket
        )
        block_size, total_blocks = (
            self._create_meta(*create) if create is not None else self._read_meta()
        )
        self._dirty = False  # blocks written since the last root pointer
        # The root pointers as this client last read or wrote them (None:
        # absent, as on a volume nobody has formatted yet).
        self._root_etags: dict[int, str | None] = dict.fromkeys(ROOT_POINTERS)
        self._state_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="dc-s3")
        self._read_ahead = ReadAhead(
            self._pool, self._get_block, total_blocks, max_blocks=4 * in_flight
        )
        self.lease = WriterLease(
            self._io,
            self.location.key("writer.json"),
            lease_seconds=lease_seconds,
            idle_release=idle_release,
            busy=lambda: self._dirty,
        )
        self.block_size = block_size
        self.total_blocks = total_blocks

    # -- volume metadata --------------------------------------------------------

    def _block_key(self, block: int) -> str:
        return self.location.key(f"blocks/{block:016x}")

    def _create_meta(self, block_size: int, total_blocks: int) -> tuple[int, int]:
        if self.read_only:
            raise InvalidArgumentError("a volume cannot be created read-only")
        meta = {
            "format": META_FORMAT,
            "version": META_VERSION,
            "block_size": block_size,
            "total_blocks": total_blocks,
        }
        body = json.dumps(meta).encode()
        if self._io.put_if(self.location.key("meta.json"), body, None) is None:
            raise AlreadyExistsError(f"a volume already exists at {self.location}")
        return block_size, total_blocks

    def _read_meta(self) -> tuple[int, int]:
        found = self._io.get(self.location.key("meta.json"))
        if found is None:
            raise NotFoundError(f"no volume at {self.location} (no meta.json)")
        try:
            meta = json.loads(found[0])
            if meta.get("format") != META_FORMAT:
                raise CorruptionError(f"{self.location}/meta.json is not a doublecrypt volume")
            if meta.get("version") != META_VERSION:
                raise UnsupportedError(
                    f"{self.location}: object store layout version {meta.get('version')!r}"
                )
            return int(meta["block_size"]), int(meta["total_blocks"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptionError(f"{self.location}/meta.json is unreadable: {e}") from None

    # -- blocks -----------------------------------------------------------------

    def _get_block(self, block: int) -> bytes | None:
        """A block's bytes (None: never written); records root-pointer ETags."""
        found = self._io.get(self._block_key(block))
        data, etag = found if found is not None else (None, None)
        if data is not None and len(data) != self.block_size:
            raise CorruptionError(
                f"object for block {block} holds {len(data)} bytes, not {self.block_size}"
            )
        if block in ROOT_POINTERS:
            with self._state_lock:
                self._root_etags[block] = etag
        return data

    def read_into(self, ids: list[int], out: memoryview) -> None:
        bs = self.block_size
        if len(ids) == 1 and ids[0] >= FIRST_DATA_BLOCK:
            data = self._read_ahead.read(ids[0])
            out[:bs] = data if data is not None else bytes(bs)
            return

        def fetch(i: int) -> None:
            data = self._get_block(ids[i])
            out[i * bs : (i + 1) * bs] = data if data is not None else bytes(bs)

        self._run(fetch, len(ids))

    def forget(self) -> None:
        """Drop blocks fetched ahead: other clients may have written."""
        self._read_ahead.forget()

    def write_from(self, ids: list[int], data: bytes | bytearray | memoryview) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{self.location} is open read-only")
        try:
            self._write(ids, data)
        except BaseException:
            # The engine rolls that commit back (a failed root pointer stops it
            # until a refresh): no commit is in progress any more, so the
            # lease may go when idle.
            self._dirty = False
            raise

    def _write(self, ids: list[int], data: bytes | bytearray | memoryview) -> None:
        bs = self.block_size
        roots = [i for i, block in enumerate(ids) if block in ROOT_POINTERS]
        others = [i for i, block in enumerate(ids) if block not in ROOT_POINTERS]
        if self._dirty and not self.lease.held:
            raise ConflictError("the writer lease was lost during a commit: refresh and retry")
        self.lease.ensure(self._view_is_current)
        if others:
            self._dirty = True
            self._read_ahead.written([ids[i] for i in others])

            def store(k: int) -> None:
                i = others[k]
                self._io.put(self._block_key(ids[i]), bytes(data[i * bs : (i + 1) * bs]))

            self._run(store, len(others))
        for i in roots:  # after the blocks they name (the engine synced those)
            block = ids[i]
            with self._state_lock:
                etag = self._root_etags[block]
            new = self._io.put_if(self._block_key(block), bytes(data[i * bs : (i + 1) * bs]), etag)
            if new is None:
                raise ConflictError(
                    f"root pointer {'AB'[block - 1]} changed under this writer: refresh and retry"
                )
            with self._state_lock:
                self._root_etags[block] = new
            self._dirty = False

    def _view_is_current(self) -> bool:
        """Whether the root pointers are still the ones this store last saw."""
        return all(self._io.etag(self._block_key(b)) == self._root_etags[b] for b in ROOT_POINTERS)

    def _run(self, fn: Any, count: int) -> None:
        if count == 1 or self.in_flight == 1:
            for i in range(count):
                fn(i)
            return
        futures = [self._pool.submit(fn, i) for i in range(count)]
        wait(futures)  # all of them: none may touch the engine's buffer later
        for future in futures:
            future.result()  # the first failure is raised

    def close(self) -> None:
        """Let the writer lease go; writes were complete when they returned."""
        self._read_ahead.forget()
        self.lease.release()
        self._pool.shutdown(wait=True)

    # -- whole volumes ----------------------------------------------------------

    def delete(self) -> int:
        """Remove every object of the volume (refused while another client
        holds its writer lease). Returns the number of objects deleted."""
        self.lease.ensure(lambda: True)
        try:
            deleted = self._io.delete_prefix(self.location.key("blocks/"))
            for name in ("meta.json", "writer.json"):
                deleted += self._io.delete(self.location.key(name))
            return deleted
        finally:
            self.lease.release()
