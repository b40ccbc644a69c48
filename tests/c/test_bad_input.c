/* test_bad_input.c - every public entry point with bad arguments.
 *
 * Each ROW(function, case, expected status, call) runs its call on a fresh
 * fixture: a volume (on a custom store over a buffer, so it outlives its
 * handle) mounted read-write, plus whatever else the call asks for (a read-only
 * mount, a codec, an allocator, a directory cursor, a doublecrypt-core
 * handle, ...). The call must give the documented status; calls that return
 * no status are written as IS(condition) or VOID(call). Afterwards the
 * fixture's handle is freed and the volume must mount again, pass fsck and
 * still hold its files: no bad input damages a volume.
 *
 * Constructors must also leave *out NULL on failure (NULLED). Every function
 * of the public headers (csrc/header_decls.py) has a row here or an entry in
 * no_rows[] with the reason; tests/test_bad_input.py checks that.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doublecrypt.h"
#include "doublecrypt_core.h"
#include "unit.h"

#define BS 4096u
#define DISK_BLOCKS 256u
#define INVAL DC_ERR_INVALID_ARGUMENT
#define TWO_63 ((uint64_t)1 << 63)
#define PASS "bad input passphrase"
#define PASS_LEN (sizeof PASS - 1)
#define HELLO "hello world"

/* A call that returns no status: DC_OK when `cond` holds. */
#define IS(cond) ((cond) ? DC_OK : DC_ERR_INTERNAL)
#define VOID(call) ((call), DC_OK)
/* A constructor call that fails must leave *out NULL: f->field is set to a
 * sentinel first. */
#define NULLED(field, call)                                                    \
    (f->field = (void *)&sentinel, f->rc = (call),                             \
     f->field == NULL ? f->rc : DC_ERR_INTERNAL)
#define ROW(fn, what, expected, call)                                          \
    do {                                                                       \
        fx_up(f);                                                              \
        int rc_ = (call);                                                      \
        fx_down(f, #fn, what, expected, rc_, __LINE__);                        \
    } while (0)

/* Functions with nothing to get wrong: no arguments. */
static const char *const no_rows[][2] = {
    {"dc_init", "takes no arguments"},
    {"dc_abi_version", "takes no arguments"},
    {"dc_version_number", "takes no arguments"},
    {"dc_version_string", "takes no arguments"},
    {"dc_codec_keybytes", "takes no arguments"},
    {"dc_codec_volume_idbytes", "takes no arguments"},
    {"dc_codec_noncebytes", "takes no arguments"},
    {"dc_codec_tagbytes", "takes no arguments"},
    {"dc_codec_headerbytes", "takes no arguments"},
    {"dc_codec_overheadbytes", "takes no arguments"},
    {"dc_min_block_size", "takes no arguments"},
    {"dc_max_block_size", "takes no arguments"},
    {"dc_default_block_size", "takes no arguments"},
    {"dc_format_version", "takes no arguments"},
    {"dc_kdf_master_keybytes", "takes no arguments"},
    {"dc_kdf_subkeybytes", "takes no arguments"},
    {"dc_first_data_block", "takes no arguments"},
};

static const unsigned char key[DC_KDF_MASTER_KEYBYTES] = {42, 1, 2, 3};
static const unsigned char wrong_key[DC_KDF_MASTER_KEYBYTES] = {7};
static char sentinel;
static char tmpdir[64];
static unsigned char *pristine; /* the fixture volume, formatted once */

/* A block store over a caller's buffer (the volume outlives its handles). */
typedef struct disk {
    unsigned char *bytes;
    uint32_t bs;
    uint64_t blocks;
    int full;       /* writes to data blocks fail with DC_ERR_NO_SPACE */
    int full_roots; /* writes to the root pointers do */
} disk;

typedef struct fx {
    disk d;
    dc_fs *fs; /* read-write mount of d */
    dc_fs *ro; /* read-only mount of d, on demand */
    dc_codec *codec;
    dc_allocator *alloc;
    dc_store *mem;
    dc_dir *dir;
    dc_fault *fault;
    FsHandle *h;
    /* Outputs of constructor rows (freed if a call unexpectedly succeeds). */
    dc_fs *out_fs;
    dc_store *out_store;
    dc_codec *out_codec;
    dc_allocator *out_alloc;
    dc_dir *out_dir;
    dc_fault *out_fault;
    int rc;
    /* Scratch for calls. */
    dc_stat st;
    dc_statvfs vfs;
    dc_fsck_report report;
    dc_keyslot_info slots[DC_KEYSLOTS];
    dc_fs_options opts;
    dc_codec_options copts;
    dc_fault_options fopts;
    dc_store_backend backend;
    unsigned char buf[BS];
    unsigned char block[BS];
    unsigned char header[BS];
    char name[DC_MAX_NAME_BYTES + 1];
    char path[DC_MAX_PATH_BYTES + 64];
    size_t got, lens[2];
    uint64_t id, ids[2], total;
    uint32_t bs;
    int slot, status[2];
    int32_t err;
    uint64_t u64;
    size_t size;
    const unsigned char *plains[2];
    unsigned char kinds[2];
} fx;

static int rows_run, rows_failed;

/* ---- the store over a buffer ---- */

static int disk_info(void *p, uint32_t *bs, uint64_t *blocks) {
    const disk *d = p;
    *bs = d->bs;
    *blocks = d->blocks;
    return DC_OK;
}

static int disk_read(void *p, const uint64_t *ids, size_t n,
                     unsigned char *buf) {
    const disk *d = p;
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * d->bs, d->bytes + ids[i] * d->bs, d->bs);
    return DC_OK;
}

static int disk_write(void *p, const uint64_t *ids, size_t n,
                      const unsigned char *buf) {
    disk *d = p;
    for (size_t i = 0; i < n; i++)
        if ((d->full && ids[i] >= DC_FIRST_DATA_BLOCK) ||
            (d->full_roots && ids[i] > 0 && ids[i] < DC_FIRST_DATA_BLOCK))
            return DC_ERR_NO_SPACE;
    for (size_t i = 0; i < n; i++)
        memcpy(d->bytes + ids[i] * d->bs, buf + i * d->bs, d->bs);
    return DC_OK;
}

static int disk_sync(void *p) {
    (void)p;
    return DC_OK;
}

static const dc_store_backend disk_backend = {DC_STORE_BACKEND_VERSION,
                                              disk_info,
                                              disk_read,
                                              disk_write,
                                              disk_sync,
                                              NULL,
                                              NULL};

static dc_store *disk_store(disk *d) {
    dc_store *s = NULL;
    CHECK_RC(dc_store_new_custom(&s, &disk_backend, d), DC_OK);
    return s;
}

static dc_fs_options options(int read_only) {
    dc_fs_options o;
    dc_fs_options_init(&o);
    o.threads = 1;
    o.read_only = read_only;
    return o;
}

static dc_fs *mount_disk(disk *d, int read_only) {
    dc_fs *fs = NULL;
    dc_fs_options o = options(read_only);
    int rc = dc_fs_mount(&fs, disk_store(d), key, &o);
    if (rc != DC_OK)
        fprintf(stderr, "mount: %s\n", dc_strerror(rc));
    return fs;
}

/* ---- helpers the rows call ---- */

static const char *tmp(const char *name) {
    static char paths[4][128];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    return p;
}

static dc_fs *ro(fx *f) {
    if (f->ro == NULL)
        f->ro = mount_disk(&f->d, 1);
    return f->ro;
}

static dc_codec *codec(fx *f) {
    static const unsigned char ckey[DC_CODEC_KEYBYTES] = {5};
    static const unsigned char vid[DC_CODEC_VOLUME_IDBYTES] = {6};
    if (f->codec == NULL) {
        dc_codec_options o;
        dc_codec_options_init(&o);
        o.block_size = BS;
        o.threads = 1;
        CHECK_RC(dc_codec_new(&f->codec, ckey, vid, &o), DC_OK);
        CHECK_RC(dc_codec_seal(f->codec, f->block, 9, DC_KIND_DATA,
                               (const unsigned char *)HELLO, 11),
                 DC_OK);
    }
    return f->codec;
}

static dc_allocator *alloc(fx *f) {
    if (f->alloc == NULL)
        CHECK_RC(dc_allocator_new(&f->alloc, 8), DC_OK);
    return f->alloc;
}

/* A memory store the fixture keeps. */
static dc_store *mem(fx *f) {
    if (f->mem == NULL)
        CHECK_RC(dc_store_new_memory(&f->mem, BS, 16), DC_OK);
    return f->mem;
}

/* A memory store for a call that takes it over. */
static dc_store *new_mem(void) {
    dc_store *s = NULL;
    CHECK_RC(dc_store_new_memory(&s, BS, 16), DC_OK);
    return s;
}

/* A memory store filled with `fill` (0: zeros, 1: random, 2: this program's
 * first bytes, an ELF file). */
static dc_store *foreign(int fill) {
    dc_store *s = NULL;
    CHECK_RC(dc_store_new_memory(&s, BS, 16), DC_OK);
    unsigned char block[BS] = {0};
    for (uint64_t id = 0; id < 16; id++) {
        if (fill == 1)
            dc_random_fill(block, BS);
        if (fill == 2 && id == 0) {
            FILE *exe = fopen("/proc/self/exe", "rb");
            CHECK(exe != NULL && fread(block, 1, BS, exe) == BS);
            if (exe != NULL)
                fclose(exe);
            CHECK(memcmp(block, "\177ELF", 4) == 0);
        }
        CHECK_RC(dc_store_write_blocks(s, &id, 1, block), DC_OK);
    }
    return s;
}

static dc_dir *dir(fx *f) {
    if (f->dir == NULL)
        CHECK_RC(dc_fs_opendir(&f->dir, f->fs, "/"), DC_OK);
    return f->dir;
}

static dc_fault *fault(fx *f) {
    if (f->fault == NULL)
        CHECK_RC(dc_fault_new(&f->fault, new_mem(), NULL), DC_OK);
    return f->fault;
}

static dc_fault_options *fault_options(fx *f, unsigned version, int mode) {
    dc_fault_options_init(&f->fopts);
    f->fopts.version = version;
    f->fopts.mode = mode;
    return &f->fopts;
}

static FsHandle *compat(fx *f) {
    if (f->h == NULL) {
        f->h = fs_create(16, key, sizeof key);
        CHECK(f->h != NULL);
        CHECK_RC(fs_init_filesystem(f->h), Ok);
        CHECK_RC(fs_create_file(f->h, "a"), Ok);
        CHECK_RC(fs_create_dir(f->h, "d"), Ok);
        CHECK_RC(fs_create_file(f->h, "d/x"), Ok);
    }
    return f->h;
}

/* Mount (or format) `store` with `k` and `o`; free the handle if that
 * unexpectedly works. */
static int try_mount(dc_store *store, const unsigned char *k,
                     const dc_fs_options *o) {
    dc_fs *fs = NULL;
    int rc = dc_fs_mount(&fs, store, k, o);
    dc_fs_free(fs);
    return rc;
}

static int try_format(dc_store *store, const dc_fs_options *o) {
    dc_fs *fs = NULL;
    int rc = dc_fs_format(&fs, store, key, o);
    dc_fs_free(fs);
    return rc;
}

/* Mount a copy of the fixture volume seen through another geometry, or
 * with its header changed by `patch`. */
static int mount_copy(fx *f, uint32_t bs, uint64_t blocks, size_t at,
                      unsigned char value) {
    disk copy = f->d;
    copy.bytes = malloc(DISK_BLOCKS * BS);
    memcpy(copy.bytes, f->d.bytes, DISK_BLOCKS * BS);
    copy.bs = bs;
    copy.blocks = blocks;
    if (at != 0)
        copy.bytes[at] = value;
    int rc = try_mount(disk_store(&copy), key, NULL);
    free(copy.bytes);
    return rc;
}

static int mount_file(const char *name, uint32_t bs) {
    dc_store *s = NULL;
    int rc = dc_store_open_file(&s, tmp(name), bs, 0);
    return rc == DC_OK ? try_mount(s, key, NULL) : rc;
}

/* Write 4 KiB pieces to /scratch until the volume is full. */
static int fill_volume(fx *f) {
    int rc = DC_OK;
    for (uint64_t at = 0; rc == DC_OK; at += BS)
        rc = dc_fs_write(f->fs, "/scratch", at, f->buf, BS);
    return rc;
}

/* Begin, create /t, write more than the volume holds (which fails and rolls
 * the transaction back), then commit (`commit`) or try another change. */
