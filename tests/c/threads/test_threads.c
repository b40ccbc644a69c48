/* test_threads.c - one dc_fs shared by 8 threads, built with
 * -fsanitize=thread by `make tsan` (docs/RELIABILITY.md, "Threads").
 *
 * Each thread owns the subtree /t<i> and does a random mix of operations in
 * it - create, write, overwrite, truncate, read, stat, rename (files and
 * directories, within its subtree), remove, rmdir, listdir, a few changes in
 * a transaction - checking every result against its own model. Now and then
 * a thread also reads the shared file /shared, or calls statvfs, sync, fsck
 * and in_transaction on the handle, which touch state every thread shares. The
 * store is a write-back cache over a custom backend on a buffer, and the codec
 * has worker threads, so their locks are exercised too.
 *
 * At the end the whole tree must be exactly the union of the models, fsck
 * must be clean, and the same must hold after a remount. The program prints
 * one line with the number of operations; it exits non-zero on any mismatch
 * (ThreadSanitizer makes it fail on any data race).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doublecrypt.h"

#define THREADS 8
#define OPS_PER_THREAD 1000
#define BS 4096u
#define BLOCKS 8192u
#define MAX_ENTRIES 24
#define MAX_FILE (3 * (BS - DC_CODEC_OVERHEADBYTES) + 100)
#define PATH_CAP 128

static const unsigned char key[DC_KDF_MASTER_KEYBYTES] = {8, 6, 7, 5, 3, 0, 9};
static atomic_int failures;
static atomic_long ops_done, transactions, entries_at_end;
static dc_fs *fs;

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        atomic_fetch_add(&failures, 1);                                        \
    } while (0)

#define EXPECT_RC(expr, expected)                                              \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != (expected))                                                 \
            FAIL("%s:%d: %s = %d (%s), expected %d", __FILE__, __LINE__,       \
                 #expr, rc_, dc_strerror(rc_), (int)(expected));               \
    } while (0)

/* ---- the store: a buffer behind a custom backend ---- */

static unsigned char *disk;

static int disk_info(void *p, uint32_t *bs, uint64_t *blocks) {
    (void)p;
    *bs = BS;
    *blocks = BLOCKS;
    return DC_OK;
}

static int disk_read(void *p, const uint64_t *ids, size_t n,
                     unsigned char *buf) {
    (void)p;
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * BS, disk + ids[i] * BS, BS);
    return DC_OK;
}

static int disk_write(void *p, const uint64_t *ids, size_t n,
                      const unsigned char *buf) {
    (void)p;
    for (size_t i = 0; i < n; i++)
        memcpy(disk + ids[i] * BS, buf + i * BS, BS);
    return DC_OK;
}

static int disk_sync(void *p) {
    (void)p;
    return DC_OK;
}

static dc_store *open_store(void) {
    static const dc_store_backend backend = {DC_STORE_BACKEND_VERSION,
                                             disk_info,
                                             disk_read,
                                             disk_write,
                                             disk_sync,
                                             NULL,
                                             NULL};
    dc_store *custom = NULL, *cached = NULL;
    if (dc_store_new_custom(&custom, &backend, NULL) != DC_OK ||
        dc_store_new_cached(&cached, custom, 64) != DC_OK) {
        fprintf(stderr, "cannot open the store\n");
        exit(1);
    }
    return cached;
}

/* ---- models ---- */

typedef struct entry {
    char path[PATH_CAP]; /* absolute */
    int is_dir;
    size_t len;
    unsigned char *data; /* files: len bytes */
} entry;

typedef struct model {
    int id;
    uint64_t rng;
    entry e[MAX_ENTRIES];
    size_t n;
    long ops;
    unsigned char buf[MAX_FILE + 16];
} model;

static uint64_t next_random(model *m) {
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

static size_t pick(model *m, size_t n) { return (size_t)(next_random(m) % n); }

static void fill(model *m, unsigned char *p, size_t n) {
    uint64_t x = next_random(m);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(x >> (i % 8 * 8)) ^ (unsigned char)i;
}

/* An entry of the given type (-1: any), or -1. */
static int any_entry(model *m, int is_dir) {
    int idx[MAX_ENTRIES], k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (is_dir < 0 || m->e[i].is_dir == is_dir)
            idx[k++] = (int)i;
    return k ? idx[pick(m, (size_t)k)] : -1;
}

static int find(const model *m, const char *path) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].path, path) == 0)
            return (int)i;
    return -1;
}

/* A directory of the thread's subtree: its root or one of its dirs. */
static void some_dir(model *m, char *out) {
    int d = any_entry(m, 1);
    if (d < 0 || pick(m, 3) == 0)
        snprintf(out, PATH_CAP, "/t%d", m->id);
    else
        snprintf(out, PATH_CAP, "%s", m->e[d].path);
}

