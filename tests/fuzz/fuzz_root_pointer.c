/*
 * fuzz_root_pointer - the root pointer decoder, dc__root_decode (internal),
 * under the fixed master key's root MAC key.
 *
 * Input: byte 0 = mode (bit 0: decode as slot B instead of A; bit 1:
 * structured).
 *   raw: bytes 1..16 = the volume id, then the 4 KiB block (zero-padded), as
 *     make_corpus.py takes them from real images. What decodes must encode
 *     back to the same 64 bytes.
 *   structured: generation (u64), superblock ref (block u64, tag 16), the
 *     slot to encode for (bit 0 of one byte), n (mod 9) patches of (u16
 *     offset, u8 xor). The target encodes, patches and decodes: it must
 *     decode, to the same fields, exactly when the slot matches and no byte
 *     of the first 64 (fields and MAC) changed.
 */
#include "fs/engine.h"
#include "fuzz_common.h"

#define BLOCK 4096
#define AUTHENTICATED 64

static const unsigned char *mac_key(void) {
    static unsigned char key[DC_KDF_SUBKEYBYTES];
    static int ready;
    if (!ready) {
        fuzz_subkey(key, DC_SUBKEY_ROOT_MAC);
        ready = 1;
    }
    return key;
}

static int same_root(const dc__root *a, const dc__root *b) {
    return a->generation == b->generation &&
           a->superblock.block == b->superblock.block &&
           memcmp(a->superblock.tag, b->superblock.tag, DC_CODEC_TAGBYTES) == 0;
}

static void raw_mode(int slot, fuzz_in *in) {
    unsigned char vid[DC_CODEC_VOLUME_IDBYTES];
    unsigned char *block = malloc(BLOCK), *again = malloc(BLOCK);
    FUZZ_CHECK(block && again);
    fuzz_bytes(in, vid, sizeof vid);
    fuzz_bytes(in, block, BLOCK);
    dc__root root, back;
    int rc = dc__root_decode(block, slot, vid, mac_key(), &root);
    FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_AUTH);
    if (rc == DC_OK) {
        FUZZ_CHECK(dc__root_decode(block, DC__SLOT_A + DC__SLOT_B - slot, vid,
                                   mac_key(), &back) == DC_ERR_AUTH);
        dc__root_encode(again, BLOCK, &root, slot, vid, mac_key());
        FUZZ_CHECK(memcmp(again, block, AUTHENTICATED) == 0);
        FUZZ_CHECK(dc__root_decode(again, slot, vid, mac_key(), &back) ==
                   DC_OK);
        FUZZ_CHECK(same_root(&root, &back));
    }
    free(block);
    free(again);
}

static void structured_mode(int slot, fuzz_in *in) {
    unsigned char vid[DC_CODEC_VOLUME_IDBYTES];
    unsigned char *block = malloc(BLOCK), *orig = malloc(BLOCK);
    FUZZ_CHECK(block && orig);
    fuzz_volume_id(vid);
    dc__root root, back;
    memset(&root, 0, sizeof root);
    root.generation = fuzz_u64(in);
    root.superblock.block = fuzz_u64(in);
    fuzz_bytes(in, root.superblock.tag, DC_CODEC_TAGBYTES);
    int written = fuzz_u8(in) & 1 ? DC__SLOT_B : DC__SLOT_A;
    dc__root_encode(block, BLOCK, &root, written, vid, mac_key());
    memcpy(orig, block, BLOCK);
    unsigned np = fuzz_u8(in) % 9;
    for (unsigned i = 0; i < np; i++) {
        uint16_t off = fuzz_u16(in);
        block[off % BLOCK] ^= fuzz_u8(in);
    }
    int intact = memcmp(block, orig, AUTHENTICATED) == 0;
    int rc = dc__root_decode(block, slot, vid, mac_key(), &back);
    if (intact && slot == written) {
        FUZZ_CHECK(rc == DC_OK);
        FUZZ_CHECK(same_root(&root, &back));
    } else {
        FUZZ_CHECK(rc == DC_ERR_AUTH);
    }
    free(block);
    free(orig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    int slot = mode & 1 ? DC__SLOT_B : DC__SLOT_A;
    if (mode & 2)
        structured_mode(slot, &in);
    else
        raw_mode(slot, &in);
    return 0;
}
