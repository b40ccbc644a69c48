/*
 * dc_keyslot.c - key slots in the header block (docs/FORMAT.md, "Key
 * slots"): the master key wrapped with XChaCha20-Poly1305 under an Argon2id
 * key-encryption key.
 *
 * Slot i is DC__KEYSLOT_BYTES at DC__KEYSLOT_OFFSET + i * DC__KEYSLOT_BYTES:
 *   0 u8 state (0 empty, 1 argon2id/xchacha20poly1305) | 1 7 x 0 |
 *   8 u64 opslimit | 16 u64 memlimit | 24 salt[16] | 40 nonce[24] |
 *   64 wrapped key[32] + tag[16] | 112 16 random bytes
 * AD = context || volume id || slot index || slot bytes 0..40.
 */
#include <string.h>

#include <sodium.h>

#include "fs/engine.h"

#define STATE_EMPTY 0
#define STATE_ARGON2ID 1
#define AD_FIELDS 40
#define WRAPPED_AT 64

static const char slot_context[] = "doublecrypt key slot v2";

static unsigned char *slot_at(unsigned char *header, int i) {
    return header + DC__KEYSLOT_OFFSET + (size_t)i * DC__KEYSLOT_BYTES;
}

static void slot_ad(unsigned char *ad, const unsigned char *volume_id, int i,
                    const unsigned char *slot) {
    size_t n = sizeof slot_context - 1;
    memcpy(ad, slot_context, n);
    memcpy(ad + n, volume_id, DC_CODEC_VOLUME_IDBYTES);
    ad[n + DC_CODEC_VOLUME_IDBYTES] = (unsigned char)i;
    memcpy(ad + n + DC_CODEC_VOLUME_IDBYTES + 1, slot, AD_FIELDS);
}

#define AD_BYTES                                                               \
    (sizeof slot_context - 1 + DC_CODEC_VOLUME_IDBYTES + 1 + AD_FIELDS)

/* Argon2id costs a slot may carry: libsodium's minimum up to its
 * "sensitive" level (4 passes, 1 GiB). A header is untrusted input until a
 * slot opens, and libsodium's own maxima (2^32 - 1 passes, 4 TiB) would let a
 * crafted header make an unlock attempt run for hours or allocate terabytes;
 * dc__keyslot_fill refuses the same range, so every slot written can be
 * opened. */
static int costs_ok(uint64_t ops, uint64_t mem) {
    return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
           ops <= crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE &&
           mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
           mem <= crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;
}

