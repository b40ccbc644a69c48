#define _POSIX_C_SOURCE 200809L /* mkstemp */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doublecrypt.h"
#include "unit.h"

static const unsigned char key[DC_KDF_MASTER_KEYBYTES] = {1, 2, 3};

static dc_fs *fresh(uint32_t bs, uint64_t blocks, dc_store **raw) {
    dc_store *store = NULL;
    CHECK_RC(dc_store_new_memory(&store, bs, blocks), DC_OK);
    *raw = store;
    dc_fs *fs = NULL;
    CHECK_RC(dc_fs_format(&fs, store, key, NULL), DC_OK);
    return fs;
}

static size_t read_all(dc_fs *fs, const char *path, unsigned char *buf,
                       size_t cap) {
    size_t got = 0;
    CHECK_RC(dc_fs_read(fs, path, 0, buf, cap, &got), DC_OK);
    return got;
}

static void test_basic_ops(void) {
    dc_store *raw;
    dc_fs *fs = fresh(4096, 2048, &raw);
    dc_stat st;
    unsigned char buf[100000];

    CHECK_RC(dc_fs_stat(fs, "/", &st), DC_OK);
    CHECK(st.type == DC_TYPE_DIRECTORY && st.size == 0);
    CHECK_RC(dc_fs_mkdir(fs, "/docs", 0755), DC_OK);
    CHECK_RC(dc_fs_mkdir(fs, "/docs", 0755), DC_ERR_ALREADY_EXISTS);
    CHECK_RC(dc_fs_create(fs, "/docs/a.txt", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_create(fs, "/docs/a.txt", 0644, 1), DC_ERR_ALREADY_EXISTS);
    CHECK_RC(dc_fs_create(fs, "/docs/a.txt", 0644, 0), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/docs/a.txt", 0, "hello world", 11), DC_OK);
    CHECK(read_all(fs, "/docs/a.txt", buf, sizeof buf) == 11);
    CHECK(memcmp(buf, "hello world", 11) == 0);
    CHECK_RC(dc_fs_write(fs, "/docs/a.txt", 6, "WORLD!", 6), DC_OK);
    CHECK(read_all(fs, "/docs/a.txt", buf, sizeof buf) == 12);
    CHECK(memcmp(buf, "hello WORLD!", 12) == 0);

    /* A gap reads as zeros; a big multi-chunk write round trips. */
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    CHECK_RC(dc_fs_create(fs, "/big", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/big", 5000, buf, sizeof buf), DC_OK);
    CHECK_RC(dc_fs_stat(fs, "/big", &st), DC_OK);
    CHECK(st.size == 5000 + sizeof buf);
    unsigned char *back = malloc(st.size);
    size_t got;
    CHECK_RC(dc_fs_read(fs, "/big", 0, back, st.size, &got), DC_OK);
    CHECK(got == st.size);
    for (size_t i = 0; i < 5000; i++)
        CHECK(back[i] == 0);
    CHECK(memcmp(back + 5000, buf, sizeof buf) == 0);
    CHECK_RC(dc_fs_truncate(fs, "/big", 7000), DC_OK);
    CHECK_RC(dc_fs_truncate(fs, "/big", 9000), DC_OK);
    CHECK_RC(dc_fs_read(fs, "/big", 0, back, 9000, &got), DC_OK);
    CHECK(got == 9000 && memcmp(back + 5000, buf, 2000) == 0);
    for (size_t i = 7000; i < 9000; i++)
        CHECK(back[i] == 0);
    free(back);

    /* Errors. */
    CHECK_RC(dc_fs_stat(fs, "/nope", &st), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_fs_stat(fs, "relative", &st), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fs_mkdir(fs, "/docs/a.txt/x", 0755), DC_ERR_NOT_A_DIRECTORY);
    CHECK_RC(dc_fs_mkdir(fs, "/missing/x", 0755), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_fs_mkdir(fs, "/a//b", 0755), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fs_mkdir(fs, "/..", 0755), DC_ERR_INVALID_ARGUMENT);
    char longname[300];
    memset(longname, 'x', sizeof longname);
    longname[0] = '/';
    longname[257] = 0;
    CHECK_RC(dc_fs_mkdir(fs, longname, 0755), DC_ERR_NAME_TOO_LONG);
    longname[256] = 0;
    CHECK_RC(dc_fs_mkdir(fs, longname, 0755), DC_OK);
    CHECK_RC(dc_fs_rmdir(fs, "/docs"), DC_ERR_DIRECTORY_NOT_EMPTY);
    CHECK_RC(dc_fs_remove(fs, "/docs"), DC_ERR_NOT_A_FILE);
    CHECK_RC(dc_fs_rmdir(fs, "/docs/a.txt"), DC_ERR_NOT_A_DIRECTORY);
    CHECK_RC(dc_fs_read(fs, "/docs", 0, buf, 1, &got), DC_ERR_NOT_A_FILE);

    /* Rename: across directories, replacing, into itself. */
    CHECK_RC(dc_fs_makedirs(fs, "/x/y/z", 0755), DC_OK);
    CHECK_RC(dc_fs_makedirs(fs, "/x/y/z", 0755), DC_OK);
    CHECK_RC(dc_fs_rename(fs, "/docs/a.txt", "/x/y/z/b.txt"), DC_OK);
    CHECK(read_all(fs, "/x/y/z/b.txt", buf, sizeof buf) == 12);
    CHECK_RC(dc_fs_stat(fs, "/docs/a.txt", &st), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_fs_rename(fs, "/x", "/x/y/z/inside"), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fs_create(fs, "/other", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_rename(fs, "/x/y/z/b.txt", "/other"), DC_OK);
    CHECK(read_all(fs, "/other", buf, sizeof buf) == 12);
    CHECK_RC(dc_fs_rename(fs, "/x", "/docs"), DC_OK);
    CHECK_RC(dc_fs_stat(fs, "/docs/y/z", &st), DC_OK);

    /* Listing in name order. */
    dc_dir *dir;
    char name[256];
    int n = 0;
    CHECK_RC(dc_fs_opendir(&dir, fs, "/"), DC_OK);
    char prev[256] = "";
    while (dc_dir_next(dir, name, sizeof name, &st) == 1) {
        CHECK(strcmp(prev, name) < 0);
        strcpy(prev, name);
        n++;
    }
    dc_dir_free(dir);
    CHECK(n == 4); /* big, docs, other, xxx... */
    CHECK_RC(dc_fs_stat(fs, "/", &st), DC_OK);
    CHECK(st.size == 4);

    /* Transactions: abort drops everything since begin. */
    CHECK_RC(dc_fs_begin(fs), DC_OK);
    CHECK_RC(dc_fs_create(fs, "/t1", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/t1", 0, "tx", 2), DC_OK);
    CHECK_RC(dc_fs_abort(fs), DC_OK);
    CHECK_RC(dc_fs_stat(fs, "/t1", &st), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_fs_begin(fs), DC_OK);
    CHECK_RC(dc_fs_create(fs, "/t2", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_stat(fs, "/missing", &st), DC_ERR_NOT_FOUND);
    CHECK_RC(dc_fs_commit(fs), DC_OK);
    CHECK_RC(dc_fs_stat(fs, "/t2", &st), DC_OK);

    dc_fsck_report report;
    CHECK_RC(dc_fs_fsck(fs, &report), DC_OK);
    CHECK(report.errors == 0 && report.leaked_blocks == 0);
    dc_fs_free(fs);
}

static void test_remount_and_wrong_key(void) {
    char path[] = "/tmp/dc-test-fs-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    dc_store *store = NULL;
    CHECK_RC(dc_store_create_file(&store, path, 4096, 512, NULL, NULL), DC_OK);
    dc_fs *fs = NULL;
    CHECK_RC(dc_fs_format(&fs, store, key, NULL), DC_OK);
    CHECK_RC(dc_fs_makedirs(fs, "/a/b", 0700), DC_OK);
    CHECK_RC(dc_fs_create(fs, "/a/b/f", 0600, 1), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/a/b/f", 0, "persist", 7), DC_OK);
    dc_fs_free(fs);

    unsigned char wrong[DC_KDF_MASTER_KEYBYTES] = {9};
    CHECK_RC(dc_store_open_file(&store, path, 4096, 0), DC_OK);
    CHECK_RC(dc_fs_mount(&fs, store, wrong, NULL), DC_ERR_AUTH);
    CHECK(fs == NULL);
    CHECK_RC(dc_store_open_file(&store, path, 4096, 0), DC_OK);
    CHECK_RC(dc_fs_mount(&fs, store, key, NULL), DC_OK);
    unsigned char buf[16];
    CHECK(read_all(fs, "/a/b/f", buf, sizeof buf) == 7);
    CHECK(memcmp(buf, "persist", 7) == 0);
    CHECK_RC(dc_fs_fsck(fs, NULL), DC_OK);
    dc_fs_free(fs);
    unlink(path);
}

static void test_no_space_keeps_last_commit(void) {
    dc_store *raw;
    dc_fs *fs = fresh(4096, 64, &raw);
    static unsigned char big[4096 * 80];
    CHECK_RC(dc_fs_create(fs, "/f", 0644, 1), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/f", 0, "keep", 4), DC_OK);
    CHECK_RC(dc_fs_write(fs, "/f", 0, big, sizeof big), DC_ERR_NO_SPACE);
    unsigned char buf[8];
    CHECK(read_all(fs, "/f", buf, sizeof buf) == 4);
    CHECK(memcmp(buf, "keep", 4) == 0);
    CHECK_RC(dc_fs_fsck(fs, NULL), DC_OK);
    dc_fs_free(fs);
}

void test_fs(void) {
    test_basic_ops();
    test_remount_and_wrong_key();
    test_no_space_keeps_last_commit();
}
