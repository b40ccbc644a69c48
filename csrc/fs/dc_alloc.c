/*
 * dc_alloc.c - bitmap block allocator with deferred frees.
 *
 * `used` has one bit per block (deferred blocks stay set until the commit is
 * durable); `deferred` marks blocks waiting for that, and `pending` lists
 * them so commit_durable costs O(deferred), not O(total). pending[0,
 * nawaiting) belong to a commit that is written but not yet durable, the
 * rest to the commit being built. `fresh` marks blocks allocated since the
 * last commit (listed in `fresh_list` when tracking is on), which nothing
 * committed refers to.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct dc_allocator {
    uint64_t total;
    uint64_t nwords;
    uint64_t *used;
    uint64_t *deferred;
    uint64_t free_count;
    uint64_t cursor; /* next-fit start */
    uint64_t *pending;
    size_t npending;
    size_t pending_cap;
    size_t nawaiting;
    uint64_t *fresh;
    uint64_t *fresh_list;
    size_t nfresh;
    size_t fresh_cap;
};

#define WORD_BITS 64

static int test_bit(const uint64_t *map, uint64_t i) {
    return (int)((map[i / WORD_BITS] >> (i % WORD_BITS)) & 1u);
}
static void set_bit(uint64_t *map, uint64_t i) {
    map[i / WORD_BITS] |= (uint64_t)1 << (i % WORD_BITS);
}
static void clear_bit(uint64_t *map, uint64_t i) {
    map[i / WORD_BITS] &= ~((uint64_t)1 << (i % WORD_BITS));
}

uint64_t dc_first_data_block(void) { return DC_FIRST_DATA_BLOCK; }

/* Bits past `total` in the last word are permanently set, as are the
 * reserved blocks, so searches never return them. */
static void reset_maps(dc_allocator *a) {
    memset(a->used, 0, a->nwords * sizeof(uint64_t));
    memset(a->deferred, 0, a->nwords * sizeof(uint64_t));
    memset(a->fresh, 0, a->nwords * sizeof(uint64_t));
    a->nfresh = 0;
    a->nawaiting = 0;
    for (uint64_t i = 0; i < DC_FIRST_DATA_BLOCK; i++)
        set_bit(a->used, i);
    for (uint64_t i = a->total; i < a->nwords * WORD_BITS; i++)
        set_bit(a->used, i);
    a->free_count = a->total - DC_FIRST_DATA_BLOCK;
    a->cursor = DC_FIRST_DATA_BLOCK;
    a->npending = 0;
}

int dc_allocator_new(dc_allocator **out, uint64_t total_blocks) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (total_blocks <= DC_FIRST_DATA_BLOCK ||
        total_blocks > UINT64_MAX - WORD_BITS)
        return DC_ERR_INVALID_ARGUMENT;
    dc_allocator *a = calloc(1, sizeof *a);
    if (a == NULL)
        return DC_ERR_NO_MEMORY;
    a->total = total_blocks;
    a->nwords = (total_blocks + WORD_BITS - 1) / WORD_BITS;
    if (a->nwords > SIZE_MAX / sizeof(uint64_t)) {
        free(a);
        return DC_ERR_NO_MEMORY;
    }
    a->used = malloc(a->nwords * sizeof(uint64_t));
    a->deferred = malloc(a->nwords * sizeof(uint64_t));
    a->fresh = malloc(a->nwords * sizeof(uint64_t));
    if (a->used == NULL || a->deferred == NULL || a->fresh == NULL) {
        dc_allocator_free(a);
        return DC_ERR_NO_MEMORY;
    }
    reset_maps(a);
    *out = a;
    return DC_OK;
}

void dc_allocator_free(dc_allocator *alloc) {
    if (alloc == NULL)
        return;
    free(alloc->used);
    free(alloc->deferred);
    free(alloc->pending);
    free(alloc->fresh);
    free(alloc->fresh_list);
    free(alloc);
}

static int data_block(const dc_allocator *a, uint64_t block) {
    return block >= DC_FIRST_DATA_BLOCK && block < a->total;
}

/* Remember blocks [first, first+count) as fresh (allocated since the last
 * commit). The list only grows during a transaction. */
