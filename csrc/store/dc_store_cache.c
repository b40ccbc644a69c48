/*
 * dc_store_cache.c - a write-back LRU cache over another store.
 *
 * Entries live in a fixed array with a doubly linked LRU list (by index) and
 * an open-addressing hash from block id to entry. Reads fetch all misses of
 * a batch with one inner read; writes only mark entries dirty. Evicting dirty
 * entries writes them back, batched; sync writes every dirty entry back in
 * ascending block order, then syncs the inner store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define NONE SIZE_MAX
#define SYNC_BATCH 256

typedef struct entry {
    uint64_t id;
    size_t prev, next; /* LRU list: head is most recent */
    int used, dirty;
    unsigned char *data;
} entry;

typedef struct cache_store {
    dc_store *inner;
    uint32_t bs;
    size_t cap;
    entry *e;
    size_t head, tail, nfree;
    size_t *free_list;
    size_t *table; /* hash slots: entry index or NONE; tombstone = NONE-1 */
    size_t table_size;
    /* Staging for batched inner I/O. */
    unsigned char *stage;
    uint64_t *stage_ids;
    size_t *stage_idx;
} cache_store;

#define TOMB (SIZE_MAX - 1)

static size_t hash(uint64_t id, size_t size) {
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & (size - 1);
}

static size_t find(const cache_store *c, uint64_t id) {
    for (size_t h = hash(id, c->table_size);;
         h = (h + 1) & (c->table_size - 1)) {
        size_t i = c->table[h];
        if (i == NONE)
            return NONE;
        if (i != TOMB && c->e[i].id == id)
            return i;
    }
}

static void table_insert(cache_store *c, uint64_t id, size_t idx) {
    size_t h = hash(id, c->table_size);
    while (c->table[h] != NONE && c->table[h] != TOMB)
        h = (h + 1) & (c->table_size - 1);
    c->table[h] = idx;
}

static void table_remove(cache_store *c, uint64_t id) {
    for (size_t h = hash(id, c->table_size);;
         h = (h + 1) & (c->table_size - 1)) {
        size_t i = c->table[h];
        if (i == NONE)
            return;
        if (i != TOMB && c->e[i].id == id) {
            c->table[h] = TOMB;
            return;
        }
    }
}

static void unlink_entry(cache_store *c, size_t i) {
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

static void push_front(cache_store *c, size_t i) {
    c->e[i].prev = NONE;
    c->e[i].next = c->head;
    if (c->head != NONE)
        c->e[c->head].prev = i;
    c->head = i;
    if (c->tail == NONE)
        c->tail = i;
}

static void touch(cache_store *c, size_t i) {
    unlink_entry(c, i);
    push_front(c, i);
}

/* Rebuild the hash table when tombstones pile up. */
static void rehash(cache_store *c) {
    for (size_t h = 0; h < c->table_size; h++)
        c->table[h] = NONE;
    for (size_t i = 0; i < c->cap; i++)
        if (c->e[i].used)
            table_insert(c, c->e[i].id, i);
}

/* Make `need` entries free, writing dirty victims back in one batch. */
static int make_room(cache_store *c, size_t need) {
    size_t nwb = 0;
    while (c->nfree < need && c->tail != NONE) {
        size_t v = c->tail;
        entry *e = &c->e[v];
        if (e->dirty) {
            memcpy(c->stage + nwb * c->bs, e->data, c->bs);
            c->stage_ids[nwb++] = e->id;
        }
        unlink_entry(c, v);
        table_remove(c, e->id);
        e->used = e->dirty = 0;
        c->free_list[c->nfree++] = v;
    }
    int rc = DC_OK;
    if (nwb > 0)
        rc = dc_store_write_blocks(c->inner, c->stage_ids, nwb, c->stage);
    rehash(c);
    return rc;
}

static size_t take_free(cache_store *c, uint64_t id) {
    size_t i = c->free_list[--c->nfree];
    entry *e = &c->e[i];
    e->id = id;
    e->used = 1;
    e->dirty = 0;
    table_insert(c, id, i);
    push_front(c, i);
    return i;
}

static int cache_read(void *impl, const uint64_t *ids, size_t count,
                      unsigned char *buf) {
    cache_store *c = impl;
    for (size_t start = 0; start < count;) {
        /* Serve hits; gather up to `cap` misses. */
        size_t nmiss = 0, i = start;
        for (; i < count && nmiss < c->cap; i++) {
            size_t hit = find(c, ids[i]);
            if (hit != NONE) {
                memcpy(buf + i * c->bs, c->e[hit].data, c->bs);
                touch(c, hit);
            } else {
                c->stage_idx[nmiss++] = i;
            }
        }
        start = i;
        if (nmiss == 0)
            continue;
        int rc = make_room(c, nmiss);
        if (rc != DC_OK)
            return rc;
        for (size_t k = 0; k < nmiss; k++)
            c->stage_ids[k] = ids[c->stage_idx[k]];
        rc = dc_store_read_blocks(c->inner, c->stage_ids, nmiss, c->stage);
        if (rc != DC_OK)
            return rc;
        for (size_t k = 0; k < nmiss; k++) {
            const unsigned char *src = c->stage + k * c->bs;
            memcpy(buf + c->stage_idx[k] * c->bs, src, c->bs);
            size_t slot = take_free(c, c->stage_ids[k]);
            memcpy(c->e[slot].data, src, c->bs);
        }
    }
    return DC_OK;
}

static int cache_write(void *impl, const uint64_t *ids, size_t count,
                       const unsigned char *buf) {
    cache_store *c = impl;
    for (size_t i = 0; i < count; i++) {
        size_t slot = find(c, ids[i]);
        if (slot == NONE) {
            if (c->nfree == 0) {
                /* Free a batch of slots at once so write-backs are batched. */
                size_t want = count - i < c->cap ? count - i : c->cap;
                int rc = make_room(c, want);
                if (rc != DC_OK)
                    return rc;
            }
            slot = take_free(c, ids[i]);
        } else {
            touch(c, slot);
        }
        memcpy(c->e[slot].data, buf + i * c->bs, c->bs);
        c->e[slot].dirty = 1;
    }
    return DC_OK;
}

/* qsort has no context argument: the ids being sorted are copied into
 * pairs instead of sorting indices by a global. */
typedef struct pair {
    uint64_t id;
    size_t idx;
} pair;

static int cmp_by_id(const void *a, const void *b) {
    uint64_t x = ((const pair *)a)->id, y = ((const pair *)b)->id;
    return x < y ? -1 : x > y;
}

static int cache_sync(void *impl) {
    cache_store *c = impl;
    pair *dirty = malloc(c->cap * sizeof *dirty);
    if (dirty == NULL)
        return DC_ERR_NO_MEMORY;
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->e[i].used && c->e[i].dirty)
            dirty[n++] = (pair){c->e[i].id, i};
    qsort(dirty, n, sizeof *dirty, cmp_by_id);
    int rc = DC_OK;
    for (size_t k = 0; rc == DC_OK && k < n;) {
        size_t m = n - k < SYNC_BATCH ? n - k : SYNC_BATCH;
        if (m > c->cap)
            m = c->cap;
        for (size_t j = 0; j < m; j++) {
            entry *e = &c->e[dirty[k + j].idx];
            memcpy(c->stage + j * c->bs, e->data, c->bs);
            c->stage_ids[j] = e->id;
        }
        rc = dc_store_write_blocks(c->inner, c->stage_ids, m, c->stage);
        for (size_t j = 0; rc == DC_OK && j < m; j++)
            c->e[dirty[k + j].idx].dirty = 0;
        k += m;
    }
    free(dirty);
    if (rc == DC_OK)
        rc = dc_store_sync(c->inner);
    return rc;
}

