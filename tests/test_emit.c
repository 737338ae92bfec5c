/*
 * test_emit.c — the emitter's golden files and the generated code's health.
 *
 * tests/graphs/tiny.yaml is compiled (fused) for the generic target of a
 * fixed x86-64 host description, and every emitted file is compared byte for byte
 * with generated/tiny/generic/; tests/graphs/tiny-qmix.yaml (q8_0/q4_0
 * weights, f16 KV) likewise for x86-64-v4-bf16 (int8 activations, P16
 * weight layout) with generated/tiny-qmix/x86-64-v4-bf16/.  The host is a
 * description, so neither needs the CPU it targets.  After an intended
 * emitter change, refresh the golden files with GMC_UPDATE_GOLDEN=1 and
 * review the diff.  The emitted C must also compile warning-free with
 * clang-19 -Werror.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "emit.h"
#include "gmk.h"
#include "gmk_act.h"
#include "gmk_layout.h"
#include "fuse.h"
#include "graph.h"
#include "plan.h"
#include "target.h"
#include "testutil.h"
#include "toolchain.h"

extern const gmc_target gmc_target_generic, gmc_target_x86_64_bf16;

typedef struct emitted {
    gmc_arena a;
    gmc_emit_out out;
    gmc_graph *g;
    char flags[1024]; /* the target's clang flags */
} emitted;

/* The host is fixed so that the golden files do not depend on the machine:
 * a Zen 4 with the features of every x86 target. */
static const gmc_host fixed_host = {
    .triple = "x86_64-pc-linux-gnu", .arch = "x86_64", .cpu = "znver4",
    .features = "+avx2,+fma,+f16c,+bmi2,+avx512f,+avx512bw,+avx512vl,+avx512dq,+avx512vnni,"
                "+avx512bf16,+avx512vbmi,+sse2"};

/* Compiles graph for target t as gemmac compile does, up to the C. */
static void emit_graph(emitted *e, const char *graph, const gmc_target *t)
{
    ck_assert_int_eq(chdir(GMC_SOURCE_DIR), 0); /* the banner names the path as given */
    gmc_arena_init(&e->a);
    gmc_emit_out_init(&e->out);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_options o = {.graph = graph, .target = t->name, .max_batch = 4, .host = &fixed_host};
    gmc_target_config tc;
    const char *note;
    ck_assert_msg(gmc_front(&o, &e->a, &e->g, &tc, &note, &d) == GMC_OK, "%s", d.msg);
    ck_assert_msg(note == NULL, "%s: not fused: %s", graph, note);
    gmc_toolchain_flags(&tc, e->flags, sizeof e->flags);
    ck_assert_msg(gmc_emit(e->g, &tc, e->flags, &e->out, &d) == GMC_OK, "%s", d.msg);
}

static void emit_tiny(emitted *e, const char *graph)
{
    emit_graph(e, graph, &gmc_target_generic);
}

static void emitted_free(emitted *e)
{
    gmc_emit_out_deinit(&e->out);
    gmc_arena_deinit(&e->a);
}

