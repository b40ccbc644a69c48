"""``doublecrypt admin``: the block server's management API, over ncryptf.

``doublecrypt admin --url http://127.0.0.1:7451 --token-file F COMMAND``
where F is a token in the ncryptf login-response shape: the bootstrap token
``DATA/admin/admin-token.json`` that ``serve --admin`` writes on first start,
or one that ``admin token issue --out F`` made. Every request is signed with
the token and its body and answer are encrypted (``doublecrypt.ncryptf``).

The API's refusals become the usual exit codes: 401/403 -> 5, 404 -> 3,
409 exists -> 4, 507 -> 7, unreachable server -> 8, others -> 1.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from .. import errors
from .common import echo_json, json_option
from .sizes import SIZE, format_size

if TYPE_CHECKING:
    from ..ncryptf import Token

__all__ = ["DEFAULT_URL", "AdminClient", "admin"]

DEFAULT_URL = "http://127.0.0.1:7451"
_TIMEOUT = 30.0


def _refusal(status: int, code: str, message: str) -> errors.DoubleCryptError:
    text = f"{message} (HTTP {status})"
    if status == 401:
        if code == "expired":
            return errors.TokenExpiredError(f"the admin token has expired: {text}")
        if code == "replayed":
            return errors.ReplayError(text)
        return errors.AuthorizationError(f"the server refused the admin token: {text}")
    if status == 403:
        return errors.AuthenticationError(f"not allowed: {text}")
    if status == 404:
        return errors.NotFoundError(text)
    if status == 409 and code == "exists":
        return errors.AlreadyExistsError(text)
    if status == 507:
        return errors.NoSpaceError(text)
    if status in (400, 406, 413, 415):
        return errors.InvalidArgumentError(text)
    if status >= 500:
        return errors.ServerError(status, message)
    return errors.DoubleCryptError(text)


class AdminClient:
    """A synchronous client of the management API (one HTTP connection pool)."""

    def __init__(self, url: str, token: Token, *, timeout: float = _TIMEOUT) -> None:
        import httpx

        from ..ncryptf.client import NcryptfAuth

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, auth=NcryptfAuth(token), timeout=timeout)

    @classmethod
    def from_token_file(
        cls, url: str, path: str | os.PathLike[str], *, timeout: float = _TIMEOUT
    ) -> AdminClient:
        from ..ncryptf import Token

        try:
            text = pathlib.Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise errors.NotFoundError(f"no token file {os.fspath(path)!r}") from None
        return cls(url, Token.from_json(text), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; the decrypted JSON answer, or the matching error."""
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise errors.NetworkError(
                f"cannot reach the management API at {self.url}: {exc}"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success:
            return data
        code, message = "", response.text[:200]
        if isinstance(data, dict):
            code = str(data.get("error", ""))
            message = str(data.get("message", message))
        raise _refusal(response.status_code, code, message)


# ---- the commands ---------------------------------------------------------------


@click.group()
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    envvar="DOUBLECRYPT_ADMIN_URL",
    help="The management API (serve --admin HOST:PORT).",
)
@click.option(
    "--token-file",
    envvar="DOUBLECRYPT_ADMIN_TOKEN",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="The admin token (DATA/admin/admin-token.json, or one 'token issue' wrote); required.",
)
@click.pass_context
def admin(ctx: click.Context, url: str, token_file: pathlib.Path | None) -> None:
    """Manage a block server remotely: volumes, API tokens, usage."""
    ctx.obj = _Target(url, token_file)


@dataclass
class _Target:
    """The group's options; the client is made when a command runs (not for --help)."""

    url: str
    token_file: pathlib.Path | None
    client: AdminClient | None = None


def _client() -> AdminClient:
    ctx = click.get_current_context()
    target = ctx.find_object(_Target)
    assert target is not None
    if target.client is None:
        if target.token_file is None:
            raise click.UsageError("give --token-file (or DOUBLECRYPT_ADMIN_TOKEN)")
        target.client = AdminClient.from_token_file(target.url, target.token_file)
        ctx.find_root().call_on_close(target.client.close)
    return target.client


def _volume_line(v: dict[str, Any]) -> str:
    state = "open" if v.get("open") else "idle"
    return (
        f"{v['name']}\t{format_size(v['size'])}\t{v['total_blocks']} blocks of "
        f"{format_size(v['block_size'])}\t{format_size(v['bytes_on_disk'])} on disk\t{state}"
    )