static void cache_close(void *impl) {
    cache_store *c = impl;
    if (c == NULL)
        return;
    for (size_t i = 0; c->e != NULL && i < c->cap; i++)
        dc__aligned_free(c->e[i].data);
    free(c->e);
    free(c->free_list);
    free(c->table);
    dc__aligned_free(c->stage);
    free(c->stage_ids);
    free(c->stage_idx);
    dc_store_free(c->inner);
    free(c);
}

static const dc__store_ops cache_ops = {cache_read, cache_write, cache_sync,
                                        cache_close};

int dc_store_new_cached(dc_store **out, dc_store *inner,
                        size_t capacity_blocks) {
    if (out == NULL) {
        dc_store_free(inner);
        return DC_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (inner == NULL || capacity_blocks == 0 ||
        capacity_blocks > SIZE_MAX / 4 / inner->block_size) {
        dc_store_free(inner);
        return DC_ERR_INVALID_ARGUMENT;
    }
    cache_store *c = calloc(1, sizeof *c);
    if (c == NULL) {
        dc_store_free(inner);
        return DC_ERR_NO_MEMORY;
    }
    c->inner = inner;
    c->bs = inner->block_size;
    c->cap = capacity_blocks;
    c->head = c->tail = NONE;
    c->table_size = 16;
    while (c->table_size < c->cap * 2)
        c->table_size *= 2;
    size_t stage_blocks = c->cap < SYNC_BATCH ? SYNC_BATCH : c->cap;
    c->e = calloc(c->cap, sizeof *c->e);
    c->free_list = malloc(c->cap * sizeof *c->free_list);
    c->table = malloc(c->table_size * sizeof *c->table);
    c->stage = dc__aligned_alloc(stage_blocks * c->bs);
    c->stage_ids = malloc(stage_blocks * sizeof *c->stage_ids);
    c->stage_idx = malloc(stage_blocks * sizeof *c->stage_idx);
    int ok = c->e && c->free_list && c->table && c->stage && c->stage_ids &&
             c->stage_idx;
    for (size_t i = 0; ok && i < c->cap; i++) {
        c->e[i].data = dc__aligned_alloc(c->bs);
        ok = c->e[i].data != NULL;
        c->free_list[c->nfree++] = c->cap - 1 - i;
    }
    if (!ok) {
        cache_close(c);
        return DC_ERR_NO_MEMORY;
    }
    for (size_t h = 0; h < c->table_size; h++)
        c->table[h] = NONE;
    return dc__store_wrap(out, &cache_ops, c, c->bs, inner->total_blocks,
                          inner->read_only);
}
