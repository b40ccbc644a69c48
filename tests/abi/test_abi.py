"""ABI checks: the header is the one source of truth, and the shared library,
its export list, the Python bindings and every version number agree with it."""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import doublecrypt
from doublecrypt import _native

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
sys.path.insert(0, str(ROOT / "csrc"))
import header_decls  # noqa: E402


def run(*args: str, **kwargs: object) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return str(proc.stdout)


@pytest.fixture(scope="module")
def shared_lib() -> Path:
    """libdoublecrypt.so from the build tree (built by `make lib` if needed)."""
    run("make", "-s", "lib")
    _, _, _, abi = header_decls.version()
    return BUILD / f"libdoublecrypt.so.{abi}"


def test_header_compiles_as_strict_c99(tmp_path: Path) -> None:
    run(
        "cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Iinclude",
        "-fsyntax-only", "tests/abi/headertest.c",
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler")
def test_header_compiles_as_cpp() -> None:
    run(
        "c++", "-x", "c++", "-std=c++11", "-pedantic", "-Wall", "-Wextra", "-Werror",
        "-Iinclude", "-fsyntax-only", "tests/abi/headertest.c",
    )  # fmt: skip


def exported_symbols(lib: Path) -> set[str]:
    out = run("nm", "-D", "--defined-only", str(lib))
    names = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return {n for n in names if not n.startswith("DOUBLECRYPT_")}


def test_header_exports_and_map_agree(shared_lib: Path) -> None:
    declared = set(header_decls.exported_functions())
    in_map = set(
        re.findall(r"^\s+(dc_\w+);$", (ROOT / "csrc/libdoublecrypt.map").read_text(), re.M)
    )
    assert declared, "no DC_API declarations found"
    assert exported_symbols(shared_lib) == declared
    assert in_map == declared


def test_export_map_is_current() -> None:
    committed = (ROOT / "csrc/libdoublecrypt.map").read_text()
    assert committed == header_decls.export_map(), (
        "stale export map: python3 csrc/header_decls.py map > csrc/libdoublecrypt.map"
    )


def test_every_public_function_is_bound_in_python() -> None:
    missing = [n for n in header_decls.exported_functions() if not hasattr(_native.lib, n)]
    assert missing == []


def test_extension_exports_no_engine_symbols() -> None:
    ext = Path(_native.__file__)
    symbols = exported_symbols(ext)
    assert symbols == {"PyInit__native"}


def test_versions_agree(shared_lib: Path) -> None:
    major, minor, patch, abi = header_decls.version()
    text = f"{major}.{minor}.{patch}"
    assert doublecrypt.__version__ == text
    assert importlib.metadata.version("doublecrypt") == text
    lib = ctypes.CDLL(str(shared_lib))
    lib.dc_version_string.restype = ctypes.c_char_p
    assert lib.dc_version_string().decode() == text
    assert lib.dc_version_number() == major * 10000 + minor * 100 + patch
    assert lib.dc_abi_version() == abi
    soname = run("readelf", "-d", str(shared_lib))
    assert f"[libdoublecrypt.so.{abi}]" in soname
    pc = (BUILD / "pkgconfig/doublecrypt.pc").read_text()
    assert f"Version: {text}" in pc


def test_pkg_config_consumer(shared_lib: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PKG_CONFIG_PATH": str(BUILD / "pkgconfig")}
    flags = run("pkg-config", "--cflags", "--libs", "doublecrypt", env=env).split()
    exe = tmp_path / "consumer"
    run("cc", "-std=c99", "-Wall", "-Werror", "tests/abi/consumer.c", "-o", str(exe), *flags)
    out = run(str(exe), env={**env, "LD_LIBRARY_PATH": str(BUILD)})
    assert out.strip() == f"{doublecrypt.__version__} sealed through libdoublecrypt.so"


def test_swift_module_map_names_the_umbrella_header() -> None:
    modulemap = (ROOT / "include/module.modulemap").read_text()
    assert 'header "doublecrypt.h"' in modulemap
    assert 'link "doublecrypt"' in modulemap
