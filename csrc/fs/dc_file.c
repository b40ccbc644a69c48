/*
 * dc_file.c - file contents. A file is a sequence of chunks of
 * vol->chunk bytes, each sealed in one data block; its extent map (chunk
 * index, u64 big-endian -> data block ref and length) lives inline in the
 * inode record while it has at most DC__INLINE_EXTENTS entries and in its
 * own B+tree beyond that. Missing chunks are holes and read as zeros.
 *
 * Writes seal whole batches of chunks on the codec's threads into freshly
 * allocated (preferably contiguous) blocks and write them in one store call;
 * the replaced blocks are discarded (freed after the commit is durable).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fs/engine.h"

#define BATCH_BYTES (4u << 20)
#define MAX_FILE_SIZE ((uint64_t)INT64_MAX)
/* A kept read map whose loaded nodes span more block bytes than this is
 * dropped after the read: a node decodes to about a block's worth of memory,
 * so the maps together stay within a few MiB (2 MiB of 64 KiB nodes map 2 GiB
 * of file). */
#define READ_MAP_MAX_BYTES ((size_t)2 << 20)

static size_t chunk_key(unsigned char *key, uint64_t chunk) {
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(chunk >> (56 - 8 * i));
    return 8;
}

static uint64_t key_chunk(const unsigned char *key) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | key[i];
    return v;
}

static int staging(dc_fs *fs) {
    if (fs->sealed != NULL)
        return DC_OK;
    size_t bs = fs->vol.block_size;
    fs->batch = BATCH_BYTES / bs < 2 ? 2 : BATCH_BYTES / bs;
    fs->sealed = dc__aligned_alloc(fs->batch * bs);
    fs->staged = dc__aligned_alloc(fs->batch * fs->vol.chunk);
    fs->batch_ids = calloc(fs->batch, sizeof *fs->batch_ids);
    if (fs->sealed == NULL || fs->staged == NULL || fs->batch_ids == NULL)
        return DC_ERR_NO_MEMORY;
    return DC_OK;
}

/* Load a record's extent map into `t` (inline entries become an in-memory
 * leaf that has no block of its own). */
static int load_extents(dc_fs *fs, const dc__inode *ino, dc__btree *t) {
    dc__bt_init(t, &fs->vol, DC_KIND_EXTENT_MAP,
                ino->extent_format == DC__EXTENTS_TREE ? &ino->extent_root
                                                       : NULL);
    for (unsigned i = 0;
         ino->extent_format == DC__EXTENTS_INLINE && i < ino->ninline; i++) {
        unsigned char key[8], val[DC__EXTENT_VALUE_BYTES];
        chunk_key(key, ino->inline_chunk[i]);
        dc__extent_encode(val, &ino->inline_ext[i]);
        int rc = dc__bt_put(t, key, 8, val, sizeof val);
        if (rc != DC_OK) {
            dc__bt_drop(t);
            return rc;
        }
    }
    return DC_OK;
}

dc__file *dc__file_find(dc_fs *fs, uint64_t inode) {
    for (size_t i = 0; i < fs->nfiles; i++)
        if (fs->files[i]->inode == inode && !fs->files[i]->dead)
            return fs->files[i];
    return NULL;
}

