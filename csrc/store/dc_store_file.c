/*
 * dc_store_file.c - image files and raw block devices.
 *
 * Block i lives at byte offset i * block_size. A batch is split into runs of
 * consecutive ids (ids[k + 1] == ids[k] + 1); since the caller's buffer holds
 * the blocks of a batch back to back, each run is one contiguous region of
 * both the buffer and the file and costs exactly one pread/pwrite (plus more
 * only when the kernel returns short). A sequential batch is one system
 * call. New images are filled with ChaCha20 keystream in 4 MiB writes.
 */
#define _GNU_SOURCE /* O_CLOEXEC, pread/pwrite, fdatasync, fallocate */
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

#define FILL_BYTES ((size_t)4 << 20) /* random fill per write on create */
/* Largest byte offset we hand to the kernel (off_t is signed). */
#define MAX_OFFSET                                                             \
    (sizeof(off_t) >= sizeof(int64_t) ? (uint64_t)INT64_MAX                    \
                                      : (uint64_t)INT32_MAX)

typedef struct file_store {
    int fd;
    uint32_t block_size;
} file_store;

/* errno after a failed read, write or sync. */
static int io_status(int err) {
    switch (err) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EFBIG:
        return DC_ERR_NO_SPACE;
    case ENOMEM:
        return DC_ERR_NO_MEMORY;
    case EROFS:
        return DC_ERR_READ_ONLY;
    default:
        return DC_ERR_IO;
    }
}

/* errno after a failed open(); `writing` when write access was asked for. */
static int open_status(int err, int writing) {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return DC_ERR_NOT_FOUND;
    case EEXIST:
        return DC_ERR_ALREADY_EXISTS;
    case EISDIR:
        return DC_ERR_NOT_A_FILE;
    case ENAMETOOLONG:
        return DC_ERR_NAME_TOO_LONG;
    case EACCES:
    case EPERM:
    case EROFS:
        return writing ? DC_ERR_READ_ONLY : DC_ERR_IO;
    default:
        return io_status(err);
    }
}

static int full_pread(int fd, unsigned char *buf, size_t len, uint64_t at) {
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_status(errno);
        }
        if (n == 0)
            return DC_ERR_IO; /* past the end: the image shrank */
        buf += n;
        len -= (size_t)n;
        at += (uint64_t)n;
    }
    return DC_OK;
}

static int full_pwrite(int fd, const unsigned char *buf, size_t len,
                       uint64_t at) {
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_status(errno);
        }
        if (n == 0)
            return DC_ERR_NO_SPACE; /* no progress: treat as full */
        buf += n;
        len -= (size_t)n;
        at += (uint64_t)n;
    }
    return DC_OK;
}

/* Length of the run of consecutive ids starting at ids[i]. */
static size_t run_length(const uint64_t *ids, size_t i, size_t count) {
    size_t n = 1;
    while (i + n < count && ids[i + n] == ids[i] + n)
        n++;
    return n;
}

static int file_read(void *impl, const uint64_t *ids, size_t count,
                     unsigned char *buf) {
    file_store *f = impl;
    for (size_t i = 0; i < count;) {
        size_t n = run_length(ids, i, count);
        int rc = full_pread(f->fd, buf + i * f->block_size, n * f->block_size,
                            ids[i] * f->block_size);
        if (rc != DC_OK)
            return rc;
        i += n;
    }
    return DC_OK;
}

static int file_write(void *impl, const uint64_t *ids, size_t count,
                      const unsigned char *buf) {
    file_store *f = impl;
    for (size_t i = 0; i < count;) {
        size_t n = run_length(ids, i, count);
        int rc = full_pwrite(f->fd, buf + i * f->block_size, n * f->block_size,
                             ids[i] * f->block_size);
        if (rc != DC_OK)
            return rc;
        i += n;
    }
    return DC_OK;
}

static int sync_fd(int fd) {
#if defined(__APPLE__)
    while (fsync(fd) != 0)
#else
    while (fdatasync(fd) != 0)
#endif
        if (errno != EINTR)
            return io_status(errno);
    return DC_OK;
}

static int file_sync(void *impl) { return sync_fd(((file_store *)impl)->fd); }

static void file_close(void *impl) {
    file_store *f = impl;
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f);
}

static const dc__store_ops file_ops = {file_read, file_write, file_sync,
                                       file_close, NULL};

/* Wrap an open descriptor; closes it on failure. */
static int wrap_fd(dc_store **out, int fd, uint32_t block_size,
                   uint64_t total_blocks, int read_only) {
    file_store *f = calloc(1, sizeof *f);
    if (f == NULL) {
        close(fd);
        return DC_ERR_NO_MEMORY;
    }
    f->fd = fd;
    f->block_size = block_size;
    int rc =
        dc__store_new(out, &file_ops, f, block_size, total_blocks, read_only);
    if (rc != DC_OK)
        file_close(f);
    return rc;
}

