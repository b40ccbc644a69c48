/* test_fault.c - the simulated disk that loses power (doublecrypt/fault.h):
 * volatile writes, every mode, errors after the loss, ownership, and a small
 * crash sweep of the filesystem over it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doublecrypt.h"
#include "unit.h"

#define BS 4096u
#define TOTAL 64u

static const unsigned char key[DC_KDF_MASTER_KEYBYTES] = {9, 8, 7};

static void fill(unsigned char *block, unsigned char v) {
    memset(block, v, BS);
}

/* Every byte of block `id` (read through s) equals v. */
static int holds(dc_store *s, uint64_t id, unsigned char v) {
    unsigned char buf[BS];
    if (dc_store_read_blocks(s, &id, 1, buf) != DC_OK)
        return 0;
    for (size_t i = 0; i < BS; i++)
        if (buf[i] != v)
            return 0;
    return 1;
}

static void write_one(dc_store *s, uint64_t id, unsigned char v, int rc) {
    unsigned char buf[BS];
    fill(buf, v);
    CHECK_RC(dc_store_write_blocks(s, &id, 1, buf), rc);
}

/* A disk over a fresh memory store, and a handle on it. */
static dc_fault *new_disk(const dc_fault_options *opts, dc_store **handle) {
    dc_store *mem = NULL;
    dc_fault *f = NULL;
    CHECK_RC(dc_store_new_memory(&mem, BS, TOTAL), DC_OK);
    CHECK_RC(dc_fault_new(&f, mem, opts), DC_OK);
    CHECK_RC(dc_store_new_fault(handle, f), DC_OK);
    return f;
}

static void options(dc_fault_options *o, uint64_t crash_after, int mode) {
    dc_fault_options_init(o);
    o->crash_after = crash_after;
    o->mode = mode;
}

