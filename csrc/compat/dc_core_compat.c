/*
 * dc_core_compat.c - doublecrypt-core's C API (include/doublecrypt_core.h)
 * on the public dc_* API.
 *
 * A handle owns its store and, once fs_init_filesystem or fs_open succeeds,
 * a dc_fs. The dc_fs is given a borrowed view of the store (a custom backend
 * forwarding to it) rather than the store itself, because dc_fs_format and
 * dc_fs_mount free the store they are given when they fail: through the view,
 * a failed fs_open (wrong key) leaves the handle usable, as in the seed. The
 * view also lets the volume use fewer blocks than the image holds
 * (total_blocks of fs_create_disk/fs_create_device).
 *
 * Status codes -1..-13 are the seed's numbers already; the others are folded
 * into the nearest seed code by seed_status().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "doublecrypt.h"
#include "doublecrypt_core.h"

struct FsHandle {
    dc_store *store;    /* owned */
    uint64_t blocks;    /* blocks the volume may use: <= the store's */
    dc_fs *fs;          /* NULL until fs_init_filesystem/fs_open succeeds */
    unsigned char *key; /* sodium_malloc'd master key */
};

/* "/" + the longest path dc_fs accepts + NUL. */
#define PATH_BUF (DC_MAX_PATH_BYTES + 1)

/* Blocks written per batch when random-filling a device. */
#define FILL_BYTES (4u << 20)

static int32_t seed_status(int rc) {
    if (rc <= DC_OK && rc >= DC_ERR_NAME_TOO_LONG)
        return (int32_t)rc; /* the seed's own numbers */
    if (rc == DC_ERR_CORRUPT)
        return NotInitialized; /* the seed's InvalidSuperblock */
    return InternalError;      /* no memory, unsupported, read-only, ... */
}

/* ---- the borrowed view of a handle's store ---- */

static int view_info(void *payload, uint32_t *block_size,
                     uint64_t *total_blocks) {
    const FsHandle *h = payload;
    *block_size = dc_store_block_size(h->store);
    *total_blocks = h->blocks;
    return DC_OK;
}

static int view_read(void *payload, const uint64_t *ids, size_t count,
                     unsigned char *buf) {
    return dc_store_read_blocks(((FsHandle *)payload)->store, ids, count, buf);
}

static int view_write(void *payload, const uint64_t *ids, size_t count,
                      const unsigned char *buf) {
    return dc_store_write_blocks(((FsHandle *)payload)->store, ids, count, buf);
}

static int view_sync(void *payload) {
    return dc_store_sync(((FsHandle *)payload)->store);
}

/* ---- constructors ---- */

static int key_ok(const uint8_t *key, uintptr_t len) {
    return key != NULL && len == DC_KDF_MASTER_KEYBYTES;
}

/* A handle over `store` (taken over: freed here on failure) whose volume
 * uses `blocks` blocks, 0 meaning all of them. */
static FsHandle *handle_new(dc_store *store, uint64_t blocks,
                            const uint8_t *key) {
    FsHandle *h = NULL;
    if (store == NULL)
        return NULL;
    if (blocks == 0)
        blocks = dc_store_total_blocks(store);
    if (blocks <= FIRST_DATA_BLOCK || blocks > dc_store_total_blocks(store) ||
        (h = calloc(1, sizeof *h)) == NULL ||
        (h->key = sodium_malloc(DC_KDF_MASTER_KEYBYTES)) == NULL) {
        free(h);
        dc_store_free(store);
        return NULL;
    }
    memcpy(h->key, key, DC_KDF_MASTER_KEYBYTES);
    h->store = store;
    h->blocks = blocks;
    return h;
}

FsHandle *fs_create(uint64_t total_blocks, const uint8_t *master_key,
                    uintptr_t master_key_len) {
    dc_store *store;
    if (!key_ok(master_key, master_key_len) || dc_init() != DC_OK ||
        dc_store_new_memory(&store, DEFAULT_BLOCK_SIZE, total_blocks) != DC_OK)
        return NULL;
    return handle_new(store, total_blocks, master_key);
}

