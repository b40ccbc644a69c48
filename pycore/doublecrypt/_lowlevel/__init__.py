"""Typed wrappers over the C engine: the only package that touches ``_native``.

Every C status is checked here (``_core.check``) and turned into an exception
from :mod:`doublecrypt.errors`; the rest of the package sees plain Python.
cffi releases the GIL around every call, so engine work runs in parallel with
other Python threads.
"""

from __future__ import annotations

from ._core import check, version
from .codec import (
    DEFAULT_BLOCK_SIZE,
    FIRST_DATA_BLOCK,
    FORMAT_VERSION,
    HEADER_BYTES,
    KEY_BYTES,
    MASTER_KEY_BYTES,
    MAX_BLOCK_SIZE,
    MIN_BLOCK_SIZE,
    NONCE_BYTES,
    OVERHEAD_BYTES,
    SUBKEY_BLOCK_ENCRYPTION,
    SUBKEY_BYTES,
    SUBKEY_ROOT_MAC,
    SUBKEY_SERVER_AUTH,
    TAG_BYTES,
    VOLUME_ID_BYTES,
    Allocator,
    Codec,
    ObjectKind,
    OpenedBatch,
    derive_subkey,
    hkdf_sha256,
    random_bytes,
    subkey_label,
)

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FIRST_DATA_BLOCK",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "KEY_BYTES",
    "MASTER_KEY_BYTES",
    "MAX_BLOCK_SIZE",
    "MIN_BLOCK_SIZE",
    "NONCE_BYTES",
    "OVERHEAD_BYTES",
    "SUBKEY_BLOCK_ENCRYPTION",
    "SUBKEY_BYTES",
    "SUBKEY_ROOT_MAC",
    "SUBKEY_SERVER_AUTH",
    "TAG_BYTES",
    "VOLUME_ID_BYTES",
    "Allocator",
    "Codec",
    "ObjectKind",
    "OpenedBatch",
    "check",
    "derive_subkey",
    "hkdf_sha256",
    "random_bytes",
    "subkey_label",
    "version",
]
