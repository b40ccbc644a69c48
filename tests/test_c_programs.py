"""The C programs in tests/c/programs, built the way a consumer builds them.

``fs_demo.c`` uses the native ``dc_fs_*`` API; ``core_demo.c`` is written
only against ``doublecrypt_core.h`` (doublecrypt-core's C API). Each one is
built with ``cc -std=c99 -Wall -Wextra -Werror $(pkg-config --cflags --libs
doublecrypt)`` and run against build/libdoublecrypt.so, then run again under
valgrind, and finally compiled together with every engine source under
AddressSanitizer and UndefinedBehaviorSanitizer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PROGRAMS_DIR = ROOT / "tests" / "c" / "programs"
sys.path.insert(0, str(ROOT / "csrc"))
import header_decls  # noqa: E402

# program -> the last line it prints on success
PROGRAMS = {"fs_demo": "fs_demo: ok", "core_demo": "core_demo: ok"}

SAN_FLAGS = [
    "-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all", "-DDC_STATIC",
]  # fmt: skip
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def pkg_config(*args: str, package: str = "doublecrypt") -> list[str]:
    env = {**os.environ, "PKG_CONFIG_PATH": str(BUILD / "pkgconfig")}
    return run("pkg-config", *args, package, env=env).stdout.split()


def check_output(name: str, stdout: str) -> None:
    lines = stdout.strip().splitlines()
    assert lines, f"{name} printed nothing"
    assert lines[-1] == PROGRAMS[name]
    if name == "core_demo":
        # fs_list_root's JSON of the remounted volume, printed verbatim.
        listing = json.loads(next(ln for ln in lines if ln.startswith("[")))
        assert [(e["name"], e["kind"], e["size"]) for e in listing] == [
            ("docs", "Directory", 0),
            ("hello.txt", "File", 19),
            ("holes.bin", "File", 100004),
        ]
        assert all(isinstance(e["inode_id"], int) and e["inode_id"] > 1 for e in listing)
        assert list(listing[0]) == ["name", "kind", "size", "inode_id"]


@pytest.fixture(scope="module")
def shared_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each program linked against build/libdoublecrypt.so via pkg-config."""
    run("make", "-s", "lib")
    flags = pkg_config("--cflags", "--libs")
    out = tmp_path_factory.mktemp("shared")
    exes = {}
    for name in PROGRAMS:
        exe = out / name
        run("cc", "-std=c99", *WARNINGS, str(PROGRAMS_DIR / f"{name}.c"), "-o", str(exe), *flags)
        exes[name] = exe
    return exes


def shared_env() -> dict[str, str]:
    return {**os.environ, "LD_LIBRARY_PATH": str(BUILD)}


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_against_shared_library(
    name: str, shared_builds: dict[str, Path], tmp_path: Path
) -> None:
    proc = run(str(shared_builds[name]), str(tmp_path), env=shared_env())
    check_output(name, proc.stdout)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
@pytest.mark.parametrize("name", PROGRAMS)
def test_program_under_valgrind(name: str, shared_builds: dict[str, Path], tmp_path: Path) -> None:
    proc = run(
        "valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
        "--errors-for-leak-kinds=definite", str(shared_builds[name]), str(tmp_path),
        env=shared_env(),
    )  # fmt: skip
    check_output(name, proc.stdout)


@pytest.fixture(scope="module")
def sanitized_objects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every source of csrc/SOURCES compiled with ASan + UBSan and DC_STATIC."""
    out = tmp_path_factory.mktemp("asan")
    sodium = pkg_config("--cflags", package="libsodium")
    sources = header_decls.c_sources()
    objects = [out / (src.replace("/", "_") + ".o") for src in sources]

    def compile_one(pair: tuple[str, Path]) -> None:
        src, obj = pair
        run(
            "cc", "-std=c11", *WARNINGS, *SAN_FLAGS, "-Iinclude", "-Icsrc", *sodium,
            "-c", src, "-o", str(obj),
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(compile_one, zip(sources, objects, strict=True)))
    return objects


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_under_sanitizers(name: str, sanitized_objects: list[Path], tmp_path: Path) -> None:
    exe = tmp_path / name
    run(
        "cc", "-std=c99", *WARNINGS, *SAN_FLAGS, "-Iinclude", str(PROGRAMS_DIR / f"{name}.c"),
        *map(str, sanitized_objects), "-o", str(exe),
        *pkg_config("--libs", package="libsodium"), "-pthread",
    )  # fmt: skip
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    proc = run(str(exe), str(scratch), env=env)
    check_output(name, proc.stdout)
