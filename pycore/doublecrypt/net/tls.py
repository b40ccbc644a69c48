"""The TLS transport (docs/PROTOCOL.md section 3): a self-signed server
certificate made on first start, and a client that pins the certificate's
SHA-256 fingerprint instead of trusting a certificate authority."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import pathlib
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import ChannelError, HostKeyChangedError, InvalidArgumentError

__all__ = [
    "CERT_FILE",
    "KEY_FILE",
    "certificate_fingerprint",
    "check_peer_fingerprint",
    "client_context",
    "ensure_certificate",
    "server_context",
    "write_private",
]

CERT_FILE = "server_tls.crt"
KEY_FILE = "server_tls.key"

_VALIDITY = datetime.timedelta(days=100 * 365)


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate: 64 lowercase hex characters."""
    return hashlib.sha256(der).hexdigest()


def write_private(path: pathlib.Path, data: bytes | bytearray) -> None:
    """Write a file readable by its owner only, atomically (tmp + fsync + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _make_certificate(cert_path: pathlib.Path, key_path: pathlib.Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doublecrypt block server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(key_path, key_pem)
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def ensure_certificate(
    data_dir: str | os.PathLike[str],
) -> tuple[pathlib.Path, pathlib.Path, str]:
    """The server's certificate and key in ``data_dir`` (made on first use:
    ECDSA P-256, self-signed, key file 0600) and the certificate's fingerprint."""
    directory = pathlib.Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / CERT_FILE
    key_path = directory / KEY_FILE
    if not (cert_path.exists() and key_path.exists()):
        _make_certificate(cert_path, key_path)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise InvalidArgumentError(f"{cert_path}: not a PEM certificate ({exc})") from None
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert_path, key_path, certificate_fingerprint(der)


def server_context(
    cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]
) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting the given certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.fspath(cert_path), os.fspath(key_path))
    return context


def client_context() -> ssl.SSLContext:
    """A TLS 1.2+ client context that does not verify the chain or the host
    name: the caller pins the certificate with :func:`check_peer_fingerprint`
    right after the handshake, before sending anything."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_peer_fingerprint(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, expected: str, host: str
) -> None:
    """Raise :class:`HostKeyChangedError` unless the peer's certificate has
    the SHA-256 fingerprint ``expected`` (hex; colons and case ignored)."""
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise ChannelError(f"{host}: the TLS server presented no certificate")
    actual = certificate_fingerprint(der)
    wanted = expected.replace(":", "").strip().lower()
    if not hmac.compare_digest(actual.encode(), wanted.encode()):
        raise HostKeyChangedError(
            f"{host}: TLS certificate fingerprint is {actual}, but {wanted} was pinned "
            "(the server's certificate changed, or this is not the server you expect)"
        )
