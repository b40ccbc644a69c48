/*
 * bench_fs.c - doublecrypt through its C ABI (libdoublecrypt.so, dc_fs_*):
 * the workloads of bench/peers_report.py, on an image file in a directory
 * the report chooses.
 *
 *   1. sequential write of SIZE bytes in CHUNK-byte dc_fs_write calls, then
 *      dc_fs_sync;
 *   2. FILES files of 4 KiB, each created and written in one transaction
 *      (one commit per file, like a POSIX create + write), then dc_fs_sync;
 *   3. extracting the ustar TARBALL TAR_REPEAT times (into /tar0, /tar1...):
 *      directories with dc_fs_makedirs, each regular file created, written
 *      and given its mtime in one transaction; then dc_fs_sync;
 *   4. the volume is freed (which syncs), the page cache dropped when
 *      allowed (root), the volume mounted again and the big file read back
 *      sequentially in CHUNK-byte calls;
 *   5. freed, caches dropped, mounted again: READS random 4 KiB reads at
 *      4 KiB-aligned offsets of the big file (xorshift64*, fixed seed).
 *
 * Image creation and formatting (the image is filled with random bytes) and
 * the mounts are not timed. The image is removed at the end.
 *
 * Usage: bench_fs DIR SIZE CHUNK FILES READS TARBALL TAR_REPEAT
 * Output: one JSON object on stdout:
 *   {"seq_write_mbps": .., "seq_read_mbps": .., "small_files_per_s": ..,
 *    "tar_files_per_s": .., "tar_files": N, "random_reads_per_s": ..,
 *    "dropped_caches": true|false}
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude bench_fs.c
 *        -o bench_fs -Lbuild -ldoublecrypt -Wl,-rpath,$PWD/build
 */
#define _XOPEN_SOURCE 700 /* sync() */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <doublecrypt.h>

#define SMALL_FILE_BYTES 4096
#define RANDOM_READ_BYTES 4096
#define TAR_BLOCK 512
#define MAX_CHUNK (64u << 20)

static const unsigned char master_key[DC_KDF_MASTER_KEYBYTES] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int status, const dc_fs *fs) {
    fprintf(stderr, "bench_fs: %s: %s%s%s\n", what, dc_strerror(status),
            fs ? ": " : "", fs ? dc_fs_errmsg(fs) : "");
    exit(EXIT_FAILURE);
}

static void check(int status, const char *what, const dc_fs *fs) {
    if (status < 0)
        die(what, status, fs);
}

/* Write back dirty pages and drop the page cache; 1 when that was allowed. */
static int drop_caches(void) {
    sync();
    FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
    if (f == NULL)
        return 0;
    int ok = fputs("3\n", f) >= 0;
    return fclose(f) == 0 && ok;
}

static dc_fs *mount_image(const char *path) {
    dc_store *store = NULL;
    dc_fs *fs = NULL;
    check(dc_store_open_file(&store, path, DC_DEFAULT_BLOCK_SIZE, 0),
          "open image", NULL);
    check(dc_fs_mount(&fs, store, master_key, NULL), "mount", NULL);
    return fs;
}

