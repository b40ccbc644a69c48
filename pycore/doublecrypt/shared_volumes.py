"""Volumes opened once per process and lent to every object that names them.

An image has no lock against a second writer: two engines mounting one image
in the same process would each commit over blocks the other still uses. Yet
fsspec makes one filesystem object per thread (its cache token holds the
thread id), and pandas or pyarrow may ask for several. So the fsspec protocol
borrows its :class:`~doublecrypt.FileSystem` from here: the first borrower
opens the volume, later ones share it, the last one to give it back syncs and
closes it (and so does the interpreter's exit, for borrowers never closed).

Secrets never need to be kept to recognise them again: :class:`Secret` gives
a keyed BLAKE2b digest under a key drawn when this module loads, so a digest
(what fsspec's instance cache sees instead of a passphrase) can only be
matched inside this process and cannot be guessed at offline.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from typing import Literal

from typing_extensions import Buffer

from . import errors
from .api import FileSystem, open_image, open_remote, unlock_image

__all__ = [
    "SHARED_VOLUMES",
    "ImageVolume",
    "RemoteVolume",
    "Secret",
    "SharedVolumes",
    "VolumeLease",
    "VolumeSpec",
]

MASTER_KEY_BYTES = 32

# Drawn per process: digests made with it mean nothing anywhere else.
_DIGEST_KEY = os.urandom(32)


def _digest(kind: bytes, secret: Buffer) -> str:
    return hashlib.blake2b(secret, key=_DIGEST_KEY, digest_size=20, person=kind).hexdigest()


def _wipe(secret: bytearray) -> None:
    secret[:] = bytes(len(secret))


class Secret:
    """A passphrase or raw master key, copied into a bytearray so it can be wiped."""

    def __init__(self, kind: Literal["passphrase", "key"], value: bytearray) -> None:
        self.kind = kind
        self.value = value

    @classmethod
    def from_options(
        cls, passphrase: str | Buffer | None, key: str | Buffer | None
    ) -> Secret | None:
        """The secret among the options (None if neither is given). A key is
        32 bytes or 64 hex digits; a passphrase is text (UTF-8) or bytes."""
        if passphrase is not None and key is not None:
            raise errors.InvalidArgumentError("give passphrase= or key=, not both")
        if passphrase is not None:
            raw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
            return cls("passphrase", bytearray(raw))
        if key is None:
            return None
        if isinstance(key, str):
            try:
                value = bytearray.fromhex(key)
            except ValueError:
                raise errors.InvalidArgumentError("key= takes 32 bytes or 64 hex digits") from None
        else:
            value = bytearray(key)
        if len(value) != MASTER_KEY_BYTES:
            _wipe(value)
            raise errors.InvalidArgumentError("key= takes 32 bytes or 64 hex digits")
        return cls("key", value)

    @property
    def digest(self) -> str:
        """Keyed digest, equal for equal secrets within this process (a key
        given as hex and as bytes digests alike)."""
        return _digest(self.kind.encode(), self.value)

    def wipe(self) -> None:
        _wipe(self.value)


@dataclass(frozen=True)
class ImageVolume:
    """A volume in an image file."""

    path: str
    threads: int = 0

    @property
    def identity(self) -> tuple[str, ...]:
        return ("image", os.path.realpath(self.path))

    def master_key(self, secret: Secret) -> bytearray:
        if secret.kind == "passphrase":
            return unlock_image(self.path, secret.value)
        return bytearray(secret.value)

    def open(self, master_key: bytearray, read_only: bool) -> FileSystem:
        return open_image(self.path, key=master_key, read_only=read_only, threads=self.threads)


@dataclass(frozen=True)
class RemoteVolume:
    """A volume on a block server (the options of :func:`doublecrypt.open_remote`)."""

    address: str
    volume: str = "default"
    server_key: str | None = None
    known_hosts: str | None = None
    transport: Literal["noise", "tls"] = "noise"
    tls_fingerprint: str | None = None
    connect_timeout: float = 10.0
    io_timeout: float = 30.0
    threads: int = 0

    @property
    def identity(self) -> tuple[str, ...]:
        return ("remote", self.address, self.volume)

    def master_key(self, secret: Secret) -> bytearray:
        if secret.kind == "passphrase":
            # The key slots of a remote volume sit on the server, which serves
            # nothing before the key authenticates.
            raise errors.InvalidArgumentError("a remote volume opens with key=, not passphrase=")
        return bytearray(secret.value)

    def open(self, master_key: bytearray, read_only: bool) -> FileSystem:
        return open_remote(
            self.address,
            key=master_key,
            volume=self.volume,
            server_key=self.server_key,
            known_hosts=self.known_hosts,
            transport=self.transport,
            tls_fingerprint=self.tls_fingerprint,
            connect_timeout=self.connect_timeout,
            io_timeout=self.io_timeout,
            threads=self.threads,
            read_only=read_only,
        )


VolumeSpec = ImageVolume | RemoteVolume


def _required(secret: Secret | None) -> Secret:
    if secret is None:
        raise errors.InvalidArgumentError(
            "give passphrase= or key= (they are never kept, so a filesystem object "
            "rebuilt in another process, or after close(), needs them again)"
        )
    return secret


@dataclass
class _OpenVolume:
    fs: FileSystem
    read_only: bool
    master_digest: str
    verified: set[str] = field(default_factory=set)  # digests of secrets that open it
    borrowers: int = 0


class VolumeLease:
    """One borrower's hold on a shared volume; :meth:`release` gives it back."""

    def __init__(self, owner: SharedVolumes, identity: tuple[str, ...], fs: FileSystem) -> None:
        self._owner = owner
        self._identity = identity
        self.fs: FileSystem | None = fs

    @property
    def released(self) -> bool:
        return self.fs is None

    def release(self) -> None:
        """Give the volume back (idempotent); the last lease closes it."""
        if self.fs is not None:
            self.fs = None
            self._owner._give_back(self._identity)


