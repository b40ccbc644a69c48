/*
 * bench_aead.c - the physical limit for the block codec: raw libsodium
 * XChaCha20-Poly1305 (IETF) encrypt and decrypt, no envelope, no Python.
 *
 * For every operation (seal, open), message size (4096, 65536 bytes) and
 * thread count (1, 2) the threads start together behind a barrier and each
 * runs the operation on its own buffers, with its own key, until a fixed wall
 * time has passed. Each message carries 32 bytes of associated data, as the
 * codec's does (volume id, block id, header). Throughput is plaintext bytes
 * / 1e6 / seconds, summed over the threads, with seconds measured from the
 * earliest thread start to the latest thread end.
 *
 * Usage: bench_aead [seconds-per-case]   (default 0.5)
 * Output: one JSON object on stdout,
 *   {"seal": {"4096": {"1": MBps, "2": MBps}, "65536": {...}}, "open": {...}}
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror $(pkg-config --cflags
 *        libsodium) bench_aead.c -o bench_aead $(pkg-config --libs
 *        libsodium) -pthread
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define AD_BYTES 32
#define MAX_THREADS 2
#define DEFAULT_SECONDS 0.5

enum op { OP_SEAL, OP_OPEN, OP_COUNT };

static const char *const op_names[OP_COUNT] = {"seal", "open"};
static const size_t sizes[] = {4096, 65536};
static const unsigned int thread_counts[] = {1, 2};

#define NSIZES (sizeof sizes / sizeof sizes[0])
#define NTHREAD_COUNTS (sizeof thread_counts / sizeof thread_counts[0])

struct worker {
    pthread_t thread;
    pthread_barrier_t *start_barrier;
    enum op op;
    size_t size;
    double seconds;
    /* results */
    unsigned long long messages;
    double start;
    double end;
    int failed;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct buffers {
    unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    unsigned char ad[AD_BYTES];
    unsigned char *plain;
    unsigned char *cipher;
    unsigned char *opened;
};

/* The timed loop: run w->op until w->seconds have passed. */
static void measure(struct worker *w, struct buffers *b) {
    const size_t size = w->size;
    const size_t cipher_len = size + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    const double start = now_seconds();
    const double deadline = start + w->seconds;
    unsigned long long messages = 0;

    do {
        if (w->op == OP_SEAL) {
            /* A fresh nonce per message, as a real sealer would use. */
            sodium_increment(b->nonce, sizeof b->nonce);
            crypto_aead_xchacha20poly1305_ietf_encrypt(
                b->cipher, NULL, b->plain, size, b->ad, sizeof b->ad, NULL,
                b->nonce, b->key);
        } else if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                       b->opened, NULL, NULL, b->cipher, cipher_len, b->ad,
                       sizeof b->ad, b->nonce, b->key) != 0) {
            w->failed = 1;
            return;
        }
        messages++;
    } while (now_seconds() < deadline);
    w->end = now_seconds();
    w->start = start;
    w->messages = messages;
    if (w->op == OP_OPEN && memcmp(b->opened, b->plain, size) != 0)
        w->failed = 1;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct buffers b;

    /* Each thread allocates and touches its own buffers before the clock
     * starts. */
    b.plain = malloc(w->size);
    b.cipher = malloc(w->size + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    b.opened = malloc(w->size);
    if (b.plain == NULL || b.cipher == NULL || b.opened == NULL) {
        w->failed = 1;
    } else {
        crypto_aead_xchacha20poly1305_ietf_keygen(b.key);
        randombytes_buf(b.nonce, sizeof b.nonce);
        randombytes_buf(b.ad, sizeof b.ad);
        randombytes_buf(b.plain, w->size);
        memset(b.opened, 0, w->size);
        crypto_aead_xchacha20poly1305_ietf_encrypt(b.cipher, NULL, b.plain,
                                                   w->size, b.ad, sizeof b.ad,
                                                   NULL, b.nonce, b.key);
    }

    /* Every thread must reach the barrier, even one that failed. */
    pthread_barrier_wait(w->start_barrier);
    if (!w->failed)
        measure(w, &b);

    sodium_memzero(b.key, sizeof b.key);
    free(b.plain);
    free(b.cipher);
    free(b.opened);
    return NULL;
}