static int failed_transaction(fx *f, int commit) {
    size_t len = 2 * DISK_BLOCKS * BS;
    unsigned char *big = calloc(1, len);
    int rc = dc_fs_begin(f->fs);
    if (rc == DC_OK)
        rc = dc_fs_create(f->fs, "/t", 0644, 1);
    if (rc == DC_OK)
        rc = dc_fs_write(f->fs, "/t", 0, big, len) == DC_ERR_NO_SPACE
                 ? DC_OK
                 : DC_ERR_INTERNAL;
    free(big);
    if (rc != DC_OK)
        return rc;
    return commit ? dc_fs_commit(f->fs) : dc_fs_create(f->fs, "/u", 0644, 1);
}

static int all_slots_then_one_more(fx *f) {
    int rc = DC_OK;
    for (int i = 1; i < DC_KEYSLOTS && rc == DC_OK; i++)
        rc = dc_fs_keyslot_add(f->fs, NULL, (const unsigned char *)PASS,
                               PASS_LEN, DC_KEYSLOT_OPSLIMIT_MIN,
                               DC_KEYSLOT_MEMLIMIT_MIN);
    return rc == DC_OK
               ? dc_fs_keyslot_add(f->fs, NULL, (const unsigned char *)"x", 1,
                                   DC_KEYSLOT_OPSLIMIT_MIN,
                                   DC_KEYSLOT_MEMLIMIT_MIN)
               : DC_ERR_INTERNAL;
}

static const char *long_name(fx *f, size_t n) {
    f->path[0] = '/';
    memset(f->path + 1, 'n', n);
    f->path[n + 1] = 0;
    return f->path;
}

static const char *long_path(fx *f) {
    for (size_t i = 0; i + 2 < sizeof f->path - 1; i += 2)
        memcpy(f->path + i, "/d", 2);
    f->path[sizeof f->path - 1] = 0;
    return f->path;
}

static const unsigned char *header(fx *f, size_t at, unsigned char value) {
    memcpy(f->header, pristine, BS);
    if (at != 0)
        f->header[at] = value;
    return f->header;
}

static int cancel(void *payload, uint64_t done, uint64_t total) {
    (void)payload;
    (void)done;
    (void)total;
    return 1;
}

static int failing_info(void *p, uint32_t *bs, uint64_t *blocks) {
    (void)p;
    (void)bs;
    (void)blocks;
    return DC_ERR_IO;
}

static int tiny_info(void *p, uint32_t *bs, uint64_t *blocks) {
    (void)p;
    *bs = 1000;
    *blocks = 2;
    return DC_OK;
}

static dc_store_backend *backend(fx *f, int which) {
    f->backend = disk_backend;
    switch (which) {
    case 1:
        f->backend.version = 0;
        break;
    case 2:
        f->backend.version = DC_STORE_BACKEND_VERSION + 1;
        break;
    case 3:
        f->backend.info = NULL;
        break;
    case 4:
        f->backend.read_blocks = NULL;
        break;
    case 5:
        f->backend.write_blocks = NULL;
        break;
    case 6:
        f->backend.sync = NULL;
        break;
    case 7:
        f->backend.info = failing_info;
        break;
    case 8:
        f->backend.info = tiny_info;
        break;
    }
    return &f->backend;
}

/* ---- fixture ---- */

static void fx_up(fx *f) {
    unsigned char *bytes = f->d.bytes;
    memset(f, 0, sizeof *f);
    f->d.bytes = bytes;
    f->d.bs = BS;
    f->d.blocks = DISK_BLOCKS;
    memcpy(f->d.bytes, pristine, DISK_BLOCKS * BS);
    f->fs = mount_disk(&f->d, 0);
    memset(f->buf, 'b', sizeof f->buf);
    f->ids[0] = 3;
    f->ids[1] = 4;
    f->lens[0] = f->lens[1] = 11;
    f->kinds[0] = f->kinds[1] = DC_KIND_DATA;
    f->plains[0] = f->plains[1] = (const unsigned char *)HELLO;
}

static int volume_intact(dc_fs *fs) {
    unsigned char buf[64];
    size_t got = 0;
    dc_fsck_report r;
    return fs != NULL && dc_fs_fsck(fs, &r) == DC_OK && r.errors == 0 &&
           r.leaked_blocks == 0 &&
           dc_fs_read(fs, "/dir/file", 0, buf, sizeof buf, &got) == DC_OK &&
           got == 11 && memcmp(buf, HELLO, 11) == 0;
}

static void free_out(void *p, void (*fn)(void *)) {
    if (p != NULL && p != (void *)&sentinel)
        fn(p);
}

static void fx_down(fx *f, const char *fn, const char *what, int expected,
                    int got, int line) {
    rows_run++;
    int ok = got == expected;
    if (!ok)
        fprintf(stderr,
                "test_bad_input.c:%d: %s (%s): got %d (%s), expected %d "
                "(%s)\n",
                line, fn, what, got, dc_strerror(got), expected,
                dc_strerror(expected));
    f->d.full = f->d.full_roots = 0;
    dc_dir_free(f->dir);
    dc_fs_free(f->ro);
    if (f->fs != NULL && dc_fs_in_transaction(f->fs))
        dc_fs_abort(f->fs);
    dc_fs_free(f->fs);
    dc_codec_free(f->codec);
    dc_allocator_free(f->alloc);
    dc_store_free(f->mem);
    dc_fault_free(f->fault);
    fs_destroy(f->h);
    free_out(f->out_fs, (void (*)(void *))dc_fs_free);
    free_out(f->out_store, (void (*)(void *))dc_store_free);
    free_out(f->out_codec, (void (*)(void *))dc_codec_free);
    free_out(f->out_alloc, (void (*)(void *))dc_allocator_free);
    free_out(f->out_dir, (void (*)(void *))dc_dir_free);
    free_out(f->out_fault, (void (*)(void *))dc_fault_free);
    /* The volume must mount again, verify and hold its file. */
    dc_fs *again = mount_disk(&f->d, 0);
    if (!volume_intact(again)) {
        fprintf(stderr, "test_bad_input.c:%d: %s (%s): volume damaged\n", line,
                fn, what);
        ok = 0;
    }
    dc_fs_free(again);
    if (!ok) {
        rows_failed++;
        unit_failures++;
    }
}

/* The fixture volume: /dir/file ("hello world"), /dir/sub/, /empty/,
 * /scratch (empty file), a key slot for PASS; and the image files the store
 * rows open. */
