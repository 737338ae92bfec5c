/*
 * test_plan.c — the memory planner, on graphs as gemmac compile plans them
 * (gmc_front: fused and laid out for the target): no two buffers live at the
 * same time overlap, the arena is no larger than the naive sum, offsets are aligned;
 * and the KV layout (rings for sliding layers) has the expected sizes.
 *
 * The overlap check here is written independently of gmc_plan_check, so a
 * bug in one is not hidden by the same bug in the other.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmk.h"

#include "driver.h"
#include "target.h"
#include "graph.h"
#include "plan.h"
#include "toolchain.h"
#include "testutil.h"

typedef struct planned {
    gmc_arena a;
    gmc_graph *g;
} planned;

/* The graph as gemmac compile plans it for target (fused, laid out). */
static void plan_file(planned *p, const char *rel, int32_t batch, const char *target)
{
    gmc_arena_init(&p->a);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_options o = {.graph = gmc_test_src(rel), .target = target, .max_batch = batch};
    gmc_target_config tc;
    ck_assert_msg(gmc_front(&o, &p->a, &p->g, &tc, NULL, &d) == GMC_OK, "%s: %s", rel, d.msg);
}

/* Brute force over every pair of activations. */
static void check_no_overlap(const gmc_graph *g)
{
    int n_act = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gmc_value *a = &g->values[i];
        if (a->kind != GMC_V_ACT || a->first < 0)
            continue; /* not an activation, or one fusion left unused */
        n_act++;
        ck_assert_int_ge(a->offset, 0);
        ck_assert_int_eq(a->offset % GMK_ARENA_ALIGN, 0);
        ck_assert_uint_le((uint64_t)a->offset + a->bytes, g->arena_bytes);
        for (int j = 0; j < g->n_values; j++) {
            const gmc_value *b = &g->values[j];
            if (j == i || b->kind != GMC_V_ACT || b->first < 0)
                continue;
            if (a->last < b->first || b->last < a->first)
                continue; /* never live together */
            bool disjoint = (uint64_t)a->offset + a->bytes <= (uint64_t)b->offset ||
                            (uint64_t)b->offset + b->bytes <= (uint64_t)a->offset;
            ck_assert_msg(disjoint, "%s [%ld..%ld] and %s [%ld..%ld] overlap in memory",
                          a->name, (long)a->first, (long)a->last, b->name,
                          (long)b->first, (long)b->last);
        }
    }
    ck_assert_int_gt(n_act, 3);
}

static const char *const graphs[] = {
    "tests/graphs/tiny.yaml",  "graphs/gemma-2b.yaml",  "graphs/gemma-7b.yaml",
    "graphs/gemma2-2b.yaml",   "graphs/gemma2-9b.yaml", "graphs/gemma3-270m.yaml",
    "graphs/gemma3-1b.yaml",   "graphs/gemma3n-e2b.yaml", "graphs/gemma4-e2b.yaml",
    "graphs/gemma4-26b-a4b.yaml",
};

START_TEST(test_plan_invariants)
{
    static const int32_t batches[] = {1, 7, 64};
    for (int b = 0; b < 6; b++) {
        planned p;
        plan_file(&p, graphs[_i], batches[b % 3], b < 3 ? "generic" : "host");
        check_no_overlap(p.g);
        ck_assert_uint_le(p.g->arena_bytes, p.g->naive_bytes);
        /* Reuse across layers must make the arena much smaller than the sum
         * (every layer's buffers are dead by the next layer). */
        if (p.g->model->n_layers >= 2)
            ck_assert_uint_lt(p.g->arena_bytes * 2, p.g->naive_bytes);
        gmc_arena_deinit(&p.a);
    }
}
END_TEST

/* Gemma 3 270M at batch 64: KV rows of 256 f16 per layer per token; sliding
 * layers hold window + batch rows, global layers the whole context. */
START_TEST(test_plan_kv_270m)
{
    planned p;
    plan_file(&p, "graphs/gemma3-270m.yaml", 64, "host");
    uint64_t per_layer_token = 2 * 256 * 2; /* K and V, 256 f16 */
    ck_assert_uint_eq(p.g->kv_bytes_per_token, 18 * per_layer_token);
    uint64_t want = 15 * (512 + 64) * per_layer_token + 3 * 32768 * per_layer_token;
    ck_assert_uint_eq(p.g->kv_bytes, want);
    int rings = 0;
    for (int i = 0; i < p.g->n_values; i++) {
        const gmc_value *v = &p.g->values[i];
        if (v->kind != GMC_V_KV)
            continue;
        bool global = (v->layer + 1) % 6 == 0;
        ck_assert_int_eq(v->n_slots, global ? 32768 : 512 + 64);
        rings += !global;
    }
    ck_assert_int_eq(rings, 2 * 15);
    /* Weights: the real file's data section without padding. */
    ck_assert_uint_gt(p.g->weight_bytes, 240000000u);
    ck_assert_uint_lt(p.g->weight_bytes, 253113024u);
    gmc_arena_deinit(&p.a);
}
END_TEST

