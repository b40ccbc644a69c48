/*
 * dc_codec.c - the AEAD block envelope (layout in doublecrypt/codec.h and
 * docs/FORMAT.md) and its batch versions on the thread pool.
 */
#include <string.h>

#include <sodium.h>

#include "internal.h"

#define AD_BYTES (DC_CODEC_VOLUME_IDBYTES + 8 + 8)

struct dc_codec {
    unsigned char *key; /* sodium_malloc'd, wiped on free */
    unsigned char volume_id[DC_CODEC_VOLUME_IDBYTES];
    uint32_t block_size;
    unsigned int threads;
    dc__pool *pool;
};

size_t dc_codec_keybytes(void) { return DC_CODEC_KEYBYTES; }
size_t dc_codec_volume_idbytes(void) { return DC_CODEC_VOLUME_IDBYTES; }
size_t dc_codec_noncebytes(void) { return DC_CODEC_NONCEBYTES; }
size_t dc_codec_tagbytes(void) { return DC_CODEC_TAGBYTES; }
size_t dc_codec_headerbytes(void) { return DC_CODEC_HEADERBYTES; }
size_t dc_codec_overheadbytes(void) { return DC_CODEC_OVERHEADBYTES; }
size_t dc_min_block_size(void) { return DC_MIN_BLOCK_SIZE; }
size_t dc_max_block_size(void) { return DC_MAX_BLOCK_SIZE; }
size_t dc_default_block_size(void) { return DC_DEFAULT_BLOCK_SIZE; }
int dc_format_version(void) { return DC_FORMAT_VERSION; }

