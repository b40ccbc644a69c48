/*
 * doublecrypt/fault.h - a simulated disk that loses power, for testing crash
 * consistency.
 *
 * A dc_fault is a disk with a volatile write cache in front of another store
 * (the "platter"). Writes since the last completed sync are volatile: reads
 * see them, as they would see a disk's cache, but they are not on the inner
 * store yet. A completed dc_store_sync makes them durable: they are written
 * to the inner store in one go, then the inner store is synced.
 *
 * Power loss: right after block write number crash_after (counting blocks,
 * not calls, from 1 since the disk was created or last restarted), or when
 * dc_fault_power_off is called, the disk decides what survives of the
 * volatile writes (the mode below), writes exactly that to the inner store
 * and syncs it. From then on the machine "runs on" without a disk: writes
 * and syncs are dropped (returning DC_OK, or DC_ERR_IO with
 * fail_after_crash), while reads still see everything the machine wrote, so
 * an engine keeps going as if it had not noticed. The inner store now holds
 * exactly what the disk kept; dc_fault_restart powers the disk on again over
 * it, so a fresh store handle can remount the survivor.
 *
 * Ownership: dc_fault_new takes over the inner store (freed with the disk,
 * also when dc_fault_new fails). Store handles from dc_store_new_fault may be
 * handed to dc_fs_format/dc_fs_mount (which take them over); each handle and
 * the caller's dc_fault reference keep the disk alive, so the getters and
 * dc_fault_restart stay usable after a filesystem has freed its handle. The
 * disk and its inner store are freed when dc_fault_free and every handle's
 * dc_store_free have happened, in any order.
 *
 * Thread safety: a dc_fault has its own lock; its handles and getters may be
 * used from any thread.
 */
#ifndef DOUBLECRYPT_FAULT_H
#define DOUBLECRYPT_FAULT_H

#include <stdint.h>

#include "export.h"
#include "store.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_FAULT_OPTIONS_VERSION 1

/* What the inner store keeps of the volatile writes when power is lost: */
/* none of them; */
#define DC_FAULT_DROP_VOLATILE 0
/* all of them, in order (every write up to the crash point); */
#define DC_FAULT_KEEP_PREFIX 1
/* all of them, but the last block only partly: a random-length prefix of its
 * new bytes over its old bytes (1 to block_size - 1 bytes, every
 * power-of-two scale of length equally likely); */
#define DC_FAULT_TEAR_LAST 2
/* a random subset (each write kept with probability 1/2, independently), as
 * a disk that reorders its cache would leave. */
#define DC_FAULT_REORDER 3

typedef struct dc_fault dc_fault;

typedef struct dc_fault_options {
    /* DC_FAULT_OPTIONS_VERSION */
    unsigned int version;
    /* Lose power right after block write number crash_after of this boot
     * (1 = the first block written); 0 = never (only dc_fault_power_off). */
    uint64_t crash_after;
    /* DC_FAULT_DROP_VOLATILE (the default) ... DC_FAULT_REORDER. */
    int mode;
    /* After power loss: non-zero makes writes and syncs fail with
     * DC_ERR_IO; zero (the default) returns DC_OK and drops them. */
    int fail_after_crash;
    /* Seeds the random choices of DC_FAULT_TEAR_LAST and DC_FAULT_REORDER;
     * the same seed and writes give the same survivors. */
    uint64_t seed;
} dc_fault_options;

/** Defaults: never crash, DC_FAULT_DROP_VOLATILE, DC_OK after power loss. */
DC_API int dc_fault_options_init(dc_fault_options *opts);

/**
 * A simulated disk over `inner`, which it takes over (freed with the disk,
 * also when this call fails). `opts` may be NULL for the defaults.
 * DC_ERR_UNSUPPORTED for an unknown options version, DC_ERR_INVALID_ARGUMENT
 * for a NULL inner or an unknown mode, DC_ERR_NO_MEMORY.
 */
DC_API int dc_fault_new(dc_fault **out, dc_store *inner,
                        const dc_fault_options *opts);

/**
 * A new store handle on the disk (same geometry as the inner store). It
 * keeps the disk alive until it is freed. DC_ERR_INVALID_ARGUMENT,
 * DC_ERR_NO_MEMORY.
 */
DC_API int dc_store_new_fault(dc_store **out, dc_fault *fault);

/**
 * Lose power now (if it has not happened yet): the mode decides what the
 * inner store keeps of the volatile writes. DC_OK, or the inner store's
 * error if writing the survivors to it failed; calling it again returns the
 * same status.
 */
DC_API int dc_fault_power_off(dc_fault *fault);

/**
 * Power the disk on again with new options (NULL: the defaults): power is
 * lost first if it was not (as dc_fault_power_off, with the old mode), what
 * the machine remembered is forgotten so reads see only the inner store, and
 * the counters start again at 0. Handles made before keep working on the new
 * boot; the usual order is to free the filesystem of the old boot, restart,
 * then mount a new handle. Errors as dc_fault_new (the disk is then
 * unchanged) or as dc_fault_power_off.
 */
DC_API int dc_fault_restart(dc_fault *fault, const dc_fault_options *opts);

/** Block writes seen in this boot, including those dropped after power
 * loss. */
DC_API uint64_t dc_fault_writes(const dc_fault *fault);

/** Sync calls seen in this boot, including those dropped after power
 * loss. */
DC_API uint64_t dc_fault_syncs(const dc_fault *fault);

/**
 * The write count at the last sync that completed in this boot: block
 * writes 1..dc_fault_durable_writes are on the inner store whatever the
 * mode. 0 before the first sync.
 */
DC_API uint64_t dc_fault_durable_writes(const dc_fault *fault);

/** 1 once power has been lost in this boot, else 0. */
DC_API int dc_fault_power_lost(const dc_fault *fault);

/** Drop the caller's reference (see Ownership above). NULL is a no-op. */
DC_API void dc_fault_free(dc_fault *fault);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_FAULT_H */
