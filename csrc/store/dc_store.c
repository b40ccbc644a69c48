/*
 * dc_store.c - the common front of every block store (argument checks, the
 * lock, counters) and the memory store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

int dc__valid_geometry(uint32_t block_size, uint64_t total_blocks) {
    return block_size >= DC_MIN_BLOCK_SIZE && block_size <= DC_MAX_BLOCK_SIZE &&
           (block_size & (block_size - 1)) == 0 &&
           total_blocks > DC_FIRST_DATA_BLOCK &&
           total_blocks <= UINT64_MAX / block_size;
}

int dc__errno_status(int err) {
    switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return DC_ERR_NO_SPACE;
    case ENOENT:
        return DC_ERR_NOT_FOUND;
    case EEXIST:
        return DC_ERR_ALREADY_EXISTS;
    case ENOMEM:
        return DC_ERR_NO_MEMORY;
    case EROFS:
    case EACCES:
    case EPERM:
        return DC_ERR_READ_ONLY;
    default:
        return DC_ERR_IO;
    }
}

int dc__store_wrap(dc_store **out, const dc__store_ops *ops, void *impl,
                   uint32_t block_size, uint64_t total_blocks, int read_only) {
    dc_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        ops->close(impl);
        return DC_ERR_NO_MEMORY;
    }
    s->ops = ops;
    s->impl = impl;
    s->block_size = block_size;
    s->total_blocks = total_blocks;
    s->read_only = read_only;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return DC_OK;
}

void dc_store_free(dc_store *store) {
    if (store == NULL)
        return;
    store->ops->close(store->impl);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

uint32_t dc_store_block_size(const dc_store *store) {
    return store ? store->block_size : 0;
}

uint64_t dc_store_total_blocks(const dc_store *store) {
    return store ? store->total_blocks : 0;
}

uint64_t dc_store_blocks_read(const dc_store *store) {
    return store ? store->blocks_read : 0;
}

uint64_t dc_store_blocks_written(const dc_store *store) {
    return store ? store->blocks_written : 0;
}

static int check_batch(const dc_store *s, const uint64_t *ids, size_t count,
                       const void *buf) {
    if (s == NULL || (count > 0 && (ids == NULL || buf == NULL)) ||
        count > SIZE_MAX / s->block_size)
        return DC_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++)
        if (ids[i] >= s->total_blocks)
            return DC_ERR_INVALID_ARGUMENT;
    return DC_OK;
}

int dc_store_read_blocks(dc_store *store, const uint64_t *ids, size_t count,
                         unsigned char *buf) {
    int rc = check_batch(store, ids, count, buf);
    if (rc != DC_OK || count == 0)
        return rc;
    pthread_mutex_lock(&store->lock);
    rc = store->ops->read(store->impl, ids, count, buf);
    if (rc == DC_OK)
        store->blocks_read += count;
    pthread_mutex_unlock(&store->lock);
    return rc;
}

int dc_store_write_blocks(dc_store *store, const uint64_t *ids, size_t count,
                          const unsigned char *buf) {
    int rc = check_batch(store, ids, count, buf);
    if (rc != DC_OK || count == 0)
        return rc;
    if (store->read_only)
        return DC_ERR_READ_ONLY;
    pthread_mutex_lock(&store->lock);
    rc = store->ops->write(store->impl, ids, count, buf);
    if (rc == DC_OK)
        store->blocks_written += count;
    pthread_mutex_unlock(&store->lock);
    return rc;
}

int dc_store_sync(dc_store *store) {
    if (store == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (store->read_only)
        return DC_OK;
    pthread_mutex_lock(&store->lock);
    int rc = store->ops->sync(store->impl);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

/* ---- memory store: an array of lazily allocated blocks ------------------ */

typedef struct mem_store {
    uint32_t block_size;
    uint64_t total;
    unsigned char **blocks;
} mem_store;

static int mem_read(void *impl, const uint64_t *ids, size_t count,
                    unsigned char *buf) {
    mem_store *m = impl;
    for (size_t i = 0; i < count; i++) {
        unsigned char *dst = buf + i * m->block_size;
        if (m->blocks[ids[i]] != NULL)
            memcpy(dst, m->blocks[ids[i]], m->block_size);
        else
            memset(dst, 0, m->block_size);
    }
    return DC_OK;
}

static int mem_write(void *impl, const uint64_t *ids, size_t count,
                     const unsigned char *buf) {
    mem_store *m = impl;
    for (size_t i = 0; i < count; i++) {
        if (m->blocks[ids[i]] == NULL) {
            m->blocks[ids[i]] = dc__aligned_alloc(m->block_size);
            if (m->blocks[ids[i]] == NULL)
                return DC_ERR_NO_MEMORY;
        }
        memcpy(m->blocks[ids[i]], buf + i * m->block_size, m->block_size);
    }
    return DC_OK;
}

static int mem_sync(void *impl) {
    (void)impl;
    return DC_OK;
}

static void mem_close(void *impl) {
    mem_store *m = impl;
    if (m == NULL)
        return;
    for (uint64_t i = 0; m->blocks != NULL && i < m->total; i++)
        dc__aligned_free(m->blocks[i]);
    free(m->blocks);
    free(m);
}

static const dc__store_ops mem_ops = {mem_read, mem_write, mem_sync, mem_close};

int dc_store_new_memory(dc_store **out, uint32_t block_size,
                        uint64_t total_blocks) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!dc__valid_geometry(block_size, total_blocks) ||
        total_blocks > SIZE_MAX / sizeof(unsigned char *))
        return DC_ERR_INVALID_ARGUMENT;
    mem_store *m = calloc(1, sizeof *m);
    if (m == NULL)
        return DC_ERR_NO_MEMORY;
    m->block_size = block_size;
    m->total = total_blocks;
    m->blocks = calloc((size_t)total_blocks, sizeof *m->blocks);
    if (m->blocks == NULL) {
        free(m);
        return DC_ERR_NO_MEMORY;
    }
    return dc__store_wrap(out, &mem_ops, m, block_size, total_blocks, 0);
}
