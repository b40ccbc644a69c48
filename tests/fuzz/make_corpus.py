#!/usr/bin/env python3
"""Build the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/).

Run from the repository root with the project's virtualenv:
    .venv/bin/python tests/fuzz/make_corpus.py

Every seed comes from real data made by the Python package: volumes built
with the fixed master key of tests/fuzz/fuzz_common.h, their headers and root
pointers, their sealed blocks, and the plaintext records and B+tree nodes
inside them (found by walking each volume as docs/FORMAT.md describes), put
into the input layout each target's comment documents. A few hand-built
inputs cover what a 16-block volume cannot hold (deeper trees).

Files this script writes are named seed-*; it replaces them on each run and
leaves every other file (inputs found by fuzzing, crash reproducers) alone.
Sealing uses random nonces, so reruns change the bytes but not the meaning.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import doublecrypt
from doublecrypt import Codec, FileSystem, KdfParams, ObjectKind, derive_subkey, open_image

ROOT = Path(__file__).resolve().parent / "corpus"
MASTER_KEY = bytes(range(32))
FIXED_VOLUME_ID = bytes(range(0x40, 0x50))
PASSPHRASE = "fuzz passphrase"
TAG_PLACEHOLDER = b"[[ref-tag-here]]"
BS = 4096
NBLOCKS = 16
FIRST = 3
CHUNK = BS - 48
KEYSLOT_OFFSET = 512
KEYSLOT_BYTES = 128

u16 = struct.Struct("<H")
u32 = struct.Struct("<I")
u64 = struct.Struct("<Q")


def write(target: str, name: str, data: bytes) -> None:
    (ROOT / target).mkdir(parents=True, exist_ok=True)
    (ROOT / target / f"seed-{name}").write_bytes(data)


# ---- real volumes -------------------------------------------------------------


def make_image(path: Path, build: Callable[[FileSystem], None], *, passphrase: bool) -> bytes:
    """A 16-block, 4 KiB volume under MASTER_KEY, filled by `build` in one
    transaction (so it fits: nothing freed is waiting for reuse)."""
    with open_image(path, key=MASTER_KEY, create=True, size=NBLOCKS * BS, block_size=BS) as fs:
        if passphrase:
            fs.add_passphrase(PASSPHRASE, KdfParams.minimum())
        with fs.transaction():
            build(fs)
        fs.fsck()
    return path.read_bytes()


def small_tree(fs: FileSystem) -> None:
    fs.mkdir("/docs")
    fs.write_bytes("/docs/readme.md", b"# hello\n" * 20)
    fs.write_bytes("/empty", b"")
    fs.mkdir("/docs/deeper")
    # Five short chunks far apart: more extents than fit inline, so the file
    # gets an extent tree, with data blocks that stay small.
    with fs.open("/sparse.bin", "wb") as f:
        for i in range(5):
            f.seek(i * CHUNK)
            f.write(bytes([0x30 + i]) * 10)
    fs.write_bytes("/inline.bin", b"inline data")
    fs.chmod("/inline.bin", 0o600)


def many_names(fs: FileSystem) -> None:
    # Enough entries that the namespace root splits (an internal node).
    for i in range(48):
        fs.write_bytes(f"/entry-{i:03d}-" + "n" * 60, b"")
    fs.mkdir('/dir-with-quote"and\\backslash')


def holes(fs: FileSystem) -> None:
    with fs.open("/holes", "wb") as f:
        f.seek(3 * CHUNK + 7)
        f.write(b"tail")
    fs.write_bytes("/full-chunk", bytes(range(256)) * 4)
    fs.truncate("/full-chunk", 100)


@dataclass
class Obj:
    block: int
    kind: ObjectKind
    plain: bytearray
    refs: list[int] = field(default_factory=list)  # offsets of ref fields


@dataclass
class Volume:
    image: bytes
    volume_id: bytes
    generation: int
    sb_block: int
    slot: int
    objects: dict[int, Obj]


def blocks_of(image: bytes) -> list[bytes]:
    return [image[i : i + BS] for i in range(0, len(image), BS)]


def root_mac(mac_key: bytes, volume_id: bytes, slot: int, fields: bytes) -> bytes:
    msg = b"doublecrypt root pointer v2" + volume_id + bytes([slot]) + fields
    return hmac.new(mac_key, msg, hashlib.sha256).digest()


def parse_node(p: bytes) -> tuple[int, list[tuple[bytes, int, int]]]:
    """(level, [(key, offset, length)]): a leaf's value or an internal
    entry's child reference."""
    level, count = p[0], u16.unpack_from(p, 2)[0]
    pos, entries = 4, []
    for _ in range(count):
        klen = u16.unpack_from(p, pos)[0]
        pos += 2
        vlen = 24
        if level == 0:
            vlen = u16.unpack_from(p, pos)[0]
            pos += 2
        key = p[pos : pos + klen]
        pos += klen
        entries.append((key, pos, vlen))
        pos += vlen
    assert pos == len(p), "node length"
    return level, entries


