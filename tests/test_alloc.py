"""The block allocator against a Python set model (hypothesis stateful)."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from doublecrypt import Allocator, errors

FIRST = 3


class AllocatorModel(RuleBasedStateMachine):
    """Model: `used` (allocated, incl. deferred), `deferred` (waiting for a
    durable commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.alloc: Allocator | None = None
        self.used: set[int] = set()
        self.deferred: set[int] = set()

    @rule(total=st.integers(FIRST + 1, 300))
    @precondition(lambda self: self.alloc is None)
    def create(self, total: int) -> None:
        self.total = total
        self.alloc = Allocator(total)

    def free_set(self) -> set[int]:
        return set(range(FIRST, self.total)) - self.used

    @rule()
    @precondition(lambda self: self.alloc is not None)
    def alloc_one(self) -> None:
        assert self.alloc is not None
        if not self.free_set():
            with pytest.raises(errors.NoSpaceError):
                self.alloc.alloc()
            return
        block = self.alloc.alloc()
        assert block in self.free_set()
        self.used.add(block)

    @rule(count=st.integers(1, 40))
    @precondition(lambda self: self.alloc is not None)
    def alloc_run(self, count: int) -> None:
        assert self.alloc is not None
        free = self.free_set()
        possible = any(all(b + i in free for i in range(count)) for b in free)
        if not possible:
            with pytest.raises(errors.NoSpaceError):
                self.alloc.alloc_run(count)
            return
        first = self.alloc.alloc_run(count)
        run = set(range(first, first + count))
        assert run <= free
        self.used |= run

    @rule(data=st.data(), deferred=st.booleans())
    @precondition(lambda self: self.alloc is not None and bool(self.used - self.deferred))
    def release(self, data: st.DataObject, deferred: bool) -> None:
        assert self.alloc is not None
        block = data.draw(st.sampled_from(sorted(self.used - self.deferred)))
        if deferred:
            self.alloc.release_deferred(block)
            self.deferred.add(block)
        else:
            self.alloc.release(block)
            self.used.discard(block)

    @rule(block=st.integers(0, 400), deferred=st.booleans())
    @precondition(lambda self: self.alloc is not None)
    def release_invalid(self, block: int, deferred: bool) -> None:
        assert self.alloc is not None
        if block in self.used and block not in self.deferred:
            return
        with pytest.raises(errors.InvalidArgumentError):
            if deferred:
                self.alloc.release_deferred(block)
            else:
                self.alloc.release(block)

    @rule()
    @precondition(lambda self: self.alloc is not None)
    def commit_durable(self) -> None:
        assert self.alloc is not None
        self.alloc.commit_durable()
        self.used -= self.deferred
        self.deferred.clear()

    @rule()
    @precondition(lambda self: self.alloc is not None)
    def abort(self) -> None:
        assert self.alloc is not None
        self.alloc.abort_deferred()
        self.deferred.clear()

    @rule(data=st.data())
    @precondition(lambda self: self.alloc is not None)
    def rebuild(self, data: st.DataObject) -> None:
        assert self.alloc is not None
        keep = data.draw(st.lists(st.integers(FIRST, self.total - 1), max_size=30))
        self.alloc.rebuild(keep)
        self.used = set(keep)
        self.deferred.clear()

    @rule(block=st.integers(0, 400))
    @precondition(lambda self: self.alloc is not None)
    def mark_used(self, block: int) -> None:
        assert self.alloc is not None
        if not FIRST <= block < self.total:
            with pytest.raises(errors.InvalidArgumentError):
                self.alloc.mark_used(block)
        elif block in self.used:
            with pytest.raises(errors.AlreadyExistsError):
                self.alloc.mark_used(block)
        else:
            self.alloc.mark_used(block)
            self.used.add(block)

    @invariant()
    def counts_match(self) -> None:
        if self.alloc is None:
            return
        assert self.alloc.total_blocks == self.total
        assert self.alloc.free_blocks == len(self.free_set())
        assert self.alloc.deferred_blocks == len(self.deferred)

    @invariant()
    def bitmap_matches(self) -> None:
        if self.alloc is None:
            return
        for block in range(self.total + 2):
            expected = block < FIRST or block in self.used
            if block >= self.total:
                expected = False
            assert self.alloc.is_used(block) == expected, block


TestAllocator = AllocatorModel.TestCase


def test_too_small() -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Allocator(3)
    with pytest.raises(errors.InvalidArgumentError):
        Allocator(4).alloc_run(0)


def test_large_volume_is_cheap() -> None:
    # 2^32 blocks of 64 KiB = 256 TiB: 1 GiB of bitmap is too much, so stay at
    # 2^28 blocks (32 MiB of bitmaps) and check allocation stays sequential.
    alloc = Allocator(1 << 28)
    assert [alloc.alloc() for _ in range(5)] == [3, 4, 5, 6, 7]
    assert alloc.alloc_run(1000) == 8
    assert alloc.free_blocks == (1 << 28) - 3 - 1005
