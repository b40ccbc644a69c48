/*
 * dc_store_file.c - image files and raw block devices (pread/pwrite).
 * Runs of consecutive ids in a batch become one system call each.
 */
#define _GNU_SOURCE /* O_CLOEXEC, fdatasync, pread/pwrite */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

#define FILL_BYTES (4u << 20) /* random fill of new images, per write */

typedef struct file_store {
    int fd;
    uint32_t block_size;
} file_store;

static int full_pread(int fd, unsigned char *buf, size_t len, off_t at) {
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dc__errno_status(errno);
        if (n == 0)
            return DC_ERR_IO; /* past the end: the image shrank */
        buf += n;
        len -= (size_t)n;
        at += n;
    }
    return DC_OK;
}

static int full_pwrite(int fd, const unsigned char *buf, size_t len, off_t at) {
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dc__errno_status(errno);
        if (n == 0)
            return DC_ERR_NO_SPACE;
        buf += n;
        len -= (size_t)n;
        at += n;
    }
    return DC_OK;
}

/* Length of the run of consecutive ids starting at i. */
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
                            (off_t)(ids[i] * f->block_size));
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
                             (off_t)(ids[i] * f->block_size));
        if (rc != DC_OK)
            return rc;
        i += n;
    }
    return DC_OK;
}

static int file_sync(void *impl) {
    file_store *f = impl;
    while (fdatasync(f->fd) != 0) {
        if (errno != EINTR)
            return dc__errno_status(errno);
    }
    return DC_OK;
}

static void file_close(void *impl) {
    file_store *f = impl;
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f);
}

static const dc__store_ops file_ops = {file_read, file_write, file_sync,
                                       file_close};

static int wrap_fd(dc_store **out, int fd, uint32_t block_size,
                   uint64_t total_blocks, int read_only) {
    file_store *f = calloc(1, sizeof *f);
    if (f == NULL) {
        close(fd);
        return DC_ERR_NO_MEMORY;
    }
    f->fd = fd;
    f->block_size = block_size;
    return dc__store_wrap(out, &file_ops, f, block_size, total_blocks,
                          read_only);
}

static int fill_random(int fd, uint32_t block_size, uint64_t total,
                       dc_progress_fn progress, void *payload) {
    size_t per_write = FILL_BYTES - FILL_BYTES % block_size;
    if (per_write == 0)
        per_write = block_size;
    unsigned char *buf = dc__aligned_alloc(per_write);
    if (buf == NULL)
        return DC_ERR_NO_MEMORY;
    uint64_t bytes = total * block_size, done = 0;
    int rc = DC_OK;
    while (rc == DC_OK && done < bytes) {
        size_t n =
            bytes - done < per_write ? (size_t)(bytes - done) : per_write;
        dc__random_fill(buf, n);
        rc = full_pwrite(fd, buf, n, (off_t)done);
        done += n;
        if (rc == DC_OK && progress != NULL &&
            progress(payload, done / block_size, total) != 0)
            rc = DC_ERR_CANCELLED;
    }
    dc__aligned_free(buf);
    if (rc == DC_OK)
        while (fsync(fd) != 0)
            if (errno != EINTR) {
                rc = dc__errno_status(errno);
                break;
            }
    return rc;
}

int dc_store_create_file(dc_store **out, const char *path, uint32_t block_size,
                         uint64_t total_blocks, dc_progress_fn progress,
                         void *payload) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (path == NULL || path[0] == 0 ||
        !dc__valid_geometry(block_size, total_blocks) ||
        total_blocks > (uint64_t)INT64_MAX / block_size)
        return DC_ERR_INVALID_ARGUMENT;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return dc__errno_status(errno);
    int rc = fill_random(fd, block_size, total_blocks, progress, payload);
    if (rc != DC_OK) {
        close(fd);
        unlink(path); /* never leave a partial image behind */
        return rc;
    }
    return wrap_fd(out, fd, block_size, total_blocks, 0);
}

static int open_sized(dc_store **out, const char *path, uint32_t block_size,
                      int read_only, int device) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (path == NULL ||
        !dc__valid_geometry(block_size, DC_FIRST_DATA_BLOCK + 1))
        return DC_ERR_INVALID_ARGUMENT;
    int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return dc__errno_status(errno);
    off_t size;
    if (device) {
        size = lseek(fd, 0, SEEK_END); /* stat says 0 for block devices */
    } else {
        struct stat st;
        size = fstat(fd, &st) == 0 ? st.st_size : -1;
        if (size >= 0 && !S_ISREG(st.st_mode)) {
            close(fd);
            return DC_ERR_INVALID_ARGUMENT;
        }
    }
    if (size < 0) {
        int rc = dc__errno_status(errno);
        close(fd);
        return rc;
    }
    uint64_t total = (uint64_t)size / block_size;
    if ((!device && (uint64_t)size % block_size != 0) ||
        total <= DC_FIRST_DATA_BLOCK) {
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