@admin.group("volume")
def admin_volume() -> None:
    """Create, list, resize and delete volumes."""


@admin_volume.command("create")
@click.argument("name")
@click.option("--size", type=SIZE, required=True, help="Volume size, e.g. 1G.")
@click.option("--block-size", type=SIZE, default="64K", show_default=True, help="Block size.")
@click.option(
    "--token-hash",
    required=True,
    metavar="HEX",
    help="BLAKE3 of the client's volume token (doublecrypt remote token-hash).",
)
def volume_create(name: str, size: int, block_size: int, token_hash: str) -> None:
    """Create volume NAME for the client whose token hashes to HEX."""
    if block_size <= 0 or size % block_size:
        raise click.BadParameter(
            f"a multiple of the block size ({format_size(block_size)})", param_hint="'--size'"
        )
    body = {"name": name, "size": size, "block_size": block_size, "token_hash": token_hash}
    click.echo("created " + _volume_line(_client().call("POST", "/v1/volumes", body)))


@admin_volume.command("list")
@json_option
def volume_list(as_json: bool) -> None:
    """List the volumes with their usage."""
    volumes = _client().call("GET", "/v1/volumes")["volumes"]
    if as_json:
        echo_json(volumes)
        return
    for v in volumes:
        click.echo(_volume_line(v))


@admin_volume.command("resize")
@click.argument("name")
@click.option("--size", type=SIZE, required=True, help="The new size, e.g. 2G.")
def volume_resize(name: str, size: int) -> None:
    """Grow or shrink volume NAME (no client may have it open; a shrink must
    drop only blocks that were never written)."""
    result = _client().call("PATCH", f"/v1/volumes/{name}", {"size": size})
    click.echo("resized " + _volume_line(result))


@admin_volume.command("delete")
@click.argument("name")
def volume_delete(name: str) -> None:
    """Delete volume NAME and its blocks (no client may have it open)."""
    _client().call("DELETE", f"/v1/volumes/{name}")
    click.echo(f"deleted volume {name}")


@admin.group("token")
def admin_token() -> None:
    """Issue, list and revoke API tokens."""


@admin_token.command("issue")
@click.option("--label", default="", help="A note to recognise the token by.")
@click.option(
    "--role",
    type=click.Choice(["admin", "read-only"]),
    default="admin",
    show_default=True,
    help="read-only tokens may only list and show.",
)
@click.option(
    "--lifetime",
    type=click.FloatRange(min=0.0, min_open=True),
    default=30 * 86400.0,
    show_default=True,
    help="Seconds until the token expires.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="Write the token here (mode 0600) instead of printing it.",
)
def token_issue(label: str, role: str, lifetime: float, out: pathlib.Path | None) -> None:
    """Issue a new API token (its secrets are shown only this once)."""
    result = _client().call(
        "POST", "/v1/tokens", {"label": label, "role": role, "lifetime": lifetime}
    )
    if out is None:
        echo_json(result)
        return
    from ..ncryptf import Token
    from ..net.tls import write_private

    write_private(out, (Token.from_dict(result["token"]).to_json() + "\n").encode())
    click.echo(f"issued {result['role']} token {result['id']} into {out}")


@admin_token.command("list")
@json_option
def token_list(as_json: bool) -> None:
    """List the tokens (without their secrets)."""
    tokens = _client().call("GET", "/v1/tokens")["tokens"]
    if as_json:
        echo_json(tokens)
        return
    for t in tokens:
        state = "expired" if t["expired"] else "valid"
        click.echo(f"{t['id']}\t{t['role']}\t{state}\t{t['label']}")


@admin_token.command("revoke")
@click.argument("token_id", metavar="ID")
def token_revoke(token_id: str) -> None:
    """Revoke token ID: requests made with it fail from now on."""
    _client().call("DELETE", f"/v1/tokens/{token_id}")
    click.echo(f"revoked token {token_id}")


@admin.command("usage")
@json_option
def usage(as_json: bool) -> None:
    """Every volume's size and space on disk, and the server's free disk space."""
    result = _client().call("GET", "/v1/usage")
    if as_json:
        echo_json(result)
        return
    for v in result["volumes"]:
        click.echo(_volume_line(v))
    total, disk = result["total"], result["disk"]
    click.echo(
        f"total: {total['volumes']} volumes, {format_size(total['size'])}, "
        f"{format_size(total['bytes_on_disk'])} on disk; "
        f"{format_size(disk['free'])} free of {format_size(disk['total'])}"
    )
