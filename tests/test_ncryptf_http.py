"""ncryptf over real HTTP: the ASGI middleware served by uvicorn on loopback,
driven by httpx with :class:`NcryptfAuth` (sync and async), and by hand
where a test needs to tamper with or replay exact bytes. In-memory caches,
and Redis caches on a real redis-server (tests/redisserver.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from doublecrypt import ncryptf
from doublecrypt.errors import SignatureError
from doublecrypt.ncryptf.asgi import (
    NcryptfMiddleware,
    allow_plain,
    ncryptf_request,
    policy_for_routes,
    public,
)
from doublecrypt.ncryptf.client import NcryptfAuth
from doublecrypt.ncryptf.endpoints import ek_route
from doublecrypt.net.admin_api import listening_socket
from redisserver import RedisServer

TIMEOUT = 10.0
PAYLOAD = {"volume": "alpha", "size": 1 << 20, "note": "a/b \u00e9"}


async def _echo(request: Request) -> Response:
    context = ncryptf_request(request)
    body = await request.body()
    return JSONResponse(
        {
            "body": json.loads(body) if body else None,
            "content_type": request.headers.get("content-type"),
            "token": context.token.access_token if context.token else None,
            "encrypted": context.encrypted,
            "query": request.url.query,
        }
    )


async def echo(request: Request) -> Response:
    return await _echo(request)


@allow_plain
async def plain_echo(request: Request) -> Response:
    return await _echo(request)


@public
@allow_plain
async def public_echo(request: Request) -> Response:
    return await _echo(request)


@public
async def public_encrypted(request: Request) -> Response:
    return await _echo(request)


@dataclass
class Served:
    url: str
    tokens: dict[str, ncryptf.Token]
    key_cache: ncryptf.KeyCache
    salt_cache: ncryptf.SaltCache

    def add(self, token: ncryptf.Token) -> ncryptf.Token:
        self.tokens[token.access_token] = token
        return token


@dataclass
class _Running:
    server: uvicorn.Server
    thread: threading.Thread


def _serve(key_cache: ncryptf.KeyCache, salt_cache: ncryptf.SaltCache) -> tuple[Served, _Running]:
    tokens: dict[str, ncryptf.Token] = {}
    routes = [
        ek_route(key_cache),
        Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/plain-echo", plain_echo, methods=["GET", "POST"]),
        Route("/public-echo", public_echo, methods=["GET", "POST"]),
        Route("/public-encrypted", public_encrypted, methods=["POST"]),
    ]
    app = NcryptfMiddleware(
        Starlette(routes=routes),
        lookup=tokens.get,
        key_cache=key_cache,
        salt_cache=salt_cache,
        policy=policy_for_routes(routes),
        max_body=64 * 1024,
    )
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve([sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return Served(f"http://127.0.0.1:{port}", tokens, key_cache, salt_cache), _Running(
        server, thread
    )


def _stop(running: _Running) -> None:
    running.server.should_exit = True
    running.thread.join(TIMEOUT)
    assert not running.thread.is_alive()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    key_cache, salt_cache = ncryptf.make_caches(None)
    result, running = _serve(key_cache, salt_cache)
    yield result
    _stop(running)


@pytest.fixture
def token(served: Served) -> ncryptf.Token:
    return served.add(ncryptf.Token.generate())


def client(served: Served, auth: httpx.Auth | None = None, **kw: Any) -> httpx.Client:
    return httpx.Client(base_url=served.url, auth=auth, timeout=TIMEOUT, **kw)


class Recorder:
    """Keeps what actually went over the wire (httpx request hooks run after auth)."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        request.read()
        self.sent.append(request)


