/*
 * store_internal.h - the private vtable behind dc_store. Every store kind
 * implements these operations; dc_store.c checks arguments, takes the lock
 * and keeps the counters, so implementations only move bytes.
 */
#ifndef DC_STORE_INTERNAL_H
#define DC_STORE_INTERNAL_H

#include <pthread.h>

#include "internal.h"

typedef struct dc__store_ops {
    int (*read)(void *impl, const uint64_t *ids, size_t count,
                unsigned char *buf);
    int (*write)(void *impl, const uint64_t *ids, size_t count,
                 const unsigned char *buf);
    int (*sync)(void *impl);
    void (*close)(void *impl);
} dc__store_ops;

struct dc_store {
    const dc__store_ops *ops;
    void *impl;
    uint32_t block_size;
    uint64_t total_blocks;
    int read_only;
    pthread_mutex_t lock;
    uint64_t blocks_read;
    uint64_t blocks_written;
};

/* Wrap an implementation (closed with ops->close on failure). */
int dc__store_wrap(dc_store **out, const dc__store_ops *ops, void *impl,
                   uint32_t block_size, uint64_t total_blocks, int read_only);
int dc__valid_geometry(uint32_t block_size, uint64_t total_blocks);
/* An errno value as a status. */
int dc__errno_status(int err);

#endif /* DC_STORE_INTERNAL_H */
