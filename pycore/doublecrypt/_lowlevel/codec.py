"""Key derivation, the block codec, fast random bytes and the allocator."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from typing_extensions import Buffer

from .. import errors
from ._core import borrow, c_call, check, ffi, lib, u64_array

__all__ = [
    "Allocator",
    "Codec",
    "ObjectKind",
    "OpenedBatch",
    "derive_subkey",
    "hkdf_sha256",
    "random_bytes",
]


MASTER_KEY_BYTES: int = lib.dc_kdf_master_keybytes()
SUBKEY_BYTES: int = lib.dc_kdf_subkeybytes()
KEY_BYTES: int = lib.dc_codec_keybytes()
VOLUME_ID_BYTES: int = lib.dc_codec_volume_idbytes()
OVERHEAD_BYTES: int = lib.dc_codec_overheadbytes()
HEADER_BYTES: int = lib.dc_codec_headerbytes()
NONCE_BYTES: int = lib.dc_codec_noncebytes()
TAG_BYTES: int = lib.dc_codec_tagbytes()
MIN_BLOCK_SIZE: int = lib.dc_min_block_size()
MAX_BLOCK_SIZE: int = lib.dc_max_block_size()
DEFAULT_BLOCK_SIZE: int = lib.dc_default_block_size()
FORMAT_VERSION: int = lib.dc_format_version()
FIRST_DATA_BLOCK: int = lib.dc_first_data_block()


class ObjectKind(enum.IntEnum):
    """Object kinds sealed into blocks (values from ``doublecrypt/codec.h``)."""

    SUPERBLOCK = lib.DC_KIND_SUPERBLOCK
    INODE = lib.DC_KIND_INODE
    DIRECTORY = lib.DC_KIND_DIRECTORY
    EXTENT_MAP = lib.DC_KIND_EXTENT_MAP
    DATA = lib.DC_KIND_DATA


SUBKEY_BLOCK_ENCRYPTION: int = lib.DC_SUBKEY_BLOCK_ENCRYPTION
SUBKEY_ROOT_MAC: int = lib.DC_SUBKEY_ROOT_MAC
SUBKEY_SERVER_AUTH: int = lib.DC_SUBKEY_SERVER_AUTH


# Output buffers the C side fills completely need no zeroing first.
_uninitialized = ffi.new_allocator(should_clear_after_alloc=False)


def _output(nbytes: int) -> Any:
    """A fresh writable buffer of `nbytes` for C to fill."""
    return ffi.buffer(_uninitialized("unsigned char[]", max(nbytes, 1)), nbytes)


def _exact(name: str, nbytes: int, size: int) -> None:
    if nbytes != size:
        raise errors.InvalidArgumentError(f"{name} must be {size} bytes, got {nbytes}")


def hkdf_sha256(ikm: Buffer, *, salt: Buffer = b"", info: Buffer = b"", length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) as implemented by the C engine."""
    if not 1 <= length <= lib.DC_KDF_HKDF_MAX_OUTPUT:
        raise errors.InvalidArgumentError(f"length must be 1..{lib.DC_KDF_HKDF_MAX_OUTPUT}")
    out = ffi.new("unsigned char[]", length)
    with borrow(salt) as s, borrow(ikm) as i, borrow(info) as n:
        check(c_call(lib.dc_kdf_hkdf_sha256, out, length, *s, *i, *n))
    return bytes(ffi.buffer(out))


def derive_subkey(master_key: Buffer, purpose: int) -> bytearray:
    """The sub-key for ``purpose`` (a ``SUBKEY_*``) of a 32-byte master key.

    Returned as a bytearray so the caller can wipe it after use."""
    out = bytearray(SUBKEY_BYTES)
    with borrow(master_key) as (key, nbytes), borrow(out, writable=True) as (dst, _):
        _exact("master key", nbytes, MASTER_KEY_BYTES)
        check(c_call(lib.dc_kdf_derive_subkey, dst, purpose, key))
    return out


def subkey_label(purpose: int) -> str:
    label = c_call(lib.dc_kdf_subkey_label, purpose)
    if label == ffi.NULL:
        raise errors.InvalidArgumentError(f"unknown sub-key purpose {purpose}")
    return str(ffi.string(label).decode())


def random_bytes(length: int) -> bytes:
    """Random bytes from the engine's fast keystream generator."""
    if length < 0:
        raise errors.InvalidArgumentError("length must not be negative")
    out = ffi.new("unsigned char[]", max(length, 1))
    check(c_call(lib.dc_random_fill, out, length))
    return bytes(ffi.buffer(out, length))


