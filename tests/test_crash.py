"""Crash consistency: power loss at many points of a recorded workload.

A workload of mixed operations runs once on a simulated disk that never
loses power (``doublecrypt.FaultyStore``), recording the model state (paths
to bytes, directories) of every commit, the block-write count at which each
commit's root pointer was written and the write count covered by each
completed sync. Then, for each crash point N, the workload runs again on a
fresh volume whose disk loses power right after block write N, in one of the
four modes (drop the volatile writes, keep them in order, tear the last one,
keep a random subset), with later writes dropped silently or failing with an
I/O error. The surviving image must mount, pass fsck and hold exactly the
state of one commit that is no older than the last sync completed before the
crash and no newer than the last root pointer written before it; the modes
that decide deterministically must give exactly the expected commit.

Default (``make test``): the recorded workload below, at least 500 crash
points spread over [1, total writes] and every mode. ``DC_SLOW_TESTS=1``
(``make test-slow``) adds randomized workloads with 10,000 crash points in
all; ``DC_CRASH_POINTS=n`` sets that number (and runs it without
DC_SLOW_TESTS), ``DC_CRASH_SEED=s`` the first workload seed.
"""

from __future__ import annotations

import gc
import os
import posixpath
import random
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import pytest

import doublecrypt
from doublecrypt import FaultyStore, errors
from fsmodel import Model, Op, State
from memstores import DictStore

KEY = bytes(range(32))
BS = 4096
TOTAL_BLOCKS = 2048
MODES: tuple[doublecrypt._lowlevel.store.FaultMode, ...] = (
    "drop_volatile",
    "keep_prefix",
    "tear_last",
    "reorder",
)
DEFAULT_POINTS_PER_MODE = 400  # at most; the recorded workload has fewer writes
DEFAULT_RANDOM_POINTS = 400
SLOW_POINTS = 10_000
POINTS_PER_RANDOM_WORKLOAD = 200
NAMES = ("a", "b", "c", "dir", "é", "n" * 40)

# ---- workloads ----------------------------------------------------------

# Operations and their effect on the model: tests/fsmodel.py.


def _data(rng: random.Random) -> bytes:
    """Empty, small, about one data block, or several blocks."""
    size = rng.choice([0, rng.randint(1, 300), rng.randint(3500, 4500), rng.randint(8000, 20000)])
    return rng.randbytes(size)


def _new_path(rng: random.Random, m: Model) -> str | None:
    parents = sorted(d for d in m.dirs if d.count("/") < 3)
    for _ in range(10):
        path = posixpath.join(rng.choice(parents), rng.choice(NAMES))
        if not m.exists(path):
            return path
    return None


def _random_op(rng: random.Random, m: Model, nested: bool = False) -> Op | None:
    """One valid operation on model m (not applied), or None."""
    files = sorted(m.files)
    dirs = sorted(m.dirs - {"/"})
    kinds = ["write"] * 5 + ["pwrite"] * 4 + ["truncate", "truncate", "mkdir", "mkdir"]
    kinds += ["rename"] * 3 + ["remove", "remove", "rmdir"]
    if not nested:
        kinds += ["txn", "sync"]
    kind = rng.choice(kinds)
    if kind == "write":
        path = rng.choice(files) if files and rng.random() < 0.5 else _new_path(rng, m)
        return ("write", path, _data(rng)) if path else None
    if kind == "pwrite" and files:
        path = rng.choice(files)
        offset = rng.randint(0, len(m.files[path]) + 6000)
        return ("pwrite", path, offset, rng.randbytes(rng.randint(1, 12000)))
    if kind == "truncate" and files:
        path = rng.choice(files)
        return ("truncate", path, rng.randint(0, max(2 * len(m.files[path]), 9000)))
    if kind == "mkdir":
        path = _new_path(rng, m)
        return ("mkdir", path) if path else None
    if kind == "rmdir":
        empty = [d for d in dirs if m.is_empty_dir(d)]
        return ("rmdir", rng.choice(empty)) if empty else None
    if kind == "remove" and files:
        return ("remove", rng.choice(files))
    if kind == "rename" and (files or dirs):
        src = rng.choice(files + dirs)
        if src in m.files and len(files) > 1 and rng.random() < 0.3:
            dst: str | None = rng.choice([f for f in files if f != src])  # replaces it
        else:
            dst = _new_path(rng, m)
        if dst is None or (src in m.dirs and (dst + "/").startswith(src + "/")):
            return None
        return ("rename", src, dst)
    if kind == "txn":
        scratch, subs, count = m.copy(), list[Op](), rng.randint(2, 4)
        while len(subs) < count:
            sub = _random_op(rng, scratch, nested=True)
            if sub is not None:
                scratch.apply(sub)
                subs.append(sub)
        return ("txn", tuple(subs))
    if kind == "sync":
        return ("sync",)
    return None


