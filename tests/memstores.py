"""Test helpers: Python block stores that outlive a mount."""

from __future__ import annotations

import doublecrypt


class DictStore(doublecrypt.CustomStore):
    """Blocks kept in a dict shared between mounts (never-written blocks read
    as zeros). Counts calls so tests can check batching."""

    def __init__(self, blocks: dict[int, bytes], block_size: int, total_blocks: int) -> None:
        self.blocks = blocks
        self.reads = 0
        self.writes = 0
        self.syncs = 0
        super().__init__(block_size, total_blocks)

    def read_into(self, ids: list[int], out: memoryview) -> None:
        self.reads += 1
        bs = self.backend_block_size
        for i, block in enumerate(ids):
            out[i * bs : (i + 1) * bs] = self.blocks.get(block, bytes(bs))

    def write_from(self, ids: list[int], data: memoryview) -> None:
        self.writes += 1
        bs = self.backend_block_size
        for i, block in enumerate(ids):
            self.blocks[block] = bytes(data[i * bs : (i + 1) * bs])

    def flush(self) -> None:
        self.syncs += 1
