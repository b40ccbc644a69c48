"""The README's Python examples run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from netserver import start_serve
from s3server import require_weed, start_cluster

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if "open_object_store" in code:  # the object-store example, against real SeaweedFS
        require_weed()
        with start_cluster(tmp_path / "s3") as cluster:
            cluster.make_bucket("vols")
            monkeypatch.setenv("AWS_ENDPOINT_URL", cluster.endpoint_url)
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", cluster.access_key)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", cluster.secret_key)
            monkeypatch.setenv("AWS_DEFAULT_REGION", cluster.region)
            exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        return
    if "NcryptfAuth" in code:  # the management API example, against a real server
        server = start_serve(tmp_path / "srv", "--admin", "127.0.0.1:0")
        try:
            code = code.replace('"http://127.0.0.1:7451"', repr(f"http://{server.admin}"))
            exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        finally:
            assert server.stop() == 0
        return
    if "open_remote" not in code:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        assert os.listdir(tmp_path) or "open_image" not in code
        return
    # The remote example, against a real server on the port it names.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # known_hosts
    server = start_serve(tmp_path / "srv")
    try:
        code = code.replace('"127.0.0.1:7450"', repr(server.noise))
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    finally:
        assert server.stop() == 0
    assert list((tmp_path / "srv" / "volumes").glob("*.img"))


def test_readme_has_exactly_two_setup_commands() -> None:
    setup = README.read_text().split("## Set-up", 1)[1].split("##", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", setup, re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
