"""Object-store benchmark: ``make bench`` (or ``python bench/objectstore_report.py``).

One run, one directory (``--dir``, default a temporary directory under
build/), every figure measured in that run on this machine. A real SeaweedFS
cluster (tests/s3server.py: master, two volume servers, filer, S3 gateway, one
copy of each object) is started once on 127.0.0.1 and stopped at the end, also
on Ctrl-C or SIGTERM. Three stores, each with a new volume (64 KiB blocks):

- the local image file (``doublecrypt.open_image``), the baseline;
- the object store (``doublecrypt.open_object_store``, one object per block)
  with ``in_flight=1`` (one S3 request at a time) and ``in_flight=16``, with
  the default 64 MiB write-back cache in front.

Workloads (sizes from the flags):

1. sequential write of a 256 MiB file in 1 MiB writes, then ``fs.sync()``
   (MB/s); the ``in_flight=1`` row writes ``--slow-size-mib`` (64) instead,
   since one request at a time is slow; MB/s stays comparable;
2. 2,000 files of 4 KiB, each ``fs.write_bytes`` (one commit per file), then
   ``fs.sync()`` (files/s);
3. sequential read of the big file after closing and reopening the volume
   (a fresh engine, so its cache is cold) (MB/s).

For the object store rows every S3 request is counted through a botocore
event hook (``after-call.s3``) on the client passed as ``client=``; the
objects/s columns are (PUT + GET requests) / seconds of each workload.
Each figure is also given as a ratio to the local image row, measured in the
same run; one more row gives the ``in_flight`` 16 vs 1 speed-up. The Markdown
table goes to bench/results/objectstore.md. No figure is asserted.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

import pytest
from peers_report import command_version, timed

import doublecrypt
from doublecrypt.errors import DoubleCryptError
from doublecrypt.objectstore.location import S3Settings, make_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from s3server import SeaweedCluster, skip_reason, start_cluster, weed_binary

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "objectstore.md"
KEY = bytes(range(32))
BLOCK = 65536  # doublecrypt's default block size
SMALL_FILE = 4096
BUCKET = "bench"
SLOW_IN_FLIGHT = 1
FAST_IN_FLIGHT = 16
RAW_OBJECTS = 400  # per baseline measurement

# (key, column title, unit)
WORKLOADS: list[tuple[str, str, str]] = [
    ("seq_write", "sequential write + sync", "MB/s"),
    ("seq_read", "sequential read (reopened)", "MB/s"),
    ("small_files", "4 KiB files", "files/s"),
]
LOCAL = "local image file (baseline)"


def store_name(in_flight: int) -> str:
    return f"object store, in_flight={in_flight}"


@dataclass
class Config:
    size: int  # big file, bytes
    slow_size: int  # big file for the in_flight=1 row
    chunk: int
    files: int
    volume: int  # volume size, bytes
    work: Path


@dataclass
class Measure:
    value: float  # MB/s or files/s
    seconds: float
    requests: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def objects(self) -> int:
        return self.requests["PutObject"] + self.requests["GetObject"]

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds


@dataclass
class Row:
    name: str
    in_flight: int | None  # None: the local image
    size: int = 0  # big file bytes this row used
    results: dict[str, Measure] = field(default_factory=dict)
    note: str = ""


class RequestCounter:
    """Counts every S3 call a boto3 client makes, by operation name (PutObject,
    GetObject, HeadObject, ...); botocore emits ``after-call`` once per call,
    failed ones (a GET of a block never written: 404) included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def __call__(self, **kwargs: Any) -> None:
        name = str(getattr(kwargs.get("model"), "name", "?"))
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._counts)


# ---- workloads ------------------------------------------------------------------


def run_workloads(
    create: Callable[[], doublecrypt.FileSystem],
    reopen: Callable[[], doublecrypt.FileSystem],
    size: int,
    cfg: Config,
    counter: RequestCounter | None,
) -> dict[str, Measure]:
    """Sequential write + sync, 4 KiB files + sync, then (reopened) sequential read."""
    results: dict[str, Measure] = {}

    def measure(key: str, fn: Callable[[], object], amount: float) -> None:
        before = counter.snapshot() if counter else collections.Counter[str]()
        seconds = timed(fn)
        after = counter.snapshot() if counter else collections.Counter[str]()
        results[key] = Measure(amount / seconds, seconds, after - before)

    fs = create()
    try:
        chunk = memoryview(os.urandom(cfg.chunk))

        def seq_write() -> None:
            with fs.open("/big", "wb") as f:
                for offset in range(0, size, cfg.chunk):
                    f.write(chunk[: min(cfg.chunk, size - offset)])
            fs.sync()

        measure("seq_write", seq_write, size / 1e6)
        payload = os.urandom(SMALL_FILE)
        fs.mkdir("/small")
        fs.sync()

        def small_files() -> None:
            for i in range(cfg.files):
                fs.write_bytes(f"/small/f{i:06d}", payload)
            fs.sync()

        measure("small_files", small_files, cfg.files)
    finally:
        fs.close()

    buf = bytearray(cfg.chunk)
    fs = reopen()
    try:

        def seq_read() -> None:
            with fs.open("/big", "rb", buffering=0) as f:
                raw = cast(io.RawIOBase, f)
                got = 0
                while n := raw.readinto(buf):
                    got += n
            if got != size:
                raise RuntimeError(f"read {got} bytes back, wrote {size}")

        measure("seq_read", seq_read, size / 1e6)
    finally:
        fs.close()
    return results


