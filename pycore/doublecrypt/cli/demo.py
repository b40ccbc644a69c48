"""``doublecrypt demo``: the whole product in one run.

Creates an image under a random passphrase in a temporary directory, copies
a real directory tree into it (this project's source tree, or --source),
lists it, reads every file back and compares it, shows that the image bytes
look random, runs fsck and prints the throughput."""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .. import FileSystem, KdfParams, open_image
from .errors import EXIT_FAILURE, CliError

SKIP_DIRS = {
    ".git",
    ".venv",
    "build",
    "dist",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".benchmarks",
    "node_modules",
}


def default_source() -> Path:
    """The repository when run from a checkout, else the installed package."""
    package = Path(__file__).resolve().parent.parent
    repo = package.parent.parent
    return repo if (repo / "csrc" / "SOURCES").exists() else package


def source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        files += [Path(dirpath) / f for f in sorted(filenames)]
    return [f for f in files if f.is_file() and not f.is_symlink()]


def byte_entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte (8.0 for uniformly random bytes)."""
    counts = Counter(data)
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def copy_in(fs: FileSystem, root: Path, files: list[Path]) -> tuple[int, dict[str, str]]:
    """Copy files into the volume under /src, in one transaction; returns
    (bytes copied, {inside path: sha256})."""
    digests: dict[str, str] = {}
    total = 0
    with fs.transaction():
        for path in files:
            inside = "/src/" + path.relative_to(root).as_posix()
            fs.makedirs(os.path.dirname(inside))
            data = path.read_bytes()
            fs.write_bytes(inside, data)
            fs.set_mtime(inside, path.stat().st_mtime_ns)
            digests[inside] = hashlib.sha256(data).hexdigest()
            total += len(data)
    return total, digests


def verify(fs: FileSystem, digests: dict[str, str]) -> list[str]:
    return [p for p, d in digests.items() if hashlib.sha256(fs.read_bytes(p)).hexdigest() != d]


@click.command()
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory tree to copy in (default: this project).",
)
@click.option("--keep", is_flag=True, help="Keep the image and print where it is.")
def demo(source: Path | None, keep: bool) -> None:
    """Create an encrypted image, copy a real tree into it, verify everything."""
    console = Console()
    root = source or default_source()
    files = source_files(root)
    if not files:
        raise CliError(f"no files under {root}", EXIT_FAILURE)
    workdir = Path(tempfile.mkdtemp(prefix="doublecrypt-demo-"))
    image = workdir / "demo.img"
    passphrase = secrets.token_urlsafe(18)
    plain_bytes = sum(f.stat().st_size for f in files)
    size = max(64 << 20, (plain_bytes * 2 + (len(files) + 64) * 65536) // (1 << 20) * (1 << 20))
    try:
        console.rule("[bold]doublecrypt demo")
        console.print(f"source: {root} ({len(files)} files, {plain_bytes / 1e6:.1f} MB)")
        start = time.perf_counter()
        fs = open_image(
            image, passphrase=passphrase, create=True, size=size, kdf=KdfParams.interactive()
        )
        created = time.perf_counter() - start
        console.print(
            f"created {image.name}: {size >> 20} MiB, random-filled, "
            f"passphrase in key slot 0 ({created:.2f} s)"
        )
        start = time.perf_counter()
        written, digests = copy_in(fs, root, files)
        fs.sync()
        write_s = time.perf_counter() - start
        fs.close()

        fs = open_image(image, passphrase=passphrase, read_only=True)  # unlock again
        table = Table(title="/src (top level)")
        for column in ("name", "type", "size"):
            table.add_column(column)
        for entry in fs.scandir("/src"):
            table.add_row(
                entry.name,
                "dir" if entry.is_dir() else "file",
                "" if entry.is_dir() else str(entry.stat.size),
            )
        console.print(table)
        start = time.perf_counter()
        bad = verify(fs, digests)
        read_s = time.perf_counter() - start
        report = fs.fsck()
        stats = fs.statvfs()
        fs.close()

        raw = image.read_bytes()
        sample = b"".join(f.read_bytes() for f in files[:200])
        needle = next((f.read_bytes()[:48] for f in files if f.stat().st_size >= 48), b"")
        leaked = bool(needle) and needle in raw
        results = Table(title="results")
        results.add_column("check")
        results.add_column("value")
        results.add_row(
            "files read back and compared (SHA-256)",
            f"{len(digests) - len(bad)} / {len(digests)} identical",
        )
        results.add_row(
            "fsck",
            f"clean: {report.files} files, {report.directories} directories, "
            f"{report.metadata_blocks + report.data_blocks} blocks verified",
        )
        results.add_row("byte entropy, image file", f"{byte_entropy(raw):.4f} bits/byte")
        results.add_row("byte entropy, source files", f"{byte_entropy(sample):.4f} bits/byte")
        results.add_row("plaintext found in the image", "yes (!)" if leaked else "no")
        results.add_row(
            "write + sync",
            f"{written / write_s / 1e6:.1f} MB/s, {len(files) / write_s:.0f} files/s",
        )
        results.add_row("read + verify", f"{written / read_s / 1e6:.1f} MB/s")
        results.add_row("commit generation", str(stats.generation))
        console.print(results)
        if bad or leaked:
            raise CliError(f"demo failed: {len(bad)} mismatched files, leak={leaked}", EXIT_FAILURE)
        console.print(
            "[bold green]demo passed[/]: everything read back intact; "
            "the image is indistinguishable from random bytes"
        )
        if keep:
            console.print(f"image kept at {image} (passphrase: {passphrase})")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
