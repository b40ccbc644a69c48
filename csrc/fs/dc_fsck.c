/*
 * dc_fsck.c - whole-volume check: every reachable block opens and carries
 * the tag its parent expects, every entry decodes and sits under a
 * directory reachable from the root, counts agree with the superblock, and
 * the allocator marks exactly the reachable blocks (plus those waiting for a
 * durable commit).
 */
#include <stdlib.h>
#include <string.h>

#include "fs/engine.h"

typedef struct fsck_ctx {
    dc_fs *fs;
    dc_fsck_report *r;
    unsigned char *seen; /* one bit per block */
    /* Directory ids found, and (parent, child) links between directories. */
    uint64_t *dirs;
    size_t ndirs, dirs_cap;
    uint64_t *links; /* pairs: parent, child dir */
    size_t nlinks, links_cap;
    uint64_t entries_per_dir_errors;
    int first_error;
} fsck_ctx;

static int problem(fsck_ctx *c, int rc, const char *what, uint64_t block) {
    c->r->errors++;
    if (c->first_error == DC_OK) {
        c->first_error = rc;
        dc__fs_error(c->fs, rc, "%s (block %llu)", what,
                     (unsigned long long)block);
    }
    return DC_OK; /* keep checking */
}

static int see(fsck_ctx *c, uint64_t block) {
    if (block < DC_FIRST_DATA_BLOCK || block >= c->fs->header.total_blocks) {
        c->r->bad_references++;
        return problem(c, DC_ERR_CORRUPT, "reference out of range", block);
    }
    unsigned char bit = (unsigned char)(1u << (block % 8));
    if (c->seen[block / 8] & bit) {
        c->r->bad_references++;
        return problem(c, DC_ERR_CORRUPT, "block referenced twice", block);
    }
    c->seen[block / 8] |= bit;
    if (!dc_allocator_is_used(c->fs->vol.alloc, block)) {
        c->r->bad_references++;
        return problem(c, DC_ERR_CORRUPT, "referenced block is free", block);
    }
    return DC_OK;
}

static int push(uint64_t **arr, size_t *n, size_t *cap, uint64_t v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        uint64_t *a = realloc(*arr, nc * sizeof *a);
        if (a == NULL)
            return DC_ERR_NO_MEMORY;
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return DC_OK;
}

static int on_node(void *ctx, const dc__ref *ref, unsigned level) {
    fsck_ctx *c = ctx;
    (void)level;
    c->r->metadata_blocks++;
    return see(c, ref->block);
}

static int on_file_block(void *ctx, uint64_t block, int is_data,
                         const dc__extent *e) {
    fsck_ctx *c = ctx;
    int rc = see(c, block);
    if (rc != DC_OK || !is_data) {
        if (!is_data)
            c->r->metadata_blocks++;
        return rc;
    }
    c->r->data_blocks++;
    size_t len;
    rc = dc__vol_read(&c->fs->vol, &e->data, DC_KIND_DATA, NULL, &len);
    if (rc != DC_OK)
        return problem(c, rc, "data block does not verify", block);
    if (len < e->len)
        return problem(c, DC_ERR_CORRUPT, "data block shorter than its extent",
                       block);
    return DC_OK;
}