def random_workload(seed: int, n_ops: int, prefix: tuple[Op, ...] = ()) -> list[Op]:
    rng = random.Random(seed)
    m = Model()
    ops = list(prefix)
    for op in ops:
        m.apply(op)
    while len(ops) < n_ops:
        new = _random_op(rng, m)
        if new is not None:
            m.apply(new)
            ops.append(new)
    return ops


def recorded_workload() -> list[Op]:
    """The default workload: a hand-written start that has every kind of
    operation, then a seeded random tail."""
    rng = random.Random(20240611)
    start: tuple[Op, ...] = (
        ("mkdir", "/docs"),
        ("mkdir", "/docs/sub"),
        ("write", "/docs/a", rng.randbytes(10000)),  # three data blocks
        ("write", "/b", rng.randbytes(100)),
        ("sync",),
        ("pwrite", "/docs/a", 3000, rng.randbytes(9000)),  # across block boundaries
        ("pwrite", "/b", 20000, rng.randbytes(50)),  # a hole
        ("truncate", "/docs/a", 5000),
        ("rename", "/docs", "/papers"),  # a directory with contents
        (
            "txn",
            (
                ("write", "/c", rng.randbytes(7000)),
                ("rename", "/b", "/papers/sub/b"),
                ("mkdir", "/tmp"),
                ("pwrite", "/c", 100, rng.randbytes(10)),
            ),
        ),
        ("remove", "/c"),
        ("rmdir", "/tmp"),
        ("write", "/papers/a", b""),  # replace with an empty file
        ("rename", "/papers/sub/b", "/papers/a"),  # replaces a file
        ("truncate", "/papers/a", 30000),
        ("sync",),
    )
    return random_workload(7, 56, start)


# ---- running a workload ----------------------------------------------------


def run_op(fs: doublecrypt.FileSystem, op: Op, in_txn: bool = False) -> None:
    kind = op[0]
    if kind == "mkdir":
        fs.mkdir(op[1])
    elif kind == "rmdir":
        fs.rmdir(op[1])
    elif kind == "write":
        fs.write_bytes(op[1], op[2])
    elif kind == "pwrite":
        _, path, offset, data = op
        with nullcontext() if in_txn else fs.transaction(), fs.open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)
    elif kind == "truncate":
        fs.truncate(op[1], op[2])
    elif kind == "rename":
        fs.rename(op[1], op[2])
    elif kind == "remove":
        fs.remove(op[1])
    elif kind == "txn":
        with fs.transaction():
            for sub in op[1]:
                run_op(fs, sub, in_txn=True)
    elif kind == "sync":
        fs.sync()
    else:
        raise AssertionError(f"unknown op {op!r}")


def snapshot(fs: doublecrypt.FileSystem) -> State:
    dirs, files = set(), set()
    for top, subdirs, names in fs.walk("/"):
        dirs.add(top)
        for name in names:
            path = posixpath.join(top, name)
            files.add((path, fs.read_bytes(path)))
        assert subdirs is not None
    return frozenset(dirs), frozenset(files)


def fresh_volume(threads: int) -> FaultyStore:
    """A formatted, synced volume on a simulated disk."""
    disk = FaultyStore(doublecrypt.MemoryStore(TOTAL_BLOCKS, BS))
    doublecrypt.FileSystem.format(disk, KEY, threads=threads).close()
    return disk


@dataclass
class Recording:
    """The clean run: per op, the block writes after it and the write count
    at which its sync (the commit's barrier, or fs.sync) completed; per
    commit (generation), its state and its root pointer's write index."""

    ops: list[Op]
    writes_after: list[int] = field(default_factory=list)
    states: dict[int, State] = field(default_factory=dict)
    root_write: dict[int, int] = field(default_factory=dict)
    sync_points: list[int] = field(default_factory=list)
    total_writes: int = 0

    def durable_generation(self, durable_writes: int) -> int:
        """The newest commit whose root pointer a completed sync covered."""
        return max(g for g, w in self.root_write.items() if w <= durable_writes)

    def newest_written(self, n: int) -> int:
        """The newest commit whose root pointer is among writes 1..n."""
        return max(g for g, w in self.root_write.items() if w <= n)


