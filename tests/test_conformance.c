/*
 * test_conformance.c — gemmac against the reference implementations, through
 * the library path of `gemmac eval` (gmrt_eval_reference).
 *
 * 1. Hugging Face transformers fixtures (tests/fixtures/conformance, made by
 *    scripts/make_reference_fixtures.py; graphs in tests/conformance/),
 *    loaded from their safetensors checkpoints by the real loader
 *    (st_bind.c: HF names, norm +1, quantize at load): f32 weights give
 *    logits within NMSE 1e-5 of the f32 reference at every position with the
 *    same argmax; bf16 weights within NMSE 1e-4 of the f32 forward on
 *    bf16-rounded weights; Q8_0 / Q4_0 / Q4_K weights quantized at load are
 *    graded by mean KL against the f32 reference (docs/input-checks.md §7.3 where
 *    a random-weight model can meet it; see docs/conformance.md).  One
 *    variant also has a GGUF copy (Python's name mapping and +1, not the
 *    loader's), which must give the same logits.  A wrong embedding scale
 *    and an unfolded norm must fail.
 * 2. llama.cpp's quantized copies of gemma3-256 and gemma3 (Q8_0, Q4_0,
 *    Q4_K; scripts/ref_llamacpp_quant.py): gemmac on the same GGUF within
 *    1.10x llama.cpp's KL from the transformers reference (the §7.3 anchor),
 *    and gmrt_quantize_row gives llama.cpp's blocks bit for bit.
 * 3. The real Gemma 3 270M against llama.cpp's top-32 log-probs over 713
 *    tokens (tests/fixtures/kl270m, scripts/ref_llamacpp_kl.py): the same
 *    token ids, and mean KL <= 0.005.
 * 4. A full-context run of the 270M graph: no NaN/Inf in the last logits or
 *    anywhere in the KV cache.  GMC_FULLCTX sets the number of tokens
 *    (default: the whole context, 32768).
 *
 * GMC_CONF_TARGET picks the target (default generic).
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "driver.h"
#include "gmrt_tools.h"
#include "testutil.h"

static const char *const variants[] = {"gemma1-mqa", "gemma1-mha", "gemma2", "gemma3",
                                       "gemma3-qscale"};
#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))

/* ------------------------------------------------------------ helpers */

typedef struct loaded {
    void *so;
    const gmk_model *m;
} loaded;

static const char *target(void)
{
    const char *t = getenv("GMC_CONF_TARGET");
    return t && *t ? t : "generic";
}

static void load_graph_for(const char *graph, const char *tag, const char *tgt, loaded *out)
{
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/conf-%s", gmc_test_tmpdir(), tag);
    gmc_options o = {.graph = graph, .target = tgt, .out_dir = dir};
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "compile %s: %s", graph, d.msg);
    out->so = dlopen(r.so_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(out->so != NULL, "dlopen: %s", dlerror());
    const gmk_model *const *entry = dlsym(out->so, "gmk_model_entry");
    ck_assert_ptr_nonnull(entry);
    out->m = *entry;
}

static void load_graph(const char *graph, const char *tag, loaded *out)
{
    load_graph_for(graph, tag, target(), out);
}

/* A copy of a source-tree YAML with one textual replacement (which must
 * occur), written to the temporary directory. */
static const char *yaml_variant(const char *rel, const char *tag, const char *from,
                                const char *to)
{
    static char path[4300];
    char *text = gmc_test_read_file(gmc_test_src(rel), NULL);
    ck_assert_ptr_nonnull(text);
    char *at = from ? strstr(text, from) : NULL;
    ck_assert_msg(!from || at, "%s: \"%s\" not found", rel, from);
    snprintf(path, sizeof path, "%s/%s.yaml", gmc_test_tmpdir(), tag);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    if (at) {
        fwrite(text, 1, (size_t)(at - text), f);
        fputs(to, f);
        fputs(at + strlen(from), f);
    } else
        fputs(text, f);
    fclose(f);
    free(text);
    return path;
}

/* Path of a fixture file; four rotating buffers, so that two calls can be
 * arguments of one call (gmc_test_src has only one). */
static const char *fixture(const char *variant, const char *file)
{
    static char path[4][4300];
    static int next;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/conformance/%s/%s", variant, file);
    char *p = path[next++ & 3];
    snprintf(p, sizeof path[0], "%s", gmc_test_src(rel));
    return p;
}

/* Evaluates weights on a compiled model against a reference. */
static gmrt_eval_report eval_ref_opts(const loaded *L, const char *weights, const char *ref,
                                      const gmrt_session_opts *so)
{
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(L->m, weights, so, &s, &d) == GMRT_OK, "%s", d.msg);
    gmrt_eval_report r;
    ck_assert_msg(gmrt_eval_reference(s, L->m, ref, &r, &d) == GMRT_OK, "%s", d.msg);
    gmrt_session_destroy(s);
    return r;
}

static gmrt_eval_report eval_ref(const loaded *L, const char *weights, const char *ref)
{
    gmrt_session_opts so = {.n_threads = 2};
    return eval_ref_opts(L, weights, ref, &so);
}

/* Leaves a tensor's bytes as the writer provides them (for files whose
 * contents are never read). */
static gmrt_status fill_zero(void *user, int64_t index, const char *name, void *dst,
                             size_t nbytes, gmrt_diag *diag)
{
    (void)user, (void)index, (void)name, (void)dst, (void)nbytes, (void)diag;
    return GMRT_OK;
}

/* ------------------------------------------------- re-typed GGUF weights */

/* The GGUF path (gemma3 only): the fixture's F32 GGUF, written by Python
 * with its own name mapping and +1, re-typed here; it must agree with the
 * safetensors loader.  The embedding (the tied output head) of a 4-bit file
 * is q6_k, as llama.cpp's quantizer makes an output head, or q8_0 where its
 * width is not a multiple of 256, as llama.cpp falls back. */
static int32_t embed_type(int32_t dtype, int64_t width)
{
    bool four_bit = dtype == GMK_DTYPE_Q4_0 || dtype == GMK_DTYPE_Q4_K;
    if (!four_bit)
        return dtype;
    return width > 0 && width % 256 == 0 ? GMK_DTYPE_Q6_K : GMK_DTYPE_Q8_0;
}

typedef struct retype {
    const gmrt_gguf *src;
    int32_t dtype;       /* for matmul weights and the embedding */
} retype;

static bool is_norm(const char *name) { return strstr(name, "norm") != NULL; }

static int32_t retyped(const gmrt_gguf_tensor *t, int32_t dtype)
{
    if (is_norm(t->name))
        return GMK_DTYPE_F32;
    return strcmp(t->name, "token_embd.weight") == 0 ? embed_type(dtype, t->ne[0]) : dtype;
}

static gmrt_status retype_fill(void *user, int64_t index, const char *name, void *dst,
                               size_t nbytes, gmrt_diag *diag)
{
    (void)nbytes;
    const retype *rt = user;
    const gmrt_gguf_tensor *t = gmrt_gguf_tensor_at(rt->src, index);
    int32_t dt = retyped(t, rt->dtype);
    size_t row_bytes;
    gmrt_status st = gmrt_dtype_row_bytes(dt, t->ne[0], &row_bytes, diag);
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    for (int64_t r = 0; st == GMRT_OK && r < rows; r++)
        st = gmrt_quantize_row(dt, (const float *)t->data + r * t->ne[0],
                               (unsigned char *)dst + (size_t)r * row_bytes, t->ne[0], diag);
    /* A bf16 checkpoint stores the norm weight w in bf16 and the converter
     * adds 1 in f32: 1 + bf16(w), with w recovered from the stored 1 + w. */
    if (st == GMRT_OK && is_norm(name) && rt->dtype == GMK_DTYPE_BF16)
        for (int64_t i = 0; i < t->ne[0] * rows; i++) {
            float w = ((const float *)t->data)[i] - 1.0f;
            ((float *)dst)[i] = 1.0f + gmrt_bf16_to_f32(gmrt_f32_to_bf16(w));
        }
    return st;
}

/* Writes the F32 fixture GGUF with every non-norm tensor converted to dtype
 * (ggml's reference quantizers; the embedding per embed_type), keeping the
 * vocabulary. */
