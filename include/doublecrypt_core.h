/*
 * doublecrypt_core.h - the C API of doublecrypt-core (the Rust crate this
 * project replaces), implemented on the libdoublecrypt engine.
 *
 * A C or Swift program written against doublecrypt-core's cbindgen header
 * builds unchanged against this one and runs against libdoublecrypt.so: the
 * names, prototypes (int32_t results, uintptr_t lengths, struct FsHandle),
 * FsErrorCode values, constants and the JSON listing shape are the seed's.
 * Volumes are in libdoublecrypt's format, not the seed's on-disk format.
 * New code should use doublecrypt.h; differences from the seed are listed in
 * docs/ABI.md ("doublecrypt-core compatibility").
 *
 * Conventions (as in the seed): int32_t results are 0 (Ok) or a negative
 * FsErrorCode; constructors return NULL on any failure. Paths are
 * '/'-separated, relative or absolute ("docs/readme.md" and
 * "/docs/readme.md" are the same; "" and "/" are the root). Strings are
 * NUL-terminated UTF-8. JSON strings returned by the library are released
 * with fs_free_string. A handle is used by one thread at a time.
 *
 * The include guard is not the seed's DOUBLECRYPT_CORE_H: that name belongs
 * to doublecrypt/core.h, and sharing it would make whichever header is
 * included second vanish.
 */
#ifndef DOUBLECRYPT_CORE_COMPAT_H
#define DOUBLECRYPT_CORE_COMPAT_H

#include <stdint.h>

#include "doublecrypt/export.h"

/* Bytes per block of fs_create, and of fs_create_disk/fs_create_device when
 * block_size is 0. */
#define DEFAULT_BLOCK_SIZE 65536
/* Longest name (one path component) in bytes. */
#define MAX_NAME_LEN 255
/* Reserved blocks: the volume header and the two root pointer slots. */
#define BLOCK_STORAGE_HEADER 0
#define BLOCK_ROOT_POINTER_A 1
#define BLOCK_ROOT_POINTER_B 2
#define FIRST_DATA_BLOCK 3

/* Status codes: the same numbers as DC_OK..DC_ERR_NAME_TOO_LONG. */
enum FsErrorCode
#ifdef __cplusplus
    : int32_t
#endif
{
    Ok = 0,
    NotFound = -1,
    AlreadyExists = -2,
    NoSpace = -3,
    InvalidArgument = -4,
    NotInitialized = -5,
    IoError = -6,
    CryptoError = -7,
    InternalError = -8,
    BufferTooSmall = -9,
    NotAFile = -10,
    NotADirectory = -11,
    DirectoryNotEmpty = -12,
    NameTooLong = -13
};
#ifndef __cplusplus
typedef int32_t FsErrorCode;
#endif

/* A volume over a block store; opaque. */
typedef struct FsHandle FsHandle;

DC_BEGIN_DECLS

/* ---- constructors: NULL on any failure ----------------------------------
 * master_key must be 32 bytes (DC_KDF_MASTER_KEYBYTES); it is copied into
 * locked memory and wiped by fs_destroy. Follow with fs_init_filesystem (new
 * volume) or fs_open (existing volume). */

/* An in-memory store of total_blocks blocks of DEFAULT_BLOCK_SIZE bytes. */
DC_API struct FsHandle *fs_create(uint64_t total_blocks,
                                  const uint8_t *master_key,
                                  uintptr_t master_key_len);

/* An image file. create_new != 0: create it (it must not exist) with
 * total_blocks random-filled blocks; else open it, total_blocks 0 meaning
 * the whole file. block_size 0 means DEFAULT_BLOCK_SIZE. */
DC_API struct FsHandle *fs_create_disk(const char *path, uint64_t total_blocks,
                                       uint32_t block_size, int32_t create_new,
                                       const uint8_t *master_key,
                                       uintptr_t master_key_len);

/* A raw block device (or pre-sized file); total_blocks 0 means all of it.
 * initialize != 0 fills it with random bytes first (slow on large
 * devices). */
DC_API struct FsHandle *
fs_create_device(const char *path, uint64_t total_blocks, uint32_t block_size,
                 int32_t initialize, const uint8_t *master_key,
                 uintptr_t master_key_len);

