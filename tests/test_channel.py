"""The Noise secure channel (doublecrypt.channel): end to end through the
sans-I/O filters, every refusal the protocol promises (docs/PROTOCOL.md
section 2), the record layer, rekeying, the key helpers, the known-hosts file
and the asyncio wrapper over real loopback sockets."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from doublecrypt.channel import (
    DEFAULT_MAX_MESSAGE,
    MAX_NOISE_MESSAGE,
    MAX_TRANSPORT_PLAINTEXT,
    PROLOGUE_BASE,
    REKEY_INTERVAL,
    ClientChannel,
    Keypair,
    KnownHosts,
    ServerChannel,
    derive_client_keypair,
    fingerprint,
    open_channel,
)
from doublecrypt.channel.filter import FrameDecoder, frame, make_preamble
from doublecrypt.channel.noise import MAX_NONCE, CipherState, HandshakeState, dh
from doublecrypt.channel.records import MAX_FRAGMENT, RecordReader, RecordWriter
from doublecrypt.errors import (
    ChannelError,
    HostKeyChangedError,
    InvalidArgumentError,
    ProtocolError,
)

SUITES = [("IK", "BLAKE2s"), ("XX", "BLAKE2s"), ("IK", "SHA256"), ("XX", "SHA256")]
# X25519 public keys of small order (libsodium's list): 0, 1, two points of
# order 8, p-1, p and p+1. Every DH with them gives all zeros.
LOW_ORDER_POINTS = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes([0xEC]) + b"\xff" * 30 + b"\x7f",
    bytes([0xED]) + b"\xff" * 30 + b"\x7f",
    bytes([0xEE]) + b"\xff" * 30 + b"\x7f",
]
SERVER = Keypair.generate()
CLIENT = Keypair.generate()


def make_pair(
    pattern: str = "IK",
    hash_name: str = "BLAKE2s",
    verify_server: Callable[[bytes], None] | None = None,
) -> tuple[ClientChannel, ServerChannel]:
    server_key = SERVER.public if pattern == "IK" else None
    client = ClientChannel(
        CLIENT, server_key=server_key, hash_name=hash_name, verify_server=verify_server
    )
    return client, ServerChannel(SERVER)


def pump(
    client: ClientChannel, server: ServerChannel, rounds: int = 4
) -> tuple[list[bytes], list[bytes]]:
    """Exchange bytes until neither side has any left (bounded); returns what
    (client, server) received."""
    to_client: list[bytes] = []
    to_server: list[bytes] = []
    for _ in range(rounds):
        data = client.data_to_send()
        to_server += server.receive_data(data) if data else []
        data = server.data_to_send()
        to_client += client.receive_data(data) if data else []
    return to_client, to_server


def connected(
    pattern: str = "IK", hash_name: str = "BLAKE2s"
) -> tuple[ClientChannel, ServerChannel]:
    client, server = make_pair(pattern, hash_name)
    pump(client, server)
    assert client.handshake_complete and server.handshake_complete
    return client, server


def transport_frames(data: bytes) -> list[bytes]:
    decoder = FrameDecoder()
    frames = decoder.feed(data)
    assert decoder.pending == 0
    return frames


# ---- end to end ------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "hash_name"), SUITES)
def test_end_to_end(pattern: str, hash_name: str) -> None:
    seen: list[bytes] = []
    client, server = make_pair(pattern, hash_name, verify_server=seen.append)
    client.send(b"queued before the handshake")
    client.send(b"")
    to_client, to_server = pump(client, server)
    assert to_server == [b"queued before the handshake", b""]
    assert to_client == []
    assert (
        client.protocol_name
        == server.protocol_name
        == (f"Noise_{pattern}_25519_ChaChaPoly_{hash_name}")
    )
    assert client.handshake_hash == server.handshake_hash
    assert len(client.handshake_hash) == 32
    assert server.remote_static == CLIENT.public
    assert client.remote_static == SERVER.public
    assert seen == [SERVER.public]
    big = os.urandom(300_000)
    server.send(big)
    server.send(b"second")
    client.send(b"ping")
    to_client, to_server = pump(client, server)
    assert to_client == [big, b"second"]
    assert to_server == [b"ping"]


def test_close_wipes_the_session() -> None:
    client, server = connected()
    session = client.handshake_hash
    for channel, peer in ((client, SERVER), (server, CLIENT)):
        channel.close()
        with pytest.raises(ChannelError, match="closed"):
            channel.send(b"after close")
        assert channel.handshake_hash == session  # still readable, e.g. for logs
        assert channel.remote_static == peer.public
        assert channel.data_to_send() == b""


def test_sessions_differ() -> None:
    first, _ = connected()
    second, _ = connected()
    assert first.handshake_hash != second.handshake_hash


def test_byte_dribbling() -> None:
    """One byte at a time in both directions, handshake and messages."""
    client, server = make_pair("XX", "BLAKE2s")
    client.send(b"a" * 1000)
    received_by_server: list[bytes] = []
    received_by_client: list[bytes] = []
    for _ in range(6):
        data = client.data_to_send()
        for index in range(len(data)):
            received_by_server += server.receive_data(data[index : index + 1])
        if not received_by_client and server.handshake_complete:
            server.send(b"b" * 70_000)
        data = server.data_to_send()
        for index in range(len(data)):
            received_by_client += client.receive_data(memoryview(data)[index : index + 1])
    assert received_by_server == [b"a" * 1000]
    assert received_by_client == [b"b" * 70_000]
    assert client.handshake_hash == server.handshake_hash


def test_many_messages_in_one_chunk() -> None:
    client, server = connected()
    messages = [os.urandom(size) for size in (0, 1, 100, 65_518, 65_519, 200_000)]
    for message in messages:
        client.send(message)
    assert server.receive_data(client.data_to_send()) == messages
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    ("size", "fragments"),
    [(0, 1), (1, 1), (MAX_FRAGMENT, 1), (MAX_FRAGMENT + 1, 2), (2 * MAX_FRAGMENT, 2),
     (2 * MAX_FRAGMENT + 1, 3)],
)  # fmt: skip
def test_fragment_boundaries(size: int, fragments: int) -> None:
    client, server = connected()
    message = os.urandom(size)
    client.send(message)
    wire = client.data_to_send()
    sealed = transport_frames(wire)
    assert len(sealed) == fragments
    assert all(len(part) <= MAX_NOISE_MESSAGE for part in sealed)
    assert server.receive_data(wire) == [message]


def test_memoryview_and_bytearray_messages() -> None:
    client, server = connected()
    client.send(bytearray(b"from a bytearray"))
    client.send(memoryview(b"xx from a view")[3:])
    assert pump(client, server)[1] == [b"from a bytearray", b"from a view"]


# ---- the server's key: pinning and verify_server ----------------------------------


class Refused(Exception):
    pass


def test_verify_server_raising_aborts_before_the_client_static_is_sent() -> None:
    def refuse(key: bytes) -> None:
        raise HostKeyChangedError("not the server we know")

    client, server = make_pair("XX", verify_server=refuse)
    first_flight = client.data_to_send()
    server.receive_data(first_flight)
    with pytest.raises(HostKeyChangedError, match="not the server we know"):
        client.receive_data(server.data_to_send())
    # Nothing after message 1 left the client: its static key was never sent.
    assert client.data_to_send() == b""
    assert CLIENT.public not in first_flight
    assert len(first_flight) == 8 + 2 + 32  # preamble, frame length, ephemeral key
    with pytest.raises(ChannelError):
        client.send(b"too late")


def test_verify_server_other_exceptions_become_channel_errors() -> None:
    def refuse(key: bytes) -> None:
        raise Refused("policy says no")

    client, server = make_pair("XX", verify_server=refuse)
    server.receive_data(client.data_to_send())
    with pytest.raises(ChannelError, match="policy says no") as info:
        client.receive_data(server.data_to_send())
    assert isinstance(info.value.__cause__, Refused)


def test_verify_server_is_called_at_once_for_a_pinned_key() -> None:
    seen: list[bytes] = []
    make_pair("IK", verify_server=seen.append)
    assert seen == [SERVER.public]

    def refuse(key: bytes) -> None:
        raise Refused("policy says no")

    with pytest.raises(ChannelError, match="policy says no"):
        make_pair("IK", verify_server=refuse)


def test_pinned_wrong_server_key_fails() -> None:
    client = ClientChannel(CLIENT, server_key=Keypair.generate().public)
    server = ServerChannel(SERVER)
    with pytest.raises(ChannelError):
        server.receive_data(client.data_to_send())
    assert server.data_to_send() == b""
    with pytest.raises(ChannelError, match="during the handshake"):
        client.end_of_input()


def test_known_hosts_as_verify_server(tmp_path: Path) -> None:
    hosts = KnownHosts(tmp_path / "known_hosts")
    host = "127.0.0.1:7000"

    def verify(key: bytes) -> None:
        hosts.check(host, key)

    for _ in range(2):  # first use records the key, the second contact matches it
        client, server = make_pair("XX", verify_server=verify)
        pump(client, server)
        assert client.handshake_complete
    assert hosts.lookup(host) == SERVER.public
    impostor = ServerChannel(Keypair.generate())
    client = ClientChannel(CLIENT, verify_server=verify)
    impostor.receive_data(client.data_to_send())
    with pytest.raises(HostKeyChangedError, match=host):
        client.receive_data(impostor.data_to_send())


# ---- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preamble", "reason"),
    [
        (b"XCN1\x02\x01\x00\x00", "bad preamble"),
        (b"DCN1\x03\x01\x00\x00", "pattern code 3"),
        (b"DCN1\x00\x01\x00\x00", "pattern code 0"),
        (b"DCN1\x02\x03\x00\x00", "hash code 3"),
        (b"DCN1\x02\x01\x00\x01", "reserved"),
        (b"DCN1\x02\x01\x80\x00", "reserved"),
        (b"GET / HTTP/1.1\r\n", "bad preamble"),
    ],
)
def test_bad_preamble_refused(preamble: bytes, reason: str) -> None:
    server = ServerChannel(SERVER)
    with pytest.raises(ProtocolError, match=reason):
        server.receive_data(preamble)
    with pytest.raises(ChannelError):
        server.receive_data(b"more")


def test_preamble_split_across_reads() -> None:
    client, server = make_pair()
    data = client.data_to_send()
    assert server.receive_data(data[:3]) == []
    assert server.receive_data(data[3:7]) == []
    server.receive_data(data[7:])
    client.receive_data(server.data_to_send())
    assert client.handshake_complete and server.handshake_complete


@pytest.mark.parametrize("pattern", ["IK", "XX"])
def test_wrong_prologue_refused(pattern: str) -> None:
    """An initiator whose prologue differs from the preamble it sent fails."""
    preamble = make_preamble(pattern, "BLAKE2s")
    initiator = HandshakeState(
        pattern,
        True,
        prologue=PROLOGUE_BASE + b"something else",
        static=CLIENT,
        remote_static=SERVER.public if pattern == "IK" else None,
    )
    server = ServerChannel(SERVER)
    if pattern == "IK":
        with pytest.raises(ChannelError, match="failed to authenticate"):
            server.receive_data(preamble + frame(initiator.write_message()))
    else:
        server.receive_data(preamble + frame(initiator.write_message()))
        (message_2,) = transport_frames(server.data_to_send())
        with pytest.raises(ChannelError, match="failed to authenticate"):
            initiator.read_message(message_2)


def test_preamble_altered_in_transit_fails() -> None:
    """Changing the suite in the preamble cannot go unnoticed."""
    client, server = make_pair("IK", "BLAKE2s")
    data = bytearray(client.data_to_send())
    data[5] = 2  # SHA256 instead of BLAKE2s
    with pytest.raises(ChannelError):
        server.receive_data(bytes(data))


def test_non_empty_handshake_payload_refused() -> None:
    initiator = HandshakeState(
        "XX", True, prologue=PROLOGUE_BASE + make_preamble("XX", "BLAKE2s"), static=CLIENT
    )
    server = ServerChannel(SERVER)
    message = initiator.write_message(b"hello")
    with pytest.raises(ProtocolError, match="payloads must be empty"):
        server.receive_data(make_preamble("XX", "BLAKE2s") + frame(message))


def test_zero_length_frame_refused() -> None:
    _, server = connected()
    with pytest.raises(ProtocolError, match="zero-length"):
        server.receive_data(b"\x00\x00")


def test_short_handshake_message_refused() -> None:
    server = ServerChannel(SERVER)
    with pytest.raises(ProtocolError, match="too short"):
        server.receive_data(make_preamble("IK", "BLAKE2s") + frame(os.urandom(40)))


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p[:4].hex())
def test_low_order_points_give_no_shared_secret(point: bytes) -> None:
    with pytest.raises(ChannelError, match="low-order"):
        dh(Keypair.generate(), point)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p[:4].hex())
def test_low_order_keys_end_the_handshake(point: bytes) -> None:
    # A pinned server key of low order: refused before anything is sent.
    with pytest.raises(ChannelError, match="low-order"):
        ClientChannel(CLIENT, server_key=point)
    # A client ephemeral of low order (IK message 1: "es" at the server).
    server = ServerChannel(SERVER)
    with pytest.raises(ChannelError, match="low-order"):
        server.receive_data(make_preamble("IK", "BLAKE2s") + frame(point + os.urandom(64)))
    # The same in XX: the server's "ee" while writing message 2.
    server = ServerChannel(SERVER)
    with pytest.raises(ChannelError, match="low-order"):
        server.receive_data(make_preamble("XX", "BLAKE2s") + frame(point))
    assert server.data_to_send() == b""
    # A server ephemeral of low order (message 2: "ee" at the client).
    for pattern in ("IK", "XX"):
        client, _ = make_pair(pattern)
        client.data_to_send()
        with pytest.raises(ChannelError, match="low-order"):
            client.receive_data(frame(point + os.urandom(64 if pattern == "XX" else 16)))


def test_dh_refuses_wrong_lengths() -> None:
    with pytest.raises(ProtocolError, match="32 bytes"):
        dh(Keypair.generate(), bytes(31))


# ---- limits, truncation, tampering ------------------------------------------------


def test_noise_layer_plaintext_limit() -> None:
    key = os.urandom(32)
    sender, receiver = CipherState("ChaChaPoly", key), CipherState("ChaChaPoly", key)
    largest = os.urandom(MAX_TRANSPORT_PLAINTEXT)
    sealed = sender.encrypt_with_ad(None, largest)
    assert len(sealed) == MAX_NOISE_MESSAGE == 65535
    assert receiver.decrypt_with_ad(None, sealed) == largest
    with pytest.raises(InvalidArgumentError, match="65519"):
        sender.encrypt_with_ad(None, largest + b"x")
    assert sender.n == 1  # a refused encrypt uses no nonce
    with pytest.raises(ProtocolError, match="65535"):
        receiver.decrypt_with_ad(None, sealed + b"x")
    assert receiver.n == 1


def test_one_megabyte_message() -> None:
    client, server = connected()
    message = os.urandom(1 << 20)
    client.send(message)
    server.send(message[::-1])
    to_client, to_server = pump(client, server)
    assert to_server == [message]
    assert to_client == [message[::-1]]


def test_message_limit() -> None:
    limit = DEFAULT_MAX_MESSAGE
    assert limit == 16 * 1024 * 1024 + 4096
    client = ClientChannel(CLIENT, server_key=SERVER.public, max_message=limit + 1)
    server = ServerChannel(SERVER)
    pump(client, server)
    exact = os.urandom(limit)
    client.send(exact)
    assert server.receive_data(client.data_to_send()) == [exact]
    client.send(exact + b"!")
    with pytest.raises(ProtocolError, match=str(limit)):
        server.receive_data(client.data_to_send())
    with pytest.raises(ChannelError):
        server.send(b"dead")


def test_send_refuses_messages_over_its_own_limit() -> None:
    client = ClientChannel(CLIENT, server_key=SERVER.public, max_message=100)
    with pytest.raises(InvalidArgumentError, match="100"):
        client.send(bytes(101))
    client.send(bytes(100))  # the channel is still usable
    server = ServerChannel(SERVER, max_message=100)
    assert pump(client, server)[1] == [bytes(100)]


def test_truncation_detected() -> None:
    client, server = connected()
    client.send(os.urandom(MAX_FRAGMENT + 10))
    first, _ = transport_frames(client.data_to_send())
    assert server.receive_data(frame(first)) == []
    with pytest.raises(ChannelError, match="truncated"):
        server.end_of_input()


def test_partial_frame_at_the_end_detected() -> None:
    client, server = connected()
    client.send(b"hello")
    wire = client.data_to_send()
    server.receive_data(wire[:-1])
    with pytest.raises(ChannelError, match="truncated"):
        server.end_of_input()


def test_clean_end_between_messages() -> None:
    client, server = connected()
    client.send(b"bye")
    assert server.receive_data(client.data_to_send()) == [b"bye"]
    server.end_of_input()
    with pytest.raises(ChannelError, match="after the end of input"):
        server.receive_data(b"\x00")


def test_end_during_handshake_detected() -> None:
    client, server = make_pair("XX")
    server.receive_data(client.data_to_send())
    with pytest.raises(ChannelError, match="during the handshake"):
        server.end_of_input()


@pytest.mark.parametrize("position", [2, 10, -1])
def test_flipped_bit_kills_the_channel(position: int) -> None:
    client, server = connected()
    client.send(b"a message that will be altered")
    wire = bytearray(client.data_to_send())
    wire[position] ^= 0x04
    with pytest.raises(ChannelError, match="failed to authenticate"):
        server.receive_data(bytes(wire))
    client.send(b"the next one is genuine")
    for call in (
        lambda: server.receive_data(client.data_to_send()),
        lambda: server.send(b"x"),
        server.rekey,
        server.end_of_input,
    ):
        with pytest.raises(ChannelError, match="cannot be used any more"):
            call()
    assert server.data_to_send() == b""  # nothing more goes out


def test_flipped_length_is_an_error() -> None:
    client, server = connected()
    client.send(b"short")
    wire = bytearray(client.data_to_send())
    wire[1] -= 1  # the frame now ends one byte early
    with pytest.raises(ChannelError):
        server.receive_data(bytes(wire))


def test_replayed_transport_message_rejected() -> None:
    client, server = connected()
    client.send(b"pay 10 euros")
    wire = client.data_to_send()
    assert server.receive_data(wire) == [b"pay 10 euros"]
    with pytest.raises(ChannelError, match="failed to authenticate"):
        server.receive_data(wire)


def test_nonce_does_not_advance_on_a_failed_decrypt() -> None:
    key = os.urandom(32)
    sender, receiver = CipherState("ChaChaPoly", key), CipherState("ChaChaPoly", key)
    sealed = sender.encrypt_with_ad(None, b"genuine")
    forged = bytes([sealed[0] ^ 1]) + sealed[1:]
    for _ in range(3):
        with pytest.raises(ChannelError):
            receiver.decrypt_with_ad(None, forged)
        assert receiver.n == 0
    assert receiver.decrypt_with_ad(None, sealed) == b"genuine"
    assert receiver.n == 1


def test_nonce_exhaustion_ends_the_session() -> None:
    key = os.urandom(32)
    sender, receiver = CipherState("ChaChaPoly", key), CipherState("ChaChaPoly", key)
    sender.set_nonce(MAX_NONCE - 1)
    receiver.set_nonce(MAX_NONCE - 1)
    assert receiver.decrypt_with_ad(None, sender.encrypt_with_ad(None, b"last")) == b"last"
    with pytest.raises(ChannelError, match="exhausted"):
        sender.encrypt_with_ad(None, b"one too many")
    with pytest.raises(ChannelError, match="exhausted"):
        receiver.decrypt_with_ad(None, bytes(20))


def _opener(key: bytes) -> RecordReader:
    return RecordReader(CipherState("ChaChaPoly", key), max_message=1 << 20)


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [(b"\x05hello", "unknown record flags 0x05"), (b"\x80", "unknown record flags 0x80"),
     (b"", "flags byte")],
)  # fmt: skip
def test_record_flags_checked(plaintext: bytes, reason: str) -> None:
    key = os.urandom(32)
    with pytest.raises(ProtocolError, match=reason):
        _opener(key).open(CipherState("ChaChaPoly", key).encrypt_with_ad(None, plaintext))


def test_bare_fragments_without_data_start_no_message() -> None:
    """A bare rekey signal between messages leaves no message in progress."""
    client, server = connected()
    client.rekey()
    server.receive_data(client.data_to_send())
    server.end_of_input()  # not "truncated"


# ---- rekey -----------------------------------------------------------------------


def _spec_rekey(key: bytes) -> bytes:
    """REKEY(k) as Noise rev 34 section 4.2 defines it for ChaChaPoly."""
    nonce = bytes(4) + (MAX_NONCE).to_bytes(8, "little")
    return ChaCha20Poly1305(key).encrypt(nonce, bytes(32), b"")[:32]


def test_cipher_state_rekey_follows_the_spec() -> None:
    key = os.urandom(32)
    state = CipherState("ChaChaPoly", key)
    state.encrypt_with_ad(None, b"one")
    state.rekey()
    assert state.n == 1  # rekey keeps the nonce
    sealed = state.encrypt_with_ad(None, b"two")
    expected = CipherState("ChaChaPoly", _spec_rekey(key))
    expected.set_nonce(1)
    assert expected.decrypt_with_ad(None, sealed) == b"two"


@pytest.mark.parametrize("cipher", ["ChaChaPoly", "AESGCM"])
def test_encrypt_framed_is_the_frame_length_then_the_message(cipher: str) -> None:
    key = os.urandom(32)
    framed, plain = CipherState(cipher, key), CipherState(cipher, key)
    for size in (0, 1, 1000, MAX_TRANSPORT_PLAINTEXT):
        plaintext = os.urandom(size)
        sealed = plain.encrypt_with_ad(None, plaintext)
        assert bytes(framed.encrypt_framed(plaintext)) == frame(sealed)
    assert framed.n == plain.n == 4
    with pytest.raises(InvalidArgumentError):
        framed.encrypt_framed(bytes(MAX_TRANSPORT_PLAINTEXT + 1))


def test_encrypt_framed_without_encrypt_into() -> None:
    """cryptography before encrypt_into: encrypt, then prefix the length."""

    class OldAead:
        def __init__(self, aead: ChaCha20Poly1305) -> None:
            self.encrypt = aead.encrypt

    key = os.urandom(32)
    framed, plain = CipherState("ChaChaPoly", key), CipherState("ChaChaPoly", key)
    framed._aead = OldAead(ChaCha20Poly1305(key))  # type: ignore[assignment]
    sealed = plain.encrypt_with_ad(None, b"old")
    assert framed.encrypt_framed(b"old") == frame(sealed)


def test_automatic_rekey_at_the_interval() -> None:
    key = os.urandom(32)
    writer = RecordWriter(CipherState("ChaChaPoly", key), rekey_interval=3)
    out: list[bytes | bytearray] = []
    for index in range(7):
        writer.seal(bytes([index]), out)
    sealed = [bytes(frame[2:]) for frame in out]  # each: the frame length, the message
    # Messages 0-2 under k (2 carries the flag), 3-5 under REKEY(k), 6 under REKEY(REKEY(k)).
    keys = [key] * 3 + [_spec_rekey(key)] * 3 + [_spec_rekey(_spec_rekey(key))]
    for nonce, (message_key, ciphertext) in enumerate(zip(keys, sealed, strict=True)):
        state = CipherState("ChaChaPoly", message_key)
        state.set_nonce(nonce)
        plaintext = state.decrypt_with_ad(None, ciphertext)
        rekey_flag = 0x02 if nonce in (2, 5) else 0
        assert plaintext == bytes([0x01 | rekey_flag, nonce])


def test_channels_stay_in_step_through_automatic_rekeys() -> None:
    client = ClientChannel(CLIENT, server_key=SERVER.public, rekey_interval=4)
    server = ServerChannel(SERVER, rekey_interval=3)
    pump(client, server)
    big = os.urandom(5 * MAX_FRAGMENT)  # several fragments: rekeys inside one message
    for round_number in range(5):
        client.send(big)
        client.send(bytes([round_number]))
        server.send(bytes([round_number]) * 10)
        to_client, to_server = pump(client, server)
        assert to_server == [big, bytes([round_number])]
        assert to_client == [bytes([round_number]) * 10]


def test_default_rekey_interval() -> None:
    assert REKEY_INTERVAL == 2**20
    client, server = make_pair()
    assert client.rekey_interval == server.rekey_interval == 2**20


def test_rekey_on_demand() -> None:
    client, server = connected()
    client.rekey()
    client.rekey()
    client.send(b"after two rekeys")
    server.rekey()
    server.send(b"after one")
    to_client, to_server = pump(client, server)
    assert to_server == [b"after two rekeys"]
    assert to_client == [b"after one"]


def test_rekey_requested_before_the_handshake_is_held() -> None:
    client, server = make_pair("XX")
    client.rekey()
    client.send(b"after")
    assert pump(client, server)[1] == [b"after"]


def test_receiver_that_misses_a_rekey_fails() -> None:
    """The rekey really changes the key: a stale receiver cannot decrypt."""
    key = os.urandom(32)
    writer = RecordWriter(CipherState("ChaChaPoly", key))
    out: list[bytes | bytearray] = []
    writer.seal_rekey(out)
    writer.seal(b"new key", out)
    rekey, message = (bytes(frame[2:]) for frame in out)  # each behind its frame length
    stale = CipherState("ChaChaPoly", key)
    stale.set_nonce(1)
    with pytest.raises(ChannelError):
        stale.decrypt_with_ad(None, message)
    reader = _opener(key)
    assert reader.open(rekey) is None
    assert reader.open(message) == b"new key"


# ---- state and arguments -----------------------------------------------------------


def test_properties_before_the_handshake() -> None:
    client, server = make_pair("XX")
    for prop in ("handshake_hash", "remote_static", "protocol_name"):
        with pytest.raises(ChannelError):
            getattr(server, prop)
    with pytest.raises(ChannelError):
        client.handshake_hash  # noqa: B018
    assert client.protocol_name == "Noise_XX_25519_ChaChaPoly_BLAKE2s"
    assert not client.handshake_complete
    server.receive_data(client.data_to_send())
    with pytest.raises(ChannelError):
        server.remote_static  # noqa: B018 - not known before XX message 3


def test_handshake_state_enforces_the_order() -> None:
    initiator = HandshakeState("XX", True, static=CLIENT)
    with pytest.raises(ChannelError, match="next step is to write"):
        initiator.read_message(bytes(32))
    responder = HandshakeState("XX", False, static=SERVER)
    with pytest.raises(ChannelError, match="next step is to read"):
        responder.write_message()
    with pytest.raises(ChannelError, match="not complete"):
        responder.transport_ciphers()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ClientChannel(CLIENT, hash_name="MD5"),
        lambda: ClientChannel(CLIENT, server_key=bytes(31)),
        lambda: ClientChannel(CLIENT, max_message=0),
        lambda: ServerChannel(SERVER, rekey_interval=0),
        lambda: ServerChannel(b"not a keypair"),  # type: ignore[arg-type]
        lambda: HandshakeState("KK", True),
        lambda: HandshakeState("IK", True, static=CLIENT),
        lambda: CipherState("ChaChaPoly", bytes(16)),
        lambda: CipherState("DES"),
    ],
)
def test_bad_arguments(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgumentError):
        make()


# ---- keys ----------------------------------------------------------------------


def test_keypair_matches_cryptography() -> None:
    private = X25519PrivateKey.generate()
    raw = private.private_bytes_raw()
    keypair = Keypair.from_private(raw)
    assert keypair.public == private.public_key().public_bytes_raw()
    assert keypair.private == raw
    assert raw.hex() not in repr(keypair)
    assert fingerprint(keypair.public) in repr(keypair)
    copy = keypair.private_bytearray()
    keypair.wipe()
    assert copy == raw
    with pytest.raises(InvalidArgumentError, match="wiped"):
        keypair.private  # noqa: B018
    assert Keypair.generate().public != Keypair.generate().public
    with pytest.raises(InvalidArgumentError):
        Keypair.from_private(bytes(31))


def test_derive_client_keypair() -> None:
    master = os.urandom(32)
    first = derive_client_keypair(master)
    assert derive_client_keypair(bytearray(master)).public == first.public
    assert derive_client_keypair(master, 1).public != first.public
    assert derive_client_keypair(os.urandom(32)).public != first.public
    for epoch in (0, 1, 2**32 - 1):
        expected = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"doublecrypt-v2",
            info=b"noise-client-static" + epoch.to_bytes(4, "little"),
        ).derive(master)
        assert derive_client_keypair(master, epoch).private == expected
    for bad_epoch in (-1, 2**32, True):
        with pytest.raises(InvalidArgumentError, match="epoch"):
            derive_client_keypair(master, bad_epoch)
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        derive_client_keypair(bytes(16))


def test_fingerprint() -> None:
    public = Keypair.generate().public
    text = fingerprint(public)
    assert text == ":".join(f"{byte:02x}" for byte in hashlib.sha256(public).digest()[:16])
    assert len(text) == 47
    with pytest.raises(InvalidArgumentError):
        fingerprint(b"short")


# ---- known hosts ---------------------------------------------------------------


def test_known_hosts_first_use_match_and_change(tmp_path: Path) -> None:
    path = tmp_path / "config" / "known_hosts"
    hosts = KnownHosts(path)
    assert hosts.lookup("example.org:7000") is None
    key = Keypair.generate().public
    assert hosts.check("example.org:7000", key) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"example.org:7000 {key.hex()}\n"
    assert hosts.check("example.org:7000", key) is False
    assert KnownHosts(path).lookup("example.org:7000") == key
    other = Keypair.generate().public
    with pytest.raises(HostKeyChangedError) as info:
        hosts.check("example.org:7000", other)
    message = str(info.value)
    assert "example.org:7000" in message
    assert fingerprint(key) in message and fingerprint(other) in message
    assert hosts.lookup("example.org:7000") == key  # the record is unchanged
    assert hosts.check("[::1]:7000", other) is True  # another host may have any key
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_known_hosts_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    key = Keypair.generate().public
    path.write_text(f"# our servers\n\nalpha:1 {key.hex().upper()}\n")
    hosts = KnownHosts(path)
    assert hosts.lookup("alpha:1") == key
    hosts.check("beta:2", key)
    assert path.read_text() == f"# our servers\n\nalpha:1 {key.hex().upper()}\nbeta:2 {key.hex()}\n"


@pytest.mark.parametrize(
    "line",
    [
        "alpha:1",
        "alpha {}".format("00" * 32),
        "alpha:1 {}".format("00" * 31),
        "alpha:1 {} extra".format("00" * 32),
        "alpha:1 {}".format("zz" * 32),
    ],
)
def test_known_hosts_malformed_file(tmp_path: Path, line: str) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"# fine\n{line}\n")
    with pytest.raises(InvalidArgumentError, match="known_hosts:2: malformed"):
        KnownHosts(path).lookup("alpha:1")


def test_known_hosts_duplicate_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    key = "11" * 32
    path.write_text(f"alpha:1 {key}\nalpha:1 {key}\n")
    with pytest.raises(InvalidArgumentError, match="listed twice"):
        KnownHosts(path).lookup("alpha:1")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidArgumentError, match="UTF-8"):
        KnownHosts(path).lookup("alpha:1")


@pytest.mark.parametrize("host", ["alpha", "alpha:", "alpha:0", "alpha:70000", "a b:1", ""])
def test_known_hosts_bad_host(tmp_path: Path, host: str) -> None:
    with pytest.raises(InvalidArgumentError, match="host:port"):
        KnownHosts(tmp_path / "known_hosts").check(host, bytes(32))


def test_known_hosts_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert KnownHosts.default_path() == tmp_path / "doublecrypt" / "known_hosts"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        KnownHosts.default_path() == tmp_path / "home" / ".config" / "doublecrypt" / "known_hosts"
    )


# ---- asyncio over loopback ----------------------------------------------------------


async def _serve_one(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], object],
) -> tuple[asyncio.Server, int]:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handler(reader, writer)  # type: ignore[misc]

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


@pytest.mark.parametrize("pattern", ["IK", "XX"])
def test_asyncio_round_trip(pattern: str) -> None:
    async def main() -> None:
        server_done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stream = await open_channel(reader, writer, ServerChannel(SERVER), handshake_timeout=5)
            try:
                while True:
                    message = await stream.recv()
                    await stream.send(message[::-1])
            except EOFError:
                server_done.set_result(stream.channel.remote_static)
            finally:
                await stream.close()

        server, port = await _serve_one(echo)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            channel = ClientChannel(CLIENT, server_key=SERVER.public if pattern == "IK" else None)
            stream = await open_channel(reader, writer, channel, handshake_timeout=5)
            for size in (0, 10, 70_000, 1 << 20):
                message = os.urandom(size)
                await stream.send(message)
                assert await stream.recv() == message[::-1]
            for index in range(20):  # several in flight
                stream.send_nowait(bytes([index]) * 100)
            await stream.drain()
            for index in range(20):
                assert await stream.recv() == bytes([index]) * 100
            await stream.close()
            assert await server_done == CLIENT.public

    asyncio.run(asyncio.wait_for(main(), 20))


def test_asyncio_handshake_timeout() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(1024):  # never answers; ends when the client gives up
                pass
            writer.close()

        server, port = await _serve_one(silent)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            channel = ClientChannel(CLIENT, server_key=SERVER.public)
            with pytest.raises(ChannelError, match=r"within 0\.2 s"):
                await open_channel(reader, writer, channel, handshake_timeout=0.2)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_asyncio_truncated_and_refused() -> None:
    async def main() -> None:
        async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            channel = ServerChannel(SERVER)
            try:
                stream = await open_channel(reader, writer, channel, handshake_timeout=5)
            except ChannelError:
                writer.close()
                return
            channel.send(os.urandom(100_000))
            writer.write(channel.data_to_send()[:70_000])  # stop in the middle of a message
            await writer.drain()
            await stream.close()

        server, port = await _serve_one(cut_short)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            channel = ClientChannel(CLIENT, server_key=SERVER.public)
            stream = await open_channel(reader, writer, channel, handshake_timeout=5)
            with pytest.raises(ChannelError, match="truncated"):
                await stream.recv()
            await stream.close()

            # A server that closes during the handshake (wrong pinned key).
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            channel = ClientChannel(CLIENT, server_key=Keypair.generate().public)
            with pytest.raises(ChannelError):
                await open_channel(reader, writer, channel, handshake_timeout=5)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 20))
