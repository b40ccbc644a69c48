"""The known-hosts file: trust on first use for servers' static keys.

One line per server, ``host:port <64 hex digits>``; blank lines and lines
starting with ``#`` are kept as they are. The file is rewritten atomically
(temporary file, fsync, rename) with mode 0600.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import pathlib
import re
import tempfile
from typing import Final

from ..errors import HostKeyChangedError, InvalidArgumentError
from .keys import KEY_BYTES, fingerprint

_HOST = re.compile(r"\S+:[0-9]{1,5}")
_KEY = re.compile(r"[0-9a-fA-F]{64}")
_FORMAT_HINT: Final = "expected 'host:port <64 hex digits>'"


class KnownHosts:
    """Servers' static public keys by ``host:port``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)

    @staticmethod
    def default_path() -> pathlib.Path:
        """``$XDG_CONFIG_HOME/doublecrypt/known_hosts`` (``~/.config`` by default)."""
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            os.path.expanduser("~"), ".config"
        )
        return pathlib.Path(config) / "doublecrypt" / "known_hosts"

    def lookup(self, host: str) -> bytes | None:
        """The key recorded for ``host`` (``"host:port"``), or None."""
        _check_host(host)
        return self._read()[1].get(host)

    def check(self, host: str, public_key: bytes) -> bool:
        """True when ``host``'s key was unknown and is now recorded (first use),
        False when it matches the record; :class:`HostKeyChangedError` when the
        server presents a different key than the one recorded."""
        _check_host(host)
        if len(public_key) != KEY_BYTES:
            raise InvalidArgumentError(
                f"a public key must be {KEY_BYTES} bytes, got {len(public_key)}"
            )
        lines, keys = self._read()
        known = keys.get(host)
        if known is not None:
            if hmac.compare_digest(known, public_key):
                return False
            raise HostKeyChangedError(
                f"the server {host} presented a different key than the one recorded in "
                f"{self.path}: recorded {fingerprint(known)}, presented "
                f"{fingerprint(public_key)}. It may be an impostor; if the server's key "
                "really changed, remove its line from the known-hosts file."
            )
        lines.append(f"{host} {bytes(public_key).hex()}")
        self._write(lines)
        return True

    def _read(self) -> tuple[list[str], dict[str, bytes]]:
        """The file's lines and the keys they record (both empty for no file)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], {}
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{self.path}: not a known-hosts file (not UTF-8)") from None
        lines = text.splitlines()
        keys: dict[str, bytes] = {}
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            fields = stripped.split()
            if len(fields) != 2 or not _HOST.fullmatch(fields[0]) or not _KEY.fullmatch(fields[1]):
                raise InvalidArgumentError(
                    f"{self.path}:{number}: malformed known-hosts line ({_FORMAT_HINT})"
                )
            host = fields[0]
            if host in keys:
                raise InvalidArgumentError(
                    f"{self.path}:{number}: {host} is listed twice; keep one line per server"
                )
            keys[host] = bytes.fromhex(fields[1])
        return lines, keys

    def _write(self, lines: list[str]) -> None:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600.
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".known_hosts.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{line}\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        try:
            directory_fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return  # the rename is done; syncing the directory is best effort
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def _check_host(host: str) -> None:
    if (
        not isinstance(host, str)
        or not _HOST.fullmatch(host)
        or not 0 < int(host.rpartition(":")[2]) < 65536
    ):
        raise InvalidArgumentError(f"host must look like 'host:port', got {host!r}")
