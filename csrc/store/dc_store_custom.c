/*
 * dc_store_custom.c - a store over a caller's dc_store_backend vtable
 * (Python, Swift and Kotlin backends plug in here).
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

typedef struct custom_store {
    dc_store_backend backend;
    void *payload;
} custom_store;

/* Backends return DC codes; anything else negative is an I/O failure. */
static int status(int rc) {
    if (rc >= 0)
        return DC_OK;
    return rc >= DC_ERR_READ_ONLY ? rc : DC_ERR_IO;
}

static int custom_read(void *impl, const uint64_t *ids, size_t count,
                       unsigned char *buf) {
    custom_store *c = impl;
    return status(c->backend.read_blocks(c->payload, ids, count, buf));
}

static int custom_write(void *impl, const uint64_t *ids, size_t count,
                        const unsigned char *buf) {
    custom_store *c = impl;
    return status(c->backend.write_blocks(c->payload, ids, count, buf));
}

static int custom_sync(void *impl) {
    custom_store *c = impl;
    return status(c->backend.sync(c->payload));
}

static void custom_close(void *impl) {
    custom_store *c = impl;
    if (c == NULL)
        return;
    if (c->backend.close != NULL)
        c->backend.close(c->payload);
    free(c);
}

static const dc__store_ops custom_ops = {custom_read, custom_write, custom_sync,
                                         custom_close};

int dc_store_new_custom(dc_store **out, const dc_store_backend *backend,
                        void *payload) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (backend == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    if (backend->version != DC_STORE_BACKEND_VERSION)
        return DC_ERR_UNSUPPORTED;
    if (backend->info == NULL || backend->read_blocks == NULL ||
        backend->write_blocks == NULL || backend->sync == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    uint32_t block_size = 0;
    uint64_t total = 0;
    int rc = status(backend->info(payload, &block_size, &total));
    if (rc != DC_OK)
        return rc;
    if (!dc__valid_geometry(block_size, total))
        return DC_ERR_INVALID_ARGUMENT;
    custom_store *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DC_ERR_NO_MEMORY;
    c->backend = *backend;
    c->payload = payload;
    return dc__store_wrap(out, &custom_ops, c, block_size, total, 0);
}