static void make_fixtures(void) {
    disk d = {calloc(DISK_BLOCKS, BS), BS, DISK_BLOCKS, 0, 0};
    dc_fs *fs = NULL;
    dc_fs_options o = options(0);
    CHECK_RC(dc_fs_format(&fs, disk_store(&d), key, &o), DC_OK);
    CHECK_RC(dc_fs_makedirs(fs, "/dir/sub", 0755), DC_OK);
    CHECK_RC(dc_fs_mkdir(fs, "/empty", 0755), DC_OK);
    CHECK_RC(dc_fs_create(fs, "/dir/file", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/dir/file", 0, HELLO, 11), DC_OK);
    CHECK_RC(dc_fs_create(fs, "/scratch", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_keyslot_add(fs, NULL, (const unsigned char *)PASS, PASS_LEN,
                               DC_KEYSLOT_OPSLIMIT_MIN,
                               DC_KEYSLOT_MEMLIMIT_MIN),
             DC_OK);
    dc_fs_free(fs);
    pristine = d.bytes;

    strcpy(tmpdir, "/tmp/dc-bad-input-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    static const struct {
        const char *name;
        size_t bytes;
        int fill; /* 0 zeros, 1 the volume, 2 random */
    } files[] = {
        {"volume", DISK_BLOCKS * BS, 1},
        {"zeros", 16 * BS, 0},
        {"random", 16 * BS, 2},
        {"truncated", 16 * BS + 100, 1},
        {"tiny", 2 * BS, 1},
        {"plain", 10, 0},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *out = fopen(tmp(files[i].name), "wb");
        CHECK(out != NULL);
        unsigned char *bytes = calloc(1, files[i].bytes);
        if (files[i].fill == 1)
            memcpy(bytes, pristine,
                   files[i].bytes < DISK_BLOCKS * BS ? files[i].bytes
                                                     : DISK_BLOCKS * BS);
        if (files[i].fill == 2)
            dc_random_fill(bytes, files[i].bytes);
        CHECK(fwrite(bytes, 1, files[i].bytes, out) == files[i].bytes);
        fclose(out);
        free(bytes);
    }
    CHECK(mkdir(tmp("directory"), 0700) == 0);
}

static void remove_fixtures(void) {
    const char *names[] = {"volume", "zeros", "random",  "truncated", "tiny",
                           "plain",  "new",   "new-big", "cancelled", NULL};
    for (size_t i = 0; names[i] != NULL; i++)
        unlink(tmp(names[i]));
    rmdir(tmp("directory"));
    rmdir(tmpdir);
    free(pristine);
}

/* ---- the rows ---------------------------------------------------------- */

static void rows_core(fx *f) {
    ROW(dc_strerror, "unknown code", DC_OK,
        IS(strcmp(dc_strerror(INT_MIN), "unknown error") == 0));
    ROW(dc_strerror, "positive code", DC_OK,
        IS(strcmp(dc_strerror(INT_MAX), "unknown error") == 0));
    ROW(dc_strerror, "DC_OK", DC_OK, IS(dc_strerror(0) != NULL));
    ROW(dc_free, "NULL", DC_OK, VOID(dc_free(NULL)));
}

static void rows_kdf(fx *f) {
    static unsigned char most[DC_KDF_HKDF_MAX_OUTPUT];
    ROW(dc_kdf_hkdf_sha256, "NULL out", INVAL,
        dc_kdf_hkdf_sha256(NULL, 32, NULL, 0, key, 32, NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "out_len 0", INVAL,
        dc_kdf_hkdf_sha256(f->buf, 0, NULL, 0, key, 32, NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "out_len past the maximum", INVAL,
        dc_kdf_hkdf_sha256(f->buf, DC_KDF_HKDF_MAX_OUTPUT + 1, NULL, 0, key, 32,
                           NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "out_len SIZE_MAX", INVAL,
        dc_kdf_hkdf_sha256(f->buf, SIZE_MAX, NULL, 0, key, 32, NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "NULL salt, length 1", INVAL,
        dc_kdf_hkdf_sha256(f->buf, 32, NULL, 1, key, 32, NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "NULL ikm, length 1", INVAL,
        dc_kdf_hkdf_sha256(f->buf, 32, NULL, 0, NULL, 1, NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "NULL info, length 1", INVAL,
        dc_kdf_hkdf_sha256(f->buf, 32, NULL, 0, key, 32, NULL, 1));
    ROW(dc_kdf_hkdf_sha256, "every input NULL and empty", DC_OK,
        dc_kdf_hkdf_sha256(f->buf, 32, NULL, 0, NULL, 0, NULL, 0));
    ROW(dc_kdf_hkdf_sha256, "the maximum output", DC_OK,
        dc_kdf_hkdf_sha256(most, sizeof most, NULL, 0, key, 32, NULL, 0));
    ROW(dc_kdf_derive_subkey, "NULL out", INVAL,
        dc_kdf_derive_subkey(NULL, DC_SUBKEY_ROOT_MAC, key));
    ROW(dc_kdf_derive_subkey, "NULL master key", INVAL,
        dc_kdf_derive_subkey(f->buf, DC_SUBKEY_ROOT_MAC, NULL));
    ROW(dc_kdf_derive_subkey, "purpose 0", INVAL,
        dc_kdf_derive_subkey(f->buf, 0, key));
    ROW(dc_kdf_derive_subkey, "purpose past the last", INVAL,
        dc_kdf_derive_subkey(f->buf, DC_SUBKEY_SERVER_AUTH + 1, key));
    ROW(dc_kdf_derive_subkey, "purpose INT_MIN", INVAL,
        dc_kdf_derive_subkey(f->buf, INT_MIN, key));
    ROW(dc_kdf_subkey_label, "purpose 0", DC_OK,
        IS(dc_kdf_subkey_label(0) == NULL));
    ROW(dc_kdf_subkey_label, "purpose past the last", DC_OK,
        IS(dc_kdf_subkey_label(DC_SUBKEY_SERVER_AUTH + 1) == NULL));
    ROW(dc_kdf_subkey_label, "purpose INT_MIN", DC_OK,
        IS(dc_kdf_subkey_label(INT_MIN) == NULL));
}

static void rows_codec(fx *f) {
    static const unsigned char ckey[DC_CODEC_KEYBYTES] = {1};
    static const unsigned char vid[DC_CODEC_VOLUME_IDBYTES] = {2};
    ROW(dc_codec_options_init, "NULL", INVAL, dc_codec_options_init(NULL));
    ROW(dc_codec_new, "NULL out", INVAL, dc_codec_new(NULL, ckey, vid, NULL));
    ROW(dc_codec_new, "NULL key", INVAL,
        NULLED(out_codec, dc_codec_new(&f->out_codec, NULL, vid, NULL)));
    ROW(dc_codec_new, "NULL volume id", INVAL,
        NULLED(out_codec, dc_codec_new(&f->out_codec, ckey, NULL, NULL)));
    ROW(dc_codec_new, "options version 0", DC_ERR_UNSUPPORTED,
        NULLED(out_codec,
               (dc_codec_options_init(&f->copts), f->copts.version = 0,
                dc_codec_new(&f->out_codec, ckey, vid, &f->copts))));
    static const uint32_t bad_sizes[] = {0,        2048,     4095,
                                         4096 * 3, 1u << 21, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++)
        ROW(dc_codec_new, "bad block size", INVAL,
            NULLED(out_codec,
                   (dc_codec_options_init(&f->copts),
                    f->copts.block_size = bad_sizes[i],
                    dc_codec_new(&f->out_codec, ckey, vid, &f->copts))));
    ROW(dc_codec_new, "threads past DC_CODEC_MAX_THREADS", INVAL,
        NULLED(out_codec, (dc_codec_options_init(&f->copts),
                           f->copts.threads = DC_CODEC_MAX_THREADS + 1,
                           dc_codec_new(&f->out_codec, ckey, vid, &f->copts))));
    ROW(dc_codec_new, "threads UINT_MAX", INVAL,
        NULLED(out_codec,
               (dc_codec_options_init(&f->copts), f->copts.threads = UINT_MAX,
                dc_codec_new(&f->out_codec, ckey, vid, &f->copts))));
    ROW(dc_codec_free, "NULL", DC_OK, VOID(dc_codec_free(NULL)));
    ROW(dc_codec_block_size, "NULL", DC_OK, IS(dc_codec_block_size(NULL) == 0));
    ROW(dc_codec_max_plaintext, "NULL", DC_OK,
        IS(dc_codec_max_plaintext(NULL) == 0));
    ROW(dc_codec_threads, "NULL", DC_OK, IS(dc_codec_threads(NULL) == 0));

    ROW(dc_codec_seal, "NULL codec", INVAL,
        dc_codec_seal(NULL, f->block, 3, DC_KIND_DATA, f->buf, 1));
    ROW(dc_codec_seal, "NULL out", INVAL,
        dc_codec_seal(codec(f), NULL, 3, DC_KIND_DATA, f->buf, 1));
    ROW(dc_codec_seal, "kind 0", INVAL,
        dc_codec_seal(codec(f), f->block, 3, 0, f->buf, 1));
    ROW(dc_codec_seal, "kind 256", INVAL,
        dc_codec_seal(codec(f), f->block, 3, 256, f->buf, 1));
    ROW(dc_codec_seal, "kind UINT_MAX", INVAL,
        dc_codec_seal(codec(f), f->block, 3, UINT_MAX, f->buf, 1));
    ROW(dc_codec_seal, "NULL plaintext, length 1", INVAL,
        dc_codec_seal(codec(f), f->block, 3, DC_KIND_DATA, NULL, 1));
    ROW(dc_codec_seal, "NULL plaintext, length 0", DC_OK,
        dc_codec_seal(codec(f), f->block, 3, DC_KIND_DATA, NULL, 0));
    ROW(dc_codec_seal, "plaintext one byte too long", INVAL,
        dc_codec_seal(codec(f), f->block, 3, DC_KIND_DATA, f->buf,
                      BS - DC_CODEC_OVERHEADBYTES + 1));
    ROW(dc_codec_seal, "plaintext length SIZE_MAX", INVAL,
        dc_codec_seal(codec(f), f->block, 3, DC_KIND_DATA, f->buf, SIZE_MAX));
    ROW(dc_codec_seal, "block id UINT64_MAX", DC_OK,
        dc_codec_seal(codec(f), f->block, UINT64_MAX, DC_KIND_DATA, f->buf, 1));

    ROW(dc_codec_open, "NULL codec", INVAL,
        (f->got = BS,
         dc_codec_open(NULL, f->buf, &f->got, 9, DC_KIND_DATA, f->block)));
    ROW(dc_codec_open, "NULL length", INVAL,
        dc_codec_open(codec(f), f->buf, NULL, 9, DC_KIND_DATA, f->block));
    ROW(dc_codec_open, "NULL block", INVAL,
        (f->got = BS,
         dc_codec_open(codec(f), f->buf, &f->got, 9, DC_KIND_DATA, NULL)));
    ROW(dc_codec_open, "NULL out, capacity 1", INVAL,
        (f->got = 1,
         dc_codec_open(codec(f), NULL, &f->got, 9, DC_KIND_DATA, f->block)));
    ROW(dc_codec_open, "NULL out, capacity 0", DC_ERR_BUFFER_TOO_SMALL,
        (f->got = 0,
         dc_codec_open(codec(f), NULL, &f->got, 9, DC_KIND_DATA, f->block)));
    ROW(dc_codec_open, "kind 0", INVAL,
        (f->got = BS,
         dc_codec_open(codec(f), f->buf, &f->got, 9, 0, f->block)));
    ROW(dc_codec_open, "kind 256", INVAL,
        (f->got = BS,
         dc_codec_open(codec(f), f->buf, &f->got, 9, 256, f->block)));
    ROW(dc_codec_open, "the wrong kind", DC_ERR_AUTH,
        (f->got = BS, dc_codec_open(codec(f), f->buf, &f->got, 9,
                                    DC_KIND_SUPERBLOCK, f->block)));
    ROW(dc_codec_open, "the wrong block id", DC_ERR_AUTH,
        (f->got = BS,
         dc_codec_open(codec(f), f->buf, &f->got, 10, DC_KIND_DATA, f->block)));
    ROW(dc_codec_open, "a block of zeros", DC_ERR_AUTH,
        (f->got = BS, memset(f->buf, 0, BS),
         dc_codec_open(codec(f), f->block, &f->got, 9, DC_KIND_DATA, f->buf)));
    ROW(dc_codec_open, "length field past the block", DC_ERR_AUTH,
        (f->got = BS, codec(f), f->block[3] = 0x7f,
         dc_codec_open(codec(f), f->buf, &f->got, 9, DC_KIND_DATA, f->block)));
    ROW(dc_codec_open, "capacity 1", DC_ERR_BUFFER_TOO_SMALL,
        (f->got = 1,
         dc_codec_open(codec(f), f->buf, &f->got, 9, DC_KIND_DATA, f->block)));

    ROW(dc_codec_seal_batch, "NULL codec, count 0", INVAL,
        dc_codec_seal_batch(NULL, NULL, 0, NULL, NULL, NULL, NULL));
    ROW(dc_codec_seal_batch, "count 0, NULL arrays", DC_OK,
        dc_codec_seal_batch(codec(f), NULL, 0, NULL, NULL, NULL, NULL));
    ROW(dc_codec_seal_batch, "NULL codec", INVAL,
        dc_codec_seal_batch(NULL, f->header, 1, f->ids, f->kinds, f->plains,
                            f->lens));
    ROW(dc_codec_seal_batch, "NULL out", INVAL,
        dc_codec_seal_batch(codec(f), NULL, 1, f->ids, f->kinds, f->plains,
                            f->lens));
    ROW(dc_codec_seal_batch, "NULL ids", INVAL,
        dc_codec_seal_batch(codec(f), f->header, 1, NULL, f->kinds, f->plains,
                            f->lens));
    ROW(dc_codec_seal_batch, "NULL kinds", INVAL,
        dc_codec_seal_batch(codec(f), f->header, 1, f->ids, NULL, f->plains,
                            f->lens));
    ROW(dc_codec_seal_batch, "NULL plaintexts", INVAL,
        dc_codec_seal_batch(codec(f), f->header, 1, f->ids, f->kinds, NULL,
                            f->lens));
    ROW(dc_codec_seal_batch, "NULL lengths", INVAL,
        dc_codec_seal_batch(codec(f), f->header, 1, f->ids, f->kinds, f->plains,
                            NULL));
    ROW(dc_codec_seal_batch, "count SIZE_MAX", INVAL,
        dc_codec_seal_batch(codec(f), f->header, SIZE_MAX, f->ids, f->kinds,
                            f->plains, f->lens));
    ROW(dc_codec_seal_batch, "an item of kind 0", INVAL,
        (f->kinds[0] = 0, dc_codec_seal_batch(codec(f), f->header, 1, f->ids,
                                              f->kinds, f->plains, f->lens)));
    ROW(dc_codec_seal_batch, "an item's NULL plaintext", INVAL,
        (f->plains[0] = NULL,
         dc_codec_seal_batch(codec(f), f->header, 1, f->ids, f->kinds,
                             f->plains, f->lens)));
    ROW(dc_codec_seal_batch, "an item too long", INVAL,
        (f->lens[0] = SIZE_MAX,
         dc_codec_seal_batch(codec(f), f->header, 1, f->ids, f->kinds,
                             f->plains, f->lens)));

    ROW(dc_codec_open_batch, "NULL codec, count 0", INVAL,
        dc_codec_open_batch(NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL));
    ROW(dc_codec_open_batch, "count 0, NULL arrays", DC_OK,
        dc_codec_open_batch(codec(f), NULL, 0, NULL, NULL, 0, NULL, NULL,
                            NULL));
    ROW(dc_codec_open_batch, "NULL codec", INVAL,
        dc_codec_open_batch(NULL, f->buf, BS, f->lens, NULL, 1, f->ids,
                            f->kinds, f->block));
    ROW(dc_codec_open_batch, "NULL out", INVAL,
        dc_codec_open_batch(codec(f), NULL, BS, f->lens, NULL, 1, f->ids,
                            f->kinds, f->block));
    ROW(dc_codec_open_batch, "NULL lengths", INVAL,
        dc_codec_open_batch(codec(f), f->buf, BS, NULL, NULL, 1, f->ids,
                            f->kinds, f->block));
    ROW(dc_codec_open_batch, "NULL ids", INVAL,
        dc_codec_open_batch(codec(f), f->buf, BS, f->lens, NULL, 1, NULL,
                            f->kinds, f->block));
    ROW(dc_codec_open_batch, "NULL kinds", INVAL,
        dc_codec_open_batch(codec(f), f->buf, BS, f->lens, NULL, 1, f->ids,
                            NULL, f->block));
    ROW(dc_codec_open_batch, "NULL blocks", INVAL,
        dc_codec_open_batch(codec(f), f->buf, BS, f->lens, NULL, 1, f->ids,
                            f->kinds, NULL));
    ROW(dc_codec_open_batch, "stride 0", INVAL,
        dc_codec_open_batch(codec(f), f->buf, 0, f->lens, NULL, 1, f->ids,
                            f->kinds, f->block));
    ROW(dc_codec_open_batch, "count SIZE_MAX", INVAL,
        dc_codec_open_batch(codec(f), f->buf, BS, f->lens, NULL, SIZE_MAX,
                            f->ids, f->kinds, f->block));
    ROW(dc_codec_open_batch, "an item of kind 0", INVAL,
        (f->kinds[0] = 0,
         dc_codec_open_batch(codec(f), f->buf, BS, f->lens, f->status, 1,
                             f->ids, f->kinds, f->block)));
    ROW(dc_codec_open_batch, "the wrong block id", DC_ERR_AUTH,
        dc_codec_open_batch(codec(f), f->buf, BS, f->lens, f->status, 1, f->ids,
                            f->kinds, f->block));
    ROW(dc_codec_open_batch, "stride smaller than the plaintext",
        DC_ERR_BUFFER_TOO_SMALL,
        (f->ids[0] = 9, dc_codec_open_batch(codec(f), f->buf, 4, f->lens, NULL,
                                            1, f->ids, f->kinds, f->block)));

    ROW(dc_random_fill, "NULL, length 1", INVAL, dc_random_fill(NULL, 1));
    ROW(dc_random_fill, "NULL, length 0", DC_OK, dc_random_fill(NULL, 0));
}

static void rows_alloc(fx *f) {
    ROW(dc_allocator_new, "NULL out", INVAL, dc_allocator_new(NULL, 100));
    ROW(dc_allocator_new, "0 blocks", INVAL,
        NULLED(out_alloc, dc_allocator_new(&f->out_alloc, 0)));
    ROW(dc_allocator_new, "only the reserved blocks", INVAL,
        NULLED(out_alloc,
               dc_allocator_new(&f->out_alloc, DC_FIRST_DATA_BLOCK)));
    ROW(dc_allocator_new, "UINT64_MAX blocks", INVAL,
        NULLED(out_alloc, dc_allocator_new(&f->out_alloc, UINT64_MAX)));
    ROW(dc_allocator_free, "NULL", DC_OK, VOID(dc_allocator_free(NULL)));
    ROW(dc_allocator_alloc, "NULL allocator", INVAL,
        dc_allocator_alloc(NULL, &f->id));
    ROW(dc_allocator_alloc, "NULL out", INVAL,
        dc_allocator_alloc(alloc(f), NULL));
    ROW(dc_allocator_alloc, "no block left", DC_ERR_NO_SPACE,
        (dc_allocator_alloc_run(alloc(f), &f->id, 5),
         dc_allocator_alloc(alloc(f), &f->id)));
    ROW(dc_allocator_alloc_run, "NULL allocator", INVAL,
        dc_allocator_alloc_run(NULL, &f->id, 1));
    ROW(dc_allocator_alloc_run, "NULL out", INVAL,
        dc_allocator_alloc_run(alloc(f), NULL, 1));
    ROW(dc_allocator_alloc_run, "count 0", INVAL,
        dc_allocator_alloc_run(alloc(f), &f->id, 0));
    ROW(dc_allocator_alloc_run, "count UINT64_MAX", DC_ERR_NO_SPACE,
        dc_allocator_alloc_run(alloc(f), &f->id, UINT64_MAX));
    ROW(dc_allocator_release, "NULL allocator", INVAL,
        dc_allocator_release(NULL, 3));
    ROW(dc_allocator_release, "a reserved block", INVAL,
        dc_allocator_release(alloc(f), 0));
    ROW(dc_allocator_release, "UINT64_MAX", INVAL,
        dc_allocator_release(alloc(f), UINT64_MAX));
    ROW(dc_allocator_release, "a free block", INVAL,
        dc_allocator_release(alloc(f), 5));
    ROW(dc_allocator_release, "twice", INVAL,
        (dc_allocator_alloc(alloc(f), &f->id),
         dc_allocator_release(alloc(f), f->id),
         dc_allocator_release(alloc(f), f->id)));
    ROW(dc_allocator_release_deferred, "NULL allocator", INVAL,
        dc_allocator_release_deferred(NULL, 3));
    ROW(dc_allocator_release_deferred, "a reserved block", INVAL,
        dc_allocator_release_deferred(alloc(f), 2));
    ROW(dc_allocator_release_deferred, "UINT64_MAX", INVAL,
        dc_allocator_release_deferred(alloc(f), UINT64_MAX));
    ROW(dc_allocator_release_deferred, "twice", INVAL,
        (dc_allocator_alloc(alloc(f), &f->id),
         dc_allocator_release_deferred(alloc(f), f->id),
         dc_allocator_release_deferred(alloc(f), f->id)));
    ROW(dc_allocator_commit_durable, "NULL", DC_OK,
        VOID(dc_allocator_commit_durable(NULL)));
    ROW(dc_allocator_abort_deferred, "NULL", DC_OK,
        VOID(dc_allocator_abort_deferred(NULL)));
    ROW(dc_allocator_mark_used, "NULL allocator", INVAL,
        dc_allocator_mark_used(NULL, 3));
    ROW(dc_allocator_mark_used, "a reserved block", INVAL,
        dc_allocator_mark_used(alloc(f), 1));
    ROW(dc_allocator_mark_used, "past the end", INVAL,
        dc_allocator_mark_used(alloc(f), 8));
    ROW(dc_allocator_mark_used, "twice", DC_ERR_ALREADY_EXISTS,
        (dc_allocator_mark_used(alloc(f), 4),
         dc_allocator_mark_used(alloc(f), 4)));
    ROW(dc_allocator_rebuild, "NULL allocator", INVAL,
        dc_allocator_rebuild(NULL, f->ids, 1));
    ROW(dc_allocator_rebuild, "NULL ids, count 1", INVAL,
        dc_allocator_rebuild(alloc(f), NULL, 1));
    ROW(dc_allocator_rebuild, "NULL ids, count 0", DC_OK,
        dc_allocator_rebuild(alloc(f), NULL, 0));
    ROW(dc_allocator_rebuild, "an id past the end: unchanged", INVAL,
        (f->ids[1] = UINT64_MAX, f->u64 = dc_allocator_free_blocks(alloc(f)),
         f->rc = dc_allocator_rebuild(alloc(f), f->ids, 2),
         f->u64 == dc_allocator_free_blocks(alloc(f)) ? f->rc
                                                      : DC_ERR_INTERNAL));
    ROW(dc_allocator_is_used, "NULL", DC_OK,
        IS(dc_allocator_is_used(NULL, 3) == 0));
    ROW(dc_allocator_is_used, "UINT64_MAX", DC_OK,
        IS(dc_allocator_is_used(alloc(f), UINT64_MAX) == 0));
    ROW(dc_allocator_total_blocks, "NULL", DC_OK,
        IS(dc_allocator_total_blocks(NULL) == 0));
    ROW(dc_allocator_free_blocks, "NULL", DC_OK,
        IS(dc_allocator_free_blocks(NULL) == 0));
    ROW(dc_allocator_deferred_blocks, "NULL", DC_OK,
        IS(dc_allocator_deferred_blocks(NULL) == 0));
}

static void rows_store(fx *f) {
    static const uint32_t bad_sizes[] = {0, 1000, 4095, 4096 * 3, 1u << 21};
    ROW(dc_store_new_memory, "NULL out", INVAL,
        dc_store_new_memory(NULL, BS, 16));
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++)
        ROW(dc_store_new_memory, "bad block size", INVAL,
            NULLED(out_store,
                   dc_store_new_memory(&f->out_store, bad_sizes[i], 16)));
    ROW(dc_store_new_memory, "3 blocks", INVAL,
        NULLED(out_store, dc_store_new_memory(&f->out_store, BS, 3)));
    ROW(dc_store_new_memory, "UINT64_MAX blocks", INVAL,
        NULLED(out_store, dc_store_new_memory(&f->out_store, BS, UINT64_MAX)));

    ROW(dc_store_create_file, "NULL out", INVAL,
        dc_store_create_file(NULL, tmp("new"), BS, 16, NULL, NULL));
    ROW(dc_store_create_file, "NULL path", INVAL,
        NULLED(out_store,
               dc_store_create_file(&f->out_store, NULL, BS, 16, NULL, NULL)));
    ROW(dc_store_create_file, "empty path", INVAL,
        NULLED(out_store,
               dc_store_create_file(&f->out_store, "", BS, 16, NULL, NULL)));
    ROW(dc_store_create_file, "bad block size", INVAL,
        NULLED(out_store, dc_store_create_file(&f->out_store, tmp("new"), 4095,
                                               16, NULL, NULL)));
    ROW(dc_store_create_file, "3 blocks", INVAL,
        NULLED(out_store, dc_store_create_file(&f->out_store, tmp("new"), BS, 3,
                                               NULL, NULL)));
    ROW(dc_store_create_file, "past the largest file offset", INVAL,
        NULLED(out_store,
               dc_store_create_file(&f->out_store, tmp("new-big"), BS,
                                    UINT64_MAX / BS, NULL, NULL)));
    ROW(dc_store_create_file, "an existing file", DC_ERR_ALREADY_EXISTS,
        NULLED(out_store, dc_store_create_file(&f->out_store, tmp("volume"), BS,
                                               16, NULL, NULL)));
    ROW(dc_store_create_file, "an existing directory", DC_ERR_ALREADY_EXISTS,
        NULLED(out_store, dc_store_create_file(&f->out_store, tmp("directory"),
                                               BS, 16, NULL, NULL)));
    ROW(dc_store_create_file, "a missing parent", DC_ERR_NOT_FOUND,
        NULLED(out_store,
               dc_store_create_file(&f->out_store, tmp("missing/new"), BS, 16,
                                    NULL, NULL)));
    ROW(dc_store_create_file, "a path through a file", DC_ERR_NOT_FOUND,
        NULLED(out_store, dc_store_create_file(&f->out_store, tmp("plain/new"),
                                               BS, 16, NULL, NULL)));
    ROW(dc_store_create_file, "a 300-byte name", DC_ERR_NAME_TOO_LONG,
        (memset(f->name, 'n', sizeof f->name - 1),
         f->name[sizeof f->name - 1] = 0,
         snprintf(f->path, sizeof f->path, "%s/%s%s", tmpdir, f->name,
                  "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"),
         NULLED(out_store, dc_store_create_file(&f->out_store, f->path, BS, 16,
                                                NULL, NULL))));
    ROW(dc_store_create_file, "cancelled: nothing left behind",
        DC_ERR_CANCELLED,
        (f->rc = dc_store_create_file(&f->out_store, tmp("cancelled"), BS, 16,
                                      cancel, NULL),
         access(tmp("cancelled"), F_OK) != 0 ? f->rc : DC_ERR_INTERNAL));

    ROW(dc_store_open_file, "NULL out", INVAL,
        dc_store_open_file(NULL, tmp("volume"), BS, 0));
    ROW(dc_store_open_file, "NULL path", INVAL,
        NULLED(out_store, dc_store_open_file(&f->out_store, NULL, BS, 0)));
    ROW(dc_store_open_file, "empty path", INVAL,
        NULLED(out_store, dc_store_open_file(&f->out_store, "", BS, 0)));
    ROW(dc_store_open_file, "block size 0", INVAL,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("volume"), 0, 0)));
    ROW(dc_store_open_file, "a missing file", DC_ERR_NOT_FOUND,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("missing"), BS, 0)));
    ROW(dc_store_open_file, "a path through a file", DC_ERR_NOT_FOUND,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("plain/x"), BS, 1)));
    ROW(dc_store_open_file, "a directory", DC_ERR_NOT_A_FILE,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("directory"), BS, 0)));
    ROW(dc_store_open_file, "a directory, read-only", DC_ERR_NOT_A_FILE,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("directory"), BS, 1)));
    ROW(dc_store_open_file, "a character device", INVAL,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, "/dev/null", BS, 0)));
    ROW(dc_store_open_file, "a truncated image", DC_ERR_CORRUPT,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("truncated"), BS, 0)));
    ROW(dc_store_open_file, "a 2-block image", DC_ERR_CORRUPT,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("tiny"), BS, 0)));
    ROW(dc_store_open_file, "a 10-byte file", DC_ERR_CORRUPT,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("plain"), BS, 0)));
    ROW(dc_store_open_file, "a 64 KiB block size on a 4 KiB image",
        DC_ERR_CORRUPT,
        NULLED(out_store,
               dc_store_open_file(&f->out_store, tmp("zeros"), 65536, 0)));
    ROW(dc_store_open_file, "read-only: writes refused", DC_ERR_READ_ONLY,
        (dc_store_open_file(&f->out_store, tmp("volume"), BS, 1),
         dc_store_write_blocks(f->out_store, f->ids, 1, f->buf)));
    ROW(dc_store_open_device, "NULL out", INVAL,
        dc_store_open_device(NULL, "/dev/null", BS, 1));
    ROW(dc_store_open_device, "NULL path", INVAL,
        NULLED(out_store, dc_store_open_device(&f->out_store, NULL, BS, 1)));
    ROW(dc_store_open_device, "bad block size", INVAL,
        NULLED(out_store,
               dc_store_open_device(&f->out_store, "/dev/null", 100, 1)));
    ROW(dc_store_open_device, "a missing device", DC_ERR_NOT_FOUND,
        NULLED(out_store,
               dc_store_open_device(&f->out_store, tmp("missing"), BS, 1)));
    ROW(dc_store_open_device, "a directory", DC_ERR_NOT_A_FILE,
        NULLED(out_store,
               dc_store_open_device(&f->out_store, tmp("directory"), BS, 1)));
    ROW(dc_store_open_device, "an empty device", DC_ERR_CORRUPT,
        NULLED(out_store,
               dc_store_open_device(&f->out_store, "/dev/null", BS, 1)));

    ROW(dc_store_new_custom, "NULL out", INVAL,
        dc_store_new_custom(NULL, &disk_backend, &f->d));
    ROW(dc_store_new_custom, "NULL backend", INVAL,
        NULLED(out_store, dc_store_new_custom(&f->out_store, NULL, &f->d)));
    static const struct {
        int which;
        int expected;
        const char *what;
    } backends[] = {
        {1, DC_ERR_UNSUPPORTED, "version 0"},
        {2, DC_ERR_UNSUPPORTED, "a newer version"},
        {3, INVAL, "no info"},
        {4, INVAL, "no read_blocks"},
        {5, INVAL, "no write_blocks"},
        {6, INVAL, "no sync"},
        {7, DC_ERR_IO, "info fails"},
        {8, INVAL, "info gives a bad geometry"},
    };
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        ROW(dc_store_new_custom, backends[i].what, backends[i].expected,
            NULLED(out_store,
                   dc_store_new_custom(&f->out_store,
                                       backend(f, backends[i].which), &f->d)));

    ROW(dc_store_new_cached, "NULL out (inner freed)", INVAL,
        dc_store_new_cached(NULL, new_mem(), 4));
    ROW(dc_store_new_cached, "NULL inner", INVAL,
        NULLED(out_store, dc_store_new_cached(&f->out_store, NULL, 4)));
    ROW(dc_store_new_cached, "capacity 0 (inner freed)", INVAL,
        NULLED(out_store, dc_store_new_cached(&f->out_store, new_mem(), 0)));
    ROW(dc_store_new_cached, "capacity SIZE_MAX: cut to the store", DC_OK,
        dc_store_new_cached(&f->out_store, new_mem(), SIZE_MAX));

    ROW(dc_store_free, "NULL", DC_OK, VOID(dc_store_free(NULL)));
    ROW(dc_store_block_size, "NULL", DC_OK, IS(dc_store_block_size(NULL) == 0));
    ROW(dc_store_total_blocks, "NULL", DC_OK,
        IS(dc_store_total_blocks(NULL) == 0));
    ROW(dc_store_blocks_read, "NULL", DC_OK,
        IS(dc_store_blocks_read(NULL) == 0));
    ROW(dc_store_blocks_written, "NULL", DC_OK,
        IS(dc_store_blocks_written(NULL) == 0));
    ROW(dc_store_read_blocks, "NULL store", INVAL,
        dc_store_read_blocks(NULL, f->ids, 1, f->buf));
    ROW(dc_store_read_blocks, "NULL ids", INVAL,
        dc_store_read_blocks(mem(f), NULL, 1, f->buf));
    ROW(dc_store_read_blocks, "NULL buffer", INVAL,
        dc_store_read_blocks(mem(f), f->ids, 1, NULL));
    ROW(dc_store_read_blocks, "count 0, NULL arrays", DC_OK,
        dc_store_read_blocks(mem(f), NULL, 0, NULL));
    ROW(dc_store_read_blocks, "an id past the end", INVAL,
        (f->ids[0] = 16, dc_store_read_blocks(mem(f), f->ids, 1, f->buf)));
    ROW(dc_store_read_blocks, "id UINT64_MAX", INVAL,
        (f->ids[0] = UINT64_MAX,
         dc_store_read_blocks(mem(f), f->ids, 1, f->buf)));
    ROW(dc_store_read_blocks, "count SIZE_MAX", INVAL,
        dc_store_read_blocks(mem(f), f->ids, SIZE_MAX, f->buf));
    ROW(dc_store_write_blocks, "NULL store", INVAL,
        dc_store_write_blocks(NULL, f->ids, 1, f->buf));
    ROW(dc_store_write_blocks, "NULL ids", INVAL,
        dc_store_write_blocks(mem(f), NULL, 1, f->buf));
    ROW(dc_store_write_blocks, "NULL buffer", INVAL,
        dc_store_write_blocks(mem(f), f->ids, 1, NULL));
    ROW(dc_store_write_blocks, "count 0, NULL arrays", DC_OK,
        dc_store_write_blocks(mem(f), NULL, 0, NULL));
    ROW(dc_store_write_blocks, "an id past the end", INVAL,
        (f->ids[1] = 16, dc_store_write_blocks(mem(f), f->ids, 2, f->header)));
    ROW(dc_store_write_blocks, "count SIZE_MAX", INVAL,
        dc_store_write_blocks(mem(f), f->ids, SIZE_MAX, f->buf));
    ROW(dc_store_write_blocks, "a full backend", DC_ERR_NO_SPACE,
        (f->out_store = disk_store(&f->d), f->d.full = 1,
         dc_store_write_blocks(f->out_store, f->ids, 1, f->buf)));
    ROW(dc_store_sync, "NULL", INVAL, dc_store_sync(NULL));
}

