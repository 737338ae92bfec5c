/*
 * test_pool.c — suite "pool": runtime/pool.c and the roofline's sanity.
 *
 * A synthetic forward step runs a stencil over a shared array in several
 * barrier-separated phases: each element reads its neighbours, which other
 * threads wrote in the previous phase, so a barrier that opens early (or a
 * step handed out twice or not at all) changes the result.  Thousands of
 * steps at 1..4 threads, with pauses that make threads fall asleep at the
 * step hand-out and at barriers, must match a plain single-threaded loop.
 */
#define _GNU_SOURCE /* pthread_setattr_default_np */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmrt_tools.h"

#define N_ELEM 1003 /* not a multiple of any thread count tested */
#define N_PHASES 5
#define MAX_TH 4

typedef struct stencil {
    uint64_t buf[2][N_ELEM];
    int calls[MAX_TH];          /* steps each thread ran (its own slot only) */
    int sleep_us;               /* thread 0 dawdles before each barrier */
} stencil;

static uint64_t stencil_cell(const uint64_t *src, int i, int32_t pos, int ph)
{
    return src[i] * 31u + src[(i + 1) % N_ELEM] * 7u + src[(i + N_ELEM - 1) % N_ELEM] +
           (uint64_t)pos * 1000003u + (uint64_t)ph;
}

static void nap_us(int us)
{
    struct timespec ts = {0, (long)us * 1000L};
    nanosleep(&ts, NULL);
}

/* The forward step: state in ctx->arena, step number in ctx->pos. */
static void stencil_forward(const gmk_ctx *c, int ith, int nth)
{
    stencil *s = (stencil *)(void *)c->arena;
    int lo = N_ELEM * ith / nth, hi = N_ELEM * (ith + 1) / nth;
    s->calls[ith]++;
    for (int ph = 0; ph < N_PHASES; ph++) {
        const uint64_t *src = s->buf[ph % 2];
        uint64_t *dst = s->buf[(ph + 1) % 2];
        for (int i = lo; i < hi; i++)
            dst[i] = stencil_cell(src, i, c->pos, ph);
        if (ith == 0 && s->sleep_us)
            nap_us(s->sleep_us);
        c->barrier(c->sync);
    }
}

static void stencil_reference(uint64_t *a, int steps)
{
    uint64_t tmp[N_ELEM];
    for (int step = 0; step < steps; step++)
        for (int ph = 0; ph < N_PHASES; ph++) {
            for (int i = 0; i < N_ELEM; i++)
                tmp[i] = stencil_cell(a, i, step, ph);
            memcpy(a, tmp, sizeof tmp);
        }
}

static void stencil_init(uint64_t *a)
{
    for (int i = 0; i < N_ELEM; i++)
        a[i] = (uint64_t)i * 2654435761u + 1;
}

/* Runs `steps` steps on nth threads; every `gap_every` steps the caller
 * pauses so that idle workers go to sleep. */
static void check_stencil(int nth, int steps, int gap_every, int sleep_us)
{
    stencil *s = calloc(1, sizeof *s);
    uint64_t *ref = malloc(sizeof s->buf[0]);
    ck_assert(s && ref);
    stencil_init(s->buf[0]);
    memcpy(ref, s->buf[0], sizeof s->buf[0]);
    s->sleep_us = sleep_us;
    gmrt_pool *p = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_pool_create(nth, &p, &d), GMRT_OK);
    ck_assert_int_eq(gmrt_pool_threads(p), nth);
    for (int step = 0; step < steps; step++) {
        gmk_ctx c = {.arena = (unsigned char *)s, .pos = step};
        gmrt_pool_run(p, stencil_forward, &c);
        /* N_PHASES is odd: the result is in buf[1]; carry it to buf[0]. */
        memcpy(s->buf[0], s->buf[N_PHASES % 2], sizeof s->buf[0]);
        if (gap_every && step % gap_every == gap_every - 1)
            nap_us(2000);
    }
    gmrt_pool_destroy(p);
    stencil_reference(ref, steps);
    for (int i = 0; i < N_ELEM; i++)
        ck_assert_msg(s->buf[0][i] == ref[i], "threads %d: element %d differs", nth, i);
    for (int t = 0; t < nth; t++)
        ck_assert_msg(s->calls[t] == steps, "threads %d: thread %d ran %d of %d steps",
                      nth, t, s->calls[t], steps);
    free(ref);
    free(s);
}

START_TEST(many_steps_1_to_4_threads)
{
    for (int nth = 1; nth <= MAX_TH; nth++)
        check_stencil(nth, 1000, 0, 0);
}
END_TEST

/* Pauses between steps put workers to sleep on the hand-out; a slow thread 0
 * puts the others to sleep at the barriers. */
START_TEST(sleeping_workers_wake)
{
    for (int nth = 2; nth <= MAX_TH; nth++) {
        check_stencil(nth, 40, 7, 0);
        check_stencil(nth, 12, 0, 3000);
    }
}
END_TEST

/* gmrt_pool_run_task: every thread runs the task once per call with its
 * own ith and the pool's nth, and the call returns after all of them. */
typedef struct task_log {
    atomic_int runs[MAX_TH];
    atomic_int bad;
    int nth;
} task_log;

