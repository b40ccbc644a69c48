/*
 * engine.h - internal interfaces of the filesystem engine: on-disk records
 * (format/), the volume I/O context, the copy-on-write B+tree, and the
 * dc_fs handle. Layouts are specified in docs/FORMAT.md.
 */
#ifndef DC_ENGINE_H
#define DC_ENGINE_H

#include <pthread.h>

#include "internal.h"

/* ---- references and records (format/dc_format.c) ------------------------ */

/* A reference to a sealed block: its id and the AEAD tag it must carry, so
 * the parent authenticates the exact version of its child. Block 0 = none. */
typedef struct dc__ref {
    uint64_t block;
    unsigned char tag[DC_CODEC_TAGBYTES];
} dc__ref;
#define DC__REF_BYTES 24

void dc__ref_encode(unsigned char *p, const dc__ref *ref);
void dc__ref_decode(const unsigned char *p, dc__ref *ref);

#define DC__SLOT_A 1
#define DC__SLOT_B 2
#define DC__HEADER_FIELDS_BYTES 48
#define DC__MAC_BYTES 32

typedef struct dc__header {
    uint32_t block_size;
    uint64_t total_blocks;
    unsigned char volume_id[DC_CODEC_VOLUME_IDBYTES];
} dc__header;

/* Fill a whole header block (fields, MAC, random rest). */
void dc__header_encode(unsigned char *block, const dc__header *h,
                       const unsigned char *mac_key);
/* Parse the fields without a key: DC_ERR_CORRUPT / DC_ERR_UNSUPPORTED. */
int dc__header_decode(const unsigned char *buf, size_t len, dc__header *h);
/* DC_ERR_AUTH unless the MAC verifies under mac_key. */
int dc__header_verify(const unsigned char *block, const unsigned char *mac_key);

/* Key slots live in the header block (format/dc_keyslot.c). */
#define DC__KEYSLOT_OFFSET 512
#define DC__KEYSLOT_BYTES 128
int dc__keyslot_fill(unsigned char *header, int i,
                     const unsigned char *volume_id,
                     const unsigned char *master_key,
                     const unsigned char *passphrase, size_t len,
                     uint64_t opslimit, uint64_t memlimit);
void dc__keyslot_erase(unsigned char *header, int i);
/* Mark every slot empty (a new header). */
void dc__keyslots_clear(unsigned char *header);

typedef struct dc__root {
    uint64_t generation;
    dc__ref superblock;
} dc__root;

void dc__root_encode(unsigned char *block, uint32_t block_size,
                     const dc__root *root, int slot,
                     const unsigned char *volume_id,
                     const unsigned char *mac_key);
/* DC_ERR_AUTH for a torn, forged or misplaced root pointer. */
int dc__root_decode(const unsigned char *block, int slot,
                    const unsigned char *volume_id,
                    const unsigned char *mac_key, dc__root *root);

/* Inode record: the value of a namespace entry (and, for the root
 * directory, part of the superblock). */
#define DC__EXTENTS_NONE 0
#define DC__EXTENTS_INLINE 1
#define DC__EXTENTS_TREE 2
#define DC__INLINE_EXTENTS 4
#define DC__EXTENT_VALUE_BYTES 28
#define DC__INODE_FIXED_BYTES 48
#define DC__INODE_MAX_BYTES                                                    \
    (DC__INODE_FIXED_BYTES + DC__INLINE_EXTENTS * (8 + DC__EXTENT_VALUE_BYTES))

typedef struct dc__extent {
    dc__ref data;
    uint32_t len; /* plaintext bytes in the chunk */
} dc__extent;

typedef struct dc__inode {
    uint32_t type; /* DC_TYPE_FILE / DC_TYPE_DIRECTORY */
    uint32_t mode;
    uint64_t id;
    uint64_t size; /* bytes, or entries of a directory */
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint64_t blocks;
    int extent_format;
    dc__ref extent_root;
    unsigned ninline;
    uint64_t inline_chunk[DC__INLINE_EXTENTS];
    dc__extent inline_ext[DC__INLINE_EXTENTS];
} dc__inode;

size_t dc__inode_encode(unsigned char *p, const dc__inode *ino);
int dc__inode_decode(const unsigned char *p, size_t len, dc__inode *ino);
void dc__extent_encode(unsigned char *p, const dc__extent *e);
int dc__extent_decode(const unsigned char *p, size_t len, dc__extent *e);

typedef struct dc__super {
    uint64_t generation;
    dc__ref namespace_root;
    uint64_t next_inode;
    uint64_t files;
    uint64_t directories;
    dc__inode root_dir;
} dc__super;

size_t dc__super_encode(unsigned char *p, const dc__super *sb);
int dc__super_decode(const unsigned char *p, size_t len, dc__super *sb);

