/*
 * kernel-bench.c — times gmk_matmul_rows of gmk_x86.h against the reference.
 *
 * One thread, timed in thread CPU time.  For each weight type: a GEMV (n_tok = 1) reported as GB/s of
 * weights streamed, and a 64-token product reported as GOP/s (2 ops per
 * multiply-add), min and median over repetitions, next to
 * gmk_ref_matmul_rows (f32 activations, dequantized weights).  Built by the
 * CMake target kernel_bench with the flags of the best x86 profile; not run
 * by the tests.  Usage: kernel_bench [reps [types]] (default 7 reps, every
 * type; types a comma-separated list, such as q4_kp8,q4_kp16 to compare
 * two in one run; type "head" runs only the 262144×640 q8_0 LM head,
 * "headpacked" the same in packed rows).  Types ending in "p" or "p16" (and
 * the head, where built with AVX-512 VNNI) time the repacked GMK_LAYOUT_P16
 * weights that x86-64-v4-vnni models read, in "p8" (and the head, built
 * for AVX2) the GMK_LAYOUT_P8 weights of x86-64-v3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmk_x86.h"

static uint64_t rng_state = 42;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_unit(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

/* Thread CPU time, not wall time: on a shared machine the thread's time
 * off the CPU would otherwise swamp the differences measured. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Random weights: float types from random floats, block types from random
 * bits with their f16 scales overwritten by small finite values. */
static void fill_weights(uint8_t *w, int dtype, int64_t n_out, int64_t n_in)
{
    int64_t blk = gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype);
    size_t nb = (size_t)(n_out * (n_in / blk));
    for (size_t i = 0; i < nb; i++) {
        uint8_t *p = w + i * bb;
        if (dtype == GMK_DTYPE_F32) {
            float f = rng_unit();
            memcpy(p, &f, 4);
            continue;
        }
        if (dtype == GMK_DTYPE_F16 || dtype == GMK_DTYPE_BF16) {
            uint16_t h = dtype == GMK_DTYPE_F16 ? gmk_f32_to_f16(rng_unit())
                                                : gmk_f32_to_bf16(rng_unit());
            memcpy(p, &h, 2);
            continue;
        }
        for (size_t j = 0; j < bb; j++)
            p[j] = (uint8_t)rng_next();
        uint16_t d = gmk_f32_to_f16(0.01f * rng_unit());
        size_t off = dtype == GMK_DTYPE_Q6_K ? 208 : 0;
        memcpy(p + off, &d, 2);
        if (dtype == GMK_DTYPE_Q4_1 || dtype == GMK_DTYPE_Q5_1 || dtype == GMK_DTYPE_Q4_K ||
            dtype == GMK_DTYPE_Q5_K)
            memcpy(p + 2, &d, 2);
    }
}

typedef struct bench_case {
    const char *name;
    int dtype, fmt;
    int64_t n_out, n_in;
    int layout; /* GMK_LAYOUT_*: the kernel reads a repacked copy */
} bench_case;

/* min and median seconds of reps runs of one product. */
static void time_runs(int reps, int use_ref, float *y, const uint8_t *w, const bench_case *c,
                      const void *xq, const float *x, int n_tok, double *out_min,
                      double *out_med)
{
    /* the kernel gets the repacked copy (after the packed rows) */
    const uint8_t *wk = c->layout ? w + (size_t)gmk_layout_bytes(GMK_LAYOUT_PACKED, c->dtype,
                                                                 c->n_out, c->n_in) : w;
    double t[64];
    reps = reps > 64 ? 64 : reps;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (use_ref)
            gmk_ref_matmul_rows(y, c->n_out, w, c->dtype, x, n_tok, 0, c->n_out, c->n_in);
        else
            gmk_matmul_rows(y, c->n_out, wk, c->dtype | c->layout, xq, c->fmt, n_tok, 0,
                            c->n_out, c->n_in);
        t[r] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *out_min = t[0];
    *out_med = t[reps / 2];
}

