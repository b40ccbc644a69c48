"""Standard file objects over a file inside a volume."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from typing_extensions import Buffer

from . import errors

if TYPE_CHECKING:
    from ._lowlevel.fs import FsHandle


class RawFile(io.RawIOBase):
    """Unbuffered binary access to one file of a volume (positioned reads
    and writes through the engine). Wrap it in io.Buffered* for buffering;
    :meth:`doublecrypt.FileSystem.open` does."""

    def __init__(
        self, fs: FsHandle, path: str, *, readable: bool, writable: bool, append: bool
    ) -> None:
        super().__init__()
        self._fs = fs
        self.name = path
        self._readable = readable
        self._writable = writable
        self._append = append
        self._pos = 0

    def readable(self) -> bool:
        return self._readable

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    def _require(self, ok: bool, what: str) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if not ok:
            raise io.UnsupportedOperation(f"file not open for {what}")

    def readinto(self, buffer: Buffer) -> int:
        self._require(self._readable, "reading")
        n = self._fs.readinto(self.name, self._pos, buffer)
        self._pos += n
        return n

    def readall(self) -> bytes:
        self._require(self._readable, "reading")
        size = self._fs.stat(self.name).size
        out = bytearray(max(0, size - self._pos))
        n = self._fs.readinto(self.name, self._pos, out) if out else 0
        self._pos += n
        return bytes(out[:n])

    def write(self, data: Buffer) -> int:
        self._require(self._writable, "writing")
        with memoryview(data) as view:
            nbytes = view.nbytes
        if self._append:
            self._pos = self._fs.stat(self.name).size
        self._fs.write(self.name, self._pos, data)
        self._pos += nbytes
        return nbytes

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._fs.stat(self.name).size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise errors.InvalidArgumentError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        self._require(self._writable, "writing")
        size = self._pos if size is None else size
        self._fs.truncate(self.name, size)
        return size

    def fileno(self) -> int:
        raise io.UnsupportedOperation("files inside a volume have no descriptor")
