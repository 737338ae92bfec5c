/*
 * test_sample.c — suite "sample": runtime/sample.c.
 *
 * Greedy and top-k 1 against argmax, seeding, the drawn distribution at a
 * temperature, exactly which tokens top-k / top-p / min-p keep, the
 * repetition penalty's arithmetic and every parameter rejection.  Draw
 * counts are sized so that a correct sampler stays within the tolerances
 * with overwhelming probability (the seed is fixed, so the runs are
 * deterministic anyway).
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gmrt.h"

/* Sampler with every truncation off and the given temperature and seed. */
static gmrt_sampler *plain(int32_t n_vocab, float temp, uint64_t seed)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    gmrt_sampler *s = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_create(&p, n_vocab, &s, &d), GMRT_OK);
    return s;
}

static gmrt_sampler *with(const gmrt_sampler_params *p, int32_t n_vocab)
{
    gmrt_sampler *s = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_create(p, n_vocab, &s, &d), GMRT_OK);
    return s;
}

/* Draws n tokens from fixed logits (copied each time: sampling may modify
 * them) and counts each id. */
static void count_draws(gmrt_sampler *s, const float *logits, int32_t nv,
                        int n, int *counts)
{
    float *l = malloc((size_t)nv * sizeof *l);
    ck_assert(l);
    memset(counts, 0, (size_t)nv * sizeof *counts);
    for (int i = 0; i < n; i++) {
        memcpy(l, logits, (size_t)nv * sizeof *l);
        int32_t id = gmrt_sampler_sample(s, l, NULL, 0);
        ck_assert(id >= 0 && id < nv);
        counts[id]++;
    }
    free(l);
}

/* Logits whose softmax at T = 1 is exactly probs. */
static void logits_of(const double *probs, int n, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)log(probs[i]);
}

START_TEST(test_defaults)
{
    gmrt_sampler_params p;
    memset(&p, 0xff, sizeof p);
    gmrt_sampler_params_default(&p);
    ck_assert_float_eq(p.temperature, 1.0f);
    ck_assert_int_eq(p.top_k, 64);
    ck_assert_float_eq(p.top_p, 0.95f);
    ck_assert_float_eq(p.min_p, 0.0f);
    ck_assert_float_eq(p.repeat_penalty, 1.0f);
    ck_assert_int_eq(p.repeat_last_n, 64);
    ck_assert_uint_eq(p.seed, 0);
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_params_check(&p, &d), GMRT_OK);
}
END_TEST

START_TEST(test_greedy_is_argmax)
{
    gmrt_sampler *s = plain(6, 0.0f, 1);
    float l[6] = {1.0f, 3.0f, -2.0f, 3.0f, 2.9f, -INFINITY};
    ck_assert_int_eq(gmrt_sampler_sample(s, l, NULL, 0), 1);   /* tie → lower id */
    float m[6] = {NAN, -1.0f, NAN, -0.5f, -3.0f, -0.5f};
    ck_assert_int_eq(gmrt_sampler_sample(s, m, NULL, 0), 3);   /* NaN never wins */
    float z[6] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    ck_assert_int_eq(gmrt_sampler_sample(s, z, NULL, 0), 0);
    gmrt_sampler_destroy(s);
}
END_TEST

/* Pseudo-random logits for the tests (a fixed LCG, not the sampler's). */
static void fill_logits(float *l, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        l[i] = (float)(seed >> 8) / (float)(1u << 24) * 8.0f - 4.0f;
    }
}

START_TEST(test_top_k_1_is_greedy)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.top_k = 1;
    p.seed = 99;
    gmrt_sampler *s = with(&p, 1000), *g = plain(1000, 0.0f, 0);
    float a[1000], b[1000];
    for (uint32_t t = 0; t < 50; t++) {
        fill_logits(a, 1000, t);
        memcpy(b, a, sizeof a);
        if (t == 7)
            a[10] = b[10] = a[500] = b[500] = 100.0f;   /* a tie at the top */
        ck_assert_int_eq(gmrt_sampler_sample(s, a, NULL, 0),
                         gmrt_sampler_sample(g, b, NULL, 0));
    }
    gmrt_sampler_destroy(s);
    gmrt_sampler_destroy(g);
}
END_TEST

static void sequence(uint64_t seed, int32_t *out, int n)
{
    gmrt_sampler *s = plain(1000, 1.0f, seed);
    float l[1000];
    for (int i = 0; i < n; i++) {
        fill_logits(l, 1000, 12345);
        out[i] = gmrt_sampler_sample(s, l, NULL, 0);
    }
    gmrt_sampler_destroy(s);
}

