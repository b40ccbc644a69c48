"""ncryptf request authorization: HMAC-SHA256 keyed through HKDF, headers v1 and v2.

For each request the client picks a 32-byte random salt and signs a four-line
*signature string* (LF-separated, no trailing LF)::

    <body hash>            v1: hex SHA-256 of the body; v2: base64 BLAKE2b-512 keyed with the salt
    <METHOD>+<uri>         uri = path plus "?query", exactly as sent
    <date>                 "Fri, 03 Aug 2018 15:27:48 +0000" (UTC, English names, "+0000")
    <base64 salt>

with HMAC-SHA256 whose key is the lowercase *hex text* of
HKDF-SHA256(ikm=token.ikm, salt=salt, info="HMAC|AuthenticationKey", L=32).

Headers: v1 ``Authorization: HMAC <access_token>,<b64 hmac>,<b64 salt>`` plus
``X-Date: <date>``; v2 ``Authorization: HMAC <base64 JSON>`` with the JSON written
in exactly the order ``access_token, date, hmac, salt, v`` and every ``/`` as ``\\/``.

:func:`verify_authorization` is the server side: parse, look the token up, check
expiry, rebuild and compare the HMAC in constant time, require
``|now - date| < drift`` and, with a :class:`~.cache.SaltCache`, refuse a second
use of the same (access token, salt) pair; the ncryptf reference servers do not
remember salts, so this is our hardening and stays wire compatible.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import (
    ClockDriftError,
    HmacMismatchError,
    InvalidArgumentError,
    MalformedAuthorizationError,
    ReplayError,
    TokenExpiredError,
    UnknownTokenError,
)
from .cache import SaltCache
from .token import Token

__all__ = [
    "DEFAULT_DRIFT",
    "HKDF_INFO",
    "SALT_BYTES",
    "ParsedAuthorization",
    "authorization_header",
    "body_hash",
    "compute_hmac",
    "format_date",
    "hmac_key",
    "parse_authorization",
    "parse_date",
    "signature_string",
    "verify_authorization",
]

HKDF_INFO = b"HMAC|AuthenticationKey"
SALT_BYTES = 32
HMAC_BYTES = 32
DEFAULT_DRIFT = 90.0  # seconds; every ncryptf implementation uses 90
VERSIONS = (1, 2)

# Fixed English names: strftime's %a/%b follow the locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_RE = re.compile(
    r"(?P<day>[A-Z][a-z]{2}), (?P<dd>\d{2}) (?P<mon>[A-Z][a-z]{2}) (?P<yyyy>\d{4}) "
    r"(?P<hh>\d{2}):(?P<mi>\d{2}):(?P<ss>\d{2}) (?P<sign>[+-])(?P<oh>\d{2})(?P<om>\d{2})"
)


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def format_date(when: datetime | float | None = None) -> str:
    """``when`` (a datetime, unix seconds, or now) as ``Www, DD Mon YYYY HH:MM:SS +0000``
    in UTC. A naive datetime is taken as UTC."""
    if when is None:
        when = time.time()
    if isinstance(when, datetime):
        moment = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromtimestamp(when, tz=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
        f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000"
    )


def parse_date(text: str) -> datetime:
    """Parse the ncryptf date format (any numeric offset; the weekday must agree).

    Raises :class:`MalformedAuthorizationError`."""
    match = _DATE_RE.fullmatch(text)
    if match is None or match["mon"] not in _MONTHS or match["day"] not in _DAYS:
        raise MalformedAuthorizationError("date is not in the ncryptf format")
    offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
    try:
        moment = datetime(
            int(match["yyyy"]),
            _MONTHS.index(match["mon"]) + 1,
            int(match["dd"]),
            int(match["hh"]),
            int(match["mi"]),
            int(match["ss"]),
            tzinfo=timezone(-offset if match["sign"] == "-" else offset),
        )
    except ValueError as exc:
        raise MalformedAuthorizationError("date is not a valid time") from exc
    if _DAYS[moment.weekday()] != match["day"]:
        raise MalformedAuthorizationError("date's weekday does not match its day")
    return moment


def body_hash(body: bytes | str, salt: bytes, version: int = 2) -> str:
    """The first line of the signature string."""
    data = _bytes(body)
    if version == 1:
        return hashlib.sha256(data).hexdigest()
    if version == 2:
        return _b64(hashlib.blake2b(data, digest_size=64, key=salt).digest())
    raise InvalidArgumentError(f"unknown ncryptf authorization version {version}")


def signature_string(
    method: str, uri: str, body: bytes | str, date: str, salt: bytes, version: int = 2
) -> str:
    """The four LF-joined lines the HMAC covers."""
    return "\n".join((body_hash(body, salt, version), f"{method.upper()}+{uri}", date, _b64(salt)))


def hmac_key(ikm: bytes, salt: bytes) -> bytes:
    """The HMAC key: the lowercase hex *text* (64 ASCII bytes) of the HKDF output,
    which is what every ncryptf implementation uses (the raw bytes do not match)."""
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=HKDF_INFO).derive(ikm)
    return okm.hex().encode("ascii")


def compute_hmac(
    token: Token, method: str, uri: str, body: bytes | str, date: str, salt: bytes, version: int
) -> bytes:
    message = signature_string(method, uri, body, date, salt, version).encode("utf-8")
    return hmac.new(hmac_key(token.ikm, salt), message, hashlib.sha256).digest()


def _v2_header_json(access_token: str, date: str, mac: bytes, salt: bytes) -> str:
    # Fixed key order and PHP json_encode's "\/" escaping, so headers match byte for byte.
    text = json.dumps(
        {"access_token": access_token, "date": date, "hmac": _b64(mac), "salt": _b64(salt), "v": 2},
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return text.replace("/", "\\/")


def authorization_header(
    token: Token,
    method: str,
    uri: str,
    body: bytes | str = b"",
    *,
    version: int = 2,
    date: datetime | float | None = None,
    salt: bytes | None = None,
) -> dict[str, str]:
    """The headers that authorize one request: ``{"Authorization": ...}``, plus
    ``{"X-Date": ...}`` for version 1. ``uri`` is the path with its ``?query``;
    ``body`` the exact plaintext bytes (before any encryption). ``date`` (default
    now) and ``salt`` (default 32 random bytes) are parameters for tests only."""
    if version not in VERSIONS:
        raise InvalidArgumentError(f"unknown ncryptf authorization version {version}")
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    elif len(salt) != SALT_BYTES:
        raise InvalidArgumentError(f"salt must be {SALT_BYTES} bytes")
    date_text = format_date(date)
    mac = compute_hmac(token, method, uri, body, date_text, salt, version)
    if version == 1:
        value = f"HMAC {token.access_token},{_b64(mac)},{_b64(salt)}"
        return {"Authorization": value, "X-Date": date_text}
    header_json = _v2_header_json(token.access_token, date_text, mac, salt)
    return {"Authorization": "HMAC " + _b64(header_json.encode("ascii"))}


@dataclass(frozen=True)
class ParsedAuthorization:
    """What a request's ``Authorization`` (and ``X-Date``) header carried."""

    version: int
    access_token: str
    hmac: bytes
    salt: bytes
    date: str
    moment: datetime


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts and on Starlette/httpx headers."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, item in headers.items():
        if key.lower() == wanted:
            return item
    return None


