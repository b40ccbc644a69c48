"""A strict decoder for the postcard encoding of doublecrypt-core (v1) objects.

doublecrypt-core serialises its on-disk structs with serde + postcard 1.x. The
v1 model uses only these wire forms:

* ``u8``: one raw byte.
* ``u32`` / ``u64``: unsigned LEB128 varints, at most 5 / 10 bytes.
* ``[u8; N]``: N raw bytes, no length.
* ``String`` and ``Vec<T>``: a varint count, then the items (UTF-8 bytes for
  a string).
* unit-only enums: a varint of the **0-based variant position** (serde
  ignores the Rust discriminants ``= 1``, ``= 2``...).
* structs: their fields back to back in declaration order; a one-field
  struct (``ObjectRef``) is just its field.

v1 has no signed integers, options, booleans or floats, so there is no zigzag
decoding here.

This decoder is stricter than postcard itself, in ways a genuine v1 image
never notices: an overlong (non-minimal) varint, a varint that overflows its
type, an enum index past the last variant, a length running past the input,
invalid UTF-8, and bytes left over after the value (postcard ignores those;
the seed's objects never have any) are all rejected. Every failure raises
:class:`doublecrypt.errors.CorruptionError`, never anything else.
"""

from __future__ import annotations

from typing_extensions import Buffer

from ..errors import CorruptionError

__all__ = ["PostcardReader"]

U32_VARINT_MAX_BYTES = 5
U64_VARINT_MAX_BYTES = 10
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1


class PostcardReader:
    """Reads one postcard value from ``data``, field by field.

    ``what`` names the object being decoded, for error messages. Call
    :meth:`finish` after the last field: it rejects trailing bytes."""

    def __init__(self, data: Buffer, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def fail(self, reason: str) -> CorruptionError:
        """The error for a malformed value (returned, so callers ``raise`` it)."""
        return CorruptionError(f"doublecrypt-core {self._what}: {reason} (at byte {self._pos})")

    def _varint(self, max_bytes: int, max_value: int, type_name: str) -> int:
        value = 0
        for index in range(max_bytes):
            if self._pos >= len(self._data):
                raise self.fail(f"{type_name} varint runs past the end")
            byte = self._data[self._pos]
            self._pos += 1
            value |= (byte & 0x7F) << (7 * index)
            if byte & 0x80 == 0:
                # A final zero byte after others adds nothing: a longer
                # spelling of a smaller number, which postcard never writes.
                if byte == 0 and index > 0:
                    raise self.fail(f"overlong {type_name} varint")
                if value > max_value:
                    raise self.fail(f"{type_name} varint overflows")
                return value
        raise self.fail(f"{type_name} varint longer than {max_bytes} bytes")

    def u8(self) -> int:
        if self._pos >= len(self._data):
            raise self.fail("u8 runs past the end")
        byte = self._data[self._pos]
        self._pos += 1
        return byte

    def u32(self) -> int:
        return self._varint(U32_VARINT_MAX_BYTES, U32_MAX, "u32")

    def u64(self) -> int:
        return self._varint(U64_VARINT_MAX_BYTES, U64_MAX, "u64")

    def fixed_bytes(self, count: int) -> bytes:
        """``[u8; count]``: raw bytes without a length."""
        if count > self.remaining:
            raise self.fail(f"{count}-byte array runs past the end")
        out = self._data[self._pos : self._pos + count]
        self._pos += count
        return out

    def byte_seq(self) -> bytes:
        """``Vec<u8>``: a varint length, then that many bytes."""
        length = self.u64()
        if length > self.remaining:
            raise self.fail(f"byte sequence of {length} bytes runs past the end")
        return self.fixed_bytes(length)

    def string(self) -> str:
        raw = self.byte_seq()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("string is not valid UTF-8") from None

    def enum_index(self, variants: int, enum_name: str) -> int:
        """A unit enum's 0-based variant index, checked against ``variants``."""
        index = self.u32()
        if index >= variants:
            raise self.fail(f"unknown {enum_name} variant {index} (it has {variants})")
        return index

    def seq_len(self, min_item_bytes: int, item_name: str) -> int:
        """A ``Vec<T>`` count, bounded by the bytes left (each item takes at
        least ``min_item_bytes``), so a forged count cannot make a caller
        loop or allocate beyond the input."""
        count = self.u64()
        if count * min_item_bytes > self.remaining:
            raise self.fail(f"{count} {item_name} entries cannot fit in {self.remaining} bytes")
        return count

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise self.fail(f"{self.remaining} unexpected trailing bytes")
