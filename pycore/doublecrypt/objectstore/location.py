"""Where a volume lives in an object store, and the S3 client that reaches it.

``s3://BUCKET/PREFIX`` names a volume: its objects are ``PREFIX/meta.json``,
``PREFIX/writer.json`` and ``PREFIX/blocks/<block id, 16 hex digits>``
(docs/OBJECT_STORE.md). Endpoint, region and credentials come from explicit
arguments or, as for every AWS tool, from the environment and config files
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["SCHEME", "S3Location", "S3Settings", "is_object_store_url", "make_client"]

SCHEME = "s3://"


def is_object_store_url(text: str) -> bool:
    return text.startswith(SCHEME)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing '/'; may be empty

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not is_object_store_url(url):
            raise InvalidArgumentError(f"not an object store URL (s3://BUCKET/PREFIX): {url!r}")
        bucket, _, prefix = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise InvalidArgumentError(f"no bucket in {url!r} (s3://BUCKET/PREFIX)")
        return cls(bucket, prefix.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def child(self, name: str) -> S3Location:
        """The location of volume ``name`` under this one (a server's volumes)."""
        return S3Location(self.bucket, self.key(name))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class S3Settings:
    """How to reach the service. None means: as boto3 finds it (environment,
    ``~/.aws/config``)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 5  # botocore "standard" retries: backoff with jitter


def make_client(settings: S3Settings, max_connections: int) -> Any:
    """A thread-safe boto3 S3 client. Retries on throttling and 5xx use
    botocore's standard mode (exponential backoff with full jitter)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise InvalidArgumentError(
            "the object store needs boto3: pip install 'doublecrypt[s3]'"
        ) from e
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        max_pool_connections=max(10, max_connections + 4),
        s3={"addressing_style": "path"},
        signature_version="s3v4",
    )
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name=settings.region,
    )
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config)
