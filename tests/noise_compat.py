"""PyPI ``noiseprotocol`` 0.3.1, the independent Noise implementation that
tests/noise_peer.py and bench/channel_report.py compare ours with, imported
with one fix: it deletes the handshake state, and with it the peer's static
key, when the handshake ends (and offers no accessor), so keep a copy first
as ``connection.noise_protocol.remote_static`` (the reference bench's patch).
"""

from __future__ import annotations

import warnings
from typing import Any

warnings.simplefilter("ignore")  # noiseprotocol uses cryptography's deprecated default_backend
from noise.connection import Keypair, NoiseConnection  # type: ignore[import-untyped]  # noqa: E402
from noise.noise_protocol import NoiseProtocol  # type: ignore[import-untyped]  # noqa: E402

__all__ = ["Keypair", "NoiseConnection", "NoiseProtocol"]

_original_done = NoiseProtocol.handshake_done


def _keep_remote_static(self: Any) -> None:
    remote = getattr(self.handshake_state, "rs", None)
    self.remote_static = getattr(remote, "public_bytes", None)
    _original_done(self)


if getattr(NoiseProtocol.handshake_done, "__name__", "") != "_keep_remote_static":
    NoiseProtocol.handshake_done = _keep_remote_static
