/* test_store.c - block stores: memory, file, device, custom, cache. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, ftruncate */

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doublecrypt.h"
#include "unit.h"

#define BS 4096u

/* A block whose every byte is derived from (id, salt). */
static void pattern(unsigned char *block, uint32_t bs, uint64_t id,
                    unsigned salt) {
    for (uint32_t i = 0; i < bs; i++)
        block[i] = (unsigned char)(id * 31 + salt * 7 + i / 13);
}

static int is_pattern(const unsigned char *block, uint32_t bs, uint64_t id,
                      unsigned salt) {
    for (uint32_t i = 0; i < bs; i++)
        if (block[i] != (unsigned char)(id * 31 + salt * 7 + i / 13))
            return 0;
    return 1;
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Write blocks ids[0..n) with `salt` and read them back one call each. */
static void write_ids(dc_store *s, const uint64_t *ids, size_t n,
                      unsigned salt) {
    uint32_t bs = dc_store_block_size(s);
    unsigned char *buf = malloc(n * bs);
    for (size_t i = 0; i < n; i++)
        pattern(buf + i * bs, bs, ids[i], salt);
    CHECK_RC(dc_store_write_blocks(s, ids, n, buf), DC_OK);
    free(buf);
}

static int ids_hold(dc_store *s, const uint64_t *ids, size_t n, unsigned salt) {
    uint32_t bs = dc_store_block_size(s);
    unsigned char *buf = malloc(n * bs);
    int ok = dc_store_read_blocks(s, ids, n, buf) == DC_OK;
    for (size_t i = 0; ok && i < n; i++)
        ok = is_pattern(buf + i * bs, bs, ids[i], salt);
    free(buf);
    return ok;
}

/* ---- memory store ---------------------------------------------------- */

static void test_memory(void) {
    dc_store *s = (dc_store *)&s; /* must be reset to NULL on failure */
    CHECK_RC(dc_store_new_memory(&s, 2048, 16), DC_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_RC(dc_store_new_memory(&s, 12288, 16), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_memory(&s, 2u << 20, 16), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_memory(&s, BS, 3), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_memory(&s, BS, 0), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_memory(NULL, BS, 16), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_memory(&s, DC_MAX_BLOCK_SIZE, 4), DC_OK);
    CHECK(dc_store_block_size(s) == DC_MAX_BLOCK_SIZE);
    dc_store_free(s);

    CHECK_RC(dc_store_new_memory(&s, BS, 64), DC_OK);
    CHECK(dc_store_block_size(s) == BS && dc_store_total_blocks(s) == 64);
    unsigned char buf[4 * BS];
    memset(buf, 0xAA, sizeof buf);
    uint64_t fresh[2] = {7, 63};
    CHECK_RC(dc_store_read_blocks(s, fresh, 2, buf), DC_OK);
    CHECK(all_zero(buf, 2 * BS));

    uint64_t ids[4] = {9, 2, 3, 63};
    write_ids(s, ids, 4, 1);
    CHECK(ids_hold(s, ids, 4, 1));
    uint64_t rev[4] = {63, 3, 2, 9};
    CHECK(ids_hold(s, rev, 4, 1));
    CHECK(dc_store_blocks_written(s) == 4);
    CHECK(dc_store_blocks_read(s) == 2 + 4 + 4);

    /* Out of range: an error, and nothing read or written. */
    uint64_t bad[2] = {1, 64};
    memset(buf, 0x55, sizeof buf);
    CHECK_RC(dc_store_read_blocks(s, bad, 2, buf), DC_ERR_INVALID_ARGUMENT);
    CHECK(buf[0] == 0x55 && buf[2 * BS - 1] == 0x55);
    CHECK_RC(dc_store_write_blocks(s, bad, 2, buf), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_read_blocks(s, bad, 1, buf), DC_OK);
    CHECK(all_zero(buf, BS));
    uint64_t huge = UINT64_MAX;
    CHECK_RC(dc_store_read_blocks(s, &huge, 1, buf), DC_ERR_INVALID_ARGUMENT);

    /* NULL arguments; empty batches are fine. */
    CHECK_RC(dc_store_read_blocks(NULL, ids, 1, buf), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_read_blocks(s, NULL, 1, buf), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_read_blocks(s, ids, 1, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_write_blocks(s, ids, 1, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_read_blocks(s, NULL, 0, NULL), DC_OK);
    CHECK_RC(dc_store_write_blocks(s, NULL, 0, NULL), DC_OK);
    CHECK_RC(dc_store_sync(NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_sync(s), DC_OK);

    /* Repeated ids are undefined but must not crash. */
    uint64_t dup[3] = {5, 5, 5};
    CHECK_RC(dc_store_write_blocks(s, dup, 3, buf), DC_OK);
    CHECK_RC(dc_store_read_blocks(s, dup, 3, buf), DC_OK);
    dc_store_free(s);

    CHECK(dc_store_block_size(NULL) == 0 && dc_store_total_blocks(NULL) == 0);
    CHECK(dc_store_blocks_read(NULL) == 0 &&
          dc_store_blocks_written(NULL) == 0);
    dc_store_free(NULL);
}

/* ---- file and device stores ------------------------------------------ */

static char tmpdir[64];

static void tmp_path(char *out, size_t len, const char *name) {
    snprintf(out, len, "%s/%s", tmpdir, name);
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

typedef struct progress_log {
    int calls;
    uint64_t last_done, total;
    int monotonic;
    int cancel_at; /* cancel on this call (1-based); 0 never */
} progress_log;

static int on_progress(void *payload, uint64_t done, uint64_t total) {
    progress_log *p = payload;
    p->calls++;
    if (done < p->last_done)
        p->monotonic = 0;
    p->last_done = done;
    p->total = total;
    return p->cancel_at != 0 && p->calls == p->cancel_at;
}

static void test_file(void) {
    char path[128], other[128];
    tmp_path(path, sizeof path, "image");
    tmp_path(other, sizeof other, "other");

    /* 10 blocks of 1 MiB: three 4 MiB chunks, progress after each. */
    progress_log log = {.monotonic = 1};
    dc_store *s = (dc_store *)&s;
    CHECK_RC(dc_store_create_file(&s, path, 1u << 20, 10, on_progress, &log),
             DC_OK);
    CHECK(log.calls == 3 && log.last_done == 10 && log.total == 10);
    CHECK(log.monotonic);
    CHECK(file_size(path) == 10 << 20);
    CHECK(dc_store_total_blocks(s) == 10);
    /* Free space looks like ciphertext: no long zero runs, all byte values
     * about equally common. */
    unsigned char *big = malloc(1u << 20);
    uint64_t id = 9;
    CHECK_RC(dc_store_read_blocks(s, &id, 1, big), DC_OK);
    size_t hist[256] = {0};
    for (size_t i = 0; i < (1u << 20); i++)
        hist[big[i]]++;
    size_t lo = SIZE_MAX, hi = 0;
    for (int b = 0; b < 256; b++) {
        lo = hist[b] < lo ? hist[b] : lo;
        hi = hist[b] > hi ? hist[b] : hi;
    }
    CHECK(lo > 3500 && hi < 4700); /* expected 4096 each */
    free(big);
    dc_store_free(s);
    CHECK_RC(unlink(path), 0);

    /* Create, write runs and scattered ids, reopen. */
    CHECK_RC(dc_store_create_file(&s, path, BS, 32, NULL, NULL), DC_OK);
    CHECK(file_size(path) == 32 * BS);
    uint64_t ids[8] = {4, 5, 6, 7, 1, 31, 20, 21};
    write_ids(s, ids, 8, 3);
    CHECK(ids_hold(s, ids, 8, 3));
    uint64_t seq[4] = {4, 5, 6, 7};
    CHECK(ids_hold(s, seq, 4, 3));
    CHECK(dc_store_blocks_written(s) == 8);
    CHECK_RC(dc_store_sync(s), DC_OK);
    dc_store_free(s);

    CHECK_RC(dc_store_open_file(&s, path, BS, 0), DC_OK);
    CHECK(dc_store_total_blocks(s) == 32 && dc_store_block_size(s) == BS);
    CHECK(dc_store_blocks_read(s) == 0);
    CHECK(ids_hold(s, ids, 8, 3));
    dc_store_free(s);

    /* Read-only: reads work, writes are refused, sync is harmless. */
    CHECK_RC(dc_store_open_file(&s, path, BS, 1), DC_OK);
    CHECK(ids_hold(s, ids, 8, 3));
    unsigned char block[BS] = {0};
    CHECK_RC(dc_store_write_blocks(s, ids, 1, block), DC_ERR_READ_ONLY);
    CHECK_RC(dc_store_sync(s), DC_OK);
    dc_store_free(s);
    CHECK_RC(dc_store_open_file(&s, path, BS, 0), DC_OK);
    CHECK(ids_hold(s, ids, 1, 3));
    dc_store_free(s);

    /* At 64 KiB blocks this image has only 2 blocks. */
    CHECK_RC(dc_store_open_file(&s, path, 65536, 0), DC_ERR_CORRUPT);
    CHECK(s == NULL);

    /* create never replaces an existing file. */
    s = (dc_store *)&s;
    CHECK_RC(dc_store_create_file(&s, path, BS, 8, NULL, NULL),
             DC_ERR_ALREADY_EXISTS);
    CHECK(s == NULL);
    CHECK(file_size(path) == 32 * BS);

    /* Missing files; bad arguments. */
    CHECK_RC(dc_store_open_file(&s, other, BS, 0), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_store_open_file(&s, other, BS, 1), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_store_open_device(&s, other, BS, 0), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_store_open_file(&s, path, 1000, 0), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_open_file(&s, NULL, BS, 0), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_open_file(NULL, path, BS, 0), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_create_file(&s, other, BS, 3, NULL, NULL),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_create_file(&s, other, 5000, 8, NULL, NULL),
             DC_ERR_INVALID_ARGUMENT);
    CHECK(file_size(other) == -1);
    CHECK_RC(dc_store_open_file(&s, tmpdir, BS, 1), DC_ERR_NOT_A_FILE);

    /* Sizes that are not a whole number of blocks, or too few blocks. */
    CHECK_RC(truncate(path, 5 * BS + 100), 0);
    CHECK_RC(dc_store_open_file(&s, path, BS, 0), DC_ERR_CORRUPT);
    CHECK_RC(truncate(path, 3 * BS), 0);
    CHECK_RC(dc_store_open_file(&s, path, BS, 1), DC_ERR_CORRUPT);
    CHECK(s == NULL);

    /* A file that shrank under an open store: reading past EOF is an I/O
     * error, not zeros. */
    CHECK_RC(truncate(path, 8 * BS), 0);
    CHECK_RC(dc_store_open_file(&s, path, BS, 0), DC_OK);
    CHECK_RC(truncate(path, 6 * BS), 0);
    uint64_t seven = 7;
    CHECK_RC(dc_store_read_blocks(s, &seven, 1, block), DC_ERR_IO);
    dc_store_free(s);
    CHECK_RC(unlink(path), 0);

    /* Cancel: DC_ERR_CANCELLED and the partial file is gone. */
    progress_log stop = {.monotonic = 1, .cancel_at = 2};
    s = (dc_store *)&s;
    CHECK_RC(dc_store_create_file(&s, path, 1u << 20, 12, on_progress, &stop),
             DC_ERR_CANCELLED);
    CHECK(s == NULL && stop.calls == 2 && stop.last_done == 8);
    CHECK(file_size(path) == -1);
    /* Cancelling on the very last chunk still removes the file. */
    progress_log late = {.monotonic = 1, .cancel_at = 1};
    CHECK_RC(dc_store_create_file(&s, path, BS, 16, on_progress, &late),
             DC_ERR_CANCELLED);
    CHECK(file_size(path) == -1);
}

static void test_device(void) {
    char path[128];
    tmp_path(path, sizeof path, "device");
    /* A pre-sized, zero-filled file with a trailing partial block. */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK_RC(ftruncate(fd, 8 * BS + 100), 0);
    close(fd);

    dc_store *s = NULL;
    CHECK_RC(dc_store_open_file(&s, path, BS, 0), DC_ERR_CORRUPT);
    CHECK_RC(dc_store_open_device(&s, path, BS, 0), DC_OK);
    CHECK(dc_store_total_blocks(s) == 8);
    unsigned char buf[2 * BS];
    uint64_t first[2] = {0, 1};
    CHECK_RC(dc_store_read_blocks(s, first, 2, buf), DC_OK);
    CHECK(all_zero(buf, sizeof buf));
    uint64_t ids[5] = {7, 0, 1, 2, 5};
    write_ids(s, ids, 5, 9);
    CHECK_RC(dc_store_sync(s), DC_OK);
    dc_store_free(s);
    CHECK(file_size(path) == 8 * BS + 100); /* the tail is left alone */

    CHECK_RC(dc_store_open_device(&s, path, BS, 1), DC_OK);
    CHECK(ids_hold(s, ids, 5, 9));
    CHECK_RC(dc_store_write_blocks(s, ids, 1, buf), DC_ERR_READ_ONLY);
    dc_store_free(s);

    CHECK_RC(truncate(path, 3 * BS + 4000), 0);
    CHECK_RC(dc_store_open_device(&s, path, BS, 0), DC_ERR_CORRUPT);
    CHECK(s == NULL);
    CHECK_RC(unlink(path), 0);
}

/* ---- custom store ---------------------------------------------------- */

/* A memory backend that records what the store asks of it. */
typedef struct backend {
    uint32_t bs;
    uint64_t total;
    unsigned char *data;
    int bad_payload; /* set when a callback got another payload */
    int closes, syncs, reads, writes;
    int fail;          /* returned by read/write/sync when non-zero */
    uint64_t log[256]; /* ids of every write, in call order */
    size_t logged;
    size_t batch[64]; /* sizes of the write calls */
} backend;

static backend *be_of(void *payload, backend *expect) {
    backend *b = payload;
    if (expect != NULL && b != expect)
        b->bad_payload = 1;
    return b;
}

static backend *current; /* the backend the test expects callbacks for */

static int be_info(void *payload, uint32_t *bs, uint64_t *total) {
    backend *b = be_of(payload, current);
    *bs = b->bs;
    *total = b->total;
    return DC_OK;
}

static int be_read(void *payload, const uint64_t *ids, size_t count,
                   unsigned char *buf) {
    backend *b = be_of(payload, current);
    b->reads++;
    if (b->fail)
        return b->fail;
    for (size_t i = 0; i < count; i++)
        memcpy(buf + i * b->bs, b->data + ids[i] * b->bs, b->bs);
    return DC_OK;
}

static int be_write(void *payload, const uint64_t *ids, size_t count,
                    const unsigned char *buf) {
    backend *b = be_of(payload, current);
    if (b->fail)
        return b->fail;
    if (b->writes < 64)
        b->batch[b->writes] = count;
    b->writes++;
    for (size_t i = 0; i < count; i++) {
        memcpy(b->data + ids[i] * b->bs, buf + i * b->bs, b->bs);
        if (b->logged < 256)
            b->log[b->logged++] = ids[i];
    }
    return DC_OK;
}

static int be_sync(void *payload) {
    backend *b = be_of(payload, current);
    b->syncs++;
    return b->fail;
}

static void be_close(void *payload) { be_of(payload, current)->closes++; }

static void be_init(backend *b, uint64_t total) {
    memset(b, 0, sizeof *b);
    b->bs = BS;
    b->total = total;
    b->data = calloc(total, BS);
    current = b;
}

static const dc_store_backend be_vtable = {DC_STORE_BACKEND_VERSION,
                                           be_info,
                                           be_read,
                                           be_write,
                                           be_sync,
                                           be_close,
                                           NULL};

static int bad_info(void *payload, uint32_t *bs, uint64_t *total) {
    (void)payload;
    *bs = 3000;
    *total = 100;
    return DC_OK;
}

static int failing_info(void *payload, uint32_t *bs, uint64_t *total) {
    (void)payload;
    (void)bs;
    (void)total;
    return DC_ERR_AUTH;
}

static void test_custom(void) {
    backend b;
    be_init(&b, 16);
    dc_store_backend vt = be_vtable;
    dc_store *s = (dc_store *)&s;

    vt.version = DC_STORE_BACKEND_VERSION + 1;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_ERR_UNSUPPORTED);
    CHECK(s == NULL);
    /* A version 1 struct ends before `forget`: whatever lies there is not
     * read (here a pointer that must never be called). */
    vt = be_vtable;
    vt.version = 1;
    vt.forget = (int (*)(void *))(uintptr_t)1;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_OK);
    dc_store_free(s);
    CHECK(b.closes == 1);
    b.closes = 0;
    vt = be_vtable;
    vt.read_blocks = NULL;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_ERR_INVALID_ARGUMENT);
    vt = be_vtable;
    vt.sync = NULL;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_ERR_INVALID_ARGUMENT);
    vt = be_vtable;
    vt.info = bad_info;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_ERR_INVALID_ARGUMENT);
    vt.info = failing_info;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_ERR_AUTH);
    CHECK_RC(dc_store_new_custom(&s, NULL, &b), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_custom(NULL, &be_vtable, &b),
             DC_ERR_INVALID_ARGUMENT);
    CHECK(b.closes == 0); /* failed constructors leave the payload alone */

    /* The vtable is copied: changing ours afterwards changes nothing. */
    vt = be_vtable;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_OK);
    memset(&vt, 0, sizeof vt);
    CHECK(dc_store_block_size(s) == BS && dc_store_total_blocks(s) == 16);
    uint64_t ids[3] = {15, 4, 8};
    write_ids(s, ids, 3, 5);
    CHECK(b.writes == 1 && b.batch[0] == 3); /* forwarded as one batch */
    CHECK(b.log[0] == 15 && b.log[1] == 4 && b.log[2] == 8); /* unchanged */
    CHECK(ids_hold(s, ids, 3, 5));
    CHECK(b.reads == 1);
    CHECK_RC(dc_store_sync(s), DC_OK);
    CHECK(b.syncs == 1);
    CHECK(dc_store_blocks_read(s) == 3 && dc_store_blocks_written(s) == 3);

    /* Errors: DC codes pass through, anything else is an I/O error. */
    unsigned char buf[2 * BS];
    b.fail = DC_ERR_NO_SPACE;
    CHECK_RC(dc_store_write_blocks(s, ids, 1, buf), DC_ERR_NO_SPACE);
    b.fail = DC_ERR_AUTH;
    CHECK_RC(dc_store_read_blocks(s, ids, 1, buf), DC_ERR_AUTH);
    b.fail = -105; /* the network band */
    CHECK_RC(dc_store_read_blocks(s, ids, 1, buf), -105);
    b.fail = -1000;
    CHECK_RC(dc_store_read_blocks(s, ids, 1, buf), DC_ERR_IO);
    CHECK_RC(dc_store_sync(s), DC_ERR_IO);
    b.fail = 1;
    CHECK_RC(dc_store_write_blocks(s, ids, 1, buf), DC_ERR_IO);
    b.fail = 0;
    CHECK(dc_store_blocks_read(s) == 3 && dc_store_blocks_written(s) == 3);

    /* The backend never sees an id twice or out of range. */
    int reads = b.reads;
    uint64_t dup[2] = {3, 3};
    CHECK_RC(dc_store_read_blocks(s, dup, 2, buf), DC_ERR_INVALID_ARGUMENT);
    uint64_t dup2[3] = {9, 2, 9};
    CHECK_RC(dc_store_write_blocks(s, dup2, 3, buf), DC_ERR_INVALID_ARGUMENT);
    uint64_t out[1] = {16};
    CHECK_RC(dc_store_read_blocks(s, out, 1, buf), DC_ERR_INVALID_ARGUMENT);
    CHECK(b.reads == reads);

    dc_store_free(s);
    CHECK(b.closes == 1 && !b.bad_payload);
    free(b.data);

    /* close may be NULL. */
    be_init(&b, 8);
    vt = be_vtable;
    vt.close = NULL;
    CHECK_RC(dc_store_new_custom(&s, &vt, &b), DC_OK);
    dc_store_free(s);
    CHECK(b.closes == 0);
    free(b.data);
}

