/*
 * pool.c — the thread pool that runs a generated forward step.
 *
 * Every thread runs the same forward function (ggml's compute-thread model);
 * kernels split their rows by (ith, nth) and a barrier separates dependent
 * ops.  Work is handed out once per step through a mutex and condition
 * variable; the barrier inside a step spins briefly and then yields, which is
 * cheap when threads <= cores and still fair when the machine is shared.
 * Results do not depend on the thread count: each output element is computed
 * by exactly one thread with the same arithmetic.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gmrt.h"

#define GMRT_MAX_THREADS 256
#define SPINS_BEFORE_YIELD 2000

struct gmrt_pool {
    int n;
    pthread_t *threads;
    /* barrier */
    atomic_int arrived;
    atomic_uint phase;
    /* step hand-out */
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    unsigned generation; /* bumped once per step */
    int n_done;
    bool quit;
    gmk_forward_fn *fn;
    gmk_ctx ctx;
};

typedef struct worker_arg {
    gmrt_pool *pool;
    int ith;
} worker_arg;

static void barrier(void *sync)
{
    gmrt_pool *p = sync;
    if (p->n == 1)
        return;
    unsigned phase = atomic_load_explicit(&p->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) == p->n - 1) {
        atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->phase, 1, memory_order_release);
        return;
    }
    for (int spins = 0;
         atomic_load_explicit(&p->phase, memory_order_acquire) == phase; spins++)
        if (spins > SPINS_BEFORE_YIELD)
            sched_yield();
}

static void *worker(void *arg)
{
    worker_arg *wa = arg;
    gmrt_pool *p = wa->pool;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);

        p->fn(&p->ctx, ith, p->n);

        pthread_mutex_lock(&p->mu);
        if (++p->n_done == p->n - 1)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

gmrt_status gmrt_pool_create(int n_threads, gmrt_pool **out, gmrt_diag *diag)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > GMRT_MAX_THREADS)
        return gmrt_fail(diag, GMRT_ERR_ARG, "thread count %d is out of range [1, %d]",
                         n_threads, GMRT_MAX_THREADS);
    gmrt_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)n_threads, sizeof *p->threads))) {
        free(p);
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory creating %d threads",
                         n_threads);
    }
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? 0 : -1;
        if (wa) {
            *wa = (worker_arg){p, i};
            rc = pthread_create(&p->threads[i], NULL, worker, wa);
            if (rc != 0)
                free(wa);
        }
        if (rc != 0) {
            p->n = i; /* destroy joins only the threads that started */
            gmrt_pool_destroy(p);
            return gmrt_fail(diag, GMRT_ERR_NOMEM, "could not start thread %d of %d",
                             i + 1, n_threads);
        }
    }
    *out = p;
    return GMRT_OK;
}

void gmrt_pool_destroy(gmrt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int gmrt_pool_threads(const gmrt_pool *p) { return p->n; }

void gmrt_pool_run(gmrt_pool *p, gmk_forward_fn *fn, const gmk_ctx *ctx)
{
    p->ctx = *ctx;
    p->ctx.barrier = barrier;
    p->ctx.sync = p;
    p->fn = fn;
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        p->n_done = 0;
        p->generation++;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
    }
    fn(&p->ctx, 0, p->n);
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->n_done < p->n - 1)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