static void log_task(void *user, int ith, int nth)
{
    task_log *t = user;
    if (nth != t->nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&t->bad, 1);
    else
        atomic_fetch_add(&t->runs[ith], 1);
}

START_TEST(tasks_between_steps)
{
    for (int nth = 1; nth <= MAX_TH; nth++) {
        gmrt_pool *p = NULL;
        gmrt_diag d = {0};
        ck_assert_int_eq(gmrt_pool_create(nth, &p, &d), GMRT_OK);
        task_log t = {.nth = gmrt_pool_threads(p)};
        for (int i = 0; i < 200; i++) {
            gmrt_pool_run_task(p, log_task, &t);
            for (int k = 0; k < t.nth; k++)
                ck_assert_int_eq(atomic_load(&t.runs[k]), i + 1);
        }
        ck_assert_int_eq(atomic_load(&t.bad), 0);
        gmrt_pool_destroy(p);
    }
}
END_TEST

/* Every worker has GMRT_STEP_STACK bytes of stack to spare, whatever the
 * platform's default for new threads (musl gives 128 KiB, less than a
 * step's kernels use): here the default is cut to 64 KiB (glibc only) and
 * each worker fills that much of its stack. */
static atomic_int deep_runs;

static void deep_task(void *user, int ith, int nth)
{
    (void)user, (void)nth;
    if (ith == 0) /* the caller's stack is the caller's business */
        return;
    volatile unsigned char buf[GMRT_STEP_STACK - ((size_t)16 << 10)];
    for (size_t i = 0; i < sizeof buf; i += 512)
        buf[i] = (unsigned char)(i >> 9);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof buf; i += 512)
        sum += buf[i];
    atomic_fetch_add(&deep_runs, sum != 0);
}

START_TEST(workers_have_step_stack)
{
#ifdef __GLIBC__
    pthread_attr_t small, was;
    ck_assert_int_eq(pthread_getattr_default_np(&was), 0);
    ck_assert_int_eq(pthread_attr_init(&small), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&small, (size_t)64 << 10), 0);
    ck_assert_int_eq(pthread_setattr_default_np(&small), 0);
#endif
    gmrt_pool *p = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_pool_create(3, &p, &d), GMRT_OK);
    gmrt_pool_run_task(p, deep_task, NULL);
    ck_assert_int_eq(atomic_load(&deep_runs), gmrt_pool_threads(p) - 1);
    gmrt_pool_destroy(p);
#ifdef __GLIBC__
    ck_assert_int_eq(pthread_setattr_default_np(&was), 0); /* for CK_FORK=no */
    pthread_attr_destroy(&small);
    pthread_attr_destroy(&was);
#endif
}
END_TEST

START_TEST(create_and_destroy_repeatedly)
{
    for (int i = 0; i < 50; i++) {
        gmrt_pool *p = NULL;
        gmrt_diag d = {0};
        ck_assert_int_eq(gmrt_pool_create(1 + i % MAX_TH, &p, &d), GMRT_OK);
        gmrt_pool_destroy(p);
    }
}
END_TEST

START_TEST(bad_thread_counts)
{
    gmrt_pool *p = (gmrt_pool *)1;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_pool_create(0, &p, &d), GMRT_ERR_ARG);
    ck_assert_ptr_null(p);
    ck_assert(strstr(d.msg, "thread count 0") != NULL);
    ck_assert_int_eq(gmrt_pool_create(100000, &p, &d), GMRT_ERR_ARG);
}
END_TEST

/* The roofline on a small buffer: positive, finite numbers and named
 * instructions (no timing thresholds: the machine is shared). */
START_TEST(roofline_is_sane)
{
    gmrt_roofline r;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_roofline_measure(2, (size_t)8 << 20, 2, &r, &d), GMRT_OK);
    ck_assert_int_eq(r.n_threads, 2);
    ck_assert(r.bw_best_gbs > 0 && r.bw_best_gbs < 1e5);
    ck_assert(r.bw_median_gbs > 0 && r.bw_median_gbs <= r.bw_best_gbs);
    ck_assert(r.int8_gops > 0 && r.bf16_gflops > 0 && r.f32_gflops > 0);
    ck_assert(r.int8_gops < 1e7 && r.f32_gflops < 1e7);
    ck_assert(r.bw_insn && r.int8_insn && r.bf16_insn && r.f32_insn);
    ck_assert_int_eq(r.bw_bytes % (64 * 8 * 2), 0);
    ck_assert_int_eq(gmrt_roofline_measure(0, 1 << 20, 2, &r, &d), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_roofline_measure(1, 1 << 20, 0, &r, &d), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_roofline_measure(1, 16, 1, &r, &d), GMRT_ERR_ARG);
}
END_TEST

Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, many_steps_1_to_4_threads);
    tcase_add_test(tc, sleeping_workers_wake);
    tcase_add_test(tc, tasks_between_steps);
    tcase_add_test(tc, workers_have_step_stack);
    tcase_add_test(tc, create_and_destroy_repeatedly);
    tcase_add_test(tc, bad_thread_counts);
    tcase_add_test(tc, roofline_is_sane);
    suite_add_tcase(s, tc);
    return s;
}
