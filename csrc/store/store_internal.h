/*
 * store_internal.h - the private vtable behind dc_store (libgit2-backend
 * style). dc_store.c checks arguments, takes the lock and keeps the counters,
 * so an implementation only moves bytes: it is always called with the lock
 * held, with count > 0, non-NULL ids and buf, and every id < total_blocks.
 */
#ifndef DC_STORE_INTERNAL_H
#define DC_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

typedef struct dc__store_ops {
    int (*read)(void *impl, const uint64_t *ids, size_t count,
                unsigned char *buf);
    int (*write)(void *impl, const uint64_t *ids, size_t count,
                 const unsigned char *buf);
    int (*sync)(void *impl);
    /* Releases impl and everything it owns (dc_store_free). */
    void (*close)(void *impl);
    /* Optional: drop every cached block, unwritten ones too (the engine
     * calls it with no commit pending), so that the next reads see what
     * other writers stored. */
    int (*forget)(void *impl);
} dc__store_ops;

struct dc_store {
    const dc__store_ops *ops;
    void *impl;
    uint32_t block_size;
    uint64_t total_blocks;
    int read_only;
    pthread_mutex_t lock;
    /* Atomic so the getters need no lock. */
    atomic_uint_least64_t blocks_read;
    atomic_uint_least64_t blocks_written;
};

/*
 * Allocate the common front for an implementation. On failure nothing is
 * closed: the caller still owns impl and releases it itself.
 */
int dc__store_new(dc_store **out, const dc__store_ops *ops, void *impl,
                  uint32_t block_size, uint64_t total_blocks, int read_only);

/* A power-of-two block size in DC_MIN_BLOCK_SIZE..DC_MAX_BLOCK_SIZE and at
 * least 4 blocks whose byte size fits in a uint64_t. */
int dc__store_valid_geometry(uint32_t block_size, uint64_t total_blocks);

/* Fewest blocks a store may have (header + two root pointers + data). */
#define DC__STORE_MIN_BLOCKS 4u

#endif /* DC_STORE_INTERNAL_H */