int dc_codec_options_init(dc_codec_options *opts) {
    if (opts == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    memset(opts, 0, sizeof *opts);
    opts->version = DC_CODEC_OPTIONS_VERSION;
    opts->block_size = DC_DEFAULT_BLOCK_SIZE;
    opts->threads = 0;
    return DC_OK;
}

static int valid_block_size(uint32_t size) {
    return size >= DC_MIN_BLOCK_SIZE && size <= DC_MAX_BLOCK_SIZE &&
           (size & (size - 1)) == 0;
}

int dc_codec_new(dc_codec **out, const unsigned char *key,
                 const unsigned char *volume_id, const dc_codec_options *opts) {
    dc_codec_options defaults;
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (key == NULL || volume_id == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (opts == NULL) {
        dc_codec_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->version != DC_CODEC_OPTIONS_VERSION)
        return DC_ERR_UNSUPPORTED;
    if (!valid_block_size(opts->block_size) ||
        opts->threads > DC_CODEC_MAX_THREADS)
        return DC_ERR_INVALID_ARGUMENT;
    if (dc_init() != DC_OK)
        return DC_ERR_INTERNAL;

    dc_codec *codec = sodium_malloc(sizeof *codec);
    if (codec == NULL)
        return DC_ERR_NO_MEMORY;
    memset(codec, 0, sizeof *codec);
    codec->key = sodium_malloc(DC_CODEC_KEYBYTES);
    if (codec->key == NULL) {
        sodium_free(codec);
        return DC_ERR_NO_MEMORY;
    }
    memcpy(codec->key, key, DC_CODEC_KEYBYTES);
    memcpy(codec->volume_id, volume_id, DC_CODEC_VOLUME_IDBYTES);
    codec->block_size = opts->block_size;
    codec->threads = opts->threads ? opts->threads : dc__online_cpus();
    int rc = dc__pool_new(&codec->pool, codec->threads);
    if (rc != DC_OK) {
        dc_codec_free(codec);
        return rc;
    }
    *out = codec;
    return DC_OK;
}

void dc_codec_free(dc_codec *codec) {
    if (codec == NULL)
        return;
    dc__pool_free(codec->pool);
    sodium_free(codec->key); /* sodium_free wipes before releasing */
    sodium_free(codec);
}

uint32_t dc_codec_block_size(const dc_codec *codec) {
    return codec ? codec->block_size : 0;
}

size_t dc_codec_max_plaintext(const dc_codec *codec) {
    return codec ? codec->block_size - DC_CODEC_OVERHEADBYTES : 0;
}

dc__pool *dc__codec_pool(const dc_codec *codec) {
    return codec ? codec->pool : NULL;
}

unsigned int dc_codec_threads(const dc_codec *codec) {
    return codec ? codec->threads : 0;
}

/* AD = volume id || block id (u64 LE) || the 8 header bytes. */
static void build_ad(const dc_codec *codec, unsigned char ad[AD_BYTES],
                     uint64_t block_id, const unsigned char *header) {
    memcpy(ad, codec->volume_id, DC_CODEC_VOLUME_IDBYTES);
    dc__store_u64le(ad + DC_CODEC_VOLUME_IDBYTES, block_id);
    memcpy(ad + DC_CODEC_VOLUME_IDBYTES + 8, header, 8);
}

static int seal_one(const dc_codec *codec, unsigned char *block,
                    uint64_t block_id, unsigned int kind,
                    const unsigned char *plaintext, size_t plaintext_len) {
    unsigned char ad[AD_BYTES];
    const size_t body_len = plaintext_len + DC_CODEC_TAGBYTES;
    const size_t used = DC_CODEC_HEADERBYTES + body_len;

    dc__store_u32le(block, (uint32_t)body_len);
    block[4] = (unsigned char)kind;
    block[5] = DC_FORMAT_VERSION;
    block[6] = 0;
    block[7] = 0;
    dc__random_fill(block + 8, DC_CODEC_NONCEBYTES);
    build_ad(codec, ad, block_id, block);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        block + DC_CODEC_HEADERBYTES, NULL, plaintext_len ? plaintext : ad,
        plaintext_len, ad, sizeof ad, NULL, block + 8, codec->key);
    dc__random_fill(block + used, codec->block_size - used);
    return DC_OK;
}

static int check_seal_args(const dc_codec *codec, const unsigned char *out,
                           unsigned int kind, const unsigned char *plaintext,
                           size_t plaintext_len) {
    if (codec == NULL || out == NULL || kind == 0 || kind > 255 ||
        (plaintext == NULL && plaintext_len > 0) ||
        plaintext_len > dc_codec_max_plaintext(codec))
        return DC_ERR_INVALID_ARGUMENT;
    return DC_OK;
}

int dc_codec_seal(dc_codec *codec, unsigned char *block_out, uint64_t block_id,
                  unsigned int kind, const unsigned char *plaintext,
                  size_t plaintext_len) {
    int rc = check_seal_args(codec, block_out, kind, plaintext, plaintext_len);
    if (rc != DC_OK)
        return rc;
    return seal_one(codec, block_out, block_id, kind, plaintext, plaintext_len);
}

static int open_one(const dc_codec *codec, unsigned char *plaintext_out,
                    size_t capacity, size_t *plaintext_len, uint64_t block_id,
                    unsigned int kind, const unsigned char *block) {
    unsigned char ad[AD_BYTES];
    const uint32_t body_len = dc__load_u32le(block);

    /* Every structural defect is an authentication failure: the header bytes
     * are covered by the AD, so a forger learns nothing from which check
     * failed. */
    if (body_len < DC_CODEC_TAGBYTES ||
        body_len > codec->block_size - DC_CODEC_HEADERBYTES ||
        block[4] != kind || block[5] != DC_FORMAT_VERSION || block[6] != 0 ||
        block[7] != 0)
        return DC_ERR_AUTH;
    const size_t len = body_len - DC_CODEC_TAGBYTES;
    if (len > capacity) {
        *plaintext_len = len;
        return DC_ERR_BUFFER_TOO_SMALL;
    }
    build_ad(codec, ad, block_id, block);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plaintext_out, NULL, NULL, block + DC_CODEC_HEADERBYTES, body_len,
            ad, sizeof ad, block + 8, codec->key) != 0)
        return DC_ERR_AUTH;
    *plaintext_len = len;
    return DC_OK;
}

int dc_codec_open(dc_codec *codec, unsigned char *plaintext_out,
                  size_t *plaintext_len, uint64_t block_id, unsigned int kind,
                  const unsigned char *block) {
    if (codec == NULL || plaintext_len == NULL || block == NULL ||
        (plaintext_out == NULL && *plaintext_len > 0) || kind == 0 ||
        kind > 255)
        return DC_ERR_INVALID_ARGUMENT;
    unsigned char none[1];
    return open_one(codec, plaintext_out ? plaintext_out : none, *plaintext_len,
                    plaintext_len, block_id, kind, block);
}

/* ---- batches ---- */

