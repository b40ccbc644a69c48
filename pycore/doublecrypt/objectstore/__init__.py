"""Volumes on an S3-compatible object store (AWS S3, Ceph RGW, MinIO,
SeaweedFS), safe for several writers: docs/OBJECT_STORE.md.

``ObjectVolume`` is plain Python (the block server uses it without loading
the engine); ``ObjectStore``, the engine's store over it, loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .location import SCHEME, S3Location, S3Settings, is_object_store_url
from .volume import DEFAULT_IN_FLIGHT, ObjectVolume

if TYPE_CHECKING:
    from .store import ObjectStore

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "SCHEME",
    "ObjectStore",
    "ObjectVolume",
    "S3Location",
    "S3Settings",
    "is_object_store_url",
]


def __getattr__(name: str) -> Any:
    if name == "ObjectStore":
        from .store import ObjectStore

        return ObjectStore
    raise AttributeError(name)
