"""The wire protocol's pieces: the committed generated code is current, the
doublecrypt-core messages keep their field numbers, the TLS framing limits,
and the mapping of ErrorResponse codes to exceptions."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from google.protobuf.descriptor import FieldDescriptor

from doublecrypt import errors
from doublecrypt.net import wire
from doublecrypt.net.wire import pb

PYCORE = pathlib.Path(__file__).resolve().parent.parent / "pycore"
PROTO = "doublecrypt/net/blockstore.proto"
REGENERATE = (
    "python -m grpc_tools.protoc -I pycore --python_out=pycore --pyi_out=pycore "
    "pycore/doublecrypt/net/blockstore.proto"
)


def test_generated_code_is_current(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("grpc_tools")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PYCORE}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(PYCORE / PROTO),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for suffix in ("_pb2.py", "_pb2.pyi"):
        name = "doublecrypt/net/blockstore" + suffix
        fresh = (tmp_path / name).read_bytes()
        committed = (PYCORE / name).read_bytes()
        assert fresh == committed, (
            f"pycore/{name} is not what protoc makes from {PROTO}: run `{REGENERATE}` "
            "from the repository root and commit the result"
        )


# doublecrypt-core's messages (shared/reference/doublecrypt-core.md section 4):
# (field name, number, type) per message; the extensions come after.
_T = FieldDescriptor
SEED_FIELDS: dict[str, list[tuple[str, int, int]]] = {
    "Request": [
        ("request_id", 1, _T.TYPE_UINT64),
        ("read_block", 2, _T.TYPE_MESSAGE),
        ("write_block", 3, _T.TYPE_MESSAGE),
        ("sync", 4, _T.TYPE_MESSAGE),
        ("get_info", 5, _T.TYPE_MESSAGE),
        ("authenticate", 6, _T.TYPE_MESSAGE),
    ],
    "ReadBlockRequest": [("block_id", 1, _T.TYPE_UINT64)],
    "WriteBlockRequest": [("block_id", 1, _T.TYPE_UINT64), ("data", 2, _T.TYPE_BYTES)],
    "SyncRequest": [],
    "GetInfoRequest": [],
    "AuthenticateRequest": [("auth_token", 1, _T.TYPE_BYTES)],
    "Response": [
        ("request_id", 1, _T.TYPE_UINT64),
        ("read_block", 2, _T.TYPE_MESSAGE),
        ("write_block", 3, _T.TYPE_MESSAGE),
        ("sync", 4, _T.TYPE_MESSAGE),
        ("get_info", 5, _T.TYPE_MESSAGE),
        ("error", 6, _T.TYPE_MESSAGE),
        ("authenticate", 7, _T.TYPE_MESSAGE),
    ],
    "ReadBlockResponse": [("data", 1, _T.TYPE_BYTES)],
    "WriteBlockResponse": [],
    "SyncResponse": [],
    "GetInfoResponse": [("block_size", 1, _T.TYPE_UINT32), ("total_blocks", 2, _T.TYPE_UINT64)],
    "ErrorResponse": [("code", 1, _T.TYPE_INT32), ("message", 2, _T.TYPE_STRING)],
    "AuthenticateResponse": [],
}

EXTENSION_FIELDS: dict[str, list[tuple[str, int, int]]] = {
    "Request": [("read_blocks", 7, _T.TYPE_MESSAGE), ("write_blocks", 8, _T.TYPE_MESSAGE)],
    "Response": [("read_blocks", 8, _T.TYPE_MESSAGE), ("write_blocks", 9, _T.TYPE_MESSAGE)],
    "ReadBlocksRequest": [("block_ids", 1, _T.TYPE_UINT64)],
    "WriteBlocksRequest": [("block_ids", 1, _T.TYPE_UINT64), ("data", 2, _T.TYPE_BYTES)],
    "ReadBlocksResponse": [("data", 1, _T.TYPE_BYTES)],
    "WriteBlocksResponse": [],
    "AuthenticateRequest": [("volume", 2, _T.TYPE_STRING), ("create", 3, _T.TYPE_MESSAGE)],
    "CreateVolume": [("block_size", 1, _T.TYPE_UINT32), ("total_blocks", 2, _T.TYPE_UINT64)],
    "AuthenticateResponse": [
        ("block_size", 1, _T.TYPE_UINT32),
        ("total_blocks", 2, _T.TYPE_UINT64),
        ("created", 3, _T.TYPE_BOOL),
    ],
}


def test_seed_field_numbers_and_types() -> None:
    assert pb.DESCRIPTOR.package == "doublecrypt"
    for message_name, fields in SEED_FIELDS.items():
        descriptor = pb.DESCRIPTOR.message_types_by_name[message_name]
        for name, number, field_type in fields:
            field = descriptor.fields_by_name.get(name)
            assert field is not None, f"{message_name}.{name} is missing"
            assert field.number == number, f"{message_name}.{name} is {field.number}, not {number}"
            assert field.type == field_type, f"{message_name}.{name} changed type"


def test_extension_fields_and_nothing_else() -> None:
    for message_name in set(SEED_FIELDS) | set(EXTENSION_FIELDS):
        descriptor = pb.DESCRIPTOR.message_types_by_name[message_name]
        expected = SEED_FIELDS.get(message_name, []) + EXTENSION_FIELDS.get(message_name, [])
        actual = sorted((f.name, f.number, f.type) for f in descriptor.fields)
        assert actual == sorted(expected), message_name
    request_oneof = pb.Request.DESCRIPTOR.oneofs_by_name["command"]
    assert {f.name for f in request_oneof.fields} == {
        name for name, _, _ in SEED_FIELDS["Request"] + EXTENSION_FIELDS["Request"]
    } - {"request_id"}
    response_oneof = pb.Response.DESCRIPTOR.oneofs_by_name["result"]
    assert "error" in {f.name for f in response_oneof.fields}
    repeated = pb.ReadBlocksRequest.DESCRIPTOR.fields_by_name["block_ids"]
    assert repeated.is_repeated


def test_seed_encoding_is_wire_compatible() -> None:
    # Bytes a doublecrypt-core client sends for WriteBlock{block_id 5, data "ab"}, id 3.
    request = pb.Request(request_id=3, write_block=pb.WriteBlockRequest(block_id=5, data=b"ab"))
    assert request.SerializeToString() == bytes.fromhex("0803") + bytes.fromhex(
        "1a06" + "0805" + "12026162"
    )
    # and an Authenticate with only the token still parses (volume empty, no create).
    parsed = pb.Request.FromString(
        bytes.fromhex("0802") + bytes.fromhex("3222" + "0a20") + b"t" * 32
    )
    assert parsed.WhichOneof("command") == "authenticate"
    assert parsed.authenticate.auth_token == b"t" * 32
    assert parsed.authenticate.volume == ""
    assert not parsed.authenticate.HasField("create")


@pytest.mark.parametrize("size", [0, 1, 127, 128, 4096, 1 << 20])
@pytest.mark.parametrize("request_id", [1, 300, (1 << 64) - 1])
def test_hand_encoded_read_response_is_what_protobuf_reads(request_id: int, size: int) -> None:
    message, start = wire.read_blocks_response(request_id, size)
    data = bytes(i % 251 for i in range(size))
    message[start:] = data
    response = pb.Response.FromString(bytes(message))
    assert response.request_id == request_id
    assert response.WhichOneof("result") == "read_blocks"
    assert response.read_blocks.data == data


@pytest.mark.parametrize("request_id", [1, 300, (1 << 64) - 1])
def test_read_responses_are_split_without_protobuf(request_id: int) -> None:
    for size in (1, 130, 1 << 16):
        data = os.urandom(size)
        encoded = pb.Response(request_id=request_id, read_blocks={"data": data})
        split = wire.split_read_blocks_response(encoded.SerializeToString())
        assert split is not None and split[0] == request_id and bytes(split[1]) == data
    others = [
        pb.Response(request_id=request_id, read_blocks={}),  # no data field
        pb.Response(request_id=0, read_blocks={"data": b"abcdef"}),  # no request_id field
        pb.Response(request_id=request_id, read_block={"data": b"abcdef"}),
        pb.Response(request_id=request_id, error={"code": 1, "message": "no"}),
    ]
    for response in others:
        assert wire.split_read_blocks_response(response.SerializeToString()) is None
    good = pb.Response(request_id=request_id, read_blocks={"data": b"abcdef"}).SerializeToString()
    for bad in (good[:-1], good + b"\x00", good[:3], b"", bytes([0x08] + [0x80] * 12)):
        assert wire.split_read_blocks_response(bad) is None


def test_tls_frames_split_anywhere_and_many_per_feed() -> None:
    messages = [b"x" * 70000, b"", b"abc", b"y" * 5]
    stream = b"".join(wire.tls_frame(m) for m in messages)
    for cut in (1, 3, 4, 5, 1000, 70003, 70004, 70005, len(stream) - 1):
        decoder = wire.TlsFrameDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == messages
        assert decoder.buffered == 0
    decoder = wire.TlsFrameDecoder()
    got = [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]
    assert got == messages


def test_tls_frame_roundtrip_in_pieces() -> None:
    messages = [b"", b"x", b"hello" * 1000, bytes(range(256))]
    stream = b"".join(wire.tls_frame(m) for m in messages)
    assert stream[:4] == b"\x00\x00\x00\x00"
    assert wire.tls_frame(b"abc")[:4] == (3).to_bytes(4, "little")
    decoder = wire.TlsFrameDecoder(max_message=10_000)
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += decoder.feed(stream[i : i + 7])
    assert got == messages
    assert decoder.buffered == 0
    decoder.end_of_input()


def test_tls_frame_limit_is_refused_from_the_header() -> None:
    decoder = wire.TlsFrameDecoder(max_message=100)
    assert decoder.feed(wire.tls_frame(b"a" * 100)) == [b"a" * 100]
    # Only the header of a too-long frame: refused before its body arrives.
    with pytest.raises(errors.ProtocolError, match="101 bytes exceeds the limit of 100"):
        decoder.feed((101).to_bytes(4, "little"))
    with pytest.raises(errors.ProtocolError):
        decoder.feed(b"")  # dead afterwards
    huge = wire.TlsFrameDecoder()
    with pytest.raises(errors.ProtocolError):
        huge.feed(b"\xff\xff\xff\xff")
    assert wire.TlsFrameDecoder().max_message == wire.DEFAULT_MAX_MESSAGE
    with pytest.raises(errors.InvalidArgumentError):
        wire.TlsFrameDecoder(max_message=0)


def test_tls_frame_truncated_stream() -> None:
    decoder = wire.TlsFrameDecoder()
    assert decoder.feed(wire.tls_frame(b"hello")[:-1]) == []
    with pytest.raises(errors.ProtocolError, match="middle of a frame"):
        decoder.end_of_input()
    header_only = wire.TlsFrameDecoder()
    header_only.feed(b"\x05\x00")
    with pytest.raises(errors.ProtocolError):
        header_only.end_of_input()


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (wire.FORBIDDEN, errors.AuthenticationError),
        (wire.NO_SUCH_VOLUME, errors.NotFoundError),
        (wire.CONFLICT, errors.AlreadyExistsError),
        (wire.OUT_OF_RANGE, errors.InvalidArgumentError),
        (wire.NO_SPACE, errors.NoSpaceError),
        (wire.BAD_REQUEST, errors.ServerError),
        (wire.NOT_AUTHENTICATED, errors.ServerError),
        (wire.TOO_LARGE, errors.ServerError),
        (wire.TOO_MANY_REQUESTS, errors.ServerError),
        (wire.SERVER_IO, errors.ServerError),
        (599, errors.ServerError),
    ],
)
def test_error_mapping(code: int, cls: type[errors.DoubleCryptError]) -> None:
    err = wire.error_from_response(pb.ErrorResponse(code=code, message="the server's words"))
    assert type(err) is cls
    assert "the server's words" in str(err)
    assert isinstance(err, errors.DoubleCryptError)
    if isinstance(err, errors.ServerError):
        assert err.code == code
        assert err.server_message == "the server's words"
        assert isinstance(err, errors.NetworkError)


def test_error_mapping_without_message() -> None:
    err = wire.error_from_response(pb.ErrorResponse(code=wire.SERVER_IO))
    assert isinstance(err, errors.ServerError)
    assert "500" in str(err)


def test_codes_and_limits() -> None:
    assert (wire.BAD_REQUEST, wire.NOT_AUTHENTICATED, wire.FORBIDDEN) == (400, 401, 403)
    assert (wire.NO_SUCH_VOLUME, wire.CONFLICT, wire.TOO_LARGE) == (404, 409, 413)
    assert (wire.OUT_OF_RANGE, wire.TOO_MANY_REQUESTS) == (416, 429)
    assert (wire.SERVER_IO, wire.NO_SPACE) == (500, 507)
    assert wire.MAX_IN_FLIGHT == 64
    assert wire.DEFAULT_MAX_MESSAGE == 16 * 1024 * 1024 + 4096
    assert wire.DEFAULT_VOLUME == "default"
    for good in ("default", "a", "A.b-c_9", "x" * 64):
        assert wire.VOLUME_NAME_RE.fullmatch(good)
    for bad in ("", "x" * 65, "a/b", "a b", "é", "a\n"):
        assert not wire.VOLUME_NAME_RE.fullmatch(bad)
