"""An independent Noise peer for tests/test_channel_interop.py, built on PyPI
``noiseprotocol`` 0.3.1 and run as a separate process.

Every Noise message travels behind a 2-byte big-endian length; there is no
doublecrypt preamble. After the handshake (empty payloads) the peer prints

    handshake_hash <hex> remote_static <hex>

and echoes every transport message back, one for one, until the other side
closes. It reads just enough of doublecrypt's record layer to follow rekeys:
when bit 1 of a plaintext's first byte is set, it rekeys its receiving cipher
after decrypting and its sending cipher after sending the echo, exactly as the
sender did. Loopback only; every socket operation has a timeout.

    noise_peer.py serve   --protocol NAME --static HEX [--prologue HEX]
    noise_peer.py connect --port N --protocol NAME --static HEX [--remote HEX] [--prologue HEX]

``serve`` listens on an ephemeral port and prints ``listening <port>`` first.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from typing import Any

from noise_compat import Keypair, NoiseConnection  # noiseprotocol, patched

TIMEOUT = 20.0
REKEY_FLAG = 0x02
_LENGTH = struct.Struct(">H")


def receive_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None when the peer closed before the first of them."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            if data:
                raise EOFError("connection closed in the middle of a frame")
            return None
        data += chunk
    return bytes(data)


def receive_frame(sock: socket.socket) -> bytes | None:
    header = receive_exactly(sock, 2)
    if header is None:
        return None
    (size,) = _LENGTH.unpack(header)
    body = receive_exactly(sock, size)
    if body is None:
        raise EOFError("connection closed after a frame length")
    return body


def send_frame(sock: socket.socket, message: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(message)) + message)


def make_connection(args: argparse.Namespace, initiator: bool) -> Any:
    connection = NoiseConnection.from_name(args.protocol.encode())
    connection.set_prologue(bytes.fromhex(args.prologue))
    connection.set_keypair_from_private_bytes(Keypair.STATIC, bytes.fromhex(args.static))
    if initiator and args.remote:
        connection.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, bytes.fromhex(args.remote))
    if initiator:
        connection.set_as_initiator()
    else:
        connection.set_as_responder()
    connection.start_handshake()
    return connection


def handshake(connection: Any, sock: socket.socket, initiator: bool) -> None:
    our_turn = initiator
    while not connection.handshake_finished:
        if our_turn:
            send_frame(sock, bytes(connection.write_message(b"")))
        else:
            message = receive_frame(sock)
            if message is None:
                raise EOFError("connection closed during the handshake")
            if connection.read_message(message):
                raise ValueError("handshake payloads must be empty")
        our_turn = not our_turn
    remote = connection.noise_protocol.remote_static or b""
    print(
        f"handshake_hash {connection.get_handshake_hash().hex()} remote_static {remote.hex()}",
        flush=True,
    )


def echo(connection: Any, sock: socket.socket) -> int:
    """Echo transport messages until the peer closes; returns how many."""
    count = 0
    while (message := receive_frame(sock)) is not None:
        plaintext = connection.decrypt(message)
        rekeyed = bool(plaintext) and bool(plaintext[0] & REKEY_FLAG)
        if rekeyed:
            connection.rekey_inbound_cipher()
        send_frame(sock, connection.encrypt(plaintext))
        if rekeyed:
            connection.rekey_outbound_cipher()
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description="noiseprotocol echo peer (loopback only)")
    parser.add_argument("mode", choices=["serve", "connect"])
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--static", required=True, help="our X25519 private key, hex")
    parser.add_argument("--remote", default="", help="responder's public key, hex (IK)")
    parser.add_argument("--prologue", default="", help="prologue, hex")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    if args.mode == "serve":
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(TIMEOUT)
            print(f"listening {listener.getsockname()[1]}", flush=True)
            sock, _ = listener.accept()
    else:
        sock = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
    with sock:
        sock.settimeout(TIMEOUT)
        initiator = args.mode == "connect"
        connection = make_connection(args, initiator)
        handshake(connection, sock, initiator)
        count = echo(connection, sock)
    print(f"echoed {count} transport messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