def _kinds(kind: int | Buffer, count: int) -> Any:
    if isinstance(kind, int):
        if not 1 <= kind <= 255:
            raise errors.InvalidArgumentError(f"kind must be 1..255, got {kind}")
        return ffi.new("unsigned char[]", bytes([kind]) * count)
    kinds = bytes(kind)
    if len(kinds) != count:
        raise errors.InvalidArgumentError("one kind per block is required")
    return ffi.new("unsigned char[]", kinds)


class OpenedBatch:
    """Plaintexts of a batch open: one caller-visible buffer, item i at
    ``i * stride``; indexing gives a memoryview without copying."""

    __slots__ = ("_lens", "buffer", "stride")

    def __init__(self, buffer: memoryview, stride: int, lens: Any) -> None:
        self.buffer = memoryview(buffer)
        self.stride = stride
        self._lens = lens

    def __len__(self) -> int:
        return len(self._lens)

    def __getitem__(self, index: int) -> memoryview:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        start = index * self.stride
        return self.buffer[start : start + int(self._lens[index])]

    @property
    def lengths(self) -> list[int]:
        return [int(n) for n in self._lens]


class Codec:
    """The AEAD block codec of one volume (see ``include/doublecrypt/codec.h``).

    Thread-safe; batch calls use ``threads`` threads (0 = one per CPU)."""

    def __init__(
        self,
        key: Buffer,
        volume_id: Buffer,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        threads: int = 0,
    ) -> None:
        if threads < 0:
            raise errors.InvalidArgumentError("threads must not be negative")
        opts = ffi.new("dc_codec_options *")
        check(c_call(lib.dc_codec_options_init, opts))
        opts.block_size = block_size
        if threads > lib.DC_CODEC_MAX_THREADS:
            raise errors.InvalidArgumentError(f"threads must be 0..{lib.DC_CODEC_MAX_THREADS}")
        opts.threads = threads
        out = ffi.new("dc_codec **")
        with borrow(key) as (k, klen), borrow(volume_id) as (v, vlen):
            _exact("key", klen, KEY_BYTES)
            _exact("volume id", vlen, VOLUME_ID_BYTES)
            check(c_call(lib.dc_codec_new, out, k, v, opts))
        self._codec: Any = ffi.gc(out[0], lib.dc_codec_free)
        self.block_size: int = c_call(lib.dc_codec_block_size, self._codec)
        self.max_plaintext: int = c_call(lib.dc_codec_max_plaintext, self._codec)
        self.threads: int = c_call(lib.dc_codec_threads, self._codec)

    def close(self) -> None:
        """Wipe the key and stop the worker threads now (idempotent)."""
        if self._codec is not None:
            ffi.release(self._codec)
            self._codec = None

    def __enter__(self) -> Codec:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self) -> Any:
        if self._codec is None:
            raise errors.InvalidArgumentError("codec is closed")
        return self._codec

    def seal(self, block_id: int, kind: int, plaintext: Buffer) -> bytes:
        """Seal ``plaintext`` as object ``kind`` of block ``block_id``."""
        out = _uninitialized("unsigned char[]", self.block_size)
        with borrow(plaintext) as (buf, nbytes):
            check(c_call(lib.dc_codec_seal, self._handle(), out, block_id, kind, buf, nbytes))
        return bytes(ffi.buffer(out))

    def open(self, block_id: int, kind: int, block: Buffer) -> bytes:
        """Open a sealed block; AuthenticationError if anything is wrong."""
        out = _uninitialized("unsigned char[]", self.max_plaintext)
        length = ffi.new("size_t *", self.max_plaintext)
        with borrow(block) as (src, nbytes):
            _exact("block", nbytes, self.block_size)
            check(c_call(lib.dc_codec_open, self._handle(), out, length, block_id, kind, src))
        return bytes(ffi.buffer(out, length[0]))

    def seal_batch(
        self,
        block_ids: Sequence[int],
        kind: int | Buffer,
        plaintexts: Sequence[Buffer],
        out: Buffer | None = None,
    ) -> memoryview:
        """Seal many objects on the codec's threads into one buffer of
        ``len(block_ids) * block_size`` bytes (``out`` if given)."""
        count = len(block_ids)
        if len(plaintexts) != count:
            raise errors.InvalidArgumentError("one plaintext per block id is required")
        target = _output(count * self.block_size) if out is None else out
        kinds = _kinds(kind, count)
        # One from_buffer per plaintext, all released in `finally` (see
        # borrow() for why); a context manager per item costs ~2 us each.
        lent: list[Any] = []
        try:
            with borrow(target, writable=True) as (tbuf, tbytes):
                if tbytes != count * self.block_size:
                    raise errors.InvalidArgumentError(
                        "out must be a writable buffer of count*block_size"
                    )
                try:
                    for p in plaintexts:
                        lent.append(ffi.from_buffer(p))
                except (TypeError, BufferError) as exc:
                    raise errors.InvalidArgumentError("plaintexts must be buffers") from exc
                check(
                    c_call(
                        lib.dc_codec_seal_batch,
                        self._handle(),
                        tbuf,
                        count,
                        u64_array(block_ids),
                        kinds,
                        ffi.new("unsigned char *[]", lent),
                        ffi.new("size_t[]", [len(b) for b in lent]),
                    )
                )
        finally:
            for b in lent:
                ffi.release(b)
        return memoryview(target)

    def open_batch(
        self,
        block_ids: Sequence[int],
        kind: int | Buffer,
        blocks: Buffer,
        out: Buffer | None = None,
    ) -> OpenedBatch:
        """Open ``len(block_ids)`` consecutive blocks of ``blocks`` on the
        codec's threads. Plaintexts land in ``out`` (or a new buffer) with a
        stride of ``max_plaintext``. The first failing block's error is
        raised."""
        count = len(block_ids)
        stride = self.max_plaintext
        target = _output(count * stride) if out is None else out
        lens = ffi.new("size_t[]", count)
        kinds = _kinds(kind, count)
        with borrow(blocks) as (source, sbytes), borrow(target, writable=True) as (tbuf, tbytes):
            if sbytes != count * self.block_size:
                raise errors.InvalidArgumentError("blocks must hold exactly count*block_size bytes")
            if tbytes < count * stride:
                raise errors.InvalidArgumentError(
                    "out must be a writable buffer of count*max_plaintext"
                )
            check(
                c_call(
                    lib.dc_codec_open_batch,
                    self._handle(),
                    tbuf,
                    stride,
                    lens,
                    ffi.NULL,
                    count,
                    u64_array(block_ids),
                    kinds,
                    source,
                )
            )
        return OpenedBatch(memoryview(target), stride, lens)