static int parse_u64(const char *arg, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* A ustar numeric field: octal digits, optionally space/NUL padded. */
static uint64_t tar_octal(const unsigned char *field, size_t len) {
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && field[i] == ' ')
        i++;
    for (; i < len && field[i] >= '0' && field[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(field[i] - '0');
    return v;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(EXIT_FAILURE);
    }
    size_t cap = 1 << 20, used = 0;
    unsigned char *buf = malloc(cap);
    while (buf != NULL) {
        used += fread(buf + used, 1, cap - used, f);
        if (used < cap)
            break;
        unsigned char *grown = realloc(buf, cap * 2);
        if (grown == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    if (buf == NULL || ferror(f)) {
        fprintf(stderr, "bench_fs: cannot read %s\n", path);
        exit(EXIT_FAILURE);
    }
    fclose(f);
    *len = used;
    return buf;
}

/* One member of a ustar archive. */
struct tar_member {
    char name[256];
    char type;
    uint32_t mode;
    int64_t mtime;
    const unsigned char *data;
    size_t size;
};

/* The member at *pos of tar[0..len): 1 (and *pos moves past it), 0 at the
 * end of the archive. Exits on a malformed archive. */
static int tar_next(const unsigned char *tar, size_t len, size_t *pos,
                    struct tar_member *m) {
    if (*pos + TAR_BLOCK > len || tar[*pos] == '\0')
        return 0; /* end-of-archive block */
    const unsigned char *h = tar + *pos;
    uint64_t size = tar_octal(h + 124, 12);
    size_t data = *pos + TAR_BLOCK;
    if (size > len ||
        data + (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK > len) {
        fprintf(stderr, "bench_fs: truncated tarball\n");
        exit(EXIT_FAILURE);
    }
    const char *prefix = (const char *)h + 345;
    int prefix_len = (int)strnlen(prefix, 155);
    int name_len = (int)strnlen((const char *)h, 100);
    if (prefix_len > 0 && memcmp(h + 257, "ustar", 5) == 0)
        snprintf(m->name, sizeof m->name, "%.*s/%.*s", prefix_len, prefix,
                 name_len, (const char *)h);
    else
        snprintf(m->name, sizeof m->name, "%.*s", name_len, (const char *)h);
    size_t n = strlen(m->name);
    while (n > 0 && m->name[n - 1] == '/')
        m->name[--n] = '\0';
    m->type = (char)h[156];
    m->mode = (uint32_t)tar_octal(h + 100, 8) & 07777;
    m->mtime = (int64_t)tar_octal(h + 136, 12);
    m->data = tar + data;
    m->size = (size_t)size;
    *pos = data + (size_t)((size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK);
    return 1;
}

static uint64_t tar_count(const unsigned char *tar, size_t len) {
    struct tar_member m;
    size_t pos = 0;
    uint64_t count = 0;
    while (tar_next(tar, len, &pos, &m))
        count++;
    return count;
}

/* Extract the ustar archive tar[0..len) under `root`; returns the number of
 * regular files written. Anything but directories and regular files (pax
 * headers, links) is skipped. */
static uint64_t extract_tar(dc_fs *fs, const char *root,
                            const unsigned char *tar, size_t len) {
    char path[DC_MAX_PATH_BYTES];
    struct tar_member m;
    uint64_t files = 0;
    size_t pos = 0;

    check(dc_fs_makedirs(fs, root, 0755), "makedirs", fs);
    while (tar_next(tar, len, &pos, &m)) {
        if (snprintf(path, sizeof path, "%s/%s", root, m.name) >=
            (int)sizeof path) {
            fprintf(stderr, "bench_fs: path too long in tarball\n");
            exit(EXIT_FAILURE);
        }
        if (m.type == '5') {
            check(dc_fs_makedirs(fs, path, m.mode ? m.mode : 0755), "makedirs",
                  fs);
        } else if (m.type == '0' || m.type == '\0') {
            check(dc_fs_begin(fs), "begin", fs);
            check(dc_fs_create(fs, path, m.mode ? m.mode : 0644, 0), "create",
                  fs);
            check(dc_fs_truncate(fs, path, 0), "truncate", fs);
            if (m.size > 0)
                check(dc_fs_write(fs, path, 0, m.data, m.size), "write", fs);
            check(dc_fs_set_mtime(fs, path, m.mtime * 1000000000LL),
                  "set_mtime", fs);
            check(dc_fs_commit(fs), "commit", fs);
            files++;
        }
    }
    return files;
}

static uint64_t xorshift64s(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv) {
    uint64_t size, chunk, nfiles, reads, repeat;
    if (argc != 8 || parse_u64(argv[2], &size) != 0 ||
        parse_u64(argv[3], &chunk) != 0 || parse_u64(argv[4], &nfiles) != 0 ||
        parse_u64(argv[5], &reads) != 0 || parse_u64(argv[7], &repeat) != 0 ||
        chunk == 0 || chunk > MAX_CHUNK || size < RANDOM_READ_BYTES) {
        fprintf(stderr,
                "usage: %s DIR SIZE CHUNK FILES READS TARBALL TAR_REPEAT\n",
                argc > 0 ? argv[0] : "bench_fs");
        return 2;
    }
    const char *dir = argv[1];
    size_t tar_len = 0;
    unsigned char *tar = read_file(argv[6], &tar_len);

    /* Room for the big file, one block per small or extracted file (two,
     * for copy-on-write headroom) and the metadata. */
    const uint64_t bs = DC_DEFAULT_BLOCK_SIZE;
    uint64_t tar_blocks = tar_count(tar, tar_len) * repeat;
    uint64_t total = size / bs + size / bs / 8 + 2 * (nfiles + tar_blocks) +
                     (64u << 20) / bs;
    char image[DC_MAX_PATH_BYTES];
    if (snprintf(image, sizeof image, "%s/bench_fs.img", dir) >=
        (int)sizeof image) {
        fprintf(stderr, "bench_fs: DIR too long\n");
        return 2;
    }
    unlink(image);

    unsigned char *buf = aligned_alloc(64, (size_t)chunk);
    if (buf == NULL) {
        fprintf(stderr, "bench_fs: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)chunk; i++)
        buf[i] = (unsigned char)(i * 131u + (i >> 9));

    dc_store *store = NULL;
    dc_fs *fs = NULL;
    check(dc_store_create_file(&store, image, (uint32_t)bs, total, NULL, NULL),
          "create image", NULL);
    check(dc_fs_format(&fs, store, master_key, NULL), "format", NULL);

    /* 1. sequential write */
    double t0 = now_seconds();
    check(dc_fs_create(fs, "/big", 0644, 1), "create", fs);
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t n = (size_t)(size - off < chunk ? size - off : chunk);
        check(dc_fs_write(fs, "/big", off, buf, n), "write", fs);
    }
    check(dc_fs_sync(fs), "sync", fs);
    double seq_write = (double)size / 1e6 / (now_seconds() - t0);

    /* 2. small files */
    char path[64];
    check(dc_fs_mkdir(fs, "/small", 0755), "mkdir", fs);
    t0 = now_seconds();
    for (uint64_t i = 0; i < nfiles; i++) {
        snprintf(path, sizeof path, "/small/f%06" PRIu64, i);
        check(dc_fs_begin(fs), "begin", fs);
        check(dc_fs_create(fs, path, 0644, 1), "create", fs);
        check(dc_fs_write(fs, path, 0, buf, SMALL_FILE_BYTES), "write", fs);
        check(dc_fs_commit(fs), "commit", fs);
    }
    check(dc_fs_sync(fs), "sync", fs);
    double small = (double)nfiles / (now_seconds() - t0);

    /* 3. tar extract */
    uint64_t tar_files = 0;
    t0 = now_seconds();
    for (uint64_t r = 0; r < repeat; r++) {
        snprintf(path, sizeof path, "/tar%" PRIu64, r);
        tar_files += extract_tar(fs, path, tar, tar_len);
    }
    check(dc_fs_sync(fs), "sync", fs);
    double tar_rate = (double)tar_files / (now_seconds() - t0);
    dc_fs_free(fs);

    /* 4. sequential read after a remount */
    int dropped = drop_caches();
    fs = mount_image(image);
    t0 = now_seconds();
    uint64_t total_read = 0;
    for (;;) {
        size_t got = 0;
        check(dc_fs_read(fs, "/big", total_read, buf, (size_t)chunk, &got),
              "read", fs);
        if (got == 0)
            break;
        total_read += got;
    }
    double seq_read = (double)total_read / 1e6 / (now_seconds() - t0);
    if (total_read != size) {
        fprintf(stderr, "bench_fs: read %" PRIu64 " of %" PRIu64 " bytes\n",
                total_read, size);
        return 1;
    }
    dc_fs_free(fs);

    /* 5. random 4 KiB reads after a remount */
    dropped = drop_caches() && dropped;
    fs = mount_image(image);
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    uint64_t slots = size / RANDOM_READ_BYTES;
    t0 = now_seconds();
    for (uint64_t i = 0; i < reads; i++) {
        uint64_t off = xorshift64s(&state) % slots * RANDOM_READ_BYTES;
        size_t got = 0;
        check(dc_fs_read(fs, "/big", off, buf, RANDOM_READ_BYTES, &got), "read",
              fs);
        if (got != RANDOM_READ_BYTES) {
            fprintf(stderr, "bench_fs: short random read\n");
            return 1;
        }
    }
    double random_reads = (double)reads / (now_seconds() - t0);
    dc_fs_free(fs);
    unlink(image);
    free(buf);
    free(tar);

    printf("{\"seq_write_mbps\": %.1f, \"seq_read_mbps\": %.1f, "
           "\"small_files_per_s\": %.1f, \"tar_files_per_s\": %.1f, "
           "\"tar_files\": %" PRIu64 ", \"random_reads_per_s\": %.1f, "
           "\"dropped_caches\": %s}\n",
           seq_write, seq_read, small, tar_rate, tar_files, random_reads,
           dropped ? "true" : "false");
    return fflush(stdout) == 0 ? 0 : 1;
}
