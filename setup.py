"""Build glue: the version comes from include/doublecrypt/version.h, the source
list from csrc/SOURCES (both through csrc/header_decls.py), the compiler flags
from csrc/buildflags.py and the extension from csrc/ffi_build.py.

A wheel also carries the C library for C, Swift and JNI consumers, built by
``build_ext`` below the way ``make lib`` builds it, inside the package::

    doublecrypt/lib/libdoublecrypt.so.<ABI>    soname, version script, -lsodium
    doublecrypt/lib/libdoublecrypt.so          linker script -> the above
    doublecrypt/lib/pkgconfig/doublecrypt.pc   relocatable (${pcfiledir})
    doublecrypt/include/...                    the public headers, module.modulemap

``python -m doublecrypt.config`` prints the flags to use them. Editable
installs skip this: they use include/ and build/ from ``make lib``.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent / "csrc"))
import buildflags
import header_decls

ROOT = Path(__file__).resolve().parent
PACKAGE = "doublecrypt"


def _public_headers() -> list[Path]:
    """Every file `make install` puts under include/, relative to include/."""
    inc = ROOT / "include"
    files = [*inc.glob("*.h"), inc / "module.modulemap", *inc.glob("doublecrypt/*.h")]
    return sorted(p.relative_to(inc) for p in files)


def _pkg_config_file() -> str:
    """csrc/libdoublecrypt.pc.in for the wheel: paths relative to the .pc file
    (it lives in <package>/lib/pkgconfig), and no Requires.private on
    libsodium, which the wheel bundles and consumers need not find."""
    text = (ROOT / "csrc" / "libdoublecrypt.pc.in").read_text()
    for key, value in {
        "@PREFIX@": "${pcfiledir}/../..",
        "@INCLUDEDIR@": "${prefix}/include",
        "@LIBDIR@": "${prefix}/lib",
        "@VERSION@": header_decls.version_string(),
    }.items():
        text = text.replace(key, value)
    return "".join(
        ln
        for ln in text.splitlines(keepends=True)
        if ln.split(":")[0].strip() != "Requires.private"
    )


class BuildExtWithLibrary(build_ext):
    """build_ext, then (for a wheel) libdoublecrypt.so and its headers."""

    def run(self) -> None:
        super().run()
        if self.inplace or getattr(self, "editable_mode", False):
            return
        self.build_shared_library(Path(self.build_lib) / PACKAGE)

    def build_shared_library(self, package_dir: Path) -> None:
        if self.compiler.compiler_type != "unix":
            raise RuntimeError("libdoublecrypt.so is built with a Unix C compiler only")
        # The compiler setuptools uses ($CC or Python's), without Python's flags.
        cc = list(self.compiler.linker_exe)
        obj_dir = Path(self.build_temp) / "libdoublecrypt"
        lib_dir = package_dir / "lib"
        lib_dir.mkdir(parents=True, exist_ok=True)

        cflags = buildflags.lib_cflags()
        jobs = []
        for src in header_decls.c_sources():
            obj = obj_dir / Path(src).relative_to("csrc").with_suffix(".o")
            obj.parent.mkdir(parents=True, exist_ok=True)
            jobs.append([*cc, *cflags, "-c", src, "-o", str(obj)])
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(self.compiler.spawn, jobs))  # re-raises the first failure
        soname = buildflags.soname()
        objects = [job[-1] for job in jobs]
        self.compiler.spawn([*cc, "-o", str(lib_dir / soname), *objects, *buildflags.lib_ldflags()])

        # A wheel cannot hold the libdoublecrypt.so -> .so.<ABI> symlink that
        # -ldoublecrypt (and Swift's `link "doublecrypt"`) needs: a GNU ld
        # script does the same (as libc.so does).
        (lib_dir / "libdoublecrypt.so").write_text(
            f"/* GNU ld script: -ldoublecrypt links against {soname} */\nINPUT({soname})\n"
        )
        (lib_dir / "pkgconfig").mkdir(exist_ok=True)
        (lib_dir / "pkgconfig" / "doublecrypt.pc").write_text(_pkg_config_file())
        for rel in _public_headers():
            dest = package_dir / "include" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(ROOT / "include" / rel), str(dest))


setup(
    version=header_decls.version_string(),
    cffi_modules=["csrc/ffi_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithLibrary},
    options={
        # setuptools' intermediates apart from the Makefile's build/ objects
        "build": {"build_base": "build/py"},
        # the cffi extension uses only the stable ABI (_native.abi3.so)
        "bdist_wheel": {"py_limited_api": "cp310"},
    },
)