def _resend(served: Served, request: httpx.Request, content: bytes | None = None) -> httpx.Response:
    """Send a recorded request again, byte for byte (optionally another body)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    with client(served) as plain:
        return plain.request(
            request.method,
            request.url,
            headers=headers,
            content=request.content if content is None else content,
        )


# ---- good requests ------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 1])
def test_signed_encrypted_round_trip(served: Served, token: ncryptf.Token, version: int) -> None:
    recorder = Recorder()
    auth = NcryptfAuth(token, version=version)
    with client(served, auth, event_hooks={"request": [recorder]}) as http:
        response = http.post("/echo?x=1&a[b]=2", json=PAYLOAD)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["body"] == PAYLOAD
        assert data["token"] == token.access_token
        assert data["encrypted"] is True
        assert data["content_type"] == "application/json"
        assert data["query"] == "x=1&a[b]=2"
        # on the wire: the ek bootstrap, then base64 of a payload, never the plaintext
        assert [r.url.path for r in recorder.sent] == ["/ncryptf/ek", "/echo"]
        wire = recorder.sent[1]
        expected_type = ncryptf.CONTENT_TYPE if version == 2 else ncryptf.LEGACY_CONTENT_TYPE
        assert wire.headers["content-type"] == expected_type
        assert b"alpha" not in wire.content
        payload = base64.b64decode(wire.content)
        assert ncryptf.payload_version(payload) == version
        # the client moved to the fresh key the response announced
        assert response.headers["x-hashid"] == auth.server_key.hash_id  # type: ignore[union-attr]
        assert int(response.headers["x-public-key-expiration"]) > time.time() + 600
        assert served.key_cache.get(response.headers["x-hashid"]) is not None
        # a second request goes to that key without another bootstrap
        assert http.put("/echo", json=[1, 2]).json()["body"] == [1, 2]
        assert recorder.sent[2].headers["x-hashid"] == response.headers["x-hashid"]
        assert len(recorder.sent) == 3


def test_get_without_body_gets_an_encrypted_answer(served: Served, token: ncryptf.Token) -> None:
    recorder = Recorder()
    with client(served, NcryptfAuth(token), event_hooks={"request": [recorder]}) as http:
        response = http.get("/echo")
    assert response.status_code == 200
    assert response.json()["token"] == token.access_token
    # no body to encrypt, so no server key is needed: the answer goes to X-PubKey
    assert [r.url.path for r in recorder.sent] == ["/echo"]
    assert "x-pubkey" in recorder.sent[0].headers


def test_async_client(served: Served, token: ncryptf.Token) -> None:
    async def run() -> list[Any]:
        auth = NcryptfAuth(token)
        async with httpx.AsyncClient(base_url=served.url, auth=auth, timeout=TIMEOUT) as http:
            first = await http.post("/echo", json={"n": 0})  # bootstrap once
            assert first.status_code == 200
            answers = await asyncio.gather(*(http.post("/echo", json={"n": n}) for n in range(8)))
        return [a.json()["body"]["n"] for a in answers]

    assert asyncio.run(run()) == list(range(8))


def test_encrypted_response_is_signed_with_the_token(served: Served, token: ncryptf.Token) -> None:
    box = ncryptf.box_keypair()
    headers = ncryptf.authorization_header(token, "GET", "/echo")
    headers |= {"Accept": ncryptf.CONTENT_TYPE, "X-PubKey": base64.b64encode(box.public).decode()}
    with client(served) as http:
        response = http.get("/echo", headers=headers)
    assert response.headers["content-type"] == ncryptf.CONTENT_TYPE
    frame = ncryptf.decode_body(response.content)
    opened = ncryptf.decrypt_v2(
        frame, recipient_secret=box.secret, expected_signing_public=token.signing_public_key
    )
    assert json.loads(opened.plaintext)["token"] == token.access_token


# ---- the ek endpoint -----------------------------------------------------------------


def test_ek_endpoint_plain(served: Served) -> None:
    with client(served) as http:
        response = http.get("/ncryptf/ek")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    info = response.json()
    assert info["hash-id"] == info["hash_id"]
    key = served.key_cache.get(info["hash_id"])
    assert key is not None
    assert base64.b64decode(info["public"]) == key.box_public
    assert base64.b64decode(info["signature"]) == key.signing_public
    assert 890 <= info["expires_at"] - time.time() <= 900


def test_ek_endpoint_encrypted(served: Served) -> None:
    box = ncryptf.box_keypair()
    headers = {"Accept": ncryptf.CONTENT_TYPE, "X-PubKey": base64.b64encode(box.public).decode()}
    with client(served) as http:
        response = http.get("/ncryptf/ek", headers=headers)
    assert response.headers["content-type"] == ncryptf.CONTENT_TYPE
    frame = ncryptf.decode_body(response.content)
    info = json.loads(ncryptf.decrypt_v2(frame, recipient_secret=box.secret).plaintext)
    assert served.key_cache.get(info["hash_id"]) is not None
    # the key the answer was made with is cached too and named in x-hashid
    response_key = served.key_cache.get(response.headers["x-hashid"])
    assert response_key is not None
    assert response_key.box_public == ncryptf.frame_public_key(frame)


def test_unauthenticated_encrypted_request_on_public_route(served: Served) -> None:
    with client(served, NcryptfAuth(None)) as http:
        response = http.post("/public-encrypted", json=PAYLOAD)
    assert response.status_code == 200
    assert response.json()["body"] == PAYLOAD
    assert response.json()["token"] is None


# ---- refused requests --------------------------------------------------------------------


def _error(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    return str(response.json()["error"])


def test_expired_token(served: Served) -> None:
    expired = served.add(ncryptf.Token.generate(60, now=time.time() - 120))
    with client(served, NcryptfAuth(expired)) as http:
        response = http.post("/echo", json=PAYLOAD)
    assert response.status_code == 401
    assert _error(response) == "expired"
    assert response.headers["www-authenticate"] == "HMAC"


def test_unknown_and_missing_token(served: Served) -> None:
    stranger = ncryptf.Token.generate()  # never registered
    with client(served, NcryptfAuth(stranger)) as http:
        assert http.post("/echo", json=PAYLOAD).status_code == 401
    with client(served, NcryptfAuth(None)) as http:
        response = http.post("/echo", json=PAYLOAD)
    assert response.status_code == 401
    assert _error(response) == "unauthorized"


def test_replayed_request_is_refused(served: Served, token: ncryptf.Token) -> None:
    recorder = Recorder()
    with client(served, NcryptfAuth(token), event_hooks={"request": [recorder]}) as http:
        assert http.post("/echo", json=PAYLOAD).status_code == 200
    original = recorder.sent[-1]
    again = _resend(served, original)
    assert again.status_code == 401
    assert _error(again) == "replayed"


def test_replayed_plain_request_is_refused(served: Served, token: ncryptf.Token) -> None:
    recorder = Recorder()
    auth = NcryptfAuth(token, encrypt=False)
    with client(served, auth, event_hooks={"request": [recorder]}) as http:
        assert http.post("/plain-echo", json=PAYLOAD).status_code == 200
    assert _error(_resend(served, recorder.sent[-1])) == "replayed"


def test_clock_drift(served: Served, token: ncryptf.Token) -> None:
    body = json.dumps(PAYLOAD).encode()
    for skew, status in ((-100, 401), (100, 401), (-30, 200)):
        headers = ncryptf.authorization_header(
            token, "POST", "/plain-echo", body, date=time.time() + skew
        )
        headers["content-type"] = "application/json"
        with client(served) as http:
            response = http.post("/plain-echo", content=body, headers=headers)
        assert response.status_code == status, (skew, response.text)
        if status == 401:
            assert _error(response) == "clock_drift"


def test_tampered_encrypted_body(served: Served, token: ncryptf.Token) -> None:
    recorder = Recorder()
    with client(served, NcryptfAuth(token), event_hooks={"request": [recorder]}) as http:
        assert http.post("/echo", json=PAYLOAD).status_code == 200
        for _ in range(3):  # fresh signed requests to tamper with (salts are single-use)
            http.post("/echo", json=PAYLOAD)
    frames = [bytearray(ncryptf.decode_body(r.content)) for r in recorder.sent[-3:]]
    frames[0][70] ^= 1  # a ciphertext byte: the checksum no longer matches
    frames[1][60:92] = bytes(32)  # what the reference integration test does
    del frames[2][-100:]  # truncated below the minimum / checksum gone
    for original, frame in zip(recorder.sent[-3:], frames, strict=True):
        response = _resend(served, original, base64.b64encode(bytes(frame)))
        assert response.status_code == 400, response.text
        assert _error(response) == "bad_payload"
    garbage = _resend(served, recorder.sent[-1], b"not base64 at all!")
    assert garbage.status_code == 400


def test_tampered_plain_body_fails_the_hmac(served: Served, token: ncryptf.Token) -> None:
    body = json.dumps(PAYLOAD).encode()
    headers = ncryptf.authorization_header(token, "POST", "/plain-echo", body)
    headers["content-type"] = "application/json"
    with client(served) as http:
        response = http.post(
            "/plain-echo", content=body.replace(b"alpha", b"omega"), headers=headers
        )
    assert response.status_code == 401
    assert _error(response) == "unauthorized"


def test_payload_signed_with_another_key(served: Served, token: ncryptf.Token) -> None:
    """A valid HMAC, but a frame signed with a key other than the token's."""
    with client(served) as http:
        info = http.get("/ncryptf/ek").json()
        body = json.dumps(PAYLOAD).encode()
        box = ncryptf.box_keypair()
        frame = ncryptf.encrypt_v2(
            body,
            recipient_public=base64.b64decode(info["public"]),
            sender_secret=box.secret,
            signing_secret=ncryptf.signing_keypair().secret,
        )
        headers = ncryptf.authorization_header(token, "POST", "/echo", body)
        headers |= {"Content-Type": ncryptf.CONTENT_TYPE, "X-HashId": info["hash_id"]}
        response = http.post("/echo", content=ncryptf.encode_body(frame), headers=headers)
    assert response.status_code == 401
    assert "signing key" in response.json()["message"]