/* ---- cache ----------------------------------------------------------- */

static dc_store *custom_over(backend *b, uint64_t total) {
    be_init(b, total);
    dc_store *s = NULL;
    CHECK_RC(dc_store_new_custom(&s, &be_vtable, b), DC_OK);
    return s;
}

static void test_cache_basics(void) {
    dc_store *inner = NULL, *c = (dc_store *)&c;
    /* Failures still take the inner store (closed once). */
    backend b;
    CHECK_RC(dc_store_new_cached(&c, custom_over(&b, 8), 0),
             DC_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL && b.closes == 1);
    free(b.data);
    CHECK_RC(dc_store_new_cached(NULL, custom_over(&b, 8), 4),
             DC_ERR_INVALID_ARGUMENT);
    CHECK(b.closes == 1);
    free(b.data);
    CHECK_RC(dc_store_new_cached(&c, NULL, 4), DC_ERR_INVALID_ARGUMENT);

    /* Reads populate the cache; hits do not reach the inner store. */
    CHECK_RC(dc_store_new_memory(&inner, BS, 64), DC_OK);
    uint64_t ids[6] = {10, 11, 12, 40, 41, 3};
    write_ids(inner, ids, 6, 2);
    CHECK_RC(dc_store_new_cached(&c, inner, 8), DC_OK);
    CHECK(dc_store_block_size(c) == BS && dc_store_total_blocks(c) == 64);
    CHECK(ids_hold(c, ids, 6, 2));
    CHECK(dc_store_blocks_read(inner) == 6);
    CHECK(ids_hold(c, ids, 6, 2));
    uint64_t some[2] = {41, 10};
    CHECK(ids_hold(c, some, 2, 2));
    CHECK(dc_store_blocks_read(inner) == 6);
    CHECK(dc_store_blocks_read(c) == 14);

    /* A mix of hits and misses in one call. */
    uint64_t mix[4] = {50, 10, 51, 3};
    unsigned char buf[4 * BS];
    CHECK_RC(dc_store_read_blocks(c, mix, 4, buf), DC_OK);
    CHECK(all_zero(buf, BS) && all_zero(buf + 2 * BS, BS));
    CHECK(is_pattern(buf + BS, BS, 10, 2) &&
          is_pattern(buf + 3 * BS, BS, 3, 2));
    CHECK(dc_store_blocks_read(inner) == 8);

    /* Writes are visible at once, reach the inner store on sync. */
    uint64_t w[2] = {11, 60};
    write_ids(c, w, 2, 7);
    CHECK(ids_hold(c, w, 2, 7));
    CHECK(dc_store_blocks_written(inner) == 6);
    CHECK(ids_hold(inner, w, 1, 2)); /* still the old data */
    CHECK(dc_store_blocks_written(c) == 2);
    CHECK_RC(dc_store_sync(c), DC_OK);
    CHECK(dc_store_blocks_written(inner) == 8);
    CHECK(ids_hold(inner, w, 2, 7));
    CHECK_RC(dc_store_sync(c), DC_OK); /* nothing dirty: no writes */
    CHECK(dc_store_blocks_written(inner) == 8);

    /* Out of range ids are refused before anything happens. */
    uint64_t bad = 64;
    CHECK_RC(dc_store_read_blocks(c, &bad, 1, buf), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_write_blocks(c, &bad, 1, buf), DC_ERR_INVALID_ARGUMENT);

    /* Repeated ids: undefined, but no crash and the cache stays sound. */
    uint64_t dup[4] = {30, 30, 10, 30};
    CHECK_RC(dc_store_read_blocks(c, dup, 4, buf), DC_OK);
    CHECK_RC(dc_store_write_blocks(c, dup, 4, buf), DC_OK);
    CHECK_RC(dc_store_read_blocks(c, dup, 4, buf), DC_OK);
    CHECK_RC(dc_store_sync(c), DC_OK);
    dc_store_free(c); /* frees inner too (ASan/valgrind check the leak) */

    /* A cache over a read-only store is read-only. */
    char path[128];
    tmp_path(path, sizeof path, "ro");
    CHECK_RC(dc_store_create_file(&inner, path, BS, 8, NULL, NULL), DC_OK);
    dc_store_free(inner);
    CHECK_RC(dc_store_open_file(&inner, path, BS, 1), DC_OK);
    CHECK_RC(dc_store_new_cached(&c, inner, 4), DC_OK);
    CHECK_RC(dc_store_write_blocks(c, ids, 1, buf), DC_ERR_READ_ONLY);
    CHECK_RC(dc_store_read_blocks(c, &ids[5], 1, buf), DC_OK);
    CHECK_RC(dc_store_sync(c), DC_OK);
    dc_store_free(c);
    CHECK_RC(unlink(path), 0);
}

