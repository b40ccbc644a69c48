"""The doublecrypt-core (Rust seed, crate 0.1.x) on-disk format, version 1.

Facts this module relies on (from the seed's source, cross-checked against the
reference images in ``shared/vectors/doublecrypt-core-v1``):

Blocks. Block ``i`` is at byte ``i * block_size``. Every used block is framed
as a little-endian u32 ``n``, then ``n`` bytes of postcard, then random
padding; ``n == 0`` or ``4 + n > block_size`` means "no object". Block 0 holds
the StorageHeader, blocks 1 and 2 the root pointers A and B (all three
unencrypted); blocks from 3 on hold EncryptedObject envelopes.

Types, fields in wire order (postcard, see :mod:`.postcard`):

* StorageHeader: magic ``DBLCRYPT`` (8 raw bytes), version u32 (= 1),
  block_size u32, total_blocks u64.
* RootPointer: generation u64, superblock block u64, checksum 32 raw bytes =
  BLAKE3-256 of the superblock's plaintext encoding.
* EncryptedObject (envelope): kind (ObjectKind), version u32 (= 1), nonce
  12 raw bytes, ciphertext ``Vec<u8>`` (ChaCha20-Poly1305 output, tag last).
* Superblock: generation u64, root inode block u64.
* Inode: id u64, kind (InodeKind), size u64, directory page block u64,
  extent map block u64, created_at u64, modified_at u64 (Unix seconds).
* DirectoryPage: ``Vec<DirectoryEntry>``; DirectoryEntry: name String,
  inode block u64, inode id u64, kind (InodeKind).
* ExtentMap: ``Vec<ExtentEntry>``; ExtentEntry: chunk index u64, data block
  u64, plaintext_len u32.
* ObjectKind: Superblock 0, RootPointer 1, Inode 2, DirectoryPage 3,
  ExtentMap 4, FileDataChunk 5; InodeKind: File 0, Directory 1. (0-based
  variant positions; the Rust discriminants 1.. never reach the disk.)
* A block reference of ``2**64 - 1`` is null.

Encryption. Key = HKDF-SHA256(salt ``doublecrypt-v1``, IKM = master key of any
non-empty length, info ``block-encryption``, 32 bytes). ChaCha20-Poly1305 with
the envelope's random 12-byte nonce and **empty** associated data; file data
chunks are the raw bytes, every other object is its postcard encoding.

Root recovery. The seed mounts the slot with the higher generation (B on a
tie) and gives up if that one fails. This reader is stricter and more
forgiving at once: a slot counts only if its superblock decrypts as a
Superblock, matches the checksum and carries the slot's generation, and when
the newest slot fails the other one is tried (:func:`recover_root`).

Known weaknesses of the format, visible here: the envelope kind and version
are not authenticated (this reader checks them anyway), nothing binds a block
to its address, and the checksum is unkeyed, so an attacker with write access
can swap or replay blocks undetected. The seed also reuses freed blocks at
once, so an older generation found by the fallback may have lost blocks.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from typing_extensions import Buffer

from ..errors import (
    AuthenticationError,
    CorruptionError,
    DoubleCryptError,
    InvalidArgumentError,
    UnsupportedError,
)
from .postcard import PostcardReader

__all__ = [
    "BLOCK_ROOT_POINTER_A",
    "BLOCK_ROOT_POINTER_B",
    "BLOCK_STORAGE_HEADER",
    "CHUNK_OVERHEAD",
    "FIRST_DATA_BLOCK",
    "FORMAT_VERSION",
    "LENGTH_PREFIX_BYTES",
    "MAGIC",
    "MAX_NAME_BYTES",
    "NULL_BLOCK",
    "DirectoryEntry",
    "Envelope",
    "ExtentEntry",
    "Inode",
    "InodeKind",
    "ObjectKind",
    "RootChoice",
    "RootPointer",
    "StorageHeader",
    "Superblock",
    "V1Cipher",
    "decode_directory_page",
    "decode_envelope",
    "decode_extent_map",
    "decode_inode",
    "decode_root_pointer",
    "decode_storage_header",
    "decode_superblock",
    "framed_payload",
    "recover_root",
]

MAGIC = b"DBLCRYPT"
FORMAT_VERSION = 1  # StorageHeader.version
ENVELOPE_VERSION = 1  # EncryptedObject.version (the seed writes 1, never checks it)
BLOCK_STORAGE_HEADER = 0
BLOCK_ROOT_POINTER_A = 1
BLOCK_ROOT_POINTER_B = 2
FIRST_DATA_BLOCK = 3
NULL_BLOCK = (1 << 64) - 1
LENGTH_PREFIX_BYTES = 4
CHUNK_OVERHEAD = 200  # file data chunk = block_size - 200 bytes
MAX_NAME_BYTES = 255
CHECKSUM_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
KDF_SALT = b"doublecrypt-v1"
KDF_INFO_BLOCK_ENCRYPTION = b"block-encryption"

# The smallest encodings of one list item, to bound forged counts.
_MIN_DIRECTORY_ENTRY_BYTES = 5  # name length + 1 name byte + ref + id + kind
_MIN_EXTENT_ENTRY_BYTES = 3  # chunk index + ref + length


class ObjectKind(enum.IntEnum):
    SUPERBLOCK = 0
    ROOT_POINTER = 1  # declared by the seed, never written to a block
    INODE = 2
    DIRECTORY_PAGE = 3
    EXTENT_MAP = 4
    FILE_DATA_CHUNK = 5


class InodeKind(enum.IntEnum):
    FILE = 0
    DIRECTORY = 1


@dataclass(frozen=True, slots=True)
class StorageHeader:
    block_size: int
    total_blocks: int


@dataclass(frozen=True, slots=True)
class RootPointer:
    slot: int  # BLOCK_ROOT_POINTER_A or _B: where it was read
    generation: int
    superblock_block: int
    checksum: bytes

    @property
    def slot_name(self) -> str:
        return "A" if self.slot == BLOCK_ROOT_POINTER_A else "B"


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: ObjectKind
    version: int
    nonce: bytes
    ciphertext: bytes  # with the 16-byte tag at the end


@dataclass(frozen=True, slots=True)
class Superblock:
    generation: int
    root_inode_block: int


@dataclass(frozen=True, slots=True)
class Inode:
    id: int
    kind: InodeKind
    size: int
    directory_page_block: int | None
    extent_map_block: int | None
    created_at: int
    modified_at: int


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    name: str
    inode_block: int
    inode_id: int
    kind: InodeKind


@dataclass(frozen=True, slots=True)
class ExtentEntry:
    chunk_index: int
    data_block: int
    plaintext_len: int


# ---- framing and decoding ---------------------------------------------------


def framed_payload(block: bytes) -> bytes | None:
    """The postcard bytes a block frames, or None when it holds no object
    (the seed's rule: a zero length, or one running past the block)."""
    if len(block) < LENGTH_PREFIX_BYTES:
        return None
    length = int.from_bytes(block[:LENGTH_PREFIX_BYTES], "little")
    if length == 0 or LENGTH_PREFIX_BYTES + length > len(block):
        return None
    return block[LENGTH_PREFIX_BYTES : LENGTH_PREFIX_BYTES + length]


def _block_ref(reader: PostcardReader, field: str, *, nullable: bool) -> int | None:
    block = reader.u64()
    if block == NULL_BLOCK:
        if not nullable:
            raise reader.fail(f"{field} is a null reference")
        return None
    return block


def _required_ref(reader: PostcardReader, field: str) -> int:
    block = _block_ref(reader, field, nullable=False)
    assert block is not None  # nullable=False raised otherwise
    return block


def decode_storage_header(payload: Buffer) -> StorageHeader:
    reader = PostcardReader(payload, "storage header")
    magic = reader.fixed_bytes(len(MAGIC))
    if magic != MAGIC:
        raise CorruptionError("not a doublecrypt-core image (no DBLCRYPT header)")
    version = reader.u32()
    block_size = reader.u32()
    total_blocks = reader.u64()
    reader.finish()
    if version != FORMAT_VERSION:
        raise UnsupportedError(
            f"doublecrypt-core format version {version} (this reader knows {FORMAT_VERSION})"
        )
    return StorageHeader(block_size, total_blocks)


def decode_root_pointer(payload: Buffer, slot: int) -> RootPointer:
    reader = PostcardReader(payload, "root pointer")
    generation = reader.u64()
    superblock = _required_ref(reader, "superblock reference")
    checksum = reader.fixed_bytes(CHECKSUM_BYTES)
    reader.finish()
    return RootPointer(slot, generation, superblock, checksum)


def decode_envelope(payload: Buffer) -> Envelope:
    reader = PostcardReader(payload, "encrypted object")
    kind = ObjectKind(reader.enum_index(len(ObjectKind), "ObjectKind"))
    version = reader.u32()
    nonce = reader.fixed_bytes(NONCE_BYTES)
    ciphertext = reader.byte_seq()
    reader.finish()
    if len(ciphertext) < TAG_BYTES:
        raise CorruptionError(
            f"doublecrypt-core encrypted object: {len(ciphertext)} bytes of ciphertext, "
            f"shorter than the {TAG_BYTES}-byte tag"
        )
    # Checked only once the whole envelope parsed, so random bytes read as
    # corruption rather than as a format from the future.
    if version != ENVELOPE_VERSION:
        raise UnsupportedError(
            f"doublecrypt-core object version {version} (this reader knows {ENVELOPE_VERSION})"
        )
    return Envelope(kind, version, nonce, ciphertext)


def decode_superblock(plaintext: Buffer) -> Superblock:
    reader = PostcardReader(plaintext, "superblock")
    generation = reader.u64()
    root = _required_ref(reader, "root inode reference")
    reader.finish()
    return Superblock(generation, root)


def decode_inode(plaintext: Buffer) -> Inode:
    reader = PostcardReader(plaintext, "inode")
    inode_id = reader.u64()
    kind = InodeKind(reader.enum_index(len(InodeKind), "InodeKind"))
    size = reader.u64()
    directory_page = _block_ref(reader, "directory page reference", nullable=True)
    extent_map = _block_ref(reader, "extent map reference", nullable=True)
    created_at = reader.u64()
    modified_at = reader.u64()
    reader.finish()
    return Inode(inode_id, kind, size, directory_page, extent_map, created_at, modified_at)


def _check_name(reader: PostcardReader, name: str) -> None:
    # The seed's own name rules; no v1 writer produces anything else, and a
    # name with '/' could never be reached by a path.
    if not name or "/" in name or "\0" in name:
        raise reader.fail(f"invalid entry name {name!r}")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise reader.fail(f"entry name longer than {MAX_NAME_BYTES} bytes")


def decode_directory_page(plaintext: Buffer) -> list[DirectoryEntry]:
    """The entries in their on-disk (creation) order; names are unique."""
    reader = PostcardReader(plaintext, "directory page")
    count = reader.seq_len(_MIN_DIRECTORY_ENTRY_BYTES, "directory")
    entries: list[DirectoryEntry] = []
    names: set[str] = set()
    for _ in range(count):
        name = reader.string()
        _check_name(reader, name)
        if name in names:
            raise reader.fail(f"duplicate entry name {name!r}")
        names.add(name)
        inode_block = _required_ref(reader, "entry inode reference")
        inode_id = reader.u64()
        kind = InodeKind(reader.enum_index(len(InodeKind), "InodeKind"))
        entries.append(DirectoryEntry(name, inode_block, inode_id, kind))
    reader.finish()
    return entries


def decode_extent_map(plaintext: Buffer) -> list[ExtentEntry]:
    """The extents in chunk order (the seed sorts them before every write;
    an unsorted or repeated index is damage)."""
    reader = PostcardReader(plaintext, "extent map")
    count = reader.seq_len(_MIN_EXTENT_ENTRY_BYTES, "extent")
    extents: list[ExtentEntry] = []
    for _ in range(count):
        chunk_index = reader.u64()
        if extents and chunk_index <= extents[-1].chunk_index:
            raise reader.fail("extent chunk indices are not strictly increasing")
        data_block = _required_ref(reader, "extent data reference")
        plaintext_len = reader.u32()
        extents.append(ExtentEntry(chunk_index, data_block, plaintext_len))
    reader.finish()
    return extents


# ---- encryption ---------------------------------------------------------------


class V1Cipher:
    """Opens v1 envelopes with the key derived from a master key.

    The master key is copied into a bytearray that is wiped once the block
    key is derived; the block key lives in a bytearray only until the AEAD
    object holds it (OpenSSL keeps its own copy, out of reach)."""

    def __init__(self, master_key: Buffer) -> None:
        master = bytearray(master_key)
        block_key = bytearray(KEY_BYTES)
        try:
            if not master:
                raise InvalidArgumentError("the doublecrypt-core master key is empty")
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_BYTES,
                salt=KDF_SALT,
                info=KDF_INFO_BLOCK_ENCRYPTION,
            )
            if hasattr(hkdf, "derive_into"):  # cryptography >= 46: no bytes copy
                hkdf.derive_into(master, block_key)
            else:  # pragma: no cover - older cryptography
                block_key[:] = hkdf.derive(bytes(master))
            self._aead = ChaCha20Poly1305(block_key)
        finally:
            master[:] = bytes(len(master))
            block_key[:] = bytes(len(block_key))

    def open(self, envelope: Envelope, expected: ObjectKind) -> bytes:
        """The plaintext of ``envelope``; it must hold an ``expected`` object."""
        if envelope.kind != expected:
            # The kind is not authenticated, but a mismatch is never benign.
            raise CorruptionError(
                f"doublecrypt-core block holds a {envelope.kind.name} where a "
                f"{expected.name} belongs"
            )
        try:
            return self._aead.decrypt(envelope.nonce, envelope.ciphertext, None)
        except InvalidTag:
            raise AuthenticationError("authentication failed") from None


