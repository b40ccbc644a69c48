"""``ObjectStore``: the engine's block store on an object-store volume.

The engine calls it through the custom-store vtable with whole batches of
block ids; :class:`~.volume.ObjectVolume` turns each batch into parallel
requests and keeps the writer lease and the compare-and-swap of the root
pointers (docs/OBJECT_STORE.md).
"""

from __future__ import annotations

from .._lowlevel.store import CustomStore
from .location import S3Location
from .volume import ObjectVolume

__all__ = ["ObjectStore"]


class ObjectStore(CustomStore):
    """``volume`` as an engine store (the engine owns it from here: freeing
    the store closes the volume)."""

    def __init__(self, volume: ObjectVolume) -> None:
        self.volume = volume
        super().__init__(volume.block_size, volume.total_blocks)

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
