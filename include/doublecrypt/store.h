/*
 * doublecrypt/store.h - block stores: where sealed blocks live.
 *
 * A store is an array of total_blocks blocks of block_size bytes that only
 * ever sees ciphertext. Built-in stores: memory, image file, raw block
 * device; any other backend (network, object store, a Swift or Kotlin class)
 * plugs in through the versioned dc_store_backend vtable. A write-back LRU
 * cache can wrap any store.
 *
 * All I/O is batched: a call names many block ids at once, so backends can
 * coalesce contiguous runs (file, device) or pipeline requests (network).
 *
 * Thread safety: a dc_store serialises its own calls with an internal lock,
 * so it may be shared between threads; custom backends are called under that
 * lock, one call at a time.
 */
#ifndef DOUBLECRYPT_STORE_H
#define DOUBLECRYPT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_STORE_BACKEND_VERSION 2

typedef struct dc_store dc_store;

/**
 * Progress of a long operation: `done` of `total` units so far. Return 0 to
 * continue, non-zero to cancel (each function says what a cancel gives).
 */
typedef int (*dc_progress_fn)(void *payload, uint64_t done, uint64_t total);

/**
 * A custom backend. Every callback gets the `payload` given to
 * dc_store_new_custom as its first argument and returns DC_OK or a negative
 * DC_ERR_* (DC_ERR_IO for transport or device failures; any other value
 * counts as DC_ERR_IO). Ids passed to read_blocks/write_blocks are always
 * < total_blocks and a batch never names the same id twice (such batches
 * are refused with DC_ERR_INVALID_ARGUMENT before they reach the backend).
 */
typedef struct dc_store_backend {
    /* DC_STORE_BACKEND_VERSION */
    unsigned int version;
    /* Geometry of the backing store. */
    int (*info)(void *payload, uint32_t *block_size, uint64_t *total_blocks);
    /* Read blocks ids[0..count) into buf + i * block_size. */
    int (*read_blocks)(void *payload, const uint64_t *ids, size_t count,
                       unsigned char *buf);
    /* Write blocks ids[0..count) from buf + i * block_size. */
    int (*write_blocks)(void *payload, const uint64_t *ids, size_t count,
                        const unsigned char *buf);
    /* Make every completed write durable. */
    int (*sync)(void *payload);
    /* Called once by dc_store_free; may be NULL. */
    void (*close)(void *payload);
    /* Version 2 and later. Drop anything kept in memory (read-ahead,
     * caches), so that the next reads see what other clients of a shared
     * store wrote; dc_fs_refresh calls it. May be NULL. A version 1 struct
     * ends before this field and is still accepted. */
    int (*forget)(void *payload);
} dc_store_backend;

/**
 * A store in memory; never-written blocks read as zeros.
 * DC_ERR_INVALID_ARGUMENT for a block size outside 4 KiB..1 MiB (power of
 * two) or total_blocks < 4, DC_ERR_NO_MEMORY.
 */
DC_API int dc_store_new_memory(dc_store **out, uint32_t block_size,
                               uint64_t total_blocks);

/**
 * Create an image file of total_blocks blocks at `path` (it must not exist)
 * and fill it with random bytes so free space looks like ciphertext.
 * `progress` (may be NULL) is called with blocks written so far; a non-zero
 * return cancels, removes the file and gives DC_ERR_CANCELLED.
 * DC_ERR_ALREADY_EXISTS, DC_ERR_NO_SPACE (disk full: the partial file is
 * removed), DC_ERR_IO.
 */
DC_API int dc_store_create_file(dc_store **out, const char *path,
                                uint32_t block_size, uint64_t total_blocks,
                                dc_progress_fn progress, void *payload);

/**
 * Open an existing image file. total_blocks is the file size divided by
 * block_size; a size that is not a whole number of blocks, or fewer than 4
 * blocks, is DC_ERR_CORRUPT. `read_only` opens it read-only (writes then fail
 * with DC_ERR_READ_ONLY; sync does nothing). DC_ERR_NOT_FOUND,
 * DC_ERR_READ_ONLY (no write permission), DC_ERR_NOT_A_FILE (a directory),
 * DC_ERR_NAME_TOO_LONG, DC_ERR_INVALID_ARGUMENT (bad block size, not a
 * regular file), DC_ERR_IO.
 */
DC_API int dc_store_open_file(dc_store **out, const char *path,
                              uint32_t block_size, int read_only);

/**
 * Open a raw block device (or any pre-sized file) as a store. The size comes
 * from lseek(SEEK_END), since stat reports 0 for devices; a trailing partial
 * block is ignored. Same errors as dc_store_open_file.
 */
DC_API int dc_store_open_device(dc_store **out, const char *path,
                                uint32_t block_size, int read_only);

/**
 * A store over a custom backend. `backend` is copied; `payload` is passed to
 * every callback. The geometry is read once through backend->info.
 * DC_ERR_UNSUPPORTED for an unknown backend version, DC_ERR_INVALID_ARGUMENT
 * for missing callbacks or bad geometry.
 */
DC_API int dc_store_new_custom(dc_store **out, const dc_store_backend *backend,
                               void *payload);

/**
 * A write-back LRU cache of `capacity_blocks` blocks over `inner`, which it
 * takes over (freed with the cache, also when this call fails). Reads are
 * served from the cache; writes are kept dirty and written back in block
 * order, in batches, on dc_store_sync or when a dirty block is evicted.
 * Freeing the cache drops dirty blocks that were never synced. A capacity of
 * 0 is DC_ERR_INVALID_ARGUMENT; one above total_blocks is cut to it.
 */
DC_API int dc_store_new_cached(dc_store **out, dc_store *inner,
                               size_t capacity_blocks);

/** Close the store (no implicit sync) and free it. NULL is a no-op. */
DC_API void dc_store_free(dc_store *store);

DC_API uint32_t dc_store_block_size(const dc_store *store);
DC_API uint64_t dc_store_total_blocks(const dc_store *store);

/**
 * Read `count` blocks into buf (count * block_size bytes). Ids out of range
 * give DC_ERR_INVALID_ARGUMENT and nothing is read.
 */
DC_API int dc_store_read_blocks(dc_store *store, const uint64_t *ids,
                                size_t count, unsigned char *buf);

/** Write `count` blocks from buf. DC_ERR_NO_SPACE when the device is full. */
DC_API int dc_store_write_blocks(dc_store *store, const uint64_t *ids,
                                 size_t count, const unsigned char *buf);

/** Make every completed write durable (fsync for files and devices). */
DC_API int dc_store_sync(dc_store *store);

/** Counters since creation: blocks read and written through this handle. */
DC_API uint64_t dc_store_blocks_read(const dc_store *store);
DC_API uint64_t dc_store_blocks_written(const dc_store *store);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_STORE_H */
