/*
 * doublecrypt-fuse - mount a doublecrypt image through libfuse 3, in C.
 *
 *   doublecrypt-fuse --key-fd N [--read-only] [--commit-interval S] [-f] [-d]
 *                    IMAGE MOUNTPOINT
 *
 * The same file system as `doublecrypt mount` (files and directories only,
 * owners not kept, symbolic and hard links refused with ENOTSUP), without
 * the Python interpreter on every request: each FUSE operation is one or two
 * dc_fs_* calls. The 32-byte master key is read from file descriptor N
 * (normally a pipe from `doublecrypt mount --engine c`), never from argv,
 * and wiped once the volume is mounted.
 *
 * Without -f the program forks first: the child opens and mounts the volume,
 * then detaches (new session, standard streams on /dev/null) and tells the
 * waiting parent, which says so (with the child's process id) and exits 0;
 * an error before that is printed by the parent, which exits with the code
 * `doublecrypt` gives it (3 not found, 5 authentication, 6 corrupt, 8 I/O,
 * 1 anything else, 2 usage).
 *
 * Group commit: changes from every FUSE thread collect in one open engine
 * transaction, committed and synced (made durable) on fsync or fsyncdir, at
 * unmount, S seconds after its first change (--commit-interval, default 1;
 * 0 commits every operation on its own, as local file systems never do), and
 * once it holds GROUP_MAX_OPS operations or GROUP_MAX_BYTES written. A crash
 * loses at most the open group, never part of an operation. A failed commit
 * is logged on stderr and returned (EIO, ENOSPC) by the next fsync; the
 * volume stays at its last durable commit.
 *
 * Unmounting (fusermount3 -u, or SIGINT/SIGTERM/SIGHUP) commits, syncs and
 * frees the volume; the exit status is 0 when that succeeded.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <doublecrypt/error.h>
#include <doublecrypt/fs.h>
#include <doublecrypt/store.h>

#define KEY_BYTES 32
/* st_blksize: cp and tar size their buffers by it (as the Python mount). */
#define IO_SIZE_HINT (1 << 20)
#define MAX_WRITE (1u << 20)
#define MAX_READAHEAD (1u << 20)
#define ENTRY_TIMEOUT 30.0
#define ATTR_TIMEOUT 30.0
#define NEGATIVE_TIMEOUT 5.0

/* Exit codes of the `doublecrypt` command line (cli/errors.py). */
#define EXIT_FAILURE_ 1
#define EXIT_USAGE 2
#define EXIT_NOT_FOUND 3
#define EXIT_AUTH 5
#define EXIT_CORRUPT 6
#define EXIT_IO 8

/* <linux/fs.h> flags of renameat2(2) */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static dc_fs *g_fs;
static uint32_t g_block_size;
static int g_read_only;
static uid_t g_uid;
static gid_t g_gid;

/* ---- group commit -------------------------------------------------------- */

/* The engine rolls back (and poisons) a whole open transaction when one of
 * its calls fails after it started changing things (dc__fs_end_op): its
 * checks (ENOENT, EEXIST, ENOTEMPTY...) come first and never do, but running
 * out of space does. So a group is only extended while the volume has room
 * to spare (the operation's data, GROUP_META_PER_OP metadata blocks for each
 * operation in the group, sealed at commit, and GROUP_SLACK); below that the
 * group is committed and the operation runs on its own, as with
 * --commit-interval 0, where a failure loses nothing else. An I/O error or
 * damage met inside a group still loses the group (like a crash): logged,
 * and reported by the next fsync. The engine has no limit of its own on a
 * transaction, only memory (dirty nodes) and space (blocks a transaction
 * replaces are freed after its commit): hence the caps. */
#define GROUP_MAX_OPS 4096u
#define GROUP_MAX_BYTES (64ull << 20)
#define GROUP_META_PER_OP 4u
#define GROUP_SLACK 32u
#define DEFAULT_COMMIT_INTERVAL 1.0
#define MAX_COMMIT_INTERVAL 86400.0

