"""cffi builder for ``doublecrypt._native`` (out-of-line API mode).

The declarations come from the public headers (``header_decls.cdef_source``),
never from a hand-kept copy; the sources from ``csrc/SOURCES``. The engine is
compiled into the extension with ``DC_STATIC`` and hidden visibility, so the
extension exports nothing but its init function.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

sys.path.insert(0, str(Path(__file__).resolve().parent))
import buildflags
import header_decls


def _flags(prefix: str, flags: list[str]) -> list[str]:
    return [f[len(prefix) :] for f in flags if f.startswith(prefix)]


_cflags = buildflags.sodium_cflags()
_libs = buildflags.sodium_libs()

# Python-only: the callbacks through which CustomStore subclasses serve the
# dc_store_backend vtable (cffi "extern Python"; not part of the C ABI).
PYTHON_CALLBACKS = """
extern "Python" int _dc_py_info(void *, uint32_t *, uint64_t *);
extern "Python" int _dc_py_read_blocks(void *, const uint64_t *, size_t, unsigned char *);
extern "Python" int _dc_py_write_blocks(void *, const uint64_t *, size_t,
                                        const unsigned char *);
extern "Python" int _dc_py_sync(void *);
extern "Python" void _dc_py_close(void *);
extern "Python" int _dc_py_forget(void *);
extern "Python" int _dc_py_progress(void *, uint64_t, uint64_t);
"""

ffibuilder = FFI()
ffibuilder.cdef(header_decls.cdef_source() + PYTHON_CALLBACKS)
ffibuilder.set_source(
    "doublecrypt._native",
    '#include "doublecrypt.h"\n',
    # setuptools insists on paths relative to setup.py
    sources=header_decls.c_sources(),
    include_dirs=[*buildflags.INCLUDE_DIRS, *_flags("-I", _cflags)],
    library_dirs=_flags("-L", _libs),
    libraries=_flags("-l", _libs),
    define_macros=[("DC_STATIC", None)],
    extra_compile_args=buildflags.ext_cflags(),
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
