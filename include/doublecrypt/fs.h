/*
 * doublecrypt/fs.h - the encrypted copy-on-write filesystem.
 *
 * A dc_fs is a mounted volume over a dc_store. Paths are absolute and
 * '/'-separated ("/" is the root; one trailing '/' is ignored); names are
 * 1-255 bytes of UTF-8 without '/' or NUL and are not "." or "..".
 *
 * Every mutating call is atomic: it commits a new generation (new blocks,
 * a barrier, then the root pointer of the other slot), unless a transaction
 * is open (dc_fs_begin), in which case everything up to dc_fs_commit is one
 * generation and dc_fs_abort drops it all. A commit is durable after the
 * next commit or dc_fs_sync; after a crash the volume mounts at the last
 * durable commit or a later one, never in between.
 *
 * Thread safety: a dc_fs has its own lock and may be shared between threads;
 * an open transaction belongs to the handle, so every thread's mutations join
 * it. dc_fs_errmsg describes the last error of the handle.
 */
#ifndef DOUBLECRYPT_FS_H
#define DOUBLECRYPT_FS_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "store.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_FS_OPTIONS_VERSION 1
#define DC_MAX_NAME_BYTES 255
#define DC_MAX_PATH_BYTES 4096
#define DC_HEADER_PROBE_BYTES 4096

/* dc_stat.type */
#define DC_TYPE_FILE 1
#define DC_TYPE_DIRECTORY 2

typedef struct dc_fs dc_fs;
typedef struct dc_dir dc_dir;

typedef struct dc_fs_options {
    /* DC_FS_OPTIONS_VERSION */
    unsigned int version;
    /* Threads for sealing and opening batches: 0 = one per CPU. */
    unsigned int threads;
    /* Non-zero: refuse every mutation with DC_ERR_READ_ONLY. */
    int read_only;
} dc_fs_options;

typedef struct dc_stat {
    uint64_t inode;
    /* DC_TYPE_FILE or DC_TYPE_DIRECTORY */
    uint32_t type;
    /* Permission bits (07777); stored, not enforced. */
    uint32_t mode;
    /* Bytes for files, entries for directories. */
    uint64_t size;
    /* Nanoseconds since the Unix epoch. */
    int64_t mtime_ns;
    int64_t ctime_ns;
    /* Data blocks the file occupies (holes take none). */
    uint64_t blocks;
} dc_stat;

typedef struct dc_statvfs {
    uint32_t block_size;
    uint64_t total_blocks;
    uint64_t free_blocks;
    /* Plaintext bytes one data block holds. */
    uint64_t chunk_size;
    uint64_t files;
    uint64_t directories;
    uint64_t generation;
    uint32_t max_name;
} dc_statvfs;

typedef struct dc_fsck_report {
    uint64_t files;
    uint64_t directories;
    uint64_t metadata_blocks;
    uint64_t data_blocks;
    /* Allocated blocks no tree refers to (leaked), and referenced blocks the
     * allocator thinks free, or referenced twice. */
    uint64_t leaked_blocks;
    uint64_t bad_references;
    uint64_t errors;
} dc_fsck_report;

DC_API int dc_fs_options_init(dc_fs_options *opts);

/**
 * Read the volume geometry from the first DC_HEADER_PROBE_BYTES (or more)
 * bytes of an image, before any key is known. DC_ERR_CORRUPT when it is not
 * a doublecrypt volume, DC_ERR_UNSUPPORTED for another format version.
 */
DC_API int dc_fs_probe(const unsigned char *header, size_t len,
                       uint32_t *block_size, uint64_t *total_blocks);

/**
 * Format `store` as an empty volume under the DC_KDF_MASTER_KEYBYTES
 * `master_key` and mount it. The fs takes over the store (freed by
 * dc_fs_free, and by this call when it fails).
 */
DC_API int dc_fs_format(dc_fs **out, dc_store *store,
                        const unsigned char *master_key,
                        const dc_fs_options *opts);

/**
 * Mount the volume on `store` (taken over as by dc_fs_format). A wrong key
 * gives DC_ERR_AUTH and writes nothing; a store that holds no volume gives
 * DC_ERR_CORRUPT; a torn or forged newest root pointer falls back to the
 * other slot.
 */
DC_API int dc_fs_mount(dc_fs **out, dc_store *store,
                       const unsigned char *master_key,
                       const dc_fs_options *opts);

