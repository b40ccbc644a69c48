"""Benchmark against peers: ``make bench`` (or ``python bench/peers_report.py``).

One run, one directory (``--dir``, default a temporary directory under
build/), every figure measured in that run on this machine:

- baselines: raw libsodium XChaCha20-Poly1305 (bench/c/bench_aead.c, 64 KiB
  messages, 1 and 2 threads; seal for the write column, open for the read
  column) and plain files in the directory itself;
- doublecrypt through the Python API (``doublecrypt.open_image``), through
  the C ABI (bench/c/bench_fs.c linked against build/libdoublecrypt.so) and
  through its FUSE mount (``doublecrypt mount IMAGE MNT --foreground``);
- its peers gocryptfs and CryFS (XChaCha20-Poly1305) through their FUSE
  mounts, with passphrases from a file, non-interactively.

Workloads (sizes from the flags):

1. sequential write of a 256 MiB file in 1 MiB writes, then fsync (MB/s);
2. sequential read of it after an unmount, a dropped page cache (when root)
   and a fresh mount (MB/s);
3. 2,000 files of 4 KiB, each created and written, until durable (files/s);
4. ``tar`` extract of a ustar tarball of this repository's csrc/ and pycore/,
   three times into fresh directories, until durable (files/s);
5. 2,000 random 4 KiB reads at 4 KiB-aligned offsets of the 256 MiB file,
   after another unmount, cache drop and mount (reads/s).

"Until durable" ends with ``fs.sync()``/``dc_fs_sync`` for the APIs, with
``syncfs`` for the plain directory, and for a FUSE mount with its unmount
(which makes each of them write back what it holds) followed by ``syncfs`` of
the directory holding its ciphertext: a mount cannot cheat by keeping data
in memory. Image creation (doublecrypt fills images with random bytes),
``gocryptfs -init``, key derivation and mounting are not timed.

Each figure is also given as a ratio to the best peer (the faster of gocryptfs
and CryFS) in its column. The Markdown table goes to
bench/results/peers.md and a chart to bench/results/peers.png. Every FUSE
mount is unmounted in a ``finally`` block, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, cast

import doublecrypt
from codec_report import build_aead, run_aead
from doublecrypt.errors import DoubleCryptError

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "peers.md"
CHART = ROOT / "bench" / "results" / "peers.png"
BENCH_FS_SOURCE = ROOT / "bench" / "c" / "bench_fs.c"
BENCH_FS = ROOT / "build" / "bench" / "bench_fs"
LIBRARY = ROOT / "build" / "libdoublecrypt.so"
KEY = bytes(range(32))  # the same master key bench_fs.c uses
PASSPHRASE = "peers-report benchmark passphrase"
SMALL_FILE = 4096
RANDOM_READ = 4096
BLOCK = 65536  # doublecrypt's default block size

MOUNT_TIMEOUT = 180.0  # seconds for a FUSE mount to appear (CryFS derives keys slowly)
UNMOUNT_TIMEOUT = 120.0  # seconds for a FUSE daemon to write back and exit
COMMAND_TIMEOUT = 600.0  # any other child process

# (key, column title, unit)
WORKLOADS: list[tuple[str, str, str]] = [
    ("seq_write", "sequential write + fsync", "MB/s"),
    ("seq_read", "sequential read (remounted)", "MB/s"),
    ("small_files", "4 KiB files", "files/s"),
    ("tar", "tar extract", "files/s"),
    ("random_reads", "random 4 KiB reads", "reads/s"),
]
PEERS = ("gocryptfs", "CryFS")
PYTHON_API = "doublecrypt, Python API"
C_ABI = "doublecrypt, C ABI"
FUSE = "doublecrypt FUSE (Python)"
FUSE_C = "doublecrypt FUSE (C, default)"
FUSE_PROGRAM = ROOT / "build" / "doublecrypt-fuse"


@dataclass
class Config:
    size: int
    chunk: int
    files: int
    reads: int
    tar_repeat: int
    tarball: Path
    tar_files: int  # regular files in one copy of the tarball
    work: Path  # the one directory everything runs in
    seed: int = 1


@dataclass
class System:
    name: str
    kind: str  # "baseline", "doublecrypt" or "peer"
    results: dict[str, float] = field(default_factory=dict)
    note: str = ""  # why there are no (or only some) figures


# ---- helpers ------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)


def syncfs(path: Path) -> None:
    """Write back everything of the filesystem holding ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if int(_LIBC.syncfs(fd)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def drop_caches() -> bool:
    """Write back and drop the page cache; False when not allowed (not root)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point, from /proc/self/mountinfo (a stat of a
    FUSE mount point could block on a hung daemon)."""
    target = os.fsencode(path)
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4].decode("unicode_escape").encode("latin-1") == target:
                return True
    return False


