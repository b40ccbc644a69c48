"""ncryptf for ASGI servers (Starlette and anything else that speaks ASGI).

:class:`NcryptfMiddleware` wraps an app and, for every HTTP request:

1. reads the body (at most ``max_body`` bytes; 413 beyond);
2. decrypts an ``application/vnd.ncryptf+json`` body (base64 of a v2 frame,
   or a v1 box with ``X-PubKey``/``X-Nonce``; legacy type
   ``application/vnd.25519+json`` too) with the server key ``X-HashId`` names;
3. verifies the ``Authorization`` header (v1 or v2) over the plaintext, with
   the clock-drift window and replay refusal of
   :func:`~.authorization.verify_authorization`; an encrypted authenticated
   request must be signed with its token's signing key;
4. hands the handler the plaintext as ``application/json`` and, in
   ``request.state.ncryptf`` (``scope["state"]["ncryptf"]``), an
   :class:`NcryptfRequest` with the authenticated token;
5. encrypts the handler's response to the client's box key (the request
   frame's, else ``X-PubKey``) when the request was encrypted or its
   ``Accept`` names an ncryptf type: made with a fresh server key that goes
   into the key cache and whose id and expiry come back in ``x-hashid`` and
   ``x-public-key-expiration``, signed with the token's key when
   authenticated (as the PHP reference does), else with the fresh key's.

Routes are strict by default: authentication required, plain
``application/json`` refused (415 for a plain body, 406 for a plain
response). Mark endpoints with :func:`public` (no ``Authorization`` needed;
one that is sent is still verified) and :func:`allow_plain` (plain JSON
accepted), and give the middleware :func:`policy_for_routes` of the app's
routes. Refusals are plain JSON ``{"error": CODE, "message": TEXT}``: 400
(malformed or undecryptable body; ``unknown_key`` when ``X-HashId`` is not
known: fetch a new key from the ``ek`` endpoint), 401 (authorization; code
``expired``, ``replayed``, ``clock_drift`` or ``unauthorized``), 406, 413,
415, 503 (the Redis cache is unreachable: no request is accepted unchecked).

Cache calls are synchronous; with Redis caches they run in a worker thread
so a slow Redis never stalls the event loop (the block server shares it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    AuthorizationError,
    CacheUnavailableError,
    ClockDriftError,
    NcryptfError,
    PayloadError,
    ReplayError,
    TokenExpiredError,
    UnknownKeyError,
)
from . import CONTENT_TYPE, LEGACY_CONTENT_TYPE
from .authorization import DEFAULT_DRIFT, verify_authorization
from .cache import KeyCache, MemoryKeyCache, MemorySaltCache, SaltCache
from .keys import EPHEMERAL_KEY_LIFETIME, EphemeralKey
from .payload import (
    BOX_KEY_BYTES,
    NONCE_BYTES,
    decode_body,
    decrypt_v1,
    decrypt_v2,
    encode_body,
    encrypt_v1,
    encrypt_v2,
    payload_version,
    sign_v1,
)
from .token import Token

__all__ = [
    "JSON_TYPE",
    "NcryptfMiddleware",
    "NcryptfRequest",
    "RoutePolicy",
    "allow_plain",
    "media_type",
    "ncryptf_request",
    "policy_for_routes",
    "public",
]

log = logging.getLogger("doublecrypt.ncryptf")

JSON_TYPE = "application/json"
NCRYPTF_TYPES = (CONTENT_TYPE, LEGACY_CONTENT_TYPE)
DEFAULT_MAX_BODY = 1 << 20
STATE_KEY = "ncryptf"

E = TypeVar("E")


@dataclass(frozen=True)
class RoutePolicy:
    """What a route accepts: ``public`` needs no token, ``plain`` takes plain JSON."""

    public: bool = False
    plain: bool = False


# Weak: marking an endpoint must not keep it (or an app built around it) alive.
_PUBLIC: weakref.WeakSet[Any] = weakref.WeakSet()
_PLAIN: weakref.WeakSet[Any] = weakref.WeakSet()


def public(endpoint: E) -> E:
    """Mark an endpoint (a function) as callable without an ``Authorization`` header."""
    _PUBLIC.add(endpoint)
    return endpoint


def allow_plain(endpoint: E) -> E:
    """Mark an endpoint (a function) as accepting plain ``application/json``."""
    _PLAIN.add(endpoint)
    return endpoint


def _marked(endpoint: object, marks: weakref.WeakSet[Any]) -> bool:
    try:
        return endpoint in marks
    except TypeError:  # not weak-referenceable, so never marked
        return False


def policy_for_routes(routes: Sequence[BaseRoute]) -> Callable[[Scope], RoutePolicy]:
    """The policy of the endpoint a request will reach (strict when none matches,
    so an unknown path answers 401 before it can answer 404)."""

    def policy(scope: Scope) -> RoutePolicy:
        partial: Scope | None = None
        for route in routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                partial = child
                break
            if match == Match.PARTIAL and partial is None:
                partial = child
        if partial is None:
            return RoutePolicy()
        endpoint = partial.get("endpoint")
        return RoutePolicy(public=_marked(endpoint, _PUBLIC), plain=_marked(endpoint, _PLAIN))

    return policy


@dataclass(frozen=True)
class NcryptfRequest:
    """What the middleware established about a request (``request.state.ncryptf``)."""

    token: Token | None  # the authenticated token, None on a public route without one
    encrypted: bool  # the request body was an ncryptf payload
    version: int  # payload version of the exchange (2, or 1 for legacy clients)
    client_public: bytes | None  # the client's box key the response is encrypted to
    respond_encrypted: bool


def ncryptf_request(connection: HTTPConnection) -> NcryptfRequest:
    """The :class:`NcryptfRequest` of a request that went through the middleware."""
    context = connection.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(context, NcryptfRequest):
        raise RuntimeError("the request did not pass through NcryptfMiddleware")
    return context


def media_type(value: str | None) -> str:
    """``Application/JSON; charset=utf-8`` -> ``application/json``."""
    return (value or "").split(";", 1)[0].strip().lower()


def _accepted_types(value: str | None) -> list[str]:
    return [media_type(part) for part in (value or "").split(",") if part.strip()]


class _Refusal(Exception):
    """An answer the middleware gives instead of calling the app."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _refusal_for(exc: NcryptfError) -> _Refusal:
    if isinstance(exc, CacheUnavailableError):
        return _Refusal(503, "cache_unavailable", "the server cannot check requests right now")
    if isinstance(exc, UnknownKeyError):
        return _Refusal(400, "unknown_key", str(exc))
    if isinstance(exc, PayloadError):
        return _Refusal(400, "bad_payload", str(exc))
    if isinstance(exc, AuthorizationError):
        if isinstance(exc, TokenExpiredError):
            return _Refusal(401, "expired", "the token has expired")
        if isinstance(exc, ReplayError):
            return _Refusal(401, "replayed", "this request was already received")
        if isinstance(exc, ClockDriftError):
            return _Refusal(401, "clock_drift", "the request's date is too far from the server's")
        return _Refusal(401, "unauthorized", str(exc))
    return _Refusal(400, "bad_request", str(exc))


