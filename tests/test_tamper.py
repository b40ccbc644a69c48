"""Tampering with every kind of block: an attacker who can write the disk but
does not know the key. docs/RELIABILITY.md ("Tampering") describes the cases
and their documented outcomes; this module is the table.

For each kind of block - header (fields, MAC, key slots), root pointers A and
B, superblock, namespace pages (internal and leaf), inode records inside a
namespace leaf, extent map pages (internal and leaf), data blocks - the
attacks are: flip bits at several positions, swap two blocks of the same
kind, replay an older version of a block at the same address (and the
previous version of the same node at its current address), and roll root
pointers back. A last table forges authentic blocks with inconsistent
contents (what only a key holder or a bug can write) to reach the structural
checks. Every row names its outcome:

- ``auth@mount`` / ``corrupt@mount`` / ``unsupported@mount``: mounting raises
  AuthenticationError / CorruptionError / UnsupportedError;
- ``auth@read`` / ``corrupt@read``: the volume mounts (data blocks are not
  read at mount); reading the damaged chunk and fsck raise the error, and
  every other byte still reads correctly;
- ``corrupt@fsck``: everything reads correctly, fsck raises CorruptionError;
- ``auth@unlock`` / ``not-found@unlock``: unlocking with the passphrase fails
  (a key slot is read by passphrase unlock only; the raw key still mounts);
- ``fallback``: the damaged newest root pointer is ignored and the volume
  mounts the previous generation, exactly (the documented behaviour for a
  torn root pointer write, which it cannot be told from);
- ``ignored``: bytes nothing reads (padding, random filler, an older root
  pointer): the volume mounts the newest generation, exactly;
- ``rollback``: the whole volume restored to an older generation, which the
  format cannot detect (documented limit): it mounts that generation,
  exactly, and fsck finds nothing.

Every row also checks that no read returns wrong data. The module prints one
summary line with the counts.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import doublecrypt
from doublecrypt import KdfParams, ObjectKind, errors
from memstores import DictStore

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
BS = 4096
CHUNK = BS - 48
# A small volume: 400 namespace entries (a 2-level namespace tree), a file of
# 300 chunks (a 2-level extent map) and little free space, so that churn soon
# reuses addresses (for same-address replays). 450 = 0b111000010: clearing
# bit 1 of the header's total_blocks shrinks it to 448.
TOTAL = 450
NS_FILES = 400
CHURN_FILES = 40
BIG_CHUNKS = 300
TARGET_CHUNK = 150  # rewritten by every churn commit
PASS0 = b"first passphrase"
PASS1 = b"second passphrase"
KDF = KdfParams.minimum()

CATEGORIES = ("superblock", "ns-internal", "ns-leaf", "extent-internal", "extent-leaf", "data")
KIND_OF = {
    "superblock": ObjectKind.SUPERBLOCK,
    "ns-internal": ObjectKind.DIRECTORY,
    "ns-leaf": ObjectKind.DIRECTORY,
    "extent-internal": ObjectKind.EXTENT_MAP,
    "extent-leaf": ObjectKind.EXTENT_MAP,
    "data": ObjectKind.DATA,
}

State = dict[str, bytes]  # every file of a generation and its contents

OUTCOMES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    total = sum(OUTCOMES.values())
    detail = ", ".join(f"{n} {name}" for name, n in sorted(OUTCOMES.items()))
    line = f"tamper cases: {total} ({detail}); wrong data: 0"
    report_line(request.config, line)


def report_line(config: pytest.Config, line: str) -> None:
    """Print `line` on pytest's terminal, past output capturing."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - plugins disabled
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write("\n")
        reporter.write_line(line)


# ---- recording the store's history -------------------------------------------


class RecordingStore(DictStore):
    """A DictStore that also keeps every version ever written to each block."""

    def __init__(
        self, blocks: dict[int, bytes], history: dict[int, list[bytes]], total: int = TOTAL
    ) -> None:
        self.history = history
        super().__init__(blocks, BS, total)

    def write_from(self, ids: list[int], data: memoryview) -> None:
        super().write_from(ids, data)
        for block in ids:
            self.history.setdefault(block, []).append(self.blocks[block])


def mount(blocks: dict[int, bytes], key: bytes = KEY) -> doublecrypt.FileSystem:
    return doublecrypt.FileSystem(DictStore(blocks, BS, TOTAL), key, threads=1)


def generation_of(root_pointer: bytes) -> int:
    return int(struct.unpack_from("<Q", root_pointer)[0])


def newest_slot(blocks: dict[int, bytes]) -> int:
    return 1 if generation_of(blocks[1]) > generation_of(blocks[2]) else 2