static void rows_fault(fx *f) {
    const unsigned v = DC_FAULT_OPTIONS_VERSION;
    ROW(dc_fault_options_init, "NULL", INVAL, dc_fault_options_init(NULL));
    ROW(dc_fault_new, "NULL out (inner freed)", INVAL,
        dc_fault_new(NULL, new_mem(), NULL));
    ROW(dc_fault_new, "NULL inner", INVAL,
        NULLED(out_fault, dc_fault_new(&f->out_fault, NULL, NULL)));
    ROW(dc_fault_new, "options version 0 (inner freed)", DC_ERR_UNSUPPORTED,
        NULLED(out_fault,
               dc_fault_new(&f->out_fault, new_mem(), fault_options(f, 0, 0))));
    ROW(dc_fault_new, "mode past the last", INVAL,
        NULLED(out_fault,
               dc_fault_new(&f->out_fault, new_mem(),
                            fault_options(f, v, DC_FAULT_REORDER + 1))));
    ROW(dc_fault_new, "mode -1", INVAL,
        NULLED(out_fault, dc_fault_new(&f->out_fault, new_mem(),
                                       fault_options(f, v, -1))));
    ROW(dc_store_new_fault, "NULL out", INVAL,
        dc_store_new_fault(NULL, fault(f)));
    ROW(dc_store_new_fault, "NULL disk", INVAL,
        NULLED(out_store, dc_store_new_fault(&f->out_store, NULL)));
    ROW(dc_fault_power_off, "NULL", INVAL, dc_fault_power_off(NULL));
    ROW(dc_fault_power_off, "twice", DC_OK,
        (dc_fault_power_off(fault(f)), dc_fault_power_off(f->fault)));
    ROW(dc_fault_restart, "NULL", INVAL, dc_fault_restart(NULL, NULL));
    ROW(dc_fault_restart, "options version 0", DC_ERR_UNSUPPORTED,
        dc_fault_restart(fault(f), fault_options(f, 0, 0)));
    ROW(dc_fault_restart, "mode past the last", INVAL,
        dc_fault_restart(fault(f), fault_options(f, v, DC_FAULT_REORDER + 1)));
    ROW(dc_fault_writes, "NULL", DC_OK, IS(dc_fault_writes(NULL) == 0));
    ROW(dc_fault_syncs, "NULL", DC_OK, IS(dc_fault_syncs(NULL) == 0));
    ROW(dc_fault_durable_writes, "NULL", DC_OK,
        IS(dc_fault_durable_writes(NULL) == 0));
    ROW(dc_fault_power_lost, "NULL", DC_OK, IS(dc_fault_power_lost(NULL) == 0));
    ROW(dc_fault_free, "NULL", DC_OK, VOID(dc_fault_free(NULL)));
}