static void run_case(const bench_case *c, int n_tok, int reps)
{
    size_t wbytes = (size_t)(c->n_out * (c->n_in / gmk_dtype_block(c->dtype))) *
                    gmk_dtype_block_bytes(c->dtype);
    size_t pbytes = c->layout ? (size_t)gmk_layout_bytes(c->layout, c->dtype, c->n_out, c->n_in)
                              : 0;
    size_t xrow = gmk_act_row_bytes(c->fmt, c->n_in);
    uint8_t *w = aligned_alloc(64, (wbytes + pbytes + 63) & ~(size_t)63);
    float *x = malloc((size_t)(n_tok * c->n_in) * sizeof *x);
    void *xq = aligned_alloc(64, xrow * (size_t)n_tok);
    float *y = malloc((size_t)(n_tok * c->n_out) * sizeof *y);
    if (!w || !x || !xq || !y) {
        fprintf(stderr, "kernel_bench: out of memory for %s\n", c->name);
        exit(1);
    }
    fill_weights(w, c->dtype, c->n_out, c->n_in);
    if (c->layout)
        gmk_layout_pack(w + wbytes, w, c->layout, c->dtype, c->n_out, c->n_in);
    for (int64_t i = 0; i < n_tok * c->n_in; i++)
        x[i] = rng_unit();
    double act_us = 1e30; /* min over reps: the first run also faults in xq */
    for (int r = 0; r < reps; r++) {
        double a0 = now_s();
        for (int t = 0; t < n_tok; t++)
            gmk_act_row((uint8_t *)xq + (size_t)t * xrow, c->fmt, x + t * c->n_in, c->n_in);
        double us = (now_s() - a0) * 1e6;
        act_us = us < act_us ? us : act_us;
    }
    double kmin, kmed, rmin, rmed;
    time_runs(reps, 0, y, w, c, xq, x, n_tok, &kmin, &kmed);
    int ref_reps = n_tok > 1 || c->n_out > 100000 ? 2 : reps;
    time_runs(ref_reps, 1, y, w, c, xq, x, n_tok, &rmin, &rmed);
    double ops = 2.0 * (double)c->n_out * (double)c->n_in * n_tok;
    if (n_tok == 1)
        printf("%-6s %7lldx%-5lld tok %2d  %8.3f ms %8.3f ms  %6.1f GB/s   ref %8.3f ms %6.1f GB/s"
               "  x%5.1f  act %6.1f us\n",
               c->name, (long long)c->n_out, (long long)c->n_in, n_tok, kmin * 1e3, kmed * 1e3,
               (double)wbytes / kmin * 1e-9, rmin * 1e3, (double)wbytes / rmin * 1e-9,
               rmin / kmin, act_us);
    else
        printf("%-6s %7lldx%-5lld tok %2d  %8.3f ms %8.3f ms  %6.1f GOP/s  ref %8.3f ms %6.1f GOP/s"
               "  x%5.1f  act %6.1f us\n",
               c->name, (long long)c->n_out, (long long)c->n_in, n_tok, kmin * 1e3, kmed * 1e3,
               ops / kmin * 1e-9, rmin * 1e3, ops / rmin * 1e-9, rmin / kmin, act_us);
    free(w);
    free(x);
    free(xq);
    free(y);
}

