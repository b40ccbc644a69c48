"""``NetworkStore``: the engine's block store on a block server.

The engine calls it through the custom-store vtable with whole batches of
block ids; each batch becomes one pipelined :class:`BlockClient` batch. The
store is built from the volume's master key, from which it derives only what
the network needs (docs/PROTOCOL.md section 1): the auth token and the
client's Noise static key. The master key itself never leaves this process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Literal

import blake3
from typing_extensions import Buffer

from .._lowlevel import SUBKEY_SERVER_AUTH, derive_subkey
from .._lowlevel.store import CustomStore
from ..channel import Keypair, KnownHosts, derive_client_keypair
from ..errors import InvalidArgumentError
from . import wire
from .client import BlockClient, Ticket
from .connection import DEFAULT_PORT, parse_address

__all__ = ["READ_AHEAD_BYTES", "NetworkStore", "auth_token_hash"]

READ_AHEAD_BYTES = 4 << 20
"""The largest read-ahead window (fetched as pipelined ~1 MiB requests)."""


def _wipe(secret: bytearray) -> None:
    secret[:] = bytes(len(secret))


def _server_key_bytes(server_key: bytes | str | None) -> bytes | None:
    if server_key is None or isinstance(server_key, bytes):
        return server_key
    try:
        key = bytes.fromhex(server_key.replace(":", "").strip())
    except ValueError:
        raise InvalidArgumentError("server_key must be 64 hex digits") from None
    if len(key) != 32:
        raise InvalidArgumentError(f"server_key must be 64 hex digits, got {len(key) * 2}")
    return key


def auth_token_hash(master_key: Buffer) -> str:
    """BLAKE3 of the auth token (hex): what a server admin registers for a
    volume (``doublecrypt volume create --token-hash``)."""
    token = derive_subkey(master_key, SUBKEY_SERVER_AUTH)
    try:
        return blake3.blake3(bytes(token)).hexdigest()
    finally:
        _wipe(token)


@dataclass
class _Window:
    """Blocks ``[start, end)`` read ahead into ``data`` (still arriving
    while ``ticket`` has answers left)."""

    start: int
    end: int
    data: bytearray
    ticket: Ticket

    def holds(self, block: int) -> bool:
        return self.start <= block < self.end


class _ReadAhead:
    """Sequential reads in large, overlapped requests.

    The engine reads a file's data one block per call (on its codec
    threads, so that local I/O overlaps decryption); over a network each
    call would cost a round trip. When single-block reads run in sequence,
    this reads the blocks that follow too, in a window that doubles up to
    READ_AHEAD_BYTES, serves the next reads from it, and asks for the next
    window at once, so the server sends it while the engine decrypts this
    one. Writes go through here: one to a block of a window drops that
    window first, so reads always see this client's latest data; other
    clients' writes (a server over a shared object store) are seen after
    :meth:`forget`, which ``FileSystem.refresh`` calls."""

    def __init__(self, client: BlockClient) -> None:
        self.client = client
        self.max_blocks = max(1, READ_AHEAD_BYTES // client.block_size)
        self.window = 1
        self.current: _Window | None = None
        self.previous: _Window | None = None
        self.ahead: _Window | None = None
        self.next_expected = -1
        self.lock = threading.Lock()

    def _fetch(self, block: int, *, wait: bool) -> _Window:
        self.window = min(self.max_blocks, self.window * 2)
        count = min(self.window, self.client.total_blocks - block)
        data = bytearray(count * self.client.block_size)
        ticket = self.client.read_blocks_into(
            range(block, block + count), memoryview(data), wait=wait
        )
        return _Window(block, block + count, data, ticket)

    def read(self, block: int, out: memoryview) -> bool:
        """Serve one block from a window; False when it should be read alone."""
        bs = self.client.block_size
        with self.lock:
            # The window before stays: the codec threads may ask out of order.
            window = next((w for w in (self.current, self.previous) if w and w.holds(block)), None)
            if window is None:
                ahead = self.ahead
                if ahead is not None and ahead.holds(block):
                    self.ahead = None
                    if self.client.finish(ahead.ticket):
                        window = ahead
                if window is None:
                    # the next block, or the one after (two codec threads race)
                    if not self.next_expected <= block <= self.next_expected + 1:
                        self.window = 1
                        self.next_expected = block + 1
                        return False
                    window = self._fetch(block, wait=True)
                self.previous, self.current = self.current, window
                if window.end < self.client.total_blocks:
                    self.ahead = self._fetch(window.end, wait=False)
            offset = (block - window.start) * bs
            out[:] = memoryview(window.data)[offset : offset + bs]
            self.next_expected = max(self.next_expected, block + 1)
            return True

    def write(self, ids: list[int], data: memoryview) -> None:
        """Write through, dropping the windows that hold any of ``ids``."""
        with self.lock:
            if self.current and any(self.current.holds(block) for block in ids):
                self.current = None
            if self.previous and any(self.previous.holds(block) for block in ids):
                self.previous = None
            if self.ahead and any(self.ahead.holds(block) for block in ids):
                self.ahead = None
            self.client.write_blocks(ids, data, wait=False)  # overlaps the next batch

    def forget(self) -> None:
        with self.lock:
            self.current = self.previous = self.ahead = None
            self.window = 1
            self.next_expected = -1


class NetworkStore(CustomStore):
    """A volume on a block server, as a block store for the engine.

    ``address`` is ``HOST:PORT`` (``[IPv6]:PORT``). Over Noise, ``server_key``
    (32 bytes or 64 hex digits) pins the server's key (Noise IK); without it
    the key is checked against ``known_hosts`` (a :class:`KnownHosts` or its
    path; default file when None), recorded on first contact (Noise XX).
    ``create=(block_size, total_blocks)`` asks the server to create the
    volume when missing (:attr:`created` tells whether it did). ``epoch``
    selects the client's device key. Connects in the constructor."""

    def __init__(
        self,
        address: str,
        *,
        key: Buffer,
        volume: str = wire.DEFAULT_VOLUME,
        create: tuple[int, int] | None = None,
        server_key: bytes | str | None = None,
        known_hosts: KnownHosts | str | os.PathLike[str] | None = None,
        transport: Literal["noise", "tls"] = "noise",
        tls_fingerprint: str | None = None,
        hash_name: str = "BLAKE2s",
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
        epoch: int = 0,
    ) -> None:
        host, port = parse_address(address, DEFAULT_PORT)
        pin = _server_key_bytes(server_key)
        hosts: KnownHosts | None = None
        if transport == "noise" and pin is None:
            if isinstance(known_hosts, KnownHosts):
                hosts = known_hosts
            else:
                hosts = KnownHosts(known_hosts or KnownHosts.default_path())
        master = bytearray(key)
        token = bytearray()
        static: Keypair | None = None
        try:
            if len(master) != 32:
                raise InvalidArgumentError(f"the master key is 32 bytes, got {len(master)}")
            token = derive_subkey(master, SUBKEY_SERVER_AUTH)
            static = derive_client_keypair(master, epoch)
            self.client = BlockClient(
                host,
                port,
                auth_token=token,
                volume=volume,
                create=create,
                transport=transport,
                client_static=static,
                server_key=pin,
                known_hosts=hosts,
                tls_fingerprint=tls_fingerprint,
                hash_name=hash_name,
                connect_timeout=connect_timeout,
                io_timeout=io_timeout,
            )
        except BaseException:
            if static is not None:
                static.wipe()
            raise
        finally:
            _wipe(master)
            _wipe(token)  # the client keeps its own copy (for reconnects), wiped on close
        self._static = static  # the client needs it to reconnect; wiped on release
        self.address = self.client.address
        self.volume = volume
        self.created = self.client.info.created
        self._read_ahead = _ReadAhead(self.client)
        try:
            super().__init__(self.client.block_size, self.client.total_blocks)
        except BaseException:
            self.client.close()
            self._static.wipe()
            raise

    def read_into(self, ids: list[int], out: memoryview) -> None:
        if len(ids) == 1 and self._read_ahead.read(ids[0], out):
            return
        self.client.read_blocks_into(ids, out)

    def write_from(self, ids: list[int], data: memoryview) -> None:
        self._read_ahead.write(ids, data)

    def flush(self) -> None:
        self.client.sync()

    def forget(self) -> None:
        self._read_ahead.forget()
        self.client.forget()

    def release(self) -> None:
        self.client.close()  # wipes the client's copy of the auth token
        self._static.wipe()

    @property
    def session_id(self) -> bytes | None:
        return self.client.session_id