def read_volume(image: bytes) -> Volume:
    blocks = blocks_of(image)
    header = blocks[0]
    volume_id = header[24:40]
    mac_key = bytes(derive_subkey(MASTER_KEY, doublecrypt.SUBKEY_ROOT_MAC))
    roots = []
    for slot in (1, 2):
        b = blocks[slot]
        if hmac.compare_digest(b[32:64], root_mac(mac_key, volume_id, slot, b[:32])):
            roots.append((u64.unpack_from(b, 0)[0], slot, u64.unpack_from(b, 8)[0]))
    generation, slot, sb_block = max(roots)
    key = bytes(derive_subkey(MASTER_KEY, doublecrypt.SUBKEY_BLOCK_ENCRYPTION))
    codec = Codec(key, volume_id, block_size=BS, threads=1)
    objects: dict[int, Obj] = {}

    def load(block: int, kind: ObjectKind) -> Obj:
        obj = Obj(block, kind, bytearray(codec.open(block, kind, blocks[block])))
        objects[block] = obj
        return obj

    def inode(obj: Obj, at: int) -> None:
        fmt, n = obj.plain[at + 1], obj.plain[at + 2]
        if fmt == 2:
            obj.refs.append(at + 48)
            tree(u64.unpack_from(obj.plain, at + 48)[0], ObjectKind.EXTENT_MAP)
        elif fmt == 1:
            for i in range(n):
                ref = at + 48 + i * 36 + 8
                obj.refs.append(ref)
                load(u64.unpack_from(obj.plain, ref)[0], ObjectKind.DATA)

    def tree(block: int, kind: ObjectKind) -> None:
        obj = load(block, kind)
        level, entries = parse_node(bytes(obj.plain))
        for _key, at, _len in entries:
            if level > 0:
                obj.refs.append(at)
                tree(u64.unpack_from(obj.plain, at)[0], kind)
            elif kind == ObjectKind.DIRECTORY:
                inode(obj, at)
            else:
                obj.refs.append(at)
                load(u64.unpack_from(obj.plain, at)[0], ObjectKind.DATA)

    sb = load(sb_block, ObjectKind.SUPERBLOCK)
    ns_root = u64.unpack_from(sb.plain, 8)[0]
    if ns_root:
        sb.refs.append(8)
        tree(ns_root, ObjectKind.DIRECTORY)
    inode(sb, 56)
    return Volume(image, volume_id, generation, sb_block, slot, objects)


# ---- fuzz_mount inputs --------------------------------------------------------


def placeholder_plain(obj: Obj) -> bytes:
    p = bytearray(obj.plain)
    for ref in obj.refs:
        p[ref + 8 : ref + 24] = TAG_PLACEHOLDER
    return bytes(p)


def root_spec(sb_block: int) -> int:
    return 0x80 | (sb_block - FIRST)


