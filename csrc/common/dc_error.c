#include "internal.h"

const char *dc_strerror(int status) {
    switch (status) {
    case DC_OK:
        return "ok";
    case DC_ERR_NOT_FOUND:
        return "not found";
    case DC_ERR_ALREADY_EXISTS:
        return "already exists";
    case DC_ERR_NO_SPACE:
        return "no space left";
    case DC_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case DC_ERR_NOT_INITIALIZED:
        return "not initialized";
    case DC_ERR_IO:
        return "input/output error";
    case DC_ERR_AUTH:
        return "authentication failed";
    case DC_ERR_INTERNAL:
        return "internal error";
    case DC_ERR_BUFFER_TOO_SMALL:
        return "buffer too small";
    case DC_ERR_NOT_A_FILE:
        return "not a file";
    case DC_ERR_NOT_A_DIRECTORY:
        return "not a directory";
    case DC_ERR_DIRECTORY_NOT_EMPTY:
        return "directory not empty";
    case DC_ERR_NAME_TOO_LONG:
        return "name too long";
    case DC_ERR_NO_MEMORY:
        return "out of memory";
    case DC_ERR_CORRUPT:
        return "corrupt data";
    case DC_ERR_UNSUPPORTED:
        return "unsupported version";
    case DC_ERR_CANCELLED:
        return "cancelled";
    case DC_ERR_READ_ONLY:
        return "read-only";
    case DC_ERR_CONFLICT:
        return "conflict with another writer";
    default:
        return "unknown error";
    }
}
