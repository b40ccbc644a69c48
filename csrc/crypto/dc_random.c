/*
 * dc_random.c - bulk random bytes from an XChaCha20 keystream.
 *
 * randombytes_buf manages ~230 MB/s on the development machines; padding
 * every block and filling new images needs several GB/s. The generator key
 * comes from the system RNG once per process (again in a forked child, told
 * by a pthread_atfork handler, so parent and child never share a stream);
 * every call takes a fresh nonce from an atomic counter, so concurrent calls
 * never overlap and need no lock.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

#define NONCE_PREFIX_BYTES 16

static struct {
    unsigned char *key; /* sodium_malloc'd: crypto_stream_xchacha20_KEYBYTES */
    unsigned char nonce_prefix[NONCE_PREFIX_BYTES];
    atomic_ullong counter;
    atomic_int seeded; /* cleared in a forked child (no getpid per call) */
    pthread_mutex_t reseed_lock;
} rng = {.reseed_lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forked_child(void) { atomic_store(&rng.seeded, 0); }

static void register_atfork(void) { pthread_atfork(NULL, NULL, forked_child); }

static void reseed_locked(void) {
    if (rng.key == NULL) {
        rng.key = sodium_malloc(crypto_stream_xchacha20_KEYBYTES);
        if (rng.key == NULL)
            sodium_misuse(); /* aborts: no safe fallback for a CSPRNG */
    }
    randombytes_buf(rng.key, crypto_stream_xchacha20_KEYBYTES);
    randombytes_buf(rng.nonce_prefix, sizeof rng.nonce_prefix);
    atomic_store(&rng.counter, 0);
    atomic_store(&rng.seeded, 1);
}

static void ensure_seeded(void) {
    if (atomic_load_explicit(&rng.seeded, memory_order_acquire))
        return;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&rng.reseed_lock);
    if (!atomic_load(&rng.seeded)) {
        if (sodium_init() < 0)
            sodium_misuse();
        reseed_locked();
    }
    pthread_mutex_unlock(&rng.reseed_lock);
}

void dc__random_fill(unsigned char *buf, size_t len) {
    unsigned char nonce[crypto_stream_xchacha20_NONCEBYTES];
    if (len == 0)
        return;
    ensure_seeded();
    unsigned long long n = atomic_fetch_add(&rng.counter, 1);
    memcpy(nonce, rng.nonce_prefix, NONCE_PREFIX_BYTES);
    dc__store_u64le(nonce + NONCE_PREFIX_BYTES, (uint64_t)n);
    crypto_stream_xchacha20(buf, len, nonce, rng.key);
}

int dc_random_fill(unsigned char *buf, size_t len) {
    if (buf == NULL && len > 0)
        return DC_ERR_INVALID_ARGUMENT;
    dc__random_fill(buf, len);
    return DC_OK;
}
