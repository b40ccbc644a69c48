"""HKDF-SHA256 in C, checked against RFC 5869 and the `cryptography` package."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

import doublecrypt
from doublecrypt import errors


def reference_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)


def test_rfc5869_case_1() -> None:
    okm = doublecrypt.hkdf_sha256(
        b"\x0b" * 22, salt=bytes(range(13)), info=bytes(range(0xF0, 0xFA)), length=42
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@given(
    ikm=st.binary(max_size=100),
    salt=st.binary(max_size=100),
    info=st.binary(max_size=100),
    length=st.integers(1, 8160),
)
def test_matches_cryptography(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    assert doublecrypt.hkdf_sha256(ikm, salt=salt, info=info, length=length) == reference_hkdf(
        ikm, salt, info, length
    )


@pytest.mark.parametrize(
    ("purpose", "label"),
    [
        (doublecrypt.SUBKEY_BLOCK_ENCRYPTION, b"block-encryption"),
        (doublecrypt.SUBKEY_ROOT_MAC, b"root-pointer-mac"),
        (doublecrypt.SUBKEY_SERVER_AUTH, b"server-auth-token"),
    ],
)
def test_subkeys_are_the_documented_hkdf(purpose: int, label: bytes) -> None:
    master = bytes(range(32))
    expected = reference_hkdf(master, b"doublecrypt-v2", label, 32)
    assert bytes(doublecrypt.derive_subkey(master, purpose)) == expected


def test_bad_arguments() -> None:
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.derive_subkey(b"short", doublecrypt.SUBKEY_ROOT_MAC)
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.derive_subkey(bytes(32), 0)
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.hkdf_sha256(b"x", length=8161)
    with pytest.raises(errors.InvalidArgumentError):
        doublecrypt.hkdf_sha256(b"x", length=0)
