/*
 * core_demo.c - a program written only against doublecrypt_core.h, the way a
 * doublecrypt-core user writes it: an image file, files and directories,
 * reads and writes, JSON listings, renames, removals, a remount, the error
 * codes, a memory volume and a random-filled "device".
 *
 * Usage: core_demo <scratch-directory>. Prints "core_demo: ok" last and
 * exits 0 when every check passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <doublecrypt_core.h>

static int failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "core_demo.c:%d: check failed: %s\n", __LINE__,    \
                    #cond);                                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

#define CHECK_RC(expr, expected)                                               \
    do {                                                                       \
        int32_t rc_ = (expr);                                                  \
        if (rc_ != (expected)) {                                               \
            fprintf(stderr, "core_demo.c:%d: %s gave %d, expected %d\n",       \
                    __LINE__, #expr, (int)rc_, (int)(expected));               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

#define KEY_LEN 32
#define BIG_LEN 200000

static uint8_t key[KEY_LEN], wrong_key[KEY_LEN];

static const char hello[] = "Hello, doublecrypt!";
static const char readme[] = "# docs\nread me.\n";

/* Whole content of a file into buf (capacity cap); returns bytes read. */
static uintptr_t read_all(FsHandle *fs, const char *name, uint8_t *buf,
                          uintptr_t cap) {
    uintptr_t n = 0;
    CHECK_RC(fs_read_file(fs, name, 0, cap, buf, &n), Ok);
    return n;
}

static uint64_t inode_of(FsHandle *fs, const char *name) {
    uint64_t size = 0, inode = 0;
    int32_t kind = -1;
    CHECK_RC(fs_stat(fs, name, &size, &kind, &inode), Ok);
    return inode;
}

static void fill_big(uint8_t *big) {
    for (uint32_t i = 0; i < BIG_LEN; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 24);
}