START_TEST(test_seeds)
{
    int32_t a[100], b[100], c[100];
    sequence(42, a, 100);
    sequence(42, b, 100);
    sequence(43, c, 100);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += a[i] == c[i];
    ck_assert_int_lt(same, 20);
    /* The stream is not stuck on one token either. */
    int distinct = 0;
    for (int i = 0; i < 100; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup = dup || a[j] == a[i];
        distinct += !dup;
    }
    ck_assert_int_gt(distinct, 30);
}
END_TEST

/* Two logits 0 and ln 3: p1 = 3/4 at T = 1, sqrt3/(1+sqrt3) at T = 2,
 * 3^(1/0.5)/(1+9) = 0.9 at T = 0.5.  20000 draws: sd < 70, tolerance 400. */
START_TEST(test_temperature_distribution)
{
    static const float temps[3] = {1.0f, 2.0f, 0.5f};
    double want[3] = {0.75, sqrt(3.0) / (1.0 + sqrt(3.0)), 0.9};
    float l[2] = {0.0f, (float)log(3.0)};
    int counts[2];
    for (int t = 0; t < 3; t++) {
        gmrt_sampler *s = plain(2, temps[t], 7 + (uint64_t)t);
        count_draws(s, l, 2, 20000, counts);
        double expect = 20000 * want[t];
        ck_assert_msg(fabs(counts[1] - expect) < 400,
                      "T=%g: %d draws of token 1, expected %.0f",
                      (double)temps[t], counts[1], expect);
        gmrt_sampler_destroy(s);
    }
}
END_TEST

/* Probabilities 0.3 0.05 0.5 0.15 (ids not in order, to test sorting). */
static const double probs4[4] = {0.3, 0.05, 0.5, 0.15};

/* Runs 4000 draws and checks that exactly the ids in keep[] occur. */
static void expect_kept(const gmrt_sampler_params *p, const bool keep[4])
{
    float l[4];
    int counts[4];
    logits_of(probs4, 4, l);
    gmrt_sampler *s = with(p, 4);
    count_draws(s, l, 4, 4000, counts);
    for (int i = 0; i < 4; i++) {
        if (keep[i])
            ck_assert_msg(counts[i] > 0, "id %d never drawn", i);
        else
            ck_assert_msg(counts[i] == 0, "id %d drawn %d times", i, counts[i]);
    }
    gmrt_sampler_destroy(s);
}

START_TEST(test_top_k_cut)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.top_p = 1.0f;
    p.top_k = 2;
    expect_kept(&p, (const bool[4]){true, false, true, false});
    p.top_k = 3;
    expect_kept(&p, (const bool[4]){true, false, true, true});
    p.top_k = 1000;   /* more than the vocabulary: everything */
    expect_kept(&p, (const bool[4]){true, true, true, true});
}
END_TEST

START_TEST(test_top_p_cut)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.top_k = 0;
    p.top_p = 0.75f;   /* 0.5 + 0.3 = 0.8 reaches it */
    expect_kept(&p, (const bool[4]){true, false, true, false});
    p.top_p = 0.85f;   /* needs 0.5 + 0.3 + 0.15 */
    expect_kept(&p, (const bool[4]){true, false, true, true});
    p.top_p = 0.4f;    /* the top token alone */
    expect_kept(&p, (const bool[4]){false, false, true, false});
    /* Kept tokens are renormalized: 0.5/0.8 of the draws go to id 2. */
    p.top_p = 0.75f;
    float l[4];
    int counts[4];
    logits_of(probs4, 4, l);
    gmrt_sampler *s = with(&p, 4);
    count_draws(s, l, 4, 20000, counts);
    ck_assert_msg(fabs(counts[2] - 12500.0) < 450, "id 2 drawn %d times", counts[2]);
    gmrt_sampler_destroy(s);
}
END_TEST

START_TEST(test_min_p_cut)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.25f;   /* floor 0.125: drops 0.05 */
    expect_kept(&p, (const bool[4]){true, false, true, true});
    p.min_p = 0.5f;    /* floor 0.25: drops 0.15 too */
    expect_kept(&p, (const bool[4]){true, false, true, false});
    p.min_p = 0.9f;
    expect_kept(&p, (const bool[4]){false, false, true, false});
}
END_TEST

