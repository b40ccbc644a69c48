/*
 * doublecrypt/version.h - the one place the version number lives.
 *
 * setup.py, the Makefile (soname), the pkg-config file and the Python package
 * all read these macros; nothing else states a version.
 */
#ifndef DOUBLECRYPT_VERSION_H
#define DOUBLECRYPT_VERSION_H

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_VERSION_MAJOR 0
#define DC_VERSION_MINOR 1
#define DC_VERSION_PATCH 0
/* The soname major: bumped on any incompatible ABI change (see docs/ABI.md). */
#define DC_ABI_VERSION 0

/** "MAJOR.MINOR.PATCH" of the library actually loaded. Never NULL. */
DC_API const char *dc_version_string(void);
/** MAJOR * 10000 + MINOR * 100 + PATCH of the library actually loaded. */
DC_API int dc_version_number(void);
/** The ABI (soname) version of the library actually loaded. */
DC_API int dc_abi_version(void);
/* @cdef-end */

#define DC__STRINGIFY(x) #x
#define DC__XSTRINGIFY(x) DC__STRINGIFY(x)
#define DC_VERSION_STRING                                                      \
    DC__XSTRINGIFY(DC_VERSION_MAJOR)                                           \
    "." DC__XSTRINGIFY(DC_VERSION_MINOR) "." DC__XSTRINGIFY(DC_VERSION_PATCH)
#define DC_VERSION_NUMBER                                                      \
    (DC_VERSION_MAJOR * 10000 + DC_VERSION_MINOR * 100 + DC_VERSION_PATCH)

DC_END_DECLS

#endif /* DOUBLECRYPT_VERSION_H */
