"""ncryptf for HTTP clients: :class:`NcryptfAuth`, an ``httpx.Auth``.

``httpx.Client(auth=NcryptfAuth(token))`` (or ``AsyncClient``; the flow does
no I/O of its own, so one class serves both) makes every request:

* signed: an ``Authorization: HMAC ...`` header (v2 by default) over the
  plaintext body, when a token is given;
* encrypted: a body is sent as base64 of a v2 frame (``application/vnd.
  ncryptf+json``) to the server key named in ``X-HashId``, from a fresh box
  keypair per request and signed with the token's signing key (a fresh one
  without a token); ``Accept`` and ``X-PubKey`` ask for an encrypted answer.

The first request with a body fetches a server key from the bootstrap
endpoint (``GET /ncryptf/ek``); afterwards the client moves to the fresh
key each encrypted response announces (``x-hashid``). A server that no longer
knows the key (``400 unknown_key``, e.g. after a restart) makes the client
fetch a new one and send the request again, once.

Encrypted responses are opened and checked (checksum, box, signature, and,
when authenticated, that they are signed with the token's key), then the
response's ``content`` is replaced by the plaintext and its content type by
``application/json``, so ``response.json()`` just works. Refusals the server
answers in plain JSON are left as they are. A response that fails the checks
raises the specific :class:`~doublecrypt.errors.PayloadError`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Generator

import httpx

from ..errors import MalformedFrameError, NcryptfError, SignatureError
from . import CONTENT_TYPE, LEGACY_CONTENT_TYPE
from .authorization import authorization_header
from .endpoints import EK_PATH
from .keys import ServerPublicKey
from .payload import (
    BOX_KEY_BYTES,
    NONCE_BYTES,
    SIGNATURE_BYTES,
    SIGNING_PUBLIC_BYTES,
    BoxKeyPair,
    box_keypair,
    decode_body,
    decrypt_v1,
    decrypt_v2,
    encode_body,
    encrypt_v1,
    encrypt_v2,
    payload_version,
    signing_keypair,
    verify_v1_signature,
)
from .token import Token

__all__ = ["NcryptfAuth"]

_KEY_MARGIN = 30.0  # seconds: a server key this close to expiry is replaced first
_DROPPED_HEADERS = ("content-length", "transfer-encoding", "authorization", "x-date")


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _header_bytes(response: httpx.Response, name: str, length: int) -> bytes:
    value = response.headers.get(name)
    if value is None:
        raise MalformedFrameError(f"the v1 response lacks {name}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedFrameError(f"the response's {name} is not base64") from exc
    if len(raw) != length:
        raise MalformedFrameError(f"the response's {name} must be {length} bytes")
    return raw


class NcryptfAuth(httpx.Auth):
    """Sign (with ``token``) and encrypt (unless ``encrypt=False``) requests.

    ``version`` 2 (default) or 1 applies to both the Authorization header and
    the payloads. ``expect_token_signature`` (default on) requires an
    authenticated response to be signed with the token's key, as this
    package's server and the PHP reference do (Rust's signs with a fresh key).
    """

    requires_request_body = True
    requires_response_body = True

    def __init__(
        self,
        token: Token | None = None,
        *,
        encrypt: bool = True,
        version: int = 2,
        ek_path: str = EK_PATH,
        expect_token_signature: bool = True,
    ) -> None:
        if version not in (1, 2):
            raise ValueError(f"ncryptf version is 1 or 2, not {version}")
        self.token = token
        self.encrypt = encrypt
        self.version = version
        self.ek_path = ek_path
        self.expect_token_signature = expect_token_signature
        self._lock = threading.Lock()
        self._server_key: ServerPublicKey | None = None

    @property
    def server_key(self) -> ServerPublicKey | None:
        """The server key the next encrypted body goes to (None: fetch one)."""
        with self._lock:
            key = self._server_key
        if key is None or key.expired(time.time() + _KEY_MARGIN):
            return None
        return key

    def _adopt(self, key: ServerPublicKey) -> None:
        with self._lock:
            self._server_key = key

    def _forget(self, key: ServerPublicKey) -> None:
        with self._lock:
            if self._server_key == key:
                self._server_key = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body = request.content
        for attempt in (1, 2):
            server_key = None
            if self.encrypt and body:
                server_key = self.server_key
                if server_key is None:
                    server_key = self._learn_ek((yield self._ek_request(request)))
            prepared, box = self._prepare(request, body, server_key)
            response = yield prepared
            if attempt == 1 and server_key is not None and _unknown_key(response):
                self._forget(server_key)
                continue
            self._open(response, box)
            return

    def _ek_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "GET",
            request.url.join(self.ek_path),
            headers={"accept": "application/json"},
            extensions=request.extensions,
        )

    def _learn_ek(self, response: httpx.Response) -> ServerPublicKey:
        if response.status_code != 200:
            raise NcryptfError(
                f"the server's key endpoint {response.request.url} answered "
                f"{response.status_code}: {response.text[:200]}"
            )
        try:
            key = ServerPublicKey.from_info(response.json())
        except ValueError as exc:
            raise MalformedFrameError("the key endpoint did not answer JSON") from exc
        self._adopt(key)
        return key

    def _prepare(
        self, request: httpx.Request, body: bytes, server_key: ServerPublicKey | None
    ) -> tuple[httpx.Request, BoxKeyPair]:
        headers = request.headers.copy()
        for name in _DROPPED_HEADERS:
            if name in headers:
                del headers[name]
        box = box_keypair()
        content = body
        content_type = CONTENT_TYPE if self.version == 2 else LEGACY_CONTENT_TYPE
        if server_key is not None:
            headers["x-hashid"] = server_key.hash_id
            headers["content-type"] = content_type
            if self.version == 2:
                signing_secret = (
                    self.token.signature if self.token is not None else signing_keypair().secret
                )
                frame = encrypt_v2(
                    body,
                    recipient_public=server_key.box_public,
                    sender_secret=box.secret,
                    signing_secret=signing_secret,
                )
                content = encode_body(frame)
            else:
                boxed = encrypt_v1(
                    body, recipient_public=server_key.box_public, sender_secret=box.secret
                )
                content = encode_body(boxed.ciphertext)
                headers["x-nonce"] = base64.b64encode(boxed.nonce).decode("ascii")
        if self.encrypt:
            headers["accept"] = content_type
            headers["x-pubkey"] = base64.b64encode(box.public).decode("ascii")
        if self.token is not None:
            uri = request.url.raw_path.decode("ascii")
            headers.update(
                authorization_header(self.token, request.method, uri, body, version=self.version)
            )
        prepared = httpx.Request(
            request.method,
            request.url,
            headers=headers,
            content=content,
            extensions=request.extensions,
        )
        return prepared, box

    def _open(self, response: httpx.Response, box: BoxKeyPair) -> None:
        media = _media_type(response.headers.get("content-type"))
        if media not in (CONTENT_TYPE, LEGACY_CONTENT_TYPE) or not self.encrypt:
            return
        expected_signer = (
            self.token.signing_public_key
            if self.token is not None and self.expect_token_signature
            else None
        )
        payload = decode_body(response.content)
        if payload_version(payload) == 2:
            opened = decrypt_v2(
                payload, recipient_secret=box.secret, expected_signing_public=expected_signer
            )
            plaintext, server_public, signer = (
                opened.plaintext,
                opened.sender_public,
                opened.signing_public,
            )
        else:
            server_public = _header_bytes(response, "x-pubkey", BOX_KEY_BYTES)
            nonce = _header_bytes(response, "x-nonce", NONCE_BYTES)
            signature = _header_bytes(response, "x-signature", SIGNATURE_BYTES)
            signer = _header_bytes(response, "x-sigpubkey", SIGNING_PUBLIC_BYTES)
            plaintext = decrypt_v1(
                payload, recipient_secret=box.secret, sender_public=server_public, nonce=nonce
            )
            verify_v1_signature(plaintext, signature, signer)
            if expected_signer is not None and not hmac.compare_digest(signer, expected_signer):
                raise SignatureError("response was signed with an unexpected key")
        self._adopt_announced(response, server_public, signer)
        # httpx has no public way to swap a read body; _content is what .content returns.
        response._content = plaintext
        response.headers["content-type"] = "application/json"
        response.headers["content-length"] = str(len(plaintext))

    def _adopt_announced(
        self, response: httpx.Response, server_public: bytes, signer: bytes
    ) -> None:
        """Move to the fresh key the response was made with, if announced."""
        hash_id = response.headers.get("x-hashid")
        expiry = response.headers.get("x-public-key-expiration", "")
        if not hash_id or not expiry.isdigit():
            return
        self._adopt(ServerPublicKey(server_public, signer, hash_id, float(expiry)))


def _unknown_key(response: httpx.Response) -> bool:
    if response.status_code != 400:
        return False
    if _media_type(response.headers.get("content-type")) != "application/json":
        return False
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("error") == "unknown_key"