static void rows_volume(fx *f) {
    ROW(dc_fs_options_init, "NULL", INVAL, dc_fs_options_init(NULL));
    ROW(dc_fs_probe, "NULL header", INVAL,
        dc_fs_probe(NULL, BS, &f->bs, &f->total));
    ROW(dc_fs_probe, "NULL block size", INVAL,
        dc_fs_probe(pristine, BS, NULL, &f->total));
    ROW(dc_fs_probe, "NULL total", INVAL,
        dc_fs_probe(pristine, BS, &f->bs, NULL));
    ROW(dc_fs_probe, "length 0", DC_ERR_CORRUPT,
        dc_fs_probe(pristine, 0, &f->bs, &f->total));
    ROW(dc_fs_probe, "79 bytes", DC_ERR_CORRUPT,
        dc_fs_probe(pristine, 79, &f->bs, &f->total));
    ROW(dc_fs_probe, "zeros", DC_ERR_CORRUPT,
        dc_fs_probe(f->block, BS, &f->bs, &f->total));
    ROW(dc_fs_probe, "format version 3", DC_ERR_UNSUPPORTED,
        dc_fs_probe(header(f, 8, 3), BS, &f->bs, &f->total));
    ROW(dc_fs_probe, "block size 4097", DC_ERR_CORRUPT,
        dc_fs_probe(header(f, 12, 1), BS, &f->bs, &f->total));
    ROW(dc_fs_probe, "3 blocks", DC_ERR_CORRUPT,
        (header(f, 0, 0), memset(f->header + 16, 0, 8), f->header[16] = 3,
         dc_fs_probe(f->header, BS, &f->bs, &f->total)));
    ROW(dc_fs_probe, "the whole header", DC_OK,
        dc_fs_probe(pristine, BS, &f->bs, &f->total));

    dc_fs_options bad_version = options(0), read_only = options(1),
                  threads = options(0);
    bad_version.version = DC_FS_OPTIONS_VERSION + 1;
    threads.threads = DC_CODEC_MAX_THREADS + 1;
    ROW(dc_fs_format, "NULL out (store freed)", INVAL,
        dc_fs_format(NULL, new_mem(), key, NULL));
    ROW(dc_fs_format, "NULL store", INVAL,
        NULLED(out_fs, dc_fs_format(&f->out_fs, NULL, key, NULL)));
    ROW(dc_fs_format, "NULL key (store freed)", INVAL,
        NULLED(out_fs, dc_fs_format(&f->out_fs, new_mem(), NULL, NULL)));
    ROW(dc_fs_format, "options of another version", DC_ERR_UNSUPPORTED,
        NULLED(out_fs, dc_fs_format(&f->out_fs, new_mem(), key, &bad_version)));
    ROW(dc_fs_format, "read-only options", DC_ERR_READ_ONLY,
        try_format(new_mem(), &read_only));
    ROW(dc_fs_format, "too many threads", INVAL,
        try_format(new_mem(), &threads));
    ROW(dc_fs_format, "a read-only store", DC_ERR_READ_ONLY,
        (dc_store_open_file(&f->out_store, tmp("zeros"), BS, 1),
         f->rc = try_format(f->out_store, NULL), f->out_store = NULL, f->rc));

    ROW(dc_fs_mount, "NULL out (store freed)", INVAL,
        dc_fs_mount(NULL, disk_store(&f->d), key, NULL));
    ROW(dc_fs_mount, "NULL store", INVAL,
        NULLED(out_fs, dc_fs_mount(&f->out_fs, NULL, key, NULL)));
    ROW(dc_fs_mount, "NULL key (store freed)", INVAL,
        NULLED(out_fs, dc_fs_mount(&f->out_fs, disk_store(&f->d), NULL, NULL)));
    ROW(dc_fs_mount, "the wrong key", DC_ERR_AUTH,
        NULLED(out_fs,
               dc_fs_mount(&f->out_fs, disk_store(&f->d), wrong_key, NULL)));
    ROW(dc_fs_mount, "options of another version", DC_ERR_UNSUPPORTED,
        try_mount(disk_store(&f->d), key, &bad_version));
    ROW(dc_fs_mount, "a store of zeros", DC_ERR_CORRUPT,
        try_mount(foreign(0), key, NULL));
    ROW(dc_fs_mount, "a store of random bytes", DC_ERR_CORRUPT,
        try_mount(foreign(1), key, NULL));
    ROW(dc_fs_mount, "a store holding an ELF file", DC_ERR_CORRUPT,
        try_mount(foreign(2), key, NULL));
    ROW(dc_fs_mount, "a store with 8 KiB blocks", DC_ERR_CORRUPT,
        mount_copy(f, 2 * BS, DISK_BLOCKS / 2, 0, 0));
    ROW(dc_fs_mount, "a store smaller than the volume", DC_ERR_CORRUPT,
        mount_copy(f, BS, DISK_BLOCKS - 1, 0, 0));
    ROW(dc_fs_mount, "format version 3", DC_ERR_UNSUPPORTED,
        mount_copy(f, BS, DISK_BLOCKS, 8, 3));
    ROW(dc_fs_mount, "image file of zeros", DC_ERR_CORRUPT,
        mount_file("zeros", BS));
    ROW(dc_fs_mount, "image file of random bytes", DC_ERR_CORRUPT,
        mount_file("random", BS));
    ROW(dc_fs_mount, "image opened with 8 KiB blocks", DC_ERR_CORRUPT,
        mount_file("volume", 2 * BS));
    ROW(dc_fs_mount, "image opened with 64 KiB blocks", DC_ERR_CORRUPT,
        mount_file("volume", 16 * BS));
    ROW(dc_fs_mount, "image file, read-only", DC_OK,
        (dc_store_open_file(&f->out_store, tmp("volume"), BS, 1),
         f->rc = try_mount(f->out_store, key, &read_only), f->out_store = NULL,
         f->rc));

    ROW(dc_fs_free, "NULL", DC_OK, VOID(dc_fs_free(NULL)));
    ROW(dc_fs_errmsg, "NULL", DC_OK,
        IS(strcmp(dc_fs_errmsg(NULL), "no filesystem handle") == 0));
    ROW(dc_fs_errmsg, "after an error", DC_OK,
        (dc_fs_stat(f->fs, "relative", &f->st),
         IS(strstr(dc_fs_errmsg(f->fs), "absolute") != NULL)));
    ROW(dc_fs_sync, "NULL", INVAL, dc_fs_sync(NULL));
    ROW(dc_fs_sync, "read-only", DC_OK, dc_fs_sync(ro(f)));
    ROW(dc_fs_refresh, "NULL", INVAL, dc_fs_refresh(NULL));
    ROW(dc_fs_refresh, "inside a transaction", INVAL,
        (dc_fs_begin(f->fs), dc_fs_refresh(f->fs)));
    ROW(dc_fs_refresh, "nothing changed", DC_OK, dc_fs_refresh(f->fs));
    ROW(dc_fs_refresh, "read-only", DC_OK, dc_fs_refresh(ro(f)));
    ROW(dc_fs_begin, "NULL", INVAL, dc_fs_begin(NULL));
    ROW(dc_fs_begin, "twice", INVAL, (dc_fs_begin(f->fs), dc_fs_begin(f->fs)));
    ROW(dc_fs_begin, "read-only", DC_ERR_READ_ONLY, dc_fs_begin(ro(f)));
    ROW(dc_fs_commit, "NULL", INVAL, dc_fs_commit(NULL));
    ROW(dc_fs_commit, "no transaction", INVAL, dc_fs_commit(f->fs));
    ROW(dc_fs_commit, "a transaction whose write failed", DC_ERR_NO_SPACE,
        failed_transaction(f, 1));
    ROW(dc_fs_create, "in a transaction whose write failed", DC_ERR_NO_SPACE,
        failed_transaction(f, 0));
    ROW(dc_fs_abort, "NULL", INVAL, dc_fs_abort(NULL));
    ROW(dc_fs_abort, "no transaction", INVAL, dc_fs_abort(f->fs));
    ROW(dc_fs_in_transaction, "NULL", DC_OK,
        IS(dc_fs_in_transaction(NULL) == 0));
    ROW(dc_fs_statvfs, "NULL fs", INVAL, dc_fs_statvfs(NULL, &f->vfs));
    ROW(dc_fs_statvfs, "NULL out", INVAL, dc_fs_statvfs(f->fs, NULL));
    ROW(dc_fs_volume_id, "NULL fs", INVAL, dc_fs_volume_id(NULL, f->buf));
    ROW(dc_fs_volume_id, "NULL out", INVAL, dc_fs_volume_id(f->fs, NULL));
    ROW(dc_fs_fsck, "NULL", INVAL, dc_fs_fsck(NULL, &f->report));
    ROW(dc_fs_fsck, "NULL report", DC_OK, dc_fs_fsck(f->fs, NULL));
    ROW(dc_fs_fsck, "in a transaction", INVAL,
        (dc_fs_begin(f->fs), dc_fs_mkdir(f->fs, "/t", 0755),
         dc_fs_fsck(f->fs, NULL)));
    ROW(dc_fs_fsck, "read-only", DC_OK, dc_fs_fsck(ro(f), &f->report));
}