/* Build the volume: files, directories, data, listings, renames. */
static void populate(FsHandle *fs, uint8_t *big, uint8_t *buf) {
    char expected[1024], name300[301];
    uint64_t size, inode;
    int32_t kind, err = 1;
    uintptr_t n;

    CHECK_RC(fs_create_file(fs, "hello.txt"), Ok);
    CHECK_RC(fs_write_file(fs, "hello.txt", 0, (const uint8_t *)hello,
                           strlen(hello)),
             Ok);
    CHECK_RC(fs_create_dir(fs, "docs"), Ok);
    CHECK_RC(fs_create_dir(fs, "/emptydir/"), Ok);
    CHECK_RC(fs_create_file(fs, "docs/readme.md"), Ok);
    CHECK_RC(fs_write_file(fs, "/docs/readme.md", 0, (const uint8_t *)readme,
                           strlen(readme)),
             Ok);
    CHECK_RC(fs_create_dir(fs, "docs/nested"), Ok);
    CHECK_RC(fs_create_file(fs, "docs/nested/deep.bin"), Ok);
    /* Two writes, the second overlapping the first's tail. */
    CHECK_RC(fs_write_file(fs, "docs/nested/deep.bin", 0, big, 150000), Ok);
    CHECK_RC(fs_write_file(fs, "docs/nested/deep.bin", 100000, big + 100000,
                           BIG_LEN - 100000),
             Ok);
    CHECK(read_all(fs, "docs/nested/deep.bin", buf, BIG_LEN + 10) == BIG_LEN);
    CHECK(memcmp(buf, big, BIG_LEN) == 0);
    n = 0;
    CHECK_RC(fs_read_file(fs, "docs/nested/deep.bin", 65530, 20, buf, &n), Ok);
    CHECK(n == 20 && memcmp(buf, big + 65530, 20) == 0);
    CHECK_RC(fs_read_file(fs, "docs/nested/deep.bin", BIG_LEN, 5, buf, &n), Ok);
    CHECK(n == 0);
    /* Sparse: the gap reads as zeros. */
    CHECK_RC(fs_create_file(fs, "sparse.bin"), Ok);
    CHECK_RC(
        fs_write_file(fs, "sparse.bin", 100000, (const uint8_t *)"tail", 4),
        Ok);
    CHECK_RC(fs_stat(fs, "sparse.bin", &size, &kind, &inode), Ok);
    CHECK(size == 100004 && kind == 0);
    CHECK_RC(fs_read_file(fs, "sparse.bin", 99998, 6, buf, &n), Ok);
    CHECK(n == 6 && memcmp(buf, "\0\0tail", 6) == 0);
    CHECK_RC(fs_stat(fs, "docs", &size, &kind, &inode), Ok);
    CHECK(size == 0 && kind == 1);

    /* Names that JSON must escape, and non-ASCII. */
    CHECK_RC(fs_create_file(fs, "docs/q\"b\\s\tc\x01.txt"), Ok);
    CHECK_RC(fs_create_file(fs, "docs/caf\xc3\xa9.txt"), Ok);
    char *json = fs_list_dir(fs, "docs", &err);
    CHECK(json != NULL && err == Ok);
    snprintf(expected, sizeof expected,
             "[{\"name\":\"caf\xc3\xa9.txt\",\"kind\":\"File\",\"size\":0,"
             "\"inode_id\":%llu},"
             "{\"name\":\"nested\",\"kind\":\"Directory\",\"size\":0,"
             "\"inode_id\":%llu},"
             "{\"name\":\"q\\\"b\\\\s\\tc\\u0001.txt\",\"kind\":\"File\","
             "\"size\":0,\"inode_id\":%llu},"
             "{\"name\":\"readme.md\",\"kind\":\"File\",\"size\":%u,"
             "\"inode_id\":%llu}]",
             (unsigned long long)inode_of(fs, "docs/caf\xc3\xa9.txt"),
             (unsigned long long)inode_of(fs, "docs/nested"),
             (unsigned long long)inode_of(fs, "docs/q\"b\\s\tc\x01.txt"),
             (unsigned)strlen(readme),
             (unsigned long long)inode_of(fs, "docs/readme.md"));
    CHECK(json != NULL && strcmp(json, expected) == 0);
    if (json != NULL && strcmp(json, expected) != 0)
        fprintf(stderr, "got      %s\nexpected %s\n", json, expected);
    fs_free_string(json);

    /* Renames: in place, across directories, never over an existing name. */
    CHECK_RC(fs_rename(fs, "sparse.bin", "holes.bin"), Ok);
    CHECK_RC(fs_rename(fs, "docs/caf\xc3\xa9.txt", "emptydir/cafe.txt"), Ok);
    CHECK_RC(fs_rename(fs, "emptydir/cafe.txt", "docs/caf\xc3\xa9.txt"), Ok);
    CHECK_RC(fs_rename(fs, "hello.txt", "holes.bin"), AlreadyExists);
    CHECK_RC(fs_rename(fs, "hello.txt", "hello.txt"), AlreadyExists);
    CHECK_RC(fs_rename(fs, "missing.txt", "other.txt"), NotFound);

    /* The error codes of doublecrypt-core. */
    CHECK_RC(fs_read_file(fs, "missing.txt", 0, 10, buf, &n), NotFound);
    CHECK_RC(fs_create_file(fs, "hello.txt"), AlreadyExists);
    CHECK_RC(fs_create_dir(fs, "docs"), AlreadyExists);
    CHECK_RC(fs_remove_file(fs, "docs"), DirectoryNotEmpty);
    memset(name300, 'n', 300);
    name300[300] = 0;
    CHECK_RC(fs_create_file(fs, name300), NameTooLong);
    CHECK_RC(fs_read_file(fs, "docs", 0, 10, buf, &n), NotAFile);
    CHECK_RC(fs_read_file(fs, "hello.txt", 0, 10, NULL, &n), InvalidArgument);
    CHECK_RC(fs_create_file(fs, "nodir/x.txt"), NotFound);
    CHECK_RC(fs_create_file(fs, "hello.txt/x.txt"), NotADirectory);
    CHECK_RC(fs_write_file(NULL, "hello.txt", 0, buf, 1), InvalidArgument);
    CHECK_RC(fs_create_file(fs, ""), InvalidArgument);
    CHECK_RC(fs_create_file(fs, "bad\xff.txt"), InvalidArgument);
    CHECK_RC(fs_create_file(fs, "docs//x.txt"), InvalidArgument);
    memset(buf, 'p', 5000);
    buf[5000] = 0;
    CHECK_RC(fs_create_file(fs, (const char *)buf), NameTooLong);
    CHECK_RC(fs_stat(fs, "/", &size, &kind, &inode), Ok);
    CHECK(size == 0 && kind == 1 && inode > 0);
    json = fs_list_dir(fs, "//", &err);
    char *root = fs_list_root(fs, NULL);
    CHECK(json != NULL && root != NULL && strcmp(json, root) == 0);
    fs_free_string(json);
    fs_free_string(root);
    CHECK(fs_list_dir(fs, "hello.txt", &err) == NULL && err == NotADirectory);
    CHECK(fs_list_dir(fs, "nowhere", NULL) == NULL);

    /* Removal of a file and of an empty directory. */
    CHECK_RC(fs_create_file(fs, "doomed.txt"), Ok);
    CHECK_RC(fs_remove_file(fs, "doomed.txt"), Ok);
    CHECK_RC(fs_remove_file(fs, "/emptydir"), Ok);
    CHECK_RC(fs_stat(fs, "emptydir", &size, &kind, &inode), NotFound);

    CHECK_RC(fs_flush(fs), Ok);
    CHECK_RC(fs_sync(fs), Ok);
    CHECK_RC(fs_scrub_free_blocks(fs), Ok);
}