/* Held by every mutating operation and by commits: the group is the
 * handle's (every thread's calls join it), so beginning, committing and
 * extending it must not interleave. It also keeps the check of a
 * RENAME_NOREPLACE and its rename free of names created in between. */
static pthread_mutex_t g_txn = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake; /* the committer: stop, or a group opened */
static double g_interval = DEFAULT_COMMIT_INTERVAL;
static int g_group_open;          /* under g_txn */
static unsigned g_group_ops;      /* under g_txn */
static uint64_t g_group_bytes;    /* under g_txn */
static struct timespec g_group_t; /* when it opened (CLOCK_MONOTONIC) */
static int g_pending_error;       /* negative errno for the next fsync */
static int g_stop;                /* under g_txn: the committer exits */

/* ---- errors -------------------------------------------------------------- */

/* The negative errno FUSE answers for a negative DC_ERR_* (as the Python
 * mount's errno_map.py: authentication and corruption fail like a bad
 * sector, EIO). */
static int dc_errno(int status) {
    switch (status) {
    case DC_OK:
        return 0;
    case DC_ERR_NOT_FOUND:
        return -ENOENT;
    case DC_ERR_ALREADY_EXISTS:
        return -EEXIST;
    case DC_ERR_NO_SPACE:
        return -ENOSPC;
    case DC_ERR_INVALID_ARGUMENT:
    case DC_ERR_BUFFER_TOO_SMALL:
        return -EINVAL;
    case DC_ERR_NOT_A_FILE:
        return -EISDIR;
    case DC_ERR_NOT_A_DIRECTORY:
        return -ENOTDIR;
    case DC_ERR_DIRECTORY_NOT_EMPTY:
        return -ENOTEMPTY;
    case DC_ERR_NAME_TOO_LONG:
        return -ENAMETOOLONG;
    case DC_ERR_NO_MEMORY:
        return -ENOMEM;
    case DC_ERR_UNSUPPORTED:
        return -EOPNOTSUPP;
    case DC_ERR_CANCELLED:
        return -EINTR;
    case DC_ERR_READ_ONLY:
        return -EROFS;
    default: /* AUTH, CORRUPT, IO, INTERNAL, NOT_INITIALIZED, unknown */
        return -EIO;
    }
}

static int exit_code_for(int status) {
    switch (status) {
    case DC_ERR_NOT_FOUND:
        return EXIT_NOT_FOUND;
    case DC_ERR_AUTH:
        return EXIT_AUTH;
    case DC_ERR_CORRUPT:
    case DC_ERR_UNSUPPORTED:
        return EXIT_CORRUPT;
    case DC_ERR_IO:
        return EXIT_IO;
    default:
        return EXIT_FAILURE_;
    }
}

/* ---- group commit (under g_txn) ------------------------------------------ */

static void log_error(const char *what, int status) {
    fprintf(stderr, "doublecrypt-fuse: %s: %s (%s)\n", what,
            dc_strerror(status), dc_fs_errmsg(g_fs));
}

/* Commit the open group and make it durable; a failure is logged and kept
 * for the next fsync. Returns the engine status. */
static int group_commit(void) {
    if (!g_group_open)
        return DC_OK;
    g_group_open = 0;
    g_group_ops = 0;
    g_group_bytes = 0;
    int rc = dc_fs_commit(g_fs);
    if (rc == DC_OK)
        rc = dc_fs_sync(g_fs);
    if (rc != DC_OK) {
        log_error("commit failed, changes since the last durable commit lost",
                  rc);
        if (g_pending_error == 0)
            g_pending_error = dc_errno(rc);
    }
    return rc;
}

/* Would `bytes` more written, and the group's metadata, still fit? */
static int group_has_room(uint64_t bytes) {
    dc_statvfs vs;
    if (dc_fs_statvfs(g_fs, &vs) != DC_OK || vs.chunk_size == 0)
        return 0;
    uint64_t need = bytes / vs.chunk_size + 2 +
                    (uint64_t)(g_group_ops + 1) * GROUP_META_PER_OP +
                    GROUP_SLACK;
    return vs.free_blocks >= need;
}