FsHandle *fs_create_disk(const char *path, uint64_t total_blocks,
                         uint32_t block_size, int32_t create_new,
                         const uint8_t *master_key, uintptr_t master_key_len) {
    dc_store *store;
    int rc;
    if (path == NULL || !key_ok(master_key, master_key_len) ||
        dc_init() != DC_OK)
        return NULL;
    if (block_size == 0)
        block_size = DEFAULT_BLOCK_SIZE;
    if (create_new != 0)
        rc = dc_store_create_file(&store, path, block_size, total_blocks, NULL,
                                  NULL);
    else
        rc = dc_store_open_file(&store, path, block_size, 0);
    return rc == DC_OK ? handle_new(store, total_blocks, master_key) : NULL;
}

/* Overwrite blocks [0, blocks) with random bytes, in batches. */
static int random_fill(dc_store *store, uint64_t blocks) {
    uint32_t bs = dc_store_block_size(store);
    size_t batch = FILL_BYTES / bs > 0 ? FILL_BYTES / bs : 1;
    uint64_t *ids = malloc(batch * sizeof *ids);
    unsigned char *buf = malloc(batch * bs);
    int rc = ids != NULL && buf != NULL ? DC_OK : DC_ERR_NO_MEMORY;
    for (uint64_t next = 0; rc == DC_OK && next < blocks;) {
        size_t n = blocks - next < batch ? (size_t)(blocks - next) : batch;
        for (size_t i = 0; i < n; i++)
            ids[i] = next + i;
        rc = dc_random_fill(buf, n * bs);
        if (rc == DC_OK)
            rc = dc_store_write_blocks(store, ids, n, buf);
        next += n;
    }
    if (rc == DC_OK)
        rc = dc_store_sync(store);
    free(ids);
    free(buf);
    return rc;
}

FsHandle *fs_create_device(const char *path, uint64_t total_blocks,
                           uint32_t block_size, int32_t initialize,
                           const uint8_t *master_key,
                           uintptr_t master_key_len) {
    dc_store *store;
    if (path == NULL || !key_ok(master_key, master_key_len) ||
        dc_init() != DC_OK)
        return NULL;
    if (block_size == 0)
        block_size = DEFAULT_BLOCK_SIZE;
    if (dc_store_open_device(&store, path, block_size, 0) != DC_OK)
        return NULL;
    FsHandle *h = handle_new(store, total_blocks, master_key);
    if (h != NULL && initialize != 0 &&
        random_fill(h->store, h->blocks) != DC_OK) {
        fs_destroy(h);
        return NULL;
    }
    return h;
}

FsHandle *fs_create_network(const char *addr, const char *server_name,
                            const char *ca_cert_path, uint32_t cache_blocks,
                            const uint8_t *auth_token, uintptr_t auth_token_len,
                            const uint8_t *master_key,
                            uintptr_t master_key_len) {
    (void)addr;
    (void)server_name;
    (void)ca_cert_path;
    (void)cache_blocks;
    (void)auth_token;
    (void)auth_token_len;
    (void)master_key;
    (void)master_key_len;
    return NULL; /* no C network client: see docs/ABI.md */
}

void fs_destroy(FsHandle *handle) {
    if (handle == NULL)
        return;
    dc_fs_free(handle->fs); /* syncs through the view */
    dc_store_free(handle->store);
    sodium_free(handle->key); /* wipes */
    free(handle);
}

/* ---- volume ---- */

static int32_t attach(FsHandle *h, int format) {
    dc_store *view;
    const dc_store_backend backend = {
        .version = DC_STORE_BACKEND_VERSION,
        .info = view_info,
        .read_blocks = view_read,
        .write_blocks = view_write,
        .sync = view_sync,
        .close = NULL, /* the handle keeps its store */
    };
    if (h == NULL)
        return InvalidArgument;
    dc_fs_free(h->fs);
    h->fs = NULL;
    int rc = dc_store_new_custom(&view, &backend, h);
    if (rc == DC_OK)
        rc = format ? dc_fs_format(&h->fs, view, h->key, NULL)
                    : dc_fs_mount(&h->fs, view, h->key, NULL);
    if (!format && rc == DC_ERR_UNSUPPORTED)
        return NotInitialized; /* another format version: no volume here */
    return seed_status(rc);
}