# ---- root pointers --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RootChoice:
    """The root pointer a mount uses, and what was wrong with any slot that
    may have named a newer tree: one of a newer generation that failed, or
    one too damaged to tell its generation. ``skipped`` is empty on a healthy
    image; otherwise a caller can warn that the tree may be an older one. (A
    damaged slot of an older generation is never read, so not reported.)"""

    pointer: RootPointer
    superblock: Superblock
    skipped: tuple[str, ...]

    @property
    def fell_back(self) -> bool:
        return bool(self.skipped)


def _newest_first(pointer: RootPointer) -> tuple[int, bool]:
    # The seed prefers B on equal generations; keep its choice first.
    return (pointer.generation, pointer.slot == BLOCK_ROOT_POINTER_B)


def _check_superblock(pointer: RootPointer, plaintext: bytes) -> Superblock:
    digest = blake3.blake3(plaintext).digest()
    if not hmac.compare_digest(digest, pointer.checksum):
        raise CorruptionError("the superblock does not match the root pointer's checksum")
    superblock = decode_superblock(plaintext)
    if superblock.generation != pointer.generation:
        raise CorruptionError(
            f"superblock generation {superblock.generation} in a root pointer of "
            f"generation {pointer.generation}"
        )
    return superblock


def _worst(failures: list[DoubleCryptError]) -> DoubleCryptError:
    """The error to report when no slot works: a wrong key shows as an
    authentication failure even when the other slot is damaged too."""
    for cls in (AuthenticationError, UnsupportedError):
        for failure in failures:
            if isinstance(failure, cls):
                return failure
    return failures[0]


