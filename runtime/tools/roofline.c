/*
 * roofline.c — measures this machine's ceilings for `gemmac bench`: memory
 * read bandwidth (a multi-threaded streaming read of a buffer far above the
 * last-level cache) and int8 / bf16 / f32 compute peaks (tight loops of
 * independent dot-product or FMA instructions on registers).
 *
 * The instruction is chosen at run time with __builtin_cpu_supports, each
 * variant compiled for its ISA with __attribute__((target)), so the runtime
 * library itself stays baseline.  Every loop folds its registers into a value
 * that is stored to a volatile sink, so the compiler cannot drop the work.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmrt_tools.h"

#if GMRT_THREADS
#include <pthread.h>
#endif
#ifdef __linux__
#include <sys/mman.h> /* madvise */
#endif

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define GMRT_ROOF_X86 1
#include <immintrin.h>
#endif

/* Observable destination for every measured loop's result. */
static volatile uint64_t roof_sink;
/* Loop inputs read through volatiles so that nothing is constant-folded. */
static volatile int8_t roof_seed_i8 = 3;
static volatile float roof_seed_f32 = 0.9990234375f; /* keeps acc*a+b bounded */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Folds a float result without a float-to-integer conversion (which is
 * undefined for values out of range). */
static uint64_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------- parallel runner */

typedef uint64_t roof_kernel_fn(void *arg, int ith, int nth, uint64_t iters);

typedef struct roof_job {
    roof_kernel_fn *fn;
    void *arg;
    uint64_t iters;
    int nth;
    atomic_int go; /* 0 wait, 1 run, -1 give up (a thread failed to start) */
    double t0[GMRT_ROOF_MAX_THREADS], t1[GMRT_ROOF_MAX_THREADS];
    uint64_t out[GMRT_ROOF_MAX_THREADS];
} roof_job;

typedef struct roof_thread {
    roof_job *job;
    int ith;
} roof_thread;

static void *roof_thread_main(void *p)
{
    roof_thread *t = p;
    roof_job *j = t->job;
    int go;
    while ((go = atomic_load_explicit(&j->go, memory_order_acquire)) == 0)
        ;
    if (go < 0)
        return NULL;
    j->t0[t->ith] = now_s();
    j->out[t->ith] = j->fn(j->arg, t->ith, j->nth, j->iters);
    j->t1[t->ith] = now_s();
    return NULL;
}

/* Runs fn on nth threads released together; the elapsed time is from the
 * first thread's start to the last thread's end, so the aggregate rate is
 * what all threads achieve at once.  Not reentrant (one static job).
 * Returns a negative time if a thread could not be started. */
static double roof_run(roof_kernel_fn *fn, void *arg, int nth, uint64_t iters)
{
    static roof_job j; /* large; measurements are never concurrent */
    roof_thread ta[GMRT_ROOF_MAX_THREADS];
    j.fn = fn, j.arg = arg, j.iters = iters, j.nth = nth;
    atomic_store(&j.go, 0);
    int started = 1;
#if GMRT_THREADS
    pthread_t th[GMRT_ROOF_MAX_THREADS];
    for (int i = 1; i < nth; i++, started++) {
        ta[i] = (roof_thread){&j, i};
        if (pthread_create(&th[i], NULL, roof_thread_main, &ta[i]) != 0)
            break;
    }
#endif
    atomic_store_explicit(&j.go, started < nth ? -1 : 1, memory_order_release);
    ta[0] = (roof_thread){&j, 0};
    if (started == nth)
        roof_thread_main(&ta[0]);
#if GMRT_THREADS
    for (int i = 1; i < started; i++)
        pthread_join(th[i], NULL);
#endif
    if (started < nth)
        return -1;
    double t0 = j.t0[0], t1 = j.t1[0];
    uint64_t x = 0;
    for (int i = 0; i < nth; i++) {
        t0 = j.t0[i] < t0 ? j.t0[i] : t0;
        t1 = j.t1[i] > t1 ? j.t1[i] : t1;
        x ^= j.out[i];
    }
    roof_sink ^= x;
    return t1 - t0;
}