static int note_fresh(dc_allocator *a, uint64_t first, uint64_t count) {
    if (a->nfresh + count > a->fresh_cap) {
        size_t cap = a->fresh_cap ? a->fresh_cap : 256;
        while (cap < a->nfresh + count)
            cap *= 2;
        uint64_t *list = realloc(a->fresh_list, cap * sizeof *list);
        if (list == NULL)
            return DC_ERR_NO_MEMORY;
        a->fresh_list = list;
        a->fresh_cap = cap;
    }
    for (uint64_t i = 0; i < count; i++) {
        set_bit(a->fresh, first + i);
        a->fresh_list[a->nfresh++] = first + i;
    }
    return DC_OK;
}

/* First clear bit at or after `from` (wrapping once), or UINT64_MAX. */
static uint64_t find_free(const dc_allocator *a, uint64_t from) {
    for (uint64_t pass = 0, w = from / WORD_BITS; pass <= a->nwords;
         pass++, w = (w + 1) % a->nwords) {
        uint64_t word = ~a->used[w];
        if (pass == 0)
            word &= ~(uint64_t)0 << (from % WORD_BITS);
        if (word != 0)
            return w * WORD_BITS + (uint64_t)__builtin_ctzll(word);
    }
    return UINT64_MAX;
}

int dc_allocator_alloc(dc_allocator *alloc, uint64_t *out_block) {
    if (alloc == NULL || out_block == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (alloc->free_count == 0)
        return DC_ERR_NO_SPACE;
    uint64_t b = find_free(alloc, alloc->cursor);
    if (b == UINT64_MAX)
        return DC_ERR_INTERNAL; /* free_count says otherwise */
    int rc = note_fresh(alloc, b, 1);
    if (rc != DC_OK)
        return rc;
    set_bit(alloc->used, b);
    alloc->free_count--;
    alloc->cursor = b + 1 < alloc->total ? b + 1 : DC_FIRST_DATA_BLOCK;
    *out_block = b;
    return DC_OK;
}

/* Length of the free run starting at `start`, capped at `want`. */
static uint64_t free_run(const dc_allocator *a, uint64_t start, uint64_t want) {
    uint64_t n = 0;
    while (n < want && start + n < a->total && !test_bit(a->used, start + n))
        n++;
    return n;
}

static int find_run(const dc_allocator *a, uint64_t from, uint64_t count,
                    uint64_t *out) {
    /* Scan [from, total) then [first, from); runs never wrap the end. */
    for (int pass = 0; pass < 2; pass++) {
        uint64_t pos = pass == 0 ? from : DC_FIRST_DATA_BLOCK;
        uint64_t end = pass == 0 ? a->total : from;
        while (pos < end) {
            uint64_t start = find_free(a, pos);
            if (start == UINT64_MAX || start < pos || start >= end)
                break;
            uint64_t n = free_run(a, start, count);
            if (n == count) {
                *out = start;
                return 1;
            }
            pos = start + n + 1;
        }
    }
    return 0;
}

int dc_allocator_alloc_run(dc_allocator *alloc, uint64_t *out_first,
                           uint64_t count) {
    if (alloc == NULL || out_first == NULL || count == 0)
        return DC_ERR_INVALID_ARGUMENT;
    if (count > alloc->free_count)
        return DC_ERR_NO_SPACE;
    uint64_t start;
    if (!find_run(alloc, alloc->cursor, count, &start))
        return DC_ERR_NO_SPACE;
    int rc = note_fresh(alloc, start, count);
    if (rc != DC_OK)
        return rc;
    for (uint64_t i = 0; i < count; i++)
        set_bit(alloc->used, start + i);
    alloc->free_count -= count;
    uint64_t next = start + count;
    alloc->cursor = next < alloc->total ? next : DC_FIRST_DATA_BLOCK;
    *out_first = start;
    return DC_OK;
}

static int releasable(const dc_allocator *a, uint64_t block) {
    return a != NULL && data_block(a, block) && test_bit(a->used, block) &&
           !test_bit(a->deferred, block);
}

int dc_allocator_release(dc_allocator *alloc, uint64_t block) {
    if (!releasable(alloc, block))
        return DC_ERR_INVALID_ARGUMENT;
    clear_bit(alloc->used, block);
    clear_bit(alloc->fresh, block); /* its fresh_list entry goes stale */
    alloc->free_count++;
    return DC_OK;
}

int dc_allocator_release_deferred(dc_allocator *alloc, uint64_t block) {
    if (!releasable(alloc, block))
        return DC_ERR_INVALID_ARGUMENT;
    if (alloc->npending == alloc->pending_cap) {
        size_t cap = alloc->pending_cap ? alloc->pending_cap * 2 : 64;
        uint64_t *p = realloc(alloc->pending, cap * sizeof *p);
        if (p == NULL)
            return DC_ERR_NO_MEMORY;
        alloc->pending = p;
        alloc->pending_cap = cap;
    }
    alloc->pending[alloc->npending++] = block;
    set_bit(alloc->deferred, block);
    return DC_OK;
}

void dc_allocator_commit_durable(dc_allocator *alloc) {
    if (alloc == NULL)
        return;
    dc__allocator_txn_committed(alloc);
    dc__allocator_durable(alloc);
}

void dc_allocator_abort_deferred(dc_allocator *alloc) {
    if (alloc == NULL)
        return;
    for (size_t i = alloc->nawaiting; i < alloc->npending; i++)
        clear_bit(alloc->deferred, alloc->pending[i]);
    alloc->npending = alloc->nawaiting;
}

int dc__allocator_discard(dc_allocator *alloc, uint64_t block) {
    if (alloc != NULL && data_block(alloc, block) &&
        test_bit(alloc->fresh, block))
        return dc_allocator_release(alloc, block);
    return dc_allocator_release_deferred(alloc, block);
}

static void forget_fresh(dc_allocator *a) {
    for (size_t i = 0; i < a->nfresh; i++)
        clear_bit(a->fresh, a->fresh_list[i]);
    a->nfresh = 0;
}

void dc__allocator_txn_committed(dc_allocator *alloc) {
    forget_fresh(alloc);
    alloc->nawaiting = alloc->npending;
}

void dc__allocator_durable(dc_allocator *alloc) {
    size_t n = alloc->nawaiting;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = alloc->pending[i];
        clear_bit(alloc->deferred, b);
        clear_bit(alloc->used, b);
    }
    alloc->free_count += n;
    if (n > 0)
        memmove(alloc->pending, alloc->pending + n,
                (alloc->npending - n) * sizeof *alloc->pending);
    alloc->npending -= n;
    alloc->nawaiting = 0;
}

