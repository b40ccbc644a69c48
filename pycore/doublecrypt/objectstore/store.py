"""``ObjectStore``: the engine's block store on an object-store volume.

The engine calls it through the custom-store vtable with whole batches of
block ids; :class:`~.volume.ObjectVolume` turns each batch into parallel
requests and keeps the writer lease and the compare-and-swap of the root
pointers (docs/OBJECT_STORE.md).
"""

from __future__ import annotations

from typing import Any

from .._lowlevel.store import CustomStore
from .location import S3Location, S3Settings
from .volume import DEFAULT_IN_FLIGHT, ObjectVolume

__all__ = ["ObjectStore"]


class ObjectStore(CustomStore):
    """The volume at ``location`` as an engine store; arguments as for
    :class:`~.volume.ObjectVolume`."""

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
        self.volume = ObjectVolume(
            location,
            create=create,
            read_only=read_only,
            in_flight=in_flight,
            settings=settings,
            client=client,
            lease_seconds=lease_seconds,
            idle_release=idle_release,
        )
        super().__init__(self.volume.block_size, self.volume.total_blocks)

    @property
    def location(self) -> S3Location:
        return self.volume.location

    def read_into(self, ids: list[int], out: memoryview) -> None:
        self.volume.read_into(ids, out)

    def write_from(self, ids: list[int], data: memoryview) -> None:
        self.volume.write_from(ids, data)

    def forget(self) -> None:
        self.volume.forget()

    def release(self) -> None:
        self.volume.close()

    def delete_volume(self) -> int:
        """Remove every object of the volume; see ObjectVolume.delete."""
        return self.volume.delete()