/* ---- the volume: store + codec + allocator (fs/dc_vol.c) ----------------- */

typedef struct dc__vol {
    dc_store *store;
    dc_codec *codec;
    dc_allocator *alloc;
    uint32_t block_size;
    size_t chunk;         /* plaintext bytes per block */
    unsigned char *block; /* one block of scratch */
    unsigned char *plain; /* one plaintext of scratch */
    /* Metadata blocks sealed but not yet written (written at commit). */
    unsigned char *queue;
    uint64_t *queue_ids;
    size_t queued, queue_cap;
} dc__vol;

int dc__vol_init(dc__vol *vol, dc_store *store);
void dc__vol_release(dc__vol *vol);
/* Read block ref->block, check its tag against ref and open it as `kind`
 * into vol->plain (or `out`, chunk bytes) ; *len = plaintext length. */
int dc__vol_read(dc__vol *vol, const dc__ref *ref, unsigned kind,
                 unsigned char *out, size_t *len);
/* Allocate a block, seal `plain` into the write queue, return its ref. */
int dc__vol_queue(dc__vol *vol, unsigned kind, const unsigned char *plain,
                  size_t len, dc__ref *ref);
int dc__vol_flush_queue(dc__vol *vol);
void dc__vol_drop_queue(dc__vol *vol);
/* The tag of a sealed block (from its envelope header). */
void dc__sealed_tag(const unsigned char *block, unsigned char *tag);

/* ---- copy-on-write B+tree (fs/dc_btree.c) -------------------------------- */

typedef struct dc__bnode dc__bnode;

typedef struct dc__btree {
    dc__vol *vol;
    unsigned kind;    /* DC_KIND_DIRECTORY or DC_KIND_EXTENT_MAP */
    dc__ref root_ref; /* where the root lives (block 0: none written) */
    dc__bnode *root;  /* in memory, or NULL until first needed */
    size_t loaded;    /* nodes read from disk since init or drop */
} dc__btree;

#define DC__MAX_KEY 263

void dc__bt_init(dc__btree *t, dc__vol *vol, unsigned kind,
                 const dc__ref *root);
/* Free the in-memory nodes (nothing is written or discarded). */
void dc__bt_drop(dc__btree *t);
int dc__bt_get(dc__btree *t, const unsigned char *key, size_t klen,
               unsigned char *val, size_t *vlen);
int dc__bt_put(dc__btree *t, const unsigned char *key, size_t klen,
               const unsigned char *val, size_t vlen);
int dc__bt_del(dc__btree *t, const unsigned char *key, size_t klen);
/* The first entry with key >= `key`; DC_ERR_NOT_FOUND past the end. The
 * found key is copied to out_key (DC__MAX_KEY bytes), value to val. */
int dc__bt_seek(dc__btree *t, const unsigned char *key, size_t klen,
                unsigned char *out_key, size_t *out_klen, unsigned char *val,
                size_t *vlen);
/* Seal every changed node into the write queue; t->root_ref is the result
 * (block 0 for an empty tree). */
int dc__bt_flush(dc__btree *t);
/* A tree small enough to live inline: a lone leaf of at most `max`
 * entries. Returns the entry count or -1. */
int dc__bt_small(dc__btree *t, size_t max);

/* Visit every node block and every leaf entry, reading from disk without
 * caching (mount, fsck, removal). Either callback may be NULL. */
typedef int (*dc__node_fn)(void *ctx, const dc__ref *ref, unsigned level);
typedef int (*dc__entry_fn)(void *ctx, const unsigned char *key, size_t klen,
                            const unsigned char *val, size_t vlen);
int dc__bt_walk(dc__vol *vol, unsigned kind, const dc__ref *root,
                dc__node_fn on_node, dc__entry_fn on_entry, void *ctx);
/* Discard every block of the tree (deferred, or at once if fresh), calling
 * on_entry for each leaf entry first; the tree is then empty. */
int dc__bt_discard_all(dc__btree *t, dc__entry_fn on_entry, void *ctx);
/* Entry i of a tree that dc__bt_small accepted. */
int dc__bt_leaf_entry(dc__btree *t, size_t i, unsigned char *key, size_t *klen,
                      unsigned char *val, size_t *vlen);
/* Check one node's plaintext as a read from disk would decode it (level,
 * count, entry bounds, strictly increasing keys, exact length), then
 * re-encode it: DC_OK, DC_ERR_CORRUPT / DC_ERR_NO_MEMORY from decoding, or
 * DC_ERR_INTERNAL when the re-encoding differs from the input. Nothing is
 * kept. An entry point for the fuzzers (tests/fuzz) and for checkers such
 * as fsck. */
int dc__bt_check_node(const unsigned char *p, size_t len);

/* ---- the filesystem handle (fs/dc_fs.c, dc_ns.c, dc_file.c, dc_fsck.c) --- */