/* Reserve the whole image up front so a full disk fails at once rather
 * than after gigabytes of writing. Only "no space" counts; a file system
 * that cannot preallocate is simply written. */
static int reserve(int fd, uint64_t bytes) {
#if defined(__linux__)
    int rc;
    do
        rc = fallocate(fd, 0, 0, (off_t)bytes);
    while (rc != 0 && errno == EINTR);
    if (rc != 0 && (errno == ENOSPC || errno == EFBIG
#ifdef EDQUOT
                    || errno == EDQUOT
#endif
                    ))
        return DC_ERR_NO_SPACE;
#else
    (void)fd;
    (void)bytes;
#endif
    return DC_OK;
}

static int fill_random(int fd, uint32_t block_size, uint64_t total,
                       dc_progress_fn progress, void *payload) {
    uint64_t bytes = total * block_size;
    int rc = reserve(fd, bytes);
    if (rc != DC_OK)
        return rc;
    /* Whole blocks per write, so progress counts whole blocks. */
    size_t chunk = FILL_BYTES - FILL_BYTES % block_size;
    if (chunk == 0)
        chunk = block_size;
    if ((uint64_t)chunk > bytes)
        chunk = (size_t)bytes;
    unsigned char *buf = dc__aligned_alloc(chunk);
    if (buf == NULL)
        return DC_ERR_NO_MEMORY;
    for (uint64_t done = 0; rc == DC_OK && done < bytes;) {
        size_t n = bytes - done < chunk ? (size_t)(bytes - done) : chunk;
        dc__random_fill(buf, n);
        rc = full_pwrite(fd, buf, n, done);
        done += n;
        if (rc == DC_OK && progress != NULL &&
            progress(payload, done / block_size, total) != 0)
            rc = DC_ERR_CANCELLED;
    }
    dc__aligned_free(buf);
    if (rc == DC_OK)
        rc = sync_fd(fd);
    return rc;
}

/* Make the new directory entry durable too (best effort: some file systems
 * cannot fsync a directory, and the image itself is already synced). */
static void sync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (dir == NULL)
        return;
    if (slash == NULL)
        dir[0] = '.';
    else
        memcpy(dir, path, len);
    dir[len] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd >= 0) {
        while (fsync(fd) != 0 && errno == EINTR)
            ;
        close(fd);
    }
}

int dc_store_create_file(dc_store **out, const char *path, uint32_t block_size,
                         uint64_t total_blocks, dc_progress_fn progress,
                         void *payload) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (path == NULL || path[0] == '\0' ||
        !dc__store_valid_geometry(block_size, total_blocks) ||
        total_blocks > MAX_OFFSET / block_size)
        return DC_ERR_INVALID_ARGUMENT;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return open_status(errno, 1);
    int rc = fill_random(fd, block_size, total_blocks, progress, payload);
    if (rc != DC_OK) {
        close(fd);
        unlink(path); /* never leave a partial image behind */
        return rc;
    }
    sync_parent(path);
    return wrap_fd(out, fd, block_size, total_blocks, 0);
}

/* Open an existing image (device == 0) or device (device != 0). */
static int open_sized(dc_store **out, const char *path, uint32_t block_size,
                      int read_only, int device) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (path == NULL || path[0] == '\0' ||
        !dc__store_valid_geometry(block_size, DC__STORE_MIN_BLOCKS))
        return DC_ERR_INVALID_ARGUMENT;
    int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return open_status(errno, !read_only);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = io_status(errno);
        close(fd);
        return rc;
    }
    /* An image is a regular file; a "device" is a block or character
     * device or any pre-sized regular file. */
    if (!S_ISREG(st.st_mode) &&
        (!device || !(S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)))) {
        close(fd);
        return S_ISDIR(st.st_mode) ? DC_ERR_NOT_A_FILE
                                   : DC_ERR_INVALID_ARGUMENT;
    }
    /* stat reports 0 for block devices; seeking to the end does not. */
    off_t size = device ? lseek(fd, 0, SEEK_END) : st.st_size;
    if (size < 0) {
        int rc = io_status(errno);
        close(fd);
        return rc;
    }
    uint64_t total = (uint64_t)size / block_size;
    if ((!device && (uint64_t)size % block_size != 0) ||
        total < DC__STORE_MIN_BLOCKS) {
        close(fd);
        return DC_ERR_CORRUPT;
    }
    return wrap_fd(out, fd, block_size, total, read_only);
}

int dc_store_open_file(dc_store **out, const char *path, uint32_t block_size,
                       int read_only) {
    return open_sized(out, path, block_size, read_only, 0);
}

int dc_store_open_device(dc_store **out, const char *path, uint32_t block_size,
                         int read_only) {
    return open_sized(out, path, block_size, read_only, 1);
}
