/*
 * pool.c — the thread pool that runs a generated forward step.
 *
 * Every thread runs the same forward function (ggml's compute-thread model);
 * kernels split their rows by (ith, nth) and a barrier separates dependent
 * ops.  A step is handed out by bumping a generation counter; the end of a
 * step is one more barrier.  Every wait (for a step or at a barrier) spins
 * on its word for a short while, which is what a decode step of a few
 * hundred microseconds needs, and then sleeps on it (a futex on Linux, a
 * condition variable elsewhere), so idle or oversubscribed threads stop
 * burning the CPU.  No mutex is taken on the way unless someone sleeps.
 * Results do not depend on the thread count: each output element is computed
 * by exactly one thread with the same arithmetic.
 *
 * Where the platform has no threads (GMRT_THREADS 0: the wasm32 target), a
 * pool of any size runs every step on the calling thread and nothing ever
 * waits.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gmrt.h"

#if GMRT_THREADS
#include <pthread.h>
#endif

#if GMRT_THREADS && defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define GMRT_POOL_FUTEX 1
#elif GMRT_THREADS
#define GMRT_POOL_CONDVAR 1
#endif

#define GMRT_MAX_THREADS 256
/* Pause-loop iterations before sleeping: some tens of microseconds. */
#define SPINS_BEFORE_SLEEP 4096

/* Barriers passed by every pool of the process (gmrt_pool_barriers): what
 * the cost model multiplies by a barrier's time.  Relaxed: a count, not an
 * order, and one add per barrier is nothing beside the barrier itself. */
static atomic_ullong barriers_passed;

struct gmrt_pool {
    int n;
#if GMRT_THREADS
    pthread_t *threads;
#endif
    /* The words threads wait on, each on its own cache line. */
    _Alignas(64) atomic_uint arrived;  /* threads at the current barrier */
    _Alignas(64) atomic_uint phase;    /* bumped when a barrier opens */
    _Alignas(64) atomic_uint generation; /* bumped once per step and at quit */
    _Alignas(64) atomic_int sleepers;  /* threads asleep (or about to be) */
    atomic_bool quit;
    /* The step: written by thread 0 before the generation bump. */
    gmk_forward_fn *fn;
    gmk_ctx ctx;
    gmrt_task_fn *task;  /* gmrt_pool_run_task's, run through run_task */
    void *task_user;
#ifdef GMRT_POOL_CONDVAR
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
};