#define DC__ROOT_INODE 1
#define DC__NS_KEY_MAX (8 + DC_MAX_NAME_BYTES)

/* A file whose extent map changed in the open transaction. */
typedef struct dc__file {
    uint64_t inode;
    uint64_t parent; /* where its namespace entry is (kept across renames) */
    size_t nlen;
    char name[DC_MAX_NAME_BYTES + 1];
    dc__btree extents;
    int dirty; /* extents changed since the last commit */
    int dead;  /* removed in this transaction */
} dc__file;

/* The extent map of a large file that was read without being changed, kept
 * for the next reads. It is found by inode and extent root reference: a
 * changed file has a new root (block and tag), so a stale map never
 * matches. */
typedef struct dc__read_map {
    uint64_t inode; /* 0: slot unused */
    dc__btree extents;
} dc__read_map;

#define DC__READ_MAPS 4

/* A resolved path: the entry, and its parent directory's own entry. */
typedef struct dc__loc {
    uint64_t parent; /* inode of the containing directory */
    size_t nlen;
    char name[DC_MAX_NAME_BYTES + 1];
    int exists;
    dc__inode ino;
    int is_root; /* the path is "/" */
    /* The containing directory's entry (root: its record lives in the
     * superblock). */
    int parent_is_root;
    uint64_t grandparent;
    size_t pnlen;
    char pname[DC_MAX_NAME_BYTES + 1];
    dc__inode parent_ino;
} dc__loc;

struct dc_fs {
    pthread_mutex_t lock;
    dc__vol vol;
    dc__header header;
    unsigned char *mac_key;    /* sodium_malloc'd root-pointer/header MAC key */
    unsigned char *master_key; /* sodium_malloc'd, for wrapping in key slots */
    dc__super sb;              /* working superblock */
    dc__super committed;       /* last committed superblock */
    dc__ref committed_sb;      /* where it lives */
    int slot;                  /* root pointer slot of the last commit */
    dc__btree ns; /* the namespace: (parent inode, name) -> inode */
    int read_only;
    int in_txn;
    int changed;   /* the working state differs from the committed one */
    int txn_error; /* an explicit transaction failed and was rolled back */
    int broken;    /* a commit failed half-way: remount to continue */
    dc__file **files;
    size_t nfiles, files_cap;
    dc__read_map read_maps[DC__READ_MAPS];
    size_t read_map_next; /* the slot the next new map replaces */
    /* Staging for batched data I/O: `batch` chunks at a time. */
    size_t batch;
    unsigned char *sealed;
    unsigned char *staged;
    uint64_t *batch_ids;
    char errmsg[256];
};

/* dc_fs.c */
int dc__fs_error(dc_fs *fs, int rc, const char *fmt, ...);
/* Return rc, making sure a failure leaves at least dc_strerror's text in
 * the handle's message. */
int dc__fs_detail(dc_fs *fs, int rc);
int dc__fs_begin_op(dc_fs *fs);
int dc__fs_end_op(dc_fs *fs, int rc);
int64_t dc__now_ns(void);

/* dc_ns.c: paths and namespace entries */
size_t dc__ns_key(unsigned char *key, uint64_t parent, const char *name,
                  size_t nlen);
int dc__ns_resolve(dc_fs *fs, const char *path, dc__loc *loc);
int dc__ns_put(dc_fs *fs, uint64_t parent, const char *name, size_t nlen,
               const dc__inode *ino);
/* Store loc->parent_ino back (the parent directory's record). */
int dc__ns_put_parent(dc_fs *fs, const dc__loc *loc);

/* dc_file.c: file data */
dc__file *dc__file_find(dc_fs *fs, uint64_t inode);
int dc__file_open(dc_fs *fs, const dc__loc *loc, dc__file **out);
/* Write extents of every changed file back into its namespace entry. */
int dc__files_finish(dc_fs *fs);
void dc__files_drop(dc_fs *fs);
void dc__read_maps_drop(dc_fs *fs);
/* Give back every block of a file (extents, map pages). */
int dc__file_discard(dc_fs *fs, const dc__loc *loc);
int dc__file_write(dc_fs *fs, dc__loc *loc, uint64_t offset,
                   const unsigned char *buf, size_t len);
int dc__file_read(dc_fs *fs, const dc__loc *loc, uint64_t offset,
                  unsigned char *buf, size_t len, size_t *out_read);
int dc__file_truncate(dc_fs *fs, dc__loc *loc, uint64_t size);
/* Every data block and map page of an inode record, for mount and fsck. */
typedef int (*dc__block_fn)(void *ctx, uint64_t block, int is_data,
                            const dc__extent *extent);
int dc__inode_blocks(dc__vol *vol, const dc__inode *ino, dc__block_fn fn,
                     void *ctx);

#endif /* DC_ENGINE_H */