def mount_input(
    vol: Volume,
    *,
    flags: int = 0,
    params: bytes = bytes(5),
    root_b: tuple[int, int] | None = None,
    patches: list[tuple[int, int, int]] | None = None,
    edit: Callable[[dict[int, bytes]], None] | None = None,
) -> bytes:
    plains = {b: placeholder_plain(o) for b, o in vol.objects.items()}
    if edit is not None:
        edit(plains)
    out = bytearray([flags, root_spec(vol.sb_block)])
    out += u64.pack(vol.generation)
    if root_b is None:
        out += bytes(9)
    else:
        out += bytes([root_spec(root_b[0])]) + u64.pack(root_b[1])
    out += params
    for block, plain in sorted(plains.items()):
        kind = vol.objects[block].kind if block in vol.objects else ObjectKind.DATA
        out += bytes([block - FIRST, kind]) + u16.pack(len(plain)) + plain
    for block, offset, xor in patches or []:
        out += bytes([0x80 | block]) + u16.pack(offset) + bytes([xor])
    return bytes(out)


def mount_seeds(vols: dict[str, Volume]) -> None:
    for name, vol in vols.items():
        write("fuzz_mount", f"{name}-walk", mount_input(vol))
        write(
            "fuzz_mount",
            f"{name}-change",
            mount_input(vol, flags=2, params=b"\x05\x07\x09\x41\x0b"),
        )
        write("fuzz_mount", f"{name}-readonly", mount_input(vol, flags=1))
    vol = vols["small"]
    # The header claims fewer blocks than the store has.
    write("fuzz_mount", "small-short-header", mount_input(vol, flags=2 | (3 << 2)))
    # Root pointer B newer but naming a superblock of another generation.
    write(
        "fuzz_mount",
        "small-root-b-newer",
        mount_input(vol, root_b=(vol.sb_block, vol.generation + 1)),
    )
    # A padding byte flipped (harmless) and a ciphertext byte flipped (fails).
    write("fuzz_mount", "small-padding-patch", mount_input(vol, patches=[(vol.sb_block, 4000, 1)]))
    write("fuzz_mount", "small-cipher-patch", mount_input(vol, patches=[(vol.sb_block, 40, 1)]))

    # A namespace leaf entry whose value is one byte short, and one whose
    # inode names a directory with an extent tree: decoders behind the MACs.
    def short_value(plains: dict[int, bytes]) -> None:
        for block, obj in vol.objects.items():
            if obj.kind == ObjectKind.DIRECTORY:
                p = bytearray(plains[block])
                level, entries = parse_node(bytes(p))
                if level == 0 and entries:
                    _key, at, vlen = entries[0]
                    u16.pack_into(p, at - len(_key) - 2, vlen - 1)
                    plains[block] = bytes(p[: at + vlen - 1] + p[at + vlen :])
                    return

    write("fuzz_mount", "small-short-entry", mount_input(vol, edit=short_value))

    def next_inode_low(plains: dict[int, bytes]) -> None:
        p = bytearray(plains[vol.sb_block])
        u64.pack_into(p, 32, 2)  # next inode collides with existing ones
        plains[vol.sb_block] = bytes(p)

    write("fuzz_mount", "small-next-inode-low", mount_input(vol, flags=2, edit=next_inode_low))

    def duplicate_inode(plains: dict[int, bytes]) -> None:
        # /sparse.bin takes /docs/readme.md's inode number (a known engine
        # limit: see docs/RELIABILITY.md, "Fuzzing").
        ids, where = {}, {}
        for block, obj in vol.objects.items():
            if obj.kind == ObjectKind.DIRECTORY and obj.plain[0] == 0:
                for key, at, _len in parse_node(bytes(obj.plain))[1]:
                    ids[key[8:]] = u64.unpack_from(obj.plain, at + 8)[0]
                    where[key[8:]] = (block, at + 8)
        block, at = where[b"sparse.bin"]
        p = bytearray(plains[block])
        u64.pack_into(p, at, ids[b"readme.md"])
        plains[block] = bytes(p)

    write("fuzz_mount", "small-duplicate-inode", mount_input(vol, flags=2, edit=duplicate_inode))