class Allocator:
    """Bitmap block allocator with deferred frees (``doublecrypt/alloc.h``)."""

    def __init__(self, total_blocks: int) -> None:
        out = ffi.new("dc_allocator **")
        check(c_call(lib.dc_allocator_new, out, total_blocks))
        self._alloc: Any = ffi.gc(out[0], lib.dc_allocator_free)

    def alloc(self) -> int:
        out = ffi.new("uint64_t *")
        check(c_call(lib.dc_allocator_alloc, self._alloc, out))
        return int(out[0])

    def alloc_run(self, count: int) -> int:
        """Allocate ``count`` contiguous blocks and return the first."""
        out = ffi.new("uint64_t *")
        check(c_call(lib.dc_allocator_alloc_run, self._alloc, out, count))
        return int(out[0])

    def release(self, block: int) -> None:
        check(c_call(lib.dc_allocator_release, self._alloc, block))

    def release_deferred(self, block: int) -> None:
        check(c_call(lib.dc_allocator_release_deferred, self._alloc, block))

    def commit_durable(self) -> None:
        c_call(lib.dc_allocator_commit_durable, self._alloc)

    def abort_deferred(self) -> None:
        c_call(lib.dc_allocator_abort_deferred, self._alloc)

    def mark_used(self, block: int) -> None:
        check(c_call(lib.dc_allocator_mark_used, self._alloc, block))

    def rebuild(self, blocks: Iterable[int]) -> None:
        ids = list(blocks)
        check(c_call(lib.dc_allocator_rebuild, self._alloc, u64_array(ids), len(ids)))

    def is_used(self, block: int) -> bool:
        return bool(c_call(lib.dc_allocator_is_used, self._alloc, block))

    @property
    def total_blocks(self) -> int:
        return int(c_call(lib.dc_allocator_total_blocks, self._alloc))

    @property
    def free_blocks(self) -> int:
        return int(c_call(lib.dc_allocator_free_blocks, self._alloc))

    @property
    def deferred_blocks(self) -> int:
        return int(c_call(lib.dc_allocator_deferred_blocks, self._alloc))
