/*
 * dc_vol.c - block I/O of the engine: authenticated reads of referenced
 * blocks, and the queue of sealed metadata blocks written at commit.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fs/engine.h"

int dc__vol_init(dc__vol *vol, dc_store *store) {
    memset(vol, 0, sizeof *vol);
    vol->store = store;
    vol->block_size = dc_store_block_size(store);
    vol->block = dc__aligned_alloc(vol->block_size);
    vol->plain = dc__aligned_alloc(vol->block_size);
    if (vol->block == NULL || vol->plain == NULL) {
        dc__vol_release(vol);
        return DC_ERR_NO_MEMORY;
    }
    return DC_OK;
}

void dc__vol_release(dc__vol *vol) {
    dc_codec_free(vol->codec);
    dc_allocator_free(vol->alloc);
    dc__aligned_free(vol->block);
    dc__aligned_free(vol->plain);
    dc__aligned_free(vol->queue);
    free(vol->queue_ids);
    vol->codec = NULL;
    vol->alloc = NULL;
    vol->block = vol->plain = vol->queue = NULL;
    vol->queue_ids = NULL;
}

void dc__sealed_tag(const unsigned char *block, unsigned char *tag) {
    uint32_t body = dc__load_u32le(block);
    memcpy(tag, block + DC_CODEC_HEADERBYTES + body - DC_CODEC_TAGBYTES,
           DC_CODEC_TAGBYTES);
}

int dc__vol_read(dc__vol *vol, const dc__ref *ref, unsigned kind,
                 unsigned char *out, size_t *len) {
    unsigned char tag[DC_CODEC_TAGBYTES];
    if (ref->block < DC_FIRST_DATA_BLOCK ||
        ref->block >= dc_store_total_blocks(vol->store))
        return DC_ERR_CORRUPT;
    int rc = dc_store_read_blocks(vol->store, &ref->block, 1, vol->block);
    if (rc != DC_OK)
        return rc;
    uint32_t body = dc__load_u32le(vol->block);
    if (body < DC_CODEC_TAGBYTES ||
        body > vol->block_size - DC_CODEC_HEADERBYTES)
        return DC_ERR_AUTH;
    dc__sealed_tag(vol->block, tag);
    /* A different tag is an older or foreign version of the block. */
    if (sodium_memcmp(tag, ref->tag, DC_CODEC_TAGBYTES) != 0)
        return DC_ERR_AUTH;
    *len = vol->chunk;
    return dc_codec_open(vol->codec, out ? out : vol->plain, len, ref->block,
                         kind, vol->block);
}

int dc__vol_queue(dc__vol *vol, unsigned kind, const unsigned char *plain,
                  size_t len, dc__ref *ref) {
    if (vol->queued == vol->queue_cap) {
        size_t cap = vol->queue_cap ? vol->queue_cap * 2 : 16;
        unsigned char *q = dc__aligned_alloc(cap * vol->block_size);
        uint64_t *ids = realloc(vol->queue_ids, cap * sizeof *ids);
        if (q == NULL || ids == NULL) {
            dc__aligned_free(q);
            if (ids != NULL)
                vol->queue_ids = ids;
            return DC_ERR_NO_MEMORY;
        }
        if (vol->queued)
            memcpy(q, vol->queue, vol->queued * vol->block_size);
        dc__aligned_free(vol->queue);
        vol->queue = q;
        vol->queue_ids = ids;
        vol->queue_cap = cap;
    }
    uint64_t block;
    int rc = dc_allocator_alloc(vol->alloc, &block);
    if (rc != DC_OK)
        return rc;
    unsigned char *dst = vol->queue + vol->queued * vol->block_size;
    rc = dc_codec_seal(vol->codec, dst, block, kind, plain, len);
    if (rc != DC_OK) {
        dc_allocator_release(vol->alloc, block);
        return rc;
    }
    vol->queue_ids[vol->queued++] = block;
    ref->block = block;
    dc__sealed_tag(dst, ref->tag);
    return DC_OK;
}

int dc__vol_flush_queue(dc__vol *vol) {
    if (vol->queued == 0)
        return DC_OK;
    int rc = dc_store_write_blocks(vol->store, vol->queue_ids, vol->queued,
                                   vol->queue);
    vol->queued = 0;
    return rc;
}

void dc__vol_drop_queue(dc__vol *vol) { vol->queued = 0; }
