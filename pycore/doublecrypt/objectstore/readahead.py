"""Sequential reads as parallel requests.

The engine reads a file's data one block per call, so on its own an object
store would see one GET at a time however many may run at once. When
single-block reads come in order, this asks for the blocks that follow too,
on the volume's request pool, in a window that doubles up to ``max_blocks``;
the next reads take their results. A read out of order, a write to a fetched
block, or :meth:`forget` drops what was fetched ahead.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["ReadAhead"]

Fetch = Callable[[int], bytes | None]  # a block's bytes, None if never written


class ReadAhead:
    def __init__(
        self, pool: ThreadPoolExecutor, fetch: Fetch, total_blocks: int, max_blocks: int
    ) -> None:
        self._pool = pool
        self._fetch = fetch
        self._total = total_blocks
        self._max = max(1, max_blocks)
        self._window = 1
        self._next = -1  # the block a sequential reader asks for next
        self._ahead: dict[int, Future[bytes | None]] = {}

    def read(self, block: int) -> bytes | None:
        """Block ``block``: from a fetch ahead, or fetched now."""
        future = self._ahead.pop(block, None)
        # The engine's codec threads share out a batch of blocks, so reads
        # arrive only roughly in order: anything from a window behind to one
        # past the last counts as sequential.
        sequential = future is not None or self._next - self._max <= block <= self._next + 1
        if sequential:
            self._next = max(self._next, block + 1)
            for passed in [b for b in self._ahead if b < block - self._max]:
                self._ahead.pop(passed).cancel()
            self._schedule(self._next)
        else:  # stop guessing
            self.forget()
            self._window = 1
            self._next = block + 1
        return future.result() if future is not None else self._fetch(block)

    def _schedule(self, start: int) -> None:
        """Keep the ``window`` blocks from ``start`` on requested."""
        self._window = min(self._max, self._window * 2)
        end = min(self._total, start + self._window)
        for block in range(start, end):
            if block not in self._ahead:
                self._ahead[block] = self._pool.submit(self._fetch, block)

    def written(self, blocks: list[int]) -> None:
        for block in blocks:
            future = self._ahead.pop(block, None)
            if future is not None:
                future.cancel()

    def forget(self) -> None:
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()