/* ------------------------------------------------------------ bandwidth */

typedef struct bw_arg {
    const unsigned char *buf;
    size_t bytes; /* multiple of 64 * 8 * nth */
} bw_arg;

static uint64_t bw_scalar(void *p, int ith, int nth, uint64_t iters)
{
    const bw_arg *a = p;
    size_t slice = a->bytes / (size_t)nth;
    const uint64_t *q = (const uint64_t *)(const void *)(a->buf + slice * (size_t)ith);
    uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
    (void)iters;
    for (size_t i = 0; i < slice / 8; i += 4) {
        x0 ^= q[i];
        x1 ^= q[i + 1];
        x2 ^= q[i + 2];
        x3 ^= q[i + 3];
    }
    return x0 ^ x1 ^ x2 ^ x3;
}

#ifdef GMRT_ROOF_X86
/* The x86 read loops, each over its thread's slice: plain, or asking for
 * each line ROOF_PF_BYTES ahead (prefetcht1) as the repacked kernels do
 * (gmk_x86_simd.h, GMK_X86_DPF), in one stream or in 4 read side by side
 * (the slice's quarters, as the f16/bf16 decode reads 4 panels).  Which
 * is fastest depends on the machine and the moment: on the Sapphire Rapids
 * VM 15.9-16.3 GB/s at one thread plain in one stream, 17.2-17.7 with the
 * prefetches, and its bf16 decode (4 streams) read more than either; the
 * roofline keeps the fastest, so that no kernel reads faster than "the
 * bandwidth". */
#define ROOF_PF_BYTES 3072

#define ROOF_BW_LOOP(NAME, TARGET, V, LOAD, XOR, PF, S)                                   \
    __attribute__((target(TARGET))) static uint64_t NAME(void *p, int ith, int nth,       \
                                                         uint64_t iters)                  \
    {                                                                                     \
        const bw_arg *a = p;                                                              \
        size_t slice = a->bytes / (size_t)nth, part = slice / (S * sizeof(V));            \
        const V *q = (const V *)(const void *)(a->buf + slice * (size_t)ith);             \
        V x[4];                                                                           \
        (void)iters;                                                                      \
        memset(x, 0, sizeof x);                                                           \
        for (size_t i = 0; i < part; i += 8 / S) {                                        \
            for (size_t l = 0; PF && l < 8 * sizeof(V); l += 64)                          \
                _mm_prefetch((const char *)(q + l / (8 / S * sizeof(V)) * part + i) +     \
                                 l % (8 / S * sizeof(V)) + ROOF_PF_BYTES,                 \
                             _MM_HINT_T1);                                                \
            for (int k = 0; k < 8; k++)                                                   \
                x[k % 4] = XOR(x[k % 4], LOAD(q + (size_t)(k % S) * part + i + k / S));   \
        }                                                                                 \
        uint64_t out[sizeof(V) / 8], r = 0;                                               \
        x[0] = XOR(XOR(x[0], x[1]), XOR(x[2], x[3]));                                     \
        memcpy(out, &x[0], sizeof out);                                                   \
        for (size_t k = 0; k < sizeof(V) / 8; k++)                                        \
            r ^= out[k];                                                                  \
        return r;                                                                         \
    }