def record(ops: list[Op], threads: int = 1) -> Recording:
    rec = Recording(ops)
    disk = fresh_volume(threads)
    model = Model()
    with doublecrypt.FileSystem(disk.restart(), KEY, threads=threads) as fs:
        gen = fs.statvfs().generation
        rec.states[gen] = model.state()
        rec.root_write[gen] = 0  # durable since the format
        for op in ops:
            syncs = disk.syncs
            run_op(fs, op)
            model.apply(op)
            new_gen = fs.statvfs().generation
            rec.writes_after.append(disk.writes)
            # One commit per operation (none for a sync), so every state a
            # crash can expose is one recorded here; one barrier each.
            assert new_gen == gen + (op[0] != "sync"), op
            assert disk.syncs == syncs + 1, op
            rec.sync_points.append(disk.durable_writes)
            if new_gen != gen:
                gen = new_gen
                rec.states[gen] = model.state()
                rec.root_write[gen] = disk.writes  # a commit's last write
    assert not disk.power_lost
    rec.total_writes = rec.writes_after[-1] if rec.writes_after else 0
    assert snapshot_of(disk, threads) == rec.states[gen]
    return rec


def snapshot_of(disk: FaultyStore, threads: int) -> State:
    with doublecrypt.FileSystem(disk.restart(), KEY, threads=threads) as fs:
        fs.fsck()
        return snapshot(fs)


@dataclass(frozen=True)
class Crash:
    n: int
    mode: doublecrypt._lowlevel.store.FaultMode
    fail_after_crash: bool
    seed: int
    # After this operation (an index into the workload) the process dies
    # without syncing while the disk keeps power, and a new process mounts
    # the disk and carries on; -1: no such death.
    die_after: int = -1
    workload: int = 0  # the random workload's seed (0: the recorded one)


@dataclass
class Outcome:
    crash: Crash
    generation: int
    floor: int  # the commit durable at the last completed sync
    ceiling: int  # the newest commit whose root pointer was written
    torn_root: bool  # tear_last tore that root pointer


def crash_run(rec: Recording, crash: Crash, threads: int = 1) -> Outcome:
    """Run the workload with power lost after write crash.n; check the
    survivor; return what was recovered."""
    where = f"{crash} of {rec.total_writes} writes"
    disk = fresh_volume(threads)
    store = disk.restart(
        crash_after=crash.n,
        mode=crash.mode,
        fail_after_crash=crash.fail_after_crash,
        seed=crash.seed,
    )
    fs = doublecrypt.FileSystem(store, KEY, threads=threads)
    dead = []
    try:
        for i, op in enumerate(rec.ops):
            try:
                run_op(fs, op)
            except errors.StorageIOError:
                # Only the disk's own errors, and only after the loss.
                assert crash.fail_after_crash and disk.power_lost, where
                break
            if disk.power_lost:
                break
            # The same writes as the clean run, so crash points line up.
            assert disk.writes == rec.writes_after[i], where
            if i == crash.die_after:
                dead.append(fs)  # no sync, no close: its writes stay volatile
                fs = doublecrypt.FileSystem(disk.reopen(), KEY, threads=threads)
                assert fs.statvfs().generation == rec.newest_written(disk.writes), where
    finally:
        fs.close()
        for d in dead:
            d.close()  # after the loss, so its closing sync is dropped
    assert disk.power_lost, where
    if crash.die_after < 0:  # (a new process's mount syncs too)
        # Exactly the syncs of the clean run that completed before the loss.
        synced = max([0] + [w for w in rec.sync_points if w < crash.n])
        assert disk.durable_writes == synced, where
    floor = rec.durable_generation(disk.durable_writes)
    ceiling = rec.newest_written(crash.n)
    # A crash never makes the volume unmountable (nor damages it).
    try:
        with doublecrypt.FileSystem(disk.restart(), KEY, threads=threads) as fs:
            fs.fsck()
            generation = fs.statvfs().generation
            state = snapshot(fs)
    except errors.DoubleCryptError as exc:
        raise AssertionError(f"{where}: the survivor does not mount or verify: {exc}") from exc
    assert floor <= generation <= ceiling, (
        f"{where}: commit {generation} not in [{floor}, {ceiling}]"
    )
    assert state == rec.states[generation], f"{where}: contents differ from commit {generation}"
    torn_root = crash.mode == "tear_last" and rec.root_write[ceiling] == crash.n
    if crash.mode == "drop_volatile":
        assert generation == floor, where
    elif crash.mode == "keep_prefix":
        assert generation == ceiling, where
    elif crash.mode == "tear_last":
        assert generation in ((ceiling - 1, ceiling) if torn_root else (ceiling,)), where
    return Outcome(crash, generation, floor, ceiling, torn_root)