/* Run one case; returns MB/s, or a negative value on failure. */
static double run_case(enum op op, size_t size, unsigned int nthreads,
                       double seconds) {
    struct worker workers[MAX_THREADS];
    pthread_barrier_t barrier;
    int failed = 0;

    if (pthread_barrier_init(&barrier, NULL, nthreads) != 0)
        return -1.0;
    memset(workers, 0, sizeof workers);
    for (unsigned int i = 0; i < nthreads; i++) {
        workers[i].start_barrier = &barrier;
        workers[i].op = op;
        workers[i].size = size;
        workers[i].seconds = seconds;
        if (pthread_create(&workers[i].thread, NULL, worker_main,
                           &workers[i]) != 0) {
            /* Threads already started would wait at the barrier for ever. */
            fprintf(stderr, "bench_aead: pthread_create failed\n");
            exit(EXIT_FAILURE);
        }
    }

    double first_start = 0.0;
    double last_end = 0.0;
    unsigned long long messages = 0;
    for (unsigned int i = 0; i < nthreads; i++) {
        pthread_join(workers[i].thread, NULL);
        if (workers[i].failed) {
            failed = 1;
            continue;
        }
        if (i == 0 || workers[i].start < first_start)
            first_start = workers[i].start;
        if (workers[i].end > last_end)
            last_end = workers[i].end;
        messages += workers[i].messages;
    }
    pthread_barrier_destroy(&barrier);
    if (failed || last_end <= first_start)
        return -1.0;
    return (double)messages * (double)size / 1e6 / (last_end - first_start);
}

static int parse_seconds(const char *arg, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v > 0.0) || v > 3600.0)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    double seconds = DEFAULT_SECONDS;
    double results[OP_COUNT][NSIZES][NTHREAD_COUNTS];

    if (argc > 2 || (argc == 2 && parse_seconds(argv[1], &seconds) != 0)) {
        fprintf(stderr, "usage: %s [seconds-per-case (0 < s <= 3600)]\n",
                argc > 0 ? argv[0] : "bench_aead");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_aead: sodium_init failed\n");
        return 1;
    }

    /* Let the CPU clock settle before the first measured case. */
    if (run_case(OP_SEAL, sizes[NSIZES - 1], 1, seconds / 4) < 0) {
        fprintf(stderr, "bench_aead: warm-up failed\n");
        return 1;
    }
    for (int op = 0; op < OP_COUNT; op++) {
        for (size_t s = 0; s < NSIZES; s++) {
            for (size_t t = 0; t < NTHREAD_COUNTS; t++) {
                double mbps =
                    run_case((enum op)op, sizes[s], thread_counts[t], seconds);
                if (mbps < 0) {
                    fprintf(stderr,
                            "bench_aead: %s %zu bytes %u threads "
                            "failed\n",
                            op_names[op], sizes[s], thread_counts[t]);
                    return 1;
                }
                results[op][s][t] = mbps;
            }
        }
    }

    putchar('{');
    for (int op = 0; op < OP_COUNT; op++) {
        printf("%s\"%s\": {", op ? ", " : "", op_names[op]);
        for (size_t s = 0; s < NSIZES; s++) {
            printf("%s\"%zu\": {", s ? ", " : "", sizes[s]);
            for (size_t t = 0; t < NTHREAD_COUNTS; t++)
                printf("%s\"%u\": %.1f", t ? ", " : "", thread_counts[t],
                       results[op][s][t]);
            putchar('}');
        }
        putchar('}');
    }
    printf("}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