static const char *write_retyped(const char *variant, int32_t dtype)
{
    static char out[4300];
    snprintf(out, sizeof out, "%s/%s-%s.gguf", gmc_test_tmpdir(), variant,
             gmrt_dtype_name(dtype));
    gmrt_diag d = {0};
    gmrt_gguf *g;
    ck_assert_msg(gmrt_gguf_open(fixture(variant, "model.gguf"), &g, &d) == GMRT_OK, "%s", d.msg);
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    ck_assert_ptr_nonnull(w);
    const char *arch;
    const char *const *tok;
    const uint32_t *lens;
    const float *scores;
    const int32_t *types;
    uint64_t n, n2, n3;
    bool add_bos = false;
    ck_assert(gmrt_gguf_get_str(g, "general.architecture", &arch, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_strs(g, "tokenizer.ggml.tokens", &tok, &lens, &n, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_f32s(g, "tokenizer.ggml.scores", &scores, &n2, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_i32s(g, "tokenizer.ggml.token_type", &types, &n3, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &d) == GMRT_OK);
    gmrt_status st = gmrt_gguf_writer_set_str(w, "general.architecture", arch);
    if (!st) st = gmrt_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!st) st = gmrt_gguf_writer_set_strs(w, "tokenizer.ggml.tokens", tok, lens, n);
    if (!st) st = gmrt_gguf_writer_set_f32s(w, "tokenizer.ggml.scores", scores, n2);
    if (!st) st = gmrt_gguf_writer_set_i32s(w, "tokenizer.ggml.token_type", types, n3);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 3);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    if (!st) st = gmrt_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    if (!st) st = gmrt_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    for (int64_t i = 0; !st && i < gmrt_gguf_n_tensors(g); i++) {
        const gmrt_gguf_tensor *t = gmrt_gguf_tensor_at(g, i);
        st = gmrt_gguf_writer_add_tensor(w, t->name, retyped(t, dtype), t->n_dims, t->ne);
    }
    ck_assert_int_eq(st, GMRT_OK);
    retype rt = {g, dtype};
    ck_assert_msg(gmrt_gguf_writer_write(w, out, retype_fill, &rt, &d) == GMRT_OK, "%s", d.msg);
    gmrt_gguf_writer_destroy(w);
    gmrt_gguf_close(g);
    return out;
}

/* The variant's graph with matmuls of type dtype and the embedding per
 * embed_type; gemma3-256's YAML is written in bf16, the others in f32. */
static const char *graph_typed(const char *variant, int32_t dtype, loaded *L)
{
    char rel[128], from[96], to[128], tag[96];
    snprintf(rel, sizeof rel, "tests/conformance/%s.yaml", variant);
    const char *base = strcmp(variant, "gemma3-256") == 0 ? "bf16" : "f32";
    int64_t width = strcmp(variant, "gemma3-256") == 0 ? 256 : 0;
    snprintf(from, sizeof from, "  embed: %s\n  attn: %s\n  ffn: %s", base, base, base);
    const char *t = gmrt_dtype_name(dtype);
    snprintf(to, sizeof to, "  embed: %s\n  attn: %s\n  ffn: %s",
             gmrt_dtype_name(embed_type(dtype, width)), t, t);
    snprintf(tag, sizeof tag, "%s-%s", variant, t);
    const char *g = yaml_variant(rel, tag, from, to);
    load_graph(g, tag, L);
    return g;
}

/* ------------------------------------------------------------ f32 / bf16 */

static void check_f32(const char *variant, const loaded *L, const char *weights,
                      const char *how)
{
    gmrt_eval_report r = eval_ref(L, weights, fixture(variant, "ref.gguf"));
    fprintf(stderr, "conformance: %-14s f32  vs transformers: NMSE max %.2e mean %.2e, "
            "KL mean %.2e, top-1 %.1f%% over %lld positions (%s)\n", variant,
            r.all.nmse_max, r.all.nmse_mean, r.all.kl_mean, 100 * r.all.top1,
            (long long)r.all.n, how);
    ck_assert_int_eq(r.n_seq, 3);
    ck_assert_msg(r.all.nmse_max <= 1e-5, "%s (%s): NMSE %.3g > 1e-5", variant, how,
                  r.all.nmse_max);
    ck_assert_msg(r.all.top1 == 1.0, "%s (%s): argmax differs at some position", variant,
                  how);
    gmrt_eval_report_free(&r);
}

START_TEST(test_conformance_f32)
{
    for (int v = 0; v < N_VARIANTS; v++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tests/conformance/%s.yaml", variants[v]);
        loaded L;
        load_graph(gmc_test_src(rel), variants[v], &L);
        check_f32(variants[v], &L, fixture(variants[v], "model.safetensors"), "safetensors");
        dlclose(L.so);
    }
}
END_TEST

/* Gemma 4 (scripts/make_gemma4_fixtures.py) and Gemma 3n
 * (scripts/make_gemma3n_fixtures.py): llama.cpp's gemma4 / gemma3n GGUF
 * layouts, F32, against transformers at every position: gemma4-e (per-layer
 * embeddings, KV sharing, double-wide FFN, per-kind head_dim, proportional
 * RoPE), gemma4-moe (experts beside the dense FFN, K = V globals with
 * fewer KV heads) and gemma3n (AltUp streams, LAuReL, the Gaussian top-k,
 * per-layer embeddings into the other streams, KV sharing), on the
 * conformance target and on the host's. */
START_TEST(test_conformance_gemma4_gguf)
{
    static const char *const gv[] = {"gemma4-e", "gemma4-moe", "gemma3n"};
    const char *targets[2] = {target(), "host"};
    for (int t = 0; t < 2; t++) {
        if (t == 1 && strcmp(targets[0], "host") == 0)
            break;
        for (int v = 0; v < 3; v++) {
            char rel[128], tag[96];
            snprintf(rel, sizeof rel, "tests/conformance/%s.yaml", gv[v]);
            snprintf(tag, sizeof tag, "%s-%s", gv[v], targets[t]);
            loaded L;
            load_graph_for(gmc_test_src(rel), tag, targets[t], &L);
            char how[64];
            snprintf(how, sizeof how, "GGUF, target %s", targets[t]);
            check_f32(gv[v], &L, fixture(gv[v], "model.gguf"), how);
            dlclose(L.so);
        }
    }
}
END_TEST

/* gemma4-q's graph with every matmul, the embedding and the per-layer
 * tables of type dtype. */
static void gemma4_q_typed(int32_t dtype, loaded *L)
{
    char to[160], tag[64];
    const char *t = gmrt_dtype_name(dtype);
    snprintf(to, sizeof to, "  embed: %s\n  attn: %s\n  ffn: %s\n  ple: %s\n  ple_proj: %s", t,
             t, t, t, t);
    snprintf(tag, sizeof tag, "gemma4-q-%s", t);
    const char *g = yaml_variant("tests/conformance/gemma4-q.yaml", tag,
                                 "  embed: f32\n  attn: f32\n  ffn: f32", to);
    load_graph(g, tag, L);
}

/* gemma4-q (every Gemma 4 feature at widths 32-wide blocks divide): f32
 * as above; its bf16 file (matmuls and tables BF16, the router too, so it
 * is converted to the compiled f32 at load) against the f32 forward on the
 * same bf16-rounded weights (§7.3 item 12: NMSE <= 1e-4); Q8_0 quantized
 * at load from the f32 file against the f32 reference.  The Q8_0 bound is
 * not §7.3's 0.002: this random-weight MoE routes near ties, so any
 * rounding of the weights flips a few expert choices (bf16 rounding flips
 * 3 of 384; Q8_0 of the attention, the FFN, the embedding or the per-layer
 * tables alone each move a position by KL ~0.12), and a flipped position
 * dominates the mean (docs/gemma4.md).  The bound here, 0.01 with 95 %
 * top-1, still fails on a wrong quantized kernel (dequantized garbage gives
 * KL > 1). */
START_TEST(test_conformance_gemma4_quant)
{
    loaded L;
    load_graph(gmc_test_src("tests/conformance/gemma4-q.yaml"), "gemma4-q", &L);
    check_f32("gemma4-q", &L, fixture("gemma4-q", "model.gguf"), "GGUF");
    dlclose(L.so);

    gmrt_session_opts so = {.n_threads = 2, .requant = true};
    gemma4_q_typed(GMK_DTYPE_BF16, &L);
    gmrt_eval_report r = eval_ref_opts(&L, fixture("gemma4-q", "model-bf16.gguf"),
                                       fixture("gemma4-q", "ref-bf16.gguf"), &so);
    fprintf(stderr, "conformance: gemma4-q       bf16 vs transformers (bf16 weights): NMSE max "
            "%.2e, KL mean %.2e, top-1 %.1f%%\n", r.all.nmse_max, r.all.kl_mean,
            100 * r.all.top1);
    ck_assert_msg(r.all.nmse_max <= 1e-4, "gemma4-q bf16: NMSE %.3g > 1e-4", r.all.nmse_max);
    ck_assert_msg(r.all.top1 == 1.0, "gemma4-q bf16: argmax differs");
    gmrt_eval_report_free(&r);
    dlclose(L.so);

    gemma4_q_typed(GMK_DTYPE_Q8_0, &L);
    r = eval_ref_opts(&L, fixture("gemma4-q", "model.gguf"), fixture("gemma4-q", "ref.gguf"),
                      &so);
    fprintf(stderr, "conformance: gemma4-q       q8_0 vs transformers (f32): KL mean %.2e max "
            "%.2e, top-1 %.1f%%, NMSE mean %.2e\n", r.all.kl_mean, r.all.kl_max,
            100 * r.all.top1, r.all.nmse_mean);
    ck_assert_msg(r.all.kl_mean <= 0.01, "gemma4-q q8_0: KL %.3g > 0.01", r.all.kl_mean);
    ck_assert_msg(r.all.top1 >= 0.95, "gemma4-q q8_0: top-1 %.3f < 0.95", r.all.top1);
    gmrt_eval_report_free(&r);
    dlclose(L.so);
}
END_TEST

/* bf16 checkpoints through the loader: gemma2 and gemma3 against the f32
 * forward on their bf16-rounded weights (ref-bf16.gguf); gemma3-256 has
 * only a bf16 checkpoint and its ref.gguf is that forward. */
START_TEST(test_conformance_bf16)
{
    static const char *const bv[] = {"gemma2", "gemma3", "gemma3-256"};
    for (int v = 0; v < 3; v++) {
        loaded L;
        bool only16 = v == 2;
        if (only16)
            load_graph(gmc_test_src("tests/conformance/gemma3-256.yaml"), bv[v], &L);
        else
            graph_typed(bv[v], GMK_DTYPE_BF16, &L);
        gmrt_eval_report r = eval_ref(&L, fixture(bv[v], "model-bf16.safetensors"),
                                      fixture(bv[v], only16 ? "ref.gguf" : "ref-bf16.gguf"));
        fprintf(stderr, "conformance: %-14s bf16 vs transformers: NMSE max %.2e, top-1 %.1f%%\n",
                bv[v], r.all.nmse_max, 100 * r.all.top1);
        ck_assert_msg(r.all.nmse_max <= 1e-4, "%s: bf16 NMSE %.3g > 1e-4", bv[v],
                      r.all.nmse_max);
        gmrt_eval_report_free(&r);
        dlclose(L.so);
    }
}
END_TEST

/* The GGUF path of gemma3 (Python's name mapping and +1, the GGUF reader)
 * must match the reference as tightly, and quantized GGUF files written with
 * the same quantizers must give exactly the loader's logits: the two routes
 * differ only in who maps names and adds the +1 (both f32(w + 1)).  bf16
 * differs in the last bits: the GGUF route recovers w as f32(1 + w) - 1
 * before rounding it to bf16. */
START_TEST(test_conformance_gguf_path)
{
    loaded L;
    load_graph(gmc_test_src("tests/conformance/gemma3.yaml"), "gemma3", &L);
    check_f32("gemma3", &L, fixture("gemma3", "model.gguf"), "GGUF");
    dlclose(L.so);
    static const int32_t types[] = {GMK_DTYPE_BF16, GMK_DTYPE_Q8_0, GMK_DTYPE_Q4_0};
    for (int q = 0; q < 3; q++) {
        graph_typed("gemma3", types[q], &L);
        bool b16 = types[q] == GMK_DTYPE_BF16;
        const char *st = fixture("gemma3", b16 ? "model-bf16.safetensors" : "model.safetensors");
        const char *ref = fixture("gemma3", b16 ? "ref-bf16.gguf" : "ref.gguf");
        gmrt_eval_report a = eval_ref(&L, write_retyped("gemma3", types[q]), ref);
        gmrt_eval_report b = eval_ref(&L, st, ref);
        fprintf(stderr, "conformance: gemma3 %s GGUF path vs loader: KL mean %.6e / %.6e, "
                "NMSE max %.3e / %.3e\n", gmrt_dtype_name(types[q]), a.all.kl_mean,
                b.all.kl_mean, a.all.nmse_max, b.all.nmse_max);
        bool same = b16 ? fabs(a.all.nmse_max - b.all.nmse_max) < 1e-10 && a.all.nmse_max <= 1e-4
                        : a.all.kl_mean == b.all.kl_mean && a.all.nmse_max == b.all.nmse_max;
        ck_assert_msg(same, "gemma3 %s: the GGUF path and the loader disagree",
                      gmrt_dtype_name(types[q]));
        ck_assert_msg(a.all.kl_mean > 0, "gemma3 %s: no effect at all",
                      gmrt_dtype_name(types[q]));
        gmrt_eval_report_free(&a);
        gmrt_eval_report_free(&b);
        dlclose(L.so);
    }
}
END_TEST

/* The f32 comparison must be able to see a 0.13 % error: gemma1-mha is a
 * bf16-scale model (sqrt(48) = 6.9282 -> 6.9375).  The RMSNorm after the
 * embedding hides most of a scale error (it only reaches the residual), so
 * it moves the logits by NMSE ~1e-6, under the 1e-5 bound of §7.3; what
 * shows it is that the right build is orders of magnitude closer. */
START_TEST(test_conformance_wrong_embed_scale_fails)
{
    const char *g = yaml_variant("tests/conformance/gemma1-mha.yaml", "mha-exact",
                                 "embed_scale: bf16", "embed_scale: exact");
    const char *w = fixture("gemma1-mha", "model.safetensors");
    loaded L;
    load_graph(g, "mha-exact", &L);
    gmrt_eval_report r = eval_ref(&L, w, fixture("gemma1-mha", "ref.gguf"));
    loaded R;
    load_graph(gmc_test_src("tests/conformance/gemma1-mha.yaml"), "gemma1-mha", &R);
    gmrt_eval_report ok = eval_ref(&R, w, fixture("gemma1-mha", "ref.gguf"));
    fprintf(stderr, "conformance: gemma1-mha with the wrong embed scale: NMSE max %.2e "
            "(right scale: %.2e)\n", r.all.nmse_max, ok.all.nmse_max);
    ck_assert_msg(r.all.nmse_max > 1000 * ok.all.nmse_max && r.all.nmse_max > 1e-8,
                  "a wrong embedding scale went unnoticed (%.3g vs %.3g)", r.all.nmse_max,
                  ok.all.nmse_max);
    gmrt_eval_report_free(&r);
    gmrt_eval_report_free(&ok);
    dlclose(L.so);
    dlclose(R.so);
}
END_TEST

/* Negative control for the loader path: a checkpoint whose norm weights
 * already hold 1 + w (the GGUF convention) gets a second +1 from the loader;
 * the f32 bound must catch that.  The copy is gemma3's model.safetensors
 * with 1 added to every F32 norm tensor in place, beside its config.json. */
static void write_unfolded(const char *dir)
{
    char path[4400];
    size_t len = 0;
    char *buf = gmc_test_read_file(fixture("gemma3", "model.safetensors"), &len);
    ck_assert(buf && len >= 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (unsigned char)buf[i];
    ck_assert_uint_le(hlen, len - 8);
    gmrt_json *doc;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_json_parse(buf + 8, hlen, "header", NULL, &doc, &d) == GMRT_OK, "%s",
                  d.msg);
    const gmrt_json_value *root = gmrt_json_root(doc);
    int changed = 0;
    for (size_t i = 0; i < root->u.c.n; i++) {
        const gmrt_json_member *mb = &root->u.c.members[i];
        if (!strstr(mb->key, "norm.weight"))
            continue;
        const gmrt_json_value *off = gmrt_json_get(mb->value, "data_offsets");
        const gmrt_json_value *dt = gmrt_json_get(mb->value, "dtype");
        ck_assert(off && off->u.c.n == 2 && dt && strcmp(dt->u.s.p, "F32") == 0);
        size_t a = (size_t)off->u.c.items[0].u.i, b = (size_t)off->u.c.items[1].u.i;
        ck_assert(a <= b && 8 + hlen + b <= len);
        for (size_t at = 8 + hlen + a; at < 8 + hlen + b; at += 4) {
            float f;
            memcpy(&f, buf + at, 4);
            f += 1.0f;
            memcpy(buf + at, &f, 4);
        }
        changed++;
    }
    gmrt_json_destroy(doc);
    ck_assert_int_eq(changed, 6 * 6 + 1); /* six per layer (QK-norm, post-norms), final */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    ck_assert(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
    free(buf);
    char *cfg = gmc_test_read_file(fixture("gemma3", "config.json"), &len);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "wb");
    ck_assert(cfg && f && fwrite(cfg, 1, len, f) == len);
    fclose(f);
    free(cfg);
}

START_TEST(test_conformance_unfolded_norm_fails)
{
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/gemma3-unfolded", gmc_test_tmpdir());
    ck_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    write_unfolded(dir);
    loaded L;
    load_graph(gmc_test_src("tests/conformance/gemma3.yaml"), "gemma3", &L);
    gmrt_eval_report r = eval_ref(&L, dir, fixture("gemma3", "ref.gguf"));
    fprintf(stderr, "conformance: gemma3 with norms +1 twice: NMSE max %.2e, top-1 %.1f%%\n",
            r.all.nmse_max, 100 * r.all.top1);
    ck_assert_msg(r.all.nmse_max > 1e-5, "an unfolded norm passed the f32 bound (%.3g)",
                  r.all.nmse_max);
    gmrt_eval_report_free(&r);
    dlclose(L.so);
}
END_TEST

/* ------------------------------------------------------------ quantized */

/* Quantized at load from the safetensors checkpoints.  The §7.3 bounds are
 * written for real models.  gemma2 (d_model 64) meets Q8_0 and Q4_0; gemma3
 * (d_model 32, each row one Q4_0 block) loses 35 % top-1 to Q4_0 and is
 * bounded there only at 0.5, to catch a broken kernel.  gemma3-256 (every
 * width a multiple of 256, embedding q6_k in the 4-bit files as llama.cpp
 * does) meets Q8_0; at Q4_0 / Q4_K this random-weight model, like gemma3, is
 * far more sensitive than a trained one (docs/conformance.md), so those are
 * reported, bounded at 0.5, and Q4_K must beat Q4_0.  The tight check of the
 * 4-bit rows is the llama.cpp anchor below (same blocks: the quantizers are
 * bit-exact, test_conformance_quantizer_bits). */
typedef struct qcase {
    const char *variant, *weights;
    int32_t dtype;
    double bound;
} qcase;

START_TEST(test_conformance_quantized_kl)
{
    static const qcase qc[] = {
        {"gemma2", "model.safetensors", GMK_DTYPE_Q8_0, 0.002},
        {"gemma2", "model.safetensors", GMK_DTYPE_Q4_0, 0.09},
        {"gemma3", "model.safetensors", GMK_DTYPE_Q8_0, 0.002},
        {"gemma3", "model.safetensors", GMK_DTYPE_Q4_0, 0.5},
        {"gemma3-256", "model-bf16.safetensors", GMK_DTYPE_Q8_0, 0.002},
        {"gemma3-256", "model-bf16.safetensors", GMK_DTYPE_Q4_0, 0.5},
        {"gemma3-256", "model-bf16.safetensors", GMK_DTYPE_Q4_K, 0.5},
    };
    double kl256[3] = {0};
    for (size_t i = 0; i < sizeof qc / sizeof qc[0]; i++) {
        const qcase *c = &qc[i];
        loaded L;
        graph_typed(c->variant, c->dtype, &L);
        gmrt_eval_report r = eval_ref(&L, fixture(c->variant, c->weights),
                                      fixture(c->variant, "ref.gguf"));
        fprintf(stderr, "conformance: %-14s %-4s vs f32 transformers: KL mean %.2e max "
                "%.2e, top-1 %.1f%% (quantized at load)\n", c->variant,
                gmrt_dtype_name(c->dtype), r.all.kl_mean, r.all.kl_max, 100 * r.all.top1);
        ck_assert_msg(r.all.kl_mean <= c->bound, "%s %s: mean KL %.3g > %.3g", c->variant,
                      gmrt_dtype_name(c->dtype), r.all.kl_mean, c->bound);
        /* Quantization must be visible at all, or the bound tests nothing. */
        ck_assert_msg(r.all.kl_mean > 1e-7, "%s: quantized KL %.3g is suspiciously 0",
                      c->variant, r.all.kl_mean);
        if (i >= 4)
            kl256[i - 4] = r.all.kl_mean;
        gmrt_eval_report_free(&r);
        dlclose(L.so);
    }
    ck_assert_msg(kl256[0] < kl256[2] && kl256[2] < kl256[1],
                  "gemma3-256: expected KL Q8_0 < Q4_K < Q4_0, got %.3g, %.3g, %.3g", kl256[0],
                  kl256[2], kl256[1]);
}
END_TEST

/* ---------------------------------------------- llama.cpp's quantizer */

/* docs/input-checks.md §7.3: quantized KL "no more than 10 % worse than llama.cpp
 * on the same GGUF and text".  llamacpp-<type>.gguf is a fixture quantized
 * by llama.cpp's own quantizer (pure: every matmul of the type, the tied
 * embedding q6_k / q8_0 as embed_type), ref-llamacpp-<type>.gguf llama.cpp's
 * logits on it (scripts/ref_llamacpp_quant.py).  gemmac runs the same file,
 * and both are scored against the f32 transformers reference by the same
 * code.  Also bounded: gemmac against llama.cpp on that file (the arithmetic
 * gap; llama.cpp rounds activations to 8 bits, the generic target does not)
 * at the 0.005 of the real-model check.  The absolute §7.3 row is reported,
 * not asserted: random weights do not meet the 4-bit rows (see
 * test_conformance_quantized_kl). */
typedef struct lcase {
    const char *variant;
    int32_t dtype;
    double table;  /* §7.3 absolute bound, trained models */
} lcase;

#define ANCHOR_RATIO 1.10
#define ANCHOR_GAP 0.005

static void check_anchor(const lcase *c)
{
    const char *t = gmrt_dtype_name(c->dtype);
    char model[64], other[64];
    snprintf(model, sizeof model, "llamacpp-%s.gguf", t);
    snprintf(other, sizeof other, "ref-llamacpp-%s.gguf", t);
    loaded L;
    graph_typed(c->variant, c->dtype, &L);
    gmrt_eval_report ours = eval_ref(&L, fixture(c->variant, model), fixture(c->variant, "ref.gguf"));
    gmrt_eval_report gap = eval_ref(&L, fixture(c->variant, model), fixture(c->variant, other));
    gmrt_eval_report lcpp;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_eval_compare(L.m, fixture(c->variant, "ref.gguf"),
                                    fixture(c->variant, other), &lcpp, &d) == GMRT_OK, "%s",
                  d.msg);
    double ratio = ours.all.kl_mean / lcpp.all.kl_mean;
    fprintf(stderr, "conformance: %-10s %-4s llama.cpp's GGUF vs f32 transformers: KL mean "
            "gemmac %.3e (top-1 %.1f%%), llama.cpp %.3e (top-1 %.1f%%), ratio %.3f (<= %.2f); "
            "gemmac vs llama.cpp %.3e (<= %.3g); §7.3 table <= %.3g %s\n", c->variant, t,
            ours.all.kl_mean, 100 * ours.all.top1, lcpp.all.kl_mean, 100 * lcpp.all.top1,
            ratio, ANCHOR_RATIO, gap.all.kl_mean, ANCHOR_GAP, c->table,
            ours.all.kl_mean <= c->table ? "met" : "NOT met (random weights)");
    /* The anchor must see the quantization, or the ratio tests nothing. */
    ck_assert_msg(lcpp.all.kl_mean > 1e-6, "%s %s: llama.cpp's KL %.3g is suspiciously 0",
                  c->variant, t, lcpp.all.kl_mean);
    ck_assert_msg(ours.all.kl_mean <= ANCHOR_RATIO * lcpp.all.kl_mean,
                  "%s %s: KL %.4g is more than %.2f x llama.cpp's %.4g on the same GGUF",
                  c->variant, t, ours.all.kl_mean, ANCHOR_RATIO, lcpp.all.kl_mean);
    ck_assert_msg(gap.all.kl_mean <= ANCHOR_GAP, "%s %s: KL %.4g from llama.cpp on the same "
                  "GGUF > %.3g", c->variant, t, gap.all.kl_mean, ANCHOR_GAP);
    gmrt_eval_report_free(&ours);
    gmrt_eval_report_free(&gap);
    gmrt_eval_report_free(&lcpp);
    dlclose(L.so);
}