typedef struct worker_arg {
    gmrt_pool *pool;
    int ith;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* ------------------------------------------------------ sleeping on a word
 * The waker changes the word and then looks at `sleepers`; a sleeper
 * registers in `sleepers` and then looks at the word (both sequentially
 * consistent), so at least one of them sees the other and no wake-up is
 * lost.  The futex re-checks the word in the kernel. */

static void sleep_on(gmrt_pool *p, atomic_uint *word, unsigned seen)
{
#ifdef GMRT_POOL_FUTEX
    (void)p;
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#elif defined(GMRT_POOL_CONDVAR)
    pthread_mutex_lock(&p->mu);
    while (atomic_load(word) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
#else
    (void)p, (void)word, (void)seen; /* one thread: nobody to wait for */
#endif
}

/* Returns once *word != seen. */
static void wait_for_change(gmrt_pool *p, atomic_uint *word, unsigned seen)
{
    for (int spins = 0; spins < SPINS_BEFORE_SLEEP; spins++) {
        if (atomic_load_explicit(word, memory_order_acquire) != seen)
            return;
        cpu_relax();
    }
    while (atomic_load(word) == seen) {
        atomic_fetch_add(&p->sleepers, 1);
        if (atomic_load(word) == seen)
            sleep_on(p, word, seen);
        atomic_fetch_sub(&p->sleepers, 1);
    }
}

/* Called after changing *word. */
static void wake_all(gmrt_pool *p, atomic_uint *word)
{
    if (atomic_load(&p->sleepers) == 0)
        return;
#ifdef GMRT_POOL_FUTEX
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#elif defined(GMRT_POOL_CONDVAR)
    (void)word;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
#else
    (void)word;
#endif
}

/* ------------------------------------------------------------------ barrier */

static void barrier(void *sync)
{
    gmrt_pool *p = sync;
    if (p->n == 1) {
        atomic_fetch_add_explicit(&barriers_passed, 1, memory_order_relaxed);
        return;
    }
    /* The phase cannot move before this thread arrives. */
    unsigned phase = atomic_load(&p->phase);
    if (atomic_fetch_add(&p->arrived, 1) == (unsigned)p->n - 1) {
        atomic_fetch_add_explicit(&barriers_passed, 1, memory_order_relaxed);
        atomic_store(&p->arrived, 0);
        atomic_fetch_add(&p->phase, 1);
        wake_all(p, &p->phase);
        return;
    }
    wait_for_change(p, &p->phase, phase);
}

#if GMRT_THREADS
static void *worker(void *arg)
{
    worker_arg *wa = arg;
    gmrt_pool *p = wa->pool;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        wait_for_change(p, &p->generation, seen);
        seen = atomic_load(&p->generation);
        if (atomic_load(&p->quit))
            return NULL;
        p->fn(&p->ctx, ith, p->n);
        barrier(p); /* the end of the step */
    }
}

/* Starts worker ith of p with GMRT_THREAD_STACK of stack (gmrt.h), not
 * the platform's default; 0 on success. */
static int start_worker(gmrt_pool *p, int ith)
{
    worker_arg *wa = malloc(sizeof *wa);
    pthread_attr_t attr;
    if (!wa || pthread_attr_init(&attr) != 0) {
        free(wa);
        return -1;
    }
    *wa = (worker_arg){p, ith};
    int rc = pthread_attr_setstacksize(&attr, GMRT_THREAD_STACK);
    if (rc == 0)
        rc = pthread_create(&p->threads[ith], &attr, worker, wa);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        free(wa);
    return rc;
}
#endif

gmrt_status gmrt_pool_create(int n_threads, gmrt_pool **out, gmrt_diag *diag)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > GMRT_MAX_THREADS)
        return gmrt_fail(diag, GMRT_ERR_ARG, "thread count %d is out of range [1, %d]",
                         n_threads, GMRT_MAX_THREADS);
    gmrt_pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
    if (!p)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory creating %d threads",
                         n_threads);
    memset(p, 0, sizeof *p);
#if GMRT_THREADS
    if (!(p->threads = calloc((size_t)n_threads, sizeof *p->threads))) {
        free(p);
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory creating %d threads",
                         n_threads);
    }
#else
    n_threads = 1; /* the calling thread runs every step */
#endif
    p->n = n_threads;
#ifdef GMRT_POOL_CONDVAR
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
#endif
#if GMRT_THREADS
    for (int i = 1; i < n_threads; i++) {
        if (start_worker(p, i) != 0) {
            p->n = i; /* destroy joins only the threads that started */
            gmrt_pool_destroy(p);
            return gmrt_fail(diag, GMRT_ERR_NOMEM, "could not start thread %d of %d",
                             i + 1, n_threads);
        }
    }
#endif
    *out = p;
    return GMRT_OK;
}

void gmrt_pool_destroy(gmrt_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->quit, true);
    atomic_fetch_add(&p->generation, 1);
    wake_all(p, &p->generation);
#if GMRT_THREADS
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
#endif
#ifdef GMRT_POOL_CONDVAR
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
#endif
    free(p);
}

int gmrt_pool_threads(const gmrt_pool *p) { return p->n; }

/* A task as a step: the workers run whatever fn the step names, and
 * ctx->sync is the pool (gmrt_pool_run). */
static void run_task(const gmk_ctx *ctx, int ith, int nth)
{
    const gmrt_pool *p = ctx->sync;
    p->task(p->task_user, ith, nth);
}

void gmrt_pool_run_task(gmrt_pool *p, gmrt_task_fn *fn, void *user)
{
    gmk_ctx none = {0};
    p->task = fn;
    p->task_user = user;
    gmrt_pool_run(p, run_task, &none);
}

uint64_t gmrt_pool_barriers(void) { return atomic_load(&barriers_passed); }

void gmrt_pool_run(gmrt_pool *p, gmk_forward_fn *fn, const gmk_ctx *ctx)
{
    p->ctx = *ctx;
    p->ctx.barrier = barrier;
    p->ctx.sync = p;
    p->fn = fn;
    if (p->n > 1) {
        atomic_fetch_add(&p->generation, 1); /* publishes fn and ctx */
        wake_all(p, &p->generation);
    }
    fn(&p->ctx, 0, p->n);
    barrier(p); /* every worker has finished the step */
}