def recover_root(
    slot_blocks: dict[int, bytes], open_object: Callable[[int, ObjectKind], bytes]
) -> RootChoice:
    """Choose the root pointer to mount from the raw blocks of slots A and B.

    ``open_object(block, kind)`` reads, decrypts and returns the plaintext
    of an object. Slots are tried newest first; one is rejected when its
    framing or encoding is broken, its superblock does not open, does not
    match the checksum, or carries another generation. Raises the most
    telling failure when neither slot works."""
    pointers: list[RootPointer] = []
    failures: list[DoubleCryptError] = []
    unparsed: dict[int, str] = {}  # slot -> why it holds no root pointer
    for slot in (BLOCK_ROOT_POINTER_A, BLOCK_ROOT_POINTER_B):
        payload = framed_payload(slot_blocks[slot])
        try:
            if payload is None:
                raise CorruptionError("empty slot")
            pointers.append(decode_root_pointer(payload, slot))
        except CorruptionError as exc:
            failures.append(exc)
            unparsed[slot] = str(exc)
    rejected: list[str] = []
    for pointer in sorted(pointers, key=_newest_first, reverse=True):
        try:
            plaintext = open_object(pointer.superblock_block, ObjectKind.SUPERBLOCK)
            superblock = _check_superblock(pointer, plaintext)
        except (CorruptionError, AuthenticationError, UnsupportedError) as exc:
            failures.append(exc)
            rejected.append(
                f"root pointer {pointer.slot_name} (generation {pointer.generation}): {exc}"
            )
            continue
        # Until its second commit the seed never writes slot B, so an
        # unreadable other slot is normal then.
        if pointer.generation > 1:
            rejected.extend(
                f"root pointer {'A' if slot == BLOCK_ROOT_POINTER_A else 'B'}: {why}"
                for slot, why in unparsed.items()
            )
        return RootChoice(pointer, superblock, tuple(rejected))
    if not pointers:
        raise CorruptionError("doublecrypt-core image has no valid root pointer in slot A or B")
    raise _worst(failures)
