"""Shared test configuration: hypothesis profiles and the paths tests use.

HYPOTHESIS_PROFILE=ci|dev|expensive picks the profile (default: ci under CI,
dev otherwise); DC_SLOW_TESTS=1 unlocks the expensive property runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("expensive", max_examples=5000, deadline=None)
settings.load_profile(
    os.environ.get(
        "HYPOTHESIS_PROFILE",
        "expensive" if os.environ.get("DC_SLOW_TESTS") else "ci" if os.environ.get("CI") else "dev",
    )
)