def flip(block: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(block)
    b[offset] ^= mask
    return bytes(b)


# ---- reading the tree the way the engine does (docs/FORMAT.md) -------------------


@dataclass
class Node:
    level: int
    keys: list[bytes]
    values: list[bytes]  # leaf: the value; internal: the 24-byte child reference
    value_at: list[int]  # plaintext offset of each value


def parse_node(plain: bytes) -> Node:
    level, zero, count = struct.unpack_from("<BBH", plain)
    assert zero == 0
    node = Node(level, [], [], [])
    pos = 4
    for _ in range(count):
        if level == 0:
            klen, vlen = struct.unpack_from("<HH", plain, pos)
            pos += 4
        else:
            (klen,) = struct.unpack_from("<H", plain, pos)
            pos += 2
            vlen = 24
        node.keys.append(plain[pos : pos + klen])
        node.value_at.append(pos + klen)
        node.values.append(plain[pos + klen : pos + klen + vlen])
        pos += klen + vlen
    assert pos == len(plain)
    return node


def ref_block(ref: bytes) -> int:
    return int(struct.unpack_from("<Q", ref)[0])


def child_for(node: Node, key: bytes) -> int:
    """Index of the child of an internal node that covers `key`."""
    index = 0
    for i, k in enumerate(node.keys):
        if k <= key:
            index = i
    return index


def ns_key(parent: int, name: str) -> bytes:
    return struct.pack(">Q", parent) + name.encode()


@dataclass
class Tree:
    """The blocks of one generation, and the path to the tamper targets: /big's
    namespace entry and its chunk TARGET_CHUNK."""

    generation: int
    live: dict[int, str]  # every reachable block -> its category
    owner: dict[int, tuple[str, int]]  # data block -> (file, chunk)
    targets: dict[str, int]  # category -> the block on the path to the targets
    record: tuple[int, int]  # (offset, length) of /big's record in its leaf's plaintext
    neighbours: list[tuple[int, int]]  # the same for every record of that leaf
    ref_at: dict[str, int]  # category -> plaintext offset of the next target's reference


class Reader:
    """Opens blocks with the volume's key, like a mount does."""

    def __init__(self, blocks: dict[int, bytes], key: bytes = KEY) -> None:
        volume_id = blocks[0][24:40]
        subkey = doublecrypt.derive_subkey(key, doublecrypt.SUBKEY_BLOCK_ENCRYPTION)
        self.codec = doublecrypt.Codec(bytes(subkey), volume_id, block_size=BS, threads=1)

    def open(self, blocks: dict[int, bytes], block: int, kind: int) -> bytes:
        return self.codec.open(block, kind, blocks[block])

    def category(self, block: int, content: bytes) -> str | None:
        """The category of a sealed block stored at `block`, or None."""
        kind = content[4]
        try:
            plain = self.codec.open(block, kind, content)
        except errors.AuthenticationError:
            return None
        if kind == ObjectKind.SUPERBLOCK:
            return "superblock"
        if kind == ObjectKind.DATA:
            return "data"
        prefix = "ns" if kind == ObjectKind.DIRECTORY else "extent"
        return f"{prefix}-{'leaf' if plain[0] == 0 else 'internal'}"

    def tree(self, blocks: dict[int, bytes], slot: int) -> Tree:
        root = blocks[slot]
        generation = generation_of(root)
        sb_block = ref_block(root[8:32])
        sb = self.open(blocks, sb_block, ObjectKind.SUPERBLOCK)
        tree = Tree(
            generation,
            {sb_block: "superblock"},
            {},
            {"superblock": sb_block},
            (0, 0),
            [],
            {"superblock": 8},
        )
        names: dict[int, str] = {1: ""}  # directory inode -> path

        def walk_extents(block: int, path: str, on_path: bool) -> None:
            node = parse_node(self.open(blocks, block, ObjectKind.EXTENT_MAP))
            category = "extent-leaf" if node.level == 0 else "extent-internal"
            tree.live[block] = category
            if on_path and category not in tree.targets:
                tree.targets[category] = block
            want = struct.pack(">Q", TARGET_CHUNK)
            follow = child_for(node, want) if node.level else -1
            for i, (key, value) in enumerate(zip(node.keys, node.values, strict=True)):
                if node.level:
                    if on_path and i == follow:
                        tree.ref_at[category] = node.value_at[i]
                    walk_extents(ref_block(value), path, on_path and i == follow)
                    continue
                chunk = int(struct.unpack(">Q", key)[0])
                data = ref_block(value)
                tree.live[data] = "data"
                tree.owner[data] = (path, chunk)
                if on_path and chunk == TARGET_CHUNK:
                    tree.targets["data"] = data
                    tree.ref_at[category] = node.value_at[i]

        def record(path: str, value: bytes) -> None:
            if value[0] == 2:  # a directory
                names[int(struct.unpack_from("<Q", value, 8)[0])] = path
            if value[1] == 2:  # extent tree
                walk_extents(ref_block(value[48:72]), path, path == "/big")
            elif value[1] == 1:  # inline extents: chunk u64 || ref (24) || length u32
                for i in range(value[2]):
                    at = 48 + 36 * i
                    data = ref_block(value[at + 8 : at + 32])
                    tree.live[data] = "data"
                    tree.owner[data] = (path, int(struct.unpack_from("<Q", value, at)[0]))

        big_key = ns_key(1, "big")

        def walk_ns(block: int, on_path: bool) -> None:
            plain = self.open(blocks, block, ObjectKind.DIRECTORY)
            node = parse_node(plain)
            category = "ns-leaf" if node.level == 0 else "ns-internal"
            tree.live[block] = category
            if on_path and category not in tree.targets:
                tree.targets[category] = block
            follow = child_for(node, big_key) if node.level else -1
            for i, (key, value) in enumerate(zip(node.keys, node.values, strict=True)):
                if node.level:
                    if on_path and i == follow:
                        tree.ref_at[category] = node.value_at[i]
                    walk_ns(ref_block(value), on_path and i == follow)
                    continue
                parent = int(struct.unpack(">Q", key[:8])[0])
                path = f"{names[parent]}/{key[8:].decode()}"
                if key == big_key:
                    tree.record = (node.value_at[i], len(value))
                    tree.ref_at[category] = node.value_at[i] + 48
                    tree.neighbours = list(zip(node.value_at, map(len, node.values), strict=True))
                record(path, value)

        walk_ns(ref_block(sb[8:32]), True)
        return tree


# ---- the volume every row starts from ------------------------------------------------


@dataclass
class Built:
    blocks: dict[int, bytes]  # the final state: generation N in the newest slot
    history: dict[int, list[bytes]]  # every version written to each block
    states: dict[int, State]  # generation -> files, for the last generations
    early: dict[int, bytes]  # a whole-volume snapshot before the churn
    early_generation: int
    header_one_slot: bytes  # block 0 while only PASS0 had a key slot
    reader: Reader
    now: Tree  # generation N
    before: Tree  # generation N-1 (the other root pointer)
    same_address: dict[str, tuple[int, bytes]]  # category -> (block, older version there)

    @property
    def generation(self) -> int:
        return self.now.generation


def big_initial() -> bytearray:
    return bytearray(i * 7 % 251 for i in range(CHUNK * BIG_CHUNKS))


def find_same_address(
    reader: Reader, blocks: dict[int, bytes], history: dict[int, list[bytes]], tree: Tree
) -> dict[str, tuple[int, bytes]]:
    """For each category, a live block whose address held an older sealed
    block of the same category (the address was freed and reused)."""
    found: dict[str, tuple[int, bytes]] = {}
    for block, category in sorted(tree.live.items()):
        if category in found:
            continue
        if category == "data" and tree.owner[block][0] != "/big":
            continue  # keep data cases on /big, whose damage the checks expect
        for old in reversed(history[block][:-1]):
            if old != blocks[block] and reader.category(block, old) == category:
                found[category] = (block, old)
                break
    return found


@pytest.fixture(scope="module")
def built() -> Built:
    blocks: dict[int, bytes] = {}
    history: dict[int, list[bytes]] = {}
    store = RecordingStore(blocks, history)
    state: State = {}
    states: dict[int, State] = {}
    big = big_initial()
    with doublecrypt.FileSystem.format(store, KEY, threads=1) as fs:
        fs.add_passphrase(PASS0, KDF)
        header_one_slot = blocks[0]
        fs.add_passphrase(PASS1, KDF)
        with fs.transaction():
            fs.mkdir("/ns")
            for i in range(NS_FILES):
                fs.write_bytes(f"/ns/f{i:04d}", b"")
                state[f"/ns/f{i:04d}"] = b""
        fs.write_bytes("/big", big)
        fs.write_bytes("/small", b"a small file")
        state["/small"] = b"a small file"
        state["/big"] = bytes(big)
        early = dict(blocks)
        early_generation = fs.statvfs().generation
        early_state = dict(state)
        reader = Reader(blocks)

        # Churn: every commit rewrites TARGET_CHUNK and one other chunk of
        # /big and one small file, until every category has a live block at a
        # reused address (and at least three commits after the snapshot).
        same: dict[str, tuple[int, bytes]] = {}
        for r in range(2000):
            name = f"/ns/f{r * 7 % CHURN_FILES:04d}"
            other = r * 53 % BIG_CHUNKS
            with fs.transaction():
                content = b"churn %d" % r
                fs.write_bytes(name, content)
                with fs.open("/big", "r+b") as f:
                    for chunk in (TARGET_CHUNK, other):
                        f.seek(chunk * CHUNK)
                        payload = bytes([r % 256]) * CHUNK
                        f.write(payload)
                        big[chunk * CHUNK : (chunk + 1) * CHUNK] = payload
            state[name] = content
            state["/big"] = bytes(big)
            generation = fs.statvfs().generation
            states[generation] = dict(state)
            states.pop(generation - 4, None)  # keep the last generations only
            if r >= 3 and r % 10 == 9:
                tree = reader.tree(blocks, newest_slot(blocks))
                same = find_same_address(reader, blocks, history, tree)
                if len(same) == len(CATEGORIES):
                    break
        assert len(same) == len(CATEGORIES), f"no reused address for {set(CATEGORIES) - set(same)}"
        states[early_generation] = early_state

    slot = newest_slot(blocks)
    now = reader.tree(blocks, slot)
    before = reader.tree(blocks, 3 - slot)
    assert set(now.targets) == set(CATEGORIES), now.targets
    assert before.generation == now.generation - 1
    for category in CATEGORIES:  # the last commit rewrote every target
        assert now.targets[category] != before.targets[category], category
    return Built(
        blocks,
        history,
        states,
        early,
        early_generation,
        header_one_slot,
        reader,
        now,
        before,
        same,
    )


# ---- checking outcomes ---------------------------------------------------------------


def read_range(fs: doublecrypt.FileSystem, path: str, start: int, length: int) -> bytes:
    """Exactly these bytes (unbuffered: no read-ahead into other chunks)."""
    with fs.open(path, "rb", buffering=0) as f:
        f.seek(start)
        data = f.read(length)
        assert isinstance(data, bytes)
        return data


def assert_state(fs: doublecrypt.FileSystem, state: State) -> None:
    """The mounted volume holds exactly `state`, and fsck is clean."""
    files = {f"/ns/{n}" for n in fs.listdir("/ns")} | {
        f"/{n}" for n in fs.listdir("/") if n != "ns"
    }
    assert files == set(state)
    for path, content in state.items():
        assert fs.read_bytes(path) == content, path
    report = fs.fsck()
    assert report.errors == 0 and report.leaked_blocks == 0


def expect(
    built: Built,
    blocks: dict[int, bytes],
    outcome: str,
    damaged: Sequence[tuple[str, int]] = (),
    *,
    count: bool = True,
) -> None:
    """Mount the tampered `blocks` and check the documented `outcome` (and
    count it as the row's outcome unless `count` is false). `damaged` lists
    the (file, chunk) whose data blocks were attacked."""
    mount_errors = {
        "auth@mount": errors.AuthenticationError,
        "corrupt@mount": errors.CorruptionError,
        "unsupported@mount": errors.UnsupportedError,
    }
    read_errors = {"auth@read": errors.AuthenticationError, "corrupt@read": errors.CorruptionError}
    if outcome in mount_errors:
        with pytest.raises(mount_errors[outcome]) as info:
            mount(blocks)
        assert type(info.value) is mount_errors[outcome]
    elif outcome in ("auth@read", "corrupt@read"):
        assert damaged
        error = read_errors[outcome]
        state = built.states[built.generation]
        with mount(blocks) as fs:
            assert fs.statvfs().generation == built.generation
            for path, chunk in damaged:
                with pytest.raises(error):
                    fs.read_bytes(path)
                with pytest.raises(error):
                    read_range(fs, path, chunk * CHUNK, 1)
            with pytest.raises(error) as info:
                fs.fsck()
            assert info.value.report is not None
            # Everything else reads back exactly.
            for path, content in state.items():
                bad = {chunk for p, chunk in damaged if p == path}
                if not bad:
                    assert fs.read_bytes(path) == content
                    continue
                for chunk in {*range(0, BIG_CHUNKS, 25), BIG_CHUNKS - 1} - bad:
                    start = chunk * CHUNK
                    assert read_range(fs, path, start, CHUNK) == content[start : start + CHUNK]
    elif outcome == "corrupt@fsck":
        with mount(blocks) as fs:
            assert fs.statvfs().generation == built.generation
            with pytest.raises(errors.CorruptionError) as caught:
                fs.fsck()
            assert caught.value.report is not None
            state = built.states[built.generation]
            for path, content in state.items():
                assert fs.read_bytes(path) == content
    elif outcome in ("fallback", "ignored", "rollback"):
        generation = {"fallback": built.generation - 1, "ignored": built.generation}.get(outcome)
        with mount(blocks) as fs:
            mounted = fs.statvfs().generation
            if generation is not None:
                assert mounted == generation
            else:
                assert mounted < built.generation
            assert_state(fs, built.states[mounted])
    else:  # pragma: no cover - a typo in a table
        raise AssertionError(outcome)
    if count:
        OUTCOMES[outcome] += 1


# ---- sealed blocks: bit flips ---------------------------------------------------------

# (name, offset) of a byte in a sealed block; negative offsets count from the
# end of the body (32 + L). "len-high" makes L far too large.
ENVELOPE_POSITIONS = (
    ("len-low", 0),
    ("len-mid", 1),
    ("len-high", 3),
    ("kind", 4),
    ("version", 5),
    ("reserved", 6),
    ("nonce-first", 8),
    ("nonce-last", 31),
    ("ciphertext-first", 32),
    ("ciphertext-middle", None),
    ("ciphertext-last", -17),
    ("tag-first", -16),
    ("tag-last", -1),
)


def body_end(block: bytes) -> int:
    return 32 + int(struct.unpack_from("<I", block)[0])


def envelope_offset(block: bytes, offset: int | None) -> int:
    end = body_end(block)
    if offset is None:
        return (32 + end - 16) // 2
    return end + offset if offset < 0 else offset


def outcome_for(category: str) -> str:
    return "auth@read" if category == "data" else "auth@mount"


def damaged(built: Built, *blocks: int) -> list[tuple[str, int]]:
    """(file, chunk) of each attacked data block."""
    return [built.now.owner[b] for b in blocks if b in built.now.owner]


@pytest.mark.parametrize("position", [p for p, _ in ENVELOPE_POSITIONS])
@pytest.mark.parametrize("category", CATEGORIES)
def test_flipped_bit(built: Built, category: str, position: str) -> None:
    """Any flipped bit of a sealed block's envelope (length, kind, version,
    reserved, nonce, ciphertext, tag) is an authentication failure: the
    length, kind and version are checked, the rest is under the AEAD tag,
    and the parent's reference carries the tag."""
    blocks = dict(built.blocks)
    target = built.now.targets[category]
    offset = envelope_offset(blocks[target], dict(ENVELOPE_POSITIONS)[position])
    mask = 0x80 if position == "len-high" else 0x01
    blocks[target] = flip(blocks[target], offset, mask)
    expect(built, blocks, outcome_for(category), damaged(built, target))


def inline_data_block(built: Built) -> int:
    """/small's data block: its reference is inline in the inode record."""
    (block,) = [b for b, (path, _) in built.now.owner.items() if path == "/small"]
    return block


@pytest.mark.parametrize("position", ["len-low", "kind", "ciphertext-first", "tag-last"])
def test_flipped_inline_data_block(built: Built, position: str) -> None:
    """A small file's data block (referenced from the inode record itself, not
    from an extent map page) is checked the same way."""
    blocks = dict(built.blocks)
    target = inline_data_block(built)
    offset = envelope_offset(blocks[target], dict(ENVELOPE_POSITIONS)[position])
    blocks[target] = flip(blocks[target], offset)
    expect(built, blocks, "auth@read", damaged(built, target))


def test_swapped_inline_and_tree_data_blocks(built: Built) -> None:
    blocks = dict(built.blocks)
    a, b = inline_data_block(built), built.now.targets["data"]
    blocks[a], blocks[b] = blocks[b], blocks[a]
    expect(built, blocks, "auth@read", damaged(built, a, b))


@pytest.mark.parametrize("category", [c for c in CATEGORIES if c != "data"])
def test_flipped_padding_is_ignored(built: Built, category: str) -> None:
    """The random padding after the tag is not authenticated and carries
    nothing: altering it changes nothing. (Full data chunks have none.)"""
    blocks = dict(built.blocks)
    target = built.now.targets[category]
    end = body_end(blocks[target])
    assert end < BS
    blocks[target] = flip(blocks[target], (end + BS) // 2, 0xFF)
    expect(built, blocks, "ignored")


# Fields of /big's inode record (docs/FORMAT.md, "Inode records"), as offsets
# into the record; the record is encrypted inside its namespace leaf.
RECORD_FIELDS = (
    ("type", 0),
    ("extent-format", 1),
    ("size", 16),
    ("extent-root-block", 48),
    ("extent-root-tag", 60),
)


@pytest.mark.parametrize("field", [f for f, _ in RECORD_FIELDS])
def test_flipped_inode_record_field(built: Built, field: str) -> None:
    """An inode record is ciphertext inside its namespace leaf: altering any
    field of it (type, size, its extent map's reference) breaks the leaf."""
    blocks = dict(built.blocks)
    leaf = built.now.targets["ns-leaf"]
    at, length = built.now.record
    assert length == 72  # fixed part + extent tree reference
    blocks[leaf] = flip(blocks[leaf], 32 + at + dict(RECORD_FIELDS)[field])
    expect(built, blocks, "auth@mount")


# ---- swaps and replays ------------------------------------------------------------------


def partner(built: Built, category: str, target: int) -> int:
    """Another block of the same category: a live one if there is one, else
    one of an older generation that is still on the disk."""
    live = [b for b, c in built.now.live.items() if c == category and b != target]
    if category == "data":
        live = [b for b in live if built.now.owner[b][0] == "/big"]
    if live:
        return live[0]
    stale = [
        b
        for b, content in sorted(built.blocks.items())
        if b >= 3
        and b not in built.now.live
        and b != built.before.targets[category]
        and built.reader.category(b, content) == category
    ]
    assert stale, category
    return stale[0]


@pytest.mark.parametrize("category", CATEGORIES)
def test_swapped_blocks(built: Built, category: str) -> None:
    """Two blocks of the same kind swapped: each is bound to its address (AD)
    and its parent expects its tag, so neither opens."""
    blocks = dict(built.blocks)
    a = built.now.targets[category]
    b = partner(built, category, a)
    blocks[a], blocks[b] = blocks[b], blocks[a]
    expect(built, blocks, outcome_for(category), damaged(built, a, b))


def test_swapped_inode_records(built: Built) -> None:
    """/big's record and another one of its leaf exchanged (their fixed
    48-byte parts, in the ciphertext)."""
    blocks = dict(built.blocks)
    leaf = built.now.targets["ns-leaf"]
    other = next(at for at, _ in built.now.neighbours if at != built.now.record[0])
    content = bytearray(blocks[leaf])
    a, b = 32 + built.now.record[0], 32 + other
    content[a : a + 48], content[b : b + 48] = content[b : b + 48], content[a : a + 48]
    assert bytes(content) != blocks[leaf]
    blocks[leaf] = bytes(content)
    expect(built, blocks, "auth@mount")


@pytest.mark.parametrize("category", CATEGORIES)
def test_replayed_block_at_the_same_address(built: Built, category: str) -> None:
    """An older, authentic block of the same kind that once lived at this very
    address (before the address was freed and reused) put back: the parent's
    reference names the current tag."""
    blocks = dict(built.blocks)
    block, old = built.same_address[category]
    blocks[block] = old
    expect(built, blocks, outcome_for(category), damaged(built, block))


@pytest.mark.parametrize("category", CATEGORIES)
def test_previous_version_at_the_current_address(built: Built, category: str) -> None:
    """The previous generation's version of the same node (superblock, the
    namespace root, /big's leaf, /big's extent root and leaf, chunk
    TARGET_CHUNK) copied over the current one: sealed for another address."""
    blocks = dict(built.blocks)
    target = built.now.targets[category]
    blocks[target] = blocks[built.before.targets[category]]
    expect(built, blocks, outcome_for(category), damaged(built, target))


def test_replayed_inode_record(built: Built) -> None:
    """/big's record from the previous version of its leaf spliced into the
    current leaf at the same offset."""
    blocks = dict(built.blocks)
    leaf, old_leaf = built.now.targets["ns-leaf"], built.before.targets["ns-leaf"]
    (at, length), (old_at, _) = built.now.record, built.before.record
    content = bytearray(blocks[leaf])
    content[32 + at : 32 + at + length] = blocks[old_leaf][32 + old_at : 32 + old_at + length]
    assert bytes(content) != blocks[leaf]
    blocks[leaf] = bytes(content)
    expect(built, blocks, "auth@mount")


# ---- the header (block 0) ----------------------------------------------------------------

# (field, offset, mask, outcome): header fields are checked, then the MAC.
HEADER_FLIPS = (
    ("magic", 0, 0x01, "corrupt@mount"),
    ("format-version", 8, 0x01, "unsupported@mount"),
    ("block-size", 12, 0x01, "corrupt@mount"),  # 4097: not a power of two
    ("block-size-doubled", 13, 0x30, "corrupt@mount"),  # a power of two, not the store's
    ("total-blocks-grown", 17, 0x80, "corrupt@mount"),  # more than the store has
    ("total-blocks-shrunk", 16, 0x02, "auth@mount"),  # plausible: the MAC catches it
    ("volume-id", 30, 0x01, "auth@mount"),
    ("reserved", 44, 0x01, "auth@mount"),
    ("mac-first", 48, 0x01, "auth@mount"),
    ("mac-last", 79, 0x80, "auth@mount"),
    ("random-after-mac", 200, 0xFF, "ignored"),
    ("random-after-slots", 2000, 0xFF, "ignored"),
)


@pytest.mark.parametrize(("field", "offset", "mask", "outcome"), HEADER_FLIPS)
def test_flipped_header_field(
    built: Built, field: str, offset: int, mask: int, outcome: str
) -> None:
    blocks = dict(built.blocks)
    blocks[0] = flip(blocks[0], offset, mask)
    if field == "block-size-doubled":
        assert struct.unpack_from("<I", blocks[0], 12)[0] not in (BS, 0)
    expect(built, blocks, outcome)


def unlock(tmp_path: Path, header: bytes, passphrase: bytes) -> bytearray:
    image = tmp_path / "header.img"
    image.write_bytes(header)
    return doublecrypt.unlock_image(image, passphrase)


# Key slot 0 (PASS0) at 512; slot 1 (PASS1) is intact, so unlocking with
# PASS0 tries slot 1 too and fails there as well.
KEYSLOT_FLIPS = (
    ("state", 0, 0x01),  # slot 0 looks empty: only slot 1 is tried
    ("reserved", 3, 0x01),
    ("opslimit", 8, 0x01),
    ("opslimit-huge", 15, 0x80),  # out of Argon2's range
    ("memlimit", 16, 0x01),  # Argon2 rounds it to the same KiB: the AD catches it
    ("salt", 30, 0x01),
    ("nonce", 50, 0x01),
    ("wrapped-key", 70, 0x01),
    ("wrap-tag", 100, 0x01),
)


@pytest.mark.parametrize(("field", "offset", "mask"), KEYSLOT_FLIPS)
def test_flipped_key_slot(built: Built, tmp_path: Path, field: str, offset: int, mask: int) -> None:
    """Key slots are not under the header MAC but each is its own AEAD (the
    header fields and slot bytes 0..40 in its associated data): unlocking
    with its passphrase fails. The raw master key never reads them."""
    header = flip(built.blocks[0], 512 + offset, mask)
    assert unlock(tmp_path, built.blocks[0], PASS0) == bytearray(KEY)
    with pytest.raises(errors.AuthenticationError):
        unlock(tmp_path, header, PASS0)
    assert unlock(tmp_path, header, PASS1) == bytearray(KEY)  # the other slot
    OUTCOMES["auth@unlock"] += 1
    blocks = dict(built.blocks)
    blocks[0] = header
    expect(built, blocks, "ignored", count=False)  # the raw key still mounts


def test_flipped_key_slot_tail_is_ignored(built: Built, tmp_path: Path) -> None:
    """Bytes 112..128 of a slot are random filler."""
    header = flip(built.blocks[0], 512 + 120, 0xFF)
    assert unlock(tmp_path, header, PASS0) == bytearray(KEY)
    OUTCOMES["ignored"] += 1


def test_only_key_slot_state_flipped(tmp_path: Path) -> None:
    """The one outcome of a key-slot flip that is not an AuthenticationError:
    with a single slot, a flipped state byte makes it look empty, so
    unlocking reports that the volume has no key slot (NotFoundError).
    Nothing is revealed or accepted; the raw key still mounts."""
    blocks: dict[int, bytes] = {}
    with doublecrypt.FileSystem.format(DictStore(blocks, BS, 64), KEY) as fs:
        fs.add_passphrase(PASS0, KDF)
    with pytest.raises(errors.NotFoundError):
        unlock(tmp_path, flip(blocks[0], 512), PASS0)
    OUTCOMES["not-found@unlock"] += 1


def other_volume(key: bytes) -> dict[int, bytes]:
    blocks: dict[int, bytes] = {}
    with doublecrypt.FileSystem.format(DictStore(blocks, BS, TOTAL), key, threads=1) as fs:
        fs.write_bytes("/big", b"another volume")
    return blocks


@pytest.mark.parametrize(
    ("key", "outcome"),
    [(KEY, "corrupt@mount"), (OTHER_KEY, "auth@mount")],
    ids=["same-key", "other-key"],
)
def test_header_of_another_volume(built: Built, key: bytes, outcome: str) -> None:
    """The header swapped for another volume's. Under another key its MAC
    fails; under the same key it verifies, but its volume id then fails both
    root pointers' MACs (they bind the volume id): no valid root pointer."""
    blocks = dict(built.blocks)
    blocks[0] = other_volume(key)[0]
    expect(built, blocks, outcome)


def test_replayed_header_drops_a_key_slot(built: Built, tmp_path: Path) -> None:
    """Block 0 from before PASS1 was added: the volume still mounts with the
    key (the header fields and MAC are unchanged) but PASS1 no longer
    unlocks. (The reverse - replaying a header to revive a removed
    passphrase - is the documented whole-volume rollback limit: removing a
    slot does not change the master key, and a copy of the old header
    unlocks offline anyway.)"""
    blocks = dict(built.blocks)
    blocks[0] = built.header_one_slot
    with pytest.raises(errors.AuthenticationError):
        unlock(tmp_path, blocks[0], PASS1)
    OUTCOMES["auth@unlock"] += 1
    expect(built, blocks, "ignored", count=False)


# ---- root pointers -------------------------------------------------------------------------

ROOT_FIELDS = (
    ("generation", 0),
    ("superblock-block", 9),
    ("superblock-tag", 20),
    ("mac-first", 32),
    ("mac-last", 63),
)


@pytest.mark.parametrize("field", [f for f, _ in ROOT_FIELDS])
@pytest.mark.parametrize(
    ("which", "outcome"),
    [("newest", "fallback"), ("older", "ignored"), ("both", "corrupt@mount")],
)
def test_flipped_root_pointer(built: Built, which: str, outcome: str, field: str) -> None:
    """A root pointer whose MAC fails is ignored (a torn write looks the
    same). The newest one damaged: the previous generation mounts, exactly
    as committed - a one-step rollback the format cannot tell from a crash
    during the last commit. Both damaged: no valid root pointer."""
    blocks = dict(built.blocks)
    newest = newest_slot(blocks)
    slots = {"newest": [newest], "older": [3 - newest], "both": [1, 2]}[which]
    for slot in slots:
        blocks[slot] = flip(blocks[slot], dict(ROOT_FIELDS)[field])
    expect(built, blocks, outcome)


def test_flipped_only_root_pointer() -> None:
    """Right after formatting only slot A holds a root pointer (B is random):
    damaging it leaves none."""
    blocks: dict[int, bytes] = {}
    with doublecrypt.FileSystem.format(DictStore(blocks, BS, 64), KEY):
        pass
    blocks[1] = flip(blocks[1], 40)
    with pytest.raises(errors.CorruptionError):
        doublecrypt.FileSystem(DictStore(blocks, BS, 64), KEY)
    OUTCOMES["corrupt@mount"] += 1


def test_flipped_root_pointer_tail_is_ignored(built: Built) -> None:
    blocks = dict(built.blocks)
    slot = newest_slot(blocks)
    blocks[slot] = flip(blocks[slot], 100, 0xFF)
    expect(built, blocks, "ignored")


def test_swapped_root_pointers(built: Built) -> None:
    """A and B exchanged: the MAC binds the slot number, so neither verifies."""
    blocks = dict(built.blocks)
    blocks[1], blocks[2] = blocks[2], blocks[1]
    expect(built, blocks, "corrupt@mount")


def test_root_pointer_of_another_volume(built: Built) -> None:
    """The newest root pointer replaced by another volume's (same key, same
    slot): the MAC binds the volume id, so it is ignored like a torn one."""
    blocks = dict(built.blocks)
    slot = newest_slot(blocks)
    blocks[slot] = other_volume(KEY)[slot]
    expect(built, blocks, "fallback")


def test_newest_root_pointer_rolled_back(built: Built) -> None:
    """The newest slot (generation N) rolled back to its own previous content
    (N-2): the other slot (N-1) is now the newest valid one and its tree is
    intact - the commit protocol keeps the previous generation's blocks until
    the next commit's barrier, and every remount rebuilds the allocator from
    the newest tree only. The volume mounts generation N-1 exactly and fsck
    is clean: a one-step rollback that is NOT detected. It cannot be: the
    disk is then exactly what a crash before generation N's root pointer
    write leaves behind."""
    blocks = dict(built.blocks)
    slot = newest_slot(blocks)
    previous = built.history[slot][-2]
    assert generation_of(previous) == built.generation - 2
    blocks[slot] = previous
    expect(built, blocks, "fallback")


def test_newest_root_pointer_rolled_back_after_a_remount() -> None:
    """The same when the last commit came from a new mount, whose allocator
    (rebuilt from the newest tree only) was free to reuse the blocks of
    generation N-2 - and did: rolling the newest slot back to N-2 still
    mounts N-1, intact, because nothing of N-1 could be reused while it was
    the newest; N-2's damaged tree is never looked at."""
    total = 48
    blocks: dict[int, bytes] = {}
    history: dict[int, list[bytes]] = {}

    def store() -> RecordingStore:
        return RecordingStore(blocks, history, total)

    payload = [bytes([g]) * (6 * CHUNK) for g in range(3)] + [bytes([3]) * (16 * CHUNK)]
    snapshots: dict[int, dict[int, bytes]] = {}
    with doublecrypt.FileSystem.format(store(), KEY, threads=1) as fs:
        for g in range(3):
            fs.write_bytes("/f", payload[g])
            snapshots[fs.statvfs().generation] = dict(blocks)
        n_minus_1 = fs.statvfs().generation
    with doublecrypt.FileSystem(store(), KEY, threads=1) as fs:
        fs.write_bytes("/f", payload[3])
        assert fs.statvfs().generation == n_minus_1 + 1
    slot = newest_slot(blocks)
    previous = history[slot][-2]
    assert generation_of(previous) == n_minus_1 - 1
    # The last commit overwrote blocks of generation N-2's tree.
    old = snapshots[n_minus_1 - 1]
    old_tree = Reader(old).tree(old, newest_slot(old))
    assert any(blocks[b] != old[b] for b in old_tree.live)
    blocks[slot] = previous
    with doublecrypt.FileSystem(DictStore(blocks, BS, total), KEY) as fs:
        assert fs.statvfs().generation == n_minus_1
        assert fs.read_bytes("/f") == payload[2]
        assert fs.fsck().errors == 0
    OUTCOMES["fallback"] += 1


def test_newest_root_pointer_rolled_back_far(built: Built) -> None:
    """The newest slot rolled back to its oldest content: the same, since the
    other slot's N-1 still wins."""
    blocks = dict(built.blocks)
    slot = newest_slot(blocks)
    blocks[slot] = built.early[slot]
    expect(built, blocks, "fallback")


def test_older_root_pointer_rolled_back(built: Built) -> None:
    """The older slot (N-1) rolled back to its previous content (N-3): the
    newest still wins; nothing changes."""
    blocks = dict(built.blocks)
    slot = 3 - newest_slot(blocks)
    assert generation_of(built.history[slot][-2]) == built.generation - 3
    blocks[slot] = built.history[slot][-2]
    expect(built, blocks, "ignored")


def test_both_root_pointers_rolled_back_without_the_blocks(built: Built) -> None:
    """Both root pointers rolled back to an old generation whose blocks were
    freed and reused since: its tree no longer verifies - detected."""
    blocks = dict(built.blocks)
    old = built.reader.tree(built.early, newest_slot(built.early))
    reused = [b for b in old.live if blocks.get(b) != built.early[b]]
    assert reused, "the churn reused none of the old tree's blocks"
    blocks[1], blocks[2] = built.early[1], built.early[2]
    expect(built, blocks, "auth@mount")


def test_whole_volume_rollback_is_not_detected(built: Built) -> None:
    """The documented limit: every block restored to an older generation is a
    consistent older volume. It mounts at that generation with its old
    contents and fsck is clean - NOT detected. Detecting it needs state kept
    outside the volume (docs/FORMAT.md, "References")."""
    blocks = dict(built.early)
    with mount(blocks) as fs:
        assert fs.statvfs().generation == built.early_generation < built.generation
    expect(built, blocks, "rollback")


# ---- forgeries by a key holder: the structural checks behind authentication ----------


def seal_tag(block: bytes) -> bytes:
    end = body_end(block)
    return block[end - 16 : end]


def forge(built: Built, category: str, edit: Callable[[bytearray], object]) -> dict[int, bytes]:
    """Apply `edit` to the plaintext of the target block of `category`, then
    re-seal it and every ancestor (each parent records its child's new tag)
    and re-MAC the newest root pointer: an authentic volume whose only fault
    is the edit. Only a holder of the key (or a bug) can write this."""
    blocks = dict(built.blocks)
    codec = built.reader.codec
    targets = built.now.targets
    path = list(CATEGORIES[: CATEGORIES.index(category) + 1])
    tag = b""
    for depth in range(len(path) - 1, -1, -1):
        cat = path[depth]
        block, kind = targets[cat], KIND_OF[cat]
        plain = bytearray(codec.open(block, kind, blocks[block]))
        if depth == len(path) - 1:
            edit(plain)
        else:
            at = built.now.ref_at[cat] + 8  # the child's tag, after its block id
            plain[at : at + 16] = tag
        blocks[block] = codec.seal(block, kind, bytes(plain))
        tag = seal_tag(blocks[block])
    slot = newest_slot(blocks)
    fields = bytearray(blocks[slot][:32])
    fields[16:32] = tag  # the superblock reference's tag (its block id is unchanged)
    mac_key = bytes(doublecrypt.derive_subkey(KEY, doublecrypt.SUBKEY_ROOT_MAC))
    message = b"doublecrypt root pointer v2" + blocks[0][24:40] + bytes([slot]) + fields
    mac = hmac.new(mac_key, message, hashlib.sha256).digest()
    blocks[slot] = bytes(fields) + mac + blocks[slot][64:]
    return blocks


def put_u64(offset: int, value: int) -> Callable[[bytearray], None]:
    def edit(plain: bytearray) -> None:
        struct.pack_into("<Q", plain, offset, value)

    return edit


def add_u64(offset: int, delta: int) -> Callable[[bytearray], None]:
    def edit(plain: bytearray) -> None:
        struct.pack_into("<Q", plain, offset, struct.unpack_from("<Q", plain, offset)[0] + delta)

    return edit


def put_byte(offset: int, value: int) -> Callable[[bytearray], None]:
    def edit(plain: bytearray) -> None:
        plain[offset] = value

    return edit


def truncate_to(length: int) -> Callable[[bytearray], None]:
    def edit(plain: bytearray) -> None:
        del plain[length:]

    return edit


def forgeries(built: Built) -> dict[str, tuple[str, Callable[[bytearray], object], str]]:
    """name -> (category, edit, outcome), with offsets from the parsed tree."""
    record = built.now.record[0]
    ext_ref = built.now.ref_at["extent-leaf"]  # TARGET_CHUNK's value in its leaf
    ns_child = built.now.ref_at["ns-internal"]
    neighbour = next(b for b, o in built.now.owner.items() if o == ("/big", TARGET_CHUNK + 1))
    neighbour_ref = bytes(struct.pack("<Q", neighbour)) + seal_tag(built.blocks[neighbour])

    def duplicate(plain: bytearray) -> None:
        plain[ext_ref : ext_ref + 24] = neighbour_ref

    return {
        "superblock-generation": ("superblock", add_u64(0, 1), "corrupt@mount"),
        "superblock-root-not-a-directory": ("superblock", put_byte(56, 1), "corrupt@mount"),
        "superblock-file-count": ("superblock", add_u64(40, 1), "corrupt@fsck"),
        "ns-child-out-of-range": ("ns-internal", put_u64(ns_child, TOTAL + 5), "corrupt@mount"),
        "ns-child-is-a-root-pointer": ("ns-internal", put_u64(ns_child, 1), "corrupt@mount"),
        "ns-leaf-entry-count": ("ns-leaf", add_u64(0, 1 << 16), "corrupt@mount"),
        "record-type": ("ns-leaf", put_byte(record, 7), "corrupt@mount"),
        "record-reserved": ("ns-leaf", put_byte(record + 3, 1), "corrupt@mount"),
        "record-extent-format": ("ns-leaf", put_byte(record + 1, 9), "corrupt@mount"),
        "extent-level": ("extent-internal", put_byte(0, 5), "corrupt@mount"),
        "extent-referenced-twice": ("extent-leaf", duplicate, "corrupt@mount"),
        "extent-entry-key-length": ("extent-leaf", add_u64(2, 1 << 16), "corrupt@mount"),
        "data-shorter-than-extent": ("data", truncate_to(100), "corrupt@read"),
    }


FORGERIES = (
    "superblock-generation",
    "superblock-root-not-a-directory",
    "superblock-file-count",
    "ns-child-out-of-range",
    "ns-child-is-a-root-pointer",
    "ns-leaf-entry-count",
    "record-type",
    "record-reserved",
    "record-extent-format",
    "extent-level",
    "extent-referenced-twice",
    "extent-entry-key-length",
    "data-shorter-than-extent",
)


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_structure(built: Built, name: str) -> None:
    """Authentic blocks with inconsistent contents: mount (or fsck) reports
    CorruptionError, never a crash or a silently wrong volume."""
    category, edit, outcome = forgeries(built)[name]
    blocks = forge(built, category, edit)
    assert blocks != built.blocks
    expect(built, blocks, outcome, damaged(built, built.now.targets[category]))


def test_forge_without_edit_is_a_valid_volume(built: Built) -> None:
    """The forging helper itself: re-sealing the path with no edit gives a
    volume that mounts generation N exactly (so the rows above test only
    their edit)."""
    for category in CATEGORIES:
        blocks = forge(built, category, lambda plain: None)
        expect(built, blocks, "ignored", count=False)