/* A path through the file /dir/file, a missing parent (`missing`: what
 * that gives), and other bad shapes, for every call that takes a path. */
#define PATH_ROWS(fn, missing, call_with_path)                                 \
    do {                                                                       \
        const char *path_;                                                     \
        (void)path_;                                                           \
        ROW(fn, "NULL path", INVAL, (path_ = NULL, call_with_path));           \
        ROW(fn, "empty path", INVAL, (path_ = "", call_with_path));            \
        ROW(fn, "relative path", INVAL, (path_ = "dir", call_with_path));      \
        ROW(fn, "empty component", INVAL,                                      \
            (path_ = "/dir//file", call_with_path));                           \
        ROW(fn, "'.'", INVAL, (path_ = "/dir/.", call_with_path));             \
        ROW(fn, "'..'", INVAL, (path_ = "/dir/..", call_with_path));           \
        ROW(fn, "invalid UTF-8", INVAL,                                        \
            (path_ = "/dir/\xff", call_with_path));                            \
        ROW(fn, "a 256-byte name", DC_ERR_NAME_TOO_LONG,                       \
            (path_ = long_name(f, 256), call_with_path));                      \
        ROW(fn, "a path over 4096 bytes", DC_ERR_NAME_TOO_LONG,                \
            (path_ = long_path(f), call_with_path));                           \
        ROW(fn, "through a file", DC_ERR_NOT_A_DIRECTORY,                      \
            (path_ = "/dir/file/x", call_with_path));                          \
        ROW(fn, "a missing parent", missing,                                   \
            (path_ = "/missing/x", call_with_path));                           \
    } while (0)

