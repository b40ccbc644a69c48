"""`make demo` (doublecrypt demo) passes on this checkout and on any tree."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from doublecrypt.cli import main
from doublecrypt.cli.demo import byte_entropy


def test_demo_on_the_project_tree() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "demo passed" in result.output
    assert "yes (!)" not in result.output  # no plaintext found in the image
    assert "8.0000 bits/byte" in result.output


def test_demo_on_a_given_tree(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.bin").write_bytes(bytes(range(256)) * 100)
    (tmp_path / "top.txt").write_text("plain text that must not show up in the image\n" * 20)
    result = CliRunner().invoke(main, ["demo", "--source", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 / 2 identical" in result.output


def test_entropy_measure() -> None:
    assert byte_entropy(bytes(range(256)) * 4) == 8.0
    assert byte_entropy(b"a" * 100) == 0.0
