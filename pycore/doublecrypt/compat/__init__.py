"""Reading and migrating images of other formats.

:func:`open_v1` opens an image written by doublecrypt-core 0.1.x (the Rust
seed, on-disk format version 1) read-only; :func:`import_v1` copies its whole
tree into a native :class:`doublecrypt.FileSystem` and :func:`verify_import`
compares the two afterwards.
"""

from __future__ import annotations

from .importer import ImportReport, VerifyReport, import_v1, verify_import
from .v1_reader import V1FileSystem, V1Stat, open_v1

__all__ = [
    "ImportReport",
    "V1FileSystem",
    "V1Stat",
    "VerifyReport",
    "import_v1",
    "open_v1",
    "verify_import",
]
