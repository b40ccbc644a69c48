#include <stdint.h>
#include <string.h>

#include "doublecrypt.h"
#include "unit.h"

#define BS 4096

static dc_codec *make_codec(unsigned threads) {
    unsigned char key[DC_CODEC_KEYBYTES], vol[DC_CODEC_VOLUME_IDBYTES];
    memset(key, 7, sizeof key);
    memset(vol, 9, sizeof vol);
    dc_codec_options opts;
    dc_codec_options_init(&opts);
    opts.block_size = BS;
    opts.threads = threads;
    dc_codec *codec = NULL;
    CHECK_RC(dc_codec_new(&codec, key, vol, &opts), DC_OK);
    return codec;
}

static void test_round_trip_and_tamper(void) {
    dc_codec *codec = make_codec(1);
    static unsigned char block[BS], copy[BS], plain[BS];
    const char msg[] = "an inode, say";
    size_t len = sizeof plain;

    CHECK_RC(dc_codec_seal(codec, block, 42, DC_KIND_INODE,
                           (const unsigned char *)msg, sizeof msg),
             DC_OK);
    CHECK_RC(dc_codec_open(codec, plain, &len, 42, DC_KIND_INODE, block),
             DC_OK);
    CHECK(len == sizeof msg && memcmp(plain, msg, len) == 0);

    /* Wrong block id or kind. */
    len = sizeof plain;
    CHECK_RC(dc_codec_open(codec, plain, &len, 43, DC_KIND_INODE, block),
             DC_ERR_AUTH);
    CHECK_RC(dc_codec_open(codec, plain, &len, 42, DC_KIND_DATA, block),
             DC_ERR_AUTH);

    /* Every byte of the envelope is covered; padding is not. */
    size_t envelope = DC_CODEC_HEADERBYTES + sizeof msg + DC_CODEC_TAGBYTES;
    for (size_t i = 0; i < envelope; i++) {
        memcpy(copy, block, BS);
        copy[i] ^= 0x01;
        len = sizeof plain;
        CHECK_RC(dc_codec_open(codec, plain, &len, 42, DC_KIND_INODE, copy),
                 DC_ERR_AUTH);
    }
    memcpy(copy, block, BS);
    copy[BS - 1] ^= 0xff;
    len = sizeof plain;
    CHECK_RC(dc_codec_open(codec, plain, &len, 42, DC_KIND_INODE, copy), DC_OK);

    /* Too small an output buffer is reported with the needed size. */
    len = 3;
    CHECK_RC(dc_codec_open(codec, plain, &len, 42, DC_KIND_INODE, block),
             DC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof msg);

    /* Empty and maximal plaintexts. */
    CHECK_RC(dc_codec_seal(codec, block, 1, DC_KIND_DATA, NULL, 0), DC_OK);
    len = sizeof plain;
    CHECK_RC(dc_codec_open(codec, plain, &len, 1, DC_KIND_DATA, block), DC_OK);
    CHECK(len == 0);
    size_t max = dc_codec_max_plaintext(codec);
    CHECK(max == BS - DC_CODEC_OVERHEADBYTES);
    memset(plain, 0x5a, max);
    CHECK_RC(dc_codec_seal(codec, block, 2, DC_KIND_DATA, plain, max), DC_OK);
    CHECK_RC(dc_codec_seal(codec, block, 2, DC_KIND_DATA, plain, max + 1),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_codec_seal(codec, block, 2, 0, plain, 1),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_codec_seal(codec, block, 2, 256, plain, 1),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_codec_seal(NULL, block, 2, 1, plain, 1),
             DC_ERR_INVALID_ARGUMENT);
    dc_codec_free(codec);
    dc_codec_free(NULL);
}

