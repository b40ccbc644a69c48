"""Write-behind for sequential writers: kernel requests gathered into
chunk-aligned engine writes.

The kernel hands a writer's data over in requests of at most 1 MiB that do
not line up with the volume's data chunks, and every engine write is a
commit: each request would re-encrypt the chunk it shares with the next and
write the metadata path again. One pending buffer per mount collects
contiguous writes to one open file and gives them to the engine a window of
whole chunks at a time.

Every other operation flushes the buffer first, so nothing else ever sees
the volume without the pending bytes. A failure while flushing (ENOSPC) is
kept on the open file and reported by its next write, flush (close) or
fsync, as NFS does, not by the unrelated operation that happened to flush.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from typing_extensions import Buffer

from .openfile import OpenFile

__all__ = ["WriteBehind"]

WINDOW_CHUNKS = 64
"""Flush once this many data chunks are pending: FileSystem.open's buffer."""


@dataclass
class _Pending:
    handle: OpenFile
    path: str
    start: int
    data: bytearray = field(default_factory=bytearray)

    @property
    def end(self) -> int:
        return self.start + len(self.data)


class WriteBehind:
    """The one pending buffer of a mount."""

    def __init__(self, chunk_size: int) -> None:
        self._chunk_size = chunk_size
        self._lock = threading.Lock()
        self._pending: _Pending | None = None

    def write(self, handle: OpenFile, path: str, data: Buffer, offset: int) -> bool:
        """Take ``data`` (written at ``offset`` through ``handle``); returns
        whether anything reached the engine."""
        handle.raise_deferred_error()
        with self._lock:
            pending = self._pending
            flushed = False
            if pending is not None and not (
                pending.handle is handle and pending.path == path and pending.end == offset
            ):
                flushed = self._flush_locked()
                pending = None
            if pending is None:
                pending = self._pending = _Pending(handle, path, offset)
            pending.data += data
            window = WINDOW_CHUNKS * self._chunk_size
            if len(pending.data) >= window:
                # Whole chunks go now; the tail waits for the next request.
                aligned_end = pending.end - pending.end % self._chunk_size
                flushed = self._flush_locked(upto=max(aligned_end, pending.start + window))
            return flushed

    def flush(self) -> bool:
        """Give every pending byte to the engine; returns whether there were any."""
        if self._pending is None:  # the common case, without the lock
            return False
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self, upto: int | None = None) -> bool:
        pending = self._pending
        if pending is None or not pending.data:
            self._pending = None
            return False
        count = len(pending.data) if upto is None else min(upto - pending.start, len(pending.data))
        try:
            with memoryview(pending.data) as view:
                pending.handle.write(pending.path, view[:count], pending.start)
        except Exception as exc:
            pending.handle.defer_error(exc)  # for the writer, not for our caller
            self._pending = None
            return True
        del pending.data[:count]
        pending.start += count
        if not pending.data:
            self._pending = None
        return True

    def forget(self, handle: OpenFile) -> None:
        """Drop what ``handle`` has pending (after a failure it reported)."""
        with self._lock:
            if self._pending is not None and self._pending.handle is handle:
                self._pending = None
