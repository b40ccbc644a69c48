"""The block server never sees a key or plaintext: its modules (and the
channel they use) import nothing from the filesystem layer (DESIGN.md,
"Dependency rules"). Checked on the source, so a new import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pycore" / "doublecrypt"
SERVER_SIDE = [
    *sorted((PACKAGE / "channel").glob("*.py")),
    *sorted((PACKAGE / "ncryptf").glob("*.py")),
    *(
        PACKAGE / "net" / f"{name}.py"
        for name in (
            "server",
            "volumes",
            "wire",
            "tls",
            "admin_api",
            "admin_tokens",
            "admin_volumes",
        )
    ),
]
FORBIDDEN = ("_lowlevel", "_native", "api", "files", "net.store", "net.client", "net.connection")


def module_level_imports(path: Path) -> list[str]:
    """Relative and absolute imports at module level (not inside functions)."""
    found: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found += [base] if node.module else [f"{base}{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


@pytest.mark.parametrize("path", SERVER_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_server_side_imports_no_filesystem_layer(path: Path) -> None:
    assert path.exists(), path
    for name in module_level_imports(path):
        bare = name.lstrip(".").removeprefix("doublecrypt.")
        assert not any(bare == bad or bare.startswith(bad + ".") for bad in FORBIDDEN), (
            f"{path.name} imports {name}"
        )
