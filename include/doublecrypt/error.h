/*
 * doublecrypt/error.h - status codes.
 *
 * Every function that can fail returns an int: 0 (DC_OK) on success, a
 * negative DC_ERR_* on failure. Codes -1 to -13 keep doublecrypt-core's
 * numbers so ported callers map one to one. Codes are frozen once released;
 * new subsystems take their own bands (-100..-199 network, -200..-299
 * ncryptf). Every authentication failure (AEAD tag, MAC, signature,
 * malformed sealed envelope) is the single detail-free DC_ERR_AUTH.
 */
#ifndef DOUBLECRYPT_ERROR_H
#define DOUBLECRYPT_ERROR_H

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_OK 0
#define DC_ERR_NOT_FOUND (-1)
#define DC_ERR_ALREADY_EXISTS (-2)
#define DC_ERR_NO_SPACE (-3)
#define DC_ERR_INVALID_ARGUMENT (-4)
#define DC_ERR_NOT_INITIALIZED (-5)
#define DC_ERR_IO (-6)
/* Authentication failed: wrong key, or data altered, moved or replayed. */
#define DC_ERR_AUTH (-7)
#define DC_ERR_INTERNAL (-8)
#define DC_ERR_BUFFER_TOO_SMALL (-9)
#define DC_ERR_NOT_A_FILE (-10)
#define DC_ERR_NOT_A_DIRECTORY (-11)
#define DC_ERR_DIRECTORY_NOT_EMPTY (-12)
#define DC_ERR_NAME_TOO_LONG (-13)
/* Added by doublecrypt (no doublecrypt-core equivalent). */
#define DC_ERR_NO_MEMORY (-14)
/* Structurally invalid data that is not covered by authentication. */
#define DC_ERR_CORRUPT (-15)
/* A format version or option-struct version this library does not know. */
#define DC_ERR_UNSUPPORTED (-16)
/* A progress callback asked to stop. */
#define DC_ERR_CANCELLED (-17)
/* The handle is read-only (opened so, or degraded after a failed write). */
#define DC_ERR_READ_ONLY (-18)
/* Another writer committed to a shared store (an object store) since this
 * handle last read it: the change was rolled back. dc_fs_refresh, then
 * retry. */
#define DC_ERR_CONFLICT (-19)

/**
 * A static English description of a status code. Never NULL; unknown codes
 * give "unknown error".
 */
DC_API const char *dc_strerror(int status);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_ERROR_H */
