/*
 * dc_fs_keys.c - key slot management on a mounted volume. The header block
 * is rewritten in place (the only block ever rewritten besides the root
 * pointers); only the changed slot's bytes differ, so a torn write can hurt
 * that slot alone, and callers change a passphrase by adding the new slot
 * before erasing the old one.
 */
#include <string.h>

#include <sodium.h>

#include "fs/engine.h"

static int read_header(dc_fs *fs) {
    uint64_t zero = 0;
    return dc_store_read_blocks(fs->vol.store, &zero, 1, fs->vol.block);
}

static int write_header(dc_fs *fs) {
    uint64_t zero = 0;
    int rc = dc_store_write_blocks(fs->vol.store, &zero, 1, fs->vol.block);
    if (rc == DC_OK)
        rc = dc_store_sync(fs->vol.store);
    return rc;
}

static int used_slots(dc_fs *fs, dc_keyslot_info *info) {
    int rc = read_header(fs);
    if (rc == DC_OK)
        rc = dc_keyslot_list(info, fs->vol.block, fs->vol.block_size);
    if (rc == DC_OK && dc__header_verify(fs->vol.block, fs->mac_key) != DC_OK)
        rc = DC_ERR_AUTH; /* the header changed under us */
    return rc;
}

static int do_add(dc_fs *fs, int *slot_out, const unsigned char *passphrase,
                  size_t len, uint64_t ops, uint64_t mem) {
    dc_keyslot_info info[DC_KEYSLOTS];
    if (len == 0)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT, "empty passphrase");
    if (ops < DC_KEYSLOT_OPSLIMIT_MIN || mem < DC_KEYSLOT_MEMLIMIT_MIN ||
        ops > crypto_pwhash_argon2id_OPSLIMIT_MAX || mem > SIZE_MAX ||
        mem > crypto_pwhash_argon2id_MEMLIMIT_MAX)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "Argon2id costs out of range");
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK)
        rc = used_slots(fs, info);
    if (rc != DC_OK)
        return rc;
    int slot = -1;
    for (int i = 0; i < DC_KEYSLOTS && slot < 0; i++)
        if (!info[i].in_use)
            slot = i;
    if (slot < 0)
        return dc__fs_error(fs, DC_ERR_NO_SPACE, "all %d key slots are used",
                            DC_KEYSLOTS);
    rc = dc__keyslot_fill(fs->vol.block, slot, fs->header.volume_id,
                          fs->master_key, passphrase, len, ops, mem);
    if (rc == DC_OK)
        rc = write_header(fs);
    if (rc == DC_OK && slot_out != NULL)
        *slot_out = slot;
    return rc;
}

int dc_fs_keyslot_add(dc_fs *fs, int *slot_out, const unsigned char *passphrase,
                      size_t passphrase_len, uint64_t opslimit,
                      uint64_t memlimit) {
    if (fs == NULL || (passphrase == NULL && passphrase_len > 0))
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    int rc =
        do_add(fs, slot_out, passphrase, passphrase_len, opslimit, memlimit);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

static int do_remove(dc_fs *fs, int slot, int allow_last) {
    dc_keyslot_info info[DC_KEYSLOTS];
    if (slot < 0 || slot >= DC_KEYSLOTS)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT, "no key slot %d",
                            slot);
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK)
        rc = used_slots(fs, info);
    if (rc != DC_OK)
        return rc;
    if (!info[slot].in_use)
        return dc__fs_error(fs, DC_ERR_NOT_FOUND, "key slot %d is empty", slot);
    int used = 0;
    for (int i = 0; i < DC_KEYSLOTS; i++)
        used += info[i].in_use;
    if (used == 1 && !allow_last)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "key slot %d is the last passphrase", slot);
    dc__keyslot_erase(fs->vol.block, slot);
    return write_header(fs);
}

int dc_fs_keyslot_remove(dc_fs *fs, int slot, int allow_last) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    int rc = do_remove(fs, slot, allow_last);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_keyslot_list(dc_fs *fs, dc_keyslot_info *out) {
    if (fs == NULL || out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    int rc = used_slots(fs, out);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_keyslot_match(dc_fs *fs, int *slot_out,
                        const unsigned char *passphrase,
                        size_t passphrase_len) {
    unsigned char key[DC_KDF_MASTER_KEYBYTES];
    if (fs == NULL || slot_out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    int rc = read_header(fs);
    if (rc == DC_OK)
        rc = dc_keyslot_unlock(key, slot_out, fs->vol.block, fs->vol.block_size,
                               passphrase, passphrase_len);
    if (rc == DC_OK &&
        sodium_memcmp(key, fs->master_key, DC_KDF_MASTER_KEYBYTES) != 0)
        rc = DC_ERR_AUTH;
    sodium_memzero(key, sizeof key);
    if (rc == DC_ERR_AUTH)
        dc__fs_error(fs, rc, "the passphrase opens no key slot");
    pthread_mutex_unlock(&fs->lock);
    return rc;
}
