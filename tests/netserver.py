"""A ``doublecrypt serve`` subprocess on 127.0.0.1, for the tests
(test_server.py, test_remote.py) and bench/net_report.py: start it, wait for
the JSON ``listening`` line it prints, stop it. Its stderr goes to a log file
next to its data directory."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["ServeProcess", "start_serve"]

SERVE = [sys.executable, "-c", "from doublecrypt.cli import main; main()", "serve"]


class ServeProcess:
    """A running server and what it printed once listening."""

    def __init__(self, proc: subprocess.Popen[bytes], data: Path, log: Path, log_start: int):
        self.proc = proc
        self.data = data
        self.log = log
        self._log_start = log_start
        self.info: dict[str, Any] = {}

    @property
    def noise(self) -> str:
        """The Noise listener, ``host:port``."""
        return str(self.info["noise"])

    @property
    def tls(self) -> str | None:
        """The TLS listener, ``host:port`` (None without ``--tls-listen``)."""
        return self.info.get("tls")

    @property
    def server_key(self) -> str:
        """The server's Noise public key, hex."""
        return str(self.info["server_key"])

    @property
    def tls_fingerprint(self) -> str | None:
        return self.info.get("tls_fingerprint")

    @property
    def admin(self) -> str | None:
        """The management API, ``host:port`` (None without ``--admin``)."""
        return self.info.get("admin")

    def log_text(self) -> str:
        """What this process wrote to stderr."""
        with self.log.open("rb") as f:
            f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` (SIGKILL after ``timeout`` seconds); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def start_serve(
    data: Path,
    *args: str,
    listen: str = "127.0.0.1:0",
    log: Path | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> ServeProcess:
    """Start ``doublecrypt serve --listen LISTEN --data DATA ARGS`` and wait
    for its ``listening`` line. A server that exits first is started again
    until ``timeout`` (a port just released may take a moment to bind).
    ``env``: the server's environment (default: this one's)."""
    log = log or data.parent / f"{data.name}-server.log"
    cmd = [*SERVE, "--listen", listen, "--data", str(data), *args]
    deadline = time.monotonic() + timeout
    while True:
        log_start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env)
        server = ServeProcess(proc, data, log, log_start)
        assert proc.stdout is not None
        line = b""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                line = proc.stdout.readline()
                break
        if line:
            break
        server.stop(signal.SIGKILL, timeout=5)
        if time.monotonic() >= deadline:
            raise AssertionError(f"server did not start: {server.log_text()}")
        time.sleep(0.2)
    server.info = json.loads(line)
    assert server.info["event"] == "listening", server.info
    return server
