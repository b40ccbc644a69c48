"""Interoperability with an independent Noise implementation: PyPI
``noiseprotocol`` 0.3.1, in a separate process (tests/noise_peer.py), over
loopback TCP with 2-byte big-endian framing and no doublecrypt preamble.

Our side is the raw Noise layer, the framing and the record layer. The peer
echoes every transport message; we send records (fragmented messages, bare
and automatic rekeys) and reassemble the echo. Both directions (our initiator
against their responder and the reverse), IK and XX, BLAKE2s and SHA256; both
sides must report the same handshake hash and each other's static keys."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from doublecrypt.channel import PROLOGUE_BASE, Keypair
from doublecrypt.channel.filter import FrameDecoder, frame
from doublecrypt.channel.noise import HandshakeState, protocol_name
from doublecrypt.channel.records import MAX_FRAGMENT, RecordReader, RecordWriter

PEER = Path(__file__).resolve().parent / "noise_peer.py"
TIMEOUT = 20.0
PROLOGUE = PROLOGUE_BASE + b" interop"
SUITES = [("IK", "BLAKE2s"), ("XX", "BLAKE2s"), ("IK", "SHA256"), ("XX", "SHA256")]
MESSAGES = [0, 1, 100, MAX_FRAGMENT, MAX_FRAGMENT + 1, 200_000, 1 << 20]


class Peer:
    """The noiseprotocol process and its output."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PEER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.finished = False

    def read_line(self) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(TIMEOUT):
                raise TimeoutError("the noise peer printed nothing")
        return self.process.stdout.readline().strip()

    def finish(self) -> str:
        """Wait for the peer to exit on its own; its standard output."""
        out, err = self.process.communicate(timeout=TIMEOUT)
        self.finished = True
        assert self.process.returncode == 0, err
        return out

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.finished:  # a test failed half-way: do not leave the peer behind
            self.process.kill()
            self.process.communicate(timeout=TIMEOUT)


class Wire:
    """Frames over a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT)
        self.sock = sock
        self.decoder = FrameDecoder()
        self.frames: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive_frame(self) -> bytes:
        while not self.frames:
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("the noise peer closed the connection")
            self.frames += self.decoder.feed(data)
        return self.frames.pop(0)


def run_session(wire: Wire, handshake: HandshakeState, peer_static: bytes) -> tuple[str, int]:
    """Handshake, then records through the echo; returns the handshake hash
    (hex) and how many transport messages we sent."""
    while not handshake.complete:
        if handshake.my_turn:
            wire.send(frame(handshake.write_message()))
        else:
            assert handshake.read_message(wire.receive_frame()) == b""
    assert handshake.remote_static == peer_static
    send_cipher, receive_cipher = handshake.transport_ciphers()
    writer = RecordWriter(send_cipher, rekey_interval=5)  # several automatic rekeys
    reader = RecordReader(receive_cipher, max_message=2 << 20)
    sent = 0
    for number, size in enumerate(MESSAGES):
        message = os.urandom(size)
        out: list[bytes | bytearray] = []
        if number == 2:
            writer.seal_rekey(out)  # a bare rekey on demand
        writer.seal(message, out)
        wire.send(b"".join(out))
        sent += len(out)  # one buffer per transport message, its length in front
        echoed = None
        while echoed is None:
            echoed = reader.open(wire.receive_frame())
        assert echoed == message
        assert not reader.in_message
    return handshake.handshake_hash.hex(), sent


def check_peer_report(output: str, handshake_hash: str, our_static: bytes, sent: int) -> None:
    """The peer saw the same session, our static key, and echoed everything."""
    assert output.splitlines() == [
        f"handshake_hash {handshake_hash} remote_static {our_static.hex()}",
        f"echoed {sent} transport messages",
    ]


@pytest.mark.parametrize(("pattern", "hash_name"), SUITES)
def test_our_initiator_their_responder(pattern: str, hash_name: str) -> None:
    ours, theirs = Keypair.generate(), Keypair.generate()
    name = protocol_name(pattern, "ChaChaPoly", hash_name)
    with Peer("serve", "--protocol", name, "--static", theirs.private.hex(),
              "--prologue", PROLOGUE.hex()) as peer:  # fmt: skip
        label, port = peer.read_line().split()
        assert label == "listening"
        with socket.create_connection(("127.0.0.1", int(port)), timeout=TIMEOUT) as sock:
            handshake = HandshakeState(
                pattern,
                True,
                prologue=PROLOGUE,
                static=ours,
                remote_static=theirs.public if pattern == "IK" else None,
                hash_name=hash_name,
            )
            handshake_hash, sent = run_session(Wire(sock), handshake, theirs.public)
        output = peer.finish()
    check_peer_report(output, handshake_hash, ours.public, sent)


@pytest.mark.parametrize(("pattern", "hash_name"), SUITES)
def test_their_initiator_our_responder(pattern: str, hash_name: str) -> None:
    ours, theirs = Keypair.generate(), Keypair.generate()
    name = protocol_name(pattern, "ChaChaPoly", hash_name)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        arguments = ["connect", "--port", str(port), "--protocol", name,
                     "--static", theirs.private.hex(), "--prologue", PROLOGUE.hex()]  # fmt: skip
        if pattern == "IK":
            arguments += ["--remote", ours.public.hex()]
        with Peer(*arguments) as peer:
            sock, _ = listener.accept()
            with sock:
                handshake = HandshakeState(
                    pattern, False, prologue=PROLOGUE, static=ours, hash_name=hash_name
                )
                handshake_hash, sent = run_session(Wire(sock), handshake, theirs.public)
            output = peer.finish()
    check_peer_report(output, handshake_hash, ours.public, sent)