def test_wrong_content_type(served: Served, token: ncryptf.Token) -> None:
    with client(served, NcryptfAuth(token, encrypt=False)) as http:
        # plain JSON to a route that takes only ncryptf
        response = http.post("/echo", json=PAYLOAD)
        assert response.status_code == 415
        assert _error(response) == "unsupported_media_type"
        # text to a route that takes plain JSON
        response = http.post("/plain-echo", content=b"x=1", headers={"content-type": "text/plain"})
        assert response.status_code == 415
        # no Accept for ncryptf on an ncryptf-only route
        response = http.get("/echo")
        assert response.status_code == 406
        assert _error(response) == "not_acceptable"


def test_plain_json_where_allowed(served: Served, token: ncryptf.Token) -> None:
    with client(served, NcryptfAuth(token, encrypt=False)) as http:
        response = http.post("/plain-echo", json=PAYLOAD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["token"] == token.access_token
    assert response.json()["encrypted"] is False
    with client(served) as http:  # public and plain: no ncryptf at all
        assert http.post("/public-echo", json=PAYLOAD).json()["body"] == PAYLOAD
        # plain but not public: still needs the Authorization header
        assert http.post("/plain-echo", json=PAYLOAD).status_code == 401


def test_unknown_server_key_is_refetched(served: Served, token: ncryptf.Token) -> None:
    recorder = Recorder()
    auth = NcryptfAuth(token)
    with client(served, auth, event_hooks={"request": [recorder]}) as http:
        assert http.post("/echo", json=1).status_code == 200
        current = auth.server_key
        assert current is not None
        served.key_cache.delete(current.hash_id)  # as if the server had restarted
        response = http.post("/echo", json=2)
    assert response.status_code == 200
    assert response.json()["body"] == 2
    paths = [r.url.path for r in recorder.sent]
    assert paths == ["/ncryptf/ek", "/echo", "/echo", "/ncryptf/ek", "/echo"]


def test_response_signed_with_an_unexpected_key_is_refused(served: Served) -> None:
    """The client refuses an authenticated answer not signed with its token:
    here the server knows the token under another signing key."""
    mine = served.add(ncryptf.Token.generate())
    other = ncryptf.Token.from_dict({**mine.to_dict(), "signing": _other_signing()})
    with client(served, NcryptfAuth(other)) as http, pytest.raises(SignatureError):
        http.get("/echo")


def _other_signing() -> str:
    return base64.b64encode(ncryptf.signing_keypair().secret).decode()


def test_body_too_large(served: Served, token: ncryptf.Token) -> None:
    with client(served, NcryptfAuth(token)) as http:
        response = http.post("/echo", json={"blob": "x" * 70_000})
    assert response.status_code == 413


# ---- Redis-backed caches -------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("redis")
    with RedisServer.start(directory) as server:
        yield server.url


def test_redis_caches_shared_by_two_servers(redis_url: str) -> None:
    """Two server processes' worth of middleware sharing one Redis: a key from
    one works on the other, and a request replayed to the other is refused."""
    first, run_first = _serve(*ncryptf.make_caches(redis_url))
    second, run_second = _serve(*ncryptf.make_caches(redis_url))
    try:
        token = first.add(ncryptf.Token.generate())
        second.add(token)
        recorder = Recorder()
        auth = NcryptfAuth(token)
        with client(first, auth, event_hooks={"request": [recorder]}) as http:
            assert http.post("/echo", json=PAYLOAD).json()["body"] == PAYLOAD
        sent = recorder.sent[-1]
        # the same bytes to the second server: its Redis knows the salt
        replay = _resend(second, sent)
        assert replay.status_code == 401
        assert _error(replay) == "replayed"
        # the client's current key (made by the first server) works on the second
        with client(second, auth) as http:
            response = http.post("/echo", json={"n": 1})
        assert response.status_code == 200
        assert response.json()["body"] == {"n": 1}
    finally:
        _stop(run_first)
        _stop(run_second)
