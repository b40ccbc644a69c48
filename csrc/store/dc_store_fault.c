/*
 * dc_store_fault.c - a simulated disk that loses power (doublecrypt/fault.h).
 *
 * The disk keeps a log of the writes since the last completed sync, in
 * order, each with its own copy of the block, and an open-addressing hash
 * map from block id to the log index of that block's newest write. Reads go
 * to the inner store and then take the newest logged copy of every block
 * that has one. A sync writes the newest copy of every logged block to the
 * inner store (ascending ids, in batches), syncs it and empties the log.
 *
 * Power loss picks the survivors among the log entries (the mode), writes
 * the newest surviving copy of each block to the inner store, tears the last
 * entry over what the inner store then holds, and syncs. The log stays: it
 * is the machine's memory of what it wrote, so reads keep seeing it; writes
 * after the loss update it in place (a block written again replaces its
 * copy) and never reach the inner store. dc_fault_restart empties it.
 *
 * Locks: a handle's front lock (dc_store.c), then the disk's lock, then the
 * inner store's front lock; nothing takes them in another order.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define NONE SIZE_MAX
#define APPLY_BATCH 64                /* most blocks per inner write */
#define APPLY_BYTES ((size_t)4 << 20) /* and most bytes */

typedef struct vwrite {
    uint64_t id;
    unsigned char *data;
} vwrite;

struct dc_fault {
    dc_store *inner;
    uint32_t bs;
    uint64_t total;
    int read_only;
    pthread_mutex_t lock;
    /* The caller's reference plus one per store handle. */
    atomic_uint refs;
    dc_fault_options opts;
    uint64_t rng;
    /* This boot. */
    uint64_t writes, syncs, durable_writes;
    int lost;
    int crash_rc;
    /* Volatile writes (after power loss: the machine's memory). */
    vwrite *log;
    size_t nlog, log_cap;
    /* Block id -> log index of its newest write; idx NONE marks a free
     * slot. nslots is a power of two, at most half full. */
    uint64_t *map_ids;
    size_t *map_idx;
    size_t nslots, nmapped;
};

/* ---- helpers ---------------------------------------------------------- */