START_TEST(test_repeat_penalty)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 6;
    gmrt_sampler *s = with(&p, 5);
    float l[5] = {2.0f, -1.0f, 0.5f, 3.0f, 1.2f};
    /* Window = the last 6: -5 and 77 are not ids and are ignored, id 0
     * twice counts once, id 4 is outside the window. */
    const int32_t hist[] = {4, 0, -5, 77, 0, 1, 0, 3};
    ck_assert_int_eq(gmrt_sampler_sample(s, l, hist, 8), 3);
    ck_assert_float_eq(l[0], 1.0f);
    ck_assert_float_eq(l[1], -2.0f);
    ck_assert_float_eq(l[2], 0.5f);
    ck_assert_float_eq(l[3], 1.5f);
    ck_assert_float_eq(l[4], 1.2f);
    /* Applied again, the same window lowers 3 below 4. */
    ck_assert_int_eq(gmrt_sampler_sample(s, l, hist, 8), 4);
    ck_assert_float_eq(l[3], 0.75f);
    ck_assert_float_eq(l[1], -4.0f);
    gmrt_sampler_destroy(s);
    p.repeat_last_n = 0;
    s = with(&p, 5);
    float m[5] = {2.0f, -1.0f, 0.5f, 3.0f, 1.2f};
    ck_assert_int_eq(gmrt_sampler_sample(s, m, hist, 8), 3);
    ck_assert_float_eq(m[3], 3.0f);
    gmrt_sampler_destroy(s);
}
END_TEST

/* Expects gmrt_sampler_params_check(p) to fail with exactly msg. */
static void expect_bad(const gmrt_sampler_params *p, const char *msg)
{
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_params_check(p, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, msg);
    gmrt_sampler *s = (gmrt_sampler *)&s;
    ck_assert_int_eq(gmrt_sampler_create(p, 10, &s, &d), GMRT_ERR_ARG);
    ck_assert_ptr_null(s);
}

START_TEST(test_params_rejected)
{
    gmrt_sampler_params d0, p;
    gmrt_sampler_params_default(&d0);
    p = d0, p.temperature = -0.5f;
    expect_bad(&p, "temperature = -0.5 is outside [0, 100]");
    p = d0, p.temperature = 100.5f;
    expect_bad(&p, "temperature = 100.5 is outside [0, 100]");
    p = d0, p.temperature = NAN;
    expect_bad(&p, "temperature = nan is outside [0, 100]");
    p = d0, p.top_k = -1;
    expect_bad(&p, "top_k = -1 is outside [0, 1000000]");
    p = d0, p.top_k = 1000001;
    expect_bad(&p, "top_k = 1000001 is outside [0, 1000000]");
    p = d0, p.top_p = 0.0f;
    expect_bad(&p, "top_p = 0 is outside (0, 1]");
    p = d0, p.top_p = 1.5f;
    expect_bad(&p, "top_p = 1.5 is outside (0, 1]");
    p = d0, p.top_p = INFINITY;
    expect_bad(&p, "top_p = inf is outside (0, 1]");
    p = d0, p.min_p = 1.0f;
    expect_bad(&p, "min_p = 1 is outside [0, 1)");
    p = d0, p.min_p = -0.25f;
    expect_bad(&p, "min_p = -0.25 is outside [0, 1)");
    p = d0, p.repeat_penalty = 0.0f;
    expect_bad(&p, "repeat_penalty = 0 is outside (0, 10]");
    p = d0, p.repeat_penalty = 11.0f;
    expect_bad(&p, "repeat_penalty = 11 is outside (0, 10]");
    p = d0, p.repeat_penalty = -INFINITY;
    expect_bad(&p, "repeat_penalty = -inf is outside (0, 10]");
    p = d0, p.repeat_last_n = -1;
    expect_bad(&p, "repeat_last_n = -1 is outside [0, 1048576]");
    p = d0, p.repeat_last_n = (1 << 20) + 1;
    expect_bad(&p, "repeat_last_n = 1048577 is outside [0, 1048576]");
    /* The edges themselves are allowed. */
    p = d0, p.temperature = 100.0f, p.top_k = 1000000, p.top_p = 1.0f;
    p.repeat_penalty = 10.0f, p.repeat_last_n = 1 << 20;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_params_check(&p, &d), GMRT_OK);
    ck_assert_int_eq(gmrt_sampler_params_check(NULL, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "sampler parameters are NULL");
}
END_TEST

