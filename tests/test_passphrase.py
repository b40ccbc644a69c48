"""Passphrases: key slots wrap the random master key (Argon2id + AEAD)."""

from __future__ import annotations

from pathlib import Path

import pytest

import doublecrypt
from doublecrypt import KdfParams, errors

FAST = KdfParams.minimum()


def make(path: Path, passphrase: str = "correct horse") -> None:
    with doublecrypt.open_image(
        path, passphrase=passphrase, create=True, size=1 << 20, block_size=4096, kdf=FAST
    ) as fs:
        fs.write_bytes("/secret.txt", b"behind a passphrase")


def test_create_and_open_with_a_passphrase(tmp_path: Path) -> None:
    image = tmp_path / "p.img"
    make(image)
    info = doublecrypt.image_info(image)
    assert info.block_size == 4096 and [s.index for s in info.key_slots] == [0]
    assert info.key_slots[0].kdf == FAST
    with doublecrypt.open_image(image, passphrase="correct horse") as fs:
        assert fs.read_bytes("/secret.txt") == b"behind a passphrase"
    key = doublecrypt.unlock_image(image, "correct horse")
    with doublecrypt.open_image(image, key=key) as fs:  # the raw key works too
        assert fs.read_bytes("/secret.txt") == b"behind a passphrase"


def test_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    image = tmp_path / "p.img"
    make(image)
    before = image.read_bytes()
    with pytest.raises(errors.AuthenticationError, match="wrong passphrase"):
        doublecrypt.open_image(image, passphrase="battery staple")
    assert image.read_bytes() == before


def test_several_slots_and_passphrase_change(tmp_path: Path) -> None:
    image = tmp_path / "p.img"
    make(image, "first")
    with doublecrypt.open_image(image, passphrase="first") as fs:
        assert fs.add_passphrase("second", FAST) == 1
        new = fs.change_passphrase("first", "third", FAST)
        assert [s.index for s in fs.key_slots()] == sorted([1, new])
        with pytest.raises(errors.AuthenticationError):
            fs.change_passphrase("nope", "x", FAST)
    with pytest.raises(errors.AuthenticationError):
        doublecrypt.open_image(image, passphrase="first")
    for p in ("second", "third"):
        with doublecrypt.open_image(image, passphrase=p) as fs:
            assert fs.read_bytes("/secret.txt") == b"behind a passphrase"


def test_slot_limits(tmp_path: Path) -> None:
    image = tmp_path / "p.img"
    make(image)
    with doublecrypt.open_image(image, passphrase="correct horse") as fs:
        for i in range(1, 8):
            assert fs.add_passphrase(f"p{i}", FAST) == i
        with pytest.raises(errors.NoSpaceError):
            fs.add_passphrase("one too many", FAST)
        for i in range(1, 8):
            fs.remove_key_slot(i)
        with pytest.raises(errors.InvalidArgumentError, match="last"):
            fs.remove_key_slot(0)
        with pytest.raises(errors.NotFoundError):
            fs.remove_key_slot(3)
        with pytest.raises(errors.InvalidArgumentError):
            fs.add_passphrase("", FAST)
        with pytest.raises(errors.InvalidArgumentError):
            fs.add_passphrase("x", KdfParams(0, 8192))


def test_tampered_slot_fails_authentication(tmp_path: Path) -> None:
    image = tmp_path / "p.img"
    make(image)
    data = bytearray(image.read_bytes())
    data[512 + 30] ^= 1  # the slot's salt, covered by its AEAD
    image.write_bytes(bytes(data))
    with pytest.raises(errors.AuthenticationError):
        doublecrypt.open_image(image, passphrase="correct horse")


def test_key_only_volume_has_no_slots(tmp_path: Path) -> None:
    image = tmp_path / "k.img"
    with doublecrypt.open_image(image, key=bytes(32), create=True, size=1 << 20, block_size=4096):
        pass
    assert doublecrypt.image_info(image).key_slots == []
    with pytest.raises(errors.NotFoundError, match="no passphrase"):
        doublecrypt.open_image(image, passphrase="anything")
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.open_image(image, key=bytes(32), passphrase="both")