static void test_cache_eviction(void) {
    /* 20 writes into a 4-entry cache, one at a time: evictions write the
     * older blocks back and every block survives. */
    dc_store *inner = NULL, *c = NULL;
    CHECK_RC(dc_store_new_memory(&inner, BS, 64), DC_OK);
    CHECK_RC(dc_store_new_cached(&c, inner, 4), DC_OK);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++) {
        ids[i] = (uint64_t)(i * 3 % 64);
        write_ids(c, &ids[i], 1, 4);
    }
    CHECK(dc_store_blocks_written(inner) == 16);
    CHECK(ids_hold(c, ids, 20, 4));
    CHECK_RC(dc_store_sync(c), DC_OK);
    CHECK(dc_store_blocks_written(inner) == 20);
    CHECK(ids_hold(inner, ids, 20, 4));

    /* Batches bigger than the cache, both ways. */
    uint64_t big[12];
    for (int i = 0; i < 12; i++)
        big[i] = (uint64_t)(63 - i * 5);
    write_ids(c, big, 12, 6);
    CHECK(ids_hold(c, big, 12, 6));
    CHECK_RC(dc_store_sync(c), DC_OK);
    CHECK(ids_hold(inner, big, 12, 6));
    dc_store_free(c);

    /* With a recording backend: misses are fetched in one call; evictions
     * and syncs write back in ascending id order, batched. */
    backend b;
    CHECK_RC(dc_store_new_cached(&c, custom_over(&b, 64), 4), DC_OK);
    uint64_t many[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    unsigned char buf[10 * BS];
    CHECK_RC(dc_store_read_blocks(c, many, 10, buf), DC_OK);
    CHECK(b.reads == 1);
    CHECK_RC(dc_store_read_blocks(c, many + 6, 4, buf), DC_OK); /* cached */
    CHECK(b.reads == 1);

    uint64_t first[4] = {30, 10, 20, 40};
    write_ids(c, first, 4, 1); /* evicts the 4 clean blocks: no writes */
    CHECK(b.writes == 0);
    uint64_t second[4] = {50, 51, 52, 53};
    write_ids(c, second, 4, 1);
    CHECK(b.writes == 1 && b.batch[0] == 4); /* one batched write-back */
    CHECK(b.logged == 4 && b.log[0] == 10 && b.log[1] == 20 && b.log[2] == 30 &&
          b.log[3] == 40);

    /* 53 and 51 hit; 5 and 4 evict the two least recent (52, 50), both
     * dirty, in one call. */
    uint64_t scattered[4] = {53, 51, 5, 4};
    write_ids(c, scattered, 4, 2);
    CHECK(b.writes == 2 && b.batch[1] == 2);
    CHECK(b.log[4] == 50 && b.log[5] == 52);
    b.logged = 0;
    CHECK_RC(dc_store_sync(c), DC_OK);
    CHECK(b.writes == 3 && b.batch[2] == 4 && b.syncs == 1);
    CHECK(b.logged == 4 && b.log[0] == 4 && b.log[1] == 5 && b.log[2] == 51 &&
          b.log[3] == 53);
    CHECK(ids_hold(c, first, 4, 1) && ids_hold(c, scattered, 4, 2));

    /* A root pointer (or the header) goes to the inner store at once,
     * after everything dirty before it, without a sync. */
    uint64_t data_block = 7, root_pointer = DC_FIRST_DATA_BLOCK - 1;
    write_ids(c, &data_block, 1, 3);
    CHECK(b.writes == 3);
    b.logged = 0;
    write_ids(c, &root_pointer, 1, 3);
    CHECK(b.writes == 5 && b.syncs == 1); /* the data, then the pointer */
    CHECK(b.logged == 2 && b.log[0] == 7 && b.log[1] == root_pointer);

    /* A failed write-back loses nothing: the data stays cached, dirty. */
    uint64_t more[2] = {60, 61};
    write_ids(c, more, 2, 8);
    b.fail = DC_ERR_IO;
    unsigned char block[BS];
    pattern(block, BS, 62, 8);
    uint64_t id62 = 62;
    int writes = b.writes;
    /* Fill up and force an eviction of dirty data. */
    uint64_t fill[2] = {62, 63};
    unsigned char two[2 * BS];
    pattern(two, BS, 62, 8);
    pattern(two + BS, BS, 63, 8);
    /* Evicts two clean blocks: nothing to write back. */
    CHECK_RC(dc_store_write_blocks(c, fill, 2, two), DC_OK);
    CHECK_RC(dc_store_write_blocks(c, &id62, 1, block), DC_OK); /* a hit */
    uint64_t id1 = 1;
    CHECK_RC(dc_store_write_blocks(c, &id1, 1, block), DC_ERR_IO);
    CHECK_RC(dc_store_sync(c), DC_ERR_IO);
    b.fail = 0;
    CHECK(b.writes == writes);
    CHECK_RC(dc_store_sync(c), DC_OK);
    uint64_t all[4] = {60, 61, 62, 63};
    CHECK(ids_hold(c, all, 4, 8));
    dc_store_free(c);
    CHECK(b.closes == 1);
    current = &b;
    {
        /* What the backend holds after the sync. */
        dc_store *raw = NULL;
        CHECK_RC(dc_store_new_custom(&raw, &be_vtable, &b), DC_OK);
        CHECK(ids_hold(raw, all, 4, 8));
        dc_store_free(raw);
    }

    /* Freeing without sync drops dirty blocks (no implicit sync). */
    b.logged = 0;
    b.writes = 0;
    CHECK_RC(dc_store_new_cached(&c, NULL, 4), DC_ERR_INVALID_ARGUMENT);
    dc_store *raw = NULL;
    CHECK_RC(dc_store_new_custom(&raw, &be_vtable, &b), DC_OK);
    CHECK_RC(dc_store_new_cached(&c, raw, 4), DC_OK);
    write_ids(c, more, 2, 9);
    dc_store_free(c);
    CHECK(b.writes == 0 && b.closes == 3);
    free(b.data);
}

