/*
 * fuzz_mount - a whole volume: mount, walk, read, fsck, change, remount.
 *
 * Everything on disk is authenticated, so random blocks never get past the
 * MACs. Instead the input gives the *plaintexts* of a tiny volume (16 blocks
 * of 4 KiB) and the target seals them itself with the fixed master key, so
 * the decoders behind authentication see the fuzzer's bytes.
 *
 * References inside plaintexts carry the tag of the block they name, which
 * only exists once that block is sealed; the input writes a placeholder
 * instead: a block id (u64 LE) followed by the 16 bytes of TAG_PLACEHOLDER.
 * The target seals referenced blocks first and puts their tags in place of
 * the placeholders (a placeholder naming a block that holds nothing, or one
 * in a cycle, stays as it is and fails authentication).
 * tests/fuzz/make_corpus.py turns real volumes into this form.
 *
 * Input (little-endian; missing bytes are zeros):
 *   0      flags: bit 0 mount read-only; bit 1 make changes after the walk;
 *          bits 2-4: the header claims that many blocks fewer than the store
 *   1      root pointer A: bit 7 written; bits 0-3 superblock block (3 + v%13)
 *   2..9   root pointer A generation
 *   10     root pointer B, as byte 1
 *   11..18 root pointer B generation
 *   19..23 parameters of the changes (offsets, sizes)
 *   then records until the end:
 *     op < 0x80: object: block 3 + op%13, u8 kind, u16 length, plaintext
 *     op >= 0x80: patch after sealing: block op%16, u16 offset, u8 xor
 *
 * Invariants besides "no crash, leak or hang": a volume that mounted
 * mounts again after the changes (every commit leaves a mountable volume),
 * and one that passed fsck still passes it after the changes and the
 * remount.
 */
#include <inttypes.h>

#include "fs/engine.h"
#include "fuzz_common.h"

#define BS 4096
#define NBLOCKS 16
#define FIRST 3
#define CHUNK (BS - DC_CODEC_OVERHEADBYTES)
#define MAX_REFS 256
#define MAX_DIRS 48
#define MAX_DEPTH 6
#define MAX_ENTRIES 256
#define READ_MAX 9000

static const unsigned char TAG_PLACEHOLDER[DC_CODEC_TAGBYTES] = {
    '[', '[', 'r', 'e', 'f', '-', 't', 'a',
    'g', '-', 'h', 'e', 'r', 'e', ']', ']'};

typedef struct object {
    int present, sealed;
    unsigned kind;
    size_t len;
    unsigned char plain[CHUNK];
    size_t nrefs;
    size_t refs[MAX_REFS]; /* offsets of the placeholders' block ids */
} object;

typedef struct disk {
    unsigned char blocks[NBLOCKS][BS];
    uint64_t total; /* what the store reports */
} disk;

/* Keys and the codec, made once. */
static dc_codec *codec;
static unsigned char mac_key[DC_KDF_SUBKEYBYTES];

static void setup(void) {
    if (codec != NULL)
        return;
    unsigned char key[DC_KDF_SUBKEYBYTES], vid[DC_CODEC_VOLUME_IDBYTES];
    dc_codec_options opts;
    fuzz_subkey(key, DC_SUBKEY_BLOCK_ENCRYPTION);
    fuzz_subkey(mac_key, DC_SUBKEY_ROOT_MAC);
    fuzz_volume_id(vid);
    dc_codec_options_init(&opts);
    opts.block_size = BS;
    opts.threads = 1;
    FUZZ_CHECK(dc_codec_new(&codec, key, vid, &opts) == DC_OK);
}

/* ---- the store: a custom backend over the harness's own blocks ---- */

static int disk_info(void *payload, uint32_t *bs, uint64_t *total) {
    *bs = BS;
    *total = ((disk *)payload)->total;
    return DC_OK;
}

static int disk_read(void *payload, const uint64_t *ids, size_t count,
                     unsigned char *buf) {
    disk *d = payload;
    for (size_t i = 0; i < count; i++)
        memcpy(buf + i * BS, d->blocks[ids[i]], BS);
    return DC_OK;
}

static int disk_write(void *payload, const uint64_t *ids, size_t count,
                      const unsigned char *buf) {
    disk *d = payload;
    for (size_t i = 0; i < count; i++)
        memcpy(d->blocks[ids[i]], buf + i * BS, BS);
    return DC_OK;
}

static int disk_sync(void *payload) {
    (void)payload;
    return DC_OK;
}