static void test_arguments(void) {
    dc_fault_options o;
    CHECK_RC(dc_fault_options_init(NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fault_options_init(&o), DC_OK);
    CHECK(o.version == DC_FAULT_OPTIONS_VERSION && o.crash_after == 0 &&
          o.mode == DC_FAULT_DROP_VOLATILE && o.fail_after_crash == 0);

    /* The inner store is taken over even when creation fails (ASan checks
     * that nothing leaks). */
    dc_store *mem = NULL;
    dc_fault *f = (dc_fault *)&f;
    CHECK_RC(dc_store_new_memory(&mem, BS, TOTAL), DC_OK);
    o.version = 99;
    CHECK_RC(dc_fault_new(&f, mem, &o), DC_ERR_UNSUPPORTED);
    CHECK(f == NULL);
    CHECK_RC(dc_store_new_memory(&mem, BS, TOTAL), DC_OK);
    options(&o, 0, 7);
    CHECK_RC(dc_fault_new(&f, mem, &o), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_store_new_memory(&mem, BS, TOTAL), DC_OK);
    CHECK_RC(dc_fault_new(NULL, mem, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fault_new(&f, NULL, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK(f == NULL);

    dc_store *s = (dc_store *)&s;
    CHECK_RC(dc_store_new_fault(&s, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_RC(dc_store_new_fault(NULL, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fault_power_off(NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_fault_restart(NULL, NULL), DC_ERR_INVALID_ARGUMENT);
    CHECK(dc_fault_writes(NULL) == 0 && dc_fault_syncs(NULL) == 0 &&
          dc_fault_durable_writes(NULL) == 0 && dc_fault_power_lost(NULL) == 0);
    dc_fault_free(NULL);

    /* A bad restart leaves the disk as it was. */
    f = new_disk(NULL, &s);
    CHECK(dc_store_block_size(s) == BS && dc_store_total_blocks(s) == TOTAL);
    write_one(s, 5, 0x11, DC_OK);
    options(&o, 0, -1);
    CHECK_RC(dc_fault_restart(f, &o), DC_ERR_INVALID_ARGUMENT);
    CHECK(dc_fault_writes(f) == 1 && holds(s, 5, 0x11));
    /* Freed in either order: the handle first here, the disk first below. */
    dc_store_free(s);
    dc_fault_free(f);
    f = new_disk(NULL, &s);
    dc_fault_free(f);
    write_one(s, 5, 0x22, DC_OK);
    CHECK(holds(s, 5, 0x22));
    dc_store_free(s);
}

/* Reads see volatile writes; only a completed sync reaches the inner store;
 * power loss without a crash point, then restart. */
static void test_volatile_and_sync(void) {
    dc_store *s;
    dc_fault *f = new_disk(NULL, &s);
    write_one(s, 4, 0xA1, DC_OK);
    write_one(s, 5, 0xA2, DC_OK);
    write_one(s, 4, 0xA3, DC_OK); /* the same block again */
    CHECK(holds(s, 4, 0xA3) && holds(s, 5, 0xA2));
    CHECK(dc_fault_writes(f) == 3 && dc_fault_durable_writes(f) == 0);
    CHECK_RC(dc_store_sync(s), DC_OK);
    CHECK(dc_fault_syncs(f) == 1 && dc_fault_durable_writes(f) == 3);
    write_one(s, 5, 0xB2, DC_OK);
    write_one(s, 6, 0xB3, DC_OK);
    CHECK(holds(s, 5, 0xB2) && holds(s, 6, 0xB3));
    CHECK(!dc_fault_power_lost(f));
    CHECK_RC(dc_fault_restart(f, NULL), DC_OK); /* DROP_VOLATILE */
    CHECK(!dc_fault_power_lost(f) && dc_fault_writes(f) == 0 &&
          dc_fault_syncs(f) == 0);
    CHECK(holds(s, 4, 0xA3) && holds(s, 5, 0xA2) && holds(s, 6, 0));

    /* Explicit power off; repeated calls are harmless. */
    write_one(s, 7, 0xC1, DC_OK);
    CHECK_RC(dc_fault_power_off(f), DC_OK);
    CHECK(dc_fault_power_lost(f));
    CHECK_RC(dc_fault_power_off(f), DC_OK);
    CHECK(holds(s, 7, 0xC1)); /* the machine still remembers */
    CHECK_RC(dc_fault_restart(f, NULL), DC_OK);
    CHECK(holds(s, 7, 0));
    dc_store_free(s);
    dc_fault_free(f);
}

/* A crash point in the middle of a batch, for each mode. */
static void crash_mid_batch(int mode, uint64_t seed, int fail, int *kept) {
    dc_fault_options o;
    options(&o, 3, mode); /* after the 3rd block of this boot */
    o.seed = seed;
    o.fail_after_crash = fail;
    dc_store *s;
    dc_fault *f = new_disk(NULL, &s);
    write_one(s, 10, 0x01, DC_OK); /* durable before the crash boot */
    write_one(s, 11, 0x01, DC_OK);
    write_one(s, 12, 0x01, DC_OK);
    CHECK_RC(dc_store_sync(s), DC_OK);
    CHECK_RC(dc_fault_restart(f, &o), DC_OK);

    unsigned char buf[5 * BS];
    uint64_t ids[5] = {10, 11, 12, 13, 14};
    for (int i = 0; i < 5; i++)
        fill(buf + i * BS, (unsigned char)(0x20 + i));
    CHECK_RC(dc_store_write_blocks(s, ids, 5, buf), fail ? DC_ERR_IO : DC_OK);
    CHECK(dc_fault_power_lost(f) && dc_fault_writes(f) == 5);
    CHECK_RC(dc_store_sync(s), fail ? DC_ERR_IO : DC_OK);
    CHECK(dc_fault_syncs(f) == 1 && dc_fault_durable_writes(f) == 0);
    /* The machine remembers what it wrote before (and, without errors,
     * after) the loss. */
    CHECK(holds(s, 12, 0x22));
    CHECK(holds(s, 14, fail ? 0 : 0x24));
    write_one(s, 14, 0x34, fail ? DC_ERR_IO : DC_OK);
    CHECK(holds(s, 14, fail ? 0 : 0x34));

    CHECK_RC(dc_fault_restart(f, NULL), DC_OK);
    /* Writes after the crash point never land. */
    CHECK(holds(s, 13, 0) && holds(s, 14, 0));
    unsigned char got[BS];
    for (int i = 0; i < 3; i++) {
        CHECK_RC(dc_store_read_blocks(s, &ids[i], 1, got), DC_OK);
        unsigned char old = 0x01, new = (unsigned char)(0x20 + i);
        size_t n_new = 0;
        while (n_new < BS && got[n_new] == new)
            n_new++;
        int rest_old = 1;
        for (size_t j = n_new; j < BS; j++)
            rest_old &= got[j] == old;
        CHECK(rest_old);
        switch (mode) {
        case DC_FAULT_DROP_VOLATILE:
            CHECK(n_new == 0);
            break;
        case DC_FAULT_KEEP_PREFIX:
            CHECK(n_new == BS);
            break;
        case DC_FAULT_TEAR_LAST:
            CHECK(i < 2 ? n_new == BS : n_new > 0 && n_new < BS);
            break;
        default: /* REORDER: all or nothing per block */
            CHECK(n_new == 0 || n_new == BS);
            kept[i] = n_new == BS;
        }
    }
    dc_store_free(s);
    dc_fault_free(f);
}

static void test_modes(void) {
    int kept[3], again[3], any_kept = 0, any_dropped = 0;
    for (int fail = 0; fail < 2; fail++) {
        crash_mid_batch(DC_FAULT_DROP_VOLATILE, 0, fail, kept);
        crash_mid_batch(DC_FAULT_KEEP_PREFIX, 0, fail, kept);
        crash_mid_batch(DC_FAULT_TEAR_LAST, (uint64_t)fail, fail, kept);
    }
    for (uint64_t seed = 0; seed < 16; seed++) {
        crash_mid_batch(DC_FAULT_REORDER, seed, 0, kept);
        crash_mid_batch(DC_FAULT_REORDER, seed, 1, again);
        CHECK(memcmp(kept, again, sizeof kept) == 0); /* seeded */
        for (int i = 0; i < 3; i++) {
            any_kept |= kept[i];
            any_dropped |= !kept[i];
        }
    }
    CHECK(any_kept && any_dropped);
}

/* A torn write keeps a prefix of the new bytes over the old ones. */
static void test_tear_lengths(void) {
    size_t shortest = BS, longest = 0;
    for (uint64_t seed = 0; seed < 64; seed++) {
        dc_fault_options o;
        options(&o, 2, DC_FAULT_TEAR_LAST);
        o.seed = seed;
        dc_store *s;
        dc_fault *f = new_disk(&o, &s);
        write_one(s, 20, 0x55, DC_OK);
        write_one(s, 20, 0x66, DC_OK); /* torn over the first, volatile */
        CHECK_RC(dc_fault_restart(f, NULL), DC_OK);
        unsigned char got[BS];
        uint64_t id = 20;
        CHECK_RC(dc_store_read_blocks(s, &id, 1, got), DC_OK);
        size_t n = 0;
        while (n < BS && got[n] == 0x66)
            n++;
        for (size_t j = n; j < BS; j++)
            if (got[j] != 0x55) {
                CHECK(got[j] == 0x55);
                break;
            }
        CHECK(n > 0 && n < BS);
        shortest = n < shortest ? n : shortest;
        longest = n > longest ? n : longest;
        dc_store_free(s);
        dc_fault_free(f);
    }
    CHECK(shortest < 64 && longest > BS / 2); /* every scale of length */
}

/* ---- the filesystem over the disk -------------------------------------- */

static size_t read_file(dc_fs *fs, const char *path, unsigned char *buf,
                        size_t cap) {
    size_t n = 0;
    return dc_fs_read(fs, path, 0, buf, cap, &n) == DC_OK ? n : (size_t)-1;
}

/*
 * Format with an empty /f, then (crash boot) write three versions over it,
 * with a sync after the first;
 * remount what the disk kept. /f must be exactly one version, never older
 * than the one synced before the crash.
 */
static void test_fs_crash_sweep(void) {
    enum { VERSIONS = 3, LEN = 6000 };
    static unsigned char data[VERSIONS][LEN], got[LEN + 1];
    for (int v = 0; v < VERSIONS; v++)
        for (int i = 0; i < LEN; i++)
            data[v][i] = (unsigned char)(v * 77 + i * 13);
    uint64_t total = 0, seen[VERSIONS + 1] = {0};
    for (uint64_t n = 1; total == 0 || n <= total; n++) {
        dc_fault_options o;
        options(&o, 0, DC_FAULT_DROP_VOLATILE);
        dc_store *s, *s2, *s3;
        dc_fault *f = new_disk(&o, &s);
        dc_fs *fs;
        CHECK_RC(dc_fs_format(&fs, s, key, NULL), DC_OK);
        CHECK_RC(dc_fs_create(fs, "/f", 0644, 1), DC_OK);
        dc_fs_free(fs);
        options(&o, total == 0 ? 0 : n, (int)(n % 4));
        o.seed = n;
        o.fail_after_crash = (int)(n / 4 % 2);
        CHECK_RC(dc_fault_restart(f, &o), DC_OK);
        CHECK_RC(dc_store_new_fault(&s2, f), DC_OK);
        CHECK_RC(dc_fs_mount(&fs, s2, key, NULL), DC_OK);
        int floor = 0; /* the newest version synced before the crash */
        for (int v = 0; v < VERSIONS; v++) {
            int rc = dc_fs_write(fs, "/f", 0, data[v], LEN);
            if (rc == DC_OK && v == 0 && dc_fs_sync(fs) == DC_OK &&
                !dc_fault_power_lost(f))
                floor = 1;
            if (rc != DC_OK)
                CHECK(o.fail_after_crash && dc_fault_power_lost(f));
        }
        dc_fs_free(fs);
        if (total == 0) { /* the clean run: count the writes */
            total = dc_fault_writes(f);
            CHECK(total > 8 && !dc_fault_power_lost(f));
            n = 0;
            dc_fault_free(f);
            continue;
        }
        CHECK(dc_fault_power_lost(f));
        CHECK_RC(dc_fault_restart(f, NULL), DC_OK);
        CHECK_RC(dc_store_new_fault(&s3, f), DC_OK);
        int rc = dc_fs_mount(&fs, s3, key, NULL);
        CHECK_RC(rc, DC_OK);
        if (rc == DC_OK) {
            dc_fsck_report report;
            CHECK_RC(dc_fs_fsck(fs, &report), DC_OK);
            size_t len = read_file(fs, "/f", got, sizeof got);
            int version = len == 0 ? 0 : -1; /* 0: still empty */
            for (int v = 0; v < VERSIONS; v++)
                if (len == LEN && memcmp(got, data[v], LEN) == 0)
                    version = v + 1;
            CHECK(version >= 0);
            CHECK(version >= floor);
            if (version >= 0)
                seen[version]++;
            dc_fs_free(fs);
        }
        dc_fault_free(f);
    }
    /* Every outcome happened somewhere in the sweep. */
    for (int v = 0; v <= VERSIONS; v++)
        CHECK(seen[v] > 0);
}

void test_fault(void) {
    test_arguments();
    test_volatile_and_sync();
    test_modes();
    test_tear_lengths();
    test_fs_crash_sweep();
}
