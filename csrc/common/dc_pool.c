/*
 * dc_pool.c - a fixed pool of worker threads for batch calls.
 *
 * One batch runs at a time. Items are claimed with an atomic counter, so
 * uneven item costs balance themselves; the calling thread works too, which
 * makes a pool of N threads use N-1 workers.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct dc__pool {
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    pthread_mutex_t batch_lock; /* held by the caller owning the workers */
    pthread_t *workers;
    unsigned int nworkers;
    unsigned long generation; /* bumped for each batch */
    int open;                 /* the current batch still takes helpers */
    unsigned int joined;      /* workers inside the current batch */
    int stopping;
    dc__pool_fn fn;
    void *ctx;
    size_t count;
    atomic_size_t next;
};

static void run_items(dc__pool *pool, dc__pool_fn fn, void *ctx, size_t count) {
    for (;;) {
        size_t i =
            atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (i >= count)
            return;
        fn(ctx, i);
    }
}

static void *worker_main(void *arg) {
    dc__pool *pool = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && pool->generation == seen)
            pthread_cond_wait(&pool->work_ready, &pool->lock);
        if (pool->stopping)
            break;
        seen = pool->generation;
        /* A worker that wakes after the caller finished stays out: the
         * caller waits only for workers that joined, never for wake-ups. */
        if (!pool->open)
            continue;
        pool->joined++;
        dc__pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        size_t count = pool->count;
        pthread_mutex_unlock(&pool->lock);
        run_items(pool, fn, ctx, count);
        pthread_mutex_lock(&pool->lock);
        if (--pool->joined == 0)
            pthread_cond_signal(&pool->work_done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

unsigned int dc__online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > DC_CODEC_MAX_THREADS ? DC_CODEC_MAX_THREADS : (unsigned int)n;
}

int dc__pool_new(dc__pool **out, unsigned int threads) {
    *out = NULL;
    if (threads <= 1)
        return DC_OK; /* a NULL pool runs on the caller */
    dc__pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return DC_ERR_NO_MEMORY;
    pool->workers = calloc(threads - 1, sizeof *pool->workers);
    if (pool->workers == NULL) {
        free(pool);
        return DC_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->batch_lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    atomic_init(&pool->next, 0);
    for (unsigned int i = 0; i < threads - 1; i++) {
        if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0)
            break; /* run with the workers we got */
        pool->nworkers++;
    }
    *out = pool;
    return DC_OK;
}

void dc__pool_free(dc__pool *pool) {
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned int i = 0; i < pool->nworkers; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->work_ready);
    pthread_cond_destroy(&pool->work_done);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->batch_lock);
    free(pool->workers);
    free(pool);
}

void dc__pool_run(dc__pool *pool, size_t count, dc__pool_fn fn, void *ctx) {
    if (pool == NULL || pool->nworkers == 0 || count < 2 ||
        pthread_mutex_trylock(&pool->batch_lock) != 0) {
        for (size_t i = 0; i < count; i++)
            fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->count = count;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    pool->joined = 0;
    pool->open = 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);

    run_items(pool, fn, ctx, count);

    pthread_mutex_lock(&pool->lock);
    pool->open = 0;
    while (pool->joined > 0)
        pthread_cond_wait(&pool->work_done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->batch_lock);
}