/* Before a mutating call that writes `bytes`: take g_txn, and open (or keep)
 * the group when there is room; else the call commits on its own. */
static void op_enter(uint64_t bytes) {
    pthread_mutex_lock(&g_txn);
    if (g_interval <= 0 || g_read_only)
        return;
    if (!group_has_room(bytes)) {
        if (!g_group_open)
            return;
        group_commit(); /* also frees the blocks the group replaced */
        if (!group_has_room(bytes))
            return;
    }
    if (g_group_open)
        return;
    if (dc_fs_begin(g_fs) != DC_OK)
        return; /* e.g. an earlier root pointer write failed: the call fails */
    g_group_open = 1;
    clock_gettime(CLOCK_MONOTONIC, &g_group_t);
    pthread_cond_signal(&g_wake);
}

/* After it: count it in the group and commit a full group; a failure
 * inside the group commits at once (whatever the engine kept of the group
 * becomes durable; a group it rolled back is reported). Releases g_txn and
 * returns the negative errno for FUSE. */
static int op_leave(int rc, uint64_t bytes) {
    if (g_group_open) {
        g_group_ops++;
        g_group_bytes += bytes;
        if (rc != DC_OK || g_group_ops >= GROUP_MAX_OPS ||
            g_group_bytes >= GROUP_MAX_BYTES)
            group_commit();
    }
    pthread_mutex_unlock(&g_txn);
    return dc_errno(rc);
}

static void timespec_add(struct timespec *t, double seconds) {
    time_t whole = (time_t)seconds;
    t->tv_sec += whole;
    t->tv_nsec += (long)((seconds - (double)whole) * 1e9);
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec += 1;
        t->tv_nsec -= 1000000000;
    }
}

static int reached(const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* The committer thread: a group is committed g_interval seconds after it
 * opened. */
static void *committer(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_txn);
    while (!g_stop) {
        if (!g_group_open) {
            pthread_cond_wait(&g_wake, &g_txn);
            continue;
        }
        struct timespec deadline = g_group_t;
        timespec_add(&deadline, g_interval);
        if (reached(&deadline))
            group_commit();
        else
            pthread_cond_timedwait(&g_wake, &g_txn, &deadline);
    }
    pthread_mutex_unlock(&g_txn);
    return NULL;
}

/* ---- attributes ---------------------------------------------------------- */

static void fill_stat(const dc_stat *st, struct stat *out) {
    memset(out, 0, sizeof(*out));
    out->st_mode =
        (mode_t)((st->type == DC_TYPE_DIRECTORY ? S_IFDIR : S_IFREG) |
                 (st->mode & 07777));
    out->st_ino = (ino_t)st->inode;
    /* 1 for directories too: "link count unknown" (find does not guess). */
    out->st_nlink = 1;
    out->st_uid = g_uid;
    out->st_gid = g_gid;
    out->st_size = (off_t)st->size;
    out->st_blocks = (blkcnt_t)(st->blocks * g_block_size / 512);
    out->st_blksize = IO_SIZE_HINT;
    out->st_mtim.tv_sec = (time_t)(st->mtime_ns / 1000000000);
    out->st_mtim.tv_nsec = (long)(st->mtime_ns % 1000000000);
    if (out->st_mtim.tv_nsec < 0) {
        out->st_mtim.tv_sec -= 1;
        out->st_mtim.tv_nsec += 1000000000;
    }
    out->st_atim = out->st_mtim; /* no access times are kept */
    out->st_ctim.tv_sec = (time_t)(st->ctime_ns / 1000000000);
    out->st_ctim.tv_nsec = (long)(st->ctime_ns % 1000000000);
    if (out->st_ctim.tv_nsec < 0) {
        out->st_ctim.tv_sec -= 1;
        out->st_ctim.tv_nsec += 1000000000;
    }
}

