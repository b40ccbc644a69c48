"""One open file of a mount: positioned reads and writes through a RawFile,
with a read-ahead window for longer reads.

The kernel reads a file in requests of at most 1 MiB (usually 128 KiB, its
read-ahead size) that do not line up with the volume's data chunks, so each
request would decrypt the chunks at both of its ends again. From its
second read on, a handle fetches a whole window of chunks in one engine call
(as FileSystem.open's buffer does) and serves the following requests from
it. The window is tagged with the mount's change counter and dropped after
any change to the volume, so it never serves stale data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from typing_extensions import Buffer

from ..api import FileSystem

__all__ = ["OpenFile"]

WINDOW_CHUNKS = 64
"""Read-ahead window in data chunks: the FileSystem.open buffer size."""


@dataclass(frozen=True)
class _Window:
    path: str
    generation: int
    start: int
    data: bytearray  # never changed once made: requests are views of it
    to_eof: bool  # the engine returned less than asked: data ends at EOF

    def covers(self, path: str, generation: int, offset: int, size: int) -> bool:
        if path != self.path or generation != self.generation or offset < self.start:
            return False
        return self.to_eof or offset + size <= self.start + len(self.data)

    def slice(self, offset: int, size: int) -> memoryview:
        begin = offset - self.start
        return memoryview(self.data)[begin : begin + size]


class OpenFile:
    """An unbuffered RawFile of the volume and the lock that keeps its seek
    and read/write together. ``generation`` gives the mount's change counter."""

    def __init__(
        self,
        fs: FileSystem,
        path: str,
        *,
        writable: bool,
        chunk_size: int,
        generation: Callable[[], int],
    ) -> None:
        self._fs = fs
        self._mode = "r+b" if writable else "rb"
        self._chunk_size = chunk_size
        self._generation = generation
        self._lock = threading.Lock()
        self._raw = self._open(path)
        self._has_read = False
        self._deferred_error: BaseException | None = None
        self._window: _Window | None = None

    def _open(self, path: str) -> IO[bytes]:
        raw: IO[bytes] = self._fs.open(path, self._mode, buffering=0)
        return raw

    def _at(self, path: str, offset: int) -> IO[bytes]:
        if self._raw.name != path:  # renamed since it was opened
            self._raw.close()
            self._raw = self._open(path)
        self._raw.seek(offset)
        return self._raw

    def _read_at(self, path: str, offset: int, size: int) -> tuple[bytearray, bool]:
        """Up to ``size`` bytes at ``offset``, and whether that reached EOF."""
        buffer = bytearray(size)
        got: int = self._at(path, offset).readinto(buffer)  # type: ignore[attr-defined]
        if got < size:
            del buffer[got:]
        return buffer, got < size

    def read(self, path: str, size: int, offset: int) -> bytearray | memoryview:
        with self._lock:
            # A file read in one request gets no window; the kernel sends the
            # requests of a longer read out of order from several threads.
            first_read = not self._has_read
            self._has_read = True
            # Read before the data: a change in between makes the window stale.
            generation = self._generation()
            window = self._window
            if window is not None and window.covers(path, generation, offset, size):
                return window.slice(offset, size)
            if first_read:
                return self._read_at(path, offset, size)[0]
            start = offset - offset % self._chunk_size
            length = max(WINDOW_CHUNKS * self._chunk_size, offset + size - start)
            data, to_eof = self._read_at(path, start, length)
            self._window = _Window(path, generation, start, data, to_eof)
            return self._window.slice(offset, size)

    def write(self, path: str, data: Buffer, offset: int) -> int:
        with self._lock:
            self._window = None
            return self._at(path, offset).write(data)

    def defer_error(self, exc: BaseException) -> None:
        """Keep a failure of buffered writes for this file's writer."""
        with self._lock:
            if self._deferred_error is None:
                self._deferred_error = exc

    def raise_deferred_error(self) -> None:
        """Report (once) a failure of this file's buffered writes."""
        with self._lock:
            exc, self._deferred_error = self._deferred_error, None
        if exc is not None:
            raise exc

    def close(self) -> None:
        with self._lock:
            self._window = None
            self._raw.close()
