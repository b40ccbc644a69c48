"""A real ``redis-server`` on 127.0.0.1 for the tests: started on a free port in
a temporary directory, no persistence, stopped afterwards.

Use it as a context manager or through a fixture in the test module::

    from redisserver import RedisServer

    @pytest.fixture(scope="module")
    def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with RedisServer.start(tmp_path_factory.mktemp("redis")) as server:
            yield server.url

Tests sharing one server should use distinct key prefixes (or ``flushall``).
``redis-server`` comes from Debian (``make deps`` installs it); when it is
missing the fixture fails rather than skips, so a gap cannot pass unnoticed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["REDIS_SERVER", "RedisServer", "free_port"]

REDIS_SERVER = "redis-server"
START_TIMEOUT = 10.0  # seconds until the server answers PING
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout: float) -> bool:
    """True when a Redis server answers PING on the port (raw RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One running ``redis-server`` process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, directory: Path, *, attempts: int = 5) -> RedisServer:
        """Start a server with its working directory and log in ``directory``.
        Retries on another port if the chosen one was taken meanwhile."""
        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            pytest.fail(f"{REDIS_SERVER} is not installed (run `make deps`)")
        directory.mkdir(parents=True, exist_ok=True)
        log = directory / "redis.log"
        for _ in range(attempts):
            port = free_port()
            # no persistence: the server lives only for the tests
            options = {"bind": "127.0.0.1", "port": str(port), "save": "", "appendonly": "no"}
            options |= {"daemonize": "no", "dir": str(directory), "logfile": str(log)}
            argv = [binary]
            for name, value in options.items():
                argv += [f"--{name}", value]
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=directory,
            )
            server = cls(proc, port, log)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                if _ping(port, 1.0):
                    return server
                time.sleep(0.05)
            server.stop()
        log_text = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"redis-server did not start; log:\n{log_text[-2000:]}")

    def stop(self) -> None:
        """Terminate the server (SIGKILL if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
