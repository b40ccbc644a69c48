/*
 * dc_store_cache.c - a write-back LRU cache over another store.
 *
 * Entries live in one array of capacity_blocks slots and are addressed by
 * index. A chained hash map (bucket heads plus an intrusive `hnext` link)
 * finds the entry of a block id; an intrusive doubly linked list orders the
 * entries from most (head) to least (tail) recently used; evicted entries
 * go on a free list and keep their buffer. Buffers are 64-byte aligned and
 * allocated on an entry's first use, so a large, mostly empty cache costs
 * little memory.
 *
 * Reads: hits are copied out of the cache; all misses of a call are read
 * from the inner store with one batched call, straight into the caller's
 * buffer (packed at its front, then moved to their places from the back so
 * nothing is overwritten before it has moved), then copied into the cache.
 * Only the last `capacity` misses are kept, so a batch larger than the cache
 * still works. Writes update or insert dirty entries. Making room evicts
 * from the tail and first writes the dirty victims back, sorted by id, in
 * one batched call per stage buffer; if that write fails nothing is evicted
 * and the error is returned. Sync writes every dirty entry back in
 * ascending id order, in batches, then syncs the inner store. Writes of the
 * header or a root pointer write everything dirty back at once (without the
 * inner sync). Forget empties the cache, dropping dirty entries: the
 * engine forgets only when no commit is pending, so they can only be
 * blocks of work that was rolled back.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define NONE SIZE_MAX
#define WRITEBACK_BATCH 256            /* most blocks per write-back call */
#define STAGE_BYTES ((size_t)16 << 20) /* and most bytes */

typedef struct entry {
    uint64_t id;
    size_t prev, next; /* LRU list; `next` also links the free list */
    size_t hnext;      /* hash chain */
    unsigned char *data;
    int dirty;
} entry;

typedef struct dirty_ref {
    uint64_t id;
    size_t idx;
} dirty_ref;

typedef struct cache_store {
    dc_store *inner;
    uint32_t bs;
    size_t cap;
    entry *e;
    size_t *buckets;
    size_t mask;
    size_t head, tail; /* LRU list ends */
    size_t free_head;  /* evicted entries */
    size_t fresh;      /* entries [fresh, cap) have never been used */
    size_t nfree;      /* free-list length + cap - fresh */
    /* Write-back staging: dirty blocks copied together for one call. */
    size_t stage_blocks;
    unsigned char *stage;
    uint64_t *stage_ids;
    dirty_ref *order; /* cap slots: dirty entries to sort */
    /* Read scratch: positions and ids of the misses of one call. */
    size_t *miss_pos;
    uint64_t *miss_ids;
    size_t miss_cap;
} cache_store;

static size_t bucket_of(const cache_store *c, uint64_t id) {
    id ^= id >> 33; /* murmur3 finaliser: consecutive ids spread out */
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    id *= 0xc4ceb9fe1a85ec53ULL;
    id ^= id >> 33;
    return (size_t)id & c->mask;
}

static size_t find(const cache_store *c, uint64_t id) {
    size_t i = c->buckets[bucket_of(c, id)];
    while (i != NONE && c->e[i].id != id)
        i = c->e[i].hnext;
    return i;
}

static void hash_insert(cache_store *c, size_t i) {
    size_t *head = &c->buckets[bucket_of(c, c->e[i].id)];
    c->e[i].hnext = *head;
    *head = i;
}

static void hash_remove(cache_store *c, size_t i) {
    size_t *link = &c->buckets[bucket_of(c, c->e[i].id)];
    while (*link != i)
        link = &c->e[*link].hnext;
    *link = c->e[i].hnext;
}