def _decode_field(value: object, field: str, length: int) -> bytes:
    if not isinstance(value, str):
        raise MalformedAuthorizationError(f"authorization {field} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedAuthorizationError(f"authorization {field} is not base64") from exc
    if len(raw) != length:
        raise MalformedAuthorizationError(f"authorization {field} must be {length} bytes")
    return raw


_Split = tuple[int, str, Mapping[str, object], str]


def _split_v1(rest: str, headers: Mapping[str, str]) -> _Split:
    parts = rest.split(",")
    if len(parts) != 3:
        raise MalformedAuthorizationError("v1 Authorization needs token,hmac,salt")
    access_token, mac_b64, salt_b64 = parts
    date = _header(headers, "X-Date")
    if date is None:
        raise MalformedAuthorizationError("v1 Authorization needs an X-Date header")
    return 1, access_token, {"hmac": mac_b64, "salt": salt_b64}, date


def _split_v2(rest: str) -> _Split:
    try:
        decoded = json.loads(base64.b64decode(rest, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise MalformedAuthorizationError("v2 Authorization is not base64 JSON") from exc
    if not isinstance(decoded, dict):
        raise MalformedAuthorizationError("v2 Authorization is not a JSON object")
    version = decoded.get("v")
    if isinstance(version, bool) or version != 2:
        raise MalformedAuthorizationError('v2 Authorization needs "v": 2')
    access_token, date = decoded.get("access_token"), decoded.get("date")
    if not isinstance(access_token, str) or not isinstance(date, str):
        raise MalformedAuthorizationError("v2 Authorization needs access_token and date")
    return 2, access_token, decoded, date


def parse_authorization(headers: Mapping[str, str]) -> ParsedAuthorization:
    """Parse ``Authorization: HMAC ...`` (v1 with ``X-Date``, or v2).

    Raises :class:`MalformedAuthorizationError` for anything missing or malformed."""
    value = _header(headers, "Authorization")
    if value is None:
        raise MalformedAuthorizationError("no Authorization header")
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if scheme != "HMAC" or not rest:
        raise MalformedAuthorizationError("Authorization is not an ncryptf HMAC header")
    if "," in rest:
        version, access_token, fields, date = _split_v1(rest, headers)
    else:
        version, access_token, fields, date = _split_v2(rest)
    if not access_token:
        raise MalformedAuthorizationError("Authorization names no access token")
    return ParsedAuthorization(
        version=version,
        access_token=access_token,
        hmac=_decode_field(fields.get("hmac"), "hmac", HMAC_BYTES),
        salt=_decode_field(fields.get("salt"), "salt", SALT_BYTES),
        date=date,
        moment=parse_date(date),
    )


def verify_authorization(
    headers: Mapping[str, str],
    method: str,
    uri: str,
    body: bytes | str,
    *,
    lookup: Callable[[str], Token | None],
    now: float | None = None,
    drift: float = DEFAULT_DRIFT,
    replay: SaltCache | None = None,
) -> Token:
    """Check a request's authorization; return the token it was made with.

    ``uri`` must be what the client signed (path plus ``?query`` as received);
    ``body`` the plaintext (decrypted) body. ``lookup`` maps an access token to
    its :class:`Token` (None when unknown or revoked). Checks, in order:
    header shape (:class:`MalformedAuthorizationError`), token known
    (:class:`UnknownTokenError`), not expired (:class:`TokenExpiredError`), HMAC
    (:class:`HmacMismatchError`), ``|now - date| < drift``
    (:class:`ClockDriftError`) and, with ``replay``, first use of the
    (access token, salt) pair within twice the drift window (:class:`ReplayError`;
    a request dated up to ``drift`` ahead stays acceptable that long).
    """
    parsed = parse_authorization(headers)
    token = lookup(parsed.access_token)
    if token is None:
        raise UnknownTokenError("unknown access token")
    current = time.time() if now is None else now
    if token.expired(current):
        raise TokenExpiredError("token expired")
    # The received date text is signed as is; the parser only accepted it in the
    # canonical layout, so this equals the reference servers' re-formatting.
    expected = compute_hmac(token, method, uri, body, parsed.date, parsed.salt, parsed.version)
    if not hmac.compare_digest(expected, parsed.hmac):
        raise HmacMismatchError("request signature does not match")
    if abs(current - parsed.moment.timestamp()) >= drift:
        raise ClockDriftError("request date is outside the allowed clock drift")
    if replay is not None and not replay.remember(parsed.access_token, parsed.salt, 2 * drift):
        raise ReplayError("request was already seen")
    return token
