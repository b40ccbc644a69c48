"""The filesystem against an in-memory model (hypothesis stateful): random
operations, remounts, and transactions that commit or abort."""

from __future__ import annotations

import os
import posixpath

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import doublecrypt
from doublecrypt import errors
from fsmodel import Model
from memstores import DictStore

KEY = bytes(range(32))
NAMES = st.sampled_from(["a", "b", "c", "dir", "é", "x" * 255])
DATA = st.binary(max_size=9000)


class FileSystemMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[int, bytes] = {}
        self.fs = doublecrypt.FileSystem.format(self.make_store(), KEY, threads=2)
        self.model = Model()
        self.committed: Model | None = None  # model at begin(), while in a transaction

    def make_store(self) -> doublecrypt.Store:
        """The volume's store, for formatting and for every remount (a
        subclass runs the same machine on another store)."""
        return DictStore(self.blocks, 4096, 2048)

    def teardown(self) -> None:
        self.fs.close()

    def paths(self) -> list[str]:
        return sorted(self.model.dirs | set(self.model.files))

    @rule(data=st.data(), name=NAMES)
    def mkdir(self, data: st.DataObject, name: str) -> None:
        parent = data.draw(st.sampled_from(sorted(self.model.dirs)))
        path = posixpath.join(parent, name)
        if self.model.exists(path):
            with pytest.raises(errors.AlreadyExistsError):
                self.fs.mkdir(path)
        else:
            self.fs.mkdir(path)
            self.model.dirs.add(path)

    @rule(data=st.data(), name=NAMES, content=DATA)
    def write_file(self, data: st.DataObject, name: str, content: bytes) -> None:
        parent = data.draw(st.sampled_from(sorted(self.model.dirs)))
        path = posixpath.join(parent, name)
        if path in self.model.dirs:
            with pytest.raises(errors.NotAFileError):
                self.fs.write_bytes(path, content)
            return
        self.fs.write_bytes(path, content)
        self.model.files[path] = content

    @rule(
        data=st.data(), offset=st.integers(0, 70000), content=st.binary(min_size=1, max_size=5000)
    )
    @precondition(lambda self: bool(self.model.files))
    def write_at(self, data: st.DataObject, offset: int, content: bytes) -> None:
        path = data.draw(st.sampled_from(sorted(self.model.files)))
        with self.fs.open(path, "r+b") as f:
            f.seek(offset)
            f.write(content)
        old = self.model.files[path]
        new = bytearray(old.ljust(offset, b"\0"))
        new[offset : offset + len(content)] = content
        self.model.files[path] = bytes(new)

    @rule(data=st.data(), size=st.integers(0, 20000))
    @precondition(lambda self: bool(self.model.files))
    def truncate(self, data: st.DataObject, size: int) -> None:
        path = data.draw(st.sampled_from(sorted(self.model.files)))
        self.fs.truncate(path, size)
        self.model.files[path] = self.model.files[path][:size].ljust(size, b"\0")

    @rule(data=st.data())
    @precondition(lambda self: len(self.paths()) > 1)
    def remove(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from([p for p in self.paths() if p != "/"]))
        if path in self.model.files:
            self.fs.remove(path)
            del self.model.files[path]
        elif self.model.children(path):
            with pytest.raises(errors.DirectoryNotEmptyError):
                self.fs.rmdir(path)
        else:
            self.fs.rmdir(path)
            self.model.dirs.discard(path)

    @rule(data=st.data(), name=NAMES)
    @precondition(lambda self: len(self.paths()) > 1)
    def rename(self, data: st.DataObject, name: str) -> None:
        src = data.draw(st.sampled_from([p for p in self.paths() if p != "/"]))
        parent = data.draw(st.sampled_from(sorted(self.model.dirs)))
        dst = posixpath.join(parent, name)
        m = self.model
        if dst == src:
            self.fs.rename(src, dst)
            return
        if src in m.dirs and (dst + "/").startswith(src + "/"):
            with pytest.raises(errors.InvalidArgumentError):
                self.fs.rename(src, dst)
            return
        if m.exists(dst):
            if src in m.files and dst in m.dirs:
                with pytest.raises(errors.NotAFileError):
                    self.fs.rename(src, dst)
                return
            if src in m.dirs and dst in m.files:
                with pytest.raises(errors.NotADirectoryError):
                    self.fs.rename(src, dst)
                return
            if src in m.dirs and m.children(dst):
                with pytest.raises(errors.DirectoryNotEmptyError):
                    self.fs.rename(src, dst)
                return
        self.fs.rename(src, dst)
        m.files.pop(dst, None)
        m.dirs.discard(dst)
        if src in m.files:
            m.files[dst] = m.files.pop(src)
        else:
            moved = {p for p in m.dirs if p == src or p.startswith(src + "/")}
            m.dirs -= moved
            m.dirs |= {dst + p[len(src) :] for p in moved}
            for p in [p for p in m.files if p.startswith(src + "/")]:
                m.files[dst + p[len(src) :]] = m.files.pop(p)

    @rule()
    @precondition(lambda self: self.committed is None)
    def begin(self) -> None:
        self.fs._h.begin()
        self.committed = self.model.copy()

    @rule(commit=st.booleans())
    @precondition(lambda self: self.committed is not None)
    def end(self, commit: bool) -> None:
        if commit:
            self.fs._h.commit()
        else:
            self.fs._h.abort()
            assert self.committed is not None
            self.model = self.committed
        self.committed = None

    @rule()
    @precondition(lambda self: self.committed is None)
    def remount(self) -> None:
        self.fs.fsck()
        self.fs.close()
        self.fs = doublecrypt.FileSystem(self.make_store(), KEY)
        self.fs.fsck()

    @invariant()
    def matches_model(self) -> None:
        for d in sorted(self.model.dirs):
            assert self.fs.listdir(d) == self.model.children(d), d
        for path, content in self.model.files.items():
            assert self.fs.read_bytes(path) == content, path
            assert self.fs.stat(path).size == len(content)


FileSystemMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("DC_FS_EXAMPLES", "150")), stateful_step_count=40, deadline=None
)
TestFileSystem = FileSystemMachine.TestCase