static void test_bad_options(void) {
    unsigned char key[DC_CODEC_KEYBYTES] = {0}, vol[16] = {0};
    dc_codec_options opts;
    dc_codec *codec = (dc_codec *)&opts; /* must be reset to NULL */
    dc_codec_options_init(&opts);
    opts.block_size = 5000;
    CHECK_RC(dc_codec_new(&codec, key, vol, &opts), DC_ERR_INVALID_ARGUMENT);
    CHECK(codec == NULL);
    opts.block_size = DC_MAX_BLOCK_SIZE * 2;
    CHECK_RC(dc_codec_new(&codec, key, vol, &opts), DC_ERR_INVALID_ARGUMENT);
    dc_codec_options_init(&opts);
    opts.version = 99;
    CHECK_RC(dc_codec_new(&codec, key, vol, &opts), DC_ERR_UNSUPPORTED);
    CHECK_RC(dc_codec_new(&codec, NULL, vol, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_codec_new(NULL, key, vol, NULL), DC_ERR_INVALID_ARGUMENT);
}

static void test_batches(void) {
    enum { N = 37 };
    dc_codec *codec = make_codec(3);
    static unsigned char plains[N][100], blocks[N * BS];
    static unsigned char out[N * (BS - DC_CODEC_OVERHEADBYTES)];
    const unsigned char *ptrs[N];
    size_t lens[N], out_lens[N];
    uint64_t ids[N];
    unsigned char kinds[N];
    int statuses[N];
    for (int i = 0; i < N; i++) {
        memset(plains[i], i, sizeof plains[i]);
        ptrs[i] = plains[i];
        lens[i] = (size_t)i;
        ids[i] = 1000 + (uint64_t)i;
        kinds[i] = DC_KIND_DATA;
    }
    CHECK_RC(dc_codec_seal_batch(codec, blocks, N, ids, kinds, ptrs, lens),
             DC_OK);
    size_t stride = dc_codec_max_plaintext(codec);
    CHECK_RC(dc_codec_open_batch(codec, out, stride, out_lens, statuses, N, ids,
                                 kinds, blocks),
             DC_OK);
    for (int i = 0; i < N; i++) {
        CHECK(out_lens[i] == (size_t)i);
        CHECK(memcmp(out + (size_t)i * stride, plains[i], (size_t)i) == 0);
    }
    /* One tampered block fails alone and is the batch's result. */
    blocks[5 * BS + 40] ^= 1;
    CHECK_RC(dc_codec_open_batch(codec, out, stride, out_lens, statuses, N, ids,
                                 kinds, blocks),
             DC_ERR_AUTH);
    for (int i = 0; i < N; i++)
        CHECK(statuses[i] == (i == 5 ? DC_ERR_AUTH : DC_OK));
    CHECK_RC(dc_codec_open_batch(codec, out, stride, out_lens, NULL, N, ids,
                                 kinds, blocks),
             DC_ERR_AUTH);
    /* Bad arguments. */
    kinds[3] = 0;
    CHECK_RC(dc_codec_seal_batch(codec, blocks, N, ids, kinds, ptrs, lens),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_codec_seal_batch(codec, NULL, N, ids, kinds, ptrs, lens),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_codec_seal_batch(codec, blocks, 0, NULL, NULL, NULL, NULL),
             DC_OK);
    dc_codec_free(codec);
}

static void test_random_fill(void) {
    static unsigned char a[1 << 16], b[1 << 16];
    CHECK_RC(dc_random_fill(a, sizeof a), DC_OK);
    CHECK_RC(dc_random_fill(b, sizeof b), DC_OK);
    CHECK(memcmp(a, b, sizeof a) != 0);
    size_t counts[256] = {0};
    for (size_t i = 0; i < sizeof a; i++)
        counts[a[i]]++;
    for (int v = 0; v < 256; v++)
        CHECK(counts[v] > 128 && counts[v] < 384); /* mean 256 */
    CHECK_RC(dc_random_fill(NULL, 1), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_random_fill(NULL, 0), DC_OK);
}

void test_codec(void) {
    test_round_trip_and_tamper();
    test_bad_options();
    test_batches();
    test_random_fill();
}