static int op_getattr(const char *path, struct stat *out,
                      struct fuse_file_info *fi) {
    (void)fi;
    dc_stat st;
    int rc = dc_fs_stat(g_fs, path, &st);
    if (rc != DC_OK)
        return dc_errno(rc);
    fill_stat(&st, out);
    return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
    (void)offset;
    (void)fi;
    enum fuse_fill_dir_flags fill = (flags & FUSE_READDIR_PLUS)
                                        ? FUSE_FILL_DIR_PLUS
                                        : (enum fuse_fill_dir_flags)0;
    dc_stat st;
    struct stat sb;
    int rc = dc_fs_stat(g_fs, path, &st);
    if (rc != DC_OK)
        return dc_errno(rc);
    if (st.type != DC_TYPE_DIRECTORY)
        return -ENOTDIR;
    fill_stat(&st, &sb);
    /* "." and ".." carry no attributes to cache: readdir(3) only needs an
     * inode number, and ".." may be outside what this call looked at. */
    struct stat dot;
    memset(&dot, 0, sizeof(dot));
    dot.st_mode = S_IFDIR;
    dot.st_ino = sb.st_ino;
    if (filler(buf, ".", &dot, 0, (enum fuse_fill_dir_flags)0))
        return 0;
    dot.st_ino = 1;
    if (filler(buf, "..", &dot, 0, (enum fuse_fill_dir_flags)0))
        return 0;
    dc_dir *dir = NULL;
    rc = dc_fs_opendir(&dir, g_fs, path);
    if (rc != DC_OK)
        return dc_errno(rc);
    char name[DC_MAX_NAME_BYTES + 1];
    for (;;) {
        rc = dc_dir_next(dir, name, sizeof(name), &st);
        if (rc <= 0)
            break;
        fill_stat(&st, &sb);
        if (filler(buf, name, &sb, 0, fill))
            break;
    }
    dc_dir_free(dir);
    return rc < 0 ? dc_errno(rc) : 0;
}

static int op_statfs(const char *path, struct statvfs *out) {
    (void)path;
    dc_statvfs vs;
    int rc = dc_fs_statvfs(g_fs, &vs);
    if (rc != DC_OK)
        return dc_errno(rc);
    memset(out, 0, sizeof(*out));
    out->f_bsize = vs.block_size;
    out->f_frsize = vs.block_size;
    out->f_blocks = (fsblkcnt_t)vs.total_blocks;
    out->f_bfree = (fsblkcnt_t)vs.free_blocks;
    out->f_bavail = (fsblkcnt_t)vs.free_blocks;
    /* Every file or directory needs at least one free block. */
    out->f_files = (fsfilcnt_t)(vs.files + vs.directories + vs.free_blocks);
    out->f_ffree = (fsfilcnt_t)vs.free_blocks;
    out->f_favail = (fsfilcnt_t)vs.free_blocks;
    out->f_namemax = vs.max_name;
    return 0;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
    (void)fi;
    op_enter(0);
    return op_leave(dc_fs_chmod(g_fs, path, (uint32_t)(mode & 07777)), 0);
}

/* Accepted and ignored: the format keeps no owners (so cp -a works as root);
 * a missing path is still ENOENT. */
static int op_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi) {
    (void)uid;
    (void)gid;
    (void)fi;
    dc_stat st;
    return dc_errno(dc_fs_stat(g_fs, path, &st));
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int op_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi) {
    (void)fi;
    int64_t mtime;
    if (tv == NULL || tv[1].tv_nsec == UTIME_NOW)
        mtime = now_ns();
    else if (tv[1].tv_nsec == UTIME_OMIT)
        return 0; /* only the access time, which is not kept */
    else
        mtime = (int64_t)tv[1].tv_sec * 1000000000 + tv[1].tv_nsec;
    op_enter(0);
    return op_leave(dc_fs_set_mtime(g_fs, path, mtime), 0);
}

/* ---- names --------------------------------------------------------------- */