void dc__allocator_txn_abort(dc_allocator *alloc) {
    dc_allocator_abort_deferred(alloc);
    for (size_t i = 0; i < alloc->nfresh; i++) {
        uint64_t b = alloc->fresh_list[i];
        if (test_bit(alloc->fresh, b)) { /* not released since */
            clear_bit(alloc->fresh, b);
            clear_bit(alloc->used, b);
            alloc->free_count++;
        }
    }
    alloc->nfresh = 0;
}

int dc_allocator_mark_used(dc_allocator *alloc, uint64_t block) {
    if (alloc == NULL || !data_block(alloc, block))
        return DC_ERR_INVALID_ARGUMENT;
    if (test_bit(alloc->used, block))
        return DC_ERR_ALREADY_EXISTS;
    set_bit(alloc->used, block);
    alloc->free_count--;
    return DC_OK;
}

int dc_allocator_rebuild(dc_allocator *alloc, const uint64_t *blocks,
                         size_t count) {
    if (alloc == NULL || (blocks == NULL && count > 0))
        return DC_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++)
        if (!data_block(alloc, blocks[i]))
            return DC_ERR_INVALID_ARGUMENT;
    reset_maps(alloc);
    for (size_t i = 0; i < count; i++) {
        if (!test_bit(alloc->used, blocks[i])) {
            set_bit(alloc->used, blocks[i]);
            alloc->free_count--;
        }
    }
    return DC_OK;
}

int dc_allocator_is_used(const dc_allocator *alloc, uint64_t block) {
    if (alloc == NULL || block >= alloc->total)
        return 0;
    return test_bit(alloc->used, block);
}

uint64_t dc_allocator_total_blocks(const dc_allocator *alloc) {
    return alloc ? alloc->total : 0;
}

uint64_t dc_allocator_free_blocks(const dc_allocator *alloc) {
    return alloc ? alloc->free_count : 0;
}

uint64_t dc_allocator_deferred_blocks(const dc_allocator *alloc) {
    return alloc ? alloc->npending : 0;
}