/* dir/name under generated/ against text. */
static void compare_golden(const char *dir, const char *name, const gmc_strbuf *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/generated/%s/%s", GMC_SOURCE_DIR, dir, name);
    if (getenv("GMC_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(gmc_strbuf_str(text), 1, text->len, f);
        fclose(f);
    }
    size_t len = 0;
    char *want = gmc_test_read_file(path, &len);
    ck_assert_msg(want != NULL, "missing golden file %s", path);
    const char *got = gmc_strbuf_str(text);
    size_t line = 1, i = 0;
    while (i < len && i < text->len && want[i] == got[i])
        line += want[i++] == '\n';
    ck_assert_msg(i == len && len == text->len,
                  "%s/%s differs from the golden file at line %zu "
                  "(regenerate with GMC_UPDATE_GOLDEN=1 and review the diff)", dir, name, line);
    free(want);
}

static void check_golden(const char *graph, const gmc_target *t, const char *dir)
{
    emitted e;
    emit_graph(&e, graph, t);
    compare_golden(dir, "model.c", &e.out.model_c);
    compare_golden(dir, "model.h", &e.out.model_h);
    compare_golden(dir, "main.c", &e.out.main_c);
    compare_golden(dir, "manifest.tsv", &e.out.manifest);
    emitted_free(&e);
}

START_TEST(test_emit_golden)
{
    check_golden("tests/graphs/tiny.yaml", &gmc_target_generic, "tiny/generic");
}
END_TEST

/* A quantized graph on the int8 + P16 target; its C passes clang -Werror
 * with the target's own flags (a syntax check: this CPU need not run it). */
START_TEST(test_emit_golden_quantized)
{
    check_golden("tests/graphs/tiny-qmix.yaml", &gmc_target_x86_64_bf16,
                 "tiny-qmix/x86-64-v4-bf16");
    emitted e;
    emit_graph(&e, "tests/graphs/tiny-qmix.yaml", &gmc_target_x86_64_bf16);
    const char *c = gmc_strbuf_str(&e.out.model_c);
    ck_assert_ptr_nonnull(strstr(c, "GMK_DTYPE_Q4_0 | GMK_LAYOUT_P16"));
    ck_assert_ptr_nonnull(strstr(c, "GMK_ACT_Q8_0"));
    ck_assert_ptr_nonnull(strstr(c, " qkv_q4_0_2x32_kv1_local_s12_wvq8_0("));
    const char *dir = gmc_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    char path[4200], cmd[9000];
    snprintf(path, sizeof path, "%s/tiny_qmix_model.c", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(c, 1, e.out.model_c.len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "%s %s -Wpedantic -Werror -fsyntax-only -I%s/runtime/include %s 2>&1",
             gmc_toolchain_clang(), e.flags, GMC_SOURCE_DIR, path);
    ck_assert_msg(system(cmd) == 0, "generated C does not compile cleanly: %s", cmd);
    emitted_free(&e);
}
END_TEST

/* Same input, same bytes; and no timestamp-like text in the banner. */
START_TEST(test_emit_reproducible)
{
    emitted a, b;
    emit_tiny(&a, "tests/graphs/tiny.yaml");
    emit_tiny(&b, "tests/graphs/tiny.yaml");
    ck_assert_str_eq(gmc_strbuf_str(&a.out.model_c), gmc_strbuf_str(&b.out.model_c));
    const char *c = gmc_strbuf_str(&a.out.model_c);
    ck_assert_ptr_nonnull(strstr(c, "generated by gemmac "));
    ck_assert_ptr_nonnull(strstr(c, " * graph:    fnv1a64 "));
    ck_assert_ptr_nonnull(strstr(c, " * target:   generic (x86_64-pc-linux-gnu, cpu x86-64)"));
    ck_assert_ptr_nonnull(strstr(c, " * flags:    -std=c11 -O2"));
    ck_assert_ptr_null(strstr(c, "2026"));
    ck_assert_ptr_null(strstr(c, "__DATE__"));
    emitted_free(&a);
    emitted_free(&b);
}
END_TEST

/* gemmac compile --fp-contract=off puts -ffp-contract=off into the flags
 * the build uses, so the banner names it (and the cache key covers it);
 * without the option the flags have none. */
START_TEST(test_emit_fp_contract_option)
{
    const char *tmp = gmc_test_tmpdir(), *graph = gmc_test_src("tests/graphs/tiny.yaml");
    for (int off = 0; off < 2; off++) {
        char cmd[13000], out[4200];
        snprintf(out, sizeof out, "%s/fpc-%d.c", tmp, off);
        snprintf(cmd, sizeof cmd, "'%s' compile '%s' --target generic%s --dump=c -o '%s/fpc-%d' "
                 "> '%s' 2>/dev/null", GMC_GEMMAC, graph, off ? " --fp-contract=off" : "", tmp,
                 off, out);
        ck_assert_msg(system(cmd) == 0, "%s", cmd);
        char *c = gmc_test_read_file(out, NULL);
        ck_assert_ptr_nonnull(c);
        const char *flags = strstr(c, " * flags:"), *end = flags ? strstr(flags, "\n */") : NULL;
        ck_assert(flags && end);
        const char *at = strstr(flags, "-ffp-contract=off");
        ck_assert_msg(off ? at && at < end : !at || at > end, "--fp-contract=%s: %.*s",
                      off ? "off" : "(default)", (int)(end - flags), flags);
        free(c);
    }
}
END_TEST

/* A different graph gives a different hash and different code. */
START_TEST(test_emit_hash_changes)
{
    emitted a, b;
    emit_tiny(&a, "tests/graphs/tiny.yaml");
    emit_tiny(&b, "tests/graphs/tiny-q.yaml");
    ck_assert_uint_ne(a.g->hash, b.g->hash);
    ck_assert_ptr_nonnull(strstr(gmc_strbuf_str(&b.out.model_c), "GMK_DTYPE_Q8_0"));
    emitted_free(&a);
    emitted_free(&b);
}
END_TEST

/* The emitted C compiles with clang-19 -Werror (warnings are bugs in the
 * emitter: unused buffers, sign mismatches, bad literals). */
START_TEST(test_emit_compiles_clean)
{
    emitted e;
    emit_tiny(&e, "tests/graphs/tiny.yaml");
    const char *dir = gmc_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    char path[4200], cmd[9000];
    snprintf(path, sizeof path, "%s/tiny_model.c", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(gmc_strbuf_str(&e.out.model_c), 1, e.out.model_c.len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -O1 -Wall -Wextra -Wpedantic -Werror -I%s/runtime/include "
             "-c %s -o %s/tiny_model.o 2>&1",
             gmc_toolchain_clang(), GMC_SOURCE_DIR, path, dir);
    ck_assert_msg(system(cmd) == 0, "generated C does not compile cleanly: %s", cmd);
    emitted_free(&e);
}
END_TEST

/* What `gemmac plan` prints is what the build does: for every graph in
 * graphs/ and every target, the weight, arena and KV bytes of the plan equal
 * those the emitted model declares to the runtime (gmk_model). */
START_TEST(test_plan_is_the_build)
{
    static const char *const graphs[] = {
        "tests/graphs/tiny-qmix.yaml", "graphs/gemma-2b.yaml", "graphs/gemma-7b.yaml",
        "graphs/gemma2-2b.yaml", "graphs/gemma2-9b.yaml", "graphs/gemma3-270m.yaml",
        "graphs/gemma3-1b.yaml", "graphs/gemma3-1b-q4_0.yaml", "graphs/gemma3-1b-q8_0.yaml",
        "graphs/gemma3n-e2b.yaml", "graphs/gemma3n-e4b.yaml", "graphs/gemma4-e2b.yaml",
        "graphs/gemma4-e4b.yaml", "graphs/gemma4-31b.yaml", "graphs/gemma4-26b-a4b.yaml"};
    static const struct {
        const char *plan, *model;
    } fields[] = {{"  weights ", ".weight_bytes"},
                  {"activation arena", ".arena_bytes"},
                  {"KV cache per token", ".kv_bytes_per_token"},
                  {"KV cache at full context", ".kv_bytes"}};
    int n_graphs = (int)(sizeof graphs / sizeof graphs[0]), checked = 0;
    for (int t = 0; gmc_targets[t]; t++) {
        for (int i = 0; i < n_graphs; i++) {
            for (int packed = 0; packed < 2; packed++) {
                ck_assert_int_eq(chdir(GMC_SOURCE_DIR), 0);
                gmc_options o = {.graph = graphs[i], .target = gmc_targets[t]->name,
                                 .packed = packed, .host = &fixed_host};
                gmc_diag d;
                gmc_diag_clear(&d);
                gmc_arena a;
                gmc_arena_init(&a);
                gmc_graph *g;
                gmc_target_config tc;
                gmc_status st = gmc_front(&o, &a, &g, &tc, NULL, &d);
                if (st == GMC_ERR_LIMIT && gmc_targets[t]->max_memory) {
                    /* too large for a 32-bit target (wasm32): plan refuses it too */
                    ck_assert_msg(strstr(d.msg, gmc_targets[t]->name), "%s", d.msg);
                    gmc_arena_deinit(&a);
                    continue;
                }
                ck_assert_msg(st == GMC_OK, "%s", d.msg);
                char *plan = gmc_test_plan(&o);
                gmc_emit_out e;
                gmc_emit_out_init(&e);
                ck_assert_msg(gmc_emit(g, &tc, "", &e, &d) == GMC_OK, "%s", d.msg);
                const char *c = gmc_strbuf_str(&e.model_c);
                for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
                    unsigned long long want = gmc_test_number_after(c, fields[k].model),
                                       got = gmc_test_number_after(plan, fields[k].plan);
                    ck_assert_uint_gt(want, 0);
                    ck_assert_msg(got == want,
                                  "%s on %s%s: plan prints %s %llu, the build has %llu",
                                  graphs[i], gmc_targets[t]->name, packed ? " --packed" : "",
                                  fields[k].plan, got, want);
                }
                ck_assert_msg(strstr(plan, gmc_targets[t]->name), "%s", plan);
                gmc_emit_out_deinit(&e);
                gmc_arena_deinit(&a);
                free(plan);
                checked++;
            }
        }
    }
    ck_assert_int_ge(checked, 6 * n_graphs * 2);
}
END_TEST

/* "host" is the target of highest rank that the host builds and runs
 * natively: every x86 profile on a Zen 4, x86-64-v4-vnni where BF16 is
 * missing, x86-64-v3 on an AVX2-only Zen 3
 * (not aarch64-i8mm, ranked above it, which an x86 host only cross-builds),
 * the Arm profile whose features an Arm host has; no list in code decides
 * it. */
START_TEST(test_host_by_rank)
{
    gmc_host zen3 = fixed_host, arm = {.triple = "aarch64-unknown-linux-gnu",
                                       .arch = "aarch64", .cpu = "cortex-a76",
                                       .features = "+neon,+dotprod"};
    snprintf(zen3.features, sizeof zen3.features, "+sse2,+avx2,+fma,+f16c,+bmi2");
    ck_assert_str_eq(gmc_target_find("host", &fixed_host)->name, "x86-64-v4-bf16");
    gmc_host icelake = fixed_host; /* or a VM that hides BF16 from its guest */
    snprintf(icelake.features, sizeof icelake.features, "%s",
             "+sse2,+avx2,+fma,+f16c,+bmi2,+avx512f,+avx512bw,+avx512vl,+avx512dq,"
             "+avx512vnni,+avx512vbmi");
    ck_assert_str_eq(gmc_target_find("host", &icelake)->name, "x86-64-v4-vnni");
    ck_assert_str_eq(gmc_target_find("host", &zen3)->name, "x86-64-v3");
    ck_assert_str_eq(gmc_target_find("host", &arm)->name, "aarch64-dotprod");
    snprintf(arm.features, sizeof arm.features, "+neon");
    ck_assert_str_eq(gmc_target_find("host", &arm)->name, "aarch64");
    snprintf(arm.features, sizeof arm.features, "+neon,+dotprod,+i8mm,+bf16");
    ck_assert_str_eq(gmc_target_find("host", &arm)->name, "aarch64-i8mm");
    snprintf(arm.features, sizeof arm.features, "+fp-armv8");
    ck_assert_str_eq(gmc_target_find("host", &arm)->name, "native");
    int max = 0;
    for (int i = 0; gmc_targets[i]; i++)
        max = gmc_targets[i]->rank > max ? gmc_targets[i]->rank : max;
    ck_assert_int_eq(gmc_target_find("host", &fixed_host)->rank, max);
}
END_TEST

/* The layouts the x86 profiles ask for (the kernels each reads): the VNNI
 * profiles' 16-row panels for the b32 formats, the k-quants and the floats
 * (bf16 too where the CPU has bf16 dot products, with f32 activations:
 * vdpbf16ps on rows measured slower); a stack of matrices (MoE experts)
 * P8, since P16 does not stack; x86-64-v3 P8. */
START_TEST(test_x86_layouts)
{
    const gmc_target *vnni = gmc_target_find("x86-64-v4-vnni", &fixed_host);
    const gmc_target *bf16 = gmc_target_find("x86-64-v4-bf16", &fixed_host);
    const gmc_target *v3 = gmc_target_find("x86-64-v3", &fixed_host);
    ck_assert(vnni && bf16 && v3);
    const int64_t stack[3] = {256, 32, 4};
    static const int kq[] = {GMK_DTYPE_Q4_K, GMK_DTYPE_Q5_K, GMK_DTYPE_Q6_K};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(vnni->weight_layout(kq[i]), GMK_LAYOUT_P16);
        ck_assert_int_eq(bf16->weight_layout(kq[i]), GMK_LAYOUT_P16);
        ck_assert_int_eq(v3->weight_layout(kq[i]), GMK_LAYOUT_P8);
        ck_assert_int_eq(gmk_layout_for(vnni->stack_layout(kq[i]), 3, stack), GMK_LAYOUT_P8);
        ck_assert_int_eq(gmk_layout_for(bf16->stack_layout(kq[i]), 3, stack), GMK_LAYOUT_P8);
    }
    ck_assert_int_eq(vnni->weight_layout(GMK_DTYPE_Q4_0), GMK_LAYOUT_P16);
    ck_assert_int_eq(gmk_layout_for(vnni->stack_layout(GMK_DTYPE_Q4_0), 3, stack),
                     GMK_LAYOUT_P8);
    ck_assert_int_eq(vnni->weight_layout(GMK_DTYPE_F16), GMK_LAYOUT_P16);
    ck_assert_int_eq(vnni->weight_layout(GMK_DTYPE_BF16), GMK_LAYOUT_P16);
    ck_assert_int_eq(bf16->weight_layout(GMK_DTYPE_F16), GMK_LAYOUT_P16);
    ck_assert_int_eq(bf16->weight_layout(GMK_DTYPE_BF16), GMK_LAYOUT_P16);
    ck_assert_int_eq(v3->weight_layout(GMK_DTYPE_F16), GMK_LAYOUT_P8);
    ck_assert_int_eq(gmk_layout_for(vnni->stack_layout(GMK_DTYPE_F16), 3, stack), GMK_LAYOUT_P8);
    ck_assert_int_eq(bf16->stack_layout(GMK_DTYPE_BF16), GMK_LAYOUT_P8);
    ck_assert_int_eq(bf16->act_fmt(GMK_DTYPE_BF16), GMK_ACT_F32);
    ck_assert_int_eq(vnni->stack_layout(GMK_DTYPE_BF16), GMK_LAYOUT_P8);
    ck_assert(v3->stack_layout == NULL);
}
END_TEST

/* Two specialisations with one name are told apart by what differs:
 * the unfused tiny graph with one post-norm's eps changed gets
 * rmsnorm_add_64 and rmsnorm_add_64_eps1em05; a difference no KVARY names
 * (a weight layout) gets a hash suffix. */
START_TEST(test_emit_variant_names)
{
    ck_assert_int_eq(chdir(GMC_SOURCE_DIR), 0);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_model *m;
    gmc_graph *g;
    ck_assert_msg(gmc_model_load("tests/graphs/tiny.yaml", &a, &m, &d) == GMC_OK, "%s", d.msg);
    ck_assert_msg(gmc_graph_lower(m, 4, &a, &g, &d) == GMC_OK, "%s", d.msg);
    gmc_node *last = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == GMC_OP_RMSNORM_ADD)
            last = &g->nodes[i];
    ck_assert_ptr_nonnull(last);
    last->eps = 1e-5f;
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, "blk.1.attn_q.weight") == 0)
            g->values[i].layout = GMK_LAYOUT_P16;
    ck_assert_msg(gmc_plan(g, &d) == GMC_OK, "%s", d.msg);
    gmc_host h = {.triple = "x86_64-pc-linux-gnu", .arch = "x86_64", .cpu = "znver4"};
    gmc_target_config tc;
    char why[64];
    ck_assert(gmc_target_generic.configure(&gmc_target_generic, &h, &tc, why, sizeof why));
    gmc_emit_out out;
    gmc_emit_out_init(&out);
    ck_assert_msg(gmc_emit(g, &tc, "", &out, &d) == GMC_OK, "%s", d.msg);
    const char *c = gmc_strbuf_str(&out.model_c);
    ck_assert_ptr_nonnull(strstr(c, " rmsnorm_add_64("));
    ck_assert_ptr_nonnull(strstr(c, " rmsnorm_add_64_eps1em05("));
    ck_assert_ptr_nonnull(strstr(c, " matmul_f32_64x64("));
    const char *hashed = strstr(c, " matmul_f32_64x64_h");
    ck_assert_ptr_nonnull(hashed);
    ck_assert_int_eq(strspn(hashed + 19, "0123456789abcdef"), 8);
    ck_assert_ptr_null(strstr(c, "_v2("));
    gmc_emit_out_deinit(&out);
    gmc_arena_deinit(&a);
}
END_TEST

