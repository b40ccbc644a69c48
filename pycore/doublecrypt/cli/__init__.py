"""The ``doublecrypt`` command (click + rich). Commands live in small modules
of this package and are registered here."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