/* After remounting: everything written before is there. */
static void verify(FsHandle *fs, const uint8_t *big, uint8_t *buf) {
    char expected[512];
    int32_t err = 1;
    CHECK(read_all(fs, "hello.txt", buf, 100) == strlen(hello));
    CHECK(memcmp(buf, hello, strlen(hello)) == 0);
    CHECK(read_all(fs, "docs/readme.md", buf, 100) == strlen(readme));
    CHECK(memcmp(buf, readme, strlen(readme)) == 0);
    CHECK(read_all(fs, "docs/nested/deep.bin", buf, BIG_LEN) == BIG_LEN);
    CHECK(memcmp(buf, big, BIG_LEN) == 0);
    char *json = fs_list_root(fs, &err);
    CHECK(json != NULL && err == Ok);
    snprintf(expected, sizeof expected,
             "[{\"name\":\"docs\",\"kind\":\"Directory\",\"size\":0,"
             "\"inode_id\":%llu},"
             "{\"name\":\"hello.txt\",\"kind\":\"File\",\"size\":%u,"
             "\"inode_id\":%llu},"
             "{\"name\":\"holes.bin\",\"kind\":\"File\",\"size\":100004,"
             "\"inode_id\":%llu}]",
             (unsigned long long)inode_of(fs, "docs"), (unsigned)strlen(hello),
             (unsigned long long)inode_of(fs, "hello.txt"),
             (unsigned long long)inode_of(fs, "holes.bin"));
    CHECK(json != NULL && strcmp(json, expected) == 0);
    printf("%s\n", json != NULL ? json : "(null)");
    fs_free_string(json);
}

/* An in-memory volume, and the constructors' NULL results. */
static void memory_volume(void) {
    int32_t err = 1;
    uint8_t buf[8];
    uintptr_t n = 0;
    CHECK(fs_create(64, NULL, KEY_LEN) == NULL);
    CHECK(fs_create(64, key, 0) == NULL);
    CHECK(fs_create_network("127.0.0.1:9100", "localhost", NULL, 0, NULL, 0,
                            key, KEY_LEN) == NULL);
    FsHandle *fs = fs_create(64, key, KEY_LEN);
    CHECK(fs != NULL);
    if (fs == NULL)
        return;
    CHECK_RC(fs_create_file(fs, "a.txt"), NotInitialized);
    CHECK(fs_list_root(fs, &err) == NULL && err == NotInitialized);
    CHECK_RC(fs_open(fs), NotInitialized); /* blank store */
    CHECK_RC(fs_init_filesystem(fs), Ok);
    CHECK_RC(fs_create_file(fs, "a.txt"), Ok);
    CHECK_RC(fs_write_file(fs, "a.txt", 0, (const uint8_t *)"hello", 5), Ok);
    CHECK_RC(fs_read_file(fs, "/a.txt", 0, sizeof buf, buf, &n), Ok);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
    char *json = fs_list_root(fs, &err);
    char expected[128];
    snprintf(expected, sizeof expected,
             "[{\"name\":\"a.txt\",\"kind\":\"File\",\"size\":5,"
             "\"inode_id\":%llu}]",
             (unsigned long long)inode_of(fs, "a.txt"));
    CHECK(json != NULL && strcmp(json, expected) == 0 && err == Ok);
    fs_free_string(json);
    /* Re-initialising formats afresh. */
    CHECK_RC(fs_init_filesystem(fs), Ok);
    json = fs_list_root(fs, NULL);
    CHECK(json != NULL && strcmp(json, "[]") == 0);
    fs_free_string(json);
    fs_destroy(fs);
    fs_destroy(NULL);
}

