"""doublecrypt.ncryptf beyond the vectors: round trips, the drift window, replay
refusal, token expiry, every malformed frame and header, in-memory caches.

Redis-backed caches are in test_ncryptf_redis.py; byte-for-byte conformance in
test_ncryptf_vectors.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl import bindings

from doublecrypt import ncryptf
from doublecrypt.errors import (
    AuthenticationError,
    AuthorizationError,
    ChecksumError,
    ClockDriftError,
    DecryptionError,
    HmacMismatchError,
    MalformedAuthorizationError,
    MalformedFrameError,
    MalformedTokenError,
    NcryptfError,
    PayloadError,
    ReplayError,
    SignatureError,
    TokenExpiredError,
    UnknownTokenError,
)

NOW = 1_700_000_000.0  # a fixed "current time" for the drift tests
CLIENT = ncryptf.box_keypair()
SERVER = ncryptf.box_keypair()
SIGNER = ncryptf.signing_keypair()


def lookup_for(*tokens: ncryptf.Token) -> Callable[[str], ncryptf.Token | None]:
    return {token.access_token: token for token in tokens}.get


def frame_of(plaintext: bytes) -> bytes:
    return ncryptf.encrypt_v2(
        plaintext,
        recipient_public=SERVER.public,
        sender_secret=CLIENT.secret,
        signing_secret=SIGNER.secret,
    )


def rechecksum(frame: bytes) -> bytes:
    """Recompute the v2 checksum so a deliberate change reaches the later checks."""
    head = frame[:-64]
    return head + hashlib.blake2b(head, digest_size=64, key=frame[4:28]).digest()


# ---- tokens ------------------------------------------------------------------


def test_generated_token_round_trips_and_expires() -> None:
    token = ncryptf.Token.generate(lifetime=100, now=NOW)
    assert token.expires_at == NOW + 100
    assert ncryptf.Token.from_json(token.to_json()) == token
    assert not token.expired(NOW + 100)
    assert token.expired(NOW + 100.001)
    assert token.signing_public_key == bindings.crypto_sign_seed_keypair(token.signature[:32])[0]
    assert token.access_token not in repr(token)
    assert ncryptf.Token.generate().access_token != ncryptf.Token.generate().access_token


@pytest.mark.parametrize(
    "change",
    [
        {"ikm": base64.b64encode(b"\x01" * 31).decode()},
        {"signing": base64.b64encode(b"\x02" * 64).decode()},  # random bytes: not a key
        {"signing": base64.b64encode(b"\x02" * 32).decode()},
        {"ikm": "not base64!"},
        {"expires_at": "tomorrow"},
        {"expires_at": True},
        {"access_token": "a,b"},
        {"access_token": ""},
    ],
)
def test_malformed_tokens_are_refused(change: dict[str, object]) -> None:
    data = ncryptf.Token.generate().to_dict() | change
    with pytest.raises(MalformedTokenError):
        ncryptf.Token.from_dict(data)


def test_token_json_must_be_an_object_with_every_field() -> None:
    data = ncryptf.Token.generate().to_dict()
    del data["refresh_token"]
    with pytest.raises(MalformedTokenError, match="refresh_token"):
        ncryptf.Token.from_dict(data)
    with pytest.raises(MalformedTokenError):
        ncryptf.Token.from_json("[1, 2]")
    with pytest.raises(MalformedTokenError):
        ncryptf.Token.from_json("{")


# ---- authorization: round trips, drift, expiry -------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_authorization_round_trip_with_case_insensitive_headers(version: int) -> None:
    token = ncryptf.Token.generate(now=NOW)
    body = b'{"name": "vol/1"}'
    headers = ncryptf.authorization_header(
        token, "post", "/volumes?x=1", body, version=version, date=NOW
    )
    lowered = {name.lower(): value for name, value in headers.items()}
    for carrier in (headers, lowered, httpx.Headers(headers)):
        found = ncryptf.verify_authorization(
            carrier, "POST", "/volumes?x=1", body, lookup=lookup_for(token), now=NOW
        )
        assert found is token


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (89.999, True), (90, False), (-89.999, True), (-90, False), (3600, False)],
)
@pytest.mark.parametrize("version", [1, 2])
def test_drift_window_edges(offset: float, accepted: bool, version: int) -> None:
    """|now - date| < 90 s is accepted, 90 s is not (either direction)."""
    token = ncryptf.Token.generate(now=NOW)
    headers = ncryptf.authorization_header(token, "GET", "/v", version=version, date=NOW)

    def verify() -> ncryptf.Token:
        return ncryptf.verify_authorization(
            headers, "GET", "/v", b"", lookup=lookup_for(token), now=NOW + offset
        )

    if accepted:
        assert verify() is token
    else:
        with pytest.raises(ClockDriftError):
            verify()


def test_drift_window_is_configurable() -> None:
    token = ncryptf.Token.generate(now=NOW)
    headers = ncryptf.authorization_header(token, "GET", "/v", date=NOW)
    check = lookup_for(token)
    ncryptf.verify_authorization(headers, "GET", "/v", b"", lookup=check, now=NOW + 9, drift=10)
    with pytest.raises(ClockDriftError):
        ncryptf.verify_authorization(
            headers, "GET", "/v", b"", lookup=check, now=NOW + 10, drift=10
        )


def test_expired_and_unknown_tokens_are_refused() -> None:
    token = ncryptf.Token.generate(lifetime=60, now=NOW - 120)
    headers = ncryptf.authorization_header(token, "GET", "/v", date=NOW)
    with pytest.raises(TokenExpiredError):
        ncryptf.verify_authorization(headers, "GET", "/v", b"", lookup=lookup_for(token), now=NOW)
    with pytest.raises(UnknownTokenError):
        ncryptf.verify_authorization(headers, "GET", "/v", b"", lookup=lookup_for(), now=NOW)


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [("PUT", "/v", b"{}"), ("GET", "/w", b"{}"), ("GET", "/v?", b"{}"), ("GET", "/v", b"{} ")],
)
def test_any_change_to_method_uri_or_body_breaks_the_hmac(
    method: str, uri: str, body: bytes
) -> None:
    token = ncryptf.Token.generate(now=NOW)
    headers = ncryptf.authorization_header(token, "GET", "/v", b"{}", date=NOW)
    with pytest.raises(HmacMismatchError):
        ncryptf.verify_authorization(headers, method, uri, body, lookup=lookup_for(token), now=NOW)


def test_another_tokens_key_does_not_verify() -> None:
    mine, other = ncryptf.Token.generate(now=NOW), ncryptf.Token.generate(now=NOW)
    forged = ncryptf.Token(other.access_token, "", mine.ikm, mine.signature, mine.expires_at)
    headers = ncryptf.authorization_header(forged, "GET", "/v", date=NOW)
    with pytest.raises(HmacMismatchError):
        ncryptf.verify_authorization(headers, "GET", "/v", b"", lookup=lookup_for(other), now=NOW)


# ---- replay ------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_replayed_request_is_refused(version: int) -> None:
    token = ncryptf.Token.generate(now=NOW)
    salts = ncryptf.MemorySaltCache()
    headers = ncryptf.authorization_header(token, "DELETE", "/v", version=version, date=NOW)
    check = lookup_for(token)
    ncryptf.verify_authorization(headers, "DELETE", "/v", b"", lookup=check, now=NOW, replay=salts)
    with pytest.raises(ReplayError):
        ncryptf.verify_authorization(
            headers, "DELETE", "/v", b"", lookup=check, now=NOW + 1, replay=salts
        )
    fresh = ncryptf.authorization_header(token, "DELETE", "/v", version=version, date=NOW)
    ncryptf.verify_authorization(fresh, "DELETE", "/v", b"", lookup=check, now=NOW, replay=salts)


def test_a_forgery_does_not_burn_the_salt() -> None:
    """Only accepted requests are remembered: a forged header reusing a salt
    must not make the genuine request look like a replay."""
    token = ncryptf.Token.generate(now=NOW)
    salts = ncryptf.MemorySaltCache()
    salt = b"\x07" * 32
    genuine = ncryptf.authorization_header(token, "GET", "/v", date=NOW, salt=salt)
    attacker = ncryptf.Token(token.access_token, "", b"\x00" * 32, token.signature, NOW + 99)
    forged = ncryptf.authorization_header(attacker, "GET", "/v", date=NOW, salt=salt)
    check = lookup_for(token)
    with pytest.raises(HmacMismatchError):
        ncryptf.verify_authorization(forged, "GET", "/v", b"", lookup=check, now=NOW, replay=salts)
    ncryptf.verify_authorization(genuine, "GET", "/v", b"", lookup=check, now=NOW, replay=salts)


def test_memory_salt_cache_ttl_sweep_and_pairs() -> None:
    clock = [0.0]
    salts = ncryptf.MemorySaltCache(clock=lambda: clock[0])
    assert salts.remember("tok", b"s" * 32, 180)
    assert not salts.remember("tok", b"s" * 32, 180)
    assert salts.remember("other", b"s" * 32, 180)  # the pair, not the salt alone
    clock[0] = 179.9
    assert not salts.remember("tok", b"s" * 32, 180)
    clock[0] = 180.0
    assert salts.remember("tok", b"s" * 32, 180)
    for i in range(3000):  # growth triggers sweeps of expired entries
        clock[0] += 1
        assert salts.remember("tok", i.to_bytes(32, "big"), 10)
    assert len(salts) < 1100


def test_memory_salt_cache_is_atomic_across_threads() -> None:
    salts = ncryptf.MemorySaltCache()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait(timeout=10)
        results.append(salts.remember("tok", b"x" * 32, 60))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [False] * 7 + [True]


# ---- malformed authorization headers -----------------------------------------


def _v2(fields: dict[str, object]) -> dict[str, str]:
    text = json.dumps(fields).encode()
    return {"Authorization": "HMAC " + base64.b64encode(text).decode()}


GOOD_SALT = base64.b64encode(b"\x01" * 32).decode()
GOOD_HMAC = base64.b64encode(b"\x02" * 32).decode()
GOOD_DATE = ncryptf.format_date(NOW)
V2_FIELDS: dict[str, object] = {
    "access_token": "tok",
    "date": GOOD_DATE,
    "hmac": GOOD_HMAC,
    "salt": GOOD_SALT,
    "v": 2,
}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "HMAC"},
        {"Authorization": f"HMAC tok,{GOOD_HMAC}", "X-Date": GOOD_DATE},
        {"Authorization": f"HMAC tok,{GOOD_HMAC},{GOOD_SALT},x", "X-Date": GOOD_DATE},
        {"Authorization": f"HMAC tok,{GOOD_HMAC},{GOOD_SALT}"},  # no X-Date
        {"Authorization": f"HMAC ,{GOOD_HMAC},{GOOD_SALT}", "X-Date": GOOD_DATE},
        {"Authorization": f"HMAC tok,{GOOD_HMAC},c2FsdA==", "X-Date": GOOD_DATE},  # 4-byte salt
        {"Authorization": f"HMAC tok,not*b64,{GOOD_SALT}", "X-Date": GOOD_DATE},
        {"Authorization": "HMAC !!!not-base64!!!"},
        {"Authorization": "HMAC " + base64.b64encode(b"[1,2]").decode()},
        _v2(V2_FIELDS | {"v": 1}),
        _v2(V2_FIELDS | {"v": True}),
        _v2(V2_FIELDS | {"v": "2"}),
        _v2({k: v for k, v in V2_FIELDS.items() if k != "date"}),
        _v2({k: v for k, v in V2_FIELDS.items() if k != "hmac"}),
        _v2(V2_FIELDS | {"access_token": 7}),
        _v2(V2_FIELDS | {"date": GOOD_DATE.replace("+0000", "GMT")}),
        _v2(V2_FIELDS | {"date": "Mon" + GOOD_DATE[3:]}),  # weekday disagrees
        _v2(V2_FIELDS | {"date": "Tue, 31 Feb 2023 10:00:00 +0000"}),
        _v2(V2_FIELDS | {"date": "2023-11-14T22:13:20Z"}),
    ],
)
def test_malformed_authorization_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(MalformedAuthorizationError):
        ncryptf.parse_authorization(headers)
    with pytest.raises(MalformedAuthorizationError):
        ncryptf.verify_authorization(headers, "GET", "/", b"", lookup=lambda _: None, now=NOW)


def test_v2_header_parser_accepts_unescaped_slashes() -> None:
    token = ncryptf.Token.generate(now=NOW)
    header = ncryptf.authorization_header(token, "GET", "/a/b", date=NOW)["Authorization"]
    inner = json.loads(base64.b64decode(header[5:]))
    plain = _v2(inner)  # json.dumps writes "/" unescaped
    assert plain["Authorization"] != header
    found = ncryptf.verify_authorization(
        plain, "GET", "/a/b", b"", lookup=lookup_for(token), now=NOW
    )
    assert found is token


def test_dates_with_other_offsets_parse_to_the_same_moment() -> None:
    assert ncryptf.parse_date("Fri, 03 Aug 2018 17:27:48 +0200").timestamp() == 1533310068
    assert ncryptf.parse_date("Fri, 03 Aug 2018 10:27:48 -0500").timestamp() == 1533310068


def test_error_families_map_to_http_statuses() -> None:
    for cls in (MalformedFrameError, ChecksumError, DecryptionError, SignatureError):
        assert issubclass(cls, PayloadError)
        assert not issubclass(cls, AuthorizationError)
    for auth_cls in (ClockDriftError, ReplayError, TokenExpiredError, HmacMismatchError):
        assert issubclass(auth_cls, AuthorizationError)
        assert issubclass(auth_cls, AuthenticationError)
        assert not issubclass(auth_cls, PayloadError)
    assert issubclass(PayloadError, NcryptfError)
    assert issubclass(MalformedFrameError, ValueError)


# ---- encrypted payloads ------------------------------------------------------


def test_v2_round_trip_reports_the_keys() -> None:
    opened = ncryptf.decrypt_v2(frame_of(b"hello"), recipient_secret=SERVER.secret)
    assert opened == ncryptf.Decrypted(b"hello", CLIENT.public, SIGNER.public)


def test_v2_frames_use_fresh_nonces() -> None:
    assert frame_of(b"same") != frame_of(b"same")
    assert len(frame_of(b"")) == ncryptf.V2_MIN_LENGTH
    assert len(frame_of(b"x" * 17)) == 253


def test_short_frame() -> None:
    frame = frame_of(b"")
    with pytest.raises(MalformedFrameError):
        ncryptf.decrypt_v2(frame[:-1], recipient_secret=SERVER.secret)
    with pytest.raises(MalformedFrameError):
        ncryptf.decrypt_v2(b"", recipient_secret=SERVER.secret)


def test_bad_magic() -> None:
    frame = frame_of(b"data")
    for bad in (b"\xed\x52\x09\x20", b"\xde\x25\x90\x01", b"\x00\x00\x00\x00"):
        with pytest.raises(MalformedFrameError, match="magic"):
            ncryptf.decrypt_v2(rechecksum(bad + frame[4:]), recipient_secret=SERVER.secret)
    assert ncryptf.payload_version(b"\x00" + frame[1:]) == 1


@pytest.mark.parametrize("position", [4, 28, 59, 60, 100, -161, -160, -129, -128, -65, -64, -1])
def test_any_flipped_byte_fails_the_checksum(position: int) -> None:
    frame = bytearray(frame_of(b'{"payload": "is forty bytes or so..."}'))
    frame[position] ^= 0x01
    with pytest.raises(ChecksumError):
        ncryptf.decrypt_v2(bytes(frame), recipient_secret=SERVER.secret)


def test_tampered_ciphertext_with_valid_checksum_fails_to_decrypt() -> None:
    frame = bytearray(frame_of(b"attack at dawn"))
    frame[70] ^= 0x80
    with pytest.raises(DecryptionError):
        ncryptf.decrypt_v2(rechecksum(bytes(frame)), recipient_secret=SERVER.secret)


def test_bad_signature_is_refused() -> None:
    frame = bytearray(frame_of(b"signed words"))
    frame[-100] ^= 0x01  # inside the signature
    with pytest.raises(SignatureError):
        ncryptf.decrypt_v2(rechecksum(bytes(frame)), recipient_secret=SERVER.secret)


def test_signature_by_another_key_is_refused() -> None:
    """Swap in another signing public key: the signature no longer verifies."""
    frame = frame_of(b"signed words")
    other = ncryptf.signing_keypair().public
    swapped = frame[:-160] + other + frame[-128:]
    with pytest.raises(SignatureError):
        ncryptf.decrypt_v2(rechecksum(swapped), recipient_secret=SERVER.secret)


def test_unexpected_signing_key_is_refused() -> None:
    frame = frame_of(b"from whom?")
    with pytest.raises(SignatureError, match="unexpected"):
        ncryptf.decrypt_v2(
            frame,
            recipient_secret=SERVER.secret,
            expected_signing_public=ncryptf.signing_keypair().public,
        )


def test_wrong_recipient_key() -> None:
    with pytest.raises(DecryptionError):
        ncryptf.decrypt_v2(frame_of(b"not for you"), recipient_secret=CLIENT.secret)
    with pytest.raises(DecryptionError):
        ncryptf.decrypt_v2(frame_of(b"not for you"), recipient_secret=ncryptf.box_keypair().secret)


def test_v1_round_trip_and_rejections() -> None:
    sealed = ncryptf.encrypt_v1(
        b"legacy", recipient_public=SERVER.public, sender_secret=CLIENT.secret
    )
    assert len(sealed.ciphertext) == len(b"legacy") + 16
    opened = ncryptf.decrypt_v1(
        sealed.ciphertext,
        recipient_secret=SERVER.secret,
        sender_public=CLIENT.public,
        nonce=sealed.nonce,
    )
    assert opened == b"legacy"
    with pytest.raises(DecryptionError):
        ncryptf.decrypt_v1(
            sealed.ciphertext,
            recipient_secret=SERVER.secret,
            sender_public=CLIENT.public,
            nonce=bytes(24),
        )
    signature = ncryptf.sign_v1(b"legacy", SIGNER.secret)
    ncryptf.verify_v1_signature(b"legacy", signature, SIGNER.public)
    with pytest.raises(SignatureError):
        ncryptf.verify_v1_signature(b"legacx", signature, SIGNER.public)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recipient_public": b"\x00" * 31},
        {"sender_secret": b"\x00" * 33},
        {"signing_secret": b"\x00" * 32},
        {"nonce": b"\x00" * 23},
    ],
)
def test_wrong_key_sizes_are_refused(kwargs: dict[str, bytes]) -> None:
    args = {
        "recipient_public": SERVER.public,
        "sender_secret": CLIENT.secret,
        "signing_secret": SIGNER.secret,
    } | kwargs
    with pytest.raises(MalformedFrameError):
        ncryptf.encrypt_v2(b"x", **args)


def test_body_encoding() -> None:
    frame = frame_of(b"body")
    assert ncryptf.decode_body(ncryptf.encode_body(frame) + b"\n") == frame
    for bad in (b"not base64!", "caf\u00e9", b"abc"):
        with pytest.raises(MalformedFrameError):
            ncryptf.decode_body(bad)


@given(st.binary(max_size=2048))
def test_v2_round_trip_property(plaintext: bytes) -> None:
    frame = frame_of(plaintext)
    assert len(frame) == ncryptf.V2_MIN_LENGTH + len(plaintext)
    assert ncryptf.decrypt_v2(frame, recipient_secret=SERVER.secret).plaintext == plaintext


@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "patch"]),
    st.text(st.characters(codec="ascii", exclude_characters="\n"), max_size=60),
    st.binary(max_size=512),
    st.sampled_from([1, 2]),
)
def test_authorization_round_trip_property(
    method: str, path: str, body: bytes, version: int
) -> None:
    token = ncryptf.Token.generate(now=NOW)
    uri = "/" + path
    headers = ncryptf.authorization_header(token, method, uri, body, version=version, date=NOW)
    found = ncryptf.verify_authorization(
        headers, method, uri, body, lookup=lookup_for(token), now=NOW
    )
    assert found is token


# ---- ephemeral keys and the in-memory key cache ------------------------------


def test_ephemeral_key_public_info_and_storage_round_trip() -> None:
    key = ncryptf.EphemeralKey.generate(now=NOW)
    assert key.expires_at == NOW + 900
    assert key.hash_id == ncryptf.hash_id_of(key.box_public)
    info = json.loads(key.public_json())
    assert info["hash-id"] == info["hash_id"] == key.hash_id
    assert base64.b64decode(info["public"]) == key.box_public
    assert base64.b64decode(info["signature"]) == key.signing_public
    assert "secret" not in key.public_json().lower()
    assert base64.b64encode(key.box_secret).decode() not in repr(key)
    public = ncryptf.ServerPublicKey.from_info(info)
    assert public == key.public_key()
    php_style = {k: v for k, v in info.items() if k not in ("hash_id", "expires_at")}
    assert ncryptf.ServerPublicKey.from_info(php_style).hash_id == key.hash_id
    assert ncryptf.EphemeralKey.from_json(key.to_json()) == key
    with pytest.raises(MalformedFrameError):
        ncryptf.ServerPublicKey.from_info({"public": info["public"]})


def test_ephemeral_key_encrypts_both_ways() -> None:
    key = ncryptf.EphemeralKey.generate()
    request = ncryptf.encrypt_v2(
        b"req",
        recipient_public=key.box_public,
        sender_secret=CLIENT.secret,
        signing_secret=SIGNER.secret,
    )
    opened = ncryptf.decrypt_v2(request, recipient_secret=key.box_secret)
    response = ncryptf.encrypt_v2(
        b"resp",
        recipient_public=opened.sender_public,
        sender_secret=key.box_secret,
        signing_secret=key.signing_secret,
    )
    back = ncryptf.decrypt_v2(
        response, recipient_secret=CLIENT.secret, expected_signing_public=key.signing_public
    )
    assert back.plaintext == b"resp"


def test_memory_key_cache_expiry_delete_and_bound() -> None:
    clock = [NOW]
    cache = ncryptf.MemoryKeyCache(max_keys=3, clock=lambda: clock[0])
    keys = [ncryptf.EphemeralKey.generate(lifetime=100, now=NOW) for _ in range(4)]
    for key in keys[:3]:
        cache.put(key)
    assert cache.get(keys[0].hash_id) == keys[0]
    cache.put(keys[3])  # full: the oldest goes
    assert cache.get(keys[0].hash_id) is None
    assert cache.get(keys[3].hash_id) == keys[3]
    cache.delete(keys[3].hash_id)
    cache.delete("unknown")
    assert cache.get(keys[3].hash_id) is None
    clock[0] = NOW + 100.5
    assert cache.get(keys[1].hash_id) is None
    assert isinstance(cache, ncryptf.KeyCache)
    assert isinstance(ncryptf.MemorySaltCache(), ncryptf.SaltCache)


def test_make_caches_defaults_to_memory() -> None:
    keys, salts = ncryptf.make_caches(None)
    assert isinstance(keys, ncryptf.MemoryKeyCache)
    assert isinstance(salts, ncryptf.MemorySaltCache)
