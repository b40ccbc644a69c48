/*
 * dc_fs.c - the dc_fs handle: format, mount (root pointer choice, allocator
 * rebuild), transactions and the commit protocol.
 *
 * Commit: seal changed files' extent maps, the namespace and a new
 * superblock; write them; barrier (store sync); write the root pointer into
 * the slot the previous commit did not use. The barrier makes the previous
 * root pointer durable too, so the blocks the previous commit freed become
 * reusable only then; blocks this commit frees wait for the next barrier.
 * A read-write mount syncs before anything is written, so the root pointer
 * it chose is durable before the other slot's tree (free to this mount) can
 * be overwritten. A crash therefore always leaves an intact tree behind the
 * newest valid root pointer.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "fs/engine.h"

int64_t dc__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int dc__fs_error(dc_fs *fs, int rc, const char *fmt, ...) {
    if (fs != NULL && rc < 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fs->errmsg, sizeof fs->errmsg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int dc__fs_detail(dc_fs *fs, int rc) {
    if (rc < 0 && fs->errmsg[0] == 0)
        snprintf(fs->errmsg, sizeof fs->errmsg, "%s", dc_strerror(rc));
    return rc;
}

const char *dc_fs_errmsg(const dc_fs *fs) {
    if (fs == NULL)
        return "no filesystem handle";
    return fs->errmsg[0] ? fs->errmsg : "no error";
}

int dc_fs_options_init(dc_fs_options *opts) {
    if (opts == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    memset(opts, 0, sizeof *opts);
    opts->version = DC_FS_OPTIONS_VERSION;
    return DC_OK;
}

int dc_fs_probe(const unsigned char *header, size_t len, uint32_t *block_size,
                uint64_t *total_blocks) {
    dc__header h;
    if (header == NULL || block_size == NULL || total_blocks == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    int rc = dc__header_decode(header, len, &h);
    if (rc != DC_OK)
        return rc;
    *block_size = h.block_size;
    *total_blocks = h.total_blocks;
    return DC_OK;
}

/* ---- handle life cycle ------------------------------------------------------
 */