# ---- reporting ---------------------------------------------------------------


def summary(title: str, outcomes: list[Outcome], writes: int, commits: int, secs: float) -> str:
    parts = []
    for mode in MODES:
        mine = [o for o in outcomes if o.crash.mode == mode]
        at_floor = sum(o.generation == o.floor for o in mine)
        newest = sum(o.generation == o.ceiling and o.ceiling != o.floor for o in mine)
        between = len(mine) - at_floor - newest
        errs = sum(o.crash.fail_after_crash for o in mine)
        deaths = sum(o.crash.die_after >= 0 for o in mine)
        parts.append(
            f"{mode} {len(mine)} (I/O errors after the loss {errs}, process deaths {deaths}; "
            f"recovered: last synced {at_floor}, newest written {newest}, in between {between})"
        )
    gens = Counter((o.crash.workload, o.generation) for o in outcomes)
    torn = [o for o in outcomes if o.torn_root]
    parts.append(
        f"torn root pointers {len(torn)} (fell back to the previous commit "
        f"{sum(o.generation < o.ceiling for o in torn)})"
    )
    return (
        f"{title}: {len(outcomes)} crash points, {writes} block writes, {commits} commits, "
        f"{secs:.1f} s; " + "; ".join(parts) + f"; {len(gens)} distinct commits recovered"
    )


def crash_op(rec: Recording, n: int) -> int:
    """The index of the operation during which write n happens."""
    return next(i for i, w in enumerate(rec.writes_after) if w >= n)


def spread(total: int, count: int, phase: float) -> list[int]:
    """count crash points evenly over [1, total], shifted by phase (0..1)."""
    return sorted({min(total, 1 + int((i + phase) * total / count)) for i in range(count)})


# ---- the tests -------------------------------------------------------------------


def test_faulty_store_basics() -> None:
    disk = FaultyStore(doublecrypt.MemoryStore(16, BS), crash_after=2, mode="keep_prefix")
    block = bytes([7]) * BS
    disk.write_blocks([4], block)
    disk.sync()
    assert (disk.writes, disk.syncs, disk.durable_writes) == (1, 1, 1)
    disk.write_blocks([5, 6], block * 2)  # power lost after the first of them
    assert disk.power_lost and disk.writes == 3
    assert disk.read_blocks([6]) == block  # the machine still remembers
    after = disk.restart()
    assert not disk.power_lost and disk.writes == 0
    assert after.read_blocks([4, 5, 6]) == block * 2 + bytes(BS)
    melt: Any = "melt"
    with pytest.raises(errors.InvalidArgumentError):
        disk.restart(mode=melt)
    failing = after.restart(crash_after=1, fail_after_crash=True)
    with pytest.raises(errors.StorageIOError):
        failing.write_blocks([8, 9], block * 2)
    with pytest.raises(errors.StorageIOError):
        failing.sync()
    failing.power_off()  # already off: nothing more happens
    assert failing.restart().read_blocks([8, 9]) == bytes(2 * BS)


def test_faulty_store_over_a_python_backend() -> None:
    """The inner store may be a CustomStore; after a crash it holds exactly
    what the disk kept, mountable without the fault store."""
    blocks: dict[int, bytes] = {}
    disk = FaultyStore(DictStore(blocks, BS, 256))
    with doublecrypt.FileSystem.format(disk, KEY) as fs:
        fs.write_bytes("/a", b"synced")
    with doublecrypt.FileSystem(disk.restart(crash_after=1, mode="keep_prefix"), KEY) as fs:
        fs.write_bytes("/b", b"x" * 9000)  # power lost after its first block
    assert disk.power_lost
    del disk, fs
    gc.collect()  # the disk and its inner store are gone now
    with doublecrypt.FileSystem(DictStore(blocks, BS, 256), KEY) as fs:
        fs.fsck()
        assert fs.listdir("/") == ["a"]


def test_counters_outlive_the_filesystem() -> None:
    disk = FaultyStore(doublecrypt.MemoryStore(256, BS))
    with doublecrypt.FileSystem.format(disk, KEY) as fs:
        fs.write_bytes("/a", b"kept")
        fs.sync()
        fs.write_bytes("/b", b"lost")
        disk.power_off()
        fs.write_bytes("/c", b"never written")  # the machine runs on
        assert fs.read_bytes("/c") == b"never written"
    assert disk.power_lost and disk.writes > 0 and disk.durable_writes < disk.writes
    with doublecrypt.FileSystem(disk.restart(), KEY) as fs:
        fs.fsck()
        assert fs.listdir("/") == ["a"]


