"""The Noise secure channel of the network block store (docs/PROTOCOL.md
section 2): key pairs, the known-hosts file, the sans-I/O client and server
channels and their asyncio wrapper.

Modules: ``noise`` (the Noise rev 34 core), ``records`` (messages over
transport messages), ``filter`` (:class:`ClientChannel`, :class:`ServerChannel`),
``keys``, ``known_hosts``, ``aio``.
"""

from __future__ import annotations

from .aio import ChannelStream, open_channel
from .filter import DEFAULT_MAX_MESSAGE, PROLOGUE_BASE, ClientChannel, ServerChannel
from .keys import Keypair, derive_client_keypair, fingerprint
from .known_hosts import KnownHosts
from .noise import MAX_NOISE_MESSAGE, MAX_TRANSPORT_PLAINTEXT
from .records import REKEY_INTERVAL

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "MAX_NOISE_MESSAGE",
    "MAX_TRANSPORT_PLAINTEXT",
    "PROLOGUE_BASE",
    "REKEY_INTERVAL",
    "ChannelStream",
    "ClientChannel",
    "Keypair",
    "KnownHosts",
    "ServerChannel",
    "derive_client_keypair",
    "fingerprint",
    "open_channel",
]