def run_local(cfg: Config, size: int, label: str) -> dict[str, Measure]:
    image = cfg.work / f"{label}.img"
    try:
        return run_workloads(
            lambda: doublecrypt.open_image(image, key=KEY, create=True, size=cfg.volume),
            lambda: doublecrypt.open_image(image, key=KEY),
            size,
            cfg,
            None,
        )
    finally:
        image.unlink(missing_ok=True)


def run_object_store(
    cluster: SeaweedCluster, cfg: Config, size: int, in_flight: int, prefix: str
) -> dict[str, Measure]:
    settings = S3Settings(
        endpoint_url=cluster.endpoint_url,
        region=cluster.region,
        access_key=cluster.access_key,
        secret_key=cluster.secret_key,
    )
    client = make_client(settings, in_flight)  # its connection pool fits in_flight
    counter = RequestCounter()
    client.meta.events.register("after-call.s3", counter)
    url = f"s3://{BUCKET}/{prefix}"
    try:
        return run_workloads(
            lambda: doublecrypt.open_object_store(
                url,
                key=KEY,
                create=True,
                size=cfg.volume,
                block_size=BLOCK,
                in_flight=in_flight,
                client=client,
            ),
            lambda: doublecrypt.open_object_store(url, key=KEY, in_flight=in_flight, client=client),
            size,
            cfg,
            counter,
        )
    finally:
        if not _SIGNALLED:  # else the whole cluster goes at once
            delete_prefix(client, prefix)
            # SeaweedFS frees deleted objects' space only when it compacts its volumes
            with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
                cluster.shell("lock\nvolume.vacuum -garbageThreshold 0.01\nunlock", timeout=120)


def raw_rates(cluster: SeaweedCluster, threads: int, count: int) -> tuple[float, float]:
    """The baseline: plain boto3 PUTs, then GETs, of ``count`` objects of one
    block each with ``threads`` threads; requests per second."""
    client = make_client(
        S3Settings(
            endpoint_url=cluster.endpoint_url,
            access_key=cluster.access_key,
            secret_key=cluster.secret_key,
            region=cluster.region,
        ),
        threads,
    )
    body = os.urandom(BLOCK)
    keys = [f"raw-{threads}/{i:06d}" for i in range(count)]
    with ThreadPoolExecutor(threads) as pool:
        put = timed(
            lambda: list(
                pool.map(lambda k: client.put_object(Bucket=BUCKET, Key=k, Body=body), keys)
            )
        )
        get = timed(
            lambda: list(
                pool.map(lambda k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read(), keys)
            )
        )
    delete_prefix(client, f"raw-{threads}/")
    return count / put, count / get


def delete_prefix(client: Any, prefix: str) -> None:
    """Remove a volume's objects (untimed), so rounds do not fill the cluster."""
    with contextlib.suppress(Exception):
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=f"{prefix}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


# ---- report ---------------------------------------------------------------------


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def cell(row: Row, base: Row | None, key: str) -> str:
    m = row.results.get(key)
    if m is None:
        return "—"
    ref = base.results.get(key) if base is not None else None
    ratio = f" ({m.value / ref.value:.2f}x)" if ref is not None and row is not base else ""
    return fmt(m.value) + ratio


def objects_cell(row: Row, key: str) -> str:
    m = row.results.get(key)
    if row.in_flight is None or m is None:
        return "—"
    return fmt(m.objects_per_s)


def speedup(fast: Row, slow: Row, value: Callable[[Measure], float], key: str) -> str:
    f, s = fast.results.get(key), slow.results.get(key)
    if f is None or s is None or value(s) <= 0:
        return "—"
    return f"{value(f) / value(s):.2f}x"


def requests_text(m: Measure) -> str:
    parts = [f"{m.requests[op]:,} {op.removesuffix('Object').upper()}" for op in sorted(m.requests)]
    return ", ".join(parts) + f" in {m.seconds:.1f} s" if parts else f"none in {m.seconds:.1f} s"


