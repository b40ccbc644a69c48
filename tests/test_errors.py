"""The exception hierarchy and its one mapping from C status codes."""

from __future__ import annotations

import errno

import pytest

from doublecrypt import _lowlevel, errors


@pytest.mark.parametrize(
    ("status", "cls", "builtin", "code"),
    [
        (-1, errors.NotFoundError, FileNotFoundError, errno.ENOENT),
        (-2, errors.AlreadyExistsError, FileExistsError, errno.EEXIST),
        (-3, errors.NoSpaceError, OSError, errno.ENOSPC),
        (-4, errors.InvalidArgumentError, ValueError, None),
        (-6, errors.StorageIOError, OSError, errno.EIO),
        (-10, errors.NotAFileError, IsADirectoryError, errno.EISDIR),
        (-11, errors.NotADirectoryError, NotADirectoryError, errno.ENOTDIR),
        (-12, errors.DirectoryNotEmptyError, OSError, errno.ENOTEMPTY),
        (-13, errors.NameTooLongError, OSError, errno.ENAMETOOLONG),
        (-14, errors.OutOfMemoryError, MemoryError, None),
        (-18, errors.ReadOnlyError, OSError, errno.EROFS),
    ],
)
def test_status_maps_to_builtin_compatible_error(
    status: int, cls: type[Exception], builtin: type[Exception], code: int | None
) -> None:
    with pytest.raises(cls) as info:
        _lowlevel.check(status, path="/some/path")
    err = info.value
    assert isinstance(err, errors.DoubleCryptError)
    assert isinstance(err, builtin)
    assert err.status == status
    if code is not None:
        assert isinstance(err, OSError)
        assert err.errno == code
        assert err.filename == "/some/path"


def test_every_c_status_has_a_class_and_message() -> None:
    for status in range(-1, -19, -1):
        with pytest.raises(errors.DoubleCryptError) as info:
            _lowlevel.check(status)
        assert type(info.value) is not errors.DoubleCryptError
        assert info.value.status == status
        assert str(info.value) != "unknown error"


def test_unknown_status_is_internal_error() -> None:
    with pytest.raises(errors.InternalError, match="unknown error"):
        _lowlevel.check(-9999)


def test_success_passes_through() -> None:
    assert _lowlevel.check(0) == 0
    assert _lowlevel.check(5) == 5