def _b64_header(headers: Headers, name: str, length: int) -> bytes | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _Refusal(400, "bad_request", f"{name} is not base64") from None
    if len(raw) != length:
        raise _Refusal(400, "bad_request", f"{name} must be {length} bytes")
    return raw


@dataclass
class _Opened:
    plaintext: bytes
    version: int
    client_public: bytes | None
    signing_public: bytes | None


class NcryptfMiddleware:
    """See the module docstring. ``lookup`` maps an access token to its
    :class:`Token` (None when unknown or revoked)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        lookup: Callable[[str], Token | None],
        key_cache: KeyCache,
        salt_cache: SaltCache,
        policy: Callable[[Scope], RoutePolicy] | None = None,
        drift: float = DEFAULT_DRIFT,
        max_body: int = DEFAULT_MAX_BODY,
        response_key_lifetime: float = EPHEMERAL_KEY_LIFETIME,
    ) -> None:
        self.app = app
        self.lookup = lookup
        self.key_cache = key_cache
        self.salt_cache = salt_cache
        self.policy = policy or (lambda scope: RoutePolicy())
        self.drift = drift
        self.max_body = max_body
        self.response_key_lifetime = response_key_lifetime
        # In-memory caches answer at once; Redis goes through a thread.
        self._inline = isinstance(key_cache, MemoryKeyCache) and isinstance(
            salt_cache, MemorySaltCache
        )

    async def _blocking(self, func: Callable[..., E], *args: Any, **kwargs: Any) -> E:
        if self._inline:
            return func(*args, **kwargs)
        return await asyncio.to_thread(func, *args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send)
        except _Refusal as refusal:
            await _send_refusal(send, refusal)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        policy = self.policy(scope)
        if not policy.public and "authorization" not in headers:
            raise _Refusal(401, "unauthorized", "this route needs an ncryptf Authorization header")
        body = await self._read_body(headers, receive)
        content_type = media_type(headers.get("content-type"))
        encrypted = bool(body) and content_type in NCRYPTF_TYPES
        accepted = _accepted_types(headers.get("accept"))
        wants_encrypted = encrypted or any(t in NCRYPTF_TYPES for t in accepted)
        if body and not encrypted and (content_type != JSON_TYPE or not policy.plain):
            raise _Refusal(
                415,
                "unsupported_media_type",
                f"send the body as {CONTENT_TYPE}"
                + (f" or {JSON_TYPE}" if policy.plain else "")
                + f", not {content_type or 'no content type'}",
            )
        if not wants_encrypted and not policy.plain:
            raise _Refusal(
                406, "not_acceptable", f"this route answers only {CONTENT_TYPE}: send Accept"
            )
        opened = await self._open(headers, body) if encrypted else None
        plaintext = opened.plaintext if opened is not None else body
        token = await self._authorize(scope, headers, plaintext, policy)
        # Upstream dropped this binding in 2022; we keep it: a request that
        # carries a token's HMAC must also carry its signature.
        signer = opened.signing_public if opened is not None else None
        if (
            token is not None
            and signer is not None
            and not hmac.compare_digest(signer, token.signing_public_key)
        ):
            raise _Refusal(
                401, "unauthorized", "the payload is not signed with the token's signing key"
            )
        client_public = opened.client_public if opened is not None else None
        if client_public is None and wants_encrypted:
            client_public = _b64_header(headers, "x-pubkey", BOX_KEY_BYTES)
            if client_public is None:
                raise _Refusal(
                    400, "bad_request", "an encrypted response needs the client's key: X-PubKey"
                )
        if opened is not None:
            version = opened.version
        else:
            version = 1 if LEGACY_CONTENT_TYPE in accepted and CONTENT_TYPE not in accepted else 2
        context = NcryptfRequest(token, encrypted, version, client_public, wants_encrypted)
        inner_scope = self._inner_scope(scope, context, plaintext, encrypted)
        if wants_encrypted:
            assert client_public is not None
            await self._call_encrypted(
                inner_scope, plaintext, receive, send, context, client_public
            )
        else:
            await self.app(inner_scope, _replay(plaintext, receive), send)

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _Refusal(413, "too_large", f"bodies are limited to {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _Refusal(413, "too_large", f"bodies are limited to {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _open(self, headers: Headers, body: bytes) -> _Opened:
        try:
            payload = decode_body(body)
            version = payload_version(payload)
            hash_id = headers.get("x-hashid")
            if not hash_id:
                raise _Refusal(400, "bad_request", "an encrypted body needs X-HashId")
            key = await self._blocking(self.key_cache.get, hash_id)
            if key is None:
                raise UnknownKeyError("unknown or expired server key: fetch a new one (ek)")
            if version == 2:
                opened = decrypt_v2(payload, recipient_secret=key.box_secret)
                return _Opened(opened.plaintext, 2, opened.sender_public, opened.signing_public)
            client_public = _b64_header(headers, "x-pubkey", BOX_KEY_BYTES)
            nonce = _b64_header(headers, "x-nonce", NONCE_BYTES)
            if client_public is None or nonce is None:
                raise _Refusal(400, "bad_request", "a v1 body needs X-PubKey and X-Nonce")
            plaintext = decrypt_v1(
                payload, recipient_secret=key.box_secret, sender_public=client_public, nonce=nonce
            )
            # v1 requests carry no signature the reference servers check.
            return _Opened(plaintext, 1, client_public, None)
        except NcryptfError as exc:
            raise _refusal_for(exc) from None

    async def _authorize(
        self, scope: Scope, headers: Headers, plaintext: bytes, policy: RoutePolicy
    ) -> Token | None:
        if "authorization" not in headers:
            if policy.public:
                return None
            raise _Refusal(401, "unauthorized", "this route needs an ncryptf Authorization header")
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        uri = raw_path.decode("latin-1")
        if scope.get("query_string"):
            uri += "?" + scope["query_string"].decode("latin-1")
        try:
            return await self._blocking(
                verify_authorization,
                headers,
                scope["method"],
                uri,
                plaintext,
                lookup=self.lookup,
                drift=self.drift,
                replay=self.salt_cache,
            )
        except NcryptfError as exc:
            refusal = _refusal_for(exc)
            log.info("refused %s %s: %s", scope["method"], scope["path"], refusal.message)
            raise refusal from None

    def _inner_scope(
        self, scope: Scope, context: NcryptfRequest, plaintext: bytes, encrypted: bool
    ) -> Scope:
        inner = dict(scope)
        inner["state"] = {**scope.get("state", {}), STATE_KEY: context}
        if encrypted:
            mutable = MutableHeaders(scope={"type": "http", "headers": list(scope["headers"])})
            mutable["content-type"] = JSON_TYPE
            mutable["content-length"] = str(len(plaintext))
            inner["headers"] = mutable.raw
        return inner

    async def _call_encrypted(
        self,
        scope: Scope,
        plaintext: bytes,
        receive: Receive,
        send: Send,
        context: NcryptfRequest,
        client_public: bytes,
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:
                await send(message)

        await self.app(scope, _replay(plaintext, receive), capture)
        if start is None:
            return
        status = int(start["status"])
        body = b"".join(chunks)
        response_headers = MutableHeaders(raw=list(start.get("headers", [])))
        if status in (204, 304) or scope["method"] == "HEAD":
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        encrypted_body = await self._encrypt(body, context, client_public, response_headers)
        del response_headers["content-length"]
        response_headers["content-length"] = str(len(encrypted_body))
        await send({**start, "headers": response_headers.raw})
        await send({"type": "http.response.body", "body": encrypted_body})

    async def _encrypt(
        self, body: bytes, context: NcryptfRequest, client_public: bytes, headers: MutableHeaders
    ) -> bytes:
        key = EphemeralKey.generate(self.response_key_lifetime)
        try:
            await self._blocking(self.key_cache.put, key)
        except CacheUnavailableError as exc:
            # The response itself is still fine; the client just cannot reuse its key.
            log.warning("cannot cache a response key: %s", exc)
        token = context.token
        signing_secret = token.signature if token is not None else key.signing_secret
        headers["x-hashid"] = key.hash_id
        headers["x-public-key-expiration"] = str(int(key.expires_at))
        if context.version == 1:
            boxed = encrypt_v1(body, recipient_public=client_public, sender_secret=key.box_secret)
            headers["content-type"] = LEGACY_CONTENT_TYPE
            headers["x-pubkey"] = base64.b64encode(key.box_public).decode("ascii")
            headers["x-nonce"] = base64.b64encode(boxed.nonce).decode("ascii")
            headers["x-signature"] = base64.b64encode(sign_v1(body, signing_secret)).decode()
            headers["x-sigpubkey"] = base64.b64encode(signing_secret[32:]).decode("ascii")
            return encode_body(boxed.ciphertext)
        frame = encrypt_v2(
            body,
            recipient_public=client_public,
            sender_secret=key.box_secret,
            signing_secret=signing_secret,
        )
        headers["content-type"] = CONTENT_TYPE
        return encode_body(frame)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read from ``receive``)
    in one message, then passes on what ``receive`` says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_refusal(send: Send, refusal: _Refusal) -> None:
    body = json.dumps({"error": refusal.code, "message": refusal.message}).encode()
    headers = [
        (b"content-type", JSON_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b"HMAC"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