static int op_mkdir(const char *path, mode_t mode) {
    op_enter(0);
    return op_leave(dc_fs_mkdir(g_fs, path, (uint32_t)(mode & 07777)), 0);
}

static int op_rmdir(const char *path) {
    op_enter(0);
    return op_leave(dc_fs_rmdir(g_fs, path), 0);
}

static int op_unlink(const char *path) {
    op_enter(0);
    return op_leave(dc_fs_remove(g_fs, path), 0);
}

static int op_rename(const char *from, const char *to, unsigned int flags) {
    if (flags & ~(unsigned int)RENAME_NOREPLACE)
        return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
    op_enter(0);
    int rc = DC_OK;
    if (flags & RENAME_NOREPLACE) {
        dc_stat st;
        rc = dc_fs_stat(g_fs, to, &st);
        if (rc == DC_OK)
            rc = DC_ERR_ALREADY_EXISTS;
        else if (rc == DC_ERR_NOT_FOUND)
            rc = DC_OK;
    }
    if (rc == DC_OK)
        rc = dc_fs_rename(g_fs, from, to);
    else if (rc == DC_ERR_ALREADY_EXISTS) {
        pthread_mutex_unlock(&g_txn); /* a check, not a failed change */
        return dc_errno(rc);
    }
    return op_leave(rc, 0);
}

static int op_symlink(const char *target, const char *path) {
    (void)target;
    (void)path;
    return -ENOTSUP;
}

static int op_link(const char *from, const char *to) {
    (void)from;
    (void)to;
    return -ENOTSUP;
}

static int create_file(const char *path, mode_t mode, int exclusive) {
    op_enter(0);
    return op_leave(
        dc_fs_create(g_fs, path, (uint32_t)(mode & 07777), exclusive), 0);
}

static int op_mknod(const char *path, mode_t mode, dev_t dev) {
    (void)dev;
    if (!S_ISREG(mode))
        return -ENOTSUP; /* only files and directories */
    return create_file(path, mode, 1);
}

/* ---- contents ------------------------------------------------------------ */

/* Without O_EXCL an existing file is opened as it is (its mode unchanged, as
 * POSIX says for O_CREAT); an existing directory is EISDIR. */
static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    return create_file(path, mode, (fi->flags & O_EXCL) != 0);
}

static int op_open(const char *path, struct fuse_file_info *fi) {
    if ((fi->flags & O_ACCMODE) != O_RDONLY && g_read_only)
        return -EROFS;
    dc_stat st;
    int rc = dc_fs_stat(g_fs, path, &st);
    if (rc != DC_OK)
        return dc_errno(rc);
    if (st.type != DC_TYPE_FILE)
        return -EISDIR;
    return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t offset,
                   struct fuse_file_info *fi) {
    (void)fi;
    if (offset < 0)
        return -EINVAL;
    if (size > INT_MAX)
        size = INT_MAX;
    size_t total = 0;
    while (total < size) {
        size_t got = 0;
        int rc = dc_fs_read(g_fs, path, (uint64_t)offset + total, buf + total,
                            size - total, &got);
        if (rc != DC_OK)
            return total ? (int)total : dc_errno(rc);
        if (got == 0)
            break;
        total += got;
    }
    return (int)total;
}

static int op_write(const char *path, const char *buf, size_t size,
                    off_t offset, struct fuse_file_info *fi) {
    (void)fi;
    if (offset < 0)
        return -EINVAL;
    if (size > INT_MAX)
        size = INT_MAX;
    op_enter(size);
    int rc =
        op_leave(dc_fs_write(g_fs, path, (uint64_t)offset, buf, size), size);
    return rc == 0 ? (int)size : rc;
}

static int op_truncate(const char *path, off_t size,
                       struct fuse_file_info *fi) {
    (void)fi;
    if (size < 0)
        return -EINVAL;
    op_enter(0);
    return op_leave(dc_fs_truncate(g_fs, path, (uint64_t)size), 0);
}