static uint64_t next_random(dc_fault *f) { /* splitmix64 */
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t slot_of(const dc_fault *f, uint64_t id) {
    id ^= id >> 33; /* murmur3 finaliser */
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & (f->nslots - 1);
}

/* The log index of block id's newest write, or NONE. */
static size_t map_find(const dc_fault *f, uint64_t id) {
    if (f->nslots == 0)
        return NONE;
    for (size_t s = slot_of(f, id);; s = (s + 1) & (f->nslots - 1)) {
        if (f->map_idx[s] == NONE)
            return NONE;
        if (f->map_ids[s] == id)
            return f->map_idx[s];
    }
}

static void map_store(dc_fault *f, uint64_t id, size_t idx) {
    size_t s = slot_of(f, id);
    while (f->map_idx[s] != NONE && f->map_ids[s] != id)
        s = (s + 1) & (f->nslots - 1);
    if (f->map_idx[s] == NONE)
        f->nmapped++;
    f->map_ids[s] = id;
    f->map_idx[s] = idx;
}

/* Room for one more id, growing (and rehashing) at half full. */
static int map_reserve(dc_fault *f) {
    if ((f->nmapped + 1) * 2 <= f->nslots)
        return DC_OK;
    size_t n = f->nslots ? f->nslots * 2 : 64;
    if (n > SIZE_MAX / sizeof(uint64_t))
        return DC_ERR_NO_MEMORY;
    uint64_t *ids = malloc(n * sizeof *ids);
    size_t *idx = malloc(n * sizeof *idx);
    if (ids == NULL || idx == NULL) {
        free(ids);
        free(idx);
        return DC_ERR_NO_MEMORY;
    }
    for (size_t s = 0; s < n; s++)
        idx[s] = NONE;
    uint64_t *old_ids = f->map_ids;
    size_t *old_idx = f->map_idx;
    size_t old_n = f->nslots;
    f->map_ids = ids;
    f->map_idx = idx;
    f->nslots = n;
    f->nmapped = 0;
    for (size_t s = 0; s < old_n; s++)
        if (old_idx[s] != NONE)
            map_store(f, old_ids[s], old_idx[s]);
    free(old_ids);
    free(old_idx);
    return DC_OK;
}

/* Append a copy of one block to the log; it becomes the block's newest. */
static int log_append(dc_fault *f, uint64_t id, const unsigned char *data) {
    int rc = map_reserve(f);
    if (rc != DC_OK)
        return rc;
    if (f->nlog == f->log_cap) {
        size_t cap = f->log_cap ? f->log_cap * 2 : 64;
        vwrite *log = realloc(f->log, cap * sizeof *log);
        if (log == NULL)
            return DC_ERR_NO_MEMORY;
        f->log = log;
        f->log_cap = cap;
    }
    unsigned char *copy = malloc(f->bs);
    if (copy == NULL)
        return DC_ERR_NO_MEMORY;
    memcpy(copy, data, f->bs);
    f->log[f->nlog] = (vwrite){id, copy};
    map_store(f, id, f->nlog);
    f->nlog++;
    return DC_OK;
}

static void log_clear(dc_fault *f) {
    for (size_t i = 0; i < f->nlog; i++)
        free(f->log[i].data);
    f->nlog = 0;
    for (size_t s = 0; s < f->nslots; s++)
        f->map_idx[s] = NONE;
    f->nmapped = 0;
}

/* A log entry to apply: sorted by block id, then newest first. */
typedef struct pick {
    uint64_t id;
    size_t idx;
} pick;

static int cmp_pick(const void *a, const void *b) {
    const pick *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->idx > y->idx ? -1 : x->idx < y->idx;
}

/*
 * Write to the inner store the log entries with keep[i] set (NULL: all),
 * the newest kept copy of each block only, in ascending id order; then tear
 * entry `torn` (NONE: none): its first tear_len bytes over what the inner
 * store holds after the rest. The caller makes sure no kept entry is newer
 * than the torn one.
 */
static int apply(dc_fault *f, const unsigned char *keep, size_t torn,
                 size_t tear_len) {
    int rc = DC_OK;
    size_t n = 0, batch = APPLY_BYTES / f->bs;
    if (f->nlog == 0)
        return DC_OK;
    if (batch > APPLY_BATCH)
        batch = APPLY_BATCH;
    if (batch == 0)
        batch = 1;
    pick *order = malloc(f->nlog * sizeof *order);
    uint64_t *ids = malloc(batch * sizeof *ids);
    unsigned char *stage = malloc(batch * f->bs);
    if (order == NULL || ids == NULL || stage == NULL) {
        rc = DC_ERR_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < f->nlog; i++)
        if (i != torn && (keep == NULL || keep[i]))
            order[n++] = (pick){f->log[i].id, i};
    qsort(order, n, sizeof *order, cmp_pick);
    size_t m = 0;
    for (size_t k = 0; k < n && rc == DC_OK; k++) {
        if (k > 0 && order[k].id == order[k - 1].id)
            continue; /* an older copy of the block just staged */
        ids[m] = order[k].id;
        memcpy(stage + m * f->bs, f->log[order[k].idx].data, f->bs);
        if (++m == batch) {
            rc = dc_store_write_blocks(f->inner, ids, m, stage);
            m = 0;
        }
    }
    if (rc == DC_OK && m > 0)
        rc = dc_store_write_blocks(f->inner, ids, m, stage);
    if (rc == DC_OK && torn != NONE) {
        const vwrite *t = &f->log[torn];
        rc = dc_store_read_blocks(f->inner, &t->id, 1, stage);
        if (rc == DC_OK) {
            memcpy(stage, t->data, tear_len);
            rc = dc_store_write_blocks(f->inner, &t->id, 1, stage);
        }
    }
out:
    free(order);
    free(ids);
    free(stage);
    return rc;
}

/* 1..bs-1 bytes, each power-of-two scale equally likely: a short tear
 * (inside the first sector) is as likely as a long one. */
static size_t tear_length(dc_fault *f) {
    unsigned scales = 0;
    while (((size_t)2 << scales) <= f->bs)
        scales++; /* lengths [2^k, 2^(k+1)) for k < scales cover 1..bs-1 */
    unsigned k = (unsigned)(next_random(f) % scales);
    size_t low = (size_t)1 << k;
    return low + (size_t)(next_random(f) % low);
}

/* Lose power: the mode picks what reaches the inner store. */
static int crash(dc_fault *f) {
    unsigned char *keep = malloc(f->nlog ? f->nlog : 1);
    int rc = DC_OK;
    size_t torn = NONE, tear_len = 0;
    if (keep == NULL) {
        rc = DC_ERR_NO_MEMORY;
    } else {
        for (size_t i = 0; i < f->nlog; i++) {
            switch (f->opts.mode) {
            case DC_FAULT_DROP_VOLATILE:
                keep[i] = 0;
                break;
            case DC_FAULT_REORDER:
                keep[i] = (unsigned char)(next_random(f) & 1);
                break;
            default: /* KEEP_PREFIX, TEAR_LAST */
                keep[i] = 1;
                break;
            }
        }
        if (f->opts.mode == DC_FAULT_TEAR_LAST && f->nlog > 0) {
            torn = f->nlog - 1;
            tear_len = tear_length(f);
        }
        rc = apply(f, keep, torn, tear_len);
        if (rc == DC_OK)
            rc = dc_store_sync(f->inner);
    }
    free(keep);
    f->lost = 1;
    f->crash_rc = rc;
    return rc;
}

/* After power loss: the machine still remembers the block. */
static int remember(dc_fault *f, uint64_t id, const unsigned char *data) {
    size_t i = map_find(f, id);
    if (i == NONE)
        return log_append(f, id, data);
    memcpy(f->log[i].data, data, f->bs);
    return DC_OK;
}

static int check_options(const dc_fault_options *opts) {
    if (opts->version != DC_FAULT_OPTIONS_VERSION)
        return DC_ERR_UNSUPPORTED;
    if (opts->mode < DC_FAULT_DROP_VOLATILE || opts->mode > DC_FAULT_REORDER)
        return DC_ERR_INVALID_ARGUMENT;
    return DC_OK;
}

/* Start a boot with `opts` (checked): nothing volatile, counters at 0. */
static void boot(dc_fault *f, const dc_fault_options *opts) {
    log_clear(f);
    f->opts = *opts;
    f->rng = opts->seed;
    f->writes = f->syncs = f->durable_writes = 0;
    f->lost = 0;
    f->crash_rc = DC_OK;
}

static void fault_release(dc_fault *f) {
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    log_clear(f);
    free(f->log);
    free(f->map_ids);
    free(f->map_idx);
    dc_store_free(f->inner);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- the store handle --------------------------------------------------- */

static int fault_read(void *impl, const uint64_t *ids, size_t count,
                      unsigned char *buf) {
    dc_fault *f = impl;
    pthread_mutex_lock(&f->lock);
    int rc = dc_store_read_blocks(f->inner, ids, count, buf);
    for (size_t k = 0; rc == DC_OK && f->nlog > 0 && k < count; k++) {
        size_t i = map_find(f, ids[k]);
        if (i != NONE)
            memcpy(buf + k * f->bs, f->log[i].data, f->bs);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int fault_write(void *impl, const uint64_t *ids, size_t count,
                       const unsigned char *buf) {
    dc_fault *f = impl;
    int rc = DC_OK, dropped = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t k = 0; k < count && rc == DC_OK; k++) {
        const unsigned char *data = buf + k * f->bs;
        if (f->lost) {
            if (f->opts.fail_after_crash)
                dropped = 1;
            else
                rc = remember(f, ids[k], data);
            f->writes++;
            continue;
        }
        rc = log_append(f, ids[k], data);
        if (rc != DC_OK)
            break;
        if (++f->writes == f->opts.crash_after)
            rc = crash(f);
    }
    pthread_mutex_unlock(&f->lock);
    return rc == DC_OK && dropped ? DC_ERR_IO : rc;
}

static int fault_sync(void *impl) {
    dc_fault *f = impl;
    int rc;
    pthread_mutex_lock(&f->lock);
    f->syncs++;
    if (f->lost) {
        rc = f->opts.fail_after_crash ? DC_ERR_IO : DC_OK;
    } else {
        rc = apply(f, NULL, NONE, 0);
        if (rc == DC_OK)
            rc = dc_store_sync(f->inner);
        if (rc == DC_OK) {
            log_clear(f);
            f->durable_writes = f->writes;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static void fault_close(void *impl) { fault_release(impl); }

static const dc__store_ops fault_ops = {fault_read, fault_write, fault_sync,
                                        fault_close, NULL};

/* ---- public API ---------------------------------------------------------- */

int dc_fault_options_init(dc_fault_options *opts) {
    if (opts == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    memset(opts, 0, sizeof *opts);
    opts->version = DC_FAULT_OPTIONS_VERSION;
    opts->mode = DC_FAULT_DROP_VOLATILE;
    return DC_OK;
}

int dc_fault_new(dc_fault **out, dc_store *inner,
                 const dc_fault_options *opts) {
    /* The disk owns `inner` from here on, whatever happens. */
    dc_fault_options defaults;
    if (out == NULL || inner == NULL) {
        if (out != NULL)
            *out = NULL;
        dc_store_free(inner);
        return DC_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (opts == NULL) {
        dc_fault_options_init(&defaults);
        opts = &defaults;
    }
    int rc = check_options(opts);
    if (rc != DC_OK) {
        dc_store_free(inner);
        return rc;
    }
    dc_fault *f = calloc(1, sizeof *f);
    if (f == NULL || pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        dc_store_free(inner);
        return DC_ERR_NO_MEMORY;
    }
    f->inner = inner;
    f->bs = inner->block_size;
    f->total = inner->total_blocks;
    f->read_only = inner->read_only;
    atomic_init(&f->refs, 1);
    boot(f, opts);
    *out = f;
    return DC_OK;
}

int dc_store_new_fault(dc_store **out, dc_fault *fault) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (fault == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    atomic_fetch_add(&fault->refs, 1);
    int rc = dc__store_new(out, &fault_ops, fault, fault->bs, fault->total,
                           fault->read_only);
    if (rc != DC_OK)
        fault_release(fault);
    return rc;
}

int dc_fault_power_off(dc_fault *fault) {
    if (fault == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fault->lock);
    int rc = fault->lost ? fault->crash_rc : crash(fault);
    pthread_mutex_unlock(&fault->lock);
    return rc;
}

int dc_fault_restart(dc_fault *fault, const dc_fault_options *opts) {
    dc_fault_options defaults;
    if (fault == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (opts == NULL) {
        dc_fault_options_init(&defaults);
        opts = &defaults;
    }
    int rc = check_options(opts);
    if (rc != DC_OK)
        return rc;
    pthread_mutex_lock(&fault->lock);
    rc = fault->lost ? DC_OK : crash(fault);
    boot(fault, opts);
    pthread_mutex_unlock(&fault->lock);
    return rc;
}

/* The getters lock a disk that is never itself const (only the caller's
 * pointer is), so casting the const away is well defined. */
static uint64_t read_counter(const dc_fault *fault, const uint64_t *field) {
    dc_fault *f = (dc_fault *)fault;
    pthread_mutex_lock(&f->lock);
    uint64_t v = *field;
    pthread_mutex_unlock(&f->lock);
    return v;
}

uint64_t dc_fault_writes(const dc_fault *fault) {
    return fault != NULL ? read_counter(fault, &fault->writes) : 0;
}

uint64_t dc_fault_syncs(const dc_fault *fault) {
    return fault != NULL ? read_counter(fault, &fault->syncs) : 0;
}

uint64_t dc_fault_durable_writes(const dc_fault *fault) {
    return fault != NULL ? read_counter(fault, &fault->durable_writes) : 0;
}

int dc_fault_power_lost(const dc_fault *fault) {
    if (fault == NULL)
        return 0;
    dc_fault *f = (dc_fault *)fault;
    pthread_mutex_lock(&f->lock);
    int lost = f->lost;
    pthread_mutex_unlock(&f->lock);
    return lost;
}

void dc_fault_free(dc_fault *fault) {
    if (fault != NULL)
        fault_release(fault);
}