static void lru_unlink(cache_store *c, size_t i) {
    entry *e = &c->e[i];
    if (e->prev != NONE)
        c->e[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next != NONE)
        c->e[e->next].prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_push_front(cache_store *c, size_t i) {
    c->e[i].prev = NONE;
    c->e[i].next = c->head;
    if (c->head != NONE)
        c->e[c->head].prev = i;
    c->head = i;
    if (c->tail == NONE)
        c->tail = i;
}

static void touch(cache_store *c, size_t i) {
    if (c->head != i) {
        lru_unlink(c, i);
        lru_push_front(c, i);
    }
}

/* Take a free entry for block `id` (clean, most recently used). The caller
 * has made sure one is free. */
static int acquire(cache_store *c, uint64_t id, size_t *out) {
    size_t i;
    if (c->free_head != NONE) {
        i = c->free_head;
        c->free_head = c->e[i].next;
    } else {
        i = c->fresh;
        if (i >= c->cap)
            return DC_ERR_INTERNAL;
        c->e[i].data = dc__aligned_alloc(c->bs);
        if (c->e[i].data == NULL)
            return DC_ERR_NO_MEMORY;
        c->fresh++;
    }
    c->nfree--;
    c->e[i].id = id;
    c->e[i].dirty = 0;
    hash_insert(c, i);
    lru_push_front(c, i);
    *out = i;
    return DC_OK;
}

static int cmp_ref(const void *a, const void *b) {
    uint64_t x = ((const dirty_ref *)a)->id, y = ((const dirty_ref *)b)->id;
    return x < y ? -1 : x > y;
}

/* Sort refs by id and write their blocks to the inner store in batches of
 * stage_blocks; each batch written is marked clean. */
static int write_back(cache_store *c, dirty_ref *refs, size_t n) {
    qsort(refs, n, sizeof *refs, cmp_ref);
    for (size_t k = 0; k < n;) {
        size_t m = n - k < c->stage_blocks ? n - k : c->stage_blocks;
        for (size_t j = 0; j < m; j++) {
            memcpy(c->stage + j * c->bs, c->e[refs[k + j].idx].data, c->bs);
            c->stage_ids[j] = refs[k + j].id;
        }
        int rc = dc_store_write_blocks(c->inner, c->stage_ids, m, c->stage);
        if (rc != DC_OK)
            return rc;
        for (size_t j = 0; j < m; j++)
            c->e[refs[k + j].idx].dirty = 0;
        k += m;
    }
    return DC_OK;
}

/* Free the `want` least recently used entries (want <= entries in use).
 * Dirty victims are written back first; if that fails, none is evicted. */
static int evict(cache_store *c, size_t want) {
    size_t ndirty = 0, v = c->tail;
    for (size_t n = 0; n < want && v != NONE; n++, v = c->e[v].prev)
        if (c->e[v].dirty)
            c->order[ndirty++] = (dirty_ref){c->e[v].id, v};
    int rc = write_back(c, c->order, ndirty);
    if (rc != DC_OK)
        return rc;
    for (size_t n = 0; n < want && c->tail != NONE; n++) {
        v = c->tail;
        lru_unlink(c, v);
        hash_remove(c, v);
        c->e[v].next = c->free_head;
        c->free_head = v;
        c->nfree++;
    }
    return DC_OK;
}

static int ensure_scratch(cache_store *c, size_t count) {
    if (count <= c->miss_cap)
        return DC_OK;
    size_t *pos = realloc(c->miss_pos, count * sizeof *pos);
    if (pos == NULL)
        return DC_ERR_NO_MEMORY;
    c->miss_pos = pos;
    uint64_t *ids = realloc(c->miss_ids, count * sizeof *ids);
    if (ids == NULL)
        return DC_ERR_NO_MEMORY;
    c->miss_ids = ids;
    c->miss_cap = count;
    return DC_OK;
}

/* Keep the (last `cap`) misses of a read; their data is already in buf. */
static void insert_misses(cache_store *c, size_t nmiss,
                          const unsigned char *buf) {
    size_t first = nmiss > c->cap ? nmiss - c->cap : 0;
    size_t need = nmiss - first;
    /* A failed write-back leaves its blocks cached and dirty (sync will
     * report it); the read itself has succeeded, so just cache nothing. */
    if (need > c->nfree && evict(c, need - c->nfree) != DC_OK)
        return;
    for (size_t k = first; k < nmiss; k++) {
        size_t h = find(c, c->miss_ids[k]); /* a repeated id */
        if (h == NONE && acquire(c, c->miss_ids[k], &h) != DC_OK)
            return;
        touch(c, h);
        memcpy(c->e[h].data, buf + c->miss_pos[k] * c->bs, c->bs);
    }
}

static int cache_read(void *impl, const uint64_t *ids, size_t count,
                      unsigned char *buf) {
    cache_store *c = impl;
    const size_t bs = c->bs;
    int rc = ensure_scratch(c, count);
    if (rc != DC_OK)
        return rc;
    size_t nmiss = 0;
    for (size_t i = 0; i < count; i++) {
        if (find(c, ids[i]) == NONE) {
            c->miss_pos[nmiss] = i;
            c->miss_ids[nmiss++] = ids[i];
        }
    }
    if (nmiss > 0) {
        /* Miss k lands in slot k <= miss_pos[k]; moving from the last one
         * down never overwrites a block that has not moved yet. */
        rc = dc_store_read_blocks(c->inner, c->miss_ids, nmiss, buf);
        if (rc != DC_OK)
            return rc;
        for (size_t k = nmiss; k-- > 0;)
            if (c->miss_pos[k] != k)
                memcpy(buf + c->miss_pos[k] * bs, buf + k * bs, bs);
    }
    /* Nothing has changed the cache since the lookups: hits still hit. */
    for (size_t i = 0, k = 0; i < count; i++) {
        if (k < nmiss && c->miss_pos[k] == i) {
            k++;
            continue;
        }
        size_t h = find(c, ids[i]);
        memcpy(buf + i * bs, c->e[h].data, bs);
        touch(c, h);
    }
    if (nmiss > 0)
        insert_misses(c, nmiss, buf);
    return DC_OK;
}

/* Write dirty entries back (ascending ids, batched): those of data blocks
 * first, then the header and root pointers, which name what is before them. */
static int write_back_all(cache_store *c) {
    for (int metadata = 0; metadata < 2; metadata++) {
        size_t n = 0;
        for (size_t i = 0; i < c->fresh; i++) /* free entries are clean */
            if (c->e[i].dirty && (c->e[i].id < DC_FIRST_DATA_BLOCK) == metadata)
                c->order[n++] = (dirty_ref){c->e[i].id, i};
        int rc = write_back(c, c->order, n);
        if (rc != DC_OK)
            return rc;
    }
    return DC_OK;
}

static int cache_write(void *impl, const uint64_t *ids, size_t count,
                       const unsigned char *buf) {
    cache_store *c = impl;
    /* Misses expected in the rest of the batch: evicting that many at once
     * (up to a stage) batches the write-backs. */
    size_t misses_left = 0;
    for (size_t i = 0; i < count; i++)
        misses_left += find(c, ids[i]) == NONE;
    for (size_t i = 0; i < count; i++) {
        size_t h = find(c, ids[i]);
        if (h == NONE) {
            if (c->nfree == 0) {
                size_t want = misses_left < c->stage_blocks ? misses_left
                                                            : c->stage_blocks;
                int rc = evict(c, want > 0 ? want : 1);
                if (rc != DC_OK)
                    return rc;
            }
            int rc = acquire(c, ids[i], &h);
            if (rc != DC_OK)
                return rc;
            if (misses_left > 0)
                misses_left--;
        } else {
            touch(c, h);
        }
        memcpy(c->e[h].data, buf + i * c->bs, c->bs);
        c->e[h].dirty = 1;
    }
    /* The header and root pointers name a commit: they go to the inner
     * store at once (after everything written before them), so a store that
     * other clients read (an object store) publishes the commit now rather
     * than at the next sync. */
    for (size_t i = 0; i < count; i++)
        if (ids[i] < DC_FIRST_DATA_BLOCK)
            return write_back_all(c);
    return DC_OK;
}

static int cache_sync(void *impl) {
    cache_store *c = impl;
    int rc = write_back_all(c);
    return rc == DC_OK ? dc_store_sync(c->inner) : rc;
}

/* Empties the cache, dirty entries too (the entries keep their buffers),
 * then lets the inner store forget. */
static int cache_forget(void *impl) {
    cache_store *c = impl;
    for (size_t v = c->head; v != NONE; v = c->e[v].next) {
        hash_remove(c, v);
        c->e[v].dirty = 0;
    }
    if (c->tail != NONE) { /* the whole LRU list joins the free list */
        c->e[c->tail].next = c->free_head;
        c->free_head = c->head;
    }
    c->nfree = c->cap;
    c->head = c->tail = NONE;
    return dc__store_forget(c->inner);
}

/* Frees the cache and the inner store; dirty blocks are dropped. */
static void cache_close(void *impl) {
    cache_store *c = impl;
    if (c == NULL)
        return;
    if (c->e != NULL)
        for (size_t i = 0; i < c->cap; i++)
            dc__aligned_free(c->e[i].data);
    free(c->e);
    free(c->buckets);
    dc__aligned_free(c->stage);
    free(c->stage_ids);
    free(c->order);
    free(c->miss_pos);
    free(c->miss_ids);
    dc_store_free(c->inner);
    free(c);
}

static const dc__store_ops cache_ops = {cache_read, cache_write, cache_sync,
                                        cache_close, cache_forget};

int dc_store_new_cached(dc_store **out, dc_store *inner,
                        size_t capacity_blocks) {
    /* The cache owns `inner` from here on, whatever happens. */
    if (out == NULL) {
        dc_store_free(inner);
        return DC_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (inner == NULL || capacity_blocks == 0) {
        dc_store_free(inner);
        return DC_ERR_INVALID_ARGUMENT;
    }
    const uint32_t bs = inner->block_size;
    /* More entries than blocks would never be used. */
    if ((uint64_t)capacity_blocks > inner->total_blocks)
        capacity_blocks = (size_t)inner->total_blocks;
    if (capacity_blocks > SIZE_MAX / 2 / bs) {
        dc_store_free(inner);
        return DC_ERR_NO_MEMORY;
    }
    cache_store *c = calloc(1, sizeof *c);
    if (c == NULL) {
        dc_store_free(inner);
        return DC_ERR_NO_MEMORY;
    }
    c->inner = inner;
    c->bs = bs;
    c->cap = capacity_blocks;
    c->head = c->tail = c->free_head = NONE;
    c->nfree = c->cap;
    size_t nbuckets = 16;
    while (nbuckets < c->cap)
        nbuckets *= 2;
    c->mask = nbuckets - 1;
    c->stage_blocks = STAGE_BYTES / bs;
    if (c->stage_blocks > WRITEBACK_BATCH)
        c->stage_blocks = WRITEBACK_BATCH;
    if (c->stage_blocks > c->cap)
        c->stage_blocks = c->cap;
    if (c->stage_blocks == 0)
        c->stage_blocks = 1;
    c->e = calloc(c->cap, sizeof *c->e);
    c->buckets = malloc(nbuckets * sizeof *c->buckets);
    c->stage = dc__aligned_alloc(c->stage_blocks * bs);
    c->stage_ids = malloc(c->stage_blocks * sizeof *c->stage_ids);
    c->order = malloc(c->cap * sizeof *c->order);
    if (c->e == NULL || c->buckets == NULL || c->stage == NULL ||
        c->stage_ids == NULL || c->order == NULL) {
        cache_close(c);
        return DC_ERR_NO_MEMORY;
    }
    for (size_t b = 0; b < nbuckets; b++)
        c->buckets[b] = NONE;
    int rc = dc__store_new(out, &cache_ops, c, bs, inner->total_blocks,
                           inner->read_only);
    if (rc != DC_OK)
        cache_close(c);
    return rc;
}