/* close(2): every write already reached the engine, nothing to report. */
static int op_flush(const char *path, struct fuse_file_info *fi) {
    (void)path;
    (void)fi;
    return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path;
    (void)datasync;
    (void)fi;
    pthread_mutex_lock(&g_txn);
    int rc = group_commit();
    if (rc == DC_OK)
        rc = dc_fs_sync(g_fs); /* no group: the last commit's root pointer */
    int err = rc == DC_OK ? 0 : dc_errno(rc);
    if (g_pending_error != 0) {
        if (err == 0)
            err = g_pending_error; /* a commit failed since the last fsync */
        g_pending_error = 0;
    }
    pthread_mutex_unlock(&g_txn);
    return err;
}

/* The kernel starts a FUSE mount at 128 KiB of read-ahead whatever
 * max_readahead says; its sysfs knob (root only) lifts that, and 1 MiB
 * requests read faster (as the Python mount does). Not in init: the stat of
 * the mount waits for init's answer. */
static const char *g_mountpoint;

static void *set_read_ahead(void *arg) {
    (void)arg;
    struct stat sb;
    if (stat(g_mountpoint, &sb) != 0)
        return NULL;
    char knob[96];
    snprintf(knob, sizeof(knob), "/sys/class/bdi/%u:%u/read_ahead_kb",
             major(sb.st_dev), minor(sb.st_dev));
    int fd = open(knob, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        char value[16];
        int n = snprintf(value, sizeof(value), "%u\n", MAX_READAHEAD >> 10);
        if (write(fd, value, (size_t)n) < 0) {
            /* not root, or no sysfs: the kernel's default stays */
        }
        close(fd);
    }
    return NULL;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    conn->max_write = MAX_WRITE;
    if (conn->max_readahead > MAX_READAHEAD)
        conn->max_readahead = MAX_READAHEAD;
    cfg->use_ino = 1; /* the volume's inode numbers, not libfuse's */
    cfg->entry_timeout = ENTRY_TIMEOUT;
    cfg->attr_timeout = ATTR_TIMEOUT;
    cfg->negative_timeout = NEGATIVE_TIMEOUT;
    /* The mount is the only writer of the image: pages stay valid. */
    cfg->kernel_cache = 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, set_read_ahead, NULL) == 0)
        pthread_detach(thread);
    return NULL;
}

static const struct fuse_operations dc_ops = {
    .getattr = op_getattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .truncate = op_truncate,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .statfs = op_statfs,
    .flush = op_flush,
    .fsync = op_fsync,
    .readdir = op_readdir,
    .fsyncdir = op_fsync,
    .init = op_init,
    .create = op_create,
    .utimens = op_utimens,
};

/* ---- start-up ------------------------------------------------------------ */

/* Where start-up errors go: stderr, or the pipe to the waiting parent
 * ("error CODE message\n"; "ready\n" once mounted). */
static int g_report_fd = -1;

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

