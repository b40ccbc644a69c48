/*
 * dc_store.c - the common front of every block store and the memory store.
 *
 * The front checks arguments (NULL pointers, ids < total_blocks, byte sizes
 * that fit in size_t), refuses writes to read-only stores, serialises calls
 * with the store's mutex and counts the blocks moved by successful calls.
 * Implementations (memory here; file/device, custom and cache in the other
 * files of this directory) sit behind the dc__store_ops vtable.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

int dc__store_valid_geometry(uint32_t block_size, uint64_t total_blocks) {
    return block_size >= DC_MIN_BLOCK_SIZE && block_size <= DC_MAX_BLOCK_SIZE &&
           (block_size & (block_size - 1)) == 0 &&
           total_blocks >= DC__STORE_MIN_BLOCKS &&
           total_blocks <= UINT64_MAX / block_size;
}

int dc__store_new(dc_store **out, const dc__store_ops *ops, void *impl,
                  uint32_t block_size, uint64_t total_blocks, int read_only) {
    *out = NULL;
    dc_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DC_ERR_NO_MEMORY;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return DC_ERR_NO_MEMORY;
    }
    s->ops = ops;
    s->impl = impl;
    s->block_size = block_size;
    s->total_blocks = total_blocks;
    s->read_only = read_only != 0;
    atomic_init(&s->blocks_read, 0);
    atomic_init(&s->blocks_written, 0);
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
    return store != NULL ? store->block_size : 0;
}

uint64_t dc_store_total_blocks(const dc_store *store) {
    return store != NULL ? store->total_blocks : 0;
}

/* The counters are atomic objects of a store that is never itself const, so
 * casting the const away for the load is well defined. */
uint64_t dc_store_blocks_read(const dc_store *store) {
    if (store == NULL)
        return 0;
    return atomic_load_explicit(&((dc_store *)store)->blocks_read,
                                memory_order_relaxed);
}

uint64_t dc_store_blocks_written(const dc_store *store) {
    if (store == NULL)
        return 0;
    return atomic_load_explicit(&((dc_store *)store)->blocks_written,
                                memory_order_relaxed);
}

/* Every id in range and count * block_size addressable. */
static int check_ids(const dc_store *s, const uint64_t *ids, size_t count) {
    if (count > SIZE_MAX / s->block_size)
        return DC_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++)
        if (ids[i] >= s->total_blocks)
            return DC_ERR_INVALID_ARGUMENT;
    return DC_OK;
}

int dc_store_read_blocks(dc_store *store, const uint64_t *ids, size_t count,
                         unsigned char *buf) {
    if (store == NULL || (count > 0 && (ids == NULL || buf == NULL)))
        return DC_ERR_INVALID_ARGUMENT;
    if (count == 0)
        return DC_OK;
    int rc = check_ids(store, ids, count);
    if (rc != DC_OK)
        return rc;
    pthread_mutex_lock(&store->lock);
    rc = store->ops->read(store->impl, ids, count, buf);
    if (rc == DC_OK)
        atomic_fetch_add_explicit(&store->blocks_read, count,
                                  memory_order_relaxed);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

int dc_store_write_blocks(dc_store *store, const uint64_t *ids, size_t count,
                          const unsigned char *buf) {
    if (store == NULL || (count > 0 && (ids == NULL || buf == NULL)))
        return DC_ERR_INVALID_ARGUMENT;
    if (store->read_only)
        return DC_ERR_READ_ONLY;
    if (count == 0)
        return DC_OK;
    int rc = check_ids(store, ids, count);
    if (rc != DC_OK)
        return rc;
    pthread_mutex_lock(&store->lock);
    rc = store->ops->write(store->impl, ids, count, buf);
    if (rc == DC_OK)
        atomic_fetch_add_explicit(&store->blocks_written, count,
                                  memory_order_relaxed);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

int dc_store_sync(dc_store *store) {
    if (store == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (store->read_only)
        return DC_OK; /* nothing can be pending */
    pthread_mutex_lock(&store->lock);
    int rc = store->ops->sync(store->impl);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

int dc__store_forget(dc_store *store) {
    if (store->ops->forget == NULL)
        return DC_OK;
    pthread_mutex_lock(&store->lock);
    int rc = store->ops->forget(store->impl);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

/* ---- memory store: a table of lazily allocated blocks ---- */

typedef struct mem_store {
    uint32_t block_size;
    uint64_t total;
    unsigned char **blocks; /* NULL: never written, reads as zeros */
} mem_store;

static int mem_read(void *impl, const uint64_t *ids, size_t count,
                    unsigned char *buf) {
    mem_store *m = impl;
    for (size_t i = 0; i < count; i++) {
        unsigned char *dst = buf + i * m->block_size;
        const unsigned char *src = m->blocks[ids[i]];
        if (src != NULL)
            memcpy(dst, src, m->block_size);
        else
            memset(dst, 0, m->block_size);
    }
    return DC_OK;
}

static int mem_write(void *impl, const uint64_t *ids, size_t count,
                     const unsigned char *buf) {
    mem_store *m = impl;
    /* Allocate first, so running out of memory leaves every block as it
     * was (a block allocated but not written still reads as zeros). */
    for (size_t i = 0; i < count; i++) {
        if (m->blocks[ids[i]] == NULL) {
            m->blocks[ids[i]] = dc__aligned_alloc(m->block_size);
            if (m->blocks[ids[i]] == NULL)
                return DC_ERR_NO_MEMORY;
        }
    }
    for (size_t i = 0; i < count; i++)
        memcpy(m->blocks[ids[i]], buf + i * m->block_size, m->block_size);
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
    if (m->blocks != NULL)
        for (uint64_t i = 0; i < m->total; i++)
            dc__aligned_free(m->blocks[i]);
    free(m->blocks);
    free(m);
}

static const dc__store_ops mem_ops = {mem_read, mem_write, mem_sync, mem_close,
                                      NULL};

int dc_store_new_memory(dc_store **out, uint32_t block_size,
                        uint64_t total_blocks) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!dc__store_valid_geometry(block_size, total_blocks))
        return DC_ERR_INVALID_ARGUMENT;
    if (total_blocks > SIZE_MAX / sizeof(unsigned char *))
        return DC_ERR_NO_MEMORY;
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
    int rc = dc__store_new(out, &mem_ops, m, block_size, total_blocks, 0);
    if (rc != DC_OK)
        mem_close(m);
    return rc;
}
