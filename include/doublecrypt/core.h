/*
 * doublecrypt/core.h - library initialisation and memory the library owns.
 */
#ifndef DOUBLECRYPT_CORE_H
#define DOUBLECRYPT_CORE_H

#include <stddef.h>

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
/**
 * Initialise the library (and libsodium). Safe to call many times and from
 * many threads. Returns DC_OK, or DC_ERR_INTERNAL when no secure random
 * source is available. Every constructor calls it, so calling it yourself is
 * only needed to fail early.
 */
DC_API DC_NODISCARD int dc_init(void);

/** Release memory the library allocated for the caller. NULL is a no-op. */
DC_API void dc_free(void *ptr);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_CORE_H */