/* Not available in libdoublecrypt: always NULL. The network block store is
 * part of the Python package. */
DC_API struct FsHandle *
fs_create_network(const char *addr, const char *server_name,
                  const char *ca_cert_path, uint32_t cache_blocks,
                  const uint8_t *auth_token, uintptr_t auth_token_len,
                  const uint8_t *master_key, uintptr_t master_key_len);

/* Make every commit durable (unlike the seed, which dropped unflushed
 * writes), wipe the key and free the handle. NULL is a no-op. */
DC_API void fs_destroy(struct FsHandle *handle);

/* ---- volume --------------------------------------------------------------
 * Every other call gives NotInitialized until one of these succeeds. */

/* Format a new, empty volume (again, if the handle already has one). */
DC_API int32_t fs_init_filesystem(struct FsHandle *handle);
/* Mount the existing volume: CryptoError for a wrong key, NotInitialized
 * when the store holds no volume. */
DC_API int32_t fs_open(struct FsHandle *handle);

/* ---- files and directories: every change is committed when it returns --- */

/* Create an empty file; AlreadyExists if the name is taken. */
DC_API int32_t fs_create_file(struct FsHandle *handle, const char *name);
/* Write data_len bytes at offset (a gap past the end reads as zeros). */
DC_API int32_t fs_write_file(struct FsHandle *handle, const char *name,
                             uint64_t offset, const uint8_t *data,
                             uintptr_t data_len);
/* Read up to len bytes (len is out_buf's capacity) at offset; *out_len is
 * the number read, 0 at or past the end. */
DC_API int32_t fs_read_file(struct FsHandle *handle, const char *name,
                            uint64_t offset, uintptr_t len, uint8_t *out_buf,
                            uintptr_t *out_len);
/* The root directory as a JSON array,
 * [{"name":"a.txt","kind":"File","size":5,"inode_id":3}]: kind "File" or
 * "Directory", size 0 for directories, entries in bytewise name order. On
 * error NULL, with the code in *out_error (out_error may be NULL); on
 * success *out_error is 0. Free the string with fs_free_string. */
DC_API char *fs_list_root(struct FsHandle *handle, int32_t *out_error);
/* The same for the directory at path. */
DC_API char *fs_list_dir(struct FsHandle *handle, const char *path,
                         int32_t *out_error);
/* Create an empty directory; its parent must exist. */
DC_API int32_t fs_create_dir(struct FsHandle *handle, const char *name);
/* Remove a file or an empty directory (DirectoryNotEmpty otherwise). */
DC_API int32_t fs_remove_file(struct FsHandle *handle, const char *name);
/* Rename or move; AlreadyExists if new_name exists. */
DC_API int32_t fs_rename(struct FsHandle *handle, const char *old_name,
                         const char *new_name);
/* Nothing is buffered, so this only checks the handle. */
DC_API int32_t fs_flush(struct FsHandle *handle);
/* Make every commit durable (fsync for files and devices). */
DC_API int32_t fs_sync(struct FsHandle *handle);
/* Size in bytes (0 for directories), kind (0 file, 1 directory), inode id. */
DC_API int32_t fs_stat(struct FsHandle *handle, const char *name,
                       uint64_t *out_size, int32_t *out_kind,
                       uint64_t *out_inode_id);
/* The seed rewrote free blocks with random bytes. Here it only syncs: new
 * images start random and freed blocks keep ciphertext (see docs/ABI.md). */
DC_API int32_t fs_scrub_free_blocks(struct FsHandle *handle);

/* ---- utilities ---------------------------------------------------------- */

/* BLAKE3 is not available: InvalidArgument for NULL pointers, otherwise
 * InternalError and `out` is left alone. */
DC_API int32_t fs_blake3(const uint8_t *data, uintptr_t data_len, uint8_t *out);

/* Free a string returned by fs_list_root/fs_list_dir. NULL is a no-op. */
DC_API void fs_free_string(char *s);

DC_END_DECLS

#endif /* DOUBLECRYPT_CORE_COMPAT_H */
