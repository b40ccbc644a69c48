"""doublecrypt: data encrypted wherever it is not in use.

The storage engine is C (``libdoublecrypt``); this package is its Python face.
"""

from __future__ import annotations

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
from .api import DirEntry, FileSystem, ImageInfo, image_info, open_image, unlock_image
from .errors import AuthenticationError, DoubleCryptError

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
    "random_bytes",
    "unlock_image",
]
