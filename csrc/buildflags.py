"""The compiler and linker flags of the C engine: one list for every build.

Read by setup.py (libdoublecrypt.so in the wheel), csrc/ffi_build.py (the
cffi extension) and the Makefile (``python3 csrc/buildflags.py lib-cflags``),
so ``make lib`` and ``python -m build`` compile the same library the same way.
The source list and the version come from ``header_decls``. Paths are
relative to the repository root, the working directory of every build.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import header_decls

C_STD = "-std=c11"
WARNINGS = ["-Wall", "-Wextra"]
INCLUDE_DIRS = ["include", "csrc"]
VERSION_SCRIPT = "csrc/libdoublecrypt.map"


def _pkg_config(*args: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["pkg-config", *args, "libsodium"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.split()


def sodium_cflags() -> list[str]:
    """libsodium's compile flags (pkg-config; none if it has no .pc file)."""
    return _pkg_config("--cflags") or []


def sodium_libs() -> list[str]:
    """libsodium's link flags (pkg-config; plain ``-lsodium`` without it)."""
    return _pkg_config("--libs") or ["-lsodium"]


def soname() -> str:
    return f"libdoublecrypt.so.{header_decls.version()[3]}"


def common_cflags() -> list[str]:
    """What every compile of the engine's own code uses (library, C tests)."""
    return [C_STD, *WARNINGS, "-Werror", *(f"-I{d}" for d in INCLUDE_DIRS)]


def lib_cflags() -> list[str]:
    """Compile flags of libdoublecrypt.so's objects."""
    return [
        *common_cflags(),
        "-O2",
        "-fPIC",
        "-fvisibility=hidden",
        "-DDC_BUILDING",
        *sodium_cflags(),
    ]


def lib_ldflags() -> list[str]:
    """Link flags of libdoublecrypt.so, after the objects on the command line."""
    return [
        "-shared",
        f"-Wl,-soname,{soname()}",
        f"-Wl,--version-script={VERSION_SCRIPT}",
        "-Wl,--no-undefined",
        *sodium_libs(),
        "-pthread",
    ]


def ext_cflags() -> list[str]:
    """Extra compile flags of the cffi extension (it adds -fPIC and Python's
    own flags; no -Werror, for cffi's generated code)."""
    return [C_STD, "-O2", "-fvisibility=hidden", *WARNINGS]


def _main(argv: list[str]) -> int:
    commands: dict[str, Callable[[], list[str]]] = {
        "common-cflags": common_cflags,
        "lib-cflags": lib_cflags,
        "lib-ldflags": lib_ldflags,
        "soname": lambda: [soname()],
    }
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    print(" ".join(commands[argv[1]]()))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