def tail(path: Path, lines: int = 4) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])


def make_tarball(directory: Path) -> tuple[Path, int]:
    """A ustar tarball of csrc/ and pycore/ (no caches or built objects);
    returns it and its number of regular files."""
    path = directory / "source-tree.tar"
    count = 0

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        nonlocal count
        parts = Path(info.name).parts
        if any(p == "__pycache__" or p.endswith(".egg-info") for p in parts):
            return None
        if info.name.endswith((".so", ".pyc", ".o")) or not (info.isfile() or info.isdir()):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        count += info.isfile()
        return info

    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for top in ("csrc", "pycore"):
            tar.add(ROOT / top, arcname=top, filter=keep)
    return path, count


def image_bytes(cfg: Config) -> int:
    """An image size with room for every workload (as bench_fs.c computes)."""
    blocks = cfg.size // BLOCK + cfg.size // BLOCK // 8
    blocks += 2 * (cfg.files + (cfg.tar_files + 200) * cfg.tar_repeat) + (64 << 20) // BLOCK
    return blocks * BLOCK


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return max(time.perf_counter() - start, 1e-9)


def random_offsets(cfg: Config) -> list[int]:
    rng = random.Random(cfg.seed)
    slots = cfg.size // RANDOM_READ
    return [rng.randrange(slots) * RANDOM_READ for _ in range(cfg.reads)]


# ---- directories: plain disk and FUSE mounts ------------------------------------


class Session:
    """A directory the workloads run in until ``close`` makes it durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            syncfs(self.path)


class FuseMount(Session):
    """A FUSE daemon running in the foreground on ``path``."""

    live: ClassVar[list[FuseMount]] = []  # every mount not yet closed, for the last-resort cleanup

    def __init__(
        self,
        cmd: list[str],
        path: Path,
        backing: Path,
        log: Path,
        *,
        env: dict[str, str] | None = None,
        stdin: Path | None = None,
    ) -> None:
        super().__init__(path)
        self.killed = False
        self.limit = 0.0
        self.backing = backing
        self.log = log
        path.mkdir(parents=True, exist_ok=True)
        if mounted(path):
            raise RuntimeError(f"{path} is already a mount point")
        with open(log, "ab") as out, open(stdin or os.devnull, "rb") as inp:
            self.proc = subprocess.Popen(
                cmd,
                stdin=inp,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        FuseMount.live.append(self)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        try:
            while not mounted(path):
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{shlex.join(cmd[:3])} exited with {self.proc.returncode}: {tail(log)}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no mount on {path} after {MOUNT_TIMEOUT:.0f} s")
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Kill the daemon if the block takes longer than ``seconds``: the
        kernel then fails every pending call (ENOTCONN) instead of hanging."""
        self.limit = seconds
        timer = threading.Timer(seconds, self._kill)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _kill(self) -> None:
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def close(self) -> None:
        """Unmount (the daemon writes back and exits), then syncfs the
        ciphertext's directory. Idempotent; bounded."""
        if self.closed:
            return
        self.closed = True
        try:
            for attempt in range(20):
                if not mounted(self.path):
                    break
                done = subprocess.run(
                    ["fusermount3", "-u", str(self.path)],
                    capture_output=True,
                    timeout=UNMOUNT_TIMEOUT,
                )
                if done.returncode == 0 or not mounted(self.path):
                    break
                if attempt == 19 or self.proc.poll() is not None:
                    subprocess.run(
                        ["fusermount3", "-u", "-z", str(self.path)],
                        capture_output=True,
                        timeout=UNMOUNT_TIMEOUT,
                    )
                    break
                time.sleep(0.25)  # busy: a file still open somewhere
            try:
                self.proc.wait(timeout=UNMOUNT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                raise RuntimeError(
                    f"daemon on {self.path} did not exit after unmount: {tail(self.log)}"
                ) from None
        finally:
            if self in FuseMount.live:
                FuseMount.live.remove(self)
        if self.killed:
            raise RuntimeError(f"killed after {self.limit:g} s (--timeout): {tail(self.log)}")
        if self.proc.returncode not in (0, None):
            raise RuntimeError(
                f"daemon on {self.path} exited with {self.proc.returncode}: {tail(self.log)}"
            )
        syncfs(self.backing)


class DirectorySystem:
    """Something the workloads reach through a directory."""

    name = "plain files"
    kind = "baseline"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = cfg.work / self.slug()

    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name.lower())

    def available(self) -> str | None:
        """None when usable, else why not."""
        return None

    def setup(self) -> None:
        (self.root / "files").mkdir(parents=True)

    def open(self) -> Session:
        return Session(self.root / "files")

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Gocryptfs(DirectorySystem):
    name = "gocryptfs"
    kind = "peer"

    def available(self) -> str | None:
        if shutil.which("gocryptfs") is None:
            return "gocryptfs is not installed (make bench-deps)"
        return fuse_available()

    def setup(self) -> None:
        (self.root / "cipher").mkdir(parents=True)
        (self.root / "passphrase").write_text(PASSPHRASE + "\n")
        subprocess.run(
            ["gocryptfs", "-init", "-q", "-passfile", "passphrase", "cipher"],
            cwd=self.root,
            check=True,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
        )

    def open(self) -> Session:
        cmd = ["gocryptfs", "-f", "-q", "-passfile", str(self.root / "passphrase")]
        cmd += [str(self.root / "cipher"), str(self.root / "mnt")]
        return FuseMount(cmd, self.root / "mnt", self.root / "cipher", self.root / "log")