class SharedVolumes:
    """The open volumes of this process, by identity (image path, or server
    and volume name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, ...], _OpenVolume] = {}
        # Volumes a forked child inherited: never closed there, since closing
        # syncs and the parent still writes to the same image.
        self._inherited: list[_OpenVolume] = []

    def borrow(
        self, spec: VolumeSpec, secret: Secret | None, digest: str | None, *, read_only: bool
    ) -> VolumeLease:
        """Lend the volume ``spec`` names, opening it first if nobody has.

        ``secret`` must open it, unless ``digest`` is that of a secret that
        already did in this process (a filesystem object rebuilt from its
        storage options carries only the digest)."""
        identity = spec.identity
        with self._lock:  # held while opening, so one volume is never mounted twice
            shared = self._open.get(identity)
            if shared is None:
                shared = self._mount(spec, secret, read_only)
                self._open[identity] = shared
            else:
                if shared.read_only and not read_only:
                    raise errors.error_for_status(
                        -18, "already open read-only in this process", identity[-1]
                    )
                if digest is None or digest not in shared.verified:
                    self._verify(shared, spec, _required(secret))
            if secret is not None:
                shared.verified.add(secret.digest)
            shared.borrowers += 1
            return VolumeLease(self, identity, shared.fs)

    def _mount(self, spec: VolumeSpec, secret: Secret | None, read_only: bool) -> _OpenVolume:
        master = spec.master_key(_required(secret))
        try:
            fs = spec.open(master, read_only)
            return _OpenVolume(fs, read_only, _digest(b"master", master))
        finally:
            _wipe(master)

    @staticmethod
    def _verify(shared: _OpenVolume, spec: VolumeSpec, secret: Secret) -> None:
        """Check that a secret not seen before opens the volume already open."""
        master = spec.master_key(secret)  # a wrong passphrase raises here
        try:
            if not hmac.compare_digest(_digest(b"master", master), shared.master_digest):
                raise errors.AuthenticationError("the key does not open this volume")
        finally:
            _wipe(master)

    def _give_back(self, identity: tuple[str, ...]) -> None:
        with self._lock:
            shared = self._open.get(identity)
            if shared is None:
                return  # closed by close_all() already
            shared.borrowers -= 1
            if shared.borrowers > 0:
                return
            del self._open[identity]
        shared.fs.close()  # syncs

    def open_count(self) -> int:
        """How many volumes are open (for tests and diagnostics)."""
        with self._lock:
            return len(self._open)

    def close_all(self) -> None:
        """Sync and close every volume, whoever still borrows it (at exit)."""
        with self._lock:
            volumes = list(self._open.values())
            self._open.clear()
        failure: BaseException | None = None
        for shared in volumes:
            try:
                shared.fs.close()
            except errors.DoubleCryptError as exc:  # close the others first
                failure = failure or exc
        if failure is not None:
            raise failure

    def forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._inherited.extend(self._open.values())
        self._open.clear()


SHARED_VOLUMES = SharedVolumes()
atexit.register(SHARED_VOLUMES.close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=SHARED_VOLUMES.forget_after_fork)