def test_mount_makes_what_it_read_durable() -> None:
    """A process that dies without syncing leaves its last root pointer in
    the disk's cache. A new mount must make it durable before committing:
    its first commit may overwrite the older tree, which the other root
    pointer still names (the engine bug the process-death runs found)."""
    disk = fresh_volume(1)
    dead = doublecrypt.FileSystem(disk.restart(), KEY, threads=1)
    dead.write_bytes("/a", b"volatile root pointer")
    assert disk.durable_writes < disk.writes
    with doublecrypt.FileSystem(disk.reopen(), KEY, threads=1, read_only=True) as fs:
        assert fs.read_bytes("/a") == b"volatile root pointer"
    assert disk.durable_writes < disk.writes  # a read-only mount writes nothing
    with doublecrypt.FileSystem(disk.reopen(), KEY, threads=1) as fs:
        assert disk.durable_writes == disk.writes
        fs.write_bytes("/b", b"after the mount")
        disk.power_off()
    dead.close()
    with doublecrypt.FileSystem(disk.restart(), KEY) as fs:
        fs.fsck()
        assert fs.listdir("/") == ["a"]


def test_recorded_workload_crash_points(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    ops = recorded_workload()
    kinds = Counter(op[0] for op in ops)
    assert set(kinds) == {
        "mkdir", "rmdir", "write", "pwrite", "truncate", "rename", "remove", "txn", "sync"
    }  # fmt: skip
    rec = record(ops)
    assert rec.total_writes >= 200
    crashes = []
    for m, mode in enumerate(MODES):
        # Every write index when the workload is small enough, else spread.
        count = min(rec.total_writes, DEFAULT_POINTS_PER_MODE)
        points = spread(rec.total_writes, count, (m + 0.5) / len(MODES))
        if mode == "tear_last":  # every root pointer torn too
            points = sorted(set(points) | set(rec.root_write.values()) - {0})
        for i, n in enumerate(points):
            # Every third run, the process dies just before the operation
            # the crash hits, and a new one mounts and carries on.
            die = crash_op(rec, n) - 1 if i % 3 == 2 else -1
            crashes.append(Crash(n, mode, i % 2 == 1, n * 4 + m, die))
    outcomes = [crash_run(rec, c) for c in crashes]
    assert len(outcomes) >= 500
    line = summary(
        "crash (recorded workload)",
        outcomes,
        rec.total_writes,
        len(rec.states) - 1,
        time.monotonic() - start,
    )
    with capsys.disabled():
        print("\n" + line)
    # Power loss lands on either side of a commit's root pointer: both the
    # last synced state and a newer one are seen, in the random modes too.
    for mode in ("tear_last", "reorder"):
        gens = {(o.generation == o.floor) for o in outcomes if o.crash.mode == mode}
        assert gens == {True, False}, mode


def _random_points() -> int:
    if os.environ.get("DC_CRASH_POINTS"):
        return int(os.environ["DC_CRASH_POINTS"])
    return SLOW_POINTS if os.environ.get("DC_SLOW_TESTS") else DEFAULT_RANDOM_POINTS


def test_random_workloads_crash_points(capsys: pytest.CaptureFixture[str]) -> None:
    """Seeded random workloads (some with two engine threads), random crash
    points, modes and process deaths; a failure names its workload seed."""
    start = time.monotonic()
    target = _random_points()
    first = seed = int(os.environ.get("DC_CRASH_SEED", "1"))
    outcomes: list[Outcome] = []
    writes = commits = 0
    while len(outcomes) < target:
        rng = random.Random(seed)
        threads = rng.choice([1, 1, 2])
        rec = record(random_workload(seed, rng.randint(10, 120)), threads)
        writes += rec.total_writes
        commits += len(rec.states) - 1
        count = min(POINTS_PER_RANDOM_WORKLOAD, rec.total_writes, target - len(outcomes))
        for n in rng.sample(range(1, rec.total_writes + 1), count):
            die = rng.randint(-1, crash_op(rec, n) - 1) if rng.random() < 0.3 else -1
            crash = Crash(n, rng.choice(MODES), rng.random() < 0.3, rng.getrandbits(64), die, seed)
            try:
                outcomes.append(crash_run(rec, crash, threads))
            except AssertionError as exc:
                raise AssertionError(f"workload seed {seed} (threads {threads}): {exc}") from exc
        seed += 1
    line = summary(
        f"crash (random workloads, seeds {first}..{seed - 1})",
        outcomes,
        writes,
        commits,
        time.monotonic() - start,
    )
    with capsys.disabled():
        print("\n" + line)
