"""ncryptf HTTP benchmark: ``python bench/ncryptf_report.py``.

One run, on loopback: a uvicorn server process (this script with ``--serve``)
runs an echo route behind :class:`NcryptfMiddleware` that accepts plain JSON
too (``@public @allow_plain``), so the same route, server and client measure:

- plain JSON: no Authorization, no encryption (HTTP + JSON + Starlette: the floor);
- signed: the ncryptf v2 Authorization header (HKDF + HMAC, replay cache), plain JSON;
- signed + encrypted: the header plus v2 frames both ways (crypto_box,
  Ed25519, BLAKE2b; a fresh server key per response), through ``NcryptfAuth``.

A keep-alive ``httpx.Client`` sends ``--requests`` POSTs of a 224-byte JSON
body (about the size of the ncryptf vectors' payload), one at a time, per mode
(after a warm-up); the table gives requests per second, the ratio to plain
JSON, and the CPU time per request on each side. Also the client-side crypto
alone (no HTTP) as the limit a signed+encrypted request cannot beat. Writes
bench/results/ncryptf.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from doublecrypt import ncryptf
from doublecrypt.ncryptf.client import NcryptfAuth

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ncryptf.md"
BODY = (
    b'{\n    "hello": "world",\n    "a": 1,\n    "b": true,\n    "c": [1, 2, 3],\n'
    b'    "nested": {\n        "x": "y",\n        "list": ["one", "two", "three"]\n'
    b'    },\n    "note": "about as long as the payload of the ncryptf test vectors"\n}'
)


def serve(port_file: Path, token_json: str) -> None:
    """The server process: an echo route behind the middleware, in-memory caches."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from doublecrypt.ncryptf.asgi import NcryptfMiddleware, allow_plain, policy_for_routes, public
    from doublecrypt.ncryptf.endpoints import ek_route
    from doublecrypt.net.admin_api import listening_socket

    token = ncryptf.Token.from_json(token_json)
    key_cache, salt_cache = ncryptf.make_caches(None)

    @public
    @allow_plain
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    routes = [ek_route(key_cache), Route("/echo", echo, methods=["POST"])]
    app = NcryptfMiddleware(
        Starlette(routes=routes),
        lookup={token.access_token: token}.get,
        key_cache=key_cache,
        salt_cache=salt_cache,
        policy=policy_for_routes(routes),
    )
    sock = listening_socket("127.0.0.1", 0)
    port_file.write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    per_second: float
    client_us: float
    server_us: float


def measure(name: str, url: str, auth: httpx.Auth | None, requests: int, server_pid: int) -> Result:
    # httpx writes headers and body separately: without TCP_NODELAY, Nagle and
    # delayed ACKs would add ~40 ms to every request and measure only that.
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(base_url=url, auth=auth, timeout=30.0, transport=transport) as http:
        for _ in range(max(20, requests // 20)):  # warm-up (and the ek bootstrap)
            http.post("/echo", content=BODY, headers={"content-type": "application/json"})
        server_before = process_cpu(server_pid)
        cpu_before = time.process_time()
        start = time.perf_counter()
        for _ in range(requests):
            response = http.post(
                "/echo", content=BODY, headers={"content-type": "application/json"}
            )
            if response.status_code != 200 or response.content != BODY:
                raise RuntimeError(f"{name}: unexpected answer {response.status_code}")
        seconds = time.perf_counter() - start
        client_cpu = time.process_time() - cpu_before
        server_cpu = process_cpu(server_pid) - server_before
    return Result(
        name, requests / seconds, client_cpu / requests * 1e6, server_cpu / requests * 1e6
    )


def crypto_only(token: ncryptf.Token, rounds: int) -> float:
    """Microseconds of client-side ncryptf work per request: header, encrypt
    the request, and decrypt a response frame (no HTTP, no server)."""
    server = ncryptf.EphemeralKey.generate()
    start = time.perf_counter()
    for _ in range(rounds):
        box = ncryptf.box_keypair()
        ncryptf.authorization_header(token, "POST", "/echo", BODY)
        ncryptf.encrypt_v2(
            BODY,
            recipient_public=server.box_public,
            sender_secret=box.secret,
            signing_secret=token.signature,
        )
        answer = ncryptf.encrypt_v2(
            BODY,
            recipient_public=box.public,
            sender_secret=server.box_secret,
            signing_secret=token.signature,
        )
        ncryptf.decrypt_v2(answer, recipient_secret=box.secret)
    return (time.perf_counter() - start) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode")
    parser.add_argument("--no-write", action="store_true", help="print only, keep results file")
    parser.add_argument(
        "--serve", nargs=2, metavar=("PORT_FILE", "TOKEN_JSON"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), args.serve[1])
        return 0

    token = ncryptf.Token.generate()
    load_before = os.getloadavg()[0]
    port_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"dc-ncryptf-bench-{os.getpid()}.port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port_file), token.to_json()],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        time.sleep(0.3)  # uvicorn binds the socket before it accepts: let it settle
        results = [
            measure("plain JSON", url, None, args.requests, server.pid),
            measure(
                "signed (v2 Authorization), plain JSON",
                url,
                NcryptfAuth(token, encrypt=False),
                args.requests,
                server.pid,
            ),
            measure(
                "signed + encrypted (v2 frames both ways)",
                url,
                NcryptfAuth(token),
                args.requests,
                server.pid,
            ),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
        port_file.unlink(missing_ok=True)
    crypto_us = crypto_only(token, max(200, args.requests // 4))

    plain = results[0].per_second
    rows = [
        "| mode (same route, same server) | requests/s | ratio to plain JSON "
        "| CPU us/request: client / server |",
        "|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.name} | {r.per_second:.0f} | {r.per_second / plain:.2f}x "
            f"| {r.client_us:.0f} / {r.server_us:.0f} |"
        )
    rows.append(
        f"| client-side ncryptf crypto alone (header, encrypt, decrypt; no HTTP) "
        f"| {1e6 / crypto_us:.0f} | limit | {crypto_us:.0f} / - |"
    )
    notes = [
        f"{args.requests} sequential POSTs per mode ({len(BODY)}-byte JSON body, echoed), "
        "one keep-alive httpx client, uvicorn (h11) in a separate process, both on 127.0.0.1 "
        f"on this {os.cpu_count()}-core machine (load average {load_before:.1f} at the start: "
        "other jobs share the cores); one run.",
        "The server makes a fresh X25519 + Ed25519 key per encrypted response (the reference "
        "behaviour) and signs it with the token's key; the client uses a fresh box key per "
        "request.",
        "Server: the block server's management API uses this same middleware "
        "(`doublecrypt serve --admin`).",
    ]
    table = "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(f"# ncryptf: signed and encrypted HTTP requests\n\n{table}")
    print(json.dumps({r.name: round(r.per_second) for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