/* A new random name in one of the thread's directories; 0 if the path is
 * already taken or too long. */
static int new_path(model *m, char *out, const char *prefix) {
    char dir[PATH_CAP];
    some_dir(m, dir);
    int n = snprintf(out, PATH_CAP, "%s/%s%u", dir, prefix,
                     (unsigned)(next_random(m) % 1000));
    return n > 0 && n < PATH_CAP && find(m, out) < 0;
}

static int has_children(const model *m, const char *dir) {
    size_t n = strlen(dir);
    for (size_t i = 0; i < m->n; i++)
        if (strncmp(m->e[i].path, dir, n) == 0 && m->e[i].path[n] == '/')
            return 1;
    return 0;
}

static void remove_entry(model *m, int i) {
    free(m->e[i].data);
    m->e[i] = m->e[--m->n];
}

static void check_file(model *m, const entry *e) {
    size_t got = 0;
    dc_stat st;
    EXPECT_RC(dc_fs_read(fs, e->path, 0, m->buf, sizeof m->buf, &got), DC_OK);
    if (got != e->len || (e->len && memcmp(m->buf, e->data, e->len) != 0))
        FAIL("thread %d: %s reads %zu bytes, expected %zu", m->id, e->path, got,
             e->len);
    EXPECT_RC(dc_fs_stat(fs, e->path, &st), DC_OK);
    if (st.type != DC_TYPE_FILE || st.size != e->len)
        FAIL("thread %d: stat %s", m->id, e->path);
}

/* The entries of directory `dir` in the volume equal the model's. */
static void check_listing(model *m, const char *dir) {
    char expected[MAX_ENTRIES][PATH_CAP], name[DC_MAX_NAME_BYTES + 1];
    size_t n = 0, dlen = strlen(dir);
    for (size_t i = 0; i < m->n; i++) {
        const char *p = m->e[i].path;
        if (strncmp(p, dir, dlen) == 0 && p[dlen] == '/' &&
            strchr(p + dlen + 1, '/') == NULL)
            snprintf(expected[n++], PATH_CAP, "%s", p + dlen + 1);
    }
    dc_dir *d = NULL;
    dc_stat st;
    size_t seen = 0;
    EXPECT_RC(dc_fs_opendir(&d, fs, dir), DC_OK);
    int rc;
    while (d != NULL && (rc = dc_dir_next(d, name, sizeof name, &st)) == 1) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= strcmp(expected[i], name) == 0;
        if (!found)
            FAIL("thread %d: unexpected %s/%s", m->id, dir, name);
        seen++;
    }
    dc_dir_free(d);
    if (seen != n)
        FAIL("thread %d: %s lists %zu entries, expected %zu", m->id, dir, seen,
             n);
}

/* ---- one operation ---- */

static void op_create(model *m) {
    if (m->n == MAX_ENTRIES)
        return;
    entry *e = &m->e[m->n];
    if (!new_path(m, e->path, "f"))
        return;
    e->is_dir = 0;
    e->len = pick(m, MAX_FILE);
    e->data = malloc(e->len + 1);
    fill(m, e->data, e->len);
    EXPECT_RC(dc_fs_create(fs, e->path, 0644, 1), DC_OK);
    EXPECT_RC(dc_fs_write(fs, e->path, 0, e->data, e->len), DC_OK);
    m->n++;
}

static void op_mkdir(model *m) {
    if (m->n == MAX_ENTRIES)
        return;
    entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    if (!new_path(m, e->path, "d"))
        return;
    e->is_dir = 1;
    EXPECT_RC(dc_fs_mkdir(fs, e->path, 0755), DC_OK);
    m->n++;
}

static void op_write(model *m) {
    int i = any_entry(m, 0);
    if (i < 0)
        return;
    entry *e = &m->e[i];
    size_t at = pick(m, e->len + 200), n = pick(m, 3000);
    if (at + n > MAX_FILE)
        return;
    if (at + n > e->len) {
        e->data = realloc(e->data, at + n + 1);
        memset(e->data + e->len, 0, at + n - e->len); /* a gap reads 0 */
        e->len = at + n;
    }
    fill(m, e->data + at, n);
    EXPECT_RC(dc_fs_write(fs, e->path, at, e->data + at, n), DC_OK);
}

