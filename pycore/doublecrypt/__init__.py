"""doublecrypt: data encrypted wherever it is not in use.

The storage engine is C (``libdoublecrypt``); this package is its Python face.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from ._lowlevel import (
    DEFAULT_BLOCK_SIZE,
    FORMAT_VERSION,
    MASTER_KEY_BYTES,
    MAX_BLOCK_SIZE,
    MIN_BLOCK_SIZE,
    SUBKEY_BLOCK_ENCRYPTION,
    SUBKEY_ROOT_MAC,
    SUBKEY_SERVER_AUTH,
    Allocator,
    Codec,
    ObjectKind,
    OpenedBatch,
    derive_subkey,
    hkdf_sha256,
    random_bytes,
    version,
)
from ._lowlevel.fs import KEYSLOTS, FsckReport, KdfParams, KeySlot, StatResult, VolumeStats
from ._lowlevel.store import (
    CachedStore,
    CustomStore,
    DeviceStore,
    FaultyStore,
    FileStore,
    MemoryStore,
    Store,
)
from .api import (
    DirEntry,
    FileSystem,
    ImageInfo,
    image_info,
    open_image,
    open_object_store,
    open_remote,
    unlock_image,
)
from .errors import AuthenticationError, DoubleCryptError

if TYPE_CHECKING:
    from .net.store import NetworkStore

__version__ = version()

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FORMAT_VERSION",
    "KEYSLOTS",
    "MASTER_KEY_BYTES",
    "MAX_BLOCK_SIZE",
    "MIN_BLOCK_SIZE",
    "SUBKEY_BLOCK_ENCRYPTION",
    "SUBKEY_ROOT_MAC",
    "SUBKEY_SERVER_AUTH",
    "Allocator",
    "AuthenticationError",
    "CachedStore",
    "Codec",
    "CustomStore",
    "DeviceStore",
    "DirEntry",
    "DoubleCryptError",
    "FaultyStore",
    "FileStore",
    "FileSystem",
    "FsckReport",
    "ImageInfo",
    "KdfParams",
    "KeySlot",
    "MemoryStore",
    "NetworkStore",
    "ObjectKind",
    "OpenedBatch",
    "StatResult",
    "Store",
    "VolumeStats",
    "__version__",
    "derive_subkey",
    "errors",
    "hkdf_sha256",
    "image_info",
    "open_image",
    "open_object_store",
    "open_remote",
    "random_bytes",
    "unlock_image",
]


if TYPE_CHECKING:
    from .net.store import NetworkStore
else:

    def __getattr__(name: str) -> object:
        # The network client (protobuf, the channel) loads on first use only.
        if name == "NetworkStore":
            from .net.store import NetworkStore

            return NetworkStore
        raise AttributeError(f"module 'doublecrypt' has no attribute {name!r}")
