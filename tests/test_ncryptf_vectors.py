"""ncryptf conformance: every vector in shared/vectors/ncryptf/ byte for byte.

The vectors are the ones all seven upstream implementations assert (plus our
derived intermediate values); matching them is what makes doublecrypt.ncryptf
interoperable. Missing vector files fail the run, they never skip.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from doublecrypt import ncryptf
from doublecrypt.errors import (
    ChecksumError,
    ClockDriftError,
    HmacMismatchError,
    MalformedFrameError,
    PayloadError,
)
from doublecrypt.ncryptf.authorization import compute_hmac, hmac_key

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "ncryptf"


def _load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    if not path.is_file():
        pytest.fail(f"ncryptf vector file missing: {path}", pytrace=False)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


AUTH = _load("authorization.json")
ENC = _load("encryption.json")
TOKENS = _load("token.json")
CASES: list[dict[str, Any]] = AUTH["cases"]


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def vector_token(expires_at: float | None = None) -> ncryptf.Token:
    data = dict(AUTH["token"])
    data.pop("expires_at_note")
    data["expires_at"] = time.time() + 14400 if expires_at is None else expires_at
    return ncryptf.Token.from_dict(data)


SALT = b64(AUTH["salt_b64"])
DATE = AUTH["date_unix"]
PAYLOAD = ENC["payload"].encode("utf-8")
CLIENT_SECRET = b64(ENC["client_box_keypair"]["secret_b64"])
CLIENT_PUBLIC = b64(ENC["client_box_keypair"]["public_b64"])
SERVER_SECRET = b64(ENC["server_box_keypair"]["secret_b64"])
SERVER_PUBLIC = b64(ENC["server_box_keypair"]["public_b64"])
SIGNING_SECRET = b64(ENC["signing_keypair"]["secret_b64"])
SIGNING_PUBLIC = b64(ENC["signing_keypair"]["public_b64"])
NONCE = b64(ENC["nonce_b64"])
V2_FRAME = b64(ENC["v2"]["cipher_b64"])


# ---- token.json --------------------------------------------------------------


def test_vector_files_are_complete() -> None:
    assert len(CASES) == 9
    assert len(PAYLOAD) == 199
    assert len(V2_FRAME) == ENC["v2"]["derived_layout"]["total_length"] == 435


def test_test_token_parses_with_exact_sizes_and_public_key() -> None:
    data = dict(TOKENS["test_token_login_response"])
    data["expires_at"] = int(time.time()) + 14400
    token = ncryptf.Token.from_json(json.dumps(data))
    assert token.access_token == data["access_token"]  # no JSON quotes kept (upstream bug)
    assert token.refresh_token == data["refresh_token"]
    assert len(token.ikm) == TOKENS["derived"]["ikm_length"]
    assert len(token.signature) == TOKENS["derived"]["signing_length"]
    assert token.signing_public_key == b64(TOKENS["derived"]["signing_public_key_b64"])
    assert not token.expired()
    assert json.loads(token.to_json()) == data  # same login-response shape back
    assert ncryptf.Token.from_json(token.to_json()) == token


def test_readme_token_round_trips_and_is_expired() -> None:
    data = TOKENS["readme_example_login_response"]
    token = ncryptf.Token.from_dict(data)
    assert token.expired() is TOKENS["derived"]["readme_token_is_expired"]
    assert token.expired(now=data["expires_at"]) is False  # strict: expired only after
    assert token.expired(now=data["expires_at"] + 0.5) is True
    assert json.loads(token.to_json()) == data


def test_authorization_token_matches_token_json() -> None:
    token = vector_token()
    assert token.signing_public_key == b64(AUTH["derived_common"]["token_signing_public_key_b64"])
    okm_hex = AUTH["derived_common"]["hkdf_okm_hex"]
    assert hmac_key(token.ikm, SALT) == okm_hex.encode("ascii")
    assert okm_hex == AUTH["derived_common"]["hmac_key_ascii"]


# ---- authorization.json ------------------------------------------------------


def test_fixed_date_formats_exactly() -> None:
    assert ncryptf.format_date(DATE) == AUTH["date_string"]
    assert ncryptf.parse_date(AUTH["date_string"]).timestamp() == DATE


@pytest.mark.parametrize("case", CASES, ids=[f"case{c['index']}" for c in CASES])
def test_signature_strings_and_body_hashes(case: dict[str, Any]) -> None:
    method, uri, body = case["method"], case["uri"], case["payload"]
    date = AUTH["date_string"]
    assert ncryptf.body_hash(body, SALT, 1) == case["v1_body_hash"]
    assert ncryptf.body_hash(body, SALT, 2) == case["v2_body_hash"]
    v1 = ncryptf.signature_string(method, uri, body, date, SALT, 1)
    v2 = ncryptf.signature_string(method, uri, body, date, SALT, 2)
    assert v1 == case["derived"]["v1_signature_string"]
    assert v2 == case["derived"]["v2_signature_string"]
    assert v1.split("\n")[0] == case["v1_body_hash"]
    assert v2.split("\n")[0] == case["v2_body_hash"]
    token = vector_token()
    assert compute_hmac(token, method, uri, body, date, SALT, 1) == b64(
        case["derived"]["v1_hmac_b64"]
    )
    assert compute_hmac(token, method, uri, body, date, SALT, 2) == b64(
        case["derived"]["v2_hmac_b64"]
    )


@pytest.mark.parametrize("case", CASES, ids=[f"case{c['index']}" for c in CASES])
def test_v1_header_byte_for_byte(case: dict[str, Any]) -> None:
    headers = ncryptf.authorization_header(
        vector_token(),
        case["method"],
        case["uri"],
        case["payload"],
        version=1,
        date=DATE,
        salt=SALT,
    )
    assert headers == {"Authorization": case["v1_header"], "X-Date": AUTH["date_string"]}


@pytest.mark.parametrize("case", CASES, ids=[f"case{c['index']}" for c in CASES])
def test_v2_header_byte_for_byte(case: dict[str, Any]) -> None:
    headers = ncryptf.authorization_header(
        vector_token(),
        case["method"],
        case["uri"],
        case["payload"].encode("utf-8"),
        version=2,
        date=DATE,
        salt=SALT,
    )
    assert headers == {"Authorization": case["v2_header"]}
    inner = b64(headers["Authorization"].removeprefix("HMAC ")).decode("ascii")
    assert inner == case["derived"]["v2_header_json"]  # key order and "\/" escaping


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=[f"case{c['index']}" for c in CASES])
def test_vector_headers_parse_and_are_rejected_for_their_old_date(
    case: dict[str, Any], version: int
) -> None:
    """Upstream: verify() of the fixed-date headers is false. Here the HMAC is
    right, so the refusal is specifically the clock drift."""
    token = vector_token()
    if version == 1:
        headers = {"Authorization": case["v1_header"], "X-Date": AUTH["date_string"]}
    else:
        headers = {"Authorization": case["v2_header"]}
    parsed = ncryptf.parse_authorization(headers)
    assert (parsed.version, parsed.access_token, parsed.salt) == (version, token.access_token, SALT)
    assert parsed.date == AUTH["date_string"]
    with pytest.raises(ClockDriftError):
        ncryptf.verify_authorization(
            headers,
            case["method"],
            case["uri"],
            case["payload"].encode("utf-8"),
            lookup={token.access_token: token}.get,
        )
    with pytest.raises(HmacMismatchError):  # at its own time: a changed URI is refused
        ncryptf.verify_authorization(
            headers,
            case["method"],
            case["uri"] + "x",
            case["payload"].encode("utf-8"),
            lookup={token.access_token: token}.get,
            now=DATE,
        )
    accepted = ncryptf.verify_authorization(
        headers,
        case["method"],
        case["uri"],
        case["payload"].encode("utf-8"),
        lookup={token.access_token: token}.get,
        now=DATE + 1,
    )
    assert accepted is token  # and the unchanged request accepted


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=[f"case{c['index']}" for c in CASES])
def test_same_salt_with_current_date_verifies(case: dict[str, Any], version: int) -> None:
    token = vector_token()
    body = case["payload"].encode("utf-8")
    headers = ncryptf.authorization_header(
        token, case["method"], case["uri"], body, version=version, salt=SALT
    )
    found = ncryptf.verify_authorization(
        headers, case["method"], case["uri"], body, lookup={token.access_token: token}.get
    )
    assert found == token


# ---- encryption.json ---------------------------------------------------------


def test_key_pairs_are_consistent() -> None:
    from nacl import bindings

    assert bindings.crypto_scalarmult_base(CLIENT_SECRET) == CLIENT_PUBLIC
    assert bindings.crypto_scalarmult_base(SERVER_SECRET) == SERVER_PUBLIC
    assert SIGNING_SECRET[32:] == SIGNING_PUBLIC


def test_v1_ciphertext_and_signature_byte_for_byte() -> None:
    sealed = ncryptf.encrypt_v1(
        PAYLOAD, recipient_public=SERVER_PUBLIC, sender_secret=CLIENT_SECRET, nonce=NONCE
    )
    assert sealed == (b64(ENC["v1"]["cipher_b64"]), NONCE)
    signature = ncryptf.sign_v1(PAYLOAD, SIGNING_SECRET)
    assert signature == b64(ENC["v1"]["signature_b64"])
    ncryptf.verify_v1_signature(PAYLOAD, signature, SIGNING_PUBLIC)
    opened = ncryptf.decrypt_v1(
        sealed.ciphertext, recipient_secret=SERVER_SECRET, sender_public=CLIENT_PUBLIC, nonce=NONCE
    )
    assert opened == PAYLOAD


def test_v2_frame_byte_for_byte() -> None:
    frame = ncryptf.encrypt_v2(
        PAYLOAD,
        recipient_public=SERVER_PUBLIC,
        sender_secret=CLIENT_SECRET,
        signing_secret=SIGNING_SECRET,
        nonce=NONCE,
    )
    assert frame == V2_FRAME
    assert ncryptf.encode_body(frame) == ENC["v2"]["cipher_b64"].encode("ascii")
    assert ncryptf.decode_body(ENC["v2"]["cipher_b64"]) == frame


def test_v2_frame_decrypts_with_server_secret_only() -> None:
    opened = ncryptf.decrypt_v2(V2_FRAME, recipient_secret=SERVER_SECRET)
    assert opened == ncryptf.Decrypted(PAYLOAD, CLIENT_PUBLIC, SIGNING_PUBLIC)
    opened = ncryptf.decrypt_v2(
        V2_FRAME, recipient_secret=SERVER_SECRET, expected_signing_public=SIGNING_PUBLIC
    )
    assert opened.plaintext == PAYLOAD


def test_v2_layout_slices_the_vector() -> None:
    layout = ENC["v2"]["derived_layout"]

    def part(name: str) -> bytes:
        start, end = layout[name]
        return V2_FRAME[start:end]

    assert V2_FRAME[:4].hex() == layout["header_hex"] == ncryptf.V2_MAGIC.hex()
    assert part("nonce") == NONCE
    assert part("box_public_key") == CLIENT_PUBLIC
    assert part("ciphertext") == b64(ENC["v1"]["cipher_b64"])  # v2 boxes exactly as v1
    assert len(part("ciphertext")) == layout["ciphertext_length"]
    assert part("signing_public_key") == SIGNING_PUBLIC
    assert part("signature") == b64(ENC["v1"]["signature_b64"])
    assert part("checksum") == b64(layout["checksum_b64"])


def test_empty_payload_v2_frame_byte_for_byte() -> None:
    vector = ENC["derived_empty_payload_v2"]
    frame = ncryptf.encrypt_v2(
        b"",
        recipient_public=SERVER_PUBLIC,
        sender_secret=CLIENT_SECRET,
        signing_secret=SIGNING_SECRET,
        nonce=NONCE,
    )
    assert frame == b64(vector["cipher_b64"])
    assert len(frame) == vector["length"] == ncryptf.V2_MIN_LENGTH
    assert ncryptf.decrypt_v2(frame, recipient_secret=SERVER_SECRET).plaintext == b""


def test_version_detection_and_public_key_extraction() -> None:
    detection = ENC["version_detection"]
    assert (
        ncryptf.payload_version(b64(ENC["v1"]["cipher_b64"])) == detection["v1_cipher_is_version"]
    )
    assert ncryptf.payload_version(V2_FRAME) == detection["v2_cipher_is_version"]
    assert ncryptf.frame_public_key(V2_FRAME) == b64(detection["v2_public_key_extraction_equals"])
    assert ncryptf.frame_signing_public_key(V2_FRAME) == SIGNING_PUBLIC


# ---- must-reject inputs ------------------------------------------------------

NEGATIVE = {case["name"]: case for case in ENC["negative"]}


def test_negative_cases_are_all_covered() -> None:
    assert set(NEGATIVE) == {"v2 too short", "v1 too short", "tampered ciphertext"}


def test_short_v2_is_rejected_before_any_crypto() -> None:
    case = NEGATIVE["v2 too short"]
    data = bytes.fromhex(case["bytes_hex"])
    assert len(data) == case["length"] == ncryptf.V2_MIN_LENGTH - 1
    with pytest.raises(MalformedFrameError, match="shorter"):
        ncryptf.decrypt_v2(data, recipient_secret=SERVER_SECRET)
    with pytest.raises(MalformedFrameError):
        ncryptf.frame_public_key(data)


def test_short_v1_is_rejected() -> None:
    case = NEGATIVE["v1 too short"]
    data = bytes.fromhex(case["bytes_hex"])
    assert len(data) == case["length"] == 15
    with pytest.raises(MalformedFrameError):
        ncryptf.payload_version(data)
    with pytest.raises(MalformedFrameError):
        ncryptf.decrypt_v1(
            data, recipient_secret=SERVER_SECRET, sender_public=CLIENT_PUBLIC, nonce=NONCE
        )
    with pytest.raises(MalformedFrameError):
        ncryptf.decrypt_v2(data, recipient_secret=SERVER_SECRET)


@pytest.mark.parametrize("filler", [b"\x00" * 32, b"\xff" * 32, bytes(range(32))])
def test_tampered_ciphertext_fails_the_checksum(filler: bytes) -> None:
    tampered = V2_FRAME[:60] + filler + V2_FRAME[92:]
    assert tampered != V2_FRAME
    with pytest.raises(ChecksumError) as info:
        ncryptf.decrypt_v2(tampered, recipient_secret=SERVER_SECRET)
    assert isinstance(info.value, PayloadError)  # an HTTP server answers 400
