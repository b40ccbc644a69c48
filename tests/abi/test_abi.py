"""ABI checks: the header is the one source of truth, and the shared library,
its export list, the Python bindings and every version number agree with it.
The doublecrypt-core compatibility header (include/doublecrypt_core.h) is
checked against the seed's prototypes, constants and codes."""

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


# doublecrypt-core's C API (include/doublecrypt_core.h): its functions with the
# seed's exact prototypes, as function-pointer types a mismatch fails to
# initialise (an error in C++, and in C under -Werror).
SEED_FUNCTIONS = {
    "fs_create": "struct FsHandle *(*{})(uint64_t, const uint8_t *, uintptr_t)",
    "fs_create_disk": (
        "struct FsHandle *(*{})(const char *, uint64_t, uint32_t, int32_t, const uint8_t *,"
        " uintptr_t)"
    ),
    "fs_create_device": (
        "struct FsHandle *(*{})(const char *, uint64_t, uint32_t, int32_t, const uint8_t *,"
        " uintptr_t)"
    ),
    "fs_create_network": (
        "struct FsHandle *(*{})(const char *, const char *, const char *, uint32_t,"
        " const uint8_t *, uintptr_t, const uint8_t *, uintptr_t)"
    ),
    "fs_destroy": "void (*{})(struct FsHandle *)",
    "fs_init_filesystem": "int32_t (*{})(struct FsHandle *)",
    "fs_open": "int32_t (*{})(struct FsHandle *)",
    "fs_create_file": "int32_t (*{})(struct FsHandle *, const char *)",
    "fs_write_file": (
        "int32_t (*{})(struct FsHandle *, const char *, uint64_t, const uint8_t *, uintptr_t)"
    ),
    "fs_read_file": (
        "int32_t (*{})(struct FsHandle *, const char *, uint64_t, uintptr_t, uint8_t *,"
        " uintptr_t *)"
    ),
    "fs_list_root": "char *(*{})(struct FsHandle *, int32_t *)",
    "fs_list_dir": "char *(*{})(struct FsHandle *, const char *, int32_t *)",
    "fs_create_dir": "int32_t (*{})(struct FsHandle *, const char *)",
    "fs_remove_file": "int32_t (*{})(struct FsHandle *, const char *)",
    "fs_rename": "int32_t (*{})(struct FsHandle *, const char *, const char *)",
    "fs_flush": "int32_t (*{})(struct FsHandle *)",
    "fs_sync": "int32_t (*{})(struct FsHandle *)",
    "fs_stat": (
        "int32_t (*{})(struct FsHandle *, const char *, uint64_t *, int32_t *, uint64_t *)"
    ),
    "fs_scrub_free_blocks": "int32_t (*{})(struct FsHandle *)",
    "fs_blake3": "int32_t (*{})(const uint8_t *, uintptr_t, uint8_t *)",
    "fs_free_string": "void (*{})(char *)",
}

SEED_CONSTANTS = {
    "DEFAULT_BLOCK_SIZE": 65536,
    "MAX_NAME_LEN": 255,
    "BLOCK_STORAGE_HEADER": 0,
    "BLOCK_ROOT_POINTER_A": 1,
    "BLOCK_ROOT_POINTER_B": 2,
    "FIRST_DATA_BLOCK": 3,
}

# FsErrorCode enumerators and the native codes with the same numbers.
SEED_CODES = {
    "Ok": ("DC_OK", 0),
    "NotFound": ("DC_ERR_NOT_FOUND", -1),
    "AlreadyExists": ("DC_ERR_ALREADY_EXISTS", -2),
    "NoSpace": ("DC_ERR_NO_SPACE", -3),
    "InvalidArgument": ("DC_ERR_INVALID_ARGUMENT", -4),
    "NotInitialized": ("DC_ERR_NOT_INITIALIZED", -5),
    "IoError": ("DC_ERR_IO", -6),
    "CryptoError": ("DC_ERR_AUTH", -7),
    "InternalError": ("DC_ERR_INTERNAL", -8),
    "BufferTooSmall": ("DC_ERR_BUFFER_TOO_SMALL", -9),
    "NotAFile": ("DC_ERR_NOT_A_FILE", -10),
    "NotADirectory": ("DC_ERR_NOT_A_DIRECTORY", -11),
    "DirectoryNotEmpty": ("DC_ERR_DIRECTORY_NOT_EMPTY", -12),
    "NameTooLong": ("DC_ERR_NAME_TOO_LONG", -13),
}


def compat_header_test_source(native_first: bool) -> str:
    """A translation unit that includes doublecrypt_core.h together with
    doublecrypt.h (in either order) and checks the seed's API against it."""
    includes = ['#include "doublecrypt_core.h"', '#include "doublecrypt.h"']
    if native_first:
        includes.reverse()
    checks = [f"typedef char check_{n}[({n} == {v}) ? 1 : -1];" for n, v in SEED_CONSTANTS.items()]
    checks += [
        f"typedef char check_{n}[({n} == {v} && {n} == {dc}) ? 1 : -1];"
        for n, (dc, v) in SEED_CODES.items()
    ]
    pointers = [f"    {proto.format('p_' + n)} = {n};" for n, proto in SEED_FUNCTIONS.items()]
    uses = [f"    (void)p_{n};" for n in SEED_FUNCTIONS]
    return "\n".join(
        ["#include <stdint.h>", *includes, *checks, "int main(void) {", *pointers, *uses,
         "    FsHandle *handle = 0;", "    FsErrorCode code = NotInitialized;",
         "    return handle == 0 && code == -5 && dc_abi_version() >= 0 ? 0 : 1;", "}", ""]
    )  # fmt: skip


@pytest.mark.parametrize("native_first", [False, True], ids=["compat-first", "native-first"])
@pytest.mark.parametrize("lang", ["c99", "c++11"])
def test_compat_header_compiles(lang: str, native_first: bool, tmp_path: Path) -> None:
    if lang.startswith("c++") and shutil.which("c++") is None:
        pytest.skip("no C++ compiler")
    src = tmp_path / "compat_headertest.c"
    src.write_text(compat_header_test_source(native_first))
    compiler = ["c++", "-x", "c++"] if lang.startswith("c++") else ["cc"]
    run(
        *compiler, f"-std={lang}", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Iinclude",
        "-fsyntax-only", str(src),
    )  # fmt: skip


def test_compat_header_is_not_bound_in_python() -> None:
    assert header_decls.COMPAT_HEADER not in header_decls.header_paths()
    assert not any(hasattr(_native.lib, n) for n in header_decls.compat_functions())


def exported_symbols(lib: Path) -> set[str]:
    out = run("nm", "-D", "--defined-only", str(lib))
    names = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return {n for n in names if not n.startswith("DOUBLECRYPT_")}


def test_header_exports_and_map_agree(shared_lib: Path) -> None:
    native = set(header_decls.exported_functions())
    compat = set(header_decls.compat_functions())
    in_map = set(re.findall(r"^\s+(\w+);$", (ROOT / "csrc/libdoublecrypt.map").read_text(), re.M))
    assert native, "no DC_API declarations found"
    assert all(name.startswith("dc_") for name in native)
    assert compat == set(SEED_FUNCTIONS), "doublecrypt_core.h must declare the seed's functions"
    assert not native & compat
    assert exported_symbols(shared_lib) == native | compat
    assert in_map == native | compat


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