int32_t fs_init_filesystem(FsHandle *handle) { return attach(handle, 1); }

int32_t fs_open(FsHandle *handle) { return attach(handle, 0); }

/* ---- paths and checks ---- */

/* Ok when the handle can take filesystem calls. */
static int32_t ready(const FsHandle *h) {
    if (h == NULL)
        return InvalidArgument;
    return h->fs != NULL ? Ok : NotInitialized;
}

/* The seed's path rules on dc_fs paths: leading and trailing '/' are
 * trimmed, "" is the root; the result is written absolute into `out`. */
static int32_t to_path(const char *name, char out[PATH_BUF]) {
    if (name == NULL)
        return InvalidArgument;
    while (*name == '/')
        name++;
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '/')
        n--;
    if (n + 1 > DC_MAX_PATH_BYTES)
        return NameTooLong;
    out[0] = '/';
    memcpy(out + 1, name, n);
    out[n + 1] = 0;
    return Ok;
}

/* ready() and to_path() together, for calls that take one path. */
static int32_t prepare(const FsHandle *h, const char *name,
                       char out[PATH_BUF]) {
    if (h == NULL || name == NULL)
        return InvalidArgument;
    int32_t rc = ready(h);
    return rc == Ok ? to_path(name, out) : rc;
}

static int is_root(const char *path) { return path[1] == 0; }

/* ---- files and directories ---- */

int32_t fs_create_file(FsHandle *handle, const char *name) {
    char path[PATH_BUF];
    int32_t rc = prepare(handle, name, path);
    if (rc != Ok)
        return rc;
    if (is_root(path))
        return InvalidArgument; /* an empty name */
    return seed_status(dc_fs_create(handle->fs, path, 0644, 1));
}

int32_t fs_create_dir(FsHandle *handle, const char *name) {
    char path[PATH_BUF];
    int32_t rc = prepare(handle, name, path);
    if (rc != Ok)
        return rc;
    if (is_root(path))
        return InvalidArgument;
    return seed_status(dc_fs_mkdir(handle->fs, path, 0755));
}

int32_t fs_write_file(FsHandle *handle, const char *name, uint64_t offset,
                      const uint8_t *data, uintptr_t data_len) {
    char path[PATH_BUF];
    if (data == NULL)
        return InvalidArgument;
    int32_t rc = prepare(handle, name, path);
    if (rc != Ok)
        return rc;
    return seed_status(dc_fs_write(handle->fs, path, offset, data, data_len));
}

int32_t fs_read_file(FsHandle *handle, const char *name, uint64_t offset,
                     uintptr_t len, uint8_t *out_buf, uintptr_t *out_len) {
    char path[PATH_BUF];
    size_t got = 0;
    if (out_buf == NULL || out_len == NULL)
        return InvalidArgument;
    int32_t rc = prepare(handle, name, path);
    if (rc != Ok)
        return rc;
    rc = seed_status(dc_fs_read(handle->fs, path, offset, out_buf, len, &got));
    if (rc == Ok)
        *out_len = got;
    return rc;
}

int32_t fs_remove_file(FsHandle *handle, const char *name) {
    char path[PATH_BUF];
    dc_stat st;
    int32_t rc = prepare(handle, name, path);
    if (rc != Ok)
        return rc;
    int err = dc_fs_stat(handle->fs, path, &st);
    if (err == DC_OK)
        err = st.type == DC_TYPE_DIRECTORY ? dc_fs_rmdir(handle->fs, path)
                                           : dc_fs_remove(handle->fs, path);
    return seed_status(err);
}

int32_t fs_rename(FsHandle *handle, const char *old_name,
                  const char *new_name) {
    char from[PATH_BUF], to[PATH_BUF];
    dc_stat st;
    int32_t rc = prepare(handle, old_name, from);
    if (rc == Ok)
        rc = to_path(new_name, to);
    if (rc != Ok)
        return rc;
    int err = dc_fs_stat(handle->fs, from, &st);
    if (err != DC_OK)
        return seed_status(err);
    /* The seed never replaces: an existing target (even the source itself)
     * is AlreadyExists, where dc_fs_rename would follow rename(2). */
    if (dc_fs_stat(handle->fs, to, &st) == DC_OK)
        return AlreadyExists;
    return seed_status(dc_fs_rename(handle->fs, from, to));
}