def separator_too_high(vol: Volume) -> bytes:
    """The namespace root's second separator just above its child's first
    key: a lookup of that key goes to the wrong leaf, and a directory cursor
    that trusted the tree would return that entry forever."""

    def edit(plains: dict[int, bytes]) -> None:
        for block, obj in vol.objects.items():
            if obj.kind != ObjectKind.DIRECTORY or obj.plain[0] != 1:
                continue
            p = plains[block]
            _level, entries = parse_node(p)
            out = bytearray(p[:4])
            for i, (key, at, _len) in enumerate(entries):
                if i == 1:
                    child = vol.objects[u64.unpack_from(p, at)[0]]
                    first = parse_node(bytes(child.plain))[1][0][0]
                    key = first + b"\x01"
                out += u16.pack(len(key)) + key + p[at : at + 24]
            plains[block] = bytes(out)
            return
        raise AssertionError("no internal namespace node")

    return mount_input(vol, edit=edit)


def deep_extent_tree() -> bytes:
    """Hand-built: a file whose extent tree has an internal node over two
    leaves (a real 16-block volume cannot grow one)."""

    def ref(block: int) -> bytes:
        return u64.pack(block) + TAG_PLACEHOLDER

    def leaf(entries: list[tuple[bytes, bytes]]) -> bytes:
        out = bytearray([0, 0]) + u16.pack(len(entries))
        for k, v in entries:
            out += u16.pack(len(k)) + u16.pack(len(v)) + k + v
        return bytes(out)

    def internal(level: int, entries: list[tuple[bytes, int]]) -> bytes:
        out = bytearray([level, 0]) + u16.pack(len(entries))
        for k, child in entries:
            out += u16.pack(len(k)) + k + ref(child)
        return bytes(out)

    def extent(block: int, length: int) -> bytes:
        return ref(block) + u32.pack(length)

    C = CHUNK
    data = {9: b"a" * 10, 10: b"b" * 10, 11: b"c" * 10, 12: b"d" * 10}
    leaf1 = leaf([(u64.pack(0)[::-1], extent(9, 10)), (u64.pack(1)[::-1], extent(10, 10))])
    leaf2 = leaf([(u64.pack(7)[::-1], extent(11, 10)), (u64.pack(8)[::-1], extent(12, 10))])
    ext_root = internal(1, [(u64.pack(0)[::-1], 7), (u64.pack(7)[::-1], 8)])
    ino = bytearray([1, 2, 0, 0]) + u32.pack(0o644) + u64.pack(2) + u64.pack(8 * C + 10)
    ino += u64.pack(0) * 2 + u64.pack(4) + ref(6)
    dir_ino = bytearray([2, 0, 0, 0]) + u32.pack(0o755) + u64.pack(1) + u64.pack(1)
    dir_ino += u64.pack(0) * 2 + u64.pack(0)
    ns = leaf([(u64.pack(1)[::-1] + b"deep", bytes(ino))])
    sb = u64.pack(1) + ref(5) + u64.pack(3) + u64.pack(1) + u64.pack(1) + bytes(dir_ino)
    objs = {
        4: (ObjectKind.SUPERBLOCK, sb),
        5: (ObjectKind.DIRECTORY, ns),
        6: (ObjectKind.EXTENT_MAP, ext_root),
        7: (ObjectKind.EXTENT_MAP, leaf1),
        8: (ObjectKind.EXTENT_MAP, leaf2),
        **{b: (ObjectKind.DATA, d) for b, d in data.items()},
    }
    out = bytearray([2, root_spec(4)]) + u64.pack(1) + bytes(9) + b"\x03\x01\x02\x41\x00"
    for block, (kind, plain) in sorted(objs.items()):
        out += bytes([block - FIRST, kind]) + u16.pack(len(plain)) + plain
    return bytes(out)


# ---- the other targets ----------------------------------------------------------