/* A pre-sized file used as a device: random-filled by initialize. */
static void device_volume(const char *path, uint8_t *buf) {
    const size_t block = DEFAULT_BLOCK_SIZE, blocks = 32;
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    memset(buf, 0, block);
    for (size_t i = 0; i < blocks; i++)
        CHECK(fwrite(buf, 1, block, f) == block);
    fclose(f);

    FsHandle *fs = fs_create_device(path, 0, 0, 1, key, KEY_LEN);
    CHECK(fs != NULL);
    fs_destroy(fs);
    /* No block of the device is left all zeros. */
    f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    for (size_t i = 0; i < blocks; i++) {
        size_t zeros = 0;
        CHECK(fread(buf, 1, block, f) == block);
        for (size_t k = 0; k < block; k++)
            zeros += buf[k] == 0;
        CHECK(zeros < block / 64);
    }
    fclose(f);

    fs = fs_create_device(path, 0, 0, 0, key, KEY_LEN);
    CHECK(fs != NULL);
    if (fs == NULL)
        return;
    CHECK_RC(fs_init_filesystem(fs), Ok);
    CHECK_RC(fs_create_file(fs, "on-device.txt"), Ok);
    fs_destroy(fs);
    fs = fs_create_device(path, 0, 0, 0, key, KEY_LEN);
    CHECK(fs != NULL);
    if (fs == NULL)
        return;
    CHECK_RC(fs_open(fs), Ok);
    uint64_t size = 1, inode = 0;
    int32_t kind = -1;
    CHECK_RC(fs_stat(fs, "on-device.txt", &size, &kind, &inode), Ok);
    CHECK(size == 0 && kind == 0);
    fs_destroy(fs);
}

int main(int argc, char **argv) {
    char image[4096], device[4096];
    uint8_t digest[32];
    if (argc != 2) {
        fprintf(stderr, "usage: %s <scratch-directory>\n", argv[0]);
        return 2;
    }
    snprintf(image, sizeof image, "%s/core_demo.img", argv[1]);
    snprintf(device, sizeof device, "%s/core_demo.dev", argv[1]);
    remove(image);
    for (int i = 0; i < KEY_LEN; i++) {
        key[i] = (uint8_t)i;
        wrong_key[i] = (uint8_t)(0xaa ^ i);
    }
    uint8_t *big = malloc(BIG_LEN), *buf = malloc(BIG_LEN + 16);
    if (big == NULL || buf == NULL)
        return 1;
    fill_big(big);

    /* Create, fill and close an image of 128 blocks of 64 KiB. */
    FsHandle *fs = fs_create_disk(image, 128, 0, 1, key, KEY_LEN);
    CHECK(fs != NULL);
    if (fs != NULL) {
        CHECK(fs_create_disk(image, 128, 0, 1, key, KEY_LEN) == NULL);
        CHECK_RC(fs_create_file(fs, "early.txt"), NotInitialized);
        CHECK_RC(fs_init_filesystem(fs), Ok);
        populate(fs, big, buf);
        /* Written, then destroyed without fs_sync: still there. */
        CHECK_RC(fs_write_file(fs, "holes.bin", 0, (const uint8_t *)"head", 4),
                 Ok);
        fs_destroy(fs);
    }

    /* The wrong key: CryptoError, and the handle stays uninitialised. */
    fs = fs_create_disk(image, 0, 0, 0, wrong_key, KEY_LEN);
    CHECK(fs != NULL);
    if (fs != NULL) {
        CHECK_RC(fs_open(fs), CryptoError);
        CHECK_RC(fs_sync(fs), NotInitialized);
        fs_destroy(fs);
    }

    /* Reopen with the right key. */
    fs = fs_create_disk(image, 0, DEFAULT_BLOCK_SIZE, 0, key, KEY_LEN);
    CHECK(fs != NULL);
    if (fs != NULL) {
        uintptr_t n = 0;
        CHECK_RC(fs_open(fs), Ok);
        verify(fs, big, buf);
        CHECK_RC(fs_read_file(fs, "holes.bin", 0, 4, buf, &n), Ok);
        CHECK(n == 4 && memcmp(buf, "head", 4) == 0);
        fs_destroy(fs);
    }

    memory_volume();
    device_volume(device, buf);

    CHECK_RC(fs_blake3(NULL, 0, digest), InvalidArgument);
    CHECK_RC(fs_blake3((const uint8_t *)"abc", 3, digest), InternalError);
    CHECK(MAX_NAME_LEN == 255 && FIRST_DATA_BLOCK == 3);

    free(big);
    free(buf);
    remove(image);
    remove(device);
    if (failures) {
        fprintf(stderr, "core_demo: %d check(s) failed\n", failures);
        return 1;
    }
    printf("core_demo: ok\n");
    return 0;
}