/* A planner that gave every buffer its own space would pass the overlap
 * check; make sure gmc_plan_check itself catches a forced overlap. */
START_TEST(test_plan_check_detects_overlap)
{
    planned p;
    plan_file(&p, "tests/graphs/tiny.yaml", 4, "host");
    gmc_value *q = NULL, *k = NULL;
    for (int i = 0; i < p.g->n_values; i++) {
        if (strcmp(p.g->values[i].name, "l0.q") == 0)
            q = &p.g->values[i];
        if (strcmp(p.g->values[i].name, "l0.k") == 0)
            k = &p.g->values[i];
    }
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(k);
    k->offset = q->offset; /* q and k are live together */
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_int_eq(gmc_plan_check(p.g, &d), GMC_ERR_SEMANTIC);
    ck_assert_msg(strstr(d.msg, "live together and overlap") != NULL, "%s", d.msg);
    gmc_arena_deinit(&p.a);
}
END_TEST

START_TEST(test_plan_rejects_bad_batch)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m;
    gmc_graph *g;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_int_eq(gmc_model_load(gmc_test_src("tests/graphs/tiny.yaml"), &a, &m, &d), GMC_OK);
    ck_assert_int_eq(gmc_graph_lower(m, 0, &a, &g, &d), GMC_ERR_ARG);
    ck_assert_str_eq(d.msg, "batch size 0 is out of range [1, 4096]");
    gmc_arena_deinit(&a);
}
END_TEST

/* A graph the schema accepts can still ask for more than any machine has:
 * the plan refuses it before anything is compiled or allocated, naming the
 * fields (here a 36 PiB KV cache). */
START_TEST(test_plan_rejects_giant_sizes)
{
    static const char yaml[] =
        "model: {name: giant, family: gemma3, vocab: 512, d_model: 64, layers: 1024,\n"
        "        context: 1048576}\n"
        "attention: {heads: 1024, kv_heads: 1024, head_dim: 1024, window: 8}\n"
        "layers: {pattern: [global]}\n"
        "ffn: {dim: 64}\n";
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m;
    gmc_graph *g;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_int_eq(gmc_model_parse(yaml, sizeof yaml - 1, "giant.yaml", &a, &m, &d), GMC_OK);
    gmc_status s = gmc_graph_lower(m, 1, &a, &g, &d);
    if (s == GMC_OK)
        s = gmc_plan(g, &d);
    ck_assert_int_eq(s, GMC_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "KV cache at full context") && strstr(d.msg, "model.context"),
                  "%s", d.msg);
    gmc_arena_deinit(&a);
}
END_TEST

/* A target of 32-bit addresses (wasm32, max_memory 4 GiB) plans the 270M
 * (0.35 GiB) and refuses Gemma 4 E4B (7.6 GiB in its YAML's dtypes and
 * context), naming what it needs, before anything is compiled. */
START_TEST(test_plan_wasm32_memory)
{
    gmc_host h;
    gmc_target_config tc;
    gmc_diag d;
    gmc_diag_clear(&d);
    char why[256];
    ck_assert(gmc_host_detect(&h, &d) == GMC_OK);
    const gmc_target *t = gmc_target_find("wasm32", &h);
    ck_assert_ptr_nonnull(t);
    if (!t->configure(t, &h, &tc, why, sizeof why)) {
        fprintf(stderr, "plan: SKIPPED wasm32: %s\n", why);
        return;
    }
    planned p;
    plan_file(&p, "graphs/gemma3-270m.yaml", 64, "wasm32");
    gmc_arena_deinit(&p.a);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_graph *g;
    gmc_options o = {.graph = gmc_test_src("graphs/gemma4-e4b.yaml"), .target = "wasm32"};
    ck_assert_int_eq(gmc_front(&o, &a, &g, &tc, NULL, &d), GMC_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "over the 4 GiB a wasm32 program can address") &&
                  strstr(d.msg, "KV cache at full context"), "%s", d.msg);
    gmc_arena_deinit(&a);
}
END_TEST

Suite *plan_suite(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_plan_invariants, 0, (int)(sizeof graphs / sizeof graphs[0]));
    tcase_add_test(tc, test_plan_kv_270m);
    tcase_add_test(tc, test_plan_check_detects_overlap);
    tcase_add_test(tc, test_plan_rejects_bad_batch);
    tcase_add_test(tc, test_plan_rejects_giant_sizes);
    tcase_add_test(tc, test_plan_wasm32_memory);
    suite_add_tcase(s, tc);
    return s;
}
