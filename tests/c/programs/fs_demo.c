/*
 * fs_demo.c - the native API end to end: create an image file, format it,
 * make directories, write a 1 MiB file and small files, read them back,
 * list, rename, remove, remount and fsck.
 *
 * Usage: fs_demo <scratch-directory>. Prints "fs_demo: ok" last and exits 0
 * when every step succeeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <doublecrypt.h>

#define BIG_LEN (1024 * 1024)
#define BLOCKS 256

/* Stop at the first failing call, with the handle's detail when there is
 * one. */
#define TRY(expr)                                                              \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != DC_OK) {                                                    \
            fprintf(stderr, "fs_demo.c:%d: %s: %s (%s)\n", __LINE__, #expr,    \
                    dc_strerror(rc_), dc_fs_errmsg(fs));                       \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

#define EXPECT(cond)                                                           \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fs_demo.c:%d: check failed: %s\n", __LINE__,      \
                    #cond);                                                    \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

static const char *small_names[] = {"/notes/a.txt", "/notes/b.txt",
                                    "/notes/todo/c.txt"};

/* Print a directory's entries; returns the count or a negative error. */
static int list(dc_fs *fs, const char *path) {
    char name[DC_MAX_NAME_BYTES + 1];
    dc_stat st;
    dc_dir *dir;
    int rc = dc_fs_opendir(&dir, fs, path), count = 0;
    if (rc != DC_OK)
        return rc;
    while ((rc = dc_dir_next(dir, name, sizeof name, &st)) > 0) {
        printf("  %s%s%s %llu\n", path, strcmp(path, "/") ? "/" : "", name,
               (unsigned long long)st.size);
        count++;
    }
    dc_dir_free(dir);
    return rc < 0 ? rc : count;
}

int main(int argc, char **argv) {
    unsigned char key[DC_KDF_MASTER_KEYBYTES];
    char image[4096], text[64];
    unsigned char *big = NULL, *back = NULL;
    dc_store *store = NULL;
    dc_fs *fs = NULL;
    dc_fsck_report report;
    dc_stat st;
    size_t got;
    int status = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <scratch-directory>\n", argv[0]);
        return 2;
    }
    snprintf(image, sizeof image, "%s/fs_demo.img", argv[1]);
    remove(image);
    memset(key, 0x5c, sizeof key);
    big = malloc(BIG_LEN);
    back = malloc(BIG_LEN);
    EXPECT(big != NULL && back != NULL);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (unsigned char)((i * 7919u) >> 5 ^ i);

    TRY(dc_init());
    TRY(dc_store_create_file(&store, image, DC_DEFAULT_BLOCK_SIZE, BLOCKS, NULL,
                             NULL));
    {
        dc_store *owned = store; /* taken over by the fs, even on failure */
        store = NULL;
        TRY(dc_fs_format(&fs, owned, key, NULL));
    }

    TRY(dc_fs_mkdir(fs, "/data", 0755));
    TRY(dc_fs_makedirs(fs, "/notes/todo", 0755));
    TRY(dc_fs_create(fs, "/data/big.bin", 0644, 1));
    TRY(dc_fs_write(fs, "/data/big.bin", 0, big, BIG_LEN));
    for (size_t i = 0; i < sizeof small_names / sizeof *small_names; i++) {
        int n = snprintf(text, sizeof text, "small file %u", (unsigned)i);
        TRY(dc_fs_create(fs, small_names[i], 0644, 1));
        TRY(dc_fs_write(fs, small_names[i], 0, text, (size_t)n));
    }

    TRY(dc_fs_read(fs, "/data/big.bin", 0, back, BIG_LEN, &got));
    EXPECT(got == BIG_LEN && memcmp(back, big, BIG_LEN) == 0);
    TRY(dc_fs_read(fs, "/notes/todo/c.txt", 0, text, sizeof text, &got));
    EXPECT(got == strlen("small file 2") &&
           memcmp(text, "small file 2", got) == 0);

    printf("listing /notes:\n");
    EXPECT(list(fs, "/notes") == 3); /* a.txt, b.txt, todo */

    TRY(dc_fs_rename(fs, "/notes/a.txt", "/data/a.txt"));
    TRY(dc_fs_remove(fs, "/notes/b.txt"));
    EXPECT(dc_fs_stat(fs, "/notes/b.txt", &st) == DC_ERR_NOT_FOUND);
    TRY(dc_fs_sync(fs));
    dc_fs_free(fs);
    fs = NULL;

    /* Remount and check everything survived. */
    TRY(dc_store_open_file(&store, image, DC_DEFAULT_BLOCK_SIZE, 0));
    {
        dc_store *owned = store;
        store = NULL;
        TRY(dc_fs_mount(&fs, owned, key, NULL));
    }
    TRY(dc_fs_read(fs, "/data/big.bin", 0, back, BIG_LEN, &got));
    EXPECT(got == BIG_LEN && memcmp(back, big, BIG_LEN) == 0);
    TRY(dc_fs_read(fs, "/data/a.txt", 0, text, sizeof text, &got));
    EXPECT(got == strlen("small file 0") &&
           memcmp(text, "small file 0", got) == 0);
    TRY(dc_fs_stat(fs, "/data/big.bin", &st));
    EXPECT(st.type == DC_TYPE_FILE && st.size == BIG_LEN);
    printf("listing /data:\n");
    EXPECT(list(fs, "/data") == 2);
    printf("listing /:\n");
    EXPECT(list(fs, "/") == 2);

    TRY(dc_fs_fsck(fs, &report));
    EXPECT(report.errors == 0 && report.leaked_blocks == 0 &&
           report.bad_references == 0);
    printf("fsck: %llu files, %llu directories, %llu data blocks\n",
           (unsigned long long)report.files,
           (unsigned long long)report.directories,
           (unsigned long long)report.data_blocks);
    EXPECT(report.files == 3);
    status = 0;
    printf("fs_demo: ok\n");
fail:
    dc_fs_free(fs);
    dc_store_free(store);
    free(big);
    free(back);
    remove(image);
    return status;
}
