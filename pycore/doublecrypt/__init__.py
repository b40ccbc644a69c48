"""doublecrypt: data encrypted wherever it is not in use.

The storage engine is C (``libdoublecrypt``); this package is its Python face.
"""

from __future__ import annotations

from . import errors
from ._lowlevel import (
    DEFAULT_BLOCK_SIZE,
    FORMAT_VERSION,
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
from .errors import AuthenticationError, DoubleCryptError

__version__ = version()

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FORMAT_VERSION",
    "MAX_BLOCK_SIZE",
    "MIN_BLOCK_SIZE",
    "SUBKEY_BLOCK_ENCRYPTION",
    "SUBKEY_ROOT_MAC",
    "SUBKEY_SERVER_AUTH",
    "Allocator",
    "AuthenticationError",
    "Codec",
    "DoubleCryptError",
    "ObjectKind",
    "OpenedBatch",
    "__version__",
    "derive_subkey",
    "errors",
    "hkdf_sha256",
    "random_bytes",
]