static int derive_kek(unsigned char *kek, const unsigned char *passphrase,
                      size_t len, const unsigned char *slot) {
    uint64_t ops = dc__load_u64le(slot + 8), mem = dc__load_u64le(slot + 16);
    if (!costs_ok(ops, mem))
        return DC_ERR_CORRUPT;
    if (crypto_pwhash(kek, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
                      (const char *)passphrase, len, slot + 24,
                      (unsigned long long)ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return DC_ERR_NO_MEMORY; /* Argon2 could not get its memory */
    return DC_OK;
}

int dc__keyslot_fill(unsigned char *header, int i,
                     const unsigned char *volume_id,
                     const unsigned char *master_key,
                     const unsigned char *passphrase, size_t len,
                     uint64_t opslimit, uint64_t memlimit) {
    unsigned char kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    unsigned char ad[AD_BYTES];
    unsigned char *slot = slot_at(header, i);
    if (!costs_ok(opslimit, memlimit))
        return DC_ERR_INVALID_ARGUMENT;
    dc__random_fill(slot, DC__KEYSLOT_BYTES);
    slot[0] = STATE_ARGON2ID;
    memset(slot + 1, 0, 7);
    dc__store_u64le(slot + 8, opslimit);
    dc__store_u64le(slot + 16, memlimit);
    randombytes_buf(slot + 24, 16);
    randombytes_buf(slot + 40, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    int rc = derive_kek(kek, passphrase, len, slot);
    if (rc == DC_OK) {
        slot_ad(ad, volume_id, i, slot);
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            slot + WRAPPED_AT, NULL, master_key, DC_KDF_MASTER_KEYBYTES, ad,
            sizeof ad, NULL, slot + 40, kek);
    }
    sodium_memzero(kek, sizeof kek);
    return rc;
}

void dc__keyslot_erase(unsigned char *header, int i) {
    unsigned char *slot = slot_at(header, i);
    dc__random_fill(slot, DC__KEYSLOT_BYTES);
    slot[0] = STATE_EMPTY;
}

void dc__keyslots_clear(unsigned char *header) {
    for (int i = 0; i < DC_KEYSLOTS; i++)
        slot_at(header, i)[0] = STATE_EMPTY;
}

int dc_keyslot_list(dc_keyslot_info *out, const unsigned char *header,
                    size_t header_len) {
    dc__header h;
    if (out == NULL || header == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    int rc = dc__header_decode(header, header_len, &h);
    if (rc != DC_OK)
        return rc;
    if (header_len < DC__KEYSLOT_OFFSET + DC_KEYSLOTS * DC__KEYSLOT_BYTES)
        return DC_ERR_CORRUPT;
    for (int i = 0; i < DC_KEYSLOTS; i++) {
        const unsigned char *slot = slot_at((unsigned char *)header, i);
        out[i].in_use = slot[0] == STATE_ARGON2ID;
        out[i].opslimit = out[i].in_use ? dc__load_u64le(slot + 8) : 0;
        out[i].memlimit = out[i].in_use ? dc__load_u64le(slot + 16) : 0;
    }
    return DC_OK;
}

int dc_keyslot_unlock(unsigned char *master_key_out, int *slot_out,
                      const unsigned char *header, size_t header_len,
                      const unsigned char *passphrase, size_t passphrase_len) {
    dc__header h;
    dc_keyslot_info info[DC_KEYSLOTS];
    if (master_key_out == NULL || header == NULL ||
        (passphrase == NULL && passphrase_len > 0))
        return DC_ERR_INVALID_ARGUMENT;
    if (dc_init() != DC_OK)
        return DC_ERR_INTERNAL;
    int rc = dc_keyslot_list(info, header, header_len);
    if (rc == DC_OK)
        rc = dc__header_decode(header, header_len, &h);
    if (rc != DC_OK)
        return rc;
    rc = DC_ERR_NOT_FOUND;
    for (int i = 0; i < DC_KEYSLOTS; i++) {
        if (!info[i].in_use)
            continue;
        const unsigned char *slot = slot_at((unsigned char *)header, i);
        unsigned char kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
        unsigned char ad[AD_BYTES];
        int step =
            derive_kek(kek, passphrase ? passphrase : (const unsigned char *)"",
                       passphrase_len, slot);
        if (step == DC_OK) {
            slot_ad(ad, h.volume_id, i, slot);
            step = crypto_aead_xchacha20poly1305_ietf_decrypt(
                       master_key_out, NULL, NULL, slot + WRAPPED_AT,
                       DC_KDF_MASTER_KEYBYTES +
                           crypto_aead_xchacha20poly1305_ietf_ABYTES,
                       ad, sizeof ad, slot + 40, kek) == 0
                       ? DC_OK
                       : DC_ERR_AUTH;
        }
        sodium_memzero(kek, sizeof kek);
        if (step == DC_OK) {
            if (slot_out != NULL)
                *slot_out = i;
            return DC_OK;
        }
        rc = step == DC_ERR_NO_MEMORY || rc == DC_ERR_NO_MEMORY
                 ? DC_ERR_NO_MEMORY
                 : DC_ERR_AUTH;
    }
    sodium_memzero(master_key_out, DC_KDF_MASTER_KEYBYTES);
    return rc;
}