int32_t fs_flush(FsHandle *handle) {
    return ready(handle); /* every call has committed already */
}

int32_t fs_sync(FsHandle *handle) {
    int32_t rc = ready(handle);
    return rc == Ok ? seed_status(dc_fs_sync(handle->fs)) : rc;
}

int32_t fs_scrub_free_blocks(FsHandle *handle) {
    /* No free-block API in dc_fs: see docs/ABI.md. */
    return fs_sync(handle);
}

int32_t fs_stat(FsHandle *handle, const char *name, uint64_t *out_size,
                int32_t *out_kind, uint64_t *out_inode_id) {
    char path[PATH_BUF];
    dc_stat st;
    if (out_size == NULL || out_kind == NULL || out_inode_id == NULL)
        return InvalidArgument;
    int32_t rc = prepare(handle, name, path);
    if (rc != Ok)
        return rc;
    rc = seed_status(dc_fs_stat(handle->fs, path, &st));
    if (rc == Ok) {
        int dir = st.type == DC_TYPE_DIRECTORY;
        *out_size = dir ? 0 : st.size;
        *out_kind = dir ? 1 : 0;
        *out_inode_id = st.inode;
    }
    return rc;
}

/* ---- JSON listings ---- */

typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->failed)
        return;
    if (n >= t->cap - t->len) {
        size_t cap = t->cap ? t->cap : 256;
        while (n >= cap - t->len) {
            if (cap > SIZE_MAX / 2) {
                t->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *grown = realloc(t->buf, cap);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

/* A JSON string as serde_json writes it: '"', '\\' and control characters
 * escaped, everything else (valid UTF-8, checked by dc_fs) verbatim. */
static void put_json_string(text *t, const char *s) {
    static const char hex[] = "0123456789abcdef";
    put(t, "\"", 1);
    for (const char *run = s;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(t, run, (size_t)(s - run));
        if (c == 0)
            break;
        run = s + 1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put(t, esc, n);
    }
    put(t, "\"", 1);
}

static int list_json(dc_fs *fs, const char *path, char **out) {
    char name[DC_MAX_NAME_BYTES + 1], num[128];
    dc_stat st;
    dc_dir *dir;
    text t = {NULL, 0, 0, 0};
    int rc = dc_fs_opendir(&dir, fs, path);
    if (rc != DC_OK)
        return rc;
    put_str(&t, "[");
    for (int first = 1; (rc = dc_dir_next(dir, name, sizeof name, &st)) > 0;
         first = 0) {
        int is_dir = st.type == DC_TYPE_DIRECTORY;
        put_str(&t, first ? "{\"name\":" : ",{\"name\":");
        put_json_string(&t, name);
        snprintf(num, sizeof num,
                 ",\"kind\":\"%s\",\"size\":%" PRIu64 ",\"inode_id\":%" PRIu64
                 "}",
                 is_dir ? "Directory" : "File", is_dir ? 0 : st.size, st.inode);
        put_str(&t, num);
    }
    put_str(&t, "]");
    dc_dir_free(dir);
    if (rc == DC_OK && t.failed)
        rc = DC_ERR_NO_MEMORY;
    if (rc != DC_OK) {
        free(t.buf);
        return rc;
    }
    *out = t.buf;
    return DC_OK;
}

char *fs_list_dir(FsHandle *handle, const char *path, int32_t *out_error) {
    char p[PATH_BUF], *json = NULL;
    int32_t rc = prepare(handle, path, p);
    if (rc == Ok)
        rc = seed_status(list_json(handle->fs, p, &json));
    if (out_error != NULL)
        *out_error = rc;
    return json;
}

char *fs_list_root(FsHandle *handle, int32_t *out_error) {
    return fs_list_dir(handle, "", out_error);
}

void fs_free_string(char *s) { free(s); }

/* ---- utilities ---- */

int32_t fs_blake3(const uint8_t *data, uintptr_t data_len, uint8_t *out) {
    (void)data_len;
    if (data == NULL || out == NULL)
        return InvalidArgument;
    return InternalError; /* no BLAKE3 implementation: see docs/ABI.md */
}