static int mount(disk *d, int read_only, dc_fs **fs) {
    const dc_store_backend backend = {DC_STORE_BACKEND_VERSION,
                                      disk_info,
                                      disk_read,
                                      disk_write,
                                      disk_sync,
                                      NULL,
                                      NULL};
    dc_store *store;
    unsigned char key[DC_KDF_MASTER_KEYBYTES];
    dc_fs_options opts;
    FUZZ_CHECK(dc_store_new_custom(&store, &backend, d) == DC_OK);
    dc_fs_options_init(&opts);
    opts.threads = 1;
    opts.read_only = read_only;
    fuzz_master_key(key);
    return dc_fs_mount(fs, store, key, &opts);
}

/* ---- building the volume ---- */

static void find_refs(object *o) {
    o->nrefs = 0;
    for (size_t at = 8; at + DC_CODEC_TAGBYTES <= o->len; at++) {
        if (o->plain[at] != TAG_PLACEHOLDER[0] ||
            memcmp(o->plain + at, TAG_PLACEHOLDER, DC_CODEC_TAGBYTES) != 0)
            continue;
        if (o->nrefs < MAX_REFS)
            o->refs[o->nrefs++] = at - 8;
        at += DC_CODEC_TAGBYTES - 1;
    }
}

static uint64_t ref_block(const object *o, size_t i) {
    return dc__load_u64le(o->plain + o->refs[i]);
}

static void seal(disk *d, object *objs, uint64_t b) {
    object *o = &objs[b];
    for (size_t i = 0; i < o->nrefs; i++) {
        uint64_t to = ref_block(o, i);
        if (to < NBLOCKS && objs[to].sealed)
            dc__sealed_tag(d->blocks[to], o->plain + o->refs[i] + 8);
    }
    if (dc_codec_seal(codec, d->blocks[b], b, o->kind, o->plain, o->len) ==
        DC_OK)
        o->sealed = 1;
    o->present = 0;
}

/* Children before parents; a cycle is broken at its lowest block. */
static void seal_all(disk *d, object *objs) {
    for (;;) {
        int pending = 0, progress = 0;
        for (uint64_t b = FIRST; b < NBLOCKS; b++) {
            object *o = &objs[b];
            if (!o->present)
                continue;
            int ready = 1;
            for (size_t i = 0; i < o->nrefs && ready; i++) {
                uint64_t to = ref_block(o, i);
                ready = to >= NBLOCKS || to == b || !objs[to].present;
            }
            if (ready) {
                seal(d, objs, b);
                progress = 1;
            } else {
                pending = 1;
            }
        }
        if (!pending)
            return;
        if (!progress) {
            for (uint64_t b = FIRST; b < NBLOCKS; b++) {
                if (objs[b].present) {
                    seal(d, objs, b);
                    break;
                }
            }
        }
    }
}

static void put_root(disk *d, object *objs, int slot, uint8_t spec,
                     uint64_t generation) {
    unsigned char *block = d->blocks[slot];
    if (!(spec & 0x80)) {
        memset(block, 0xA5, BS); /* never written: no valid MAC */
        return;
    }
    dc__root root;
    unsigned char vid[DC_CODEC_VOLUME_IDBYTES];
    memset(&root, 0, sizeof root);
    root.generation = generation;
    root.superblock.block = FIRST + (spec & 0x0F) % (NBLOCKS - FIRST);
    if (objs[root.superblock.block].sealed)
        dc__sealed_tag(d->blocks[root.superblock.block], root.superblock.tag);
    fuzz_volume_id(vid);
    dc__root_encode(block, BS, &root, slot, vid, mac_key);
}

typedef struct params {
    int read_only, mutate;
    uint8_t p[5];
} params;

static void build(disk *d, object *objs, params *pr, const uint8_t *data,
                  size_t size) {
    fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    uint8_t spec_a = fuzz_u8(&in);
    uint64_t gen_a = fuzz_u64(&in);
    uint8_t spec_b = fuzz_u8(&in);
    uint64_t gen_b = fuzz_u64(&in);
    fuzz_bytes(&in, pr->p, sizeof pr->p);
    pr->read_only = flags & 1;
    pr->mutate = (flags & 2) != 0;

    memset(d->blocks, 0, sizeof d->blocks);
    d->total = NBLOCKS;
    struct {
        uint8_t block, x;
        uint16_t off;
    } patches[64];
    size_t np = 0;
    while (in.left > 0) {
        uint8_t op = fuzz_u8(&in);
        if (op >= 0x80) {
            uint16_t off = fuzz_u16(&in);
            uint8_t x = fuzz_u8(&in);
            if (np < sizeof patches / sizeof patches[0]) {
                patches[np].block = op % NBLOCKS;
                patches[np].off = off % BS;
                patches[np].x = x;
                np++;
            }
            continue;
        }
        object *o = &objs[FIRST + op % (NBLOCKS - FIRST)];
        o->present = 1;
        o->kind = fuzz_u8(&in);
        size_t len = fuzz_u16(&in);
        o->len = len < CHUNK ? len : CHUNK;
        if (o->len > in.left)
            o->len = in.left;
        fuzz_bytes(&in, o->plain, o->len);
        find_refs(o);
    }
    seal_all(d, objs);

    dc__header h;
    h.block_size = BS;
    h.total_blocks = NBLOCKS - ((flags >> 2) & 7);
    fuzz_volume_id(h.volume_id);
    dc__header_encode(d->blocks[0], &h, mac_key);
    put_root(d, objs, DC__SLOT_A, spec_a, gen_a);
    put_root(d, objs, DC__SLOT_B, spec_b, gen_b);
    for (size_t i = 0; i < np; i++)
        d->blocks[patches[i].block][patches[i].off] ^= patches[i].x;
}