static void rows_paths(fx *f) {
    PATH_ROWS(dc_fs_stat, DC_ERR_NOT_FOUND, dc_fs_stat(f->fs, path_, &f->st));
    ROW(dc_fs_stat, "NULL fs", INVAL, dc_fs_stat(NULL, "/", &f->st));
    ROW(dc_fs_stat, "NULL out", INVAL, dc_fs_stat(f->fs, "/", NULL));
    ROW(dc_fs_stat, "missing", DC_ERR_NOT_FOUND,
        dc_fs_stat(f->fs, "/missing", &f->st));
    ROW(dc_fs_stat, "a 255-byte name (missing)", DC_ERR_NOT_FOUND,
        dc_fs_stat(f->fs, long_name(f, 255), &f->st));
    ROW(dc_fs_stat, "one trailing slash", DC_OK,
        dc_fs_stat(f->fs, "/dir/", &f->st));

    PATH_ROWS(dc_fs_mkdir, DC_ERR_NOT_FOUND, dc_fs_mkdir(f->fs, path_, 0755));
    ROW(dc_fs_mkdir, "NULL fs", INVAL, dc_fs_mkdir(NULL, "/x", 0755));
    ROW(dc_fs_mkdir, "the root", DC_ERR_ALREADY_EXISTS,
        dc_fs_mkdir(f->fs, "/", 0755));
    ROW(dc_fs_mkdir, "an existing file", DC_ERR_ALREADY_EXISTS,
        dc_fs_mkdir(f->fs, "/dir/file", 0755));
    ROW(dc_fs_mkdir, "mode UINT32_MAX: masked to 07777", DC_OK,
        (dc_fs_mkdir(f->fs, "/m", UINT32_MAX), dc_fs_stat(f->fs, "/m", &f->st),
         IS(f->st.mode == 07777)));
    ROW(dc_fs_mkdir, "read-only", DC_ERR_READ_ONLY,
        dc_fs_mkdir(ro(f), "/x", 0755));

    PATH_ROWS(dc_fs_makedirs, DC_OK, dc_fs_makedirs(f->fs, path_, 0755));
    ROW(dc_fs_makedirs, "NULL fs", INVAL, dc_fs_makedirs(NULL, "/x", 0755));
    ROW(dc_fs_makedirs, "an existing file", DC_ERR_NOT_A_DIRECTORY,
        dc_fs_makedirs(f->fs, "/dir/file", 0755));
    ROW(dc_fs_makedirs, "the root", DC_OK, dc_fs_makedirs(f->fs, "/", 0755));
    ROW(dc_fs_makedirs, "read-only", DC_ERR_READ_ONLY,
        dc_fs_makedirs(ro(f), "/x/y", 0755));

    PATH_ROWS(dc_fs_create, DC_ERR_NOT_FOUND,
              dc_fs_create(f->fs, path_, 0644, 1));
    ROW(dc_fs_create, "NULL fs", INVAL, dc_fs_create(NULL, "/x", 0644, 1));
    ROW(dc_fs_create, "the root", DC_ERR_ALREADY_EXISTS,
        dc_fs_create(f->fs, "/", 0644, 0));
    ROW(dc_fs_create, "a directory", DC_ERR_NOT_A_FILE,
        dc_fs_create(f->fs, "/dir", 0644, 0));
    ROW(dc_fs_create, "exclusive, existing", DC_ERR_ALREADY_EXISTS,
        dc_fs_create(f->fs, "/dir/file", 0644, 1));
    ROW(dc_fs_create, "read-only", DC_ERR_READ_ONLY,
        dc_fs_create(ro(f), "/x", 0644, 1));

    PATH_ROWS(dc_fs_write, DC_ERR_NOT_FOUND,
              dc_fs_write(f->fs, path_, 0, "x", 1));
    ROW(dc_fs_write, "NULL fs", INVAL,
        dc_fs_write(NULL, "/scratch", 0, "x", 1));
    ROW(dc_fs_write, "NULL buffer, length 1", INVAL,
        dc_fs_write(f->fs, "/scratch", 0, NULL, 1));
    ROW(dc_fs_write, "NULL buffer, length 0", DC_OK,
        dc_fs_write(f->fs, "/scratch", 0, NULL, 0));
    ROW(dc_fs_write, "a directory", DC_ERR_NOT_A_FILE,
        dc_fs_write(f->fs, "/dir", 0, "x", 1));
    ROW(dc_fs_write, "missing", DC_ERR_NOT_FOUND,
        dc_fs_write(f->fs, "/missing", 0, "x", 1));
    ROW(dc_fs_write, "offset 2^63", INVAL,
        dc_fs_write(f->fs, "/scratch", TWO_63, "x", 1));
    ROW(dc_fs_write, "offset UINT64_MAX", INVAL,
        dc_fs_write(f->fs, "/scratch", UINT64_MAX, "x", 1));
    ROW(dc_fs_write, "ending past 2^63 - 1", INVAL,
        dc_fs_write(f->fs, "/scratch", TWO_63 - 1, "xy", 2));
    ROW(dc_fs_write, "length SIZE_MAX", INVAL,
        dc_fs_write(f->fs, "/scratch", 0, f->buf, SIZE_MAX));
    ROW(dc_fs_write, "one byte at 2^62 (sparse)", DC_OK,
        (dc_fs_write(f->fs, "/scratch", (uint64_t)1 << 62, "z", 1),
         dc_fs_read(f->fs, "/scratch", (uint64_t)1 << 62, f->buf, 8, &f->got),
         IS(f->got == 1 && f->buf[0] == 'z')));
    ROW(dc_fs_write, "until the volume is full", DC_ERR_NO_SPACE,
        fill_volume(f));
    ROW(dc_fs_write, "the store is full", DC_ERR_NO_SPACE,
        (f->d.full = 1, dc_fs_write(f->fs, "/scratch", 0, "x", 1)));
    ROW(dc_fs_write, "after a root pointer write failed", DC_ERR_READ_ONLY,
        (f->d.full_roots = 1,
         dc_fs_write(f->fs, "/scratch", 0, "x", 1) == DC_ERR_NO_SPACE
             ? (f->d.full_roots = 0, dc_fs_write(f->fs, "/scratch", 0, "x", 1))
             : DC_ERR_INTERNAL));
    ROW(dc_fs_write, "read-only", DC_ERR_READ_ONLY,
        dc_fs_write(ro(f), "/scratch", 0, "x", 1));

    PATH_ROWS(dc_fs_read, DC_ERR_NOT_FOUND,
              dc_fs_read(f->fs, path_, 0, f->buf, 1, &f->got));
    ROW(dc_fs_read, "NULL fs", INVAL,
        dc_fs_read(NULL, "/dir/file", 0, f->buf, 1, &f->got));
    ROW(dc_fs_read, "NULL out_read", INVAL,
        dc_fs_read(f->fs, "/dir/file", 0, f->buf, 1, NULL));
    ROW(dc_fs_read, "NULL buffer, length 1", INVAL,
        dc_fs_read(f->fs, "/dir/file", 0, NULL, 1, &f->got));
    ROW(dc_fs_read, "NULL buffer, length 0", DC_OK,
        dc_fs_read(f->fs, "/dir/file", 0, NULL, 0, &f->got));
    ROW(dc_fs_read, "a directory", DC_ERR_NOT_A_FILE,
        dc_fs_read(f->fs, "/dir", 0, f->buf, 1, &f->got));
    ROW(dc_fs_read, "offset 2^63: nothing", DC_OK,
        (f->got = 9, dc_fs_read(f->fs, "/dir/file", TWO_63, f->buf, 1, &f->got),
         IS(f->got == 0)));
    ROW(dc_fs_read, "offset UINT64_MAX: nothing", DC_OK,
        (f->got = 9,
         dc_fs_read(f->fs, "/dir/file", UINT64_MAX, f->buf, 1, &f->got),
         IS(f->got == 0)));
    ROW(dc_fs_read, "length SIZE_MAX: the file", DC_OK,
        (dc_fs_read(f->fs, "/dir/file", 0, f->buf, SIZE_MAX, &f->got),
         IS(f->got == 11)));

    PATH_ROWS(dc_fs_truncate, DC_ERR_NOT_FOUND,
              dc_fs_truncate(f->fs, path_, 0));
    ROW(dc_fs_truncate, "NULL fs", INVAL, dc_fs_truncate(NULL, "/scratch", 0));
    ROW(dc_fs_truncate, "a directory", DC_ERR_NOT_A_FILE,
        dc_fs_truncate(f->fs, "/dir", 0));
    ROW(dc_fs_truncate, "missing", DC_ERR_NOT_FOUND,
        dc_fs_truncate(f->fs, "/missing", 0));
    ROW(dc_fs_truncate, "size 2^63", INVAL,
        dc_fs_truncate(f->fs, "/scratch", TWO_63));
    ROW(dc_fs_truncate, "size UINT64_MAX", INVAL,
        dc_fs_truncate(f->fs, "/scratch", UINT64_MAX));
    ROW(dc_fs_truncate, "size 2^63 - 1 (sparse)", DC_OK,
        dc_fs_truncate(f->fs, "/scratch", TWO_63 - 1));
    ROW(dc_fs_truncate, "read-only", DC_ERR_READ_ONLY,
        dc_fs_truncate(ro(f), "/scratch", 0));

    PATH_ROWS(dc_fs_remove, DC_ERR_NOT_FOUND, dc_fs_remove(f->fs, path_));
    ROW(dc_fs_remove, "NULL fs", INVAL, dc_fs_remove(NULL, "/scratch"));
    ROW(dc_fs_remove, "the root", INVAL, dc_fs_remove(f->fs, "/"));
    ROW(dc_fs_remove, "a directory", DC_ERR_NOT_A_FILE,
        dc_fs_remove(f->fs, "/empty"));
    ROW(dc_fs_remove, "missing", DC_ERR_NOT_FOUND,
        dc_fs_remove(f->fs, "/missing"));
    ROW(dc_fs_remove, "read-only", DC_ERR_READ_ONLY,
        dc_fs_remove(ro(f), "/scratch"));

    PATH_ROWS(dc_fs_rmdir, DC_ERR_NOT_FOUND, dc_fs_rmdir(f->fs, path_));
    ROW(dc_fs_rmdir, "NULL fs", INVAL, dc_fs_rmdir(NULL, "/empty"));
    ROW(dc_fs_rmdir, "the root", INVAL, dc_fs_rmdir(f->fs, "/"));
    ROW(dc_fs_rmdir, "a file", DC_ERR_NOT_A_DIRECTORY,
        dc_fs_rmdir(f->fs, "/scratch"));
    ROW(dc_fs_rmdir, "not empty", DC_ERR_DIRECTORY_NOT_EMPTY,
        dc_fs_rmdir(f->fs, "/dir"));
    ROW(dc_fs_rmdir, "missing", DC_ERR_NOT_FOUND,
        dc_fs_rmdir(f->fs, "/missing"));
    ROW(dc_fs_rmdir, "read-only", DC_ERR_READ_ONLY,
        dc_fs_rmdir(ro(f), "/empty"));

    PATH_ROWS(dc_fs_rename, DC_ERR_NOT_FOUND,
              dc_fs_rename(f->fs, path_, "/new"));
    PATH_ROWS(dc_fs_rename, DC_ERR_NOT_FOUND,
              dc_fs_rename(f->fs, "/scratch", path_));
    ROW(dc_fs_rename, "NULL fs", INVAL, dc_fs_rename(NULL, "/scratch", "/n"));
    ROW(dc_fs_rename, "the root", INVAL, dc_fs_rename(f->fs, "/", "/n"));
    ROW(dc_fs_rename, "onto the root", INVAL,
        dc_fs_rename(f->fs, "/empty", "/"));
    ROW(dc_fs_rename, "a directory into itself", INVAL,
        dc_fs_rename(f->fs, "/dir", "/dir/sub/in"));
    ROW(dc_fs_rename, "a file onto a directory", DC_ERR_NOT_A_FILE,
        dc_fs_rename(f->fs, "/scratch", "/empty"));
    ROW(dc_fs_rename, "a directory onto a file", DC_ERR_NOT_A_DIRECTORY,
        dc_fs_rename(f->fs, "/empty", "/scratch"));
    ROW(dc_fs_rename, "onto a non-empty directory", DC_ERR_DIRECTORY_NOT_EMPTY,
        dc_fs_rename(f->fs, "/empty", "/dir"));
    ROW(dc_fs_rename, "missing source", DC_ERR_NOT_FOUND,
        dc_fs_rename(f->fs, "/missing", "/n"));
    ROW(dc_fs_rename, "onto itself", DC_OK,
        dc_fs_rename(f->fs, "/scratch", "/scratch"));
    ROW(dc_fs_rename, "read-only", DC_ERR_READ_ONLY,
        dc_fs_rename(ro(f), "/scratch", "/n"));

    PATH_ROWS(dc_fs_set_mtime, DC_ERR_NOT_FOUND,
              dc_fs_set_mtime(f->fs, path_, 0));
    ROW(dc_fs_set_mtime, "NULL fs", INVAL, dc_fs_set_mtime(NULL, "/", 0));
    ROW(dc_fs_set_mtime, "missing", DC_ERR_NOT_FOUND,
        dc_fs_set_mtime(f->fs, "/missing", 0));
    ROW(dc_fs_set_mtime, "INT64_MIN", DC_OK,
        (dc_fs_set_mtime(f->fs, "/scratch", INT64_MIN),
         dc_fs_stat(f->fs, "/scratch", &f->st),
         IS(f->st.mtime_ns == INT64_MIN)));
    ROW(dc_fs_set_mtime, "read-only", DC_ERR_READ_ONLY,
        dc_fs_set_mtime(ro(f), "/scratch", 0));

    PATH_ROWS(dc_fs_chmod, DC_ERR_NOT_FOUND, dc_fs_chmod(f->fs, path_, 0600));
    ROW(dc_fs_chmod, "NULL fs", INVAL, dc_fs_chmod(NULL, "/", 0600));
    ROW(dc_fs_chmod, "missing", DC_ERR_NOT_FOUND,
        dc_fs_chmod(f->fs, "/missing", 0600));
    ROW(dc_fs_chmod, "mode UINT32_MAX: masked to 07777", DC_OK,
        (dc_fs_chmod(f->fs, "/scratch", UINT32_MAX),
         dc_fs_stat(f->fs, "/scratch", &f->st), IS(f->st.mode == 07777)));
    ROW(dc_fs_chmod, "read-only", DC_ERR_READ_ONLY,
        dc_fs_chmod(ro(f), "/scratch", 0600));

    PATH_ROWS(dc_fs_opendir, DC_ERR_NOT_FOUND,
              NULLED(out_dir, dc_fs_opendir(&f->out_dir, f->fs, path_)));
    ROW(dc_fs_opendir, "NULL out", INVAL, dc_fs_opendir(NULL, f->fs, "/"));
    ROW(dc_fs_opendir, "NULL fs", INVAL,
        NULLED(out_dir, dc_fs_opendir(&f->out_dir, NULL, "/")));
    ROW(dc_fs_opendir, "a file", DC_ERR_NOT_A_DIRECTORY,
        NULLED(out_dir, dc_fs_opendir(&f->out_dir, f->fs, "/scratch")));
    ROW(dc_fs_opendir, "missing", DC_ERR_NOT_FOUND,
        NULLED(out_dir, dc_fs_opendir(&f->out_dir, f->fs, "/missing")));
    ROW(dc_dir_next, "NULL cursor", INVAL,
        dc_dir_next(NULL, f->name, sizeof f->name, &f->st));
    ROW(dc_dir_next, "a 255-byte name buffer", INVAL,
        dc_dir_next(dir(f), f->name, DC_MAX_NAME_BYTES, &f->st));
    ROW(dc_dir_next, "NULL name and stat: one entry", 1,
        dc_dir_next(dir(f), NULL, 0, NULL));
    ROW(dc_dir_next, "after the end", 0,
        (dir(f), dc_dir_next(f->dir, NULL, 0, NULL),
         dc_dir_next(f->dir, NULL, 0, NULL), dc_dir_next(f->dir, NULL, 0, NULL),
         dc_dir_next(f->dir, NULL, 0, NULL),
         dc_dir_next(f->dir, NULL, 0, NULL)));
    ROW(dc_dir_free, "NULL", DC_OK, VOID(dc_dir_free(NULL)));
}

static void rows_keyslots(fx *f) {
    const unsigned char *pass = (const unsigned char *)PASS;
    ROW(dc_fs_keyslot_add, "NULL fs", INVAL,
        dc_fs_keyslot_add(NULL, &f->slot, pass, PASS_LEN, 1, 8192));
    ROW(dc_fs_keyslot_add, "NULL passphrase, length 1", INVAL,
        dc_fs_keyslot_add(f->fs, &f->slot, NULL, 1, 1, 8192));
    ROW(dc_fs_keyslot_add, "empty passphrase", INVAL,
        dc_fs_keyslot_add(f->fs, &f->slot, pass, 0, 1, 8192));
    ROW(dc_fs_keyslot_add, "opslimit 0", INVAL,
        dc_fs_keyslot_add(f->fs, &f->slot, pass, PASS_LEN, 0, 8192));
    ROW(dc_fs_keyslot_add, "memlimit 0", INVAL,
        dc_fs_keyslot_add(f->fs, &f->slot, pass, PASS_LEN, 1, 0));
    ROW(dc_fs_keyslot_add, "opslimit UINT64_MAX", INVAL,
        dc_fs_keyslot_add(f->fs, &f->slot, pass, PASS_LEN, UINT64_MAX, 8192));
    ROW(dc_fs_keyslot_add, "memlimit UINT64_MAX", INVAL,
        dc_fs_keyslot_add(f->fs, &f->slot, pass, PASS_LEN, 1, UINT64_MAX));
    ROW(dc_fs_keyslot_add, "NULL slot_out", DC_OK,
        dc_fs_keyslot_add(f->fs, NULL, pass, PASS_LEN, 1, 8192));
    ROW(dc_fs_keyslot_add, "every slot used", DC_ERR_NO_SPACE,
        all_slots_then_one_more(f));
    ROW(dc_fs_keyslot_add, "read-only", DC_ERR_READ_ONLY,
        dc_fs_keyslot_add(ro(f), &f->slot, pass, PASS_LEN, 1, 8192));
    ROW(dc_fs_keyslot_remove, "NULL fs", INVAL,
        dc_fs_keyslot_remove(NULL, 0, 1));
    ROW(dc_fs_keyslot_remove, "slot -1", INVAL,
        dc_fs_keyslot_remove(f->fs, -1, 1));
    ROW(dc_fs_keyslot_remove, "slot DC_KEYSLOTS", INVAL,
        dc_fs_keyslot_remove(f->fs, DC_KEYSLOTS, 1));
    ROW(dc_fs_keyslot_remove, "slot INT_MAX", INVAL,
        dc_fs_keyslot_remove(f->fs, INT_MAX, 1));
    ROW(dc_fs_keyslot_remove, "an empty slot", DC_ERR_NOT_FOUND,
        dc_fs_keyslot_remove(f->fs, 5, 1));
    ROW(dc_fs_keyslot_remove, "the last slot", INVAL,
        dc_fs_keyslot_remove(f->fs, 0, 0));
    ROW(dc_fs_keyslot_remove, "read-only", DC_ERR_READ_ONLY,
        dc_fs_keyslot_remove(ro(f), 0, 1));
    ROW(dc_fs_keyslot_match, "NULL fs", INVAL,
        dc_fs_keyslot_match(NULL, &f->slot, pass, PASS_LEN));
    ROW(dc_fs_keyslot_match, "NULL slot_out", INVAL,
        dc_fs_keyslot_match(f->fs, NULL, pass, PASS_LEN));
    ROW(dc_fs_keyslot_match, "NULL passphrase, length 0", DC_ERR_AUTH,
        dc_fs_keyslot_match(f->fs, &f->slot, NULL, 0));
    ROW(dc_fs_keyslot_match, "NULL passphrase, length 1", INVAL,
        dc_fs_keyslot_match(f->fs, &f->slot, NULL, 1));
    ROW(dc_fs_keyslot_match, "the wrong passphrase", DC_ERR_AUTH,
        dc_fs_keyslot_match(f->fs, &f->slot, pass, PASS_LEN - 1));
    ROW(dc_fs_keyslot_list, "NULL fs", INVAL,
        dc_fs_keyslot_list(NULL, f->slots));
    ROW(dc_fs_keyslot_list, "NULL out", INVAL, dc_fs_keyslot_list(f->fs, NULL));

    ROW(dc_keyslot_unlock, "NULL key out", INVAL,
        dc_keyslot_unlock(NULL, &f->slot, pristine, BS, pass, PASS_LEN));
    ROW(dc_keyslot_unlock, "NULL header", INVAL,
        dc_keyslot_unlock(f->buf, &f->slot, NULL, 0, pass, PASS_LEN));
    ROW(dc_keyslot_unlock, "header length 0", DC_ERR_CORRUPT,
        dc_keyslot_unlock(f->buf, &f->slot, pristine, 0, pass, PASS_LEN));
    ROW(dc_keyslot_unlock, "a header cut before the slots", DC_ERR_CORRUPT,
        dc_keyslot_unlock(f->buf, &f->slot, pristine, 600, pass, PASS_LEN));
    ROW(dc_keyslot_unlock, "zeros", DC_ERR_CORRUPT,
        dc_keyslot_unlock(f->buf, &f->slot, f->block, BS, pass, PASS_LEN));
    ROW(dc_keyslot_unlock, "format version 3", DC_ERR_UNSUPPORTED,
        dc_keyslot_unlock(f->buf, &f->slot, header(f, 8, 3), BS, pass,
                          PASS_LEN));
    ROW(dc_keyslot_unlock, "NULL passphrase, length 1", INVAL,
        dc_keyslot_unlock(f->buf, &f->slot, pristine, BS, NULL, 1));
    ROW(dc_keyslot_unlock, "the wrong passphrase", DC_ERR_AUTH,
        dc_keyslot_unlock(f->buf, &f->slot, pristine, BS, pass, 3));
    ROW(dc_keyslot_unlock, "no used slot", DC_ERR_NOT_FOUND,
        dc_keyslot_unlock(f->buf, &f->slot, header(f, 512, 0), BS, pass,
                          PASS_LEN));
    ROW(dc_keyslot_unlock, "NULL slot_out", DC_OK,
        dc_keyslot_unlock(f->buf, NULL, pristine, BS, pass, PASS_LEN));
    ROW(dc_keyslot_list, "NULL out", INVAL,
        dc_keyslot_list(NULL, pristine, BS));
    ROW(dc_keyslot_list, "NULL header", INVAL,
        dc_keyslot_list(f->slots, NULL, 0));
    ROW(dc_keyslot_list, "header length 0", DC_ERR_CORRUPT,
        dc_keyslot_list(f->slots, pristine, 0));
    ROW(dc_keyslot_list, "a header cut before the slots", DC_ERR_CORRUPT,
        dc_keyslot_list(f->slots, pristine, 1000));
}

