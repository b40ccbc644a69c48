/*
 * fuzz_envelope_open - the sealed-block decoder, dc_codec_open (and
 * dc_codec_open_batch), under a fixed key and volume id.
 *
 * Input: byte 0 = mode (bits 0-1 block size 4/8/16/64 KiB, bit 2 set =
 * "seal then tamper"), byte 1 = kind, bytes 2..9 = block id (u64 LE).
 *   raw mode: the rest is the block (cut or zero-padded to the block size).
 *     Whatever opens must open the same way in a batch, re-seal and open to
 *     the same plaintext, and fail as another kind or block.
 *   seal-then-tamper: byte 10 = n (mod 9) patches of (u32 LE offset, u8 xor),
 *     then the plaintext. The target seals it, applies the patches and opens:
 *     it must open, to the same plaintext, exactly when no authenticated byte
 *     (header, ciphertext, tag) changed; changed padding does not matter.
 */
#include "fuzz_common.h"

#define SIZES 4

static dc_codec *codec_for(unsigned which) {
    static dc_codec *codecs[SIZES];
    static const uint32_t sizes[SIZES] = {4096, 8192, 16384, 65536};
    if (codecs[which] == NULL) {
        unsigned char key[DC_KDF_SUBKEYBYTES], vid[DC_CODEC_VOLUME_IDBYTES];
        dc_codec_options opts;
        fuzz_subkey(key, DC_SUBKEY_BLOCK_ENCRYPTION);
        fuzz_volume_id(vid);
        dc_codec_options_init(&opts);
        opts.block_size = sizes[which];
        opts.threads = 1;
        FUZZ_CHECK(dc_codec_new(&codecs[which], key, vid, &opts) == DC_OK);
    }
    return codecs[which];
}

/* Properties of a block that opened as (id, kind) to plain[0..len). */
static void check_opened(dc_codec *codec, const unsigned char *block,
                         uint64_t id, unsigned kind, const unsigned char *plain,
                         size_t len) {
    size_t bs = dc_codec_block_size(codec), max = dc_codec_max_plaintext(codec);
    unsigned char *again = malloc(max), *sealed = malloc(bs);
    unsigned char *two = malloc(2 * max), *blocks = malloc(2 * bs);
    FUZZ_CHECK(again && sealed && two && blocks);
    FUZZ_CHECK(len <= max);

    /* The length is visible before authentication; a too small buffer is
     * told the size it needs. */
    if (len > 0) {
        size_t small = len - 1;
        FUZZ_CHECK(dc_codec_open(codec, again, &small, id, kind, block) ==
                   DC_ERR_BUFFER_TOO_SMALL);
        FUZZ_CHECK(small == len);
    }
    /* Bound to its place and kind. */
    size_t n = max;
    FUZZ_CHECK(dc_codec_open(codec, again, &n, id + 1, kind, block) ==
               DC_ERR_AUTH);
    n = max;
    FUZZ_CHECK(dc_codec_open(codec, again, &n, id, kind == 255 ? 1 : kind + 1,
                             block) == DC_ERR_AUTH);

    /* A batch opens it the same way. */
    uint64_t ids[2] = {id, id};
    unsigned char kinds[2] = {(unsigned char)kind, (unsigned char)kind};
    size_t lens[2];
    int statuses[2];
    memcpy(blocks, block, bs);
    memcpy(blocks + bs, block, bs);
    FUZZ_CHECK(dc_codec_open_batch(codec, two, max, lens, statuses, 2, ids,
                                   kinds, blocks) == DC_OK);
    for (int i = 0; i < 2; i++) {
        FUZZ_CHECK(statuses[i] == DC_OK && lens[i] == len);
        FUZZ_CHECK(len == 0 || memcmp(two + (size_t)i * max, plain, len) == 0);
    }

    /* Re-sealed, it opens to the same plaintext. */
    FUZZ_CHECK(dc_codec_seal(codec, sealed, id, kind, plain, len) == DC_OK);
    n = max;
    FUZZ_CHECK(dc_codec_open(codec, again, &n, id, kind, sealed) == DC_OK);
    FUZZ_CHECK(n == len && (len == 0 || memcmp(again, plain, len) == 0));
    free(again);
    free(sealed);
    free(two);
    free(blocks);
}

static void raw_mode(dc_codec *codec, uint64_t id, unsigned kind, fuzz_in *in) {
    size_t bs = dc_codec_block_size(codec), max = dc_codec_max_plaintext(codec);
    unsigned char *block = malloc(bs), *plain = malloc(max);
    FUZZ_CHECK(block && plain);
    fuzz_bytes(in, block, bs);
    size_t len = max;
    int rc = dc_codec_open(codec, plain, &len, id, kind, block);
    if (kind == 0)
        FUZZ_CHECK(rc == DC_ERR_INVALID_ARGUMENT);
    else
        FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_AUTH);
    if (rc == DC_OK)
        check_opened(codec, block, id, kind, plain, len);
    free(block);
    free(plain);
}

static void tamper_mode(dc_codec *codec, uint64_t id, unsigned kind,
                        fuzz_in *in) {
    size_t bs = dc_codec_block_size(codec), max = dc_codec_max_plaintext(codec);
    struct {
        uint32_t off;
        uint8_t x;
    } patches[8];
    unsigned np = fuzz_u8(in) % 9;
    for (unsigned i = 0; i < np; i++) {
        patches[i].off = fuzz_u32(in);
        patches[i].x = fuzz_u8(in);
    }
    size_t len = in->left < max ? in->left : max;
    unsigned char *plain = fuzz_dup(in->p, len);
    unsigned char *block = malloc(bs), *orig = malloc(bs), *out = malloc(max);
    FUZZ_CHECK(block && orig && out);
    if (kind == 0)
        kind = 1;
    FUZZ_CHECK(dc_codec_seal(codec, block, id, kind, plain, len) == DC_OK);
    memcpy(orig, block, bs);
    for (unsigned i = 0; i < np; i++)
        block[patches[i].off % bs] ^= patches[i].x;
    /* Authenticated: the header, the ciphertext and the tag. */
    size_t used = DC_CODEC_OVERHEADBYTES + len;
    int intact = memcmp(block, orig, used) == 0;
    size_t n = max;
    int rc = dc_codec_open(codec, out, &n, id, kind, block);
    if (intact) {
        FUZZ_CHECK(rc == DC_OK);
        FUZZ_CHECK(n == len && (len == 0 || memcmp(out, plain, len) == 0));
        check_opened(codec, block, id, kind, out, n);
    } else {
        /* Even a changed length: a full-size buffer holds any length. */
        FUZZ_CHECK(rc == DC_ERR_AUTH);
    }
    free(plain);
    free(block);
    free(orig);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    unsigned kind = fuzz_u8(&in);
    uint64_t id = fuzz_u64(&in);
    dc_codec *codec = codec_for(mode & 3);
    if (mode & 4)
        tamper_mode(codec, id, kind, &in);
    else
        raw_mode(codec, id, kind, &in);
    return 0;
}