def render(rows: list[Row], cfg: Config, args: argparse.Namespace, notes: dict[str, str]) -> str:
    base = next((r for r in rows if r.in_flight is None and r.results), None)
    slow = next((r for r in rows if r.in_flight == SLOW_IN_FLIGHT), None)
    fast = next((r for r in rows if r.in_flight == FAST_IN_FLIGHT), None)
    slow_mib = slow.size >> 20 if slow is not None and slow.size else cfg.slow_size >> 20
    lines = [
        "# doublecrypt on an object store (S3 API, SeaweedFS)",
        "",
        f"`bench/objectstore_report.py`, {time.strftime('%Y-%m-%d %H:%M %Z')}: "
        f"{os.cpu_count()} CPUs ({platform.machine()}), Linux {platform.release()}; "
        f"doublecrypt {doublecrypt.__version__}, SeaweedFS {notes['weed']} (one master, two "
        f"volume servers, filer, S3 gateway, all on 127.0.0.1, replication 000), boto3 "
        f"{notes['boto3']}. 1-minute load average {notes['load']}. Best of {args.rounds} "
        f"round(s). Run as `{notes['command']}` in {notes['elapsed']}.",
        "",
        f"Workloads: {cfg.size >> 20} MiB written sequentially in {cfg.chunk >> 10} KiB writes "
        f"then `fs.sync()` (**the in_flight={SLOW_IN_FLIGHT} row writes {slow_mib} MiB** "
        "instead, `--slow-size-mib`: MB/s stays comparable); read back after closing and "
        f"reopening the volume (cold engine cache); {cfg.files:,} files of 4 KiB, one "
        "`fs.write_bytes` (one commit) each, then `fs.sync()`. Volumes of "
        f"{cfg.volume >> 20} MiB, {BLOCK >> 10} KiB blocks (one object per block); the object "
        "store with the default 64 MiB write-back cache. In brackets: the ratio to the local "
        "image file row, measured in the same run. objects/s: (PUT + GET requests) / seconds "
        "of the workload, counted with a botocore `after-call` hook on the client.",
        "",
        "| Store | "
        + " | ".join(f"{t} ({u})" for _, t, u in WORKLOADS)
        + " | "
        + " | ".join(f"{t}: objects/s" for _, t, _ in WORKLOADS)
        + " |",
        "|---|" + "---:|" * (2 * len(WORKLOADS)),
    ]
    for row in rows:
        cells = [cell(row, base, key) for key, _, _ in WORKLOADS]
        cells += [objects_cell(row, key) for key, _, _ in WORKLOADS]
        if not row.results and row.note:
            cells = [row.note.split(":")[0] + " (below)"] + [""] * (len(cells) - 1)
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    if slow is not None and fast is not None and slow.results and fast.results:
        cells = [speedup(fast, slow, lambda m: m.value, key) for key, _, _ in WORKLOADS]
        cells += [speedup(fast, slow, lambda m: m.objects_per_s, k) for k, _, _ in WORKLOADS]
        lines.append(
            f"| speed-up, in_flight={FAST_IN_FLIGHT} vs {SLOW_IN_FLIGHT} | "
            + " | ".join(cells)
            + " |"
        )
    counted = [r for r in rows if r.in_flight is not None and r.results]
    if counted:
        lines += ["", "S3 requests per workload (the best round):", ""]
        for row in counted:
            parts = [
                f"{t}: {requests_text(row.results[key])}"
                for key, t, _ in WORKLOADS
                if key in row.results
            ]
            lines.append(f"- {row.name}: " + "; ".join(parts) + ".")
    if notes.get("raw"):
        lines += [
            "",
            f"Baseline in the same run: plain boto3 requests for {BLOCK >> 10} KiB objects "
            "against the same cluster (what the store and this machine allow):",
            "",
            "| plain boto3 | PUT/s | GET/s |",
            "|---|---:|---:|",
            *notes["raw"].splitlines(),
        ]
    remarks = [f"- {r.name}: {r.note}" for r in rows if r.note]
    if remarks:
        lines += ["", *remarks]
    return "\n".join(lines) + "\n"


# ---- main -----------------------------------------------------------------------


def merge(row: Row, results: dict[str, Measure]) -> None:
    for key, m in results.items():
        if key not in row.results or m.value > row.results[key].value:
            row.results[key] = m


