/*
 * doublecrypt/keyslot.h - passphrases: key slots in the volume header.
 *
 * The master key is random and never typed. Each key slot wraps it under a
 * key-encryption key derived from a passphrase with Argon2id (libsodium
 * crypto_pwhash; the parameters are stored in the slot), sealed with
 * XChaCha20-Poly1305 and bound to the volume and slot number. There are
 * DC_KEYSLOTS slots; changing a passphrase rewrites only the header block.
 * Layout: docs/FORMAT.md.
 *
 * Thread safety: the dc_keyslot_* functions are pure; dc_fs_keyslot_* take
 * the handle's lock.
 */
#ifndef DOUBLECRYPT_KEYSLOT_H
#define DOUBLECRYPT_KEYSLOT_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "fs.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_KEYSLOTS 8
/* Argon2id costs: libsodium's "interactive" level is the default. */
#define DC_KEYSLOT_OPSLIMIT_INTERACTIVE 2
#define DC_KEYSLOT_MEMLIMIT_INTERACTIVE 67108864
#define DC_KEYSLOT_OPSLIMIT_MODERATE 3
#define DC_KEYSLOT_MEMLIMIT_MODERATE 268435456
/* The least libsodium accepts (for tests; never for real passphrases). */
#define DC_KEYSLOT_OPSLIMIT_MIN 1
#define DC_KEYSLOT_MEMLIMIT_MIN 8192

typedef struct dc_keyslot_info {
    /* 1 if the slot holds a wrapped key, else 0 */
    int in_use;
    uint64_t opslimit;
    uint64_t memlimit;
} dc_keyslot_info;

/**
 * Try `passphrase` against every used slot of a volume header (the first
 * DC_HEADER_PROBE_BYTES or more bytes of the image). On success writes the
 * DC_KDF_MASTER_KEYBYTES master key and, if slot_out is not NULL, the slot
 * that opened. DC_ERR_AUTH when no slot opens (wrong passphrase),
 * DC_ERR_NOT_FOUND when the volume has no key slot, DC_ERR_CORRUPT /
 * DC_ERR_UNSUPPORTED for a header that is not a doublecrypt volume of this
 * format, DC_ERR_INVALID_ARGUMENT for a NULL master_key_out or header.
 */
DC_API DC_NODISCARD int
dc_keyslot_unlock(unsigned char *master_key_out, int *slot_out,
                  const unsigned char *header, size_t header_len,
                  const unsigned char *passphrase, size_t passphrase_len);

/**
 * Describe the DC_KEYSLOTS slots of a header into out[0..DC_KEYSLOTS).
 * DC_ERR_INVALID_ARGUMENT for NULL out or header, DC_ERR_CORRUPT /
 * DC_ERR_UNSUPPORTED as dc_keyslot_unlock.
 */
DC_API int dc_keyslot_list(dc_keyslot_info *out, const unsigned char *header,
                           size_t header_len);

/**
 * Wrap the mounted volume's master key under `passphrase` in the first free
 * slot and write the header (then sync). DC_ERR_NO_SPACE when all slots are
 * used; DC_ERR_INVALID_ARGUMENT for costs below the minimum or an empty
 * passphrase.
 */
DC_API int dc_fs_keyslot_add(dc_fs *fs, int *slot_out,
                             const unsigned char *passphrase,
                             size_t passphrase_len, uint64_t opslimit,
                             uint64_t memlimit);

/**
 * Erase a slot (overwritten with random bytes). Removing the last used slot
 * is refused with DC_ERR_INVALID_ARGUMENT unless `allow_last` is non-zero
 * (the raw master key then remains the only way in).
 */
DC_API int dc_fs_keyslot_remove(dc_fs *fs, int slot, int allow_last);

/**
 * Which slot `passphrase` opens on the mounted volume (and that it opens to
 * this volume's master key): DC_ERR_AUTH if none.
 */
DC_API DC_NODISCARD int dc_fs_keyslot_match(dc_fs *fs, int *slot_out,
                                            const unsigned char *passphrase,
                                            size_t passphrase_len);

/** dc_keyslot_list for the mounted volume. */
DC_API int dc_fs_keyslot_list(dc_fs *fs, dc_keyslot_info *out);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_KEYSLOT_H */