START_TEST(test_create_rejected)
{
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    gmrt_sampler *s = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_create(&p, 0, &s, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "n_vocab = 0 is outside [1, 1048576]");
    ck_assert_int_eq(gmrt_sampler_create(&p, (1 << 20) + 1, &s, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "n_vocab = 1048577 is outside [1, 1048576]");
    ck_assert_ptr_null(s);
    ck_assert_int_eq(gmrt_sampler_sample(NULL, NULL, NULL, 0), -1);
    gmrt_sampler_destroy(NULL);
}
END_TEST

/* A full Gemma-sized row with the default settings: only top-64 ids are
 * ever drawn. */
START_TEST(test_large_vocab_top_k)
{
    enum { NV = 262144 };
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.seed = 5;
    gmrt_sampler *s = with(&p, NV);
    float *base = malloc(NV * sizeof *base), *l = malloc(NV * sizeof *l);
    ck_assert(base && l);
    fill_logits(base, NV, 77);
    /* The 64th largest logit: anything drawn must be at least that. */
    float *sorted = malloc(NV * sizeof *sorted);
    ck_assert(sorted);
    memcpy(sorted, base, NV * sizeof *base);
    for (int k = 0; k < 64; k++) {
        int best = k;
        for (int i = k + 1; i < NV; i++)
            best = sorted[i] > sorted[best] ? i : best;
        float t = sorted[k];
        sorted[k] = sorted[best];
        sorted[best] = t;
    }
    for (int i = 0; i < 100; i++) {
        memcpy(l, base, NV * sizeof *l);
        int32_t id = gmrt_sampler_sample(s, l, NULL, 0);
        ck_assert(id >= 0 && id < NV);
        ck_assert_float_ge(base[id], sorted[63]);
    }
    free(sorted);
    free(base);
    free(l);
    gmrt_sampler_destroy(s);
}
END_TEST

/* A top-p over more than a few thousand candidates sorts the whole
 * vocabulary by radix (sort_all) instead of a heap and qsort: it must
 * order exactly as they do, equal logits by id, -0 equal to +0, NaN last.
 * Only 2002 logits are finite, so a top-k of 2048 (heap and qsort) and
 * one of 4000 (radix) keep the same candidates with weight, and with the
 * same seed they must draw the same ids; greedy (two passes in lanes)
 * must give the first maximum. */
START_TEST(test_sort_all_order)
{
    enum { NV = 4099 };
    static float base[NV], l[NV];
    uint32_t x = 12345;
    for (int i = 0; i < NV; i++) {
        x = x * 1103515245u + 12345u;
        bool finite = i % 2 == 0 && i < 4000;           /* 2000; many equal, the best 0 */
        base[i] = finite ? (float)((x >> 16) % 64) / 8.0f - 7.875f : -INFINITY;
    }
    base[10] = -0.0f, base[12] = 0.0f, base[3] = NAN, base[4097] = 9.0f, base[4098] = 9.0f;
    gmrt_sampler_params p;
    gmrt_sampler_params_default(&p);
    p.temperature = 0.5f, p.top_p = 0.9f, p.seed = 9;
    p.top_k = 2048;
    gmrt_sampler *heap = with(&p, NV);
    p.top_k = 4000;
    gmrt_sampler *radix = with(&p, NV);
    base[4097] = base[4098] = -1.0f;
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(gmrt_sampler_pick(heap, base), gmrt_sampler_pick(radix, base));
    gmrt_sampler_destroy(heap);
    gmrt_sampler_destroy(radix);
    gmrt_sampler *g = plain(NV, 0.0f, 1);
    base[4097] = base[4098] = 9.0f;
    memcpy(l, base, sizeof l);
    ck_assert_int_eq(gmrt_sampler_sample(g, l, NULL, 0), 4097);
    base[4098] = INFINITY, base[4097] = FLT_MAX;
    ck_assert_int_eq(gmrt_sampler_pick(g, base), 4097); /* +inf counts as FLT_MAX */
    for (int i = 0; i < NV; i++)
        base[i] = i == 7 ? NAN : -INFINITY;
    ck_assert_int_eq(gmrt_sampler_pick(g, base), 0);
    gmrt_sampler_destroy(g);
}
END_TEST

Suite *sample_suite(void)
{
    Suite *s = suite_create("sample");
    TCase *tc = tcase_create("sample");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_greedy_is_argmax);
    tcase_add_test(tc, test_top_k_1_is_greedy);
    tcase_add_test(tc, test_seeds);
    tcase_add_test(tc, test_temperature_distribution);
    tcase_add_test(tc, test_top_k_cut);
    tcase_add_test(tc, test_top_p_cut);
    tcase_add_test(tc, test_min_p_cut);
    tcase_add_test(tc, test_repeat_penalty);
    tcase_add_test(tc, test_params_rejected);
    tcase_add_test(tc, test_create_rejected);
    tcase_add_test(tc, test_large_vocab_top_k);
    tcase_add_test(tc, test_sort_all_order);
    suite_add_tcase(s, tc);
    return s;
}