/**
 * Abort any open transaction, make the last commit durable (sync), and free
 * the handle and its store. NULL is a no-op.
 */
DC_API void dc_fs_free(dc_fs *fs);

/** Detail of the handle's last error (static or handle-owned text). */
DC_API const char *dc_fs_errmsg(const dc_fs *fs);

/** Make every commit so far durable. */
DC_API int dc_fs_sync(dc_fs *fs);

/**
 * Load the newest committed generation from the store, for stores that
 * other clients write too (an object store shared by several writers, see
 * docs/OBJECT_STORE.md). Drops every cached block (blocks of rolled-back
 * work included), then reads the root pointers again; when another writer
 * committed since, the handle continues from that generation. Call it after
 * DC_ERR_CONFLICT, before retrying. DC_ERR_INVALID_ARGUMENT inside a
 * transaction. If the newest generation does not verify, the status says
 * why and the handle takes no more changes: free it.
 */
DC_API int dc_fs_refresh(dc_fs *fs);

DC_API int dc_fs_begin(dc_fs *fs);
DC_API DC_NODISCARD int dc_fs_commit(dc_fs *fs);
DC_API int dc_fs_abort(dc_fs *fs);
/** 1 while a transaction is open, else 0. */
DC_API int dc_fs_in_transaction(const dc_fs *fs);

DC_API int dc_fs_statvfs(dc_fs *fs, dc_statvfs *out);
DC_API int dc_fs_volume_id(const dc_fs *fs, unsigned char *out);

DC_API int dc_fs_stat(dc_fs *fs, const char *path, dc_stat *out);
DC_API int dc_fs_mkdir(dc_fs *fs, const char *path, uint32_t mode);
/** mkdir -p: create missing parents; an existing directory is fine. */
DC_API int dc_fs_makedirs(dc_fs *fs, const char *path, uint32_t mode);
/**
 * Create an empty file. With `exclusive`, an existing path is
 * DC_ERR_ALREADY_EXISTS; without, an existing file is left as it is.
 */
DC_API int dc_fs_create(dc_fs *fs, const char *path, uint32_t mode,
                        int exclusive);
/** Write `len` bytes at `offset`; a gap past the end reads as zeros. */
DC_API int dc_fs_write(dc_fs *fs, const char *path, uint64_t offset,
                       const void *buf, size_t len);
/** Read up to `len` bytes at `offset`; *out_read is 0 at or past the end. */
DC_API int dc_fs_read(dc_fs *fs, const char *path, uint64_t offset, void *buf,
                      size_t len, size_t *out_read);
DC_API int dc_fs_truncate(dc_fs *fs, const char *path, uint64_t size);
/** Remove a file (a directory is DC_ERR_NOT_A_FILE). */
DC_API int dc_fs_remove(dc_fs *fs, const char *path);
/** Remove an empty directory. */
DC_API int dc_fs_rmdir(dc_fs *fs, const char *path);
/**
 * Rename like POSIX rename(2): an existing file target is replaced, an empty
 * directory target is replaced by a directory; moving a directory into its
 * own subtree is DC_ERR_INVALID_ARGUMENT.
 */
DC_API int dc_fs_rename(dc_fs *fs, const char *from, const char *to);
DC_API int dc_fs_set_mtime(dc_fs *fs, const char *path, int64_t mtime_ns);
DC_API int dc_fs_chmod(dc_fs *fs, const char *path, uint32_t mode);

/**
 * Iterate a directory in name order (bytewise). The cursor survives
 * concurrent changes: each step continues after the last name returned.
 */
DC_API int dc_fs_opendir(dc_dir **out, dc_fs *fs, const char *path);
/**
 * The next entry: its name (NUL-terminated, name_cap >= 256) and stat.
 * Returns 1 for an entry, 0 at the end, or a negative error.
 */
DC_API int dc_dir_next(dc_dir *dir, char *name, size_t name_cap, dc_stat *st);
/** NULL is a no-op. */
DC_API void dc_dir_free(dc_dir *dir);

/**
 * Check the whole volume: every reachable block opens and verifies, every
 * directory is consistent, and the allocator matches the tree. DC_OK when
 * clean, else DC_ERR_CORRUPT or DC_ERR_AUTH (details in dc_fs_errmsg and
 * `report`, which may be NULL).
 */
DC_API int dc_fs_fsck(dc_fs *fs, dc_fsck_report *report);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_FS_H */
