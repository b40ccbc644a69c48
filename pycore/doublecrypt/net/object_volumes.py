"""The block server's volumes in an object store (``serve --backend
s3://BUCKET/PREFIX``): the same interface as :class:`~.volumes.VolumeStore`,
with no state in the server, so several servers can front one bucket.

Volume NAME is the object-store volume ``PREFIX/NAME`` (docs/OBJECT_STORE.md:
``meta.json``, ``writer.json``, ``blocks/``) plus the server's record
``PREFIX/NAME/server.json`` = ``{"format": 1, "token_hash": HEX}``, written
last when creating and removed first when deleting, so a volume exists once
its record does. Each client session gets a volume of its own: the writer
lease and the root-pointer view that make several writers safe are per
client, whichever server it talks to. A commit another client overtook is
refused with WRITE_CONFLICT (412).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from ..errors import (
    AlreadyExistsError,
    AuthenticationError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
)
from ..objectstore.location import S3Location, S3Settings, make_client
from ..objectstore.s3io import S3IO
from ..objectstore.volume import DEFAULT_IN_FLIGHT, ObjectVolume
from .volumes import VolumeInfo, check_block_ids, check_geometry, check_volume_name

__all__ = ["ObjectSessionVolume", "ObjectVolumeStore"]

RECORD_FORMAT = 1


class ObjectSessionVolume:
    """One client session's view of a volume (the server's Volume interface).
    Its calls block on the network: the server runs them in threads."""

    blocking_io = True

    def __init__(self, info: VolumeInfo, volume: ObjectVolume) -> None:
        self.info = info
        self.volume = volume
        self.block_size = info.block_size
        self.total_blocks = info.total_blocks

    @property
    def name(self) -> str:
        return self.info.name

    def read_blocks(self, block_ids: Sequence[int]) -> bytes:
        out = bytearray(len(block_ids) * self.block_size)
        self.read_blocks_into(block_ids, memoryview(out))
        return bytes(out)

    def read_blocks_into(self, block_ids: Sequence[int], out: memoryview) -> None:
        check_block_ids(self.info, block_ids)
        self.volume.read_into(list(block_ids), out)

    def write_blocks(self, block_ids: Sequence[int], data: bytes | bytearray | memoryview) -> None:
        check_block_ids(self.info, block_ids)
        if len(data) != len(block_ids) * self.block_size:
            raise InvalidArgumentError(
                f"{len(data)} bytes of data for {len(block_ids)} blocks of {self.block_size}"
            )
        self.volume.write_from(list(block_ids), data)

    def sync(self) -> None:
        """Writes are durable in the object store when they return."""

    def close(self) -> None:
        self.volume.close()


class ObjectVolumeStore:
    """The volumes under ``url`` (``s3://BUCKET/PREFIX``). Thread-safe; its
    calls block on the network (the server runs them in threads)."""

    blocking_io = True

    def __init__(
        self,
        url: str,
        settings: S3Settings | None = None,
        *,
        in_flight: int = DEFAULT_IN_FLIGHT,
    ) -> None:
        self.location = S3Location.parse(url)
        self.in_flight = in_flight
        self._client = make_client(settings or S3Settings(), in_flight * 4)
        self._io = S3IO(self._client, self.location.bucket)
        self._open: set[ObjectSessionVolume] = set()
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return str(self.location)

    def _record_key(self, name: str) -> str:
        return self.location.child(check_volume_name(name)).key("server.json")

    def _volume(self, name: str, create: tuple[int, int] | None = None) -> ObjectVolume:
        return ObjectVolume(
            self.location.child(name), create=create, client=self._client, in_flight=self.in_flight
        )

    def exists(self, name: str) -> bool:
        return self._io.etag(self._record_key(name)) is not None

    def info(self, name: str) -> VolumeInfo:
        found = self._io.get(self._record_key(name))
        if found is None:
            raise NotFoundError(f"no such volume: {name!r} (in {self.location})")
        try:
            record = json.loads(found[0])
            if record.get("format") != RECORD_FORMAT:
                raise ValueError(f"unsupported record format {record.get('format')!r}")
            digest = bytes.fromhex(record["token_hash"])
            block_size = int(record["block_size"])
            total_blocks = int(record["total_blocks"])
            check_geometry(block_size, total_blocks)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(f"volume {name!r}: invalid server record ({exc})") from None
        return VolumeInfo(name, block_size, total_blocks, digest)

    def list_volumes(self) -> list[VolumeInfo]:
        prefix = self.location.key("")
        names: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return [self.info(name) for name in sorted(names) if self.exists(name)]

    def create(
        self, name: str, block_size: int, total_blocks: int, token_digest: bytes
    ) -> VolumeInfo:
        check_geometry(block_size, total_blocks)
        if len(token_digest) != 32:
            raise InvalidArgumentError(f"token hash must be 32 bytes, got {len(token_digest)}")
        record_key = self._record_key(name)
        if self.exists(name):
            raise AlreadyExistsError(f"volume {name!r} already exists (in {self.location})")
        self._volume(name, create=(block_size, total_blocks)).close()
        record = {
            "format": RECORD_FORMAT,
            "block_size": block_size,
            "total_blocks": total_blocks,
            "token_hash": token_digest.hex(),
        }
        if self._io.put_if(record_key, json.dumps(record).encode(), None) is None:
            raise AlreadyExistsError(f"volume {name!r} was created meanwhile (in {self.location})")
        return VolumeInfo(name, block_size, total_blocks, bytes(token_digest))

    def remove(self, name: str) -> None:
        """Delete a volume: its record first (it stops existing), then its
        objects (refused while a client holds its writer lease)."""
        self.info(name)
        self._io.delete(self._record_key(name))
        self._volume(name).delete()

    def acquire(self, name: str, token: bytes | bytearray) -> ObjectSessionVolume:
        info = self.info(name)
        if not info.token_matches(token):
            raise AuthenticationError(f"wrong auth token for volume {name!r}")
        session = ObjectSessionVolume(info, self._volume(name))
        if (session.volume.block_size, session.volume.total_blocks) != (
            info.block_size,
            info.total_blocks,
        ):
            session.close()
            raise CorruptionError(f"volume {name!r}: record and meta.json disagree on geometry")
        with self._lock:
            self._open.add(session)
        return session

    def release(self, volume: ObjectSessionVolume) -> None:
        with self._lock:
            self._open.discard(volume)
        volume.close()

    def open_volumes(self) -> list[ObjectSessionVolume]:
        with self._lock:
            return list(self._open)