ROOF_BW_LOOP(bw_avx2, "avx2", __m256i, _mm256_load_si256, _mm256_xor_si256, 0, 1)
ROOF_BW_LOOP(bw_avx2_pf, "avx2", __m256i, _mm256_load_si256, _mm256_xor_si256, 1, 1)
ROOF_BW_LOOP(bw_avx2_s4, "avx2", __m256i, _mm256_load_si256, _mm256_xor_si256, 0, 4)
ROOF_BW_LOOP(bw_avx2_s4pf, "avx2", __m256i, _mm256_load_si256, _mm256_xor_si256, 1, 4)
ROOF_BW_LOOP(bw_avx512, "avx512f", __m512i, _mm512_load_si512, _mm512_xor_si512, 0, 1)
ROOF_BW_LOOP(bw_avx512_pf, "avx512f", __m512i, _mm512_load_si512, _mm512_xor_si512, 1, 1)
ROOF_BW_LOOP(bw_avx512_s4, "avx512f", __m512i, _mm512_load_si512, _mm512_xor_si512, 0, 4)
ROOF_BW_LOOP(bw_avx512_s4pf, "avx512f", __m512i, _mm512_load_si512, _mm512_xor_si512, 1, 4)
#endif

#define ROOF_BW_MAX 4

/* The four shapes of one ISA's read loop, in ROOF_BW_LOOP's order. */
struct bw_isa {
    roof_kernel_fn *fn[ROOF_BW_MAX];
    const char *insn[ROOF_BW_MAX];
};

#ifdef GMRT_ROOF_X86
#define ROOF_BW_NAMES(base)                                                                \
    {base, base ", prefetcht1 3072 B ahead", base ", 4 streams",                          \
     base ", 4 streams, prefetcht1 3072 B ahead"}

static const struct bw_isa bw_avx512_isa = {
    {bw_avx512, bw_avx512_pf, bw_avx512_s4, bw_avx512_s4pf},
    ROOF_BW_NAMES("avx512 vmovdqa64 zmm loads")};
static const struct bw_isa bw_avx2_isa = {
    {bw_avx2, bw_avx2_pf, bw_avx2_s4, bw_avx2_s4pf}, ROOF_BW_NAMES("avx2 vmovdqa ymm loads")};
#endif

/* The read loops of this CPU into fn[] with what they run into insn[];
 * returns their count. */
static int bw_pick(roof_kernel_fn **fn, const char **insn)
{
    const struct bw_isa *isa = NULL;
#ifdef GMRT_ROOF_X86
    if (__builtin_cpu_supports("avx512f"))
        isa = &bw_avx512_isa;
    else if (__builtin_cpu_supports("avx2"))
        isa = &bw_avx2_isa;
#endif
    if (!isa) {
        fn[0] = bw_scalar, insn[0] = "scalar 64-bit loads";
        return 1;
    }
    for (int i = 0; i < ROOF_BW_MAX; i++)
        fn[i] = isa->fn[i], insn[i] = isa->insn[i];
    return ROOF_BW_MAX;
}

/* Fills the buffer with a non-zero pattern in parallel: untouched pages would
 * all map the shared zero page and read at cache speed. */
static uint64_t bw_fill(void *p, int ith, int nth, uint64_t iters)
{
    const bw_arg *a = p;
    size_t slice = a->bytes / (size_t)nth;
    (void)iters;
    memset((unsigned char *)a->buf + slice * (size_t)ith, 0x5a + ith, slice);
    return 0;
}