struct seal_batch {
    const dc_codec *codec;
    unsigned char *blocks_out;
    const uint64_t *block_ids;
    const unsigned char *kinds;
    const unsigned char *const *plaintexts;
    const size_t *plaintext_lens;
    int *statuses;
};

static void seal_item(void *ctx, size_t i) {
    struct seal_batch *b = ctx;
    unsigned char *out = b->blocks_out + i * (size_t)b->codec->block_size;
    int rc = check_seal_args(b->codec, out, b->kinds[i], b->plaintexts[i],
                             b->plaintext_lens[i]);
    if (rc == DC_OK)
        rc = seal_one(b->codec, out, b->block_ids[i], b->kinds[i],
                      b->plaintexts[i], b->plaintext_lens[i]);
    b->statuses[i] = rc;
}

struct open_batch {
    const dc_codec *codec;
    unsigned char *plaintexts_out;
    size_t stride;
    size_t *plaintext_lens;
    const uint64_t *block_ids;
    const unsigned char *kinds;
    const unsigned char *blocks;
    int *statuses;
};

static void open_item(void *ctx, size_t i) {
    struct open_batch *b = ctx;
    const size_t bs = b->codec->block_size;
    if (b->kinds[i] == 0) {
        b->statuses[i] = DC_ERR_INVALID_ARGUMENT;
        return;
    }
    b->plaintext_lens[i] = 0;
    b->statuses[i] = open_one(b->codec, b->plaintexts_out + i * b->stride,
                              b->stride, &b->plaintext_lens[i], b->block_ids[i],
                              b->kinds[i], b->blocks + i * bs);
}

/* Statuses live in a caller array or, for small batches, on the stack. */
#define STACK_STATUSES 256

static int first_failure(const int *statuses, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (statuses[i] != DC_OK)
            return statuses[i];
    return DC_OK;
}

static int run_batch(dc__pool *pool, size_t count, dc__pool_fn fn, void *ctx,
                     int **statuses_slot, int *caller_statuses) {
    int stack_statuses[STACK_STATUSES];
    int *heap = NULL;
    int *statuses = caller_statuses;
    if (statuses == NULL) {
        if (count <= STACK_STATUSES) {
            statuses = stack_statuses;
        } else {
            heap = dc__aligned_alloc(count * sizeof *heap);
            if (heap == NULL)
                return DC_ERR_NO_MEMORY;
            statuses = heap;
        }
    }
    *statuses_slot = statuses;
    dc__pool_run(pool, count, fn, ctx);
    int rc = first_failure(statuses, count);
    dc__aligned_free(heap);
    return rc;
}

int dc_codec_seal_batch(dc_codec *codec, unsigned char *blocks_out,
                        size_t count, const uint64_t *block_ids,
                        const unsigned char *kinds,
                        const unsigned char *const *plaintexts,
                        const size_t *plaintext_lens) {
    if (count == 0)
        return codec ? DC_OK : DC_ERR_INVALID_ARGUMENT;
    if (codec == NULL || blocks_out == NULL || block_ids == NULL ||
        kinds == NULL || plaintexts == NULL || plaintext_lens == NULL ||
        count > SIZE_MAX / codec->block_size)
        return DC_ERR_INVALID_ARGUMENT;
    struct seal_batch b = {codec,      blocks_out,     block_ids, kinds,
                           plaintexts, plaintext_lens, NULL};
    return run_batch(codec->pool, count, seal_item, &b, &b.statuses, NULL);
}

int dc_codec_open_batch(dc_codec *codec, unsigned char *plaintexts_out,
                        size_t plaintext_stride, size_t *plaintext_lens,
                        int *statuses, size_t count, const uint64_t *block_ids,
                        const unsigned char *kinds,
                        const unsigned char *blocks) {
    if (count == 0)
        return codec ? DC_OK : DC_ERR_INVALID_ARGUMENT;
    if (codec == NULL || plaintexts_out == NULL || plaintext_lens == NULL ||
        block_ids == NULL || kinds == NULL || blocks == NULL ||
        plaintext_stride == 0 || count > SIZE_MAX / codec->block_size ||
        count > SIZE_MAX / plaintext_stride)
        return DC_ERR_INVALID_ARGUMENT;
    struct open_batch b = {
        codec,     plaintexts_out, plaintext_stride, plaintext_lens,
        block_ids, kinds,          blocks,           NULL};
    return run_batch(codec->pool, count, open_item, &b, &b.statuses, statuses);
}