def envelope_seeds(vols: dict[str, Volume]) -> None:
    key = bytes(derive_subkey(MASTER_KEY, doublecrypt.SUBKEY_BLOCK_ENCRYPTION))
    codecs = {i: Codec(key, FIXED_VOLUME_ID, block_size=4096 << i, threads=1) for i in (0, 1, 2)}
    codecs[3] = Codec(key, FIXED_VOLUME_ID, block_size=65536, threads=1)
    objs = list(vols["small"].objects.values())
    picked = {o.kind: o for o in objs}  # one of each kind
    for kind, obj in sorted(picked.items()):
        for size_index in (0, 1, 3):
            codec = codecs[size_index]
            block = codec.seal(obj.block, kind, bytes(obj.plain))
            if size_index == 3:  # only the authenticated part: the rest is padding
                block = block[: 48 + len(obj.plain)]
            head = bytes([size_index, kind]) + u64.pack(obj.block)
            write(
                "fuzz_envelope_open",
                f"raw-{kind.name.lower()}-{4096 << size_index if size_index < 3 else 65536}",
                head + block,
            )
        tamper = bytes([4, kind]) + u64.pack(obj.block) + bytes([2])
        tamper += u32.pack(0) + b"\x01" + u32.pack(4090) + b"\x80"  # header byte, padding byte
        write("fuzz_envelope_open", f"tamper-{kind.name.lower()}", tamper + bytes(obj.plain))
    padding_only = (
        bytes([4 | 1, 3]) + u64.pack(77) + bytes([1]) + u32.pack(8000) + b"\xff" + b"short"
    )
    write("fuzz_envelope_open", "tamper-padding-only", padding_only)
    empty = codecs[0].seal(3, 9, b"")
    write("fuzz_envelope_open", "raw-empty-plaintext", bytes([0, 9]) + u64.pack(3) + empty)


def header_seeds(images: dict[str, bytes]) -> None:
    for name, image in images.items():
        write("fuzz_header", name, image[:4096])
    header = bytearray(images["small"][:4096])
    # Absurd Argon2 costs in slot 0: must be refused at once.
    u64.pack_into(header, KEYSLOT_OFFSET + 8, 0xFFFFFFFF)
    u64.pack_into(header, KEYSLOT_OFFSET + 16, 1 << 42)
    write("fuzz_header", "absurd-costs", bytes(header))
    header = bytearray(images["small"][:4096])
    u64.pack_into(header, KEYSLOT_OFFSET + 16, 1 << 30)  # legal, slow: skipped
    write("fuzz_header", "slow-costs", bytes(header))
    write("fuzz_header", "truncated", images["small"][:1000])
    version3 = bytearray(images["small"][:96])
    u32.pack_into(version3, 8, 3)
    write("fuzz_header", "other-version", bytes(version3))


def root_seeds(vols: dict[str, Volume]) -> None:
    mac_key = bytes(derive_subkey(MASTER_KEY, doublecrypt.SUBKEY_ROOT_MAC))
    for name, vol in vols.items():
        blocks = blocks_of(vol.image)
        for slot in (1, 2):
            b = blocks[slot]
            valid = hmac.compare_digest(b[32:64], root_mac(mac_key, vol.volume_id, slot, b[:32]))
            mode = slot - 1
            write(
                "fuzz_root_pointer",
                f"raw-{name}-{'AB'[mode]}-{'valid' if valid else 'torn'}",
                bytes([mode]) + vol.volume_id + b[:64],
            )
    vol = vols["small"]
    sb = blocks_of(vol.image)[1][8:32]
    structured = bytes([2]) + u64.pack(vol.generation) + sb + b"\x00" + b"\x00"
    write("fuzz_root_pointer", "structured-intact", structured)
    write("fuzz_root_pointer", "structured-wrong-slot", bytes([3]) + structured[1:])
    patched = (
        bytes([2])
        + u64.pack(5)
        + sb
        + b"\x00"
        + b"\x02"
        + u16.pack(40)
        + b"\x01"
        + u16.pack(100)
        + b"\x01"
    )
    write("fuzz_root_pointer", "structured-patched", patched)