static gmrt_status measure_bandwidth(int nth, size_t bytes, int passes,
                                     gmrt_roofline *r, gmrt_diag *diag)
{
    size_t grain = (size_t)64 * 8 * (size_t)nth;
    bytes = bytes / grain * grain;
    if (bytes < grain)
        return gmrt_fail(diag, GMRT_ERR_ARG, "bandwidth buffer of %zu bytes is too small",
                         bytes);
    /* in huge pages where the system gives them, as the session's
     * repacked weights are (session.c alloc_aligned) */
    const size_t huge = (size_t)2 << 20;
    void *buf = NULL;
    if (posix_memalign(&buf, huge, (bytes + huge - 1) / huge * huge) != 0)
        return gmrt_fail(diag, GMRT_ERR_NOMEM,
                         "cannot allocate the %zu MiB bandwidth buffer", bytes >> 20);
#ifdef MADV_HUGEPAGE
    madvise(buf, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
#endif
    bw_arg a = {buf, bytes};
    /* the loops' passes alternate, so that a slow phase of a shared
     * machine does not fall on one of them only */
    double times[ROOF_BW_MAX][GMRT_ROOF_MAX_PASSES];
    const char *insn[ROOF_BW_MAX];
    roof_kernel_fn *fn[ROOF_BW_MAX];
    const int n_fn = bw_pick(fn, insn);
    gmrt_status st = GMRT_OK;
    if (roof_run(bw_fill, &a, nth, 0) < 0 || roof_run(fn[0], &a, nth, 0) < 0)
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "cannot start %d measurement threads", nth);
    for (int i = 0; st == GMRT_OK && i < passes; i++)
        for (int f = 0; st == GMRT_OK && f < n_fn; f++)
            if ((times[f][i] = roof_run(fn[f], &a, nth, 0)) <= 0)
                st = gmrt_fail(diag, GMRT_ERR_NOMEM, "cannot start %d measurement threads",
                               nth);
    free(buf);
    if (st != GMRT_OK)
        return st;
    int best = 0;
    for (int f = 0; f < n_fn; f++) {
        qsort(times[f], (size_t)passes, sizeof times[f][0], cmp_double);
        if (times[f][0] < times[best][0])
            best = f;
    }
    r->bw_insn = insn[best];
    const double *t = times[best];
    r->bw_bytes = bytes;
    r->bw_passes = passes;
    r->bw_best_gbs = (double)bytes / t[0] * 1e-9;
    r->bw_median_gbs = (double)bytes / t[passes / 2] * 1e-9;
    return GMRT_OK;
}

/* ------------------------------------------------------------ caches */

#define CACHE_READ_BYTES (256.0 * 1048576.0) /* read per buffer size, at least */

gmrt_status gmrt_roofline_measure_cache(int n_threads, size_t max_bytes, gmrt_roofline *r,
                                        gmrt_diag *diag)
{
    r->n_cache = 0;
    if (n_threads < 1 || n_threads > GMRT_ROOF_MAX_THREADS)
        return gmrt_fail(diag, GMRT_ERR_ARG, "roofline thread count %d is out of [1, %d]",
                         n_threads, GMRT_ROOF_MAX_THREADS);
    /* From 4 MiB a thread: past the core's own cache on current CPUs; the
     * bound a little over max_bytes, so that the steps' rounding keeps it. */
    for (double s = ((double)(4 << 20)) * n_threads;
         s <= 1.001 * (double)max_bytes && r->n_cache < GMRT_CACHE_POINTS;
         s *= 1.4142135623730951) {
        size_t bytes = (size_t)s < max_bytes ? (size_t)s : max_bytes;
        int passes = (int)(CACHE_READ_BYTES / (double)bytes) + 1;
        passes = passes < 3 ? 3 : passes > GMRT_ROOF_MAX_PASSES ? GMRT_ROOF_MAX_PASSES : passes;
        gmrt_roofline one;
        gmrt_status st = measure_bandwidth(n_threads, bytes, passes, &one, diag);
        if (st != GMRT_OK) {
            r->n_cache = 0;
            return st;
        }
        r->cache_mib[r->n_cache] = (double)one.bw_bytes / 1048576.0;
        r->cache_gbs[r->n_cache++] = one.bw_best_gbs;
    }
    return GMRT_OK;
}

/* --------------------------------------------------------- compute peaks
 * Each kernel runs `iters` iterations of ROOF_ACC independent instructions
 * (enough accumulators to cover latency x throughput on current cores) and
 * returns a fold of them; macs_per_iter says how many multiply-adds one
 * iteration does. */

#define ROOF_ACC 12

typedef struct peak_kernel {
    roof_kernel_fn *fn;
    const char *insn;
    double macs_per_iter;
} peak_kernel;

