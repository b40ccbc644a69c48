/*
 * doublecrypt/alloc.h - the block allocator.
 *
 * A bitmap over total_blocks; blocks 0-2 (header and the two root pointers)
 * are reserved and never handed out. Blocks are allocated singly or as
 * contiguous runs, next-fit from a moving cursor so new data tends to be
 * laid out sequentially.
 *
 * Deferred frees make copy-on-write safe: a block freed while a commit is
 * being built still belongs to the last committed tree, so it stays in use
 * until the caller reports that the next commit is durable
 * (dc_allocator_commit_durable); an aborted commit forgets the deferred
 * frees instead (dc_allocator_abort_deferred).
 *
 * Thread safety: none; the owner (the filesystem handle) serialises calls.
 */
#ifndef DOUBLECRYPT_ALLOC_H
#define DOUBLECRYPT_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
/* Blocks 0..DC_FIRST_DATA_BLOCK-1 are the header and the root pointers. */
#define DC_FIRST_DATA_BLOCK 3

typedef struct dc_allocator dc_allocator;

DC_API uint64_t dc_first_data_block(void);

/**
 * An allocator over `total_blocks` blocks with every data block free.
 * DC_ERR_INVALID_ARGUMENT when total_blocks <= DC_FIRST_DATA_BLOCK.
 */
DC_API int dc_allocator_new(dc_allocator **out, uint64_t total_blocks);
/** NULL is a no-op. */
DC_API void dc_allocator_free(dc_allocator *alloc);

/** Allocate one block. DC_ERR_NO_SPACE when none is free. */
DC_API int dc_allocator_alloc(dc_allocator *alloc, uint64_t *out_block);

/**
 * Allocate `count` contiguous blocks; the first is stored in *out_first.
 * DC_ERR_NO_SPACE when no such run exists, DC_ERR_INVALID_ARGUMENT for 0.
 */
DC_API int dc_allocator_alloc_run(dc_allocator *alloc, uint64_t *out_first,
                                  uint64_t count);

/**
 * Mark an allocated block free now (for blocks no committed tree refers to).
 * DC_ERR_INVALID_ARGUMENT for reserved or out-of-range ids, or a block that
 * is not allocated or already deferred.
 */
DC_API int dc_allocator_release(dc_allocator *alloc, uint64_t block);

/**
 * Free an allocated block once the next commit is durable. Same errors as
 * dc_allocator_release.
 */
DC_API int dc_allocator_release_deferred(dc_allocator *alloc, uint64_t block);

/** The commit is durable: every deferred block becomes free. */
DC_API void dc_allocator_commit_durable(dc_allocator *alloc);

/** The commit was abandoned: deferred blocks stay allocated. */
DC_API void dc_allocator_abort_deferred(dc_allocator *alloc);

/**
 * Mark a free block allocated (rebuilding from a tree walk).
 * DC_ERR_ALREADY_EXISTS when it already is, DC_ERR_INVALID_ARGUMENT when out
 * of range or reserved.
 */
DC_API int dc_allocator_mark_used(dc_allocator *alloc, uint64_t block);

/**
 * Forget all state and mark exactly `blocks[0..count)` allocated (plus the
 * reserved blocks). Duplicates are tolerated; out-of-range or reserved ids
 * give DC_ERR_INVALID_ARGUMENT and leave the allocator unchanged.
 */
DC_API int dc_allocator_rebuild(dc_allocator *alloc, const uint64_t *blocks,
                                size_t count);

/** 1 if the block is allocated (deferred blocks count), 0 if free or out of
 * range. */
DC_API int dc_allocator_is_used(const dc_allocator *alloc, uint64_t block);

DC_API uint64_t dc_allocator_total_blocks(const dc_allocator *alloc);
/** Blocks allocatable right now. */
DC_API uint64_t dc_allocator_free_blocks(const dc_allocator *alloc);
/** Blocks waiting for a durable commit. */
DC_API uint64_t dc_allocator_deferred_blocks(const dc_allocator *alloc);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_ALLOC_H */
