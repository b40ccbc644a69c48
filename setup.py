"""Build glue: the version comes from include/doublecrypt/version.h and the
extension from csrc/ffi_build.py (which reads csrc/SOURCES)."""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "csrc"))
import header_decls

setup(
    version=header_decls.version_string(),
    cffi_modules=["csrc/ffi_build.py:ffibuilder"],
)
