"""pytest set-up for the benchmarks: also collect ``bench_*.py`` files.

The project's pytest configuration (pyproject.toml) only looks for
``test_*.py``; ``pytest bench`` must pick up the benchmark modules too.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