__attribute__((format(printf, 2, 3))) static int fail(int code, const char *fmt,
                                                      ...) {
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (g_report_fd >= 0) {
        char line[1100];
        int n = snprintf(line, sizeof(line), "error %d %s\n", code, message);
        if (n > 0)
            write_all(g_report_fd, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    } else {
        fprintf(stderr, "doublecrypt-fuse: %s\n", message);
    }
    return code;
}

static int read_key(int fd, unsigned char key[KEY_BYTES]) {
    size_t got = 0;
    while (got < KEY_BYTES) {
        ssize_t n = read(fd, key + got, KEY_BYTES - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    unsigned char extra;
    ssize_t n;
    do
        n = read(fd, &extra, 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    return n == 0 ? 0 : -1; /* exactly 32 bytes, then end of file */
}

static int probe_block_size(const char *image, uint32_t *block_size) {
    unsigned char header[DC_HEADER_PROBE_BYTES];
    int fd = open(image, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? DC_ERR_NOT_FOUND : DC_ERR_IO;
    ssize_t n = pread(fd, header, sizeof(header), 0);
    close(fd);
    if (n < 0)
        return DC_ERR_IO;
    uint64_t total;
    return dc_fs_probe(header, (size_t)n, block_size, &total);
}

/* Daemon mode: the parent waits for the child's report and exits with it. */
static int wait_for_child(int fd, pid_t pid, const char *image,
                          const char *mountpoint) {
    char line[1200];
    size_t len = 0;
    while (len < sizeof(line) - 1) {
        ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(line, '\n', len))
            break;
    }
    line[len] = '\0';
    if (strcmp(line, "ready\n") == 0) {
        fprintf(stderr,
                "doublecrypt: mounted %s on %s (process %ld); unmount: "
                "fusermount3 -u %s\n",
                image, mountpoint, (long)pid, mountpoint);
        return 0;
    }
    int code = EXIT_FAILURE_;
    int consumed = 0;
    if (sscanf(line, "error %d %n", &code, &consumed) >= 1 && consumed > 0) {
        fprintf(stderr, "doublecrypt-fuse: %s", line + consumed);
        return code;
    }
    fprintf(stderr, "doublecrypt-fuse: the mount process ended before the "
                    "mount was ready\n");
    return EXIT_FAILURE_;
}

static void detach(void) {
    setsid();
    if (chdir("/") != 0) {
        /* nothing to do: the mount works from any directory */
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: doublecrypt-fuse --key-fd N [--read-only] "
                    "[--commit-interval SECONDS] [-f] [-d] IMAGE MOUNTPOINT\n");
}

int main(int argc, char **argv) {
    int key_fd = -1, foreground = 0, debug = 0;
    const char *image = NULL, *mountpoint = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--key-fd") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 0 || v > INT_MAX) {
                usage();
                return EXIT_USAGE;
            }
            key_fd = (int)v;
        } else if (strcmp(a, "--commit-interval") == 0 && i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(v >= 0) ||
                v > MAX_COMMIT_INTERVAL) {
                usage();
                return EXIT_USAGE;
            }
            g_interval = v;
        } else if (strcmp(a, "--read-only") == 0) {
            g_read_only = 1;
        } else if (strcmp(a, "-f") == 0 || strcmp(a, "--foreground") == 0) {
            foreground = 1;
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
            debug = 1;
            foreground = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            usage();
            return EXIT_USAGE;
        } else if (image == NULL) {
            image = a;
        } else if (mountpoint == NULL) {
            mountpoint = a;
        } else {
            usage();
            return EXIT_USAGE;
        }
    }
    if (key_fd < 0 || image == NULL || mountpoint == NULL) {
        usage();
        return EXIT_USAGE;
    }

    /* Absolute: the daemon leaves its working directory. */
    static char mount_abs[PATH_MAX];
    if (realpath(mountpoint, mount_abs) == NULL)
        return fail(EXIT_FAILURE_, "%s: %s", mountpoint, strerror(errno));
    mountpoint = mount_abs;

    if (!foreground) {
        int report[2];
        if (pipe2(report, O_CLOEXEC) != 0)
            return fail(EXIT_FAILURE_, "pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            return fail(EXIT_FAILURE_, "fork: %s", strerror(errno));
        if (pid > 0) {
            close(report[1]);
            close(key_fd);
            return wait_for_child(report[0], pid, image, mountpoint);
        }
        close(report[0]);
        g_report_fd = report[1];
    }

    if (sodium_init() < 0)
        return fail(EXIT_FAILURE_, "libsodium failed to initialise");
    unsigned char key[KEY_BYTES];
    if (read_key(key_fd, key) != 0) {
        sodium_memzero(key, sizeof(key));
        return fail(EXIT_FAILURE_,
                    "--key-fd %d must give exactly %d bytes, then end of file",
                    key_fd, KEY_BYTES);
    }

    int rc = probe_block_size(image, &g_block_size);
    if (rc != DC_OK) {
        sodium_memzero(key, sizeof(key));
        if (rc == DC_ERR_CORRUPT)
            return fail(EXIT_CORRUPT,
                        "not a doublecrypt image, or its header is damaged: %s",
                        image);
        return fail(exit_code_for(rc), "%s: %s", image, dc_strerror(rc));
    }
    dc_store *store = NULL;
    rc = dc_store_open_file(&store, image, g_block_size, g_read_only);
    if (rc != DC_OK) {
        sodium_memzero(key, sizeof(key));
        return fail(exit_code_for(rc), "%s: %s", image, dc_strerror(rc));
    }
    dc_fs_options opts;
    dc_fs_options_init(&opts);
    opts.read_only = g_read_only;
    rc = dc_fs_mount(&g_fs, store, key, &opts); /* takes the store over */
    sodium_memzero(key, sizeof(key));
    if (rc != DC_OK) {
        if (rc == DC_ERR_AUTH)
            return fail(EXIT_AUTH,
                        "%s: wrong key, or the volume fails authentication "
                        "(altered or damaged data)",
                        image);
        return fail(exit_code_for(rc), "%s: %s", image, dc_strerror(rc));
    }
    g_mountpoint = mountpoint;
    g_uid = getuid();
    g_gid = getgid();

    char options[256];
    snprintf(options, sizeof(options),
             "fsname=doublecrypt,subtype=doublecrypt,default_permissions%s",
             g_read_only ? ",ro" : "");
    char *fargv[] = {argv[0], "-o", options, debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(debug ? 4 : 3, fargv);
    int code = EXIT_FAILURE_;
    struct fuse *fuse = fuse_new(&args, &dc_ops, sizeof(dc_ops), NULL);
    if (fuse == NULL) {
        code = fail(EXIT_FAILURE_, "fuse_new failed");
        goto out_fs;
    }
    if (fuse_mount(fuse, mountpoint) != 0) {
        code = fail(EXIT_FAILURE_, "libfuse could not mount on %s", mountpoint);
        goto out_fuse;
    }
    struct fuse_session *se = fuse_get_session(fuse);
    if (fuse_set_signal_handlers(se) != 0) {
        code = fail(EXIT_FAILURE_, "could not install signal handlers");
        goto out_unmount;
    }
    if (g_report_fd >= 0) {
        detach();
        write_all(g_report_fd, "ready\n", 6);
        close(g_report_fd);
        g_report_fd = -1;
    } else {
        fprintf(stderr,
                "doublecrypt-fuse: mounted %s on %s; Ctrl-C or fusermount3 "
                "-u to unmount\n",
                image, mountpoint);
    }
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_wake, &cattr);
    pthread_condattr_destroy(&cattr);
    pthread_t timer;
    int timer_running = 0;
    if (g_interval > 0 && !g_read_only) {
        if (pthread_create(&timer, NULL, committer, NULL) != 0) {
            fprintf(stderr, "doublecrypt-fuse: no committer thread: every "
                            "operation commits on its own\n");
            g_interval = 0;
        } else {
            timer_running = 1;
        }
    }
    struct fuse_loop_config loop = {.clone_fd = 0, .max_idle_threads = 10};
    fuse_loop_mt(fuse, &loop); /* until unmounted or signalled */
    code = 0;
    pthread_mutex_lock(&g_txn);
    g_stop = 1;
    pthread_cond_signal(&g_wake);
    pthread_mutex_unlock(&g_txn);
    if (timer_running)
        pthread_join(timer, NULL);
    pthread_mutex_lock(&g_txn);
    if (group_commit() != DC_OK || g_pending_error != 0)
        code = EXIT_IO; /* logged when it failed */
    pthread_mutex_unlock(&g_txn);
    fuse_remove_signal_handlers(se);
out_unmount:
    fuse_unmount(fuse);
out_fuse:
    fuse_destroy(fuse);
out_fs:
    fuse_opt_free_args(&args);
    rc = dc_fs_sync(g_fs);
    if (rc != DC_OK && code == 0)
        code = fail(EXIT_IO, "sync at unmount failed: %s (%s)", dc_strerror(rc),
                    dc_fs_errmsg(g_fs));
    dc_fs_free(g_fs);
    return code;
}