/* ---- threads --------------------------------------------------------- */

typedef struct worker {
    dc_store *s;
    uint64_t base;
    int ok;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    unsigned char buf[BS];
    w->ok = 1;
    for (unsigned round = 0; round < 50; round++) {
        for (uint64_t k = 0; k < 8; k++) {
            uint64_t id = w->base + k;
            pattern(buf, BS, id, round);
            if (dc_store_write_blocks(w->s, &id, 1, buf) != DC_OK)
                w->ok = 0;
        }
        for (uint64_t k = 0; k < 8; k++) {
            uint64_t id = w->base + k;
            if (dc_store_read_blocks(w->s, &id, 1, buf) != DC_OK ||
                !is_pattern(buf, BS, id, round))
                w->ok = 0;
        }
    }
    return NULL;
}

static void test_threads(void) {
    dc_store *inner = NULL, *c = NULL;
    CHECK_RC(dc_store_new_memory(&inner, BS, 64), DC_OK);
    CHECK_RC(dc_store_new_cached(&c, inner, 12), DC_OK);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){c, (uint64_t)i * 16, 0};
        CHECK_RC(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].ok);
    }
    CHECK(dc_store_blocks_written(c) == 4 * 50 * 8);
    CHECK(dc_store_blocks_read(c) == 4 * 50 * 8);
    dc_store_free(c);
}

void test_store(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dc_test_store_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    test_memory();
    test_file();
    test_device();
    test_custom();
    test_cache_basics();
    test_cache_eviction();
    test_threads();
    CHECK_RC(rmdir(tmpdir), 0); /* every test removed its files */
}