def measure_row(row: Row, fn: Callable[[], dict[str, Measure]]) -> None:
    print(f"  {row.name} ({row.size >> 20} MiB) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        results = fn()
    except (OSError, RuntimeError, DoubleCryptError) as e:
        stop_if_signalled()  # the signal's exit may have been turned into this error
        row.note = f"failed: {e}"
        print(f"  {row.name} failed: {e}", file=sys.stderr)
        return
    stop_if_signalled()
    merge(row, results)
    print(f"  ... {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


_SIGNALLED: list[int] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    _SIGNALLED.append(signum)
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the cluster


def stop_if_signalled() -> None:
    """Exit for a SIGTERM/SIGINT that arrived inside an engine callback (the
    object store's requests run there): the engine reports the exception
    raised in it as an I/O error, so it would not end the run by itself."""
    if _SIGNALLED:
        raise SystemExit(128 + _SIGNALLED[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256, help="big file size (MiB)")
    parser.add_argument(
        "--slow-size-mib",
        type=int,
        default=64,
        help=f"big file size for the in_flight={SLOW_IN_FLIGHT} row (MiB)",
    )
    parser.add_argument("--chunk-kib", type=int, default=1024, help="sequential I/O size (KiB)")
    parser.add_argument("--files", type=int, default=2000, help="number of 4 KiB files")
    parser.add_argument("--volume-mib", type=int, default=1024, help="volume size (MiB, minimum)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; every figure is a best")
    parser.add_argument("--dir", type=Path, default=ROOT / "build", help="parent of the work dir")
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    args = parser.parse_args(argv)
    if min(args.size_mib, args.slow_size_mib, args.chunk_kib, args.files, args.volume_mib) < 1:
        parser.error("sizes and counts must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be positive")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # Ctrl-C: the same way out
    started = time.perf_counter()
    size = args.size_mib << 20
    # room for the big file, the small files (a block each, plus metadata) and slack
    needed = size + size // 8 + 2 * args.files * BLOCK + (64 << 20)
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dc-objectstore-", dir=args.dir)).resolve()
    cfg = Config(
        size=size,
        slow_size=min(args.slow_size_mib << 20, size),
        chunk=args.chunk_kib << 10,
        files=args.files,
        volume=max(args.volume_mib << 20, needed) // BLOCK * BLOCK,
        work=work,
    )
    loads = [os.getloadavg()[0]]
    raw_lines: list[str] = []
    rows = [
        Row(LOCAL, None, cfg.size),
        Row(store_name(SLOW_IN_FLIGHT), SLOW_IN_FLIGHT, cfg.slow_size),
        Row(store_name(FAST_IN_FLIGHT), FAST_IN_FLIGHT, cfg.size),
    ]
    reason = skip_reason()
    if reason is not None:
        for row in rows[1:]:
            row.note = f"not available: {reason}"
    cluster: SeaweedCluster | None = None
    try:
        if reason is None:
            print("starting SeaweedFS ...", file=sys.stderr, flush=True)
            try:
                cluster = start_cluster(work / "seaweedfs", replication="000")
                cluster.make_bucket(BUCKET)
                for threads in (SLOW_IN_FLIGHT, FAST_IN_FLIGHT):
                    put, get = raw_rates(cluster, threads, RAW_OBJECTS)
                    raw_lines.append(f"| {threads} thread(s) | {put:,.0f} | {get:,.0f} |")
            except (Exception, pytest.fail.Exception) as e:  # start_cluster fails via pytest
                for row in rows[1:]:
                    row.note = f"not available: SeaweedFS did not start: {str(e)[:300]}"
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
            for row in rows:
                if row.note.startswith(("not available", "failed")):
                    continue
                if row.in_flight is None:

                    def local(r: int = r) -> dict[str, Measure]:
                        return run_local(cfg, cfg.size, f"local{r}")

                    measure_row(row, local)
                elif cluster is not None:

                    def objects(
                        row: Row = row, cluster: SeaweedCluster = cluster, r: int = r
                    ) -> dict[str, Measure]:
                        assert row.in_flight is not None
                        prefix = f"round{r}-inflight{row.in_flight}"
                        return run_object_store(cluster, cfg, row.size, row.in_flight, prefix)

                    measure_row(row, objects)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    loads.append(os.getloadavg()[0])
    binary = weed_binary()
    weed = command_version([binary, "version"]) if binary else "?"
    notes = {
        "weed": next((t for t in weed.split() if t[:1].isdigit() and "." in t), weed),
        "boto3": boto3_version(),
        "load": f"{loads[0]:.2f} before, {loads[-1]:.2f} after",
        "command": shlex.join(
            ["python", "bench/objectstore_report.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "elapsed": f"{time.perf_counter() - started:.0f} s",
        "raw": "\n".join(raw_lines),
    }
    report = render(rows, cfg, args, notes)
    print(report, end="")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"(written to {RESULTS.relative_to(ROOT)})")
    return 0


def boto3_version() -> str:
    try:
        import boto3

        return str(boto3.__version__)
    except ImportError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
