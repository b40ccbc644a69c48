"""Tests of the SeaweedFS test cluster (tests/s3server.py) itself: that it
enforces request signing, stores and returns objects, answers the conditional
writes the S3 backend relies on, and keeps replicated objects readable while
a volume server is down. One cluster (replication 001) serves the module."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

from s3server import SeaweedCluster, require_weed, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedCluster]:
    require_weed()
    with start_cluster(tmp_path_factory.mktemp("seaweed"), replication="001") as running:
        yield running
    assert not any(p.alive for p in running.processes()), "a weed process outlived stop()"


def _status(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_signed_request_works(cluster: SeaweedCluster) -> None:
    cluster.make_bucket("signed")
    names = [b["Name"] for b in cluster.client().list_buckets()["Buckets"]]
    assert "signed" in names
    assert cluster.region == "us-east-1"
    assert cluster.endpoint_url.startswith("http://127.0.0.1:")


def test_unsigned_request_refused(cluster: SeaweedCluster) -> None:
    bucket = cluster.make_bucket("anon")
    cluster.client().put_object(Bucket=bucket, Key="k", Body=b"secret")
    anonymous = cluster.client(unsigned=True)
    with pytest.raises(ClientError) as excinfo:
        anonymous.list_buckets()
    assert _status(excinfo) == (403, "AccessDenied")
    with pytest.raises(ClientError) as excinfo:
        anonymous.get_object(Bucket=bucket, Key="k")
    assert _status(excinfo) == (403, "AccessDenied")
    with pytest.raises(ClientError) as excinfo:
        anonymous.put_object(Bucket=bucket, Key="k", Body=b"overwritten")
    assert _status(excinfo) == (403, "AccessDenied")
    assert cluster.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"


def test_wrong_secret_refused(cluster: SeaweedCluster) -> None:
    with pytest.raises(ClientError) as excinfo:
        cluster.client(secret_key="not-the-secret").list_buckets()
    assert _status(excinfo) == (403, "SignatureDoesNotMatch")


def test_put_get_round_trip(cluster: SeaweedCluster) -> None:
    s3 = cluster.client()
    bucket = cluster.make_bucket("roundtrip")
    body = bytes(range(256)) * 64
    etag = s3.put_object(Bucket=bucket, Key="dir/blob", Body=body)["ETag"]
    assert etag == f'"{hashlib.md5(body).hexdigest()}"'  # quoted hex MD5
    got = s3.get_object(Bucket=bucket, Key="dir/blob")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert s3.head_object(Bucket=bucket, Key="dir/blob")["ContentLength"] == len(body)
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="missing")
    assert _status(excinfo) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=bucket, Key="missing")
    assert _status(excinfo) == (404, "404")  # HEAD has no body, so no S3 error code
    deleted = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "dir/blob"}, {"Key": "missing"}]}
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["dir/blob", "missing"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_conditional_writes(cluster: SeaweedCluster) -> None:
    s3 = cluster.client()
    bucket = cluster.make_bucket("conditional")
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert _status(excinfo) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch='"0123456789abcdef"')
    assert _status(excinfo) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=first)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"


def test_per_bucket_replication(cluster: SeaweedCluster) -> None:
    s3 = cluster.client()
    single = cluster.make_bucket("single", replication="000")
    double = cluster.make_bucket("double")  # the cluster's 001
    for bucket in (single, double):
        s3.put_object(Bucket=bucket, Key="k", Body=b"payload")
    cluster.wait_replicated(single, copies=1)
    cluster.wait_replicated(double, copies=2)


def test_volume_server_killed_and_restarted(cluster: SeaweedCluster) -> None:
    s3 = cluster.client()
    bucket = cluster.make_bucket("survivor")
    objects = {f"obj/{i}": f"value {i}".encode() * (i + 1) for i in range(20)}
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    cluster.wait_replicated(bucket, copies=2)

    cluster.kill_volume_server(0)
    assert cluster.live_volume_servers() == 1
    for key, body in objects.items():  # served by the copy on volume server 1
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body

    cluster.start_volume_server(0)
    assert cluster.live_volume_servers() == 2
    s3.put_object(Bucket=bucket, Key="after-restart", Body=b"new")
    cluster.wait_replicated(bucket, copies=2)
    cluster.kill_volume_server(1)  # now only the restarted server answers
    for key, body in [*objects.items(), ("after-restart", b"new")]:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    cluster.start_volume_server(1)