/* Texts longer than any old fixed buffer come out whole; a failure sticks
 * through gmc_strbuf_reset. */
START_TEST(test_emit_strbuf_long)
{
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    for (int i = 0; i < 1000; i++)
        gmc_emitf(&b, "%s%d", i ? ", " : "", i);
    ck_assert_uint_gt(b.len, 4000);
    ck_assert_ptr_nonnull(strstr(gmc_strbuf_str(&b), ", 999"));
    gmc_strbuf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(gmc_strbuf_str(&b), "");
    b.failed = true;
    gmc_strbuf_reset(&b);
    gmc_emitf(&b, "x");
    ck_assert(gmc_strbuf_failed(&b));
    ck_assert_uint_eq(b.len, 0);
    gmc_strbuf_deinit(&b);
}
END_TEST

Suite *emit_suite(void)
{
    Suite *s = suite_create("emit");
    TCase *tc = tcase_create("emit");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_emit_golden);
    tcase_add_test(tc, test_emit_golden_quantized);
    tcase_add_test(tc, test_emit_reproducible);
    tcase_add_test(tc, test_emit_hash_changes);
    tcase_add_test(tc, test_emit_fp_contract_option);
    tcase_add_test(tc, test_emit_compiles_clean);
    tcase_add_test(tc, test_plan_is_the_build);
    tcase_add_test(tc, test_host_by_rank);
    tcase_add_test(tc, test_x86_layouts);
    tcase_add_test(tc, test_emit_variant_names);
    tcase_add_test(tc, test_emit_strbuf_long);
    suite_add_tcase(s, tc);
    return s;
}