class Cryfs(DirectorySystem):
    name = "CryFS"
    kind = "peer"

    def available(self) -> str | None:
        if shutil.which("cryfs") is None:
            return "cryfs is not installed (make bench-deps)"
        return fuse_available()

    def setup(self) -> None:
        (self.root / "cipher").mkdir(parents=True)
        (self.root / "state").mkdir()
        (self.root / "passphrase").write_text(PASSPHRASE + "\n")

    def open(self) -> Session:
        # The first mount creates the filesystem; the passphrase comes on stdin.
        cmd = ["cryfs", "-f", "--cipher", "xchacha20-poly1305"]
        cmd += [str(self.root / "cipher"), str(self.root / "mnt")]
        env = {
            "CRYFS_FRONTEND": "noninteractive",
            "CRYFS_NO_UPDATE_CHECK": "true",
            "CRYFS_LOCAL_STATE_DIR": str(self.root / "state"),
        }
        return FuseMount(
            cmd,
            self.root / "mnt",
            self.root / "cipher",
            self.root / "log",
            env=env,
            stdin=self.root / "passphrase",
        )


class DoublecryptFuse(DirectorySystem):
    name = FUSE
    kind = "doublecrypt"
    command: ClassVar[list[str]] = [sys.executable, "-m", "doublecrypt", "mount"]
    extra: ClassVar[list[str]] = ["--engine", "python"]  # more options of `doublecrypt mount`

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.key_option: str | None = None

    def available(self) -> str | None:
        try:
            done = subprocess.run(
                [*self.command, "--help"], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"`doublecrypt mount --help` failed: {e}"
        if done.returncode != 0:
            return "`doublecrypt mount` does not exist in this checkout yet"
        for option in ("--key-file", "--passphrase-file"):
            if option in done.stdout:
                self.key_option = option
                break
        else:
            return "`doublecrypt mount` takes neither --key-file nor --passphrase-file"
        if "--foreground" not in done.stdout:
            return "`doublecrypt mount` has no --foreground option"
        return fuse_available()

    def setup(self) -> None:
        self.root.mkdir(parents=True)
        image = self.root / "volume.img"
        if self.key_option == "--key-file":
            (self.root / "key").write_bytes(KEY)
            fs = doublecrypt.open_image(image, key=KEY, create=True, size=image_bytes(self.cfg))
        else:
            (self.root / "key").write_text(PASSPHRASE + "\n")
            fs = doublecrypt.open_image(
                image, passphrase=PASSPHRASE, create=True, size=image_bytes(self.cfg)
            )
        fs.close()

    def open(self) -> Session:
        assert self.key_option is not None
        cmd = [*self.command, str(self.root / "volume.img"), str(self.root / "mnt")]
        cmd += ["--foreground", self.key_option, str(self.root / "key"), *self.extra]
        return FuseMount(cmd, self.root / "mnt", self.root, self.root / "log")


class DoublecryptFuseC(DoublecryptFuse):
    """The same mount served by the C program (``--engine c``, ``make fuse``)."""

    name = FUSE_C
    extra: ClassVar[list[str]] = ["--engine", "c"]

    def available(self) -> str | None:
        reason = super().available()
        if reason is not None:
            return reason
        try:
            done = subprocess.run(
                [*self.command, "--help"], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"`doublecrypt mount --help` failed: {e}"
        if "--engine" not in done.stdout:
            return "`doublecrypt mount` has no --engine option"
        if not (os.environ.get("DOUBLECRYPT_FUSE") or os.access(FUSE_PROGRAM, os.X_OK)):
            return f"{FUSE_PROGRAM.relative_to(ROOT)} is not built (make fuse)"
        return None


def fuse_available() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian fuse3)"
    return None


def write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def dir_seq_write(path: Path, cfg: Config) -> float:
    chunk = memoryview(os.urandom(cfg.chunk))

    def run() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for offset in range(0, cfg.size, cfg.chunk):
                write_all(fd, chunk[: min(cfg.chunk, cfg.size - offset)])
            os.fsync(fd)
        finally:
            os.close(fd)

    return cfg.size / timed(run) / 1e6


def dir_seq_read(path: Path, cfg: Config) -> float:
    buf = bytearray(cfg.chunk)
    total = 0

    def run() -> None:
        nonlocal total
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                total += n

    mbps = cfg.size / timed(run) / 1e6
    if total != cfg.size:
        raise RuntimeError(f"read {total} of {cfg.size} bytes back from {path}")
    return mbps


def dir_random_reads(path: Path, cfg: Config) -> float:
    offsets = random_offsets(cfg)
    fd = os.open(path, os.O_RDONLY)
    try:

        def run() -> None:
            for offset in offsets:
                if len(os.pread(fd, RANDOM_READ, offset)) != RANDOM_READ:
                    raise RuntimeError(f"short read at {offset} in {path}")

        return cfg.reads / timed(run)
    finally:
        os.close(fd)


def dir_small_files(directory: Path, cfg: Config) -> None:
    payload = os.urandom(SMALL_FILE)
    directory.mkdir()
    for i in range(cfg.files):
        fd = os.open(directory / f"f{i:06d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, memoryview(payload))
        finally:
            os.close(fd)


def dir_tar(directory: Path, cfg: Config) -> None:
    for r in range(cfg.tar_repeat):
        dest = directory / f"tar{r}"
        dest.mkdir(parents=True)
        done = subprocess.run(
            ["tar", "-xf", str(cfg.tarball), "-C", str(dest), "--no-same-owner"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tar -x failed ({done.returncode}): {done.stderr.strip()[-300:]}")


def run_directory(system: DirectorySystem, cfg: Config, timeout: float) -> dict[str, float]:
    """The five workloads in ``system``'s directory, each in its own session."""
    results: dict[str, float] = {}

    @contextlib.contextmanager
    def session() -> Iterator[Session]:
        s = system.open()
        try:
            with s.deadline(timeout) if isinstance(s, FuseMount) else contextlib.nullcontext():
                yield s
        finally:
            s.close()

    with session() as s:
        results["seq_write"] = dir_seq_write(s.path / "big", cfg)
    with session() as s:
        start = time.perf_counter()
        dir_small_files(s.path / "small", cfg)
        s.close()
        results["small_files"] = cfg.files / (time.perf_counter() - start)
    with session() as s:
        start = time.perf_counter()
        dir_tar(s.path / "tar", cfg)
        s.close()
        results["tar"] = cfg.tar_files * cfg.tar_repeat / (time.perf_counter() - start)
    drop_caches()
    with session() as s:
        results["seq_read"] = dir_seq_read(s.path / "big", cfg)
    drop_caches()
    with session() as s:
        results["random_reads"] = dir_random_reads(s.path / "big", cfg)
    return results


# ---- doublecrypt through the Python API and the C ABI ---------------------------


def run_python_api(cfg: Config) -> dict[str, float]:
    directory = cfg.work / "python-api"
    directory.mkdir()
    image = directory / "volume.img"
    results: dict[str, float] = {}
    try:
        fs = doublecrypt.open_image(image, key=KEY, create=True, size=image_bytes(cfg))
        try:
            chunk = memoryview(os.urandom(cfg.chunk))

            def seq_write() -> None:
                with fs.open("/big", "wb") as f:
                    for offset in range(0, cfg.size, cfg.chunk):
                        f.write(chunk[: min(cfg.chunk, cfg.size - offset)])
                fs.sync()

            results["seq_write"] = cfg.size / timed(seq_write) / 1e6
            payload = os.urandom(SMALL_FILE)
            fs.mkdir("/small")

            def small_files() -> None:
                for i in range(cfg.files):
                    fs.write_bytes(f"/small/f{i:06d}", payload)
                fs.sync()

            results["small_files"] = cfg.files / timed(small_files)

            def tar() -> None:
                for r in range(cfg.tar_repeat):
                    with tarfile.open(cfg.tarball) as archive:
                        for member in archive:
                            path = f"/tar/tar{r}/{member.name}".rstrip("/")
                            if member.isdir():
                                fs.makedirs(path)
                            elif member.isfile():
                                source = archive.extractfile(member)
                                assert source is not None
                                with fs.transaction():
                                    fs.write_bytes(path, source.read())
                                    fs.set_mtime(path, int(member.mtime) * 1_000_000_000)
                fs.sync()

            results["tar"] = cfg.tar_files * cfg.tar_repeat / timed(tar)
        finally:
            fs.close()

        drop_caches()
        buf = bytearray(cfg.chunk)
        with doublecrypt.open_image(image, key=KEY) as fs:

            def seq_read() -> None:
                with fs.open("/big", "rb", buffering=0) as f:
                    raw = cast(io.RawIOBase, f)
                    while raw.readinto(buf):
                        pass

            results["seq_read"] = cfg.size / timed(seq_read) / 1e6

        drop_caches()
        offsets = random_offsets(cfg)
        small = bytearray(RANDOM_READ)
        with doublecrypt.open_image(image, key=KEY) as fs:

            def random_reads() -> None:
                with fs.open("/big", "rb", buffering=0) as f:
                    raw = cast(io.RawIOBase, f)
                    for offset in offsets:
                        raw.seek(offset)
                        if raw.readinto(small) != RANDOM_READ:
                            raise RuntimeError(f"short read at {offset}")

            results["random_reads"] = cfg.reads / timed(random_reads)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return results


def build_bench_fs() -> Path:
    """Compile bench_fs.c against build/libdoublecrypt.so (``make lib``)."""
    if not LIBRARY.exists():
        raise FileNotFoundError(f"{LIBRARY.relative_to(ROOT)} is missing: run `make lib`")
    BENCH_FS.parent.mkdir(parents=True, exist_ok=True)
    cc = shlex.split(os.environ.get("CC", "cc"))
    cmd = [*cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}"]
    cmd += [str(BENCH_FS_SOURCE), "-o", str(BENCH_FS), f"-L{LIBRARY.parent}", "-ldoublecrypt"]
    cmd += [f"-Wl,-rpath,{LIBRARY.parent}"]
    subprocess.run(cmd, check=True, timeout=COMMAND_TIMEOUT)
    return BENCH_FS


def run_c_abi(binary: Path, cfg: Config) -> dict[str, float]:
    directory = cfg.work / "c-abi"
    directory.mkdir()
    try:
        args = [str(binary), str(directory), str(cfg.size), str(cfg.chunk), str(cfg.files)]
        args += [str(cfg.reads), str(cfg.tarball), str(cfg.tar_repeat)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"bench_fs failed ({done.returncode}): {done.stderr.strip()}")
        out: dict[str, Any] = json.loads(done.stdout)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if out["tar_files"] != cfg.tar_files * cfg.tar_repeat:
        raise RuntimeError(f"bench_fs extracted {out['tar_files']} files")
    return {
        "seq_write": float(out["seq_write_mbps"]),
        "seq_read": float(out["seq_read_mbps"]),
        "small_files": float(out["small_files_per_s"]),
        "tar": float(out["tar_files_per_s"]),
        "random_reads": float(out["random_reads_per_s"]),
    }


# ---- report ---------------------------------------------------------------------


def best_peer(systems: list[System], key: str) -> float | None:
    values = [s.results[key] for s in systems if s.name in PEERS and key in s.results]
    return max(values) if values else None


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def cell(systems: list[System], system: System, key: str) -> str:
    if key not in system.results:
        return "—"
    value = system.results[key]
    best = best_peer(systems, key)
    return fmt(value) + (f" ({value / best:.2f}x)" if best else "")


def targets(systems: list[System]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    by_name = {s.name: s for s in systems}
    rows: list[tuple[str, str, str]] = []

    def ratio(name: str, peer: str, key: str) -> float | None:
        mine = by_name[name].results.get(key) if name in by_name else None
        theirs = by_name[peer].results.get(key) if peer in by_name else None
        return None if mine is None or theirs is None else mine / theirs

    for key, title in (("seq_write", "sequential write"), ("seq_read", "sequential read")):
        r = ratio(PYTHON_API, "gocryptfs", key)
        rows.append(
            (
                f"Python API >= gocryptfs, {title}",
                "n/a" if r is None else f"{r:.2f}x",
                "n/a" if r is None else ("PASS" if r >= 1 else "MISS"),
            )
        )
    for mount, label in ((FUSE, "FUSE (Python)"), (FUSE_C, "FUSE (C)")):
        for key, title, _ in WORKLOADS:
            g, c = ratio(mount, "gocryptfs", key), ratio(mount, "CryFS", key)
            rows.append(
                (
                    f"{label} >= 0.8x gocryptfs, {title}",
                    "n/a" if g is None else f"{g:.2f}x",
                    "n/a" if g is None else ("PASS" if g >= 0.8 else "MISS"),
                )
            )
            rows.append(
                (
                    f"{label} ahead of CryFS, {title}",
                    "n/a" if c is None else f"{c:.2f}x",
                    "n/a" if c is None else ("PASS" if c > 1 else "MISS"),
                )
            )
    return rows


def command_version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def render(
    systems: list[System], cfg: Config, args: argparse.Namespace, notes: dict[str, str]
) -> str:
    lines = [
        "# doublecrypt against its peers",
        "",
        f"`bench/peers_report.py`, {time.strftime('%Y-%m-%d %H:%M %Z')}: {os.cpu_count()} CPUs "
        f"({platform.machine()}), Linux {platform.release()}, directory on {notes['fstype']}; "
        f"doublecrypt {doublecrypt.__version__}, {notes['gocryptfs']}, {notes['cryfs']}. "
        f"1-minute load average {notes['load']}. Page cache dropped before reads: "
        f"{notes['dropped']}. Best of {args.rounds} round(s).",
        "",
        f"Workloads: {cfg.size >> 20} MiB written sequentially in {cfg.chunk >> 10} KiB writes "
        f"then fsync; read back after a remount; {cfg.files:,} files of 4 KiB; `tar -x` of "
        f"csrc/ + pycore/ ({cfg.tar_files} files) {cfg.tar_repeat} times; {cfg.reads:,} random "
        f"4 KiB reads in the {cfg.size >> 20} MiB file after a remount. The file workloads "
        "count until durable (API sync; syncfs; for FUSE mounts the unmount, which makes "
        "the daemon write back, then syncfs of its ciphertext). In brackets: the ratio "
        "to the best peer (gocryptfs or CryFS) in the column.",
        "",
        "| System | " + " | ".join(f"{t} ({u})" for _, t, u in WORKLOADS) + " |",
        "|---|" + "---:|" * len(WORKLOADS),
    ]
    for s in systems:
        row = [cell(systems, s, key) for key, _, _ in WORKLOADS]
        if not s.results and s.note:
            row = [s.note.split(":")[0] + " (below)"] + [""] * (len(WORKLOADS) - 1)
        lines.append(f"| {s.name} | " + " | ".join(row) + " |")
    lines += ["", "| Target | Measured | Result |", "|---|---:|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in targets(systems)]
    remarks = [f"- {s.name}: {s.note}" for s in systems if s.note]
    if remarks:
        lines += ["", *remarks]
    return "\n".join(lines) + "\n"


def chart(systems: list[System], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"baseline": "#9e9e9e", "doublecrypt": "#1f77b4", "peer": "#ff7f0e"}
    names = [s.name for s in systems][::-1]
    fig, grid = plt.subplots(2, 3, figsize=(15, 8.5))
    axes = list(grid.flat)
    for ax, (key, title, unit) in zip(axes, WORKLOADS, strict=False):
        values = [s.results.get(key) for s in systems][::-1]
        kinds = [s.kind for s in systems][::-1]
        top = max((v for v in values if v is not None), default=1.0)
        for y, (value, kind) in enumerate(zip(values, kinds, strict=True)):
            if value is None:
                ax.text(0, y, " n/a", va="center", fontsize=8, color="#666666")
                continue
            ax.barh(y, value, color=colors[kind])
            ax.text(value + top * 0.01, y, fmt(value), va="center", fontsize=8)
        best = best_peer(systems, key)
        if best:
            ax.axvline(best, color=colors["peer"], linestyle=":", linewidth=1)
        ax.set_title(f"{title}\n({unit})", fontsize=10)
        ax.set_xlim(0, top * 1.3)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
    legend = axes[-1]
    legend.axis("off")
    for y, (kind, label) in enumerate(
        (("baseline", "baselines"), ("doublecrypt", "doublecrypt"), ("peer", "peers"))
    ):
        legend.barh(2 - y, 0.1, left=0.05, height=0.4, color=colors[kind])
        legend.text(0.2, 2 - y, label, va="center", fontsize=10)
    legend.set_xlim(0, 1)
    legend.set_ylim(-1, 3)
    fig.suptitle("doublecrypt against gocryptfs and CryFS (dotted: best peer)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main -----------------------------------------------------------------------


def merge(system: System, results: dict[str, float]) -> None:
    for key, value in results.items():
        system.results[key] = max(system.results.get(key, 0.0), value)


def measure(system: System, fn: Callable[[], dict[str, float]]) -> None:
    print(f"  {system.name} ...", file=sys.stderr, flush=True)
    try:
        merge(system, fn())
    except (OSError, RuntimeError, subprocess.SubprocessError, DoubleCryptError) as e:
        system.note = f"failed: {e}"
        print(f"  {system.name} failed: {e}", file=sys.stderr)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that unmount


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256, help="big file size (MiB)")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="sequential I/O size (KiB)")
    parser.add_argument("--files", type=int, default=2000, help="number of 4 KiB files")
    parser.add_argument("--reads", type=int, default=2000, help="number of random 4 KiB reads")
    parser.add_argument("--tar-repeat", type=int, default=3, help="tar extractions")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; every figure is a best")
    parser.add_argument("--aead-seconds", type=float, default=0.25, help="per raw AEAD case")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds before a FUSE session is killed"
    )
    parser.add_argument("--dir", type=Path, default=ROOT / "build", help="parent of the work dir")
    parser.add_argument(
        "--only", action="append", default=None, help="run only these systems (substring)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    args = parser.parse_args(argv)
    if min(args.size_mib, args.chunk_kib, args.files, args.reads, args.tar_repeat) < 1:
        parser.error("sizes and counts must be positive")
    if args.rounds < 1 or args.aead_seconds <= 0 or args.timeout <= 0:
        parser.error("--rounds, --aead-seconds and --timeout must be positive")

    signal.signal(signal.SIGTERM, _terminate)
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dc-peers-", dir=args.dir))
    loads = [os.getloadavg()[0]]
    dropped = drop_caches()
    fstype = command_version(["stat", "-f", "-c", "%T", str(work)])
    systems = [
        System("raw libsodium AEAD, 1 thread", "baseline"),
        System("raw libsodium AEAD, 2 threads", "baseline"),
        System("plain files (same disk)", "baseline"),
        System(PYTHON_API, "doublecrypt"),
        System(C_ABI, "doublecrypt"),
        System(FUSE, "doublecrypt"),
        System(FUSE_C, "doublecrypt"),
        System("gocryptfs", "peer"),
        System("CryFS", "peer"),
    ]

    def wanted(s: System) -> bool:
        return args.only is None or any(o.lower() in s.name.lower() for o in args.only)

    try:
        tarball, tar_files = make_tarball(work)
        cfg = Config(
            size=args.size_mib << 20,
            chunk=args.chunk_kib << 10,
            files=args.files,
            reads=args.reads,
            tar_repeat=args.tar_repeat,
            tarball=tarball,
            tar_files=tar_files,
            work=work,
        )
        directories: dict[str, DirectorySystem] = {
            "plain files (same disk)": DirectorySystem(cfg),
            FUSE: DoublecryptFuse(cfg),
            FUSE_C: DoublecryptFuseC(cfg),
            "gocryptfs": Gocryptfs(cfg),
            "CryFS": Cryfs(cfg),
        }
        for name, d in directories.items():
            reason = d.available()
            if reason is not None:
                by_name = {s.name: s for s in systems}
                by_name[name].note = f"not available: {reason}"

        aead: Path | None = None
        bench_fs: Path | None = None
        try:
            aead = build_aead()
        except (OSError, subprocess.SubprocessError) as e:
            for s in systems[:2]:
                s.note = f"not available: bench_aead.c did not build: {e}"
        try:
            bench_fs = build_bench_fs()
        except (OSError, subprocess.SubprocessError) as e:
            systems[4].note = f"not available: {e}"

        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
            for s in systems:
                if not wanted(s) or s.note.startswith(("not available", "failed")):
                    continue
                if s.name.startswith("raw libsodium") and aead is not None:
                    threads = "1" if "1 thread" in s.name else "2"
                    binary = aead

                    def raw(threads: str = threads, binary: Path = binary) -> dict[str, float]:
                        out = run_aead(binary, args.aead_seconds)
                        seal, opened = out["seal"]["65536"], out["open"]["65536"]
                        return {"seq_write": seal[threads], "seq_read": opened[threads]}

                    measure(s, raw)
                elif s.name == PYTHON_API:
                    measure(s, lambda: run_python_api(cfg))
                elif s.name == C_ABI and bench_fs is not None:

                    def c_abi(binary: Path = bench_fs) -> dict[str, float]:
                        return run_c_abi(binary, cfg)

                    measure(s, c_abi)
                elif s.name in directories:
                    d = directories[s.name]

                    def directory(d: DirectorySystem = d) -> dict[str, float]:
                        d.setup()
                        try:
                            return run_directory(d, cfg, args.timeout)
                        finally:
                            d.teardown()

                    measure(s, directory)
    finally:
        for mount in list(FuseMount.live):
            with contextlib.suppress(Exception):
                mount.close()
        shutil.rmtree(work, ignore_errors=True)

    loads.append(os.getloadavg()[0])
    notes = {
        "gocryptfs": command_version(["gocryptfs", "-version"]).split(";")[0],
        "cryfs": command_version(["cryfs", "--version"]),
        "load": f"{loads[0]:.2f} before, {loads[-1]:.2f} after",
        "dropped": "yes" if dropped else "no (not root)",
        "fstype": fstype,
    }
    report = render([s for s in systems if wanted(s)], cfg, args, notes)
    print(report, end="")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        chart([s for s in systems if wanted(s)], CHART)
        print(f"(written to {RESULTS.relative_to(ROOT)} and {CHART.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
