/*
 * dc_kdf.c - HKDF-SHA256 (RFC 5869) over libsodium's HMAC-SHA256.
 *
 * libsodium 1.0.18 (Debian bookworm) has no crypto_kdf_hkdf_sha256_*, so the
 * two HKDF steps are written here on crypto_auth_hmacsha256; tests check them
 * against RFC 5869's vectors and the `cryptography` package.
 */
#include <string.h>

#include <sodium.h>

#include "internal.h"

static const unsigned char subkey_salt[] = "doublecrypt-v2";

static const char *const subkey_labels[] = {
    [DC_SUBKEY_BLOCK_ENCRYPTION] = "block-encryption",
    [DC_SUBKEY_ROOT_MAC] = "root-pointer-mac",
    [DC_SUBKEY_SERVER_AUTH] = "server-auth-token",
};

size_t dc_kdf_master_keybytes(void) { return DC_KDF_MASTER_KEYBYTES; }

size_t dc_kdf_subkeybytes(void) { return DC_KDF_SUBKEYBYTES; }

const char *dc_kdf_subkey_label(int purpose) {
    if (purpose < DC_SUBKEY_BLOCK_ENCRYPTION || purpose > DC_SUBKEY_SERVER_AUTH)
        return NULL;
    return subkey_labels[purpose];
}

int dc_kdf_hkdf_sha256(unsigned char *out, size_t out_len,
                       const unsigned char *salt, size_t salt_len,
                       const unsigned char *ikm, size_t ikm_len,
                       const unsigned char *info, size_t info_len) {
    unsigned char prk[crypto_auth_hmacsha256_BYTES];
    unsigned char block[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    if (out == NULL || out_len == 0 || out_len > DC_KDF_HKDF_MAX_OUTPUT ||
        (salt == NULL && salt_len > 0) || (ikm == NULL && ikm_len > 0) ||
        (info == NULL && info_len > 0))
        return DC_ERR_INVALID_ARGUMENT;
    if (sodium_init() < 0)
        return DC_ERR_INTERNAL;
    /* Never hand libsodium a NULL pointer, even with a zero length. */
    static const unsigned char empty[1] = {0};
    salt = salt != NULL ? salt : empty;
    ikm = ikm != NULL ? ikm : empty;
    info = info != NULL ? info : empty;

    /* Extract: PRK = HMAC(salt, IKM); an absent salt is HashLen zero bytes,
     * which HMAC pads to the same key as an empty one. */
    crypto_auth_hmacsha256_init(&st, salt, salt_len);
    crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
    crypto_auth_hmacsha256_final(&st, prk);

    /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i). */
    size_t done = 0;
    for (unsigned int counter = 1; done < out_len; counter++) {
        unsigned char c = (unsigned char)counter;
        crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
        if (counter > 1)
            crypto_auth_hmacsha256_update(&st, block, sizeof block);
        crypto_auth_hmacsha256_update(&st, info, info_len);
        crypto_auth_hmacsha256_update(&st, &c, 1);
        crypto_auth_hmacsha256_final(&st, block);
        size_t take =
            out_len - done < sizeof block ? out_len - done : sizeof block;
        memcpy(out + done, block, take);
        done += take;
    }
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(block, sizeof block);
    sodium_memzero(&st, sizeof st);
    return DC_OK;
}

int dc_kdf_derive_subkey(unsigned char *out, int purpose,
                         const unsigned char *master_key) {
    const char *label = dc_kdf_subkey_label(purpose);
    if (out == NULL || master_key == NULL || label == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    return dc_kdf_hkdf_sha256(out, DC_KDF_SUBKEYBYTES, subkey_salt,
                              sizeof subkey_salt - 1, master_key,
                              DC_KDF_MASTER_KEYBYTES,
                              (const unsigned char *)label, strlen(label));
}
