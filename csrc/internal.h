/*
 * internal.h - declarations shared between the engine's C files.
 * Nothing here is part of the ABI; names use the dc__ prefix and are hidden.
 */
#ifndef DC_INTERNAL_H
#define DC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "doublecrypt.h"

/* Aligned, zeroed allocation for block buffers (memcpy is ~4x faster into
 * 64-byte aligned destinations on the development machines). */
#define DC__BUFFER_ALIGN 64
void *dc__aligned_alloc(size_t size);
void dc__aligned_free(void *ptr);

static inline void dc__store_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t dc__load_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void dc__store_u64le(unsigned char *p, uint64_t v) {
    dc__store_u32le(p, (uint32_t)v);
    dc__store_u32le(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t dc__load_u64le(const unsigned char *p) {
    return (uint64_t)dc__load_u32le(p) | (uint64_t)dc__load_u32le(p + 4) << 32;
}

/* Fast CSPRNG (crypto/dc_random.c): a ChaCha20 keystream seeded from the
 * system RNG, reseeded after fork. Thread-safe and lock-free. */
void dc__random_fill(unsigned char *buf, size_t len);

/* A small fixed thread pool (common/dc_pool.c). dc__pool_run calls
 * fn(ctx, i) for every i in [0, count) on the pool's workers and the calling
 * thread, and returns when all calls have returned. A NULL pool, or one busy
 * with another caller's batch, runs everything on the calling thread. */
typedef struct dc__pool dc__pool;
typedef void (*dc__pool_fn)(void *ctx, size_t index);
int dc__pool_new(dc__pool **out, unsigned int threads);
void dc__pool_free(dc__pool *pool);
void dc__pool_run(dc__pool *pool, size_t count, dc__pool_fn fn, void *ctx);
unsigned int dc__online_cpus(void);
/* The codec's pool, for engine jobs that seal or open as they go. */
dc__pool *dc__codec_pool(const dc_codec *codec);

/* Drop a store's cached blocks, unwritten ones too, if it keeps any: only
 * with no commit pending (store/dc_store.c). */
int dc__store_forget(dc_store *store);

/* Allocator stages for the copy-on-write commit protocol (fs/dc_alloc.c).
 * A block allocated since the last commit is "fresh": discarding it frees it
 * at once. Any other discarded block is deferred: it stays allocated through
 * the commit ("building"), then until that commit is durable ("awaiting").
 *   discard        fresh -> free now, else -> building
 *   txn_committed  fresh blocks become ordinary; building -> awaiting
 *   durable        awaiting -> free
 *   txn_abort      fresh -> free; building frees are forgotten */
int dc__allocator_discard(dc_allocator *alloc, uint64_t block);
void dc__allocator_txn_committed(dc_allocator *alloc);
void dc__allocator_durable(dc_allocator *alloc);
void dc__allocator_txn_abort(dc_allocator *alloc);

#endif /* DC_INTERNAL_H */
