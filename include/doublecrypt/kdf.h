/*
 * doublecrypt/kdf.h - key derivation (HKDF-SHA256, RFC 5869).
 *
 * A volume has one random 32-byte master key. Everything else is derived
 * from it with HKDF-SHA256 (salt "doublecrypt-v2", info = the purpose label
 * listed in docs/FORMAT.md), so a derived key never reveals another one.
 *
 * Thread safety: all functions are pure and may be called concurrently.
 */
#ifndef DOUBLECRYPT_KDF_H
#define DOUBLECRYPT_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_KDF_MASTER_KEYBYTES 32
#define DC_KDF_SUBKEYBYTES 32
/* HKDF-SHA256 can expand to at most 255 hash blocks. */
#define DC_KDF_HKDF_MAX_OUTPUT 8160

/* Purposes of the sub-keys derived from a master key. */
#define DC_SUBKEY_BLOCK_ENCRYPTION 1
#define DC_SUBKEY_ROOT_MAC 2
#define DC_SUBKEY_SERVER_AUTH 3

DC_API size_t dc_kdf_master_keybytes(void);
DC_API size_t dc_kdf_subkeybytes(void);

/**
 * HKDF-SHA256 (extract then expand) of `ikm` with `salt` and `info` into
 * `out_len` bytes of `out`. `salt` and `info` may be NULL when their length
 * is 0. Returns DC_ERR_INVALID_ARGUMENT for NULL buffers or out_len outside
 * 1..DC_KDF_HKDF_MAX_OUTPUT.
 */
DC_API int dc_kdf_hkdf_sha256(unsigned char *out, size_t out_len,
                              const unsigned char *salt, size_t salt_len,
                              const unsigned char *ikm, size_t ikm_len,
                              const unsigned char *info, size_t info_len);

/**
 * Derive the DC_KDF_SUBKEYBYTES sub-key for `purpose` (a DC_SUBKEY_*) from a
 * DC_KDF_MASTER_KEYBYTES master key. Returns DC_ERR_INVALID_ARGUMENT for
 * NULL pointers or an unknown purpose.
 */
DC_API int dc_kdf_derive_subkey(unsigned char *out, int purpose,
                                const unsigned char *master_key);

/**
 * The HKDF info label of a DC_SUBKEY_* purpose (ASCII, static), or NULL for
 * an unknown purpose.
 */
DC_API const char *dc_kdf_subkey_label(int purpose);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_KDF_H */