static void rows_compat(fx *f) {
    ROW(fs_create, "0 blocks", DC_OK, IS(fs_create(0, key, 32) == NULL));
    ROW(fs_create, "NULL key", DC_OK, IS(fs_create(16, NULL, 32) == NULL));
    ROW(fs_create, "a 31-byte key", DC_OK, IS(fs_create(16, key, 31) == NULL));
    ROW(fs_create, "UINT64_MAX blocks", DC_OK,
        IS(fs_create(UINT64_MAX, key, 32) == NULL));
    ROW(fs_create_disk, "NULL path", DC_OK,
        IS(fs_create_disk(NULL, 16, BS, 1, key, 32) == NULL));
    ROW(fs_create_disk, "NULL key", DC_OK,
        IS(fs_create_disk(tmp("new"), 16, BS, 1, NULL, 32) == NULL));
    ROW(fs_create_disk, "a missing image", DC_OK,
        IS(fs_create_disk(tmp("missing"), 0, BS, 0, key, 32) == NULL));
    ROW(fs_create_disk, "an existing image, create_new", DC_OK,
        IS(fs_create_disk(tmp("volume"), 16, BS, 1, key, 32) == NULL));
    ROW(fs_create_disk, "a bad block size", DC_OK,
        IS(fs_create_disk(tmp("new"), 16, 1000, 1, key, 32) == NULL));
    ROW(fs_create_disk, "more blocks than the image", DC_OK,
        IS(fs_create_disk(tmp("volume"), DISK_BLOCKS + 1, BS, 0, key, 32) ==
           NULL));
    ROW(fs_create_device, "NULL path", DC_OK,
        IS(fs_create_device(NULL, 0, BS, 0, key, 32) == NULL));
    ROW(fs_create_device, "NULL key", DC_OK,
        IS(fs_create_device(tmp("volume"), 0, BS, 0, NULL, 32) == NULL));
    ROW(fs_create_device, "an empty device", DC_OK,
        IS(fs_create_device("/dev/null", 0, BS, 0, key, 32) == NULL));
    ROW(fs_create_network, "always NULL", DC_OK,
        IS(fs_create_network(NULL, NULL, NULL, 0, NULL, 0, key, 32) == NULL));
    ROW(fs_destroy, "NULL", DC_OK, VOID(fs_destroy(NULL)));
    ROW(fs_init_filesystem, "NULL", InvalidArgument, fs_init_filesystem(NULL));
    ROW(fs_open, "NULL", InvalidArgument, fs_open(NULL));
    ROW(fs_open, "no volume", NotInitialized,
        (f->h = fs_create(16, key, 32), fs_open(f->h)));
    ROW(fs_open, "the wrong key", CryptoError,
        (fs_destroy(compat(f)), f->h = NULL,
         f->h = fs_create_disk(tmp("volume"), 0, BS, 0, wrong_key, 32),
         fs_open(f->h)));
    ROW(fs_create_file, "NULL handle", InvalidArgument,
        fs_create_file(NULL, "n"));
    ROW(fs_create_file, "NULL name", InvalidArgument,
        fs_create_file(compat(f), NULL));
    ROW(fs_create_file, "empty name", InvalidArgument,
        fs_create_file(compat(f), ""));
    ROW(fs_create_file, "before init", NotInitialized,
        (f->h = fs_create(16, key, 32), fs_create_file(f->h, "n")));
    ROW(fs_create_file, "existing", AlreadyExists,
        fs_create_file(compat(f), "a"));
    ROW(fs_create_file, "a 256-byte name", NameTooLong,
        fs_create_file(compat(f), long_name(f, 256) + 1));
    ROW(fs_create_file, "a path over 4096 bytes", NameTooLong,
        fs_create_file(compat(f), long_path(f)));
    ROW(fs_create_dir, "NULL handle", InvalidArgument,
        fs_create_dir(NULL, "n"));
    ROW(fs_create_dir, "NULL name", InvalidArgument,
        fs_create_dir(compat(f), NULL));
    ROW(fs_create_dir, "empty name", InvalidArgument,
        fs_create_dir(compat(f), "/"));
    ROW(fs_create_dir, "a missing parent", NotFound,
        fs_create_dir(compat(f), "m/n"));
    ROW(fs_write_file, "NULL handle", InvalidArgument,
        fs_write_file(NULL, "a", 0, f->buf, 1));
    ROW(fs_write_file, "NULL name", InvalidArgument,
        fs_write_file(compat(f), NULL, 0, f->buf, 1));
    ROW(fs_write_file, "NULL data", InvalidArgument,
        fs_write_file(compat(f), "a", 0, NULL, 0));
    ROW(fs_write_file, "missing", NotFound,
        fs_write_file(compat(f), "m", 0, f->buf, 1));
    ROW(fs_write_file, "offset 2^63", InvalidArgument,
        fs_write_file(compat(f), "a", TWO_63, f->buf, 1));
    ROW(fs_read_file, "NULL handle", InvalidArgument,
        fs_read_file(NULL, "a", 0, 1, f->buf, &f->size));
    ROW(fs_read_file, "NULL name", InvalidArgument,
        fs_read_file(compat(f), NULL, 0, 1, f->buf, &f->size));
    ROW(fs_read_file, "NULL buffer", InvalidArgument,
        fs_read_file(compat(f), "a", 0, 1, NULL, &f->size));
    ROW(fs_read_file, "NULL out_len", InvalidArgument,
        fs_read_file(compat(f), "a", 0, 1, f->buf, NULL));
    ROW(fs_read_file, "a directory", NotAFile,
        fs_read_file(compat(f), "d", 0, 1, f->buf, &f->size));
    ROW(fs_list_root, "NULL handle", InvalidArgument,
        (f->err = 0, fs_list_root(NULL, &f->err) == NULL ? f->err : Ok));
    ROW(fs_list_root, "NULL out_error, before init", DC_OK,
        (f->h = fs_create(16, key, 32), IS(fs_list_root(f->h, NULL) == NULL)));
    ROW(fs_list_dir, "NULL path", InvalidArgument,
        (f->err = 0,
         fs_list_dir(compat(f), NULL, &f->err) == NULL ? f->err : Ok));
    ROW(fs_list_dir, "a file", NotADirectory,
        (f->err = 0,
         fs_list_dir(compat(f), "a", &f->err) == NULL ? f->err : Ok));
    ROW(fs_list_dir, "missing", NotFound,
        (f->err = 0,
         fs_list_dir(compat(f), "m", &f->err) == NULL ? f->err : Ok));
    ROW(fs_remove_file, "NULL handle", InvalidArgument,
        fs_remove_file(NULL, "a"));
    ROW(fs_remove_file, "NULL name", InvalidArgument,
        fs_remove_file(compat(f), NULL));
    ROW(fs_remove_file, "missing", NotFound, fs_remove_file(compat(f), "m"));
    ROW(fs_remove_file, "a non-empty directory", DirectoryNotEmpty,
        fs_remove_file(compat(f), "d"));
    ROW(fs_rename, "NULL handle", InvalidArgument, fs_rename(NULL, "a", "b"));
    ROW(fs_rename, "NULL old name", InvalidArgument,
        fs_rename(compat(f), NULL, "b"));
    ROW(fs_rename, "NULL new name", InvalidArgument,
        fs_rename(compat(f), "a", NULL));
    ROW(fs_rename, "onto an existing entry", AlreadyExists,
        fs_rename(compat(f), "a", "d"));
    ROW(fs_rename, "missing", NotFound, fs_rename(compat(f), "m", "n"));
    ROW(fs_flush, "NULL", InvalidArgument, fs_flush(NULL));
    ROW(fs_flush, "before init", NotInitialized,
        (f->h = fs_create(16, key, 32), fs_flush(f->h)));
    ROW(fs_sync, "NULL", InvalidArgument, fs_sync(NULL));
    ROW(fs_sync, "before init", NotInitialized,
        (f->h = fs_create(16, key, 32), fs_sync(f->h)));
    ROW(fs_scrub_free_blocks, "NULL", InvalidArgument,
        fs_scrub_free_blocks(NULL));
    ROW(fs_stat, "NULL handle", InvalidArgument,
        fs_stat(NULL, "a", &f->u64, &f->err, &f->id));
    ROW(fs_stat, "NULL name", InvalidArgument,
        fs_stat(compat(f), NULL, &f->u64, &f->err, &f->id));
    ROW(fs_stat, "NULL size", InvalidArgument,
        fs_stat(compat(f), "a", NULL, &f->err, &f->id));
    ROW(fs_stat, "NULL kind", InvalidArgument,
        fs_stat(compat(f), "a", &f->u64, NULL, &f->id));
    ROW(fs_stat, "NULL inode", InvalidArgument,
        fs_stat(compat(f), "a", &f->u64, &f->err, NULL));
    ROW(fs_stat, "missing", NotFound,
        fs_stat(compat(f), "m", &f->u64, &f->err, &f->id));
    ROW(fs_blake3, "NULL data", InvalidArgument, fs_blake3(NULL, 0, f->buf));
    ROW(fs_blake3, "NULL out", InvalidArgument, fs_blake3(f->buf, 1, NULL));
    ROW(fs_blake3, "not available", InternalError,
        fs_blake3(f->buf, 1, f->buf));
    ROW(fs_free_string, "NULL", DC_OK, VOID(fs_free_string(NULL)));
}

void test_bad_input(void) {
    fx fixture;
    fx *f = &fixture;
    memset(f, 0, sizeof *f);
    make_fixtures();
    f->d.bytes = malloc(DISK_BLOCKS * BS);
    rows_core(f);
    rows_kdf(f);
    rows_codec(f);
    rows_alloc(f);
    rows_store(f);
    rows_fault(f);
    rows_volume(f);
    rows_paths(f);
    rows_keyslots(f);
    rows_compat(f);
    free(f->d.bytes);
    remove_fixtures();
    printf("bad input: %d rows (%d failed), %zu functions without rows "
           "(no arguments)\n",
           rows_run, rows_failed, sizeof no_rows / sizeof no_rows[0]);
}
