"""Noise channel report: doublecrypt.channel against PyPI ``noiseprotocol`` 0.3.1.

Run with ``.venv/bin/python bench/channel_report.py``. In one process it measures

1. handshakes per second, both parties in this process, the method of the
   reference bench (shared/reference/noise-ossuary.md, Appendix A): every
   handshake starts from the two static private keys as bytes (so the static
   public keys are recomputed, as ``noiseprotocol`` does in
   ``set_keypair_from_private_bytes``), generates fresh ephemerals, runs every
   message with empty payloads and checks that both sides agree on the
   handshake hash and on each other's static keys. Ours runs the real path:
   ``ClientChannel``/``ServerChannel`` with the preamble and the framing;
2. transport MB/s for 64 KiB application messages, each direction alone:
   *encrypt* turns messages into wire bytes, *decrypt* turns wire bytes back
   into messages. Ours is the channel (records: flags byte, fragments; 2-byte
   framing). ``noiseprotocol`` does the same work by hand: split into 65519-byte
   frames, encrypt, prefix the 2-byte length, join (and the reverse). A second
   pair of rows compares the bare Noise layers with the reference bench's
   method (65519-byte frames, no framing, no records).

Every figure is the best of several rounds; each round runs every case once,
ours and theirs back to back, so a busy machine slows both. Ratios are
ours / noiseprotocol (higher is better; target >= 1.0). The table is printed
and written to ``bench/results/channel.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cryptography
import nacl

from doublecrypt.channel import ClientChannel, Keypair, ServerChannel
from doublecrypt.channel.noise import CipherState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from noise_compat import Keypair as NoiseKeypair
from noise_compat import NoiseConnection

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "channel.md"
MESSAGE_SIZE = 64 * 1024
BATCH_MESSAGES = 16  # 1 MiB per timed batch
HANDSHAKE_BATCH = 25
MAX_PLAINTEXT = 65519
_LENGTH = struct.Struct(">H")

INITIATOR_PRIVATE = os.urandom(32)
RESPONDER_PRIVATE = os.urandom(32)
INITIATOR_PUBLIC = Keypair.from_private(INITIATOR_PRIVATE).public
RESPONDER_PUBLIC = Keypair.from_private(RESPONDER_PRIVATE).public


# ---- handshakes ---------------------------------------------------------------


def ours_handshake(pattern: str, hash_name: str) -> tuple[ClientChannel, ServerChannel]:
    client = ClientChannel(
        Keypair.from_private(INITIATOR_PRIVATE),
        server_key=RESPONDER_PUBLIC if pattern == "IK" else None,
        hash_name=hash_name,
    )
    server = ServerChannel(Keypair.from_private(RESPONDER_PRIVATE))
    while not (client.handshake_complete and server.handshake_complete):
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    assert client.handshake_hash == server.handshake_hash
    assert server.remote_static == INITIATOR_PUBLIC
    assert client.remote_static == RESPONDER_PUBLIC
    return client, server


def theirs_handshake(pattern: str, hash_name: str) -> tuple[Any, Any]:
    name = f"Noise_{pattern}_25519_ChaChaPoly_{hash_name}".encode()
    initiator, responder = NoiseConnection.from_name(name), NoiseConnection.from_name(name)
    for side in (initiator, responder):
        side.set_prologue(b"bench")
    initiator.set_keypair_from_private_bytes(NoiseKeypair.STATIC, INITIATOR_PRIVATE)
    responder.set_keypair_from_private_bytes(NoiseKeypair.STATIC, RESPONDER_PRIVATE)
    if pattern == "IK":
        initiator.set_keypair_from_public_bytes(NoiseKeypair.REMOTE_STATIC, RESPONDER_PUBLIC)
    initiator.set_as_initiator()
    responder.set_as_responder()
    initiator.start_handshake()
    responder.start_handshake()
    sender, receiver = initiator, responder
    while not (initiator.handshake_finished and responder.handshake_finished):
        receiver.read_message(bytes(sender.write_message(b"")))
        sender, receiver = receiver, sender
    assert initiator.get_handshake_hash() == responder.get_handshake_hash()
    assert responder.noise_protocol.remote_static == INITIATOR_PUBLIC
    assert initiator.noise_protocol.remote_static == RESPONDER_PUBLIC
    return initiator, responder


# ---- transport ----------------------------------------------------------------
# The timed functions stream: each output is dropped once made, as a sender
# writing to a socket would (keeping them all measures the allocator instead).
# The list-returning variants prepare inputs and check results, untimed.


def ours_encrypt(client: ClientChannel, messages: list[bytes]) -> list[bytes]:
    wire = []
    for message in messages:
        client.send(message)
        wire.append(client.data_to_send())
    return wire


def ours_encrypt_stream(client: ClientChannel, messages: list[bytes]) -> None:
    # What a socket sender uses (sendmsg): the wire pieces, not joined.
    for message in messages:
        client.send(message)
        client.data_to_send_buffers()


def ours_decrypt(server: ServerChannel, wire: list[bytes]) -> list[bytes]:
    received: list[bytes] = []
    for data in wire:
        received += server.receive_data(data)
    return received


def ours_decrypt_stream(server: ServerChannel, wire: list[bytes]) -> None:
    for data in wire:
        server.receive_data(data)


def theirs_encrypt(initiator: Any, messages: list[bytes]) -> list[bytes]:
    return [theirs_encrypt_one(initiator, message) for message in messages]


def theirs_encrypt_one(initiator: Any, message: bytes) -> bytes:
    """Split into 65519-byte frames, encrypt each, put its length in front."""
    chunks: list[bytes] = []
    pack = _LENGTH.pack
    for offset in range(0, len(message), MAX_PLAINTEXT):
        sealed = initiator.encrypt(message[offset : offset + MAX_PLAINTEXT])
        chunks += (pack(len(sealed)), sealed)
    return b"".join(chunks)


def theirs_encrypt_stream(initiator: Any, messages: list[bytes]) -> None:
    # The same for them: each frame's length and ciphertext, not joined.
    pack = _LENGTH.pack
    for message in messages:
        chunks: list[bytes] = []
        for offset in range(0, len(message), MAX_PLAINTEXT):
            sealed = initiator.encrypt(message[offset : offset + MAX_PLAINTEXT])
            chunks += (pack(len(sealed)), sealed)


def theirs_decrypt(responder: Any, wire: list[bytes]) -> list[bytes]:
    return [theirs_decrypt_one(responder, data) for data in wire]


def theirs_decrypt_one(responder: Any, data: bytes) -> bytes:
    """Parse the length-prefixed frames, decrypt each, join."""
    pos, parts = 0, []
    while pos < len(data):
        size = (data[pos] << 8) | data[pos + 1]
        parts.append(responder.decrypt(data[pos + 2 : pos + 2 + size]))
        pos += 2 + size
    return b"".join(parts)


def theirs_decrypt_stream(responder: Any, wire: list[bytes]) -> None:
    for data in wire:
        theirs_decrypt_one(responder, data)


def frames(message: bytes) -> list[bytes]:
    return [message[o : o + MAX_PLAINTEXT] for o in range(0, len(message), MAX_PLAINTEXT)]


# The Noise layers alone, as in the reference bench.


def ours_noise_encrypt(cipher: CipherState, messages: list[bytes]) -> list[list[bytes]]:
    return [[cipher.encrypt_with_ad(None, f) for f in frames(m)] for m in messages]


def ours_noise_encrypt_stream(cipher: CipherState, messages: list[bytes]) -> None:
    for message in messages:
        for frame in frames(message):
            cipher.encrypt_with_ad(None, frame)


def ours_noise_decrypt(cipher: CipherState, sealed: list[list[bytes]]) -> list[bytes]:
    return [b"".join([cipher.decrypt_with_ad(None, c) for c in fs]) for fs in sealed]


def ours_noise_decrypt_stream(cipher: CipherState, sealed: list[list[bytes]]) -> None:
    for message in sealed:
        b"".join([cipher.decrypt_with_ad(None, c) for c in message])


def theirs_noise_encrypt(initiator: Any, messages: list[bytes]) -> list[list[bytes]]:
    return [[initiator.encrypt(f) for f in frames(m)] for m in messages]


def theirs_noise_encrypt_stream(initiator: Any, messages: list[bytes]) -> None:
    for message in messages:
        for frame in frames(message):
            initiator.encrypt(frame)


def theirs_noise_decrypt(responder: Any, sealed: list[list[bytes]]) -> list[bytes]:
    return [b"".join([responder.decrypt(c) for c in fs]) for fs in sealed]


def theirs_noise_decrypt_stream(responder: Any, sealed: list[list[bytes]]) -> None:
    for message in sealed:
        b"".join([responder.decrypt(c) for c in message])


# ---- measurement ----------------------------------------------------------------


@dataclass
class Case:
    """One figure: a name, a unit, and a function returning (units done, seconds)."""

    name: str
    unit: str
    run: Callable[[], tuple[float, float]]
    best: float = 0.0

    def measure(self) -> None:
        done, seconds = self.run()
        self.best = max(self.best, done / seconds)


def handshake_case(side: str, pattern: str, hash_name: str, seconds: float) -> Case:
    """Batches of handshakes for ``seconds``; the fastest batch counts."""
    handshake = ours_handshake if side == "ours" else theirs_handshake

    def run() -> tuple[float, float]:
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch_start = time.perf_counter()
            for _ in range(HANDSHAKE_BATCH):
                handshake(pattern, hash_name)
            best = min(best, time.perf_counter() - batch_start)
        return HANDSHAKE_BATCH, best

    return Case(f"handshake {pattern} {hash_name} {side}", "handshakes/s", run)


def transport_cases(side: str, megabytes: int) -> list[Case]:
    """Each run pushes ``megabytes`` through in batches of 1 MiB and reports
    the fastest batch (the least disturbed by other work on the machine)."""
    messages = [os.urandom(MESSAGE_SIZE)] * BATCH_MESSAGES
    batch_mb = BATCH_MESSAGES * MESSAGE_SIZE / 1e6
    batches = max(1, megabytes * 1_000_000 // (BATCH_MESSAGES * MESSAGE_SIZE))

    def fastest(work: Callable[[int], object]) -> tuple[float, float]:
        best = float("inf")
        for batch in range(batches):
            start = time.perf_counter()
            work(batch)
            best = min(best, time.perf_counter() - start)
        return batch_mb, best

    def prepared(make: Callable[[], list[Any]]) -> list[Any]:
        return [make() for _ in range(batches)]

    def runs(pair: Any, encrypt: Any, stream: Any, decrypt: Any, dstream: Any) -> tuple[_Run, _Run]:
        return _transport_runs(pair, encrypt, stream, decrypt, dstream, messages, fastest, prepared)

    if side == "ours":
        channel_encrypt, channel_decrypt = runs(
            lambda: ours_handshake("IK", "BLAKE2s"),
            ours_encrypt,
            ours_encrypt_stream,
            ours_decrypt,
            ours_decrypt_stream,
        )
        noise_encrypt, noise_decrypt = runs(
            _cipher_pair,
            ours_noise_encrypt,
            ours_noise_encrypt_stream,
            ours_noise_decrypt,
            ours_noise_decrypt_stream,
        )
    else:
        pair = lambda: theirs_handshake("IK", "BLAKE2s")  # noqa: E731
        channel_encrypt, channel_decrypt = runs(
            pair, theirs_encrypt, theirs_encrypt_stream, theirs_decrypt, theirs_decrypt_stream
        )
        noise_encrypt, noise_decrypt = runs(
            pair,
            theirs_noise_encrypt,
            theirs_noise_encrypt_stream,
            theirs_noise_decrypt,
            theirs_noise_decrypt_stream,
        )
    return [
        Case(f"channel encrypt {side}", "MB/s", channel_encrypt),
        Case(f"channel decrypt {side}", "MB/s", channel_decrypt),
        Case(f"noise encrypt {side}", "MB/s", noise_encrypt),
        Case(f"noise decrypt {side}", "MB/s", noise_decrypt),
    ]


_Fastest = Callable[[Callable[[int], object]], tuple[float, float]]
_Prepared = Callable[[Callable[[], list[Any]]], list[Any]]
_Run = Callable[[], tuple[float, float]]


def _cipher_pair() -> tuple[CipherState, CipherState]:
    """Two Noise cipher states with one random key: a sender and a receiver."""
    key = os.urandom(32)
    return CipherState("ChaChaPoly", key), CipherState("ChaChaPoly", key)


def _transport_runs(
    pair: Callable[[], tuple[Any, Any]],
    encrypt: Callable[[Any, list[bytes]], Any],
    encrypt_stream: Callable[[Any, list[bytes]], object],
    decrypt: Callable[[Any, Any], list[bytes]],
    decrypt_stream: Callable[[Any, Any], object],
    messages: list[bytes],
    fastest: _Fastest,
    prepared: _Prepared,
) -> tuple[_Run, _Run]:
    """The encrypt and decrypt measurements of one implementation: ``pair``
    makes a (sender, receiver); the decrypted messages are checked."""

    def run_encrypt() -> tuple[float, float]:
        sender, _ = pair()
        return fastest(lambda _batch: encrypt_stream(sender, messages))

    def run_decrypt() -> tuple[float, float]:
        sender, receiver = pair()
        wire = prepared(lambda: encrypt(sender, messages))
        result = fastest(lambda batch: decrypt_stream(receiver, wire[batch]))
        assert decrypt(receiver, encrypt(sender, messages)) == messages
        return result

    return run_encrypt, run_decrypt


SUITES = [("IK", "BLAKE2s"), ("XX", "BLAKE2s"), ("IK", "SHA256"), ("XX", "SHA256")]
TRANSPORT_ROWS = [
    ("channel encrypt", "64 KiB messages -> wire bytes (records + framing)"),
    ("channel decrypt", "wire bytes -> 64 KiB messages (records + framing)"),
    ("noise encrypt", "Noise layer only: 65519-byte frames, reference method"),
    ("noise decrypt", "Noise layer only: 65519-byte frames, reference method"),
]


def render(cases: dict[str, Case], args: argparse.Namespace) -> tuple[str, bool]:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    import noise  # type: ignore[import-untyped]

    versions = (
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"PyNaCl {nacl.__version__}, noiseprotocol {getattr(noise, '__version__', '0.3.1')}"
    )
    lines = [
        "# Noise channel",
        "",
        f"`bench/channel_report.py`, {stamp}: {os.cpu_count()} CPUs ({platform.machine()}), "
        f"{versions}. Best of {args.rounds} rounds; each round runs every case once, ours "
        "and noiseprotocol's back to back. Ratio = ours / noiseprotocol (target >= 1.0).",
        "",
        "Handshakes: both parties in one process, from the static private keys as bytes, fresh "
        "ephemerals, empty payloads (ours: `ClientChannel`/`ServerChannel` with preamble and "
        "framing). Transport: ChaChaPoly, one direction at a time, MB = 10^6 bytes of "
        "application data.",
        "",
        "| Case | Unit | ours | noiseprotocol | Ratio | Target |",
        "|---|---|---:|---:|---:|---|",
    ]
    all_met = True

    def row(label: str, key: str, unit: str) -> None:
        nonlocal all_met
        ours, theirs = cases[f"{key} ours"].best, cases[f"{key} theirs"].best
        ratio = ours / theirs
        met = ratio >= 1.0
        all_met &= met
        lines.append(
            f"| {label} | {unit} | {ours:.0f} | {theirs:.0f} | {ratio:.2f} | "
            f"{'PASS' if met else 'MISS'} |"
        )

    for pattern, hash_name in SUITES:
        row(
            f"handshake Noise_{pattern}_25519_ChaChaPoly_{hash_name}",
            f"handshake {pattern} {hash_name}",
            "handshakes/s",
        )
    for key, label in TRANSPORT_ROWS:
        row(f"{key}: {label}", key, "MB/s")
    lines += [
        "",
        "Channel encrypt: 64 KiB messages to the pieces a socket sender hands to "
        "`sendmsg`, for both sides (ours: `data_to_send_buffers()`, each frame encrypted "
        "with `encrypt_into` behind its 2-byte length; theirs: length and ciphertext of "
        "each frame). Both run the same `cryptography` ChaCha20-Poly1305 twice per "
        "message (65518 + 18 bytes for us, 65519 + 17 for them), so what differs is Python "
        "overhead and run-to-run noise on a shared machine (about 2%). Decrypt: we "
        "decrypt straight from the received buffer; noiseprotocol needs a bytes object "
        "per frame.",
    ]
    return "\n".join(lines) + "\n", all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds; every figure is a best")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per handshake case")
    parser.add_argument("--megabytes", type=int, default=32, help="MB per transport case and round")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS}")
    args = parser.parse_args(argv)

    pairs: list[tuple[Case, Case]] = [
        (
            handshake_case("ours", pattern, hash_name, args.seconds),
            handshake_case("theirs", pattern, hash_name, args.seconds),
        )
        for pattern, hash_name in SUITES
    ]
    transport = zip(
        transport_cases("ours", args.megabytes),
        transport_cases("theirs", args.megabytes),
        strict=True,
    )
    pairs += transport
    for round_number in range(args.rounds):
        for index, (ours, theirs) in enumerate(pairs):
            first, second = (ours, theirs) if (round_number + index) % 2 == 0 else (theirs, ours)
            first.measure()
            second.measure()
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    cases = {case.name: case for pair in pairs for case in pair}
    report, all_met = render(cases, args)
    print(report)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"(written to {RESULTS.relative_to(ROOT)})", file=sys.stderr)
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
