"""The wheel as users get it: `make wheel` builds it (``python -m build``, then
``auditwheel repair``, which bundles libsodium); here it is installed into a
fresh virtualenv and used from Python and from C (tests/abi/consumer.c), and
every ELF file in it must load the bundled libsodium, not the system's.

Under `make test` the wheel is already built (``test`` depends on ``wheel``),
so ``make wheel`` here only checks that it is current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from doublecrypt import config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "csrc"))
import header_decls  # noqa: E402

ABI = header_decls.version()[3]
SONAME = f"libdoublecrypt.so.{ABI}"
# What could make the fresh virtualenv see this checkout or the system's copy.
_LEAKY_ENV = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH"}


def run(*args: str | Path, cwd: Path = ROOT, **env: str) -> str:
    full_env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV} | env
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=full_env
    )
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The repaired wheel in dist/, built by `make wheel` unless it is current."""
    stamp = ROOT / "build" / "wheel.path"
    run("make", "-s", "wheel")
    if not (ROOT / stamp.read_text().strip()).is_file():  # dist/ was emptied by hand
        stamp.unlink()
        run("make", "-s", "wheel")
    return ROOT / stamp.read_text().strip()


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel installed; dependencies as pip finds
    them (binary only: the wheel needs no compiler)."""
    env_dir = tmp_path_factory.mktemp("wheel") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", env_dir)
    run(
        sys.executable, "-m", "pip", "--python", env_dir / "bin" / "python",
        "install", "-q", "--only-binary", ":all:", wheel,
    )  # fmt: skip
    return env_dir


@pytest.fixture(scope="module")
def package(venv: Path) -> Path:
    """The installed doublecrypt package directory."""
    out = run(venv / "bin" / "python", "-c", "import doublecrypt; print(doublecrypt.__file__)")
    path = Path(out.strip()).parent
    assert path.is_relative_to(venv / "lib"), f"imported {path}, not the wheel's copy"
    return path


def dc_config(venv: Path, *options: str) -> list[str]:
    return run(venv / "bin" / "python", "-m", "doublecrypt.config", *options).split()


def ldd_sodium(path: Path) -> Path:
    """Where the dynamic loader finds libsodium for ``path``."""
    out = run("ldd", path)
    found = re.findall(r"^\s*libsodium\S* => (\S+) ", out, re.M)
    assert len(found) == 1, f"ldd {path}:\n{out}"
    return Path(found[0]).resolve()


def test_wheel_contents(wheel: Path, tmp_path: Path) -> None:
    assert re.fullmatch(r"doublecrypt-[\d.]+-cp310-abi3-manylinux_\d+_\d+_x86_64\.whl", wheel.name)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path)
    headers = {
        f"doublecrypt/include/{p.relative_to(ROOT / 'include')}"
        for p in [*(ROOT / "include").glob("**/*.h"), ROOT / "include/module.modulemap"]
    }
    expected = {
        "doublecrypt/_native.abi3.so",
        "doublecrypt/_lowlevel/__init__.py",
        "doublecrypt/config.py",
        "doublecrypt/py.typed",
        f"doublecrypt/lib/{SONAME}",
        "doublecrypt/lib/libdoublecrypt.so",
        "doublecrypt/lib/pkgconfig/doublecrypt.pc",
        *headers,
    }
    assert expected <= names, sorted(expected - names)
    assert {n for n in names if n.startswith("doublecrypt/include/") and n[-1] != "/"} == headers
    bundled = [n for n in names if n.startswith("doublecrypt.libs/")]
    assert any(re.match(r"doublecrypt\.libs/libsodium-[0-9a-f]+\.so", n) for n in bundled)

    # The library is `make lib`'s: soname, exactly the version script's symbols.
    lib = tmp_path / "doublecrypt" / "lib" / SONAME
    assert f"Library soname: [{SONAME}]" in run("readelf", "-d", lib)
    symbols = run("nm", "-D", "--defined-only", lib).split("\n")
    exported = {ln.split()[-1].split("@")[0] for ln in symbols if re.search(r" [TDBR] ", ln)}
    assert exported == set(header_decls.library_exports())


def test_python_from_the_wheel(venv: Path, package: Path, tmp_path: Path) -> None:
    script = """