START_TEST(test_conformance_llamacpp_anchor)
{
    static const lcase lc[] = {
        {"gemma3-256", GMK_DTYPE_Q8_0, 0.002},
        {"gemma3-256", GMK_DTYPE_Q4_0, 0.09},
        {"gemma3-256", GMK_DTYPE_Q4_K, 0.04},
        {"gemma3", GMK_DTYPE_Q8_0, 0.002},
        {"gemma3", GMK_DTYPE_Q4_0, 0.09},
    };
    for (size_t i = 0; i < sizeof lc / sizeof lc[0]; i++)
        check_anchor(&lc[i]);
}
END_TEST

/* docs/input-checks.md §7.3 item 11: where the GGUF layout is consumed, blocks
 * are bit-exact with ggml's reference quantizer.  Every quantized tensor of
 * llama.cpp's files is quantized again here from the same checkpoint
 * weights by gmrt_quantize_row (the quantize-at-load path), block by block. */
static const char *hf_name(const char *gguf, char *buf, size_t cap)
{
    static const char *const map[][2] = {
        {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
        {"ffn_gate", "mlp.gate_proj"},  {"ffn_up", "mlp.up_proj"},
        {"ffn_down", "mlp.down_proj"},
    };
    if (strcmp(gguf, "token_embd.weight") == 0)
        return "model.embed_tokens.weight";
    int layer, at = 0;
    char what[32];
    if (sscanf(gguf, "blk.%d.%31[a-z_]%n", &layer, what, &at) != 2 ||
        strcmp(gguf + at, ".weight") != 0)
        return NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(what, map[i][0]) == 0) {
            snprintf(buf, cap, "model.layers.%d.%s.weight", layer, map[i][1]);
            return buf;
        }
    return NULL;
}