/* ---- using the mounted volume ---- */

typedef struct walk {
    dc_fs *fs;
    size_t dirs, entries;
    int complete; /* every entry was seen */
    uint64_t ids[MAX_ENTRIES + 1];
    char file[DC_MAX_PATH_BYTES + 1]; /* the first file seen, or "" */
    char last[DC_MAX_PATH_BYTES + 1]; /* the last file seen, or "" */
    char dir[DC_MAX_PATH_BYTES + 1];  /* the first directory below / */
    unsigned char buf[READ_MAX];
} walk;

static void walk_start(walk *w, dc_fs *fs) {
    memset(w, 0, sizeof *w);
    w->fs = fs;
    w->complete = 1;
    w->ids[0] = DC__ROOT_INODE;
}

static int cmp_id(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether the walk saw every entry and no inode number twice. Known engine
 * limit (docs/RELIABILITY.md, "Fuzzing"): two entries sharing an inode
 * number share one cached extent map, so writing to both cross-links their
 * blocks and the next mount refuses the volume; mount does not look for
 * duplicates, so the invariants after changes only hold without them. */
static int unique_ids(walk *w) {
    size_t n = w->entries + 1;
    if (!w->complete)
        return 0;
    qsort(w->ids, n, sizeof w->ids[0], cmp_id);
    for (size_t i = 1; i < n; i++)
        if (w->ids[i] == w->ids[i - 1])
            return 0;
    return 1;
}

static int verbose = -1;

static void read_file(walk *w, const char *path, const dc_stat *st) {
    size_t got;
    if (verbose)
        fprintf(stderr, "read %s (%" PRIu64 " bytes)\n", path, st->size);
    uint64_t offsets[3] = {0, st->size > READ_MAX ? st->size - READ_MAX : 0,
                           st->size / 2};
    for (int i = 0; i < 3; i++) {
        int rc = dc_fs_read(w->fs, path, offsets[i], w->buf, READ_MAX, &got);
        if (rc == DC_OK) {
            uint64_t want = st->size - offsets[i];
            FUZZ_CHECK(got == (want < READ_MAX ? want : READ_MAX));
        }
    }
}

static void list(walk *w, const char *path, int depth) {
    dc_dir *dir;
    char name[DC_MAX_NAME_BYTES + 1];
    dc_stat st;
    if (depth > MAX_DEPTH || w->dirs >= MAX_DIRS) {
        w->complete = 0;
        return;
    }
    w->dirs++;
    if (dc_fs_opendir(&dir, w->fs, path) != DC_OK) {
        w->complete = 0;
        return;
    }
    for (;;) {
        if (w->entries == MAX_ENTRIES) {
            w->complete = 0;
            break;
        }
        int rc = dc_dir_next(dir, name, sizeof name, &st);
        FUZZ_CHECK(rc <= 1);
        if (rc < 0)
            w->complete = 0;
        if (rc <= 0)
            break;
        w->ids[++w->entries] = st.inode;
        if (verbose)
            fprintf(stderr, "entry %s: %s\n", path, name);
        size_t plen = strlen(path), nlen = strlen(name);
        FUZZ_CHECK(nlen <= DC_MAX_NAME_BYTES);
        char *child = malloc(plen + nlen + 2);
        FUZZ_CHECK(child != NULL);
        snprintf(child, plen + nlen + 2, "%s%s%s", path,
                 path[plen - 1] == '/' ? "" : "/", name);
        dc_stat again;
        if (dc_fs_stat(w->fs, child, &again) != DC_OK ||
            strlen(child) > DC_MAX_PATH_BYTES) {
            w->complete = 0; /* a name that is no path (has '/', ...) */
        } else {
            if (again.type == DC_TYPE_FILE) {
                if (w->file[0] == 0)
                    strcpy(w->file, child);
                strcpy(w->last, child);
                read_file(w, child, &again);
            } else {
                if (w->dir[0] == 0)
                    strcpy(w->dir, child);
                list(w, child, depth + 1);
            }
        }
        free(child);
    }
    dc_dir_free(dir);
}

/* A few of every kind of change; each may fail (no space, corruption
 * found on the way), none may crash. */
static void mutate(walk *w, const params *pr) {
    dc_fs *fs = w->fs;
    uint64_t off = (uint64_t)pr->p[0] * 97 + pr->p[1];
    size_t len = ((size_t)pr->p[2] * 37) % READ_MAX + 1;
    memset(w->buf, pr->p[3], sizeof w->buf);
    (void)dc_fs_create(fs, "/fz", 0644, 0);
    (void)dc_fs_write(fs, "/fz", off, w->buf, len);
    (void)dc_fs_mkdir(fs, "/fzd", 0755);
    if (w->file[0] != 0) {
        (void)dc_fs_write(fs, w->file, off * 13, w->buf, len / 3 + 1);
        (void)dc_fs_truncate(fs, w->file, off * (pr->p[4] & 7));
        (void)dc_fs_chmod(fs, w->file, 0600);
        (void)dc_fs_write(fs, w->last, off, w->buf, len / 2 + 1);
    }
    if (w->dir[0] != 0) {
        char path[DC_MAX_PATH_BYTES + 1];
        snprintf(path, sizeof path, "%.4090s/n", w->dir);
        (void)dc_fs_create(fs, path, 0644, 1);
        (void)dc_fs_rename(fs, w->dir, "/fzd/moved");
        (void)dc_fs_rmdir(fs, "/fzd/moved");
    }
    if (dc_fs_begin(fs) == DC_OK) {
        (void)dc_fs_makedirs(fs, "/fzd/a/b", 0755);
        (void)dc_fs_write(fs, "/fz", off + len, w->buf, len);
        int rc = pr->p[4] & 8 ? dc_fs_abort(fs) : dc_fs_commit(fs);
        (void)rc;
    }
    if (w->file[0] != 0)
        (void)dc_fs_remove(fs, w->file);
    (void)dc_fs_truncate(fs, "/fz", off / 2);
    (void)dc_fs_remove(fs, "/fz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static disk d;
    static object objs[NBLOCKS];
    static walk w;
    params pr;
    dc_fs *fs;
    setup();
    memset(objs, 0, sizeof objs);
    build(&d, objs, &pr, data, size);

    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    int rc = mount(&d, pr.read_only, &fs);
    if (verbose)
        fprintf(stderr, "mount: %s\n", dc_strerror(rc));
    if (rc != DC_OK) {
        FUZZ_CHECK(fs == NULL);
        return 0;
    }
    dc_statvfs sv;
    FUZZ_CHECK(dc_fs_statvfs(fs, &sv) == DC_OK);
    FUZZ_CHECK(sv.free_blocks <= sv.total_blocks);

    walk_start(&w, fs);
    list(&w, "/", 0);
    int checked = unique_ids(&w);
    dc_fsck_report report;
    int clean = dc_fs_fsck(fs, &report) == DC_OK;
    if (verbose)
        fprintf(stderr, "walk: %zu dirs, %zu entries; fsck: %s\n", w.dirs,
                w.entries, clean ? "clean" : dc_fs_errmsg(fs));
    int mutated = !pr.read_only && pr.mutate;
    if (mutated) {
        mutate(&w, &pr);
        int after = dc_fs_fsck(fs, &report);
        if (verbose)
            fprintf(stderr, "fsck after the changes: %s\n",
                    after == DC_OK ? "clean" : dc_fs_errmsg(fs));
        if (clean && checked)
            FUZZ_CHECK(after == DC_OK);
    }
    dc_fs_free(fs);
    if (!mutated)
        return 0;

    /* Every commit left a volume that mounts (and stays clean). */
    rc = mount(&d, 1, &fs);
    if (verbose || (rc != DC_OK && checked))
        fprintf(stderr, "remount after the changes: %s\n", dc_strerror(rc));
    FUZZ_CHECK(rc == DC_OK || !checked);
    if (rc != DC_OK)
        return 0;
    if (clean && checked)
        FUZZ_CHECK(dc_fs_fsck(fs, &report) == DC_OK);
    walk_start(&w, fs);
    list(&w, "/", 0);
    dc_fs_free(fs);
    return 0;
}
