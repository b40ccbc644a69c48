from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Request(_message.Message):
    __slots__ = ("request_id", "read_block", "write_block", "sync", "get_info", "authenticate", "read_blocks", "write_blocks")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    READ_BLOCK_FIELD_NUMBER: _ClassVar[int]
    WRITE_BLOCK_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    GET_INFO_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATE_FIELD_NUMBER: _ClassVar[int]
    READ_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    WRITE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    read_block: ReadBlockRequest
    write_block: WriteBlockRequest
    sync: SyncRequest
    get_info: GetInfoRequest
    authenticate: AuthenticateRequest
    read_blocks: ReadBlocksRequest
    write_blocks: WriteBlocksRequest
    def __init__(self, request_id: _Optional[int] = ..., read_block: _Optional[_Union[ReadBlockRequest, _Mapping]] = ..., write_block: _Optional[_Union[WriteBlockRequest, _Mapping]] = ..., sync: _Optional[_Union[SyncRequest, _Mapping]] = ..., get_info: _Optional[_Union[GetInfoRequest, _Mapping]] = ..., authenticate: _Optional[_Union[AuthenticateRequest, _Mapping]] = ..., read_blocks: _Optional[_Union[ReadBlocksRequest, _Mapping]] = ..., write_blocks: _Optional[_Union[WriteBlocksRequest, _Mapping]] = ...) -> None: ...

class ReadBlockRequest(_message.Message):
    __slots__ = ("block_id",)
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    block_id: int
    def __init__(self, block_id: _Optional[int] = ...) -> None: ...

class WriteBlockRequest(_message.Message):
    __slots__ = ("block_id", "data")
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    block_id: int
    data: bytes
    def __init__(self, block_id: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateVolume(_message.Message):
    __slots__ = ("block_size", "total_blocks")
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    total_blocks: int
    def __init__(self, block_size: _Optional[int] = ..., total_blocks: _Optional[int] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("auth_token", "volume", "create")
    AUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    auth_token: bytes
    volume: str
    create: CreateVolume
    def __init__(self, auth_token: _Optional[bytes] = ..., volume: _Optional[str] = ..., create: _Optional[_Union[CreateVolume, _Mapping]] = ...) -> None: ...

class ReadBlocksRequest(_message.Message):
    __slots__ = ("block_ids",)
    BLOCK_IDS_FIELD_NUMBER: _ClassVar[int]
    block_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, block_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class WriteBlocksRequest(_message.Message):
    __slots__ = ("block_ids", "data")
    BLOCK_IDS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    block_ids: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, block_ids: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("request_id", "read_block", "write_block", "sync", "get_info", "error", "authenticate", "read_blocks", "write_blocks")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    READ_BLOCK_FIELD_NUMBER: _ClassVar[int]
    WRITE_BLOCK_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    GET_INFO_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATE_FIELD_NUMBER: _ClassVar[int]
    READ_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    WRITE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    read_block: ReadBlockResponse
    write_block: WriteBlockResponse
    sync: SyncResponse
    get_info: GetInfoResponse
    error: ErrorResponse
    authenticate: AuthenticateResponse
    read_blocks: ReadBlocksResponse
    write_blocks: WriteBlocksResponse
    def __init__(self, request_id: _Optional[int] = ..., read_block: _Optional[_Union[ReadBlockResponse, _Mapping]] = ..., write_block: _Optional[_Union[WriteBlockResponse, _Mapping]] = ..., sync: _Optional[_Union[SyncResponse, _Mapping]] = ..., get_info: _Optional[_Union[GetInfoResponse, _Mapping]] = ..., error: _Optional[_Union[ErrorResponse, _Mapping]] = ..., authenticate: _Optional[_Union[AuthenticateResponse, _Mapping]] = ..., read_blocks: _Optional[_Union[ReadBlocksResponse, _Mapping]] = ..., write_blocks: _Optional[_Union[WriteBlocksResponse, _Mapping]] = ...) -> None: ...

class ReadBlockResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class WriteBlockResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("block_size", "total_blocks")
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    total_blocks: int
    def __init__(self, block_size: _Optional[int] = ..., total_blocks: _Optional[int] = ...) -> None: ...

class ErrorResponse(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("block_size", "total_blocks", "created")
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    total_blocks: int
    created: bool
    def __init__(self, block_size: _Optional[int] = ..., total_blocks: _Optional[int] = ..., created: _Optional[bool] = ...) -> None: ...

class ReadBlocksResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class WriteBlocksResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
