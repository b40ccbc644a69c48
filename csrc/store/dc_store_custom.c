/*
 * dc_store_custom.c - a store over a caller's dc_store_backend vtable
 * (Python, Swift and Kotlin backends plug in here).
 *
 * Batches are forwarded unchanged (same ids, same order, one callback per
 * call). The front has already checked every id against total_blocks; this
 * file adds the header's other promise to backends, that a batch never names
 * an id twice, by refusing such batches with DC_ERR_INVALID_ARGUMENT.
 */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

typedef struct custom_store {
    dc_store_backend backend; /* a copy: the caller's struct may go away */
    void *payload;
    uint64_t *sorted; /* scratch for the duplicate check */
    size_t sorted_cap;
} custom_store;

/* Reserved bands of future subsystems (doublecrypt/error.h). */
#define BAND_LOW (-299)
#define BAND_HIGH (-100)

/*
 * A backend's status: DC_OK, a DC_ERR_* code passed through (any code
 * dc_strerror knows, or one in the reserved network/ncryptf bands), or
 * DC_ERR_IO for anything else. Positive values break the contract ("DC_OK
 * or a negative DC_ERR_*") and are treated as failures too, so a backend
 * that signals failure with 1 never has its error taken for success.
 */
static int backend_status(int rc) {
    if (rc == DC_OK)
        return DC_OK;
    if (rc < 0 && ((rc >= BAND_LOW && rc <= BAND_HIGH) ||
                   strcmp(dc_strerror(rc), dc_strerror(INT_MIN)) != 0))
        return rc;
    return DC_ERR_IO;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* DC_OK when no id repeats. Strictly ascending batches (the common case)
 * cost one pass; others are checked on a sorted copy. */
static int check_unique(custom_store *c, const uint64_t *ids, size_t count) {
    size_t i = 1;
    while (i < count && ids[i] > ids[i - 1])
        i++;
    if (i >= count)
        return DC_OK;
    if (count > c->sorted_cap) {
        uint64_t *grown = realloc(c->sorted, count * sizeof *grown);
        if (grown == NULL)
            return DC_ERR_NO_MEMORY;
        c->sorted = grown;
        c->sorted_cap = count;
    }
    memcpy(c->sorted, ids, count * sizeof *ids);
    qsort(c->sorted, count, sizeof *c->sorted, cmp_u64);
    for (i = 1; i < count; i++)
        if (c->sorted[i] == c->sorted[i - 1])
            return DC_ERR_INVALID_ARGUMENT;
    return DC_OK;
}

static int custom_read(void *impl, const uint64_t *ids, size_t count,
                       unsigned char *buf) {
    custom_store *c = impl;
    int rc = check_unique(c, ids, count);
    if (rc != DC_OK)
        return rc;
    return backend_status(c->backend.read_blocks(c->payload, ids, count, buf));
}

static int custom_write(void *impl, const uint64_t *ids, size_t count,
                        const unsigned char *buf) {
    custom_store *c = impl;
    int rc = check_unique(c, ids, count);
    if (rc != DC_OK)
        return rc;
    return backend_status(c->backend.write_blocks(c->payload, ids, count, buf));
}

static int custom_sync(void *impl) {
    custom_store *c = impl;
    return backend_status(c->backend.sync(c->payload));
}

static int custom_forget(void *impl) {
    custom_store *c = impl;
    if (c->backend.forget == NULL)
        return DC_OK;
    return backend_status(c->backend.forget(c->payload));
}

static void custom_close(void *impl) {
    custom_store *c = impl;
    if (c == NULL)
        return;
    if (c->backend.close != NULL)
        c->backend.close(c->payload);
    free(c->sorted);
    free(c);
}

static const dc__store_ops custom_ops = {custom_read, custom_write, custom_sync,
                                         custom_close, custom_forget};

int dc_store_new_custom(dc_store **out, const dc_store_backend *backend,
                        void *payload) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (backend == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (backend->version != 1 && backend->version != DC_STORE_BACKEND_VERSION)
        return DC_ERR_UNSUPPORTED;
    if (backend->info == NULL || backend->read_blocks == NULL ||
        backend->write_blocks == NULL || backend->sync == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    uint32_t block_size = 0;
    uint64_t total = 0;
    int rc = backend_status(backend->info(payload, &block_size, &total));
    if (rc != DC_OK)
        return rc;
    if (!dc__store_valid_geometry(block_size, total))
        return DC_ERR_INVALID_ARGUMENT;
    custom_store *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DC_ERR_NO_MEMORY;
    /* A version 1 struct ends before `forget`: copy only what it has. */
    memcpy(&c->backend, backend,
           backend->version == 1 ? offsetof(dc_store_backend, forget)
                                 : sizeof *backend);
    c->payload = payload;
    rc = dc__store_new(out, &custom_ops, c, block_size, total, 0);
    if (rc != DC_OK)
        free(c); /* not closed: the caller still owns the payload */
    return rc;
}
