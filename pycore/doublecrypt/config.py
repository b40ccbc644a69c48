"""Where the C library that comes with this package lives, for C, Swift and
JNI builds (like ``pkg-config`` or ``python3-config``)::

    cc app.c $(python -m doublecrypt.config --cflags --libs)

A wheel carries ``libdoublecrypt.so.<ABI>``, the public headers,
``module.modulemap`` and a pkg-config file inside the package
(``doublecrypt/lib``, ``doublecrypt/include``); its libsodium is bundled and
found through the library's RPATH. A development (editable) install has none
of them: the paths are then the repository's ``include/`` and ``build/``,
where ``make lib`` puts the library.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout", "LibraryNotFoundError", "cflags", "layout", "libs"]

PACKAGE_DIR = Path(__file__).resolve().parent
LIBRARY = "doublecrypt"


class LibraryNotFoundError(FileNotFoundError):
    """The headers or libdoublecrypt.so are not where this installation keeps them."""


@dataclass(frozen=True)
class Layout:
    """The C side of one installation."""

    include_dir: Path
    lib_dir: Path
    pkgconfig_dir: Path
    modulemap: Path
    abi: int
    #: True for an installed wheel, False for a source checkout (editable install)
    installed: bool

    @property
    def soname(self) -> str:
        return f"lib{LIBRARY}.so.{self.abi}"

    @property
    def library(self) -> Path:
        """libdoublecrypt.so.<ABI>; LibraryNotFoundError if it is missing."""
        path = self.lib_dir / self.soname
        if not path.is_file():
            if self.installed:
                raise LibraryNotFoundError(f"{path} is missing: this installation is incomplete")
            root = self.lib_dir.parent
            raise LibraryNotFoundError(
                f"{path} is missing: doublecrypt runs from the source checkout {root}, "
                f"whose C library `make lib` builds (run it in {root})"
            )
        return path


def _abi(include_dir: Path) -> int:
    text = (include_dir / "doublecrypt" / "version.h").read_text()
    match = re.search(r"^#define\s+DC_ABI_VERSION\s+(\d+)\s*$", text, re.M)
    if match is None:
        raise LibraryNotFoundError(f"no DC_ABI_VERSION in {include_dir}/doublecrypt/version.h")
    return int(match.group(1))


def layout() -> Layout:
    """The installed wheel's files, else the source checkout's include/ and build/."""
    wheel_include = PACKAGE_DIR / "include"
    if (wheel_include / "doublecrypt.h").is_file():
        lib_dir = PACKAGE_DIR / "lib"
        return Layout(
            include_dir=wheel_include,
            lib_dir=lib_dir,
            pkgconfig_dir=lib_dir / "pkgconfig",
            modulemap=wheel_include / "module.modulemap",
            abi=_abi(wheel_include),
            installed=True,
        )
    root = PACKAGE_DIR.parent.parent  # pycore/doublecrypt -> the repository
    repo_include = root / "include"
    if (repo_include / "doublecrypt.h").is_file() and (root / "csrc" / "SOURCES").is_file():
        return Layout(
            include_dir=repo_include,
            lib_dir=root / "build",
            pkgconfig_dir=root / "build" / "pkgconfig",
            modulemap=repo_include / "module.modulemap",
            abi=_abi(repo_include),
            installed=False,
        )
    raise LibraryNotFoundError(
        f"no C headers in {PACKAGE_DIR}: this doublecrypt was installed without its C library"
    )


def cflags(where: Layout | None = None) -> list[str]:
    """Compile flags: the include directory."""
    return [f"-I{(where or layout()).include_dir}"]


def libs(where: Layout | None = None) -> list[str]:
    """Link flags, with an RPATH so the program finds the library at run time."""
    where = where or layout()
    lib_dir = where.library.parent
    return [f"-L{lib_dir}", f"-l{LIBRARY}", f"-Wl,-rpath,{lib_dir}"]


def _pkgconfig_dir(where: Layout) -> Path:
    pc = where.pkgconfig_dir / f"{LIBRARY}.pc"
    if not pc.is_file():
        _ = where.library  # when the library is missing too, say how to build it
        raise LibraryNotFoundError(f"{pc} is missing")
    return where.pkgconfig_dir


_QUERIES: dict[str, tuple[str, Callable[[Layout], str]]] = {
    "cflags": ("compile flags (-I)", lambda w: " ".join(cflags(w))),
    "libs": ("link flags (-L, -l, -Wl,-rpath)", lambda w: " ".join(libs(w))),
    "includedir": ("directory of doublecrypt.h", lambda w: str(w.include_dir)),
    "libdir": ("directory of libdoublecrypt.so", lambda w: str(w.library.parent)),
    "library": ("path of libdoublecrypt.so.<ABI> (JNI System.load)", lambda w: str(w.library)),
    "pkgconfigdir": (
        "directory of doublecrypt.pc (PKG_CONFIG_PATH)",
        lambda w: str(_pkgconfig_dir(w)),
    ),
    "modulemap": ("path of module.modulemap (Swift)", lambda w: str(w.modulemap)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m doublecrypt.config",
        description="Print what a C, Swift or JNI build needs to use the libdoublecrypt "
        "shipped with this package, one line per option, in the order given.",
    )
    for name, (text, _) in _QUERIES.items():
        parser.add_argument(
            f"--{name}", dest="queries", action="append_const", const=name, help=text
        )
    args = parser.parse_args(argv)
    queries: list[str] = args.queries or []
    if not queries:
        parser.print_usage(sys.stderr)
        return 2
    try:
        where = layout()
        lines = [_QUERIES[q][1](where) for q in queries]
    except LibraryNotFoundError as exc:
        print(f"doublecrypt.config: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
