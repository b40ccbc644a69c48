/*
 * doublecrypt.h - the public C API of libdoublecrypt.
 *
 * This header (with the ones it includes) is the reference manual and the
 * single source of truth for the ABI: the Python bindings' declarations and
 * the shared library's export list are both extracted from it.
 * Conventions: docs/ABI.md.
 */
#ifndef DOUBLECRYPT_H
#define DOUBLECRYPT_H

/* Order matters: the cffi extractor reads the headers in this order. */
#include "doublecrypt/export.h"
#include "doublecrypt/version.h"
#include "doublecrypt/error.h"
#include "doublecrypt/core.h"
#include "doublecrypt/kdf.h"
#include "doublecrypt/codec.h"
#include "doublecrypt/alloc.h"
#include "doublecrypt/store.h"
#include "doublecrypt/fault.h"
#include "doublecrypt/fs.h"
#include "doublecrypt/keyslot.h"

#endif /* DOUBLECRYPT_H */