import doublecrypt
key = bytes(range(32))
with doublecrypt.open_image("v.img", key=key, create=True, size=4 << 20) as fs:
    fs.write_bytes("/hello.txt", b"hello from the wheel")
with doublecrypt.open_image("v.img", key=key, read_only=True) as fs:
    assert fs.read_bytes("/hello.txt") == b"hello from the wheel"
    print(doublecrypt.__version__)
print("\\n".join(ln.split()[-1] for ln in open("/proc/self/maps") if "libsodium" in ln))
"""
    version, *sodium = run(venv / "bin" / "python", "-c", script, cwd=tmp_path).split()
    assert version == header_decls.version_string()
    assert sodium, "libsodium is not mapped"
    assert all(Path(p).parent == package.parent / "doublecrypt.libs" for p in sodium), sodium


def test_native_files_load_bundled_libsodium(package: Path) -> None:
    bundled = package.parent / "doublecrypt.libs"
    for elf in (package / "lib" / SONAME, *package.glob("_native*.so")):
        assert ldd_sodium(elf).parent == bundled, elf


def test_c_consumer_with_config_flags(venv: Path, package: Path, tmp_path: Path) -> None:
    flags = dc_config(venv, "--cflags", "--libs")
    assert flags == [
        f"-I{package / 'include'}",
        f"-L{package / 'lib'}",
        "-ldoublecrypt",
        f"-Wl,-rpath,{package / 'lib'}",
    ]
    exe = tmp_path / "consumer"
    run("cc", "-std=c99", "-Wall", "-Werror", "tests/abi/consumer.c", "-o", exe, *flags)
    # no LD_LIBRARY_PATH: the rpath from --libs finds the library, its rpath libsodium
    assert "sealed through libdoublecrypt.so" in run(exe)
    out = run("ldd", exe)
    assert f"{SONAME} => {package / 'lib' / SONAME}" in out, out
    assert ldd_sodium(exe).parent == package.parent / "doublecrypt.libs"


def test_c_consumer_with_pkg_config(venv: Path, package: Path, tmp_path: Path) -> None:
    (pcdir,) = dc_config(venv, "--pkgconfigdir")
    (libdir,) = dc_config(venv, "--libdir")
    flags = run("pkg-config", "--cflags", "--libs", "doublecrypt", PKG_CONFIG_PATH=pcdir).split()
    include = next(f[2:] for f in flags if f.startswith("-I"))
    assert Path(include).resolve() == package / "include"
    exe = tmp_path / "consumer"
    run("cc", "-std=c99", "-Wall", "-Werror", "tests/abi/consumer.c", "-o", exe, *flags)
    assert "sealed through libdoublecrypt.so" in run(exe, LD_LIBRARY_PATH=libdir)


def test_config_paths(venv: Path, package: Path) -> None:
    out = dc_config(venv, "--includedir", "--libdir", "--library", "--modulemap")
    assert out == [
        str(package / "include"),
        str(package / "lib"),
        str(package / "lib" / SONAME),
        str(package / "include" / "module.modulemap"),
    ]


def test_config_in_the_source_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """This virtualenv's editable install: the repository's include/ and build/."""
    where = config.layout()
    assert not where.installed
    assert where.include_dir == ROOT / "include"
    assert where.lib_dir == ROOT / "build"
    assert where.abi == ABI
    # without `make lib`, the answer says what to do
    missing = config.Layout(
        include_dir=ROOT / "include",
        lib_dir=tmp_path / "build",
        pkgconfig_dir=tmp_path / "build" / "pkgconfig",
        modulemap=ROOT / "include" / "module.modulemap",
        abi=ABI,
        installed=False,
    )
    monkeypatch.setattr(config, "layout", lambda: missing)
    assert config.main(["--cflags"]) == 0
    assert config.main(["--libs"]) == 1
    assert "make lib" in capsys.readouterr().err