static uint64_t int8_scalar(void *p, int ith, int nth, uint64_t iters)
{
    /* acc * a + b: a multiplicative recurrence has no closed form the
     * optimiser could substitute for the loop. */
    int32_t acc[ROOF_ACC] = {0};
    int32_t a = roof_seed_i8, b = roof_seed_i8 + 1;
    (void)p, (void)ith, (void)nth;
    for (uint64_t i = 0; i < iters; i++)
        for (int k = 0; k < ROOF_ACC; k++)
            acc[k] = (int32_t)((uint32_t)acc[k] * (uint32_t)a + (uint32_t)b);
    uint64_t x = 0;
    for (int k = 0; k < ROOF_ACC; k++)
        x += (uint32_t)acc[k];
    return x;
}

static uint64_t f32_scalar(void *p, int ith, int nth, uint64_t iters)
{
    float acc[ROOF_ACC] = {0}, a = roof_seed_f32, b = 0.5f;
    (void)p, (void)ith, (void)nth;
    for (uint64_t i = 0; i < iters; i++)
        for (int k = 0; k < ROOF_ACC; k++)
            acc[k] = fmaf(acc[k], a, b);
    float s = 0;
    for (int k = 0; k < ROOF_ACC; k++)
        s += acc[k];
    return f32_bits(s);
}

#ifdef GMRT_ROOF_X86
/* An empty asm that claims to modify v: products of loop-invariant inputs
 * (the AVX2 int8 sequence) cannot be hoisted out of the loop. */
#define ROOF_OPAQUE(v) __asm__ volatile("" : "+v"(v))

/* ROOF_ACC accumulators updated by OP(acc, a, b) per iteration; the
 * accumulator type T is folded by FOLD into a uint64_t. */
#define ROOF_LOOP(T, ZERO, OP, FOLD)                                           \
    T acc[ROOF_ACC];                                                           \
    for (int k = 0; k < ROOF_ACC; k++)                                         \
        acc[k] = ZERO;                                                         \
    for (uint64_t i = 0; i < iters; i++) {                                     \
        for (int k = 0; k < ROOF_ACC; k++) {                                   \
            ROOF_OPAQUE(a);                                                    \
            acc[k] = OP(acc[k], a, b);                                         \
        }                                                                      \
    }                                                                          \
    T s = acc[0];                                                              \
    for (int k = 1; k < ROOF_ACC; k++)                                         \
        s = FOLD(s, acc[k]);

__attribute__((target("avx512f,avx512vnni"))) static uint64_t
int8_vnni512(void *p, int ith, int nth, uint64_t iters)
{
    __m512i a = _mm512_set1_epi8(roof_seed_i8), b = _mm512_set1_epi8(roof_seed_i8 + 1);
    (void)p, (void)ith, (void)nth;
    ROOF_LOOP(__m512i, _mm512_setzero_si512(), _mm512_dpbusd_epi32, _mm512_add_epi32)
    return (uint64_t)_mm512_reduce_add_epi32(s);
}

__attribute__((target("avx2,avxvnni"))) static uint64_t
int8_vnni256(void *p, int ith, int nth, uint64_t iters)
{
    __m256i a = _mm256_set1_epi8(roof_seed_i8), b = _mm256_set1_epi8(roof_seed_i8 + 1);
    (void)p, (void)ith, (void)nth;
    ROOF_LOOP(__m256i, _mm256_setzero_si256(), _mm256_dpbusd_avx_epi32, _mm256_add_epi32)
    return (uint64_t)_mm256_extract_epi32(s, 0);
}

/* AVX2 has no int8 dot product into int32: the usual sequence is
 * vpmaddubsw (u8 x s8 pairs -> s16), vpmaddwd with ones (-> s32), vpaddd. */
__attribute__((target("avx2"))) static inline __m256i madd_avx2(__m256i acc, __m256i a,
                                                                __m256i b)
{
    __m256i ones = _mm256_set1_epi16(1);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
}

