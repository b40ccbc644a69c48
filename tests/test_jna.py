"""Kotlin/JNI consumers: a Java program drives libdoublecrypt.so through JNA
(Debian libjna-java and the JDK): format, write, read back, list, remount."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JNA = Path("/usr/share/java/jna.jar")

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or not JNA.exists(),
    reason="needs a JDK and Debian libjna-java (make test installs them)",
)


def test_java_program_uses_the_filesystem(tmp_path: Path) -> None:
    subprocess.run(["make", "-s", "lib"], cwd=ROOT, check=True)
    subprocess.run(
        [
            "javac",
            "-cp",
            str(JNA),
            "-d",
            str(tmp_path),
            str(ROOT / "tests/jna/DoubleCryptJna.java"),
        ],
        check=True,
    )
    image = tmp_path / "jna.img"
    out = subprocess.run(
        ["java", "-cp", f"{JNA}:{tmp_path}", "DoubleCryptJna", str(ROOT / "build"), str(image)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "hello from the JVM ['hello.txt']".replace("'", "") in out.stdout.replace("'", "")