static void fs_release(dc_fs *fs) {
    dc__files_drop(fs);
    dc__read_maps_drop(fs);
    free(fs->files);
    dc__aligned_free(fs->sealed);
    dc__aligned_free(fs->staged);
    free(fs->batch_ids);
    dc__bt_drop(&fs->ns);
    dc_store *store = fs->vol.store;
    dc__vol_release(&fs->vol);
    dc_store_free(store);
    sodium_free(fs->mac_key);
    sodium_free(fs->master_key);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

/* A handle over `store` with keys derived from master_key. */
static int fs_new(dc_fs **out, dc_store *store, const unsigned char *master_key,
                  const dc_fs_options *opts, const unsigned char *volume_id,
                  dc_fs_options *used) {
    *out = NULL;
    if (opts == NULL) {
        dc_fs_options_init(used);
    } else {
        if (opts->version != DC_FS_OPTIONS_VERSION) {
            dc_store_free(store);
            return DC_ERR_UNSUPPORTED;
        }
        *used = *opts;
    }
    if (dc_init() != DC_OK) {
        dc_store_free(store);
        return DC_ERR_INTERNAL;
    }
    dc_fs *fs = calloc(1, sizeof *fs);
    if (fs == NULL) {
        dc_store_free(store);
        return DC_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&fs->lock, NULL);
    fs->read_only = used->read_only != 0;
    int rc = dc__vol_init(&fs->vol, store);
    if (rc != DC_OK) {
        dc_store_free(store);
        pthread_mutex_destroy(&fs->lock);
        free(fs);
        return rc;
    }
    fs->mac_key = sodium_malloc(DC_KDF_SUBKEYBYTES);
    fs->master_key = sodium_malloc(DC_KDF_MASTER_KEYBYTES);
    if (fs->mac_key == NULL || fs->master_key == NULL) {
        *out = fs;
        return DC_ERR_NO_MEMORY;
    }
    memcpy(fs->master_key, master_key, DC_KDF_MASTER_KEYBYTES);
    rc = dc_kdf_derive_subkey(fs->mac_key, DC_SUBKEY_ROOT_MAC, master_key);
    *out = fs;
    (void)volume_id;
    return rc;
}

static int make_codec(dc_fs *fs, const unsigned char *master_key,
                      unsigned threads) {
    unsigned char key[DC_KDF_SUBKEYBYTES];
    dc_codec_options copts;
    dc_codec_options_init(&copts);
    copts.block_size = fs->vol.block_size;
    copts.threads = threads;
    int rc = dc_kdf_derive_subkey(key, DC_SUBKEY_BLOCK_ENCRYPTION, master_key);
    if (rc == DC_OK)
        rc = dc_codec_new(&fs->vol.codec, key, fs->header.volume_id, &copts);
    sodium_memzero(key, sizeof key);
    if (rc == DC_OK) {
        fs->vol.chunk = dc_codec_max_plaintext(fs->vol.codec);
        rc = dc_allocator_new(&fs->vol.alloc, fs->header.total_blocks);
    }
    return rc;
}

static int check_store(dc_store *store) {
    return store != NULL && dc_store_block_size(store) >= DC_MIN_BLOCK_SIZE &&
                   dc_store_total_blocks(store) > DC_FIRST_DATA_BLOCK
               ? DC_OK
               : DC_ERR_INVALID_ARGUMENT;
}

/* ---- commit protocol ---- */

static int write_root(dc_fs *fs, const dc__root *root, int slot) {
    uint64_t id = (uint64_t)slot;
    dc__root_encode(fs->vol.block, fs->vol.block_size, root, slot,
                    fs->header.volume_id, fs->mac_key);
    return dc_store_write_blocks(fs->vol.store, &id, 1, fs->vol.block);
}

static void rollback(dc_fs *fs) {
    dc__files_drop(fs);
    dc__bt_drop(&fs->ns);
    dc__vol_drop_queue(&fs->vol);
    dc__allocator_txn_abort(fs->vol.alloc);
    fs->sb = fs->committed;
    dc__bt_init(&fs->ns, &fs->vol, DC_KIND_DIRECTORY,
                &fs->committed.namespace_root);
    fs->changed = 0;
}

static int commit(dc_fs *fs) {
    if (!fs->changed)
        return DC_OK;
    int rc = dc__files_finish(fs);
    if (rc == DC_OK)
        rc = dc__bt_flush(&fs->ns);
    if (rc != DC_OK) {
        rollback(fs);
        return rc;
    }
    dc__super next = fs->sb;
    next.generation = fs->committed.generation + 1;
    next.namespace_root = fs->ns.root_ref;
    size_t len = dc__super_encode(fs->vol.plain, &next);
    dc__ref sb_ref;
    rc = dc__vol_queue(&fs->vol, DC_KIND_SUPERBLOCK, fs->vol.plain, len,
                       &sb_ref);
    if (rc == DC_OK && fs->committed_sb.block != 0)
        rc = dc__allocator_discard(fs->vol.alloc, fs->committed_sb.block);
    if (rc == DC_OK)
        rc = dc__vol_flush_queue(&fs->vol);
    if (rc == DC_OK)
        rc = dc_store_sync(fs->vol.store); /* the barrier */
    if (rc != DC_OK) {
        rollback(fs);
        return rc;
    }
    /* The previous root pointer is durable now. */
    dc__allocator_durable(fs->vol.alloc);
    int slot = fs->slot == DC__SLOT_A ? DC__SLOT_B : DC__SLOT_A;
    dc__root root = {next.generation, sb_ref};
    rc = write_root(fs, &root, slot);
    if (rc != DC_OK) {
        /* Unknown whether the root pointer landed: stop writing. */
        fs->broken = 1;
        return dc__fs_error(fs, rc, "root pointer write failed: %s",
                            dc_strerror(rc));
    }
    dc__allocator_txn_committed(fs->vol.alloc);
    dc__files_drop(fs);
    fs->slot = slot;
    fs->sb = next;
    fs->committed = next;
    fs->committed_sb = sb_ref;
    fs->changed = 0;
    return DC_OK;
}

int dc__fs_begin_op(dc_fs *fs) {
    if (fs->read_only)
        return dc__fs_error(fs, DC_ERR_READ_ONLY, "volume is read-only");
    if (fs->broken)
        return dc__fs_error(fs, DC_ERR_READ_ONLY,
                            "an earlier commit failed; remount the volume");
    if (fs->txn_error)
        return dc__fs_error(fs, fs->txn_error,
                            "the transaction failed and was rolled back; "
                            "abort or commit it first");
    return DC_OK;
}

/* Finish a mutation: commit it on its own, or leave it in the open
 * transaction. A failure rolls back everything since the last commit. */
int dc__fs_end_op(dc_fs *fs, int rc) {
    if (rc == DC_OK) {
        fs->changed = 1;
        if (fs->in_txn)
            return DC_OK;
        rc = commit(fs);
        if (rc != DC_OK && fs->errmsg[0] == 0)
            dc__fs_error(fs, rc, "commit failed: %s", dc_strerror(rc));
        return rc;
    }
    if (fs->in_txn && fs->changed) {
        rollback(fs);
        fs->txn_error = rc;
    } else {
        rollback(fs);
    }
    return rc;
}

/* ---- format and mount ---- */

static int format_volume(dc_fs *fs) {
    dc__super *sb = &fs->sb;
    int64_t now = dc__now_ns();
    memset(sb, 0, sizeof *sb);
    sb->next_inode = DC__ROOT_INODE + 1;
    sb->directories = 1;
    sb->root_dir.type = DC_TYPE_DIRECTORY;
    sb->root_dir.mode = 0755;
    sb->root_dir.id = DC__ROOT_INODE;
    sb->root_dir.mtime_ns = sb->root_dir.ctime_ns = now;
    fs->committed = *sb;
    dc__bt_init(&fs->ns, &fs->vol, DC_KIND_DIRECTORY, NULL);

    uint64_t zero = 0;
    dc__header_encode(fs->vol.block, &fs->header, fs->mac_key);
    int rc = dc_store_write_blocks(fs->vol.store, &zero, 1, fs->vol.block);
    /* Slot B starts as random bytes, which never carry a valid MAC. */
    uint64_t slot_b = DC__SLOT_B;
    dc__random_fill(fs->vol.block, fs->vol.block_size);
    if (rc == DC_OK)
        rc = dc_store_write_blocks(fs->vol.store, &slot_b, 1, fs->vol.block);
    fs->slot = DC__SLOT_B; /* so the first commit goes to slot A */
    fs->changed = 1;
    if (rc == DC_OK)
        rc = commit(fs);
    if (rc == DC_OK)
        rc = dc_store_sync(fs->vol.store);
    if (rc == DC_OK)
        dc__allocator_durable(fs->vol.alloc);
    return rc;
}

/* Put a new volume on fs's store. */
static int format_new(dc_fs *fs, const unsigned char *master_key,
                      unsigned threads) {
    if (fs->read_only)
        return DC_ERR_READ_ONLY;
    fs->header.block_size = fs->vol.block_size;
    fs->header.total_blocks = dc_store_total_blocks(fs->vol.store);
    randombytes_buf(fs->header.volume_id, sizeof fs->header.volume_id);
    int rc = make_codec(fs, master_key, threads);
    return rc == DC_OK ? format_volume(fs) : rc;
}

static int mount_volume(dc_fs *fs, const unsigned char *master_key,
                        unsigned threads);

/* The shared front of dc_fs_format and dc_fs_mount: checks, a handle that
 * owns the store, then `setup`; on failure everything (store too) is freed. */
static int open_handle(dc_fs **out, dc_store *store,
                       const unsigned char *master_key,
                       const dc_fs_options *opts,
                       int (*setup)(dc_fs *, const unsigned char *, unsigned)) {
    dc_fs_options used;
    if (out != NULL)
        *out = NULL;
    if (out == NULL || master_key == NULL || check_store(store) != DC_OK) {
        dc_store_free(store);
        return DC_ERR_INVALID_ARGUMENT;
    }
    dc_fs *fs;
    int rc = fs_new(&fs, store, master_key, opts, NULL, &used);
    if (rc == DC_OK)
        rc = setup(fs, master_key, used.threads);
    if (rc != DC_OK) {
        if (fs != NULL)
            fs_release(fs);
        return rc;
    }
    *out = fs;
    return DC_OK;
}

int dc_fs_format(dc_fs **out, dc_store *store, const unsigned char *master_key,
                 const dc_fs_options *opts) {
    return open_handle(out, store, master_key, opts, format_new);
}

/* Mount-time tree walk: every referenced block is marked in the allocator
 * once; a second reference is corruption. */
typedef struct mark_ctx {
    dc_fs *fs;
    uint64_t next_inode; /* of the superblock being verified */
} mark_ctx;

static int mark_block(dc_fs *fs, uint64_t block) {
    int rc = dc_allocator_mark_used(fs->vol.alloc, block);
    if (rc == DC_ERR_ALREADY_EXISTS || rc == DC_ERR_INVALID_ARGUMENT)
        return dc__fs_error(fs, DC_ERR_CORRUPT,
                            "block %llu referenced twice or out of range",
                            (unsigned long long)block);
    return rc;
}

static int mark_node(void *ctx, const dc__ref *ref, unsigned level) {
    (void)level;
    return mark_block(((mark_ctx *)ctx)->fs, ref->block);
}

static int mark_inode_block(void *ctx, uint64_t block, int is_data,
                            const dc__extent *extent) {
    dc_fs *fs = ((mark_ctx *)ctx)->fs;
    /* No extent is written longer than a chunk; reads and rewrites of a
     * chunk size their buffers by it. */
    if (is_data && extent->len > fs->vol.chunk)
        return dc__fs_error(
            fs, DC_ERR_CORRUPT, "extent in block %llu claims %lu bytes",
            (unsigned long long)block, (unsigned long)extent->len);
    return mark_block(fs, block);
}

static int mark_entry(void *ctx, const unsigned char *key, size_t klen,
                      const unsigned char *val, size_t vlen) {
    mark_ctx *m = ctx;
    dc__inode ino;
    if (klen < 9 || dc__inode_decode(val, vlen, &ino) != DC_OK)
        return dc__fs_error(m->fs, DC_ERR_CORRUPT, "bad directory entry");
    /* Numbers come from next_inode and are never reused: one at or past it
     * would be handed out again by the next create. The same holds for the
     * parent in the key (big-endian, see dc_ns.c): entries under a parent
     * not yet handed out would be adopted by the next directory made. */
    uint64_t parent = 0;
    for (int i = 0; i < 8; i++)
        parent = parent << 8 | key[i];
    if (ino.id <= DC__ROOT_INODE || ino.id >= m->next_inode ||
        parent < DC__ROOT_INODE || parent >= m->next_inode)
        return dc__fs_error(m->fs, DC_ERR_CORRUPT,
                            "inode %llu (parent %llu) outside the numbers "
                            "handed out (next inode %llu)",
                            (unsigned long long)ino.id,
                            (unsigned long long)parent,
                            (unsigned long long)m->next_inode);
    return dc__inode_blocks(&m->fs->vol, &ino, mark_inode_block, m);
}

/* Try the root pointer `root` from `slot`: its superblock and whole tree. */
static int try_root(dc_fs *fs, const dc__root *root, int slot) {
    size_t len;
    dc__super sb;
    dc_allocator_free(fs->vol.alloc);
    fs->vol.alloc = NULL;
    int rc = dc_allocator_new(&fs->vol.alloc, fs->header.total_blocks);
    if (rc != DC_OK)
        return rc;
    rc = dc__vol_read(&fs->vol, &root->superblock, DC_KIND_SUPERBLOCK, NULL,
                      &len);
    if (rc != DC_OK)
        return rc;
    rc = dc__super_decode(fs->vol.plain, len, &sb);
    if (rc != DC_OK || sb.generation != root->generation ||
        sb.root_dir.id != DC__ROOT_INODE)
        return rc != DC_OK ? rc : DC_ERR_CORRUPT;
    rc = mark_block(fs, root->superblock.block);
    mark_ctx m = {fs, sb.next_inode};
    if (rc == DC_OK) {
        dc__bt_drop(&fs->ns);
        rc = dc__bt_walk(&fs->vol, DC_KIND_DIRECTORY, &sb.namespace_root,
                         mark_node, mark_entry, &m);
    }
    if (rc != DC_OK)
        return rc;
    dc__allocator_txn_committed(fs->vol.alloc);
    fs->sb = fs->committed = sb;
    fs->committed_sb = root->superblock;
    fs->slot = slot;
    dc__bt_init(&fs->ns, &fs->vol, DC_KIND_DIRECTORY, &sb.namespace_root);
    return DC_OK;
}

/* The newest root pointer whose MAC verifies (*slot: DC__SLOT_A or B); a
 * torn or forged one is ignored. */
static int newest_root(dc_fs *fs, dc__root *root, int *slot) {
    dc__root roots[2];
    int valid[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        uint64_t id = (uint64_t)(DC__SLOT_A + i);
        int rc = dc_store_read_blocks(fs->vol.store, &id, 1, fs->vol.block);
        if (rc != DC_OK)
            return dc__fs_error(fs, rc, "cannot read root pointer %d", i);
        valid[i] =
            dc__root_decode(fs->vol.block, DC__SLOT_A + i, fs->header.volume_id,
                            fs->mac_key, &roots[i]) == DC_OK;
    }
    if (!valid[0] && !valid[1])
        return dc__fs_error(fs, DC_ERR_CORRUPT,
                            "no valid root pointer (both slots torn)");
    int i = valid[1] && (!valid[0] || roots[1].generation > roots[0].generation)
                ? 1
                : 0;
    *root = roots[i];
    *slot = DC__SLOT_A + i;
    return DC_OK;
}

/* Load generation `root` from `slot`. Its tree must verify completely: the
 * commit protocol makes every block durable before the root pointer naming
 * it, so a failure below a valid root pointer is damage or tampering, never
 * a crash, and silently mounting the older generation would hide it. */
static int load_generation(dc_fs *fs, const dc__root *root, int slot) {
    int rc = try_root(fs, root, slot);
    if (rc != DC_OK)
        return dc__fs_error(
            fs, rc,
            "generation %llu (root pointer %c) does not verify: "
            "%s",
            (unsigned long long)root->generation, "AB"[slot - DC__SLOT_A],
            dc_strerror(rc));
    return DC_OK;
}

static int mount_volume(dc_fs *fs, const unsigned char *master_key,
                        unsigned threads) {
    uint64_t zero = 0;
    int rc = dc_store_read_blocks(fs->vol.store, &zero, 1, fs->vol.block);
    if (rc != DC_OK)
        return dc__fs_error(fs, rc, "cannot read the volume header");
    rc = dc__header_decode(fs->vol.block, fs->vol.block_size, &fs->header);
    if (rc != DC_OK)
        return dc__fs_error(fs, rc,
                            rc == DC_ERR_UNSUPPORTED
                                ? "unsupported format version"
                                : "not a doublecrypt volume");
    if (fs->header.block_size != fs->vol.block_size ||
        fs->header.total_blocks > dc_store_total_blocks(fs->vol.store))
        return dc__fs_error(
            fs, DC_ERR_CORRUPT,
            "volume geometry (%u x %llu) does not match the "
            "store (%u x %llu)",
            fs->header.block_size, (unsigned long long)fs->header.total_blocks,
            fs->vol.block_size,
            (unsigned long long)dc_store_total_blocks(fs->vol.store));
    if (dc__header_verify(fs->vol.block, fs->mac_key) != DC_OK)
        return dc__fs_error(fs, DC_ERR_AUTH,
                            "wrong key (the volume header does not verify)");
    rc = make_codec(fs, master_key, threads);
    if (rc != DC_OK)
        return rc;

    dc__root root;
    int slot;
    rc = newest_root(fs, &root, &slot);
    if (rc == DC_OK)
        rc = load_generation(fs, &root, slot);
    if (rc != DC_OK)
        return rc;
    /* What was just read may not be durable yet (a writer that died without
     * syncing, its writes still in a cache). The allocator now treats the
     * other slot's tree as free, so make this root pointer durable before
     * any commit can overwrite that tree: else a power loss could leave the
     * older root pointer newest, over a tree no longer intact. */
    if (!fs->read_only) {
        rc = dc_store_sync(fs->vol.store);
        if (rc != DC_OK)
            return dc__fs_error(fs, rc, "cannot sync the store: %s",
                                dc_strerror(rc));
    }
    fs->errmsg[0] = 0;
    return DC_OK;
}

int dc_fs_mount(dc_fs **out, dc_store *store, const unsigned char *master_key,
                const dc_fs_options *opts) {
    return open_handle(out, store, master_key, opts, mount_volume);
}

void dc_fs_free(dc_fs *fs) {
    if (fs == NULL)
        return;
    pthread_mutex_lock(&fs->lock);
    if (fs->in_txn || fs->changed)
        rollback(fs);
    if (!fs->read_only && !fs->broken && dc_store_sync(fs->vol.store) == DC_OK)
        dc__allocator_durable(fs->vol.alloc);
    pthread_mutex_unlock(&fs->lock);
    fs_release(fs);
}

/* ---- public calls on the handle ---- */

int dc_fs_refresh(dc_fs *fs) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    fs->errmsg[0] = 0;
    int rc = DC_OK;
    if (fs->in_txn)
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                          "a transaction is open: commit or abort it first");
    /* Outside a transaction every commit has reached the store (root
     * pointers are written through the cache): what a cache still holds
     * unwritten is from work that was rolled back. */
    if (rc == DC_OK)
        rc = dc__store_forget(fs->vol.store);
    dc__root root;
    int slot = 0;
    if (rc == DC_OK)
        rc = newest_root(fs, &root, &slot);
    if (rc == DC_OK && (root.generation != fs->committed.generation ||
                        slot != fs->slot || fs->broken)) {
        /* Everything in memory came from the old generation. */
        dc__files_drop(fs);
        dc__read_maps_drop(fs);
        dc__vol_drop_queue(&fs->vol);
        rc = load_generation(fs, &root, slot);
        fs->broken = rc != DC_OK;
    }
    if (rc == DC_OK) {
        fs->changed = 0;
        fs->txn_error = 0;
    }
    dc__fs_detail(fs, rc);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_sync(dc_fs *fs) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    int rc = fs->read_only ? DC_OK : dc_store_sync(fs->vol.store);
    if (rc == DC_OK && !fs->read_only)
        dc__allocator_durable(fs->vol.alloc);
    else if (rc != DC_OK)
        dc__fs_error(fs, rc, "sync failed: %s", dc_strerror(rc));
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_begin(dc_fs *fs) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK && fs->in_txn)
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                          "a transaction is already open");
    if (rc == DC_OK)
        fs->in_txn = 1;
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_commit(dc_fs *fs) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    int rc;
    if (!fs->in_txn) {
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT, "no open transaction");
    } else if (fs->txn_error) {
        rc = fs->txn_error;
        dc__fs_error(fs, rc, "the transaction was rolled back: %s",
                     dc_strerror(rc));
        fs->txn_error = 0;
        fs->in_txn = 0;
    } else {
        fs->in_txn = 0;
        rc = commit(fs);
    }
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_abort(dc_fs *fs) {
    if (fs == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    int rc = DC_OK;
    if (!fs->in_txn)
        rc = dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT, "no open transaction");
    else
        rollback(fs);
    fs->in_txn = 0;
    fs->txn_error = 0;
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int dc_fs_in_transaction(const dc_fs *fs) {
    if (fs == NULL)
        return 0;
    /* Under the lock: another thread may be beginning or ending one. The
     * handle is never itself const (only the caller's pointer is), so
     * casting the const away to lock it is well defined. */
    dc_fs *h = (dc_fs *)fs;
    pthread_mutex_lock(&h->lock);
    int in_txn = h->in_txn;
    pthread_mutex_unlock(&h->lock);
    return in_txn;
}

int dc_fs_statvfs(dc_fs *fs, dc_statvfs *out) {
    if (fs == NULL || out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fs->lock);
    memset(out, 0, sizeof *out);
    out->block_size = fs->vol.block_size;
    out->total_blocks = fs->header.total_blocks;
    out->free_blocks = dc_allocator_free_blocks(fs->vol.alloc);
    out->chunk_size = fs->vol.chunk;
    out->files = fs->sb.files;
    out->directories = fs->sb.directories;
    out->generation = fs->committed.generation;
    out->max_name = DC_MAX_NAME_BYTES;
    pthread_mutex_unlock(&fs->lock);
    return DC_OK;
}

int dc_fs_volume_id(const dc_fs *fs, unsigned char *out) {
    if (fs == NULL || out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    memcpy(out, fs->header.volume_id, DC_CODEC_VOLUME_IDBYTES);
    return DC_OK;
}
