"""The official Noise test vectors (Cacophony and snow, shared/vectors/noise/)
replayed through doublecrypt.channel.noise: every handshake message byte for
byte, the handshake hash where the vector has one, and every transport message
both encrypted and decrypted. PSK entries are skipped explicitly: the channel
does not implement psk modifiers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from doublecrypt.channel.keys import Keypair
from doublecrypt.channel.noise import HandshakeState, parse_protocol_name

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "noise"
PLAIN_FILES = ("cacophony.json", "snow.json")
PSK_FILES = ("cacophony-psk.json", "snow-psk.json")
# What the stored files hold (their README): a vector dropped by accident must fail.
EXPECTED_PLAIN_ENTRIES = 20
EXPECTED_PSK_ENTRIES = 8


def _load(name: str) -> list[dict[str, Any]]:
    path = VECTORS / name
    if not path.is_file():
        raise FileNotFoundError(f"Noise test vectors missing: {path} (shared/ beside the checkout)")
    entries: list[dict[str, Any]] = json.loads(path.read_text())["vectors"]
    return entries


def _plain_cases() -> list[Any]:
    cases = []
    for name in PLAIN_FILES:
        for index, entry in enumerate(_load(name)):
            cases.append(pytest.param(entry, id=f"{name}:{index}:{entry['protocol_name']}"))
    return cases


def _psk_cases() -> list[Any]:
    skip = pytest.mark.skip(reason="psk modifiers are not implemented by the channel")
    cases = []
    for name in PSK_FILES:
        for index, entry in enumerate(_load(name)):
            cases.append(
                pytest.param(entry, id=f"{name}:{index}:{entry['protocol_name']}", marks=skip)
            )
    return cases


PLAIN = _plain_cases()
PSK = _psk_cases()


def _side(entry: dict[str, Any], initiator: bool) -> HandshakeState:
    pattern, cipher_name, hash_name = parse_protocol_name(entry["protocol_name"])
    role = "init_" if initiator else "resp_"
    assert not entry.get(role + "psks"), "a psk entry among the plain vectors"

    def keypair(field: str) -> Keypair | None:
        value = entry.get(role + field)
        return None if value is None else Keypair.from_private(bytes.fromhex(value))

    remote = entry.get(role + "remote_static")
    return HandshakeState(
        pattern,
        initiator,
        prologue=bytes.fromhex(entry[role + "prologue"]),
        static=keypair("static"),
        remote_static=None if remote is None else bytes.fromhex(remote),
        hash_name=hash_name,
        cipher_name=cipher_name,
        fixed_ephemeral=keypair("ephemeral"),
    )


def test_vector_files_hold_the_expected_entries() -> None:
    assert len(PLAIN) == EXPECTED_PLAIN_ENTRIES
    assert len(PSK) == EXPECTED_PSK_ENTRIES
    patterns = {parse_protocol_name(case.values[0]["protocol_name"])[0] for case in PLAIN}
    assert patterns == {"NN", "XX", "IK"}


@pytest.mark.parametrize("entry", PLAIN)
def test_vector(entry: dict[str, Any]) -> None:
    initiator, responder = _side(entry, True), _side(entry, False)
    messages = entry["messages"]
    index = 0
    while not (initiator.complete and responder.complete):
        message = messages[index]
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        payload = bytes.fromhex(message["payload"])
        sent = sender.write_message(payload)
        assert sent.hex() == message["ciphertext"], f"handshake message {index}"
        assert receiver.read_message(sent) == payload, f"handshake payload {index}"
        index += 1
    assert initiator.handshake_hash == responder.handshake_hash
    if "handshake_hash" in entry:
        assert initiator.handshake_hash.hex() == entry["handshake_hash"]
    for side, peer in ((initiator, "resp_static"), (responder, "init_static")):
        expected = entry.get(peer)
        public = None if expected is None else Keypair.from_private(bytes.fromhex(expected)).public
        assert side.remote_static == public

    i_send, i_receive = initiator.transport_ciphers()
    r_send, r_receive = responder.transport_ciphers()
    transport = messages[index:]
    assert transport, "every vector carries transport messages"
    for offset, message in enumerate(transport):
        # The even/odd alternation continues after the handshake.
        from_initiator = (index + offset) % 2 == 0
        encrypt = i_send if from_initiator else r_send
        decrypt = r_receive if from_initiator else i_receive
        payload = bytes.fromhex(message["payload"])
        sealed = encrypt.encrypt_with_ad(None, payload)
        assert sealed.hex() == message["ciphertext"], f"transport message {index + offset}"
        assert decrypt.decrypt_with_ad(None, sealed) == payload


@pytest.mark.parametrize("entry", PSK)
def test_psk_vector(entry: dict[str, Any]) -> None:
    raise AssertionError("unreachable: psk vectors are skipped")
