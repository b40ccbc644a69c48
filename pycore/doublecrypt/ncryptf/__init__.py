"""ncryptf: interoperable signed and encrypted HTTP requests (issue 7).

Byte compatible with the ncryptf reference implementations (PHP, Rust, Go, ...);
the shared vectors in ``shared/vectors/ncryptf/`` pin every byte. Modules:

* :mod:`.token` -- :class:`Token` (access/refresh token, ``ikm``, Ed25519
  ``signature`` key, ``expires_at``), login-response JSON, expiry, issuing.
* :mod:`.authorization` -- ``Authorization: HMAC ...`` v1 (+ ``X-Date``) and v2:
  :func:`authorization_header` (client), :func:`verify_authorization` (server:
  constant-time HMAC check, clock drift window, replay refusal).
* :mod:`.payload` -- encrypted bodies: the v2 frame (:func:`encrypt_v2`,
  :func:`decrypt_v2` -> :class:`Decrypted`) and v1 (:func:`encrypt_v1`,
  :func:`decrypt_v1`, :func:`sign_v1`, :func:`verify_v1_signature`), base64
  bodies, version detection, keypairs.
* :mod:`.keys` -- :class:`EphemeralKey` (server keys for the ``ek`` endpoint and
  responses), :class:`ServerPublicKey` (what a client learns of one).
* :mod:`.cache` -- :class:`KeyCache` / :class:`SaltCache` protocols, in memory
  and in Redis; :func:`make_caches`.

Errors are the ncryptf section of :mod:`doublecrypt.errors`: :class:`PayloadError`
and its subclasses mean "answer 400", :class:`AuthorizationError` and its
subclasses "answer 401", :class:`CacheUnavailableError` "answer 503".

HTTP conventions: bodies are standard base64 of the payload; encrypted requests
and responses use :data:`CONTENT_TYPE` (v1: :data:`LEGACY_CONTENT_TYPE`); the
server key is named by ``X-HashId``; responses carry ``x-hashid`` and
``x-public-key-expiration``.
"""

from __future__ import annotations

from ..errors import (
    AuthorizationError,
    CacheUnavailableError,
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
    UnknownKeyError,
    UnknownTokenError,
)
from .authorization import (
    DEFAULT_DRIFT,
    ParsedAuthorization,
    authorization_header,
    body_hash,
    format_date,
    parse_authorization,
    parse_date,
    signature_string,
    verify_authorization,
)
from .cache import (
    KeyCache,
    MemoryKeyCache,
    MemorySaltCache,
    RedisKeyCache,
    RedisSaltCache,
    SaltCache,
    make_caches,
)
from .keys import EPHEMERAL_KEY_LIFETIME, EphemeralKey, ServerPublicKey, hash_id_of
from .payload import (
    V2_MAGIC,
    V2_MIN_LENGTH,
    BoxKeyPair,
    Decrypted,
    SigningKeyPair,
    V1Ciphertext,
    box_keypair,
    decode_body,
    decrypt_v1,
    decrypt_v2,
    encode_body,
    encrypt_v1,
    encrypt_v2,
    frame_public_key,
    frame_signing_public_key,
    payload_version,
    sign_v1,
    signing_keypair,
    verify_v1_signature,
)
from .token import DEFAULT_TOKEN_LIFETIME, Token

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_DRIFT",
    "DEFAULT_TOKEN_LIFETIME",
    "EPHEMERAL_KEY_LIFETIME",
    "LEGACY_CONTENT_TYPE",
    "V2_MAGIC",
    "V2_MIN_LENGTH",
    "AuthorizationError",
    "BoxKeyPair",
    "CacheUnavailableError",
    "ChecksumError",
    "ClockDriftError",
    "Decrypted",
    "DecryptionError",
    "EphemeralKey",
    "HmacMismatchError",
    "KeyCache",
    "MalformedAuthorizationError",
    "MalformedFrameError",
    "MalformedTokenError",
    "MemoryKeyCache",
    "MemorySaltCache",
    "NcryptfError",
    "ParsedAuthorization",
    "PayloadError",
    "RedisKeyCache",
    "RedisSaltCache",
    "ReplayError",
    "SaltCache",
    "ServerPublicKey",
    "SignatureError",
    "SigningKeyPair",
    "Token",
    "TokenExpiredError",
    "UnknownKeyError",
    "UnknownTokenError",
    "V1Ciphertext",
    "authorization_header",
    "body_hash",
    "box_keypair",
    "decode_body",
    "decrypt_v1",
    "decrypt_v2",
    "encode_body",
    "encrypt_v1",
    "encrypt_v2",
    "format_date",
    "frame_public_key",
    "frame_signing_public_key",
    "hash_id_of",
    "make_caches",
    "parse_authorization",
    "parse_date",
    "payload_version",
    "sign_v1",
    "signature_string",
    "signing_keypair",
    "verify_authorization",
    "verify_v1_signature",
]

CONTENT_TYPE = "application/vnd.ncryptf+json"
LEGACY_CONTENT_TYPE = "application/vnd.25519+json"  # v1 bodies