__attribute__((target("avx2"))) static uint64_t int8_avx2(void *p, int ith, int nth,
                                                          uint64_t iters)
{
    __m256i a = _mm256_set1_epi8(roof_seed_i8), b = _mm256_set1_epi8(roof_seed_i8 + 1);
    (void)p, (void)ith, (void)nth;
    ROOF_LOOP(__m256i, _mm256_setzero_si256(), madd_avx2, _mm256_add_epi32)
    return (uint64_t)_mm256_extract_epi32(s, 0);
}

__attribute__((target("avx512f,avx512bf16"))) static uint64_t
bf16_avx512(void *p, int ith, int nth, uint64_t iters)
{
    __m512bh a = (__m512bh)_mm512_set1_epi16((short)(0x3f80 + roof_seed_i8));
    __m512bh b = a;
    (void)p, (void)ith, (void)nth;
    ROOF_LOOP(__m512, _mm512_setzero_ps(), _mm512_dpbf16_ps, _mm512_add_ps)
    return f32_bits(_mm512_reduce_add_ps(s));
}

__attribute__((target("avx512f"))) static uint64_t f32_avx512(void *p, int ith, int nth,
                                                              uint64_t iters)
{
    __m512 a = _mm512_set1_ps(roof_seed_f32), b = _mm512_set1_ps(0.5f);
    (void)p, (void)ith, (void)nth;
    ROOF_LOOP(__m512, _mm512_setzero_ps(), _mm512_fmadd_ps, _mm512_add_ps)
    return f32_bits(_mm512_reduce_add_ps(s));
}

__attribute__((target("avx2,fma"))) static uint64_t f32_fma256(void *p, int ith, int nth,
                                                               uint64_t iters)
{
    __m256 a = _mm256_set1_ps(roof_seed_f32), b = _mm256_set1_ps(0.5f);
    (void)p, (void)ith, (void)nth;
    ROOF_LOOP(__m256, _mm256_setzero_ps(), _mm256_fmadd_ps, _mm256_add_ps)
    return f32_bits(_mm256_cvtss_f32(s));
}
#endif

static peak_kernel pick_int8(void)
{
#ifdef GMRT_ROOF_X86
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f"))
        return (peak_kernel){int8_vnni512, "avx512_vnni vpdpbusd zmm", 64.0 * ROOF_ACC};
    if (__builtin_cpu_supports("avxvnni"))
        return (peak_kernel){int8_vnni256, "avx_vnni vpdpbusd ymm", 32.0 * ROOF_ACC};
    if (__builtin_cpu_supports("avx2"))
        return (peak_kernel){int8_avx2, "avx2 vpmaddubsw+vpmaddwd+vpaddd ymm",
                             32.0 * ROOF_ACC};
#endif
    return (peak_kernel){int8_scalar, "scalar int32 multiply-add", 1.0 * ROOF_ACC};
}

static peak_kernel pick_f32(void)
{
#ifdef GMRT_ROOF_X86
    if (__builtin_cpu_supports("avx512f"))
        return (peak_kernel){f32_avx512, "avx512f vfmadd zmm", 16.0 * ROOF_ACC};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return (peak_kernel){f32_fma256, "fma vfmadd ymm", 8.0 * ROOF_ACC};
#endif
    return (peak_kernel){f32_scalar, "scalar fmaf", 1.0 * ROOF_ACC};
}

/* Without a bf16 dot product, bf16 weights are widened and multiplied in
 * f32, so the f32 FMA peak is the relevant ceiling. */
static peak_kernel pick_bf16(void)
{
#ifdef GMRT_ROOF_X86
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f"))
        return (peak_kernel){bf16_avx512, "avx512_bf16 vdpbf16ps zmm", 32.0 * ROOF_ACC};
#endif
    peak_kernel k = pick_f32();
    k.insn = "no bf16 dot product: f32 fma peak";
    return k;
}