def model_seeds(vols: dict[str, Volume]) -> None:
    seen: set[bytes] = set()

    def add(selector: int, name: str, record: bytes) -> None:
        if record not in seen:
            seen.add(record)
            write("fuzz_model", f"{name}-{len(seen):02d}", bytes([selector]) + record)

    for vol in vols.values():
        for obj in vol.objects.values():
            p = bytes(obj.plain)
            if obj.kind == ObjectKind.SUPERBLOCK:
                add(2, "super", p)
                add(0, "inode-root", p[56:])
            elif obj.kind in (ObjectKind.DIRECTORY, ObjectKind.EXTENT_MAP):
                add(3, f"node-{obj.kind.name.lower()}", p)
                level, entries = parse_node(p)
                for _key, at, vlen in entries[:3] if level == 0 else []:
                    if obj.kind == ObjectKind.DIRECTORY:
                        add(0, "inode", p[at : at + vlen])
                    else:
                        add(1, "extent", p[at : at + vlen])


def compat_seeds() -> None:
    def pieces(*items: tuple[int, bytes]) -> bytes:
        return b"\x00".join(bytes([op]) + name for op, name in items)

    write(
        "fuzz_compat_json",
        "plain",
        pieces((0, b"plain.txt"), (1, b"dir"), (2, b"nested.txt"), (3, b"sub"), (2, b"deeper")),
    )
    write(
        "fuzz_compat_json",
        "escapes",
        pieces(
            (0, b'quote"back\\slash'),
            (0, b"tab\tnl\ncr\rff\x0cbs\x08"),
            (0, b"ctl\x01\x1f\x7f"),
            (1, b"dir\x1b[0m"),
            (2, b'inside "quoted"'),
        ),
    )
    write(
        "fuzz_compat_json",
        "unicode",
        pieces((0, "é ü 日本 🎉".encode()), (0, "\u2028\u2029".encode()), (0, b"\xef\xbb\xbfbom")),
    )
    write(
        "fuzz_compat_json",
        "invalid-utf8",
        pieces(
            (0, b"bad\xff\xfe"),
            (0, b"\xc0\xaf"),
            (0, b"\xed\xa0\x80"),
            (0, b"ok"),
            (1, b"\xf4\x90\x80\x80"),
        ),
    )
    write(
        "fuzz_compat_json",
        "paths",
        pieces(
            (1, b"/a/"),
            (0, b"a/b"),
            (0, b"."),
            (0, b".."),
            (0, b"//x//"),
            (0, b"n" * 255),
            (0, b"m" * 256),
        ),
    )


def main() -> int:
    ROOT.mkdir(parents=True, exist_ok=True)
    for old in ROOT.glob("*/seed-*"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        images = {
            "small": make_image(Path(tmp, "small.img"), small_tree, passphrase=True),
            "names": make_image(Path(tmp, "names.img"), many_names, passphrase=False),
            "holes": make_image(Path(tmp, "holes.img"), holes, passphrase=True),
        }
        with open_image(Path(tmp, "slots.img"), key=MASTER_KEY, create=True, size=4 * 65536) as fs:
            fs.add_passphrase("another one", KdfParams.minimum())
            fs.add_passphrase(PASSPHRASE, KdfParams.minimum())
            fs.add_passphrase("third", KdfParams.minimum())
            fs.remove_key_slot(0)
        images["slots-64k"] = Path(tmp, "slots.img").read_bytes()[:4096]
    vols = {name: read_volume(images[name]) for name in ("small", "names", "holes")}
    mount_seeds(vols)
    write("fuzz_mount", "deep-extent-tree", deep_extent_tree())
    write("fuzz_mount", "names-separator-too-high", separator_too_high(vols["names"]))
    envelope_seeds(vols)
    header_seeds(images)
    root_seeds(vols)
    model_seeds(vols)
    compat_seeds()
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    count = sum(1 for f in ROOT.rglob("*") if f.is_file())
    print(f"{count} corpus files, {total} bytes under {ROOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
