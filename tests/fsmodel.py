"""The in-memory model of a volume the filesystem tests compare against:
directories and file contents, and how each recorded operation changes them
(tests/test_fs_stateful.py, tests/test_crash.py, tests/test_remote.py)."""

from __future__ import annotations

import posixpath
from typing import Any

# An operation as tests/test_crash.py records it: ("mkdir", path), ("rmdir",
# path), ("write", path, data), ("pwrite", path, offset, data), ("truncate",
# path, size), ("rename", src, dst), ("remove", path), ("txn", (op, ...)),
# ("sync",).
Op = tuple[Any, ...]
State = tuple[frozenset[str], frozenset[tuple[str, bytes]]]


class Model:
    """dirs: every directory path ("/" included); files: path -> content."""

    def __init__(self) -> None:
        self.dirs: set[str] = {"/"}
        self.files: dict[str, bytes] = {}

    def copy(self) -> Model:
        m = Model()
        m.dirs = set(self.dirs)
        m.files = dict(self.files)
        return m

    def state(self) -> State:
        return frozenset(self.dirs), frozenset(self.files.items())

    def exists(self, path: str) -> bool:
        return path in self.dirs or path in self.files

    def children(self, d: str) -> list[str]:
        """The names directly in directory ``d``, sorted."""
        items = [p for p in [*self.dirs, *self.files] if p != "/" and posixpath.dirname(p) == d]
        return sorted(posixpath.basename(p) for p in items)

    def is_empty_dir(self, path: str) -> bool:
        return not self.children(path)

    def apply(self, op: Op) -> None:
        kind = op[0]
        if kind == "mkdir":
            self.dirs.add(op[1])
        elif kind == "rmdir":
            self.dirs.remove(op[1])
        elif kind == "write":
            self.files[op[1]] = op[2]
        elif kind == "pwrite":
            _, path, offset, data = op
            new = bytearray(self.files[path].ljust(offset, b"\0"))
            new[offset : offset + len(data)] = data
            self.files[path] = bytes(new)
        elif kind == "truncate":
            _, path, size = op
            self.files[path] = self.files[path][:size].ljust(size, b"\0")
        elif kind == "rename":
            _, src, dst = op
            if src in self.files:
                self.files[dst] = self.files.pop(src)
            else:
                moved = {p for p in self.dirs if p == src or p.startswith(src + "/")}
                self.dirs -= moved
                self.dirs |= {dst + p[len(src) :] for p in moved}
                for p in [p for p in self.files if p.startswith(src + "/")]:
                    self.files[dst + p[len(src) :]] = self.files.pop(p)
        elif kind == "remove":
            del self.files[op[1]]
        elif kind == "txn":
            for sub in op[1]:
                self.apply(sub)
        elif kind != "sync":
            raise AssertionError(f"unknown op {op!r}")