/* Row r of a 2-D checkpoint tensor, widened to f32 (bf16 exactly). */
static void st_row(const gmrt_st_tensor *t, int64_t r, float *out)
{
    int64_t n = t->shape[1];
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == GMK_DTYPE_BF16) {
            uint16_t h;
            memcpy(&h, (const unsigned char *)t->data + 2 * (r * n + i), 2);
            out[i] = gmrt_bf16_to_f32(h);
        } else {
            ck_assert_int_eq(t->dtype, GMK_DTYPE_F32);
            memcpy(&out[i], (const unsigned char *)t->data + 4 * (r * n + i), 4);
        }
    }
}

typedef struct block_diff {
    int64_t blocks[GMK_DTYPE_COUNT], differ[GMK_DTYPE_COUNT];
} block_diff;

static void diff_file(const char *variant, const char *weights, const char *file,
                      block_diff *bd)
{
    gmrt_diag d = {0};
    gmrt_gguf *g;
    gmrt_safetensors *st;
    ck_assert_msg(gmrt_gguf_open(fixture(variant, file), &g, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_msg(gmrt_safetensors_open(fixture(variant, weights), &st, &d) == GMRT_OK, "%s",
                  d.msg);
    for (int64_t i = 0; i < gmrt_gguf_n_tensors(g); i++) {
        const gmrt_gguf_tensor *t = gmrt_gguf_tensor_at(g, i);
        if (t->dtype == GMK_DTYPE_F32)
            continue; /* norms stay f32 */
        char buf[128];
        const char *name = hf_name(t->name, buf, sizeof buf);
        ck_assert_msg(name != NULL, "%s: unexpected quantized tensor %s", file, t->name);
        const gmrt_st_tensor *w = gmrt_safetensors_find(st, name);
        ck_assert_msg(w && w->n_dims == 2 && w->shape[0] == t->ne[1] && w->shape[1] == t->ne[0],
                      "%s: %s does not match %s", file, t->name, name);
        size_t row_bytes, bb = gmrt_dtype_block_bytes(t->dtype);
        ck_assert(gmrt_dtype_row_bytes(t->dtype, t->ne[0], &row_bytes, &d) == GMRT_OK);
        float *x = malloc((size_t)t->ne[0] * sizeof *x);
        unsigned char *q = malloc(row_bytes);
        ck_assert(x && q);
        for (int64_t r = 0; r < t->ne[1]; r++) {
            st_row(w, r, x);
            ck_assert(gmrt_quantize_row(t->dtype, x, q, t->ne[0], &d) == GMRT_OK);
            const unsigned char *ref = (const unsigned char *)t->data + (size_t)r * row_bytes;
            for (size_t b = 0; b < row_bytes / bb; b++) {
                bd->blocks[t->dtype]++;
                bd->differ[t->dtype] += memcmp(q + b * bb, ref + b * bb, bb) != 0;
            }
        }
        free(x);
        free(q);
    }
    gmrt_safetensors_close(st);
    gmrt_gguf_close(g);
}

START_TEST(test_conformance_quantizer_bits)
{
    static const char *const files[][3] = {
        {"gemma3-256", "model-bf16.safetensors", "llamacpp-q8_0.gguf"},
        {"gemma3-256", "model-bf16.safetensors", "llamacpp-q4_0.gguf"},
        {"gemma3-256", "model-bf16.safetensors", "llamacpp-q4_k.gguf"},
        {"gemma3", "model.safetensors", "llamacpp-q8_0.gguf"},
        {"gemma3", "model.safetensors", "llamacpp-q4_0.gguf"},
    };
    block_diff bd = {0};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        diff_file(files[i][0], files[i][1], files[i][2], &bd);
    static const int32_t types[] = {GMK_DTYPE_Q8_0, GMK_DTYPE_Q4_0, GMK_DTYPE_Q4_K,
                                    GMK_DTYPE_Q6_K};
    for (int k = 0; k < 4; k++) {
        int32_t t = types[k];
        fprintf(stderr, "conformance: gmrt_quantize_row vs llama.cpp's quantizer, %s: %lld of "
                "%lld blocks differ\n", gmrt_dtype_name(t), (long long)bd.differ[t],
                (long long)bd.blocks[t]);
        ck_assert_msg(bd.blocks[t] > 0, "no %s blocks compared", gmrt_dtype_name(t));
    }
    /* q6_k: the tied embedding of gemma3-256's 4-bit files. */
    for (int k = 0; k < 4; k++)
        ck_assert_msg(bd.differ[types[k]] == 0, "%s: gmrt_quantize_row is not bit-exact with "
                      "llama.cpp's quantizer", gmrt_dtype_name(types[k]));
}
END_TEST

/* gmrt_eval_compare refuses files of other sequences, and a file compared
 * with itself scores KL 0, NMSE 0 and top-1 100 %. */
START_TEST(test_conformance_compare_files)
{
    loaded L;
    load_graph(gmc_test_src("tests/conformance/gemma3.yaml"), "gemma3", &L);
    gmrt_eval_report r;
    gmrt_diag d = {0};
    const char *ref = fixture("gemma3", "ref.gguf");
    ck_assert(gmrt_eval_compare(L.m, ref, ref, &r, &d) == GMRT_OK);
    ck_assert(r.all.kl_max == 0 && r.all.nmse_max == 0 && r.all.top1 == 1.0);
    ck_assert_int_eq(r.all.n, 3 * 32);
    gmrt_eval_report_free(&r);
    ck_assert_int_eq(gmrt_eval_compare(L.m, ref, fixture("gemma3", "ref-bf16.gguf"), &r, &d),
                     GMRT_OK);
    gmrt_eval_report_free(&r);
    /* ref-bf16.gguf has the same sequences; a file whose last id differs is
     * refused. */
    char other[4300];
    snprintf(other, sizeof other, "%s/gemma3-other-seqs.gguf", gmc_test_tmpdir());
    gmrt_gguf *g;
    ck_assert(gmrt_gguf_open(ref, &g, &d) == GMRT_OK);
    const int32_t *tok;
    uint64_t n;
    ck_assert(gmrt_gguf_get_i32s(g, "gemmac.ref.tokens", &tok, &n, &d) == GMRT_OK);
    int32_t *moved = malloc(n * sizeof *moved);
    ck_assert_ptr_nonnull(moved);
    memcpy(moved, tok, n * sizeof *moved);
    moved[n - 1] = moved[n - 1] == 7 ? 8 : 7;
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    int64_t ne[3] = {512, 32, 3};
    ck_assert(!gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_seq", 3));
    ck_assert(!gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_pos", 32));
    ck_assert(!gmrt_gguf_writer_set_i32s(w, "gemmac.ref.tokens", moved, n));
    ck_assert(!gmrt_gguf_writer_add_tensor(w, "logits", GMK_DTYPE_F32, 3, ne));
    ck_assert(gmrt_gguf_writer_write(w, other, fill_zero, NULL, &d) == GMRT_OK);
    gmrt_gguf_writer_destroy(w);
    gmrt_gguf_close(g);
    free(moved);
    ck_assert_int_eq(gmrt_eval_compare(L.m, ref, other, &r, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, "different token sequences"), "%s", d.msg);
    dlclose(L.so);
}
END_TEST

/* ------------------------------------------------------------ logits out */

/* The array of a .npy file written by gmrt_eval_write_logits, after
 * checking its header as numpy's format 1.0 defines it: magic, version,
 * little-endian u16 length, a dict literal padded with spaces to end at a
 * multiple of 64 bytes with '\n', and the data right after it. */
static const float *npy_rows(const char *file, size_t size, int rows, int cols)
{
    ck_assert_msg(size > 10 && !memcmp(file, "\x93NUMPY\x01\x00", 8), "not an npy 1.0 file");
    size_t hlen = (unsigned char)file[8] | (size_t)(unsigned char)file[9] << 8;
    ck_assert_msg((10 + hlen) % 64 == 0 && file[10 + hlen - 1] == '\n', "header of %zu", hlen);
    char *dict = strndup(file + 10, hlen), want[80];
    snprintf(want, sizeof want, "'shape': (%d, %d)", rows, cols);
    ck_assert_msg(!strncmp(dict, "{'descr': '<f4', 'fortran_order': False, ", 41) &&
                  strstr(dict, want) && strspn(strchr(dict, '}') + 1, " \n") ==
                  strlen(strchr(dict, '}') + 1), "header: %s", dict);
    free(dict);
    ck_assert_uint_eq(size - 10 - hlen, (size_t)rows * (size_t)cols * sizeof(float));
    return (const float *)(file + 10 + hlen);
}

/* --ids/--logits-out: the logits written for the reference's first
 * sequence are, bit for bit, those a session computes for it, and give the
 * NMSE that gmrt_eval_reference reports for that sequence; the raw file
 * is the same array without the header. */
START_TEST(test_conformance_logits_out)
{
    loaded L;
    load_graph(gmc_test_src("tests/conformance/gemma3.yaml"), "gemma3", &L);
    const char *ref = fixture("gemma3", "ref.gguf");
    gmrt_diag d = {0};
    gmrt_session *s = NULL;
    gmrt_session_opts so = {.n_threads = 2};
    ck_assert_msg(gmrt_session_create(L.m, fixture("gemma3", "model.safetensors"), &so, &s,
                                      &d) == GMRT_OK, "%s", d.msg);
    gmrt_gguf *g;
    const int32_t *tok;
    uint64_t n_tok;
    ck_assert(gmrt_gguf_open(ref, &g, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_i32s(g, "gemmac.ref.tokens", &tok, &n_tok, &d) == GMRT_OK);
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "logits");
    const int P = 32, V = 512; /* sequence 0 is unpadded: 32 positions */
    ck_assert(n_tok == 3u * (uint64_t)P && tok[P - 1] >= 0 && t);
    char npy[4300], raw[4300];
    snprintf(npy, sizeof npy, "%s/logits-out.npy", gmc_test_tmpdir());
    snprintf(raw, sizeof raw, "%s/logits-out.f32", gmc_test_tmpdir());
    ck_assert_msg(gmrt_eval_write_logits(s, L.m, tok, (size_t)P, npy, &d) == GMRT_OK, "%s",
                  d.msg);
    ck_assert(gmrt_eval_write_logits(s, L.m, tok, (size_t)P, raw, &d) == GMRT_OK);
    size_t n_npy, n_raw;
    char *f_npy = gmc_test_read_file(npy, &n_npy), *f_raw = gmc_test_read_file(raw, &n_raw);
    const float *rows = npy_rows(f_npy, n_npy, P, V);
    ck_assert(n_raw == (size_t)P * V * sizeof(float) && !memcmp(f_raw, rows, n_raw));

    const float *ours;
    gmrt_session_reset(s);
    ck_assert(gmrt_session_eval(s, tok, (size_t)P, true, &ours, &d) == GMRT_OK);
    ck_assert(!memcmp(ours, rows, n_raw));
    gmrt_eval_report r;
    ck_assert(gmrt_eval_reference(s, L.m, ref, &r, &d) == GMRT_OK);
    const float *want = t->data;
    double nmse = 0;
    for (int i = 0; i < P; i++) {
        double num = 0, den = 0;
        for (int v = 0; v < V; v++) {
            double e = (double)rows[i * V + v] - want[i * V + v];
            num += e * e;
            den += (double)want[i * V + v] * want[i * V + v];
        }
        nmse += num / den;
    }
    nmse /= P;
    ck_assert_msg(r.seq[0].nmse_mean > 0 && fabs(nmse - r.seq[0].nmse_mean) <=
                  1e-12 * nmse, "NMSE %.9e, eval --ref %.9e", nmse, r.seq[0].nmse_mean);
    gmrt_eval_report_free(&r);

    /* The command line: ids as a list write the same array; --ids alone is
     * a usage error. */
    char cmd[20000], ids[512] = "", cli[4300];
    for (int i = 0; i < P; i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", tok[i]);
    snprintf(cli, sizeof cli, "%s/logits-cli.npy", gmc_test_tmpdir());
    char graph[4300]; /* gmc_test_src's buffer is fixture()'s too */
    snprintf(graph, sizeof graph, "%s", gmc_test_src("tests/conformance/gemma3.yaml"));
    snprintf(cmd, sizeof cmd, "'%s' eval '%s' --target %s --build-dir '%s/conf-cli' "
             "--weights '%s' --ids %s --logits-out '%s' -t 1 2>/dev/null", GMC_GEMMAC, graph,
             target(), gmc_test_tmpdir(), fixture("gemma3", "model.safetensors"), ids, cli);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
    size_t n_cli;
    char *f_cli = gmc_test_read_file(cli, &n_cli);
    ck_assert(n_cli == n_npy && !memcmp(f_cli, f_npy, n_npy));
    free(f_cli);
    snprintf(cmd, sizeof cmd, "'%s' eval '%s' --target %s --build-dir '%s/conf-cli' "
             "--weights '%s' --ids 1,2 2>/dev/null", GMC_GEMMAC, graph, target(),
             gmc_test_tmpdir(), fixture("gemma3", "model.safetensors"));
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
    free(f_npy);
    free(f_raw);
    gmrt_gguf_close(g);
    gmrt_session_destroy(s);
    dlclose(L.so);
}
END_TEST

/* Bad --ids name what and where: the file and line, or the option. */
START_TEST(test_conformance_ids_errors)
{
    gmrt_diag d = {0};
    int32_t *ids;
    size_t n;
    ck_assert(gmrt_eval_read_ids("2, 651 17", 1000, 64, &ids, &n, &d) == GMRT_OK);
    ck_assert(n == 3 && ids[0] == 2 && ids[1] == 651 && ids[2] == 17);
    free(ids);
    ck_assert_int_eq(gmrt_eval_read_ids("2,1000", 1000, 64, &ids, &n, &d), GMRT_ERR_ARG);
    ck_assert_msg(strstr(d.msg, "--ids: \"1000\" (id 1)") && strstr(d.msg, "[0, 1000)"), "%s",
                  d.msg);
    ck_assert_int_eq(gmrt_eval_read_ids("1,2,3", 1000, 2, &ids, &n, &d), GMRT_ERR_LIMIT);
    ck_assert_int_eq(gmrt_eval_read_ids(" , ", 1000, 2, &ids, &n, &d), GMRT_ERR_ARG);
    char path[4300];
    snprintf(path, sizeof path, "%s/ids-bad.txt", gmc_test_tmpdir());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("2 5\n7,x9 4\n", f);
    fclose(f);
    ck_assert_int_eq(gmrt_eval_read_ids(path, 1000, 64, &ids, &n, &d), GMRT_ERR_ARG);
    char want[4400];
    snprintf(want, sizeof want, "%s:2: \"x9\" (id 3)", path);
    ck_assert_msg(strstr(d.msg, want), "%s", d.msg);
    snprintf(path, sizeof path, "%s/ids-missing.txt", gmc_test_tmpdir());
    ck_assert_int_eq(gmrt_eval_read_ids(path, 1000, 64, &ids, &n, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, "ids-missing.txt"), "%s", d.msg);
}
END_TEST

/* ------------------------------------------------------------ top-K refs */

/* --save-ref round trip and the lower-bound property: the top-K KL of the
 * f32 model against the bf16 model's top-8 is at most the full KL against
 * the bf16 model's full logits (data-processing inequality), and a model
 * against its own top-K reference scores KL 0 and top-1 100 %. */
START_TEST(test_conformance_topk_reference)
{
    loaded L16, L32;
    graph_typed("gemma3", GMK_DTYPE_BF16, &L16);
    load_graph(gmc_test_src("tests/conformance/gemma3.yaml"), "gemma3", &L32);
    const char *w16 = fixture("gemma3", "model-bf16.safetensors");
    char topk[4300];
    snprintf(topk, sizeof topk, "%s/gemma3-bf16-top8.gguf", gmc_test_tmpdir());
    gmrt_session_opts so = {.n_threads = 1};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    ck_assert(gmrt_session_create(L16.m, w16, &so, &s, &d) == GMRT_OK);
    /* The bf16 reference's own token sequences, read back from its file. */
    gmrt_gguf *g;
    const int32_t *tok;
    uint64_t n;
    ck_assert(gmrt_gguf_open(fixture("gemma3", "ref-bf16.gguf"), &g, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_i32s(g, "gemmac.ref.tokens", &tok, &n, &d) == GMRT_OK);
    ck_assert_uint_eq(n, 3 * 32);
    ck_assert_msg(gmrt_eval_save_topk(s, L16.m, tok, 3, 32, 8, topk, &d) == GMRT_OK, "%s", d.msg);
    gmrt_gguf_close(g);
    gmrt_eval_report self;
    ck_assert(gmrt_eval_reference(s, L16.m, topk, &self, &d) == GMRT_OK);
    gmrt_session_destroy(s);
    ck_assert_int_eq(self.top_k, 8);
    ck_assert_double_lt(self.all.kl_max, 1e-6); /* f32 storage of the log-probs */
    ck_assert(self.all.top1 == 1.0);
    ck_assert(self.all.nmse_max < 0); /* no logits in a top-K reference */
    gmrt_eval_report_free(&self);

    const char *w32 = fixture("gemma3", "model.safetensors");
    gmrt_eval_report full = eval_ref(&L32, w32, fixture("gemma3", "ref-bf16.gguf"));
    gmrt_eval_report part = eval_ref(&L32, w32, topk);
    fprintf(stderr, "conformance: gemma3 f32 vs bf16 weights: full KL %.3e >= top-8 KL %.3e\n",
            full.all.kl_mean, part.all.kl_mean);
    ck_assert_double_gt(part.all.kl_mean, 0);
    ck_assert_double_le(part.all.kl_mean, full.all.kl_mean * (1 + 1e-6) + 1e-12);
    ck_assert(part.all.top1 == full.all.top1);
    gmrt_eval_report_free(&full);
    gmrt_eval_report_free(&part);
    dlclose(L16.so);
    dlclose(L32.so);
}
END_TEST

/* A reference for another vocabulary is refused with both sizes named. */
START_TEST(test_conformance_reference_mismatch)
{
    char ref[4300];
    snprintf(ref, sizeof ref, "%s/vocab256.gguf", gmc_test_tmpdir());
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    int32_t tokens[4] = {2, 10, 11, 12};
    int64_t ne[3] = {256, 4, 1};
    ck_assert(!gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_seq", 1));
    ck_assert(!gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_pos", 4));
    ck_assert(!gmrt_gguf_writer_set_i32s(w, "gemmac.ref.tokens", tokens, 4));
    ck_assert(!gmrt_gguf_writer_add_tensor(w, "logits", GMK_DTYPE_F32, 3, ne));
    gmrt_diag d = {0};
    ck_assert(gmrt_gguf_writer_write(w, ref, fill_zero, NULL, &d) == GMRT_OK);
    gmrt_gguf_writer_destroy(w);
    loaded L;
    load_graph(gmc_test_src("tests/conformance/gemma3.yaml"), "gemma3", &L);
    gmrt_session_opts so = {.n_threads = 1};
    gmrt_session *s = NULL;
    ck_assert(gmrt_session_create(L.m, fixture("gemma3", "model.gguf"), &so, &s, &d) == GMRT_OK);
    gmrt_eval_report r;
    ck_assert_int_eq(gmrt_eval_reference(s, L.m, ref, &r, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, "tensor \"logits\" has shape [256, 4, 1] but [512, 4, 1]") &&
                  strstr(d.msg, "vocabulary is 512"), "%s", d.msg);
    /* Not a reference at all: the weights file. */
    ck_assert_int_eq(gmrt_eval_reference(s, L.m, fixture("gemma3", "model.gguf"), &r, &d),
                     GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, "not a gemmac reference"), "%s", d.msg);
    gmrt_session_destroy(s);
    dlclose(L.so);
}
END_TEST

/* ------------------------------------------------------------ real 270M */

START_TEST(test_conformance_kl_llamacpp_270m)
{
    const char *weights = gmc_test_model_path();
    if (!weights) {
        fprintf(stderr, "conformance: SKIPPED the 270M KL test: the Gemma 3 270M GGUF is "
                        "missing (scripts/setup installs it)\n");
        return;
    }
    /* llama.cpp scales the embedding by the exact sqrt(640). */
    const char *g = yaml_variant("graphs/gemma3-270m.yaml", "gemma3-270m-exact",
                                 "embed_scale: bf16", "embed_scale: exact");
    loaded L;
    load_graph(g, "gemma3-270m-exact", &L);
    gmrt_session_opts so = {.n_threads = 2};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(L.m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    /* Our tokenizer must give llama.cpp's ids for the same text. */
    char ref[4300];
    snprintf(ref, sizeof ref, "%s", gmc_test_src("tests/fixtures/kl270m/ref.gguf"));
    size_t len = 0, n_ids = 0;
    char *text = gmc_test_read_file(gmc_test_src("tests/fixtures/kl270m/text.txt"), &len);
    ck_assert_ptr_nonnull(text);
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    ck_assert(gmrt_tokenize(gmrt_session_vocab(s), text, len, true, false, ids, len + 2,
                            &n_ids, &d) == GMRT_OK);
    gmrt_gguf *rg;
    const int32_t *ref_ids;
    uint64_t n_ref;
    ck_assert(gmrt_gguf_open(ref, &rg, &d) == GMRT_OK);
    ck_assert(gmrt_gguf_get_i32s(rg, "gemmac.ref.tokens", &ref_ids, &n_ref, &d) == GMRT_OK);
    ck_assert_uint_eq(n_ids, n_ref);
    ck_assert_uint_ge(n_ids, 512);
    ck_assert_mem_eq(ids, ref_ids, n_ids * sizeof *ids);
    gmrt_gguf_close(rg);
    free(ids);
    free(text);
    gmrt_eval_report r;
    ck_assert_msg(gmrt_eval_reference(s, L.m, ref, &r, &d) == GMRT_OK, "%s", d.msg);
    fprintf(stderr, "conformance: 270M vs llama.cpp (%s target, %lld tokens): KL mean %.3e "
            "max %.3e (top-%d lower bound), top-1 %.2f%%\n", target(), (long long)r.all.n,
            r.all.kl_mean, r.all.kl_max, r.top_k, 100 * r.all.top1);
    ck_assert_msg(r.all.kl_mean <= 0.005, "mean KL %.4g > 0.005", r.all.kl_mean);
    gmrt_eval_report_free(&r);
    gmrt_session_destroy(s);
    dlclose(L.so);
}
END_TEST

/*
 * The §7.3 quantized-KL table on trained weights (tests/fixtures/kl270m/
 * ref_f32.gguf, scripts/ref_llamacpp_kl_f32.py): the reference is llama.cpp
 * on the real 270M dequantized to F32; gemmac re-quantizes the same file at
 * load (--requant) into llama.cpp's mixes for Q8_0, Q4_0 and Q4_K (the
 * fixture records them and llama.cpp's own KL against the reference).
 * Asserted: gemmac's KL at most 1.10 × llama.cpp's (§7.3's anchor clause)
 * for all three, and the absolute bound where llama.cpp meets it (Q4_K,
 * 0.04).  Q8_0 (bound 0.002) and Q4_0 (0.09) are beyond this small model for
 * llama.cpp too (2.6e-3 and 0.33): printed, and docs/conformance.md says
 * not met.
 */
START_TEST(test_conformance_trained_quant_kl)
{
    const char *weights = gmc_test_model_path();
    if (!weights) {
        fprintf(stderr, "conformance: SKIPPED the trained-weight KL test: the Gemma 3 270M "
                        "GGUF is missing (scripts/setup installs it)\n");
        return;
    }
    static const struct {
        const char *type, *quant;
        double bound;
        int asserted;
    } mixes[] = {
        {"q8_0", "quant:\n  embed: q8_0\n  attn: q8_0\n  ffn: q8_0\n  kv_cache: f16\n", 0.002,
         0},
        {"q4_0", "quant:\n  embed: q8_0\n  attn: q4_0\n  ffn: q4_0\n  kv_cache: f16\n", 0.09, 0},
        {"q4_k", "quant:\n  embed: q8_0\n  attn: q5_0\n  ffn: q5_0\n  kv_cache: f16\n"
                 "  tensors: {attn_output: q4_k, ffn_down: q4_k}\n", 0.04, 1},
    };
    char ref[4300];
    snprintf(ref, sizeof ref, "%s", gmc_test_src("tests/fixtures/kl270m/ref_f32.gguf"));
    gmrt_gguf *rg;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_gguf_open(ref, &rg, &d) == GMRT_OK, "%s", d.msg);
    char *text = gmc_test_read_file(gmc_test_src("graphs/gemma3-270m.yaml"), NULL);
    ck_assert_ptr_nonnull(text);
    char *cut = strstr(text, "\nquant:\n");
    ck_assert_ptr_nonnull(cut);
    cut[1] = '\0';
    for (size_t k = 0; k < sizeof mixes / sizeof mixes[0]; k++) {
        char key[64], path[4300], tag[64];
        double llama_kl;
        snprintf(key, sizeof key, "gemmac.ref.llamacpp_kl.%s", mixes[k].type);
        ck_assert_msg(gmrt_gguf_get_float(rg, key, &llama_kl, &d) == GMRT_OK, "%s", d.msg);
        snprintf(tag, sizeof tag, "gemma3-270m-%s", mixes[k].type);
        snprintf(path, sizeof path, "%s/%s.yaml", gmc_test_tmpdir(), tag);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fputs(mixes[k].quant, f);
        fclose(f);
        loaded L;
        load_graph_for(path, tag, "host", &L);
        gmrt_session_opts so = {.n_threads = 2, .requant = true};
        gmrt_session *s = NULL;
        ck_assert_msg(gmrt_session_create(L.m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
        gmrt_eval_report r;
        ck_assert_msg(gmrt_eval_reference(s, L.m, ref, &r, &d) == GMRT_OK, "%s", d.msg);
        double ratio = r.all.kl_mean / llama_kl;
        fprintf(stderr, "conformance: trained 270M %s (host target, %lld tokens): KL %.3e, "
                "llama.cpp %.3e (ratio %.3f <= 1.10); §7.3 %.3g: %s\n", mixes[k].type,
                (long long)r.all.n, r.all.kl_mean, llama_kl, ratio, mixes[k].bound,
                r.all.kl_mean <= mixes[k].bound ? "met" : "not met (llama.cpp neither)");
        ck_assert_msg(ratio <= 1.10, "%s: KL %.4g > 1.10 x llama.cpp's %.4g", mixes[k].type,
                      r.all.kl_mean, llama_kl);
        if (mixes[k].asserted)
            ck_assert_msg(r.all.kl_mean <= mixes[k].bound, "%s: KL %.4g > %.3g",
                          mixes[k].type, r.all.kl_mean, mixes[k].bound);
        gmrt_eval_report_free(&r);
        gmrt_session_destroy(s);
        dlclose(L.so);
    }
    free(text);
    gmrt_gguf_close(rg);
}
END_TEST

/* ------------------------------------------------------------ full context */

static long fullctx_tokens(int32_t n_ctx)
{
    const char *e = getenv("GMC_FULLCTX");
    long n = e && *e ? strtol(e, NULL, 10) : n_ctx;
    return n < 1 || n > n_ctx ? n_ctx : n;
}

/* True if every f16 in p[0..n) is finite (exponent bits not all ones). */
static size_t count_bad_f16(const uint16_t *p, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += (p[i] & 0x7c00u) == 0x7c00u;
    return bad;
}

START_TEST(test_conformance_full_context)
{
    const char *weights = gmc_test_model_path();
    char init_path[4300];
    if (!weights) { /* random weights with the real file's shapes */
        snprintf(init_path, sizeof init_path, "%s/270m-init.gguf", gmc_test_tmpdir());
        gmc_diag cd;
        gmc_diag_clear(&cd);
        ck_assert_msg(gmc_init_weights(gmc_test_src("graphs/gemma3-270m.yaml"), init_path, 3,
                                       false, &cd) == GMC_OK, "%s", cd.msg);
        weights = init_path;
    }
    loaded L;
    /* the fastest target this machine runs: the run is long */
    load_graph_for(gmc_test_src("graphs/gemma3-270m.yaml"), "gemma3-270m-host", "host", &L);
    long n = fullctx_tokens(L.m->n_ctx);
    gmrt_session_opts so = {.n_threads = 2};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(L.m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    /* Real text, repeated to fill the context. */
    size_t len = 0, n_text = 0;
    char *text = gmc_test_read_file(gmc_test_src("tests/fixtures/kl270m/text.txt"), &len);
    int32_t *text_ids = malloc((len + 2) * sizeof *text_ids), *ids = malloc((size_t)n * sizeof *ids);
    ck_assert(text && text_ids && ids);
    ck_assert(gmrt_tokenize(gmrt_session_vocab(s), text, len, true, false, text_ids, len + 2,
                            &n_text, &d) == GMRT_OK);
    for (long i = 0; i < n; i++)
        ids[i] = i == 0 ? text_ids[0] : text_ids[1 + (i - 1) % (long)(n_text - 1)];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const float *logits;
    ck_assert_msg(gmrt_session_eval(s, ids, (size_t)n, false, &logits, &d) == GMRT_OK, "%s", d.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    size_t bad_logits = 0;
    for (int32_t i = 0; i < L.m->n_vocab; i++)
        bad_logits += !isfinite(logits[i]);
    size_t kv_bytes;
    const uint16_t *kv = gmrt_session_kv(s, &kv_bytes);
    size_t bad_kv = count_bad_f16(kv, kv_bytes / 2); /* the graph's kv_cache is f16 */
    fprintf(stderr, "conformance: 270M full context: %ld of %d tokens (%s weights, %s target, "
            "2 threads) in %.1f s (%.1f tok/s); %zu bad logits, %zu bad KV values of %zu\n",
            n, L.m->n_ctx, weights == init_path ? "random" : "real", "host", secs,
            (double)n / secs, bad_logits, bad_kv, kv_bytes / 2);
    ck_assert_int_eq(gmrt_session_pos(s), n);
    ck_assert_uint_eq(bad_logits, 0);
    ck_assert_uint_eq(bad_kv, 0);
    free(text);
    free(text_ids);
    free(ids);
    gmrt_session_destroy(s);
    dlclose(L.so);
}
END_TEST

/* ------------------------------------- llama.cpp's quantizer, Gemma 4 */

/* The llama.cpp anchor (§7.3: quantized KL no more than 10 % worse than
 * llama.cpp on the same GGUF and text) for Gemma 4: gemma4-q quantized by
 * llama.cpp (scripts/ref_llamacpp_gemma4.py: pure Q8_0 / Q4_0, tied
 * embedding Q8_0; llama.cpp keeps the router ffn_gate_inp.weight,
 * per_layer_model_proj.weight and every 1-D tensor in F32) and its logits
 * on it.  The graph's quant: section is written from the tensor types the
 * file holds, so that gemmac runs llama.cpp's bytes as stored, on the
 * conformance target and on the host's (int8 activations, as llama.cpp).
 * gemma4-moe (D = 48) admits no 32-wide block and gemma4-e's KV-sharing
 * layout is one llama.cpp 0c1e570 asserts on, so neither has such files. */
static const char *const g4_classes[] = {"attn_q",   "attn_k",           "attn_v",
                                         "attn_output", "ffn_gate",      "ffn_up",
                                         "ffn_down", "inp_gate",         "proj",
                                         "ffn_gate_up_exps", "ffn_down_exps"};
#define G4_N_CLASSES ((int)(sizeof g4_classes / sizeof g4_classes[0]))

/* The quant: section (without kv_cache) that matches a GGUF's tensor types. */
static void g4_quant_of(const char *path, char *out, size_t cap)
{
    gmrt_gguf *g = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_gguf_open(path, &g, &d) == GMRT_OK, "%s", d.msg);
    int32_t cls[G4_N_CLASSES];
    for (int c = 0; c < G4_N_CLASSES; c++)
        cls[c] = -1;
    int32_t embed = -1, ple = -1, ple_proj = -1;
    for (int64_t i = 0; i < gmrt_gguf_n_tensors(g); i++) {
        const gmrt_gguf_tensor *t = gmrt_gguf_tensor_at(g, i);
        int layer, n = 0;
        char rest[64];
        if (strcmp(t->name, "token_embd.weight") == 0)
            embed = t->dtype;
        else if (strcmp(t->name, "per_layer_token_embd.weight") == 0)
            ple = t->dtype;
        else if (strcmp(t->name, "per_layer_model_proj.weight") == 0)
            ple_proj = t->dtype;
        else if (sscanf(t->name, "blk.%d.%63[^.].weight%n", &layer, rest, &n) == 2 &&
                 t->name[n] == '\0') {
            if (strcmp(rest, "ffn_gate_inp") == 0)
                ck_assert_msg(t->dtype == GMK_DTYPE_F32, "%s: %s is %s; gemmac's router is "
                              "f32 and has no quant key", path, t->name,
                              gmrt_dtype_name(t->dtype));
            for (int c = 0; c < G4_N_CLASSES; c++)
                if (strcmp(rest, g4_classes[c]) == 0) {
                    ck_assert_msg(cls[c] < 0 || cls[c] == t->dtype, "%s: %s types differ "
                                  "between layers", path, g4_classes[c]);
                    cls[c] = t->dtype;
                }
        } else
            ck_assert_msg(t->n_dims == 1 && t->dtype == GMK_DTYPE_F32, "%s: %s (%s) has no "
                          "place in the quant: section", path, t->name,
                          gmrt_dtype_name(t->dtype));
    }
    gmrt_gguf_close(g);
    ck_assert_int_ge(embed, 0);
    size_t k = (size_t)snprintf(out, cap, "  embed: %s\n  attn: f32\n  ffn: f32\n",
                                gmrt_dtype_name(embed));
    if (ple >= 0)
        k += (size_t)snprintf(out + k, cap - k, "  ple: %s\n", gmrt_dtype_name(ple));
    if (ple_proj >= 0)
        k += (size_t)snprintf(out + k, cap - k, "  ple_proj: %s\n", gmrt_dtype_name(ple_proj));
    k += (size_t)snprintf(out + k, cap - k, "  tensors:");
    for (int c = 0; c < G4_N_CLASSES; c++)
        if (cls[c] >= 0)
            k += (size_t)snprintf(out + k, cap - k, "\n    %s: %s", g4_classes[c],
                                  gmrt_dtype_name(cls[c]));
    k += (size_t)snprintf(out + k, cap - k, "\n");
    ck_assert_uint_lt(k, cap);
}

START_TEST(test_conformance_gemma4_llamacpp_anchor)
{
    static const struct {
        const char *variant;
        int32_t dtype;
    } gc[] = {{"gemma4-q", GMK_DTYPE_Q8_0}, {"gemma4-q", GMK_DTYPE_Q4_0}};
    const char *targets[2] = {target(), "host"};
    for (size_t i = 0; i < sizeof gc / sizeof gc[0]; i++) {
        const char *t = gmrt_dtype_name(gc[i].dtype);
        char model[64], other[64], rel[128], quant[1024], weights[4300];
        snprintf(model, sizeof model, "llamacpp-%s.gguf", t);
        snprintf(other, sizeof other, "ref-llamacpp-%s.gguf", t);
        snprintf(rel, sizeof rel, "tests/conformance/%s.yaml", gc[i].variant);
        snprintf(weights, sizeof weights, "%s", fixture(gc[i].variant, model));
        g4_quant_of(weights, quant, sizeof quant);
        for (int k = 0; k < 2; k++) {
            if (k == 1 && strcmp(targets[0], "host") == 0)
                break;
            char tag[96];
            snprintf(tag, sizeof tag, "%s-llamacpp-%s-%s", gc[i].variant, t, targets[k]);
            const char *g = yaml_variant(rel, tag, "  embed: f32\n  attn: f32\n  ffn: f32\n",
                                         quant);
            loaded L;
            load_graph_for(g, tag, targets[k], &L);
            gmrt_eval_report ours = eval_ref(&L, weights, fixture(gc[i].variant, "ref.gguf"));
            gmrt_eval_report gap = eval_ref(&L, weights, fixture(gc[i].variant, other));
            gmrt_eval_report lcpp;
            gmrt_diag d = {0};
            ck_assert_msg(gmrt_eval_compare(L.m, fixture(gc[i].variant, "ref.gguf"),
                                            fixture(gc[i].variant, other), &lcpp, &d) ==
                              GMRT_OK, "%s", d.msg);
            double ratio = ours.all.kl_mean / lcpp.all.kl_mean;
            fprintf(stderr, "conformance: %-10s %-4s llama.cpp's GGUF vs f32 transformers, "
                    "target %s: KL mean gemmac %.3e (top-1 %.1f%%), llama.cpp %.3e (top-1 "
                    "%.1f%%), ratio %.3f (<= %.2f); gemmac vs llama.cpp %.3e\n",
                    gc[i].variant, t, targets[k], ours.all.kl_mean, 100 * ours.all.top1,
                    lcpp.all.kl_mean, 100 * lcpp.all.top1, ratio, ANCHOR_RATIO,
                    gap.all.kl_mean);
            ck_assert_msg(lcpp.all.kl_mean > 1e-6, "%s %s: llama.cpp's KL %.3g is "
                          "suspiciously 0", gc[i].variant, t, lcpp.all.kl_mean);
            ck_assert_msg(ours.all.kl_mean <= ANCHOR_RATIO * lcpp.all.kl_mean,
                          "%s %s (target %s): KL %.4g is more than %.2f x llama.cpp's %.4g "
                          "on the same GGUF", gc[i].variant, t, targets[k], ours.all.kl_mean,
                          ANCHOR_RATIO, lcpp.all.kl_mean);
            gmrt_eval_report_free(&ours);
            gmrt_eval_report_free(&gap);
            gmrt_eval_report_free(&lcpp);
            dlclose(L.so);
        }
    }
}
END_TEST

Suite *conformance_suite(void)
{
    Suite *s = suite_create("conformance");
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 3600);
    tcase_add_test(tc, test_conformance_f32);
    tcase_add_test(tc, test_conformance_bf16);
    tcase_add_test(tc, test_conformance_gemma4_gguf);
    tcase_add_test(tc, test_conformance_gemma4_quant);
    tcase_add_test(tc, test_conformance_gguf_path);
    tcase_add_test(tc, test_conformance_wrong_embed_scale_fails);
    tcase_add_test(tc, test_conformance_unfolded_norm_fails);
    tcase_add_test(tc, test_conformance_quantized_kl);
    tcase_add_test(tc, test_conformance_llamacpp_anchor);
    tcase_add_test(tc, test_conformance_compare_files);
    tcase_add_test(tc, test_conformance_quantizer_bits);
    tcase_add_test(tc, test_conformance_topk_reference);
    tcase_add_test(tc, test_conformance_reference_mismatch);
    tcase_add_test(tc, test_conformance_kl_llamacpp_270m);
    tcase_add_test(tc, test_conformance_trained_quant_kl);
    tcase_add_test(tc, test_conformance_full_context);
    tcase_add_test(tc, test_conformance_gemma4_llamacpp_anchor);
    suite_add_tcase(s, tc);
    /* A case of its own, to run alone: CK_RUN_CASE=logits_out. */
    TCase *lo = tcase_create("logits_out");
    tcase_set_timeout(lo, 600);
    tcase_add_test(lo, test_conformance_logits_out);
    tcase_add_test(lo, test_conformance_ids_errors);
    suite_add_tcase(s, lo);
    return s;
}