static void op_truncate(model *m) {
    int i = any_entry(m, 0);
    if (i < 0)
        return;
    entry *e = &m->e[i];
    size_t size = pick(m, MAX_FILE);
    if (size > e->len) {
        e->data = realloc(e->data, size + 1);
        memset(e->data + e->len, 0, size - e->len);
    }
    e->len = size;
    EXPECT_RC(dc_fs_truncate(fs, e->path, size), DC_OK);
}

static void op_rename(model *m) {
    int i = any_entry(m, -1);
    if (i < 0)
        return;
    char to[PATH_CAP], from[PATH_CAP];
    snprintf(from, sizeof from, "%s", m->e[i].path);
    if (!new_path(m, to, m->e[i].is_dir ? "d" : "f"))
        return;
    size_t flen = strlen(from), tlen = strlen(to);
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return;                       /* a directory into itself */
    for (size_t k = 0; k < m->n; k++) /* every moved path must fit */
        if (strncmp(m->e[k].path, from, flen) == 0 &&
            tlen + strlen(m->e[k].path) - flen >= PATH_CAP)
            return;
    EXPECT_RC(dc_fs_rename(fs, from, to), DC_OK);
    for (size_t k = 0; k < m->n; k++) {
        char *p = m->e[k].path, moved[PATH_CAP];
        if (strncmp(p, from, flen) == 0 && (p[flen] == '/' || p[flen] == 0)) {
            memcpy(moved, to, tlen);
            memcpy(moved + tlen, p + flen, strlen(p + flen) + 1);
            memcpy(p, moved, strlen(moved) + 1);
        }
    }
}

static void op_remove(model *m) {
    int i = any_entry(m, -1);
    if (i < 0)
        return;
    if (m->e[i].is_dir) {
        if (has_children(m, m->e[i].path)) {
            EXPECT_RC(dc_fs_rmdir(fs, m->e[i].path),
                      DC_ERR_DIRECTORY_NOT_EMPTY);
            return;
        }
        EXPECT_RC(dc_fs_rmdir(fs, m->e[i].path), DC_OK);
    } else {
        EXPECT_RC(dc_fs_remove(fs, m->e[i].path), DC_OK);
    }
    remove_entry(m, i);
}

static void op_read(model *m) {
    int i = any_entry(m, 0);
    if (i >= 0)
        check_file(m, &m->e[i]);
}

static void op_list(model *m) {
    char dir[PATH_CAP];
    some_dir(m, dir);
    check_listing(m, dir);
}

static void op_shared(model *m) {
    size_t got = 0;
    dc_statvfs v;
    EXPECT_RC(dc_fs_read(fs, "/shared", 0, m->buf, sizeof m->buf, &got), DC_OK);
    for (size_t i = 0; i < got; i++)
        if (m->buf[i] != (unsigned char)(i * 13))
            FAIL("thread %d: /shared byte %zu", m->id, i);
    EXPECT_RC(dc_fs_statvfs(fs, &v), DC_OK);
    int in_txn = dc_fs_in_transaction(fs); /* another thread's, perhaps */
    if (in_txn != 0 && in_txn != 1)
        FAIL("thread %d: dc_fs_in_transaction gave %d", m->id, in_txn);
    switch (pick(m, 8)) {
    case 0:
        EXPECT_RC(dc_fs_sync(fs), DC_OK);
        break;
    case 1: {
        dc_fsck_report r;
        int rc = dc_fs_fsck(fs, &r);
        /* Refused while another thread's transaction is open. */
        if (rc != DC_OK && rc != DC_ERR_INVALID_ARGUMENT)
            FAIL("thread %d: fsck: %s", m->id, dc_strerror(rc));
        break;
    }
    case 2:
        EXPECT_RC(dc_fs_stat(fs, "/nope", &(dc_stat){0}), DC_ERR_NOT_FOUND);
        break;
    }
}

/* A few changes in one transaction. The transaction belongs to the handle,
 * so other threads' changes made meanwhile join it; it is always committed
 * (never aborted), so every model stays true. If another thread's
 * transaction is open, the changes simply join that one. */
static void op_transaction(model *m) {
    int rc = dc_fs_begin(fs);
    if (rc != DC_OK && rc != DC_ERR_INVALID_ARGUMENT)
        FAIL("thread %d: begin: %s", m->id, dc_strerror(rc));
    op_create(m);
    op_write(m);
    op_mkdir(m);
    if (rc == DC_OK) {
        EXPECT_RC(dc_fs_commit(fs), DC_OK);
        atomic_fetch_add(&transactions, 1);
    }
}