/* Best of three timed runs, each about 20 ms after calibrating the iteration
 * count; returns 2 x multiply-adds per second (ops/s) or a negative value. */
static double measure_peak(peak_kernel k, int nth)
{
    uint64_t iters = 1u << 12;
    double t = 0;
    while ((t = roof_run(k.fn, NULL, nth, iters)) >= 0 && t < 0.005 && iters < (1ull << 40))
        iters *= 4;
    if (t < 0)
        return -1;
    if (t > 0)
        iters = (uint64_t)((double)iters * 0.02 / t) + 1;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        t = roof_run(k.fn, NULL, nth, iters);
        if (t < 0)
            return -1;
        if (best == 0 || t < best)
            best = t;
    }
    return 2.0 * k.macs_per_iter * (double)iters * nth / best;
}

/* ------------------------------------------------------------ barrier */

#define BARRIERS_PER_RUN 2000
#define BARRIER_RUNS 7

/* A step of nothing but barriers: what a decode step pays per op beyond its
 * bytes when threads are many and the work is small. */
static void barriers_only(const gmk_ctx *c, int ith, int nth)
{
    (void)ith, (void)nth;
    for (int i = 0; i < BARRIERS_PER_RUN; i++)
        c->barrier(c->sync);
}

/* Microseconds per barrier of a gmrt_pool of n_threads: the fastest of
 * BARRIER_RUNS steps after one untimed step (which wakes the workers), the
 * cost with every thread on a core; waiting for a thread that another
 * process holds is the calibration's to measure (bench.c, fit_decode). */
static gmrt_status measure_barrier(int n_threads, double *us, gmrt_diag *diag)
{
    gmrt_pool *p;
    if (gmrt_pool_create(n_threads, &p, diag) != GMRT_OK)
        return diag->status;
    gmk_ctx ctx = {0};
    double t[BARRIER_RUNS];
    gmrt_pool_run(p, barriers_only, &ctx);
    for (int r = 0; r < BARRIER_RUNS; r++) {
        double t0 = now_s();
        gmrt_pool_run(p, barriers_only, &ctx);
        t[r] = now_s() - t0;
    }
    gmrt_pool_destroy(p);
    qsort(t, BARRIER_RUNS, sizeof *t, cmp_double);
    *us = t[0] * 1e6 / (BARRIERS_PER_RUN + 1);
    return GMRT_OK;
}

gmrt_status gmrt_roofline_measure(int n_threads, size_t bw_bytes, int passes,
                                  gmrt_roofline *out, gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    if (n_threads < 1 || n_threads > GMRT_ROOF_MAX_THREADS)
        return gmrt_fail(diag, GMRT_ERR_ARG, "roofline thread count %d is out of [1, %d]",
                         n_threads, GMRT_ROOF_MAX_THREADS);
    if (passes < 1 || passes > GMRT_ROOF_MAX_PASSES)
        return gmrt_fail(diag, GMRT_ERR_ARG, "bandwidth passes %d are out of [1, %d]",
                         passes, GMRT_ROOF_MAX_PASSES);
    out->n_threads = n_threads;
    gmrt_status st = measure_bandwidth(n_threads, bw_bytes, passes, out, diag);
    if (st != GMRT_OK)
        return st;
    peak_kernel k8 = pick_int8(), kb = pick_bf16(), kf = pick_f32();
    out->int8_insn = k8.insn;
    out->bf16_insn = kb.insn;
    out->f32_insn = kf.insn;
    out->int8_gops = measure_peak(k8, n_threads) * 1e-9;
    out->bf16_gflops = measure_peak(kb, n_threads) * 1e-9;
    out->f32_gflops = measure_peak(kf, n_threads) * 1e-9;
    if (out->int8_gops <= 0 || out->bf16_gflops <= 0 || out->f32_gflops <= 0)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "cannot start %d measurement threads",
                         n_threads);
    return measure_barrier(n_threads, &out->barrier_us, diag);
}