int dc__file_open(dc_fs *fs, const dc__loc *loc, dc__file **out) {
    dc__file *f = dc__file_find(fs, loc->ino.id);
    if (f != NULL) {
        *out = f;
        return DC_OK;
    }
    if (fs->nfiles == fs->files_cap) {
        size_t cap = fs->files_cap ? fs->files_cap * 2 : 16;
        dc__file **files = realloc(fs->files, cap * sizeof *files);
        if (files == NULL)
            return DC_ERR_NO_MEMORY;
        fs->files = files;
        fs->files_cap = cap;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return DC_ERR_NO_MEMORY;
    f->inode = loc->ino.id;
    f->parent = loc->parent;
    f->nlen = loc->nlen;
    memcpy(f->name, loc->name, loc->nlen + 1);
    int rc = load_extents(fs, &loc->ino, &f->extents);
    if (rc != DC_OK) {
        free(f);
        return rc;
    }
    fs->files[fs->nfiles++] = f;
    *out = f;
    return DC_OK;
}

static void file_free(dc__file *f) {
    dc__bt_drop(&f->extents);
    free(f);
}

void dc__read_maps_drop(dc_fs *fs) {
    for (size_t i = 0; i < DC__READ_MAPS; i++) {
        dc__bt_drop(&fs->read_maps[i].extents);
        fs->read_maps[i].inode = 0;
    }
}

static int same_ref(const dc__ref *a, const dc__ref *b) {
    return a->block == b->block && memcmp(a->tag, b->tag, sizeof a->tag) == 0;
}

/* The kept extent map of a record with a tree-format map, loading it into
 * a slot (replacing the oldest) when it is not there. */
static dc__btree *read_map(dc_fs *fs, const dc__inode *ino) {
    for (size_t i = 0; i < DC__READ_MAPS; i++) {
        dc__read_map *m = &fs->read_maps[i];
        if (m->inode == ino->id &&
            same_ref(&m->extents.root_ref, &ino->extent_root))
            return &m->extents;
    }
    dc__read_map *m = &fs->read_maps[fs->read_map_next];
    fs->read_map_next = (fs->read_map_next + 1) % DC__READ_MAPS;
    dc__bt_drop(&m->extents);
    dc__bt_init(&m->extents, &fs->vol, DC_KIND_EXTENT_MAP, &ino->extent_root);
    m->inode = ino->id;
    return &m->extents;
}

static void read_map_trim(dc_fs *fs, dc__btree *t) {
    for (size_t i = 0; i < DC__READ_MAPS; i++) {
        dc__read_map *m = &fs->read_maps[i];
        if (&m->extents == t &&
            t->loaded > READ_MAP_MAX_BYTES / fs->vol.block_size) {
            dc__bt_drop(t);
            m->inode = 0;
        }
    }
}

void dc__files_drop(dc_fs *fs) {
    for (size_t i = 0; i < fs->nfiles; i++)
        file_free(fs->files[i]);
    fs->nfiles = 0;
}

/* Put the extent map of `t` into the record: inline when small, else the
 * (already flushed) tree root. */
static int store_extents(dc__btree *t, dc__inode *ino) {
    int n = dc__bt_small(t, DC__INLINE_EXTENTS);
    if (n == 0) {
        ino->extent_format = DC__EXTENTS_NONE;
        ino->ninline = 0;
        return DC_OK;
    }
    if (n > 0) {
        ino->extent_format = DC__EXTENTS_INLINE;
        ino->ninline = (unsigned)n;
        for (int i = 0; i < n; i++) {
            unsigned char key[DC__MAX_KEY], val[DC__EXTENT_VALUE_BYTES];
            size_t klen, vlen = sizeof val;
            int rc = dc__bt_leaf_entry(t, (size_t)i, key, &klen, val, &vlen);
            if (rc == DC_OK && klen != 8)
                rc = DC_ERR_CORRUPT;
            if (rc == DC_OK)
                rc = dc__extent_decode(val, vlen, &ino->inline_ext[i]);
            if (rc != DC_OK)
                return rc;
            ino->inline_chunk[i] = key_chunk(key);
        }
        return DC_OK;
    }
    ino->extent_format = DC__EXTENTS_TREE;
    ino->extent_root = t->root_ref;
    return DC_OK;
}

/* After a change: a small map goes inline into the record right away (and
 * the in-memory state is dropped); a large one stays as a dirty tree whose
 * root the commit writes back. */
static int settle(dc_fs *fs, dc__file *f, dc__loc *loc) {
    f->dirty = 1;
    int n = dc__bt_small(&f->extents, DC__INLINE_EXTENTS);
    int rc = DC_OK;
    if (n >= 0) {
        /* A map that had its own block gave it back when it was dirtied. */
        rc = store_extents(&f->extents, &loc->ino);
        for (size_t i = 0; rc == DC_OK && i < fs->nfiles; i++) {
            if (fs->files[i] == f) {
                fs->files[i] = fs->files[--fs->nfiles];
                file_free(f);
                break;
            }
        }
    } else {
        loc->ino.extent_format = DC__EXTENTS_TREE;
    }
    if (rc == DC_OK)
        rc = dc__ns_put(fs, loc->parent, loc->name, loc->nlen, &loc->ino);
    return rc;
}

int dc__files_finish(dc_fs *fs) {
    for (size_t i = 0; i < fs->nfiles; i++) {
        dc__file *f = fs->files[i];
        int rc = DC_OK;
        if (!f->dead && f->dirty) {
            unsigned char key[DC__NS_KEY_MAX], val[DC__INODE_MAX_BYTES];
            size_t klen = dc__ns_key(key, f->parent, f->name, f->nlen);
            size_t vlen = sizeof val;
            dc__inode ino;
            rc = dc__bt_flush(&f->extents);
            if (rc == DC_OK)
                rc = dc__bt_get(&fs->ns, key, klen, val, &vlen);
            if (rc == DC_OK)
                rc = dc__inode_decode(val, vlen, &ino);
            if (rc == DC_OK)
                rc = store_extents(&f->extents, &ino);
            if (rc == DC_OK)
                rc = dc__ns_put(fs, f->parent, f->name, f->nlen, &ino);
            f->dirty = 0;
        }
        if (rc != DC_OK)
            return rc;
    }
    return DC_OK;
}

/* ---- whole-file block enumeration and removal ---- */

typedef struct blocks_ctx {
    dc__block_fn fn;
    void *ctx;
} blocks_ctx;

static int blocks_node(void *ctx, const dc__ref *ref, unsigned level) {
    blocks_ctx *b = ctx;
    (void)level;
    return b->fn(b->ctx, ref->block, 0, NULL);
}

static int blocks_entry(void *ctx, const unsigned char *key, size_t klen,
                        const unsigned char *val, size_t vlen) {
    blocks_ctx *b = ctx;
    dc__extent e;
    (void)key;
    if (klen != 8 || dc__extent_decode(val, vlen, &e) != DC_OK)
        return DC_ERR_CORRUPT;
    return b->fn(b->ctx, e.data.block, 1, &e);
}

int dc__inode_blocks(dc__vol *vol, const dc__inode *ino, dc__block_fn fn,
                     void *ctx) {
    if (ino->extent_format == DC__EXTENTS_INLINE) {
        for (unsigned i = 0; i < ino->ninline; i++) {
            int rc =
                fn(ctx, ino->inline_ext[i].data.block, 1, &ino->inline_ext[i]);
            if (rc != DC_OK)
                return rc;
        }
        return DC_OK;
    }
    if (ino->extent_format != DC__EXTENTS_TREE)
        return DC_OK;
    blocks_ctx b = {fn, ctx};
    return dc__bt_walk(vol, DC_KIND_EXTENT_MAP, &ino->extent_root, blocks_node,
                       blocks_entry, &b);
}

static int discard_data(void *ctx, const unsigned char *key, size_t klen,
                        const unsigned char *val, size_t vlen) {
    dc_fs *fs = ctx;
    dc__extent e;
    (void)key;
    if (klen != 8 || dc__extent_decode(val, vlen, &e) != DC_OK)
        return DC_ERR_CORRUPT;
    return dc__allocator_discard(fs->vol.alloc, e.data.block);
}

int dc__file_discard(dc_fs *fs, const dc__loc *loc) {
    dc__file *f = dc__file_find(fs, loc->ino.id);
    if (f != NULL) {
        f->dead = 1;
        return dc__bt_discard_all(&f->extents, discard_data, fs);
    }
    dc__btree t;
    int rc = load_extents(fs, &loc->ino, &t);
    if (rc == DC_OK)
        rc = dc__bt_discard_all(&t, discard_data, fs);
    dc__bt_drop(&t);
    return rc;
}

/* ---- write ---- */

static int get_extent(dc__btree *t, uint64_t chunk, dc__extent *e) {
    unsigned char key[8], val[DC__EXTENT_VALUE_BYTES];
    size_t vlen = sizeof val;
    chunk_key(key, chunk);
    int rc = dc__bt_get(t, key, 8, val, &vlen);
    if (rc == DC_OK)
        rc = dc__extent_decode(val, vlen, e);
    return rc;
}

static int put_extent(dc__btree *t, uint64_t chunk, const dc__extent *e) {
    unsigned char key[8], val[DC__EXTENT_VALUE_BYTES];
    chunk_key(key, chunk);
    dc__extent_encode(val, e);
    return dc__bt_put(t, key, 8, val, sizeof val);
}

/* Blocks for a batch: one contiguous run if there is one, else singly. */
static int alloc_blocks(dc_fs *fs, uint64_t *ids, size_t n) {
    uint64_t first;
    if (n > 1 && dc_allocator_alloc_run(fs->vol.alloc, &first, n) == DC_OK) {
        for (size_t i = 0; i < n; i++)
            ids[i] = first + i;
        return DC_OK;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = dc_allocator_alloc(fs->vol.alloc, &ids[i]);
        if (rc != DC_OK)
            return rc; /* the txn rollback frees the fresh ones */
    }
    return DC_OK;
}

/* Write chunks [c0, c0+n) of the range [offset, end) from buf. */
static int write_batch(dc_fs *fs, dc__file *f, dc__inode *ino, uint64_t offset,
                       uint64_t end, const unsigned char *buf, uint64_t c0,
                       size_t n) {
    const size_t C = fs->vol.chunk;
    const unsigned char *ptrs[n];
    size_t lens[n];
    unsigned char kinds[n];
    dc__extent old[n];
    int has_old[n];
    for (size_t i = 0; i < n; i++) {
        uint64_t c = c0 + i, base = c * C;
        size_t lo = (size_t)((offset > base ? offset : base) - base);
        size_t hi = (size_t)((end < base + C ? end : base + C) - base);
        int rc = get_extent(&f->extents, c, &old[i]);
        if (rc != DC_OK && rc != DC_ERR_NOT_FOUND)
            return rc;
        has_old[i] = rc == DC_OK;
        size_t old_len = has_old[i] ? old[i].len : 0;
        kinds[i] = DC_KIND_DATA;
        if (lo == 0 && hi >= old_len) {
            /* The new bytes replace everything the chunk held. */
            ptrs[i] = buf + (base - offset);
            lens[i] = hi;
            continue;
        }
        unsigned char *stage = fs->staged + i * C;
        size_t len = old_len > hi ? old_len : hi;
        memset(stage, 0, len);
        if (has_old[i]) {
            size_t got;
            rc =
                dc__vol_read(&fs->vol, &old[i].data, DC_KIND_DATA, stage, &got);
            if (rc == DC_OK && got < old_len)
                rc = DC_ERR_CORRUPT;
            if (rc != DC_OK)
                return dc__fs_error(fs, rc, "cannot read chunk %llu: %s",
                                    (unsigned long long)c, dc_strerror(rc));
            memset(stage + old_len, 0, len - old_len);
        }
        memcpy(stage + lo, buf + (base + lo - offset), hi - lo);
        ptrs[i] = stage;
        lens[i] = len;
    }
    int rc = alloc_blocks(fs, fs->batch_ids, n);
    if (rc == DC_OK)
        rc = dc_codec_seal_batch(fs->vol.codec, fs->sealed, n, fs->batch_ids,
                                 kinds, ptrs, lens);
    if (rc == DC_OK)
        rc = dc_store_write_blocks(fs->vol.store, fs->batch_ids, n, fs->sealed);
    for (size_t i = 0; rc == DC_OK && i < n; i++) {
        dc__extent e;
        e.data.block = fs->batch_ids[i];
        dc__sealed_tag(fs->sealed + i * fs->vol.block_size, e.data.tag);
        e.len = (uint32_t)lens[i];
        if (has_old[i])
            rc = dc__allocator_discard(fs->vol.alloc, old[i].data.block);
        else
            ino->blocks++;
        if (rc == DC_OK)
            rc = put_extent(&f->extents, c0 + i, &e);
    }
    return rc;
}

int dc__file_write(dc_fs *fs, dc__loc *loc, uint64_t offset,
                   const unsigned char *buf, size_t len) {
    dc__file *f;
    int rc = staging(fs);
    if (rc == DC_OK)
        rc = dc__file_open(fs, loc, &f);
    if (rc != DC_OK)
        return rc;
    const size_t C = fs->vol.chunk;
    uint64_t end = offset + len;
    for (uint64_t c = offset / C; rc == DC_OK && c * C < end;) {
        uint64_t last = (end - 1) / C;
        size_t n =
            (size_t)(last - c + 1 < fs->batch ? last - c + 1 : fs->batch);
        rc = write_batch(fs, f, &loc->ino, offset, end, buf, c, n);
        c += n;
    }
    if (rc != DC_OK)
        return rc;
    if (end > loc->ino.size)
        loc->ino.size = end;
    loc->ino.mtime_ns = loc->ino.ctime_ns = dc__now_ns();
    return settle(fs, f, loc);
}

/* ---- read ---- */

/* One batch of present chunks, read and opened on the codec's threads: each
 * item reads its own block, so one thread's I/O overlaps another's
 * decryption. Chunks wholly inside the range open straight into the
 * caller's buffer. */
typedef struct read_job {
    dc_fs *fs;
    uint64_t offset, end;
    unsigned char *buf;
    const uint64_t *chunks;
    const dc__extent *ext;
    int *statuses;
} read_job;

static int read_one(read_job *j, size_t i) {
    dc_fs *fs = j->fs;
    const size_t C = fs->vol.chunk, bs = fs->vol.block_size;
    const dc__extent *e = &j->ext[i];
    unsigned char *blk = fs->sealed + i * bs;
    unsigned char tag[DC_CODEC_TAGBYTES];
    int rc = dc_store_read_blocks(fs->vol.store, &e->data.block, 1, blk);
    if (rc != DC_OK)
        return rc;
    uint32_t body = dc__load_u32le(blk);
    if (body < DC_CODEC_TAGBYTES || body > bs - DC_CODEC_HEADERBYTES)
        return DC_ERR_AUTH;
    dc__sealed_tag(blk, tag);
    if (sodium_memcmp(tag, e->data.tag, DC_CODEC_TAGBYTES) != 0)
        return DC_ERR_AUTH;
    uint64_t base = j->chunks[i] * C;
    size_t lo = (size_t)((j->offset > base ? j->offset : base) - base);
    size_t hi = (size_t)((j->end < base + C ? j->end : base + C) - base);
    unsigned char *dst = j->buf + (base + lo - j->offset);
    int whole = lo == 0 && hi == C;
    unsigned char *plain = whole ? dst : fs->staged + i * C;
    size_t got = C;
    rc = dc_codec_open(fs->vol.codec, plain, &got, e->data.block, DC_KIND_DATA,
                       blk);
    if (rc != DC_OK)
        return rc;
    /* An extent never claims more than its block holds (the write path and
     * fsck say the same): anything else is corruption, not zeros. */
    if (got < e->len)
        return DC_ERR_CORRUPT;
    size_t have = e->len; /* bytes past len read as 0 */
    if (whole) {
        memset(dst + have, 0, C - have);
    } else if (have > lo) {
        size_t take = (have < hi ? have : hi) - lo;
        memcpy(dst, plain + lo, take);
        memset(dst + take, 0, hi - lo - take);
    } else {
        memset(dst, 0, hi - lo);
    }
    return DC_OK;
}

static void read_item(void *ctx, size_t i) {
    read_job *j = ctx;
    j->statuses[i] = read_one(j, i);
}

int dc__file_read(dc_fs *fs, const dc__loc *loc, uint64_t offset,
                  unsigned char *buf, size_t len, size_t *out_read) {
    *out_read = 0;
    if (offset >= loc->ino.size || len == 0)
        return DC_OK;
    if (len > loc->ino.size - offset)
        len = (size_t)(loc->ino.size - offset);
    int rc = staging(fs);
    if (rc != DC_OK)
        return rc;
    dc__btree tmp, *t;
    dc__file *f = dc__file_find(fs, loc->ino.id);
    if (f != NULL) {
        t = &f->extents;
    } else if (loc->ino.extent_format == DC__EXTENTS_TREE) {
        t = read_map(fs, &loc->ino);
    } else {
        rc = load_extents(fs, &loc->ino, &tmp);
        if (rc != DC_OK)
            return rc;
        t = &tmp;
    }
    const size_t C = fs->vol.chunk;
    const uint64_t end = offset + len;
    uint64_t chunks[fs->batch];
    dc__extent ext[fs->batch];
    int statuses[fs->batch];
    read_job job = {fs, offset, end, buf, chunks, ext, statuses};
    for (uint64_t c = offset / C; rc == DC_OK && c * C < end;) {
        size_t n = 0;
        /* Gather up to a batch of present chunks; holes become zeros. */
        for (; c * C < end && n < fs->batch; c++) {
            uint64_t base = c * C;
            size_t lo = (size_t)((offset > base ? offset : base) - base);
            size_t hi = (size_t)((end < base + C ? end : base + C) - base);
            rc = get_extent(t, c, &ext[n]);
            if (rc == DC_ERR_NOT_FOUND) {
                memset(buf + (base + lo - offset), 0, hi - lo);
                rc = DC_OK;
                continue;
            }
            if (rc != DC_OK)
                break;
            chunks[n++] = c;
        }
        if (rc != DC_OK || n == 0)
            continue;
        dc__pool_run(dc__codec_pool(fs->vol.codec), n, read_item, &job);
        for (size_t i = 0; rc == DC_OK && i < n; i++)
            rc = statuses[i];
        if (rc != DC_OK)
            dc__fs_error(fs, rc, "cannot read data of inode %llu: %s",
                         (unsigned long long)loc->ino.id, dc_strerror(rc));
    }
    if (t == &tmp)
        dc__bt_drop(&tmp);
    else if (f == NULL)
        read_map_trim(fs, t);
    if (rc == DC_OK)
        *out_read = len;
    return rc;
}

/* ---- truncate ---- */

int dc__file_truncate(dc_fs *fs, dc__loc *loc, uint64_t size) {
    dc__file *f;
    int rc = dc__file_open(fs, loc, &f);
    if (rc != DC_OK)
        return rc;
    const size_t C = fs->vol.chunk;
    if (size < loc->ino.size) {
        uint64_t keep = (size + C - 1) / C; /* chunks [0, keep) stay */
        unsigned char key[8], found[DC__MAX_KEY], val[DC__EXTENT_VALUE_BYTES];
        for (;;) {
            size_t flen, vlen = sizeof val;
            chunk_key(key, keep);
            rc = dc__bt_seek(&f->extents, key, 8, found, &flen, val, &vlen);
            if (rc == DC_ERR_NOT_FOUND) {
                rc = DC_OK;
                break;
            }
            dc__extent e;
            if (rc == DC_OK)
                rc = dc__extent_decode(val, vlen, &e);
            if (rc == DC_OK)
                rc = dc__allocator_discard(fs->vol.alloc, e.data.block);
            if (rc == DC_OK)
                rc = dc__bt_del(&f->extents, found, flen);
            if (rc != DC_OK)
                return rc;
            loc->ino.blocks--;
        }
        /* The last kept chunk keeps only the bytes below the new size; the
         * rest of its plaintext is ignored from now on. */
        dc__extent e;
        if (size % C != 0 && get_extent(&f->extents, size / C, &e) == DC_OK &&
            e.len > size % C) {
            e.len = (uint32_t)(size % C);
            rc = put_extent(&f->extents, size / C, &e);
            if (rc != DC_OK)
                return rc;
        }
    }
    loc->ino.size = size;
    loc->ino.mtime_ns = loc->ino.ctime_ns = dc__now_ns();
    return settle(fs, f, loc);
}

/* ---- public entry points ---- */

static int file_loc(dc_fs *fs, const char *path, dc__loc *loc) {
    int rc = dc__ns_resolve(fs, path, loc);
    if (rc != DC_OK)
        return rc;
    if (!loc->exists)
        return dc__fs_error(fs, DC_ERR_NOT_FOUND, "no such file: %s", path);
    if (loc->ino.type != DC_TYPE_FILE)
        return dc__fs_error(fs, DC_ERR_NOT_A_FILE, "is a directory: %s", path);
    return DC_OK;
}

int dc_fs_write(dc_fs *fs, const char *path, uint64_t offset, const void *buf,
                size_t len) {
    if (fs == NULL || (buf == NULL && len > 0))
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    dc__loc loc;
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK)
        rc = file_loc(fs, path, &loc);
    if (rc == DC_OK && (offset > MAX_FILE_SIZE || len > MAX_FILE_SIZE - offset))
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                          "offset + length past the largest file size");
    if (rc == DC_OK && len > 0)
        rc = dc__fs_end_op(fs, dc__file_write(fs, &loc, offset, buf, len));
    dc__fs_detail(fs, rc);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_read(dc_fs *fs, const char *path, uint64_t offset, void *buf,
               size_t len, size_t *out_read) {
    if (fs == NULL || out_read == NULL || (buf == NULL && len > 0))
        return DC_ERR_INVALID_ARGUMENT;
    *out_read = 0;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    dc__loc loc;
    int rc = file_loc(fs, path, &loc);
    if (rc == DC_OK)
        rc = dc__file_read(fs, &loc, offset, buf, len, out_read);
    dc__fs_detail(fs, rc);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_truncate(dc_fs *fs, const char *path, uint64_t size) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    dc__loc loc;
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK)
        rc = file_loc(fs, path, &loc);
    if (rc == DC_OK && size > MAX_FILE_SIZE)
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT, "size too large");
    if (rc == DC_OK)
        rc = dc__fs_end_op(fs, dc__file_truncate(fs, &loc, size));
    dc__fs_detail(fs, rc);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}