static int on_entry(void *ctx, const unsigned char *key, size_t klen,
                    const unsigned char *val, size_t vlen) {
    fsck_ctx *c = ctx;
    dc__inode ino;
    if (klen < 9 || dc__inode_decode(val, vlen, &ino) != DC_OK)
        return problem(c, DC_ERR_CORRUPT, "undecodable directory entry", 0);
    uint64_t parent = 0;
    for (int i = 0; i < 8; i++)
        parent = parent << 8 | key[i];
    if (ino.type == DC_TYPE_DIRECTORY) {
        c->r->directories++;
        int rc = push(&c->dirs, &c->ndirs, &c->dirs_cap, ino.id);
        if (rc == DC_OK)
            rc = push(&c->links, &c->nlinks, &c->links_cap, parent);
        if (rc == DC_OK)
            rc = push(&c->links, &c->nlinks, &c->links_cap, ino.id);
        return rc;
    }
    c->r->files++;
    int rc = push(&c->links, &c->nlinks, &c->links_cap, parent);
    if (rc == DC_OK)
        rc = push(&c->links, &c->nlinks, &c->links_cap, 0);
    if (rc == DC_OK) {
        int walk = dc__inode_blocks(&c->fs->vol, &ino, on_file_block, c);
        if (walk != DC_OK)
            problem(c, walk, "extent map does not verify", 0);
    }
    return rc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every entry's parent must be a directory reachable from the root. */
static void check_tree_shape(fsck_ctx *c) {
    size_t nd = c->ndirs + 1;
    uint64_t *ids = malloc(nd * sizeof *ids);
    unsigned char *reached = calloc(nd, 1);
    if (ids == NULL || reached == NULL) {
        free(ids);
        free(reached);
        problem(c, DC_ERR_NO_MEMORY, "out of memory", 0);
        return;
    }
    if (c->ndirs > 0)
        memcpy(ids, c->dirs, c->ndirs * sizeof *ids);
    ids[c->ndirs] = DC__ROOT_INODE;
    qsort(ids, nd, sizeof *ids, cmp_u64);
    for (size_t i = 1; i < nd; i++)
        if (ids[i] == ids[i - 1])
            problem(c, DC_ERR_CORRUPT, "directory inode used twice", 0);
    /* Propagate reachability from the root until nothing changes: each
     * round handles at least one more level of nesting. */
    uint64_t *root =
        bsearch(&(uint64_t){DC__ROOT_INODE}, ids, nd, sizeof *ids, cmp_u64);
    reached[root - ids] = 1;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < c->nlinks; i += 2) {
            uint64_t *p = bsearch(&c->links[i], ids, nd, sizeof *ids, cmp_u64);
            if (p == NULL || !reached[p - ids] || c->links[i + 1] == 0)
                continue;
            uint64_t *ch =
                bsearch(&c->links[i + 1], ids, nd, sizeof *ids, cmp_u64);
            if (ch != NULL && !reached[ch - ids]) {
                reached[ch - ids] = 1;
                changed = 1;
            }
        }
    }
    for (size_t i = 0; i < c->nlinks; i += 2) {
        uint64_t *p = bsearch(&c->links[i], ids, nd, sizeof *ids, cmp_u64);
        if (p == NULL || !reached[p - ids])
            problem(c, DC_ERR_CORRUPT,
                    "entry whose parent directory is missing or unreachable",
                    0);
    }
    free(ids);
    free(reached);
}

static int do_fsck(dc_fs *fs, dc_fsck_report *r) {
    fsck_ctx c;
    memset(&c, 0, sizeof c);
    memset(r, 0, sizeof *r);
    c.fs = fs;
    c.r = r;
    c.seen = calloc(fs->header.total_blocks / 8 + 1, 1);
    if (c.seen == NULL)
        return DC_ERR_NO_MEMORY;
    /* Check the committed state, as a fresh mount would see it. */
    see(&c, fs->committed_sb.block);
    c.r->metadata_blocks++;
    size_t len;
    int rc = dc__vol_read(&fs->vol, &fs->committed_sb, DC_KIND_SUPERBLOCK, NULL,
                          &len);
    if (rc != DC_OK)
        problem(&c, rc, "superblock does not verify", fs->committed_sb.block);
    rc = dc__bt_walk(&fs->vol, DC_KIND_DIRECTORY, &fs->committed.namespace_root,
                     on_node, on_entry, &c);
    if (rc != DC_OK)
        problem(&c, rc, "namespace does not verify", 0);
    check_tree_shape(&c);
    if (r->files != fs->committed.files ||
        r->directories + 1 != fs->committed.directories)
        problem(&c, DC_ERR_CORRUPT, "file or directory counts disagree", 0);
    /* Allocated but unreachable: leaked (deferred frees are expected). */
    uint64_t deferred = dc_allocator_deferred_blocks(fs->vol.alloc);
    uint64_t used = 0;
    for (uint64_t b = DC_FIRST_DATA_BLOCK; b < fs->header.total_blocks; b++)
        if (dc_allocator_is_used(fs->vol.alloc, b) &&
            !(c.seen[b / 8] & (1u << (b % 8))))
            used++;
    if (used > deferred) {
        r->leaked_blocks = used - deferred;
        problem(&c, DC_ERR_CORRUPT, "allocated blocks that nothing references",
                0);
    }
    free(c.seen);
    free(c.dirs);
    free(c.links);
    return c.first_error;
}

int dc_fs_fsck(dc_fs *fs, dc_fsck_report *report) {
    dc_fsck_report local;
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    int rc;
    if (fs->in_txn || fs->changed)
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                          "commit or abort the open transaction first");
    else
        rc = do_fsck(fs, report ? report : &local);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}