static void *worker(void *arg) {
    model *m = arg;
    char root[PATH_CAP];
    snprintf(root, sizeof root, "/t%d", m->id);
    EXPECT_RC(dc_fs_mkdir(fs, root, 0755), DC_OK);
    static void (*const ops[])(model *) = {
        op_create,   op_create, op_mkdir,  op_write,      op_write,
        op_truncate, op_rename, op_rename, op_remove,     op_read,
        op_read,     op_list,   op_shared, op_transaction};
    for (int k = 0; k < OPS_PER_THREAD; k++) {
        ops[pick(m, sizeof ops / sizeof ops[0])](m);
        m->ops++;
    }
    /* Everything the model holds, once more. */
    for (size_t i = 0; i < m->n; i++)
        if (!m->e[i].is_dir)
            check_file(m, &m->e[i]);
    check_listing(m, root);
    atomic_fetch_add(&ops_done, m->ops);
    atomic_fetch_add(&entries_at_end, (long)m->n);
    return NULL;
}

/* ---- the final state ---- */

/* Every entry under `dir` is in one of the models (and is checked); counts
 * what it finds in *found. */
static void walk(model *models, const char *dir, size_t *found) {
    dc_dir *d = NULL;
    dc_stat st;
    char name[DC_MAX_NAME_BYTES + 1], path[PATH_CAP + DC_MAX_NAME_BYTES + 2];
    EXPECT_RC(dc_fs_opendir(&d, fs, dir), DC_OK);
    while (d != NULL && dc_dir_next(d, name, sizeof name, &st) == 1) {
        snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") ? dir : "", name);
        if (strcmp(path, "/shared") == 0)
            continue;
        int t = -1, i = -1;
        if (sscanf(path, "/t%d", &t) == 1 && t >= 0 && t < THREADS)
            i = find(&models[t], path);
        int root = strchr(path + 1, '/') == NULL;
        if (root && st.type == DC_TYPE_DIRECTORY && t >= 0) {
            walk(models, path, found);
            continue;
        }
        if (i < 0) {
            FAIL("%s is in no model", path);
            continue;
        }
        (*found)++;
        const entry *e = &models[t].e[i];
        if (e->is_dir != (st.type == DC_TYPE_DIRECTORY))
            FAIL("%s has the wrong type", path);
        if (e->is_dir)
            walk(models, path, found);
        else
            check_file(&models[t], e);
    }
    dc_dir_free(d);
}

static void check_union(model *models) {
    size_t entries = 0, dirs = 0, found = 0;
    for (int t = 0; t < THREADS; t++)
        for (size_t i = 0; i < models[t].n; i++) {
            entries++;
            dirs += (size_t)models[t].e[i].is_dir;
        }
    walk(models, "/", &found);
    if (found != entries)
        FAIL("the volume holds %zu entries, the models %zu", found, entries);
    dc_fsck_report r;
    EXPECT_RC(dc_fs_fsck(fs, &r), DC_OK);
    /* Files: the models' and /shared; directories: the models' and the
     * threads' roots (the root directory is not counted). */
    if (r.errors || r.leaked_blocks || r.files != entries - dirs + 1 ||
        r.directories != dirs + THREADS)
        FAIL("fsck: %llu errors, %llu leaked, %llu files, %llu directories",
             (unsigned long long)r.errors, (unsigned long long)r.leaked_blocks,
             (unsigned long long)r.files, (unsigned long long)r.directories);
}

int main(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (dc_init() != DC_OK)
        return 1;
    disk = calloc(BLOCKS, BS);
    dc_fs_options o;
    dc_fs_options_init(&o);
    o.threads = 2;
    EXPECT_RC(dc_fs_format(&fs, open_store(), key, &o), DC_OK);
    unsigned char shared[10000];
    for (size_t i = 0; i < sizeof shared; i++)
        shared[i] = (unsigned char)(i * 13);
    EXPECT_RC(dc_fs_create(fs, "/shared", 0644, 1), DC_OK);
    EXPECT_RC(dc_fs_write(fs, "/shared", 0, shared, sizeof shared), DC_OK);

    static model models[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        models[t].id = t;
        models[t].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
        pthread_create(&threads[t], NULL, worker, &models[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    check_union(models);
    dc_fs_free(fs);
    EXPECT_RC(dc_fs_mount(&fs, open_store(), key, &o), DC_OK);
    check_union(models);
    dc_fs_free(fs);

    for (int t = 0; t < THREADS; t++)
        for (size_t i = 0; i < models[t].n; i++)
            free(models[t].e[i].data);
    free(disk);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int failed = atomic_load(&failures);
    printf("threads: %d threads, %ld operations on one dc_fs (%ld "
           "transactions), %ld entries at the end, %d failures (%.1f s)\n",
           THREADS, atomic_load(&ops_done), atomic_load(&transactions),
           atomic_load(&entries_at_end), failed, secs);
    return failed ? 1 : 0;
}