/* Whether name is one of the comma-separated names in list (NULL: all). */
static int listed(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > 64) {
        fprintf(stderr, "kernel_bench: reps must be 1..64\n");
        return 2;
    }
    static const bench_case cases[] = {
        {"q8_0", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q4_0", GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q5_0", GMK_DTYPE_Q5_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q4_1", GMK_DTYPE_Q4_1, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q5_1", GMK_DTYPE_Q5_1, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q4_k", GMK_DTYPE_Q4_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q5_k", GMK_DTYPE_Q5_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_PACKED},
        {"q6_k", GMK_DTYPE_Q6_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_PACKED},
        {"bf16", GMK_DTYPE_BF16, GMK_ACT_BF16, 2048, 2048, GMK_LAYOUT_PACKED},
        {"f16", GMK_DTYPE_F16, GMK_ACT_F32, 2048, 2048, GMK_LAYOUT_PACKED},
        {"f32", GMK_DTYPE_F32, GMK_ACT_F32, 2048, 2048, GMK_LAYOUT_PACKED},
#ifdef GMK_X86_HAVE_P16 /* the layout x86-64-v4-vnni models read */
        {"q8_0p", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_P16},
        {"q4_0p", GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_P16},
        {"q5_0p", GMK_DTYPE_Q5_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_P16},
        /* the Gemma 3 270M's gate and up (2048 × 640), the 1B's down (1152 × 6912) */
        {"q5_0p640", GMK_DTYPE_Q5_0, GMK_ACT_Q8_0, 2048, 640, GMK_LAYOUT_P16},
        {"q4_0pdeep", GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 1152, 6912, GMK_LAYOUT_P16},
        {"q4_kp16", GMK_DTYPE_Q4_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_P16},
        {"q5_kp16", GMK_DTYPE_Q5_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_P16},
        {"q6_kp16", GMK_DTYPE_Q6_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_P16},
        /* past L2: a Gemma 1 2B FFN matrix (16384 × 2048, 18 MiB) */
        {"q4_kp16big", GMK_DTYPE_Q4_K, GMK_ACT_Q8_K, 16384, 2048, GMK_LAYOUT_P16},
        {"q6_kp16big", GMK_DTYPE_Q6_K, GMK_ACT_Q8_K, 16384, 2048, GMK_LAYOUT_P16},
        {"f16p16", GMK_DTYPE_F16, GMK_ACT_F32, 2048, 2048, GMK_LAYOUT_P16},
        {"bf16p16", GMK_DTYPE_BF16, GMK_ACT_F32, 2048, 2048, GMK_LAYOUT_P16},
        /* the 2B's FFN shapes: gate/up (16384 × 2048) and down (2048 × 16384), 64 MiB */
        {"f16p16big", GMK_DTYPE_F16, GMK_ACT_F32, 16384, 2048, GMK_LAYOUT_P16},
        {"f16p16deep", GMK_DTYPE_F16, GMK_ACT_F32, 2048, 16384, GMK_LAYOUT_P16},
#endif
#ifdef GMK_X86_HAVE_P8 /* the layout x86-64-v3 models read */
        {"q4_0p8", GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_P8},
        {"q4_0big", GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 12288, 1536, GMK_LAYOUT_PACKED},
        {"q4_0p8big", GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 12288, 1536, GMK_LAYOUT_P8},
        {"q5_0p8", GMK_DTYPE_Q5_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_P8},
        {"q8_0p8", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 2048, 2048, GMK_LAYOUT_P8},
        {"q4_kp8", GMK_DTYPE_Q4_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_P8},
        {"q4_kp8big", GMK_DTYPE_Q4_K, GMK_ACT_Q8_K, 16384, 2048, GMK_LAYOUT_P8},
        {"q5_kp8", GMK_DTYPE_Q5_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_P8},
        {"q6_kp8", GMK_DTYPE_Q6_K, GMK_ACT_Q8_K, 2048, 2048, GMK_LAYOUT_P8},
        {"f16p8", GMK_DTYPE_F16, GMK_ACT_F32, 2048, 2048, GMK_LAYOUT_P8},
        {"bf16p8", GMK_DTYPE_BF16, GMK_ACT_F32, 2048, 2048, GMK_LAYOUT_P8},
#endif
    };
#ifdef GMK_X86_HAVE_P16
    static const bench_case head = {"q8_0p", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 262144, 640,
                                    GMK_LAYOUT_P16};
#elif defined(GMK_X86_HAVE_P8)
    static const bench_case head = {"q8_0p8", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 262144, 640,
                                    GMK_LAYOUT_P8};
#else
    static const bench_case head = {"q8_0", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 262144, 640,
                                    GMK_LAYOUT_PACKED};
#endif
    static const bench_case head_packed = {"q8_0", GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 262144, 640,
                                           GMK_LAYOUT_PACKED};
    const char *only = argc > 2 ? argv[2] : NULL;
    printf("type   shape        tokens      min       median   kernel        reference"
           "             speed-up\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (listed(only, cases[i].name))
            run_case(&cases[i], 1, reps);
    if (listed(only, "head"))
        run_case(&head, 1, reps > 3 ? 3 : reps);
    if (only && listed(only, "headpacked"))
        run_case(&head_packed, 1, reps > 3 ? 3 : reps);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (listed(only, cases[i].name))
            run_case(&cases[i], 64, reps);
    return 0;
}
