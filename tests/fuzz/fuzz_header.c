/*
 * fuzz_header - the volume header (block 0) before any key is known:
 * dc_fs_probe and the header decoder, dc_keyslot_list, and dc_keyslot_unlock
 * with the passphrase the seed corpus uses (tests/fuzz/make_corpus.py).
 *
 * Input: the header bytes (any length; the decoders get exactly these).
 *
 * A slot's Argon2id costs come from the input. dc_keyslot_unlock must refuse
 * costs above libsodium's "sensitive" level without running Argon2 (that is
 * the engine's protection against a crafted header); costs below that are
 * legitimate but can take seconds, so before unlocking the target marks such
 * slots empty in its copy and leaves only cheap ones (at most 64 KiB, 4
 * passes) and refused ones. Any slot that opens must give the corpus's master
 * key: a slot cannot be forged without it.
 */
#include <sodium.h>

#include "fs/engine.h"
#include "fuzz_common.h"

#define PASSPHRASE "fuzz passphrase"
#define CHEAP_MEMLIMIT 65536u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *buf = fuzz_dup(data, size);
    uint32_t bs = 0;
    uint64_t total = 0;
    dc__header h;

    int rc = dc_fs_probe(buf, size, &bs, &total);
    FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_CORRUPT || rc == DC_ERR_UNSUPPORTED);
    FUZZ_CHECK(dc__header_decode(buf, size, &h) == rc);
    if (rc == DC_OK) {
        FUZZ_CHECK(bs >= DC_MIN_BLOCK_SIZE && bs <= DC_MAX_BLOCK_SIZE);
        FUZZ_CHECK((bs & (bs - 1)) == 0 && total > DC_FIRST_DATA_BLOCK);
        FUZZ_CHECK(h.block_size == bs && h.total_blocks == total);
        FUZZ_CHECK(memcmp(h.volume_id, buf + 24, sizeof h.volume_id) == 0);
    }

    dc_keyslot_info info[DC_KEYSLOTS];
    int lrc = dc_keyslot_list(info, buf, size);
    FUZZ_CHECK(rc != DC_OK || lrc == DC_OK || lrc == DC_ERR_CORRUPT);
    FUZZ_CHECK(rc == DC_OK || lrc == rc);
    int used = 0, cheap = 1;
    for (int i = 0; lrc == DC_OK && i < DC_KEYSLOTS; i++) {
        const unsigned char *slot =
            buf + DC__KEYSLOT_OFFSET + (size_t)i * DC__KEYSLOT_BYTES;
        FUZZ_CHECK(info[i].in_use == (slot[0] == 1));
        if (!info[i].in_use) {
            FUZZ_CHECK(info[i].opslimit == 0 && info[i].memlimit == 0);
            continue;
        }
        FUZZ_CHECK(info[i].opslimit == dc__load_u64le(slot + 8));
        FUZZ_CHECK(info[i].memlimit == dc__load_u64le(slot + 16));
        int refused =
            info[i].opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
            info[i].opslimit > crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE ||
            info[i].memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
            info[i].memlimit > crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;
        if (!refused && info[i].memlimit > CHEAP_MEMLIMIT) {
            buf[DC__KEYSLOT_OFFSET + (size_t)i * DC__KEYSLOT_BYTES] = 0;
            continue; /* legitimate but slow: not tried */
        }
        used++;
        cheap &= !refused;
    }

    unsigned char key[DC_KDF_MASTER_KEYBYTES], expect[DC_KDF_MASTER_KEYBYTES];
    int slot = -1;
    int urc = dc_keyslot_unlock(key, &slot, buf, size,
                                (const unsigned char *)PASSPHRASE,
                                sizeof PASSPHRASE - 1);
    if (lrc != DC_OK) {
        FUZZ_CHECK(urc == lrc);
    } else if (urc == DC_OK) {
        fuzz_master_key(expect);
        FUZZ_CHECK(slot >= 0 && slot < DC_KEYSLOTS && info[slot].in_use);
        FUZZ_CHECK(memcmp(key, expect, sizeof key) == 0);
    } else {
        FUZZ_CHECK(urc == (used ? DC_ERR_AUTH : DC_ERR_NOT_FOUND) ||
                   (cheap && urc == DC_ERR_NO_MEMORY));
    }
    free(buf);
    return 0;
}
