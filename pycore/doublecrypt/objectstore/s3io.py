"""The S3 requests the object store makes, with their failures turned into
doublecrypt errors in one place.

Missing objects are ``None`` (a block never written reads as zeros); a
failed precondition (HTTP 412, or 409 from services that report a
concurrent conditional write that way) is ``None`` from :meth:`put_if`;
everything else that fails after botocore's retries is ObjectStoreError.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import ObjectStoreError

__all__ = ["S3IO"]

_MISSING = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(code) if code else (str(status) if status else None)


def _failure(what: str, exc: BaseException) -> ObjectStoreError:
    code = _code(exc)
    detail = f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
    return ObjectStoreError(f"object store: {what} failed ({detail})")


def _age(response: Any) -> float | None:
    modified = response.get("LastModified")
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if modified is None or date is None:
        return None
    try:
        return float((parsedate_to_datetime(date) - modified).total_seconds())
    except (TypeError, ValueError):
        return None


class S3IO:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)

    def get(self, key: str) -> tuple[bytes, str] | None:
        """Body and ETag, or None if there is no such object."""
        found = self.get_meta(key)
        return None if found is None else found[:2]

    def get_meta(self, key: str) -> tuple[bytes, str, float | None] | None:
        """Body, ETag, and the object's age in seconds by the service's clock
        (its Last-Modified against the response's Date; None if either is
        missing)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read(), str(response["ETag"]), _age(response)
        except self._errors as e:
            if _code(e) in _MISSING:
                return None
            raise _failure(f"GET {key}", e) from None

    def etag(self, key: str) -> str | None:
        try:
            return str(self.client.head_object(Bucket=self.bucket, Key=key)["ETag"])
        except self._errors as e:
            if _code(e) in _MISSING:
                return None
            raise _failure(f"HEAD {key}", e) from None

    def put(self, key: str, body: bytes) -> str:
        try:
            return str(self.client.put_object(Bucket=self.bucket, Key=key, Body=body)["ETag"])
        except self._errors as e:
            raise _failure(f"PUT {key}", e) from None

    def put_if(self, key: str, body: bytes, etag: str | None) -> str | None:
        """PUT only if the object's ETag is still ``etag`` (None: only if it
        does not exist). The new ETag, or None when the condition failed."""
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **condition)
            return str(response["ETag"])
        except self._errors as e:
            if _code(e) in _PRECONDITION or (etag is not None and _code(e) in _MISSING):
                return None
            raise _failure(f"conditional PUT {key}", e) from None

    def delete(self, key: str) -> int:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
            return 1
        except self._errors as e:
            if _code(e) in _MISSING:
                return 0
            raise _failure(f"DELETE {key}", e) from None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (batches of 1000)."""
        deleted = 0
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                    deleted += len(keys)
        except self._errors as e:
            raise _failure(f"DELETE {prefix}*", e) from None
        return deleted
