/*
 * test_fuse.c — the fusion pass and the fused kernels.
 *
 * The pass: the Gemma 3 270M graph becomes embed, norm_act, five fused ops
 * per layer and head, with the slots each family needs (QK-norm only for
 * Gemma 3, post-norms from Gemma 2, soft-caps for Gemma 2); every graph in
 * graphs/ and tests/graphs/ fuses for a float target and an int8 one, plans
 * and emits C that clang accepts.  Gemma 4 fuses its attention and FFN
 * blocks; an op the pass does not know leaves only its own block unfused.
 * The kernels: the fused head's greedy id equals the first largest logit of
 * the unfused path for 1 to 3 threads, ties included; the fused QKV with
 * Gemma 4's features gives the unfused ops' bits.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "fuse.h"
#include "graph.h"
#include "plan.h"
#include "target.h"
#include "testutil.h"
#include "toolchain.h"

#include "gmk_generic.h"
#include "gmk_fused.h"

extern const gmc_target gmc_target_generic;

static const char *const all_graphs[] = {
    "graphs/gemma-2b.yaml",  "graphs/gemma-7b.yaml",   "graphs/gemma2-2b.yaml",
    "graphs/gemma2-9b.yaml", "graphs/gemma3-1b.yaml",  "graphs/gemma3-270m.yaml",
    "tests/graphs/tiny.yaml", "tests/graphs/tiny-q.yaml", "tests/graphs/tiny-qmix.yaml",
};

static int act_int8(int wdtype) { return gmk_act_fmt_int8(wdtype); }

typedef struct fused {
    gmc_arena a;
    gmc_graph *g, *f;
} fused;

static void lower_graph(fused *r, const char *rel)
{
    gmc_arena_init(&r->a);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_model *m;
    const char *path = rel[0] == '/' ? rel : gmc_test_src(rel);
    ck_assert_msg(gmc_model_load(path, &r->a, &m, &d) == GMC_OK, "%s", d.msg);
    ck_assert_msg(gmc_graph_lower(m, 8, &r->a, &r->g, &d) == GMC_OK, "%s", d.msg);
}

/* Fuses and plans r->g; returns the note (NULL: everything fused). */
static const char *fuse_lowered(fused *r, int (*fmt)(int))
{
    gmc_diag d;
    gmc_diag_clear(&d);
    const char *note = "unset";
    ck_assert_msg(gmc_fuse(r->g, fmt, &r->a, &r->f, &note, &d) == GMC_OK, "%s", d.msg);
    ck_assert(r->f != r->g);
    ck_assert_msg(gmc_plan(r->f, &d) == GMC_OK, "%s", d.msg);
    return note;
}

static void fuse_graph(fused *r, const char *rel, int (*fmt)(int))
{
    lower_graph(r, rel);
    const char *note = fuse_lowered(r, fmt);
    ck_assert_msg(note == NULL, "%s did not fuse: %s", rel, note);
}

/* How many nodes of g are op. */
static int count_op(const gmc_graph *g, gmc_op op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].op == op;
    return n;
}

/* The operand of n in the slot its dumps call name. */
static int slot(const gmc_node *n, const char *name)
{
    const char *const *s = gmc_op_slots[n->op];
    ck_assert_ptr_nonnull(s);
    for (int k = 0; k < gmc_op_n_in[n->op]; k++)
        if (strcmp(s[k], name) == 0)
            return n->in[k];
    ck_abort_msg("no slot %s in %s", name, gmc_op_names[n->op]);
    return -1;
}

/* fused.def gives each fused op its slot enum, names and n_in together. */
START_TEST(test_fuse_slot_table)
{
    ck_assert_int_eq(gmc_op_n_in[GMC_OP_QKV], GMC_QKV_N_SLOTS);
    ck_assert_int_eq(GMC_QKV_N_SLOTS, 13);
    ck_assert_str_eq(gmc_op_slots[GMC_OP_QKV][GMC_QKV_WQ], "wq");
    ck_assert_str_eq(gmc_op_slots[GMC_OP_QKV][GMC_QKV_VC], "vc");
    ck_assert_str_eq(gmc_op_slots[GMC_OP_HEAD][GMC_HEAD_SLOTS], "slots");
    ck_assert_str_eq(gmc_op_slots[GMC_OP_DOWN_NORM_ADD][GMC_DOWN_NORM_ADD_A2], "a2");
    ck_assert_ptr_null(gmc_op_slots[GMC_OP_MATMUL]);
    for (int op = 0; op < GMC_OP_COUNT; op++) {
        ck_assert_int_le(gmc_op_n_in[op], GMC_NODE_MAX_IN);
        for (int k = 0; gmc_op_slots[op] && k < gmc_op_n_in[op]; k++)
            ck_assert_ptr_nonnull(gmc_op_slots[op][k]);
    }
}
END_TEST

/* Gemma 3 270M: 18 layers, each qkv attn_act proj_norm_add gate_up
 * down_norm_add; layer 0's norm right after the embedding; every layer but
 * the last applies the next one's attention norm. */
START_TEST(test_fuse_270m_sequence)
{
    fused r;
    fuse_graph(&r, "graphs/gemma3-270m.yaml", gmc_act_fmt_f32);
    const gmc_graph *f = r.f;
    int L = f->model->n_layers;
    ck_assert_int_eq(L, 18);
    ck_assert_int_eq(f->n_nodes, 3 + 5 * L);
    ck_assert_int_eq(f->nodes[0].op, GMC_OP_EMBED);
    ck_assert_int_eq(f->nodes[1].op, GMC_OP_NORM_ACT);
    static const gmc_op per_layer[5] = {GMC_OP_QKV, GMC_OP_ATTN_ACT, GMC_OP_PROJ_NORM_ADD,
                                        GMC_OP_GATE_UP, GMC_OP_DOWN_NORM_ADD};
    for (int l = 0; l < L; l++) {
        for (int i = 0; i < 5; i++) {
            const gmc_node *n = &f->nodes[2 + 5 * l + i];
            ck_assert_int_eq(n->op, per_layer[i]);
            ck_assert_int_eq(n->layer, l);
        }
        const gmc_node *qkv = &f->nodes[2 + 5 * l], *down = &f->nodes[6 + 5 * l];
        ck_assert_int_ge(slot(qkv, "qn"), 0); /* Gemma 3 has QK-norm */
        ck_assert_int_ge(slot(down, "post"), 0);
        /* the next attention norm, except after the last layer */
        ck_assert_int_eq(slot(down, "norm") >= 0, l + 1 < L);
        ck_assert_int_eq(slot(down, "a0") >= 0, l + 1 < L);
        /* 5 local layers, then a global one */
        ck_assert_int_eq(qkv->rope, (l + 1) % 6 == 0);
        ck_assert_int_eq(f->nodes[3 + 5 * l].window > 0, (l + 1) % 6 != 0);
    }
    const gmc_node *h = &f->nodes[f->n_nodes - 1];
    ck_assert_int_eq(h->op, GMC_OP_HEAD);
    ck_assert_int_eq(h->layer, -1);
    ck_assert_float_eq(h->softcap, 0.0f);
    /* The unfused graph is untouched (its dump is what the hash covers). */
    ck_assert_int_eq(r.g->nodes[1].op, GMC_OP_RMSNORM);
    ck_assert_uint_eq(r.f->hash, r.g->hash);
    gmc_arena_deinit(&r.a);
}
END_TEST

/* Gemma 1: no QK-norm, no post-norms; Gemma 2: post-norms and both caps. */
START_TEST(test_fuse_families)
{
    fused r;
    fuse_graph(&r, "graphs/gemma-2b.yaml", gmc_act_fmt_f32);
    ck_assert_int_eq(slot(&r.f->nodes[2], "qn"), -1);
    ck_assert_int_eq(slot(&r.f->nodes[4], "post"), -1);
    ck_assert_int_eq(slot(&r.f->nodes[6], "post"), -1);
    gmc_arena_deinit(&r.a);
    fuse_graph(&r, "graphs/gemma2-2b.yaml", gmc_act_fmt_f32);
    ck_assert_int_eq(slot(&r.f->nodes[2], "qn"), -1);
    ck_assert_int_ge(slot(&r.f->nodes[4], "post"), 0);
    ck_assert_float_gt(r.f->nodes[3].softcap, 0.0f);
    ck_assert_float_gt(r.f->nodes[r.f->n_nodes - 1].softcap, 0.0f);
    gmc_arena_deinit(&r.a);
}
END_TEST

/* An int8 target gets one buffer per distinct format: the input of matmuls
 * with q4_0 and q8_0 weights goes out once as Q8_0 rows, sized by
 * gmk_act_row_bytes. */
START_TEST(test_fuse_act_formats)
{
    fused r;
    fuse_graph(&r, "tests/graphs/tiny-q.yaml", act_int8);
    int n_act = 0;
    for (int i = 0; i < r.f->n_values; i++) {
        const gmc_value *v = &r.f->values[i];
        if (v->act_fmt < 0 || v->first < 0)
            continue;
        n_act++;
        ck_assert_uint_eq(v->bytes, gmk_act_row_bytes(v->act_fmt, v->ne[0]) * 8u);
    }
    ck_assert_int_gt(n_act, 0);
    const gmc_node *qkv = &r.f->nodes[2];
    int wq = slot(qkv, "wq");
    ck_assert_int_eq(r.f->values[slot(qkv, "xq")].act_fmt,
                     gmk_act_fmt_int8(r.f->values[wq].dtype));
    gmc_arena_deinit(&r.a);
}
END_TEST

/* A norm whose matmuls want two formats writes two buffers: Gemma 2B with
 * q8_0 attention and FFN weights but q4_k attn_k and ffn_up. */
START_TEST(test_fuse_two_formats)
{
    char *text = gmc_test_read_file(gmc_test_src("graphs/gemma-2b.yaml"), NULL);
    ck_assert_ptr_nonnull(text);
    const char *from = "  attn: f16\n  ffn: f16\n";
    char *at = strstr(text, from);
    ck_assert_ptr_nonnull(at);
    char path[4200];
    snprintf(path, sizeof path, "%s/gemma-2b-mixed.yaml", gmc_test_tmpdir());
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    fprintf(fp, "%.*s  attn: q8_0\n  ffn: q8_0\n  tensors: {attn_k: q4_k, ffn_up: q4_k}\n%s",
            (int)(at - text), text, at + strlen(from));
    fclose(fp);
    free(text);
    fused r;
    fuse_graph(&r, path, act_int8);
    const gmc_node *na = &r.f->nodes[1], *qkv = &r.f->nodes[2], *pna = &r.f->nodes[4];
    ck_assert_int_ge(slot(na, "a1"), 0);
    ck_assert_int_eq(slot(na, "a2"), -1);
    ck_assert_int_eq(slot(qkv, "xq"), slot(qkv, "xv"));
    ck_assert_int_ne(slot(qkv, "xq"), slot(qkv, "xk"));
    ck_assert_int_eq(r.f->values[slot(qkv, "xq")].act_fmt, GMK_ACT_Q8_0);
    ck_assert_int_eq(r.f->values[slot(qkv, "xk")].act_fmt, GMK_ACT_Q8_K);
    ck_assert_int_ge(slot(pna, "a1"), 0);
    ck_assert_int_eq(r.f->values[slot(&r.f->nodes[5], "xu")].act_fmt, GMK_ACT_Q8_K);
    gmc_arena_deinit(&r.a);
}
END_TEST

/* The C of the planned graph f (generic kernels) is accepted by clang
 * -Werror; tag names the file. */
static void check_compiles(const gmc_graph *f, const char *tag)
{
    const char *dir = gmc_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    gmc_host h = {.triple = "x86_64-pc-linux-gnu", .arch = "x86_64", .cpu = "znver4"};
    gmc_target_config tc;
    char why[64], flags[1024], path[4200], cmd[9000];
    ck_assert(gmc_target_generic.configure(&gmc_target_generic, &h, &tc, why, sizeof why));
    gmc_toolchain_flags(&tc, flags, sizeof flags);
    gmc_emit_out out;
    gmc_emit_out_init(&out);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_emit(f, &tc, flags, &out, &d) == GMC_OK, "%s", d.msg);
    snprintf(path, sizeof path, "%s/fused_%s.c", dir, tag);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    fwrite(gmc_strbuf_str(&out.model_c), 1, out.model_c.len, fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -fsyntax-only -Wall -Wextra -Wpedantic -Werror "
             "-I%s/runtime/include %s 2>&1",
             gmc_toolchain_clang(), GMC_SOURCE_DIR, path);
    ck_assert_msg(system(cmd) == 0, "%s: fused C does not compile: %s", tag, cmd);
    gmc_emit_out_deinit(&out);
}

/* Every shipped graph fuses for a float and an int8 target, and its fused
 * C (generic kernels) is accepted by clang -Werror. */
START_TEST(test_fuse_every_graph_compiles)
{
    for (size_t i = 0; i < sizeof all_graphs / sizeof *all_graphs; i++) {
        for (int t = 0; t < 2; t++) {
            fused r;
            char tag[32];
            fuse_graph(&r, all_graphs[i], t ? act_int8 : gmc_act_fmt_f32);
            snprintf(tag, sizeof tag, "%zu_%d", i, t);
            check_compiles(r.f, tag);
            gmc_arena_deinit(&r.a);
        }
    }
}
END_TEST

/* The fused ops a fused layer has, in order. */
static const gmc_op layer_ops[] = {GMC_OP_QKV, GMC_OP_ATTN_ACT, GMC_OP_PROJ_NORM_ADD,
                                   GMC_OP_GATE_UP, GMC_OP_DOWN_NORM_ADD};

/* Gemma 4 E2B: every attention, FFN and per-layer embedding block fuses,
 * with the features of its layer (from the model): the value norm on
 * layers with their own K/V, none of K, V or caches on the KV-shared ones,
 * the global head_dim.  The FFN's last op converts x for the per-layer
 * embedding's gate; the output scale rides on the next layer's norm_act.
 * What stays per op: the per-layer inputs before layer 0 and the last
 * layer's output scale.  A step has fewer than half the ops. */
START_TEST(test_fuse_gemma4_blocks)
{
    fused r;
    lower_graph(&r, "graphs/gemma4-e2b.yaml");
    const char *note = fuse_lowered(&r, act_int8);
    const gmc_graph *f = r.f;
    const gmc_model *m = f->model;
    int L = m->n_layers, qkv = 0;
    for (size_t i = 0; i < sizeof layer_ops / sizeof *layer_ops; i++) /* + ple's projection */
        ck_assert_int_eq(count_op(f, layer_ops[i]), L * (1 + (i == 2)));
    ck_assert_int_eq(count_op(f, GMC_OP_PLE_GATE), L);
    ck_assert_int_eq(count_op(f, GMC_OP_HEAD), 1);
    for (int i = 0; i < f->n_nodes; i++) {
        const gmc_node *n = &f->nodes[i];
        if (n->op == GMC_OP_NORM_ACT) /* the previous layer's output scale first */
            ck_assert_int_eq(slot(n, "scale") >= 0, n->layer >= 0);
        if (n->op == GMC_OP_DOWN_NORM_ADD) { /* x itself, for the gate */
            ck_assert_int_lt(slot(n, "norm"), 0);
            ck_assert_int_eq(slot(n, "a0"), slot(&f->nodes[i + 1], "xq"));
            ck_assert_int_eq(f->nodes[i + 1].op, GMC_OP_PLE_GATE);
        }
        if (n->op != GMC_OP_QKV)
            continue;
        const gmc_layer *ly = &m->layers[qkv];
        bool own = ly->kv_source == qkv;
        ck_assert_int_eq(n->layer, qkv);
        ck_assert_int_eq(n->head_dim, ly->head_dim);
        ck_assert_int_eq(n->n_kv_heads, ly->n_kv_heads);
        ck_assert_int_eq(slot(n, "wk") >= 0, own);
        ck_assert_int_eq(slot(n, "kc") >= 0, own);
        ck_assert_int_eq(slot(n, "wv") >= 0, own && !ly->k_eq_v);
        ck_assert_int_eq(n->v_norm, own && m->value_norm);
        qkv++;
    }
    ck_assert_int_eq(count_op(f, GMC_OP_NORM_ACT), L);
    /* unfused: the two embeds, 5 ops of the per-layer inputs, 1 scale */
    int unfused = 0;
    for (int i = 0; i < f->n_nodes; i++)
        unfused += gmc_op_slots[f->nodes[i].op] == NULL;
    ck_assert_int_eq(unfused, 2 + 5 + 1);
    ck_assert_int_eq(f->n_nodes, unfused + L * (1 + 5 + 2) + 1);
    ck_assert_int_lt(2 * f->n_nodes, r.g->n_nodes);
    ck_assert_ptr_nonnull(note);
    ck_assert_msg(strstr(note, "6 ops unfused: matmul x1 head_norm x1 add x1 scale x2 "
                               "scale_w x1") && !strstr(note, "blocks"), "%s", note);
    check_compiles(f, "gemma4_e2b");
    gmc_arena_deinit(&r.a);
}
END_TEST

/* An op the fuser does not know inside one block (layer 0's GeGLU made a
 * tanh) leaves that block's ops as they are and fuses the rest: layer 0's
 * attention no longer applies the FFN norm, layer 1 starts with its own
 * norm_act, and the note names the block and the op.  Gemma 4's experts
 * do the same to every FFN of the tiny Gemma 4 graph, and its K = V
 * global layer and KV-shared layers still fuse their attention. */
START_TEST(test_fuse_unknown_op_one_block)
{
    fused r;
    lower_graph(&r, "tests/graphs/tiny-q.yaml");
    int geglu = 0, L = r.g->model->n_layers;
    for (int i = 0; i < r.g->n_nodes; i++)
        if (r.g->nodes[i].op == GMC_OP_GEGLU && geglu++ == 0) {
            r.g->nodes[i].op = GMC_OP_TANH;
            r.g->nodes[i].in[1] = -1;
        }
    ck_assert_int_ge(L, 2);
    const char *note = fuse_lowered(&r, act_int8);
    ck_assert_ptr_nonnull(note);
    ck_assert_msg(strstr(note, "FFN blocks at tanh x1 (layers 0..0)"), "%s", note);
    const gmc_graph *f = r.f;
    ck_assert_int_eq(count_op(f, GMC_OP_QKV), L);
    ck_assert_int_eq(count_op(f, GMC_OP_GATE_UP), L - 1);
    ck_assert_int_eq(count_op(f, GMC_OP_TANH), 1);
    ck_assert_int_eq(count_op(f, GMC_OP_RMSNORM), 1);
    ck_assert_int_eq(count_op(f, GMC_OP_MATMUL), 3);
    ck_assert_int_eq(count_op(f, GMC_OP_NORM_ACT), 2); /* layer 0's, and layer 1's */
    for (int i = 0; i < f->n_nodes; i++) {
        const gmc_node *n = &f->nodes[i];
        if (n->op == GMC_OP_PROJ_NORM_ADD)
            ck_assert_int_eq(slot(n, "norm") >= 0, n->layer != 0);
        if (n->op == GMC_OP_DOWN_NORM_ADD)
            ck_assert_int_eq(slot(n, "norm") >= 0, n->layer + 1 < L);
        if (n->op == GMC_OP_MATMUL) /* the unfused matmuls read converted rows */
            ck_assert_int_ge(n->in[2], 0);
    }
    check_compiles(f, "tiny_q_tanh");
    gmc_arena_deinit(&r.a);

    lower_graph(&r, "tests/graphs/gemma4-tiny.yaml");
    note = fuse_lowered(&r, act_int8);
    L = r.g->model->n_layers;
    ck_assert_msg(note && strstr(note, "FFN blocks at moe_route x6 (layers 0..5)") &&
                      strstr(note, "per-layer embedding blocks after unfused ops x6"),
                  "%s", note);
    ck_assert_int_eq(count_op(r.f, GMC_OP_QKV), L);
    ck_assert_int_eq(count_op(r.f, GMC_OP_GATE_UP), 0);
    ck_assert_int_eq(count_op(r.f, GMC_OP_MOE_FFN), L);
    check_compiles(r.f, "gemma4_tiny");
    gmc_arena_deinit(&r.a);
}
END_TEST

/* ------------------------------------------------------------ the head */

typedef struct head_run {
    gmk_ctx c;
    pthread_barrier_t *bar;
    const float *x, *w, *E;
    float *tmp, *hq;
    gmk_argmax_slot *slots;
    int D, V, ith, nth;
    float cap;
} head_run;

static void test_barrier(void *sync) { pthread_barrier_wait(sync); }

static void *head_thread(void *p)
{
    head_run *r = p;
    gmk_fused_head(r->x, r->w, r->tmp, r->hq, GMK_ACT_F32, r->E, GMK_DTYPE_F32, r->slots, r->D,
                   r->V, 1e-6f, r->cap, &r->c, r->ith, r->nth);
    return NULL;
}

/* Runs the fused head on nth threads; argmax non-NULL asks for the id. */
static void run_head(const float *x, const float *w, const float *E, int D, int V, float cap,
                     int nth, float *logits, int32_t *argmax)
{
    float *tmp = calloc((size_t)D, sizeof *tmp), *hq = calloc((size_t)D, sizeof *hq);
    gmk_argmax_slot slots[GMK_MAX_THREADS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nth);
    head_run r[4];
    pthread_t th[4];
    for (int i = 0; i < nth; i++) {
        r[i] = (head_run){.bar = &bar, .x = x, .w = w, .E = E, .tmp = tmp, .hq = hq,
                          .slots = slots, .D = D, .V = V, .ith = i, .nth = nth, .cap = cap};
        r[i].c = (gmk_ctx){.n_tokens = 1, .n_logits = 1, .logits = logits,
                           .barrier = test_barrier, .sync = &bar, .argmax_out = argmax};
        pthread_create(&th[i], NULL, head_thread, &r[i]);
    }
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    free(tmp);
    free(hq);
}

/* The greedy id is the first largest logit of the full row, whatever the
 * thread count, with ties (duplicated rows) and with a soft-cap. */
START_TEST(test_fuse_head_argmax)
{
    enum { D = 32, V = 1000 };
    float *E = malloc(sizeof(float) * D * V), x[D], w[D];
    float *logits = malloc(sizeof(float) * V), *scratch = malloc(sizeof(float) * V);
    uint32_t s = 12345;
    for (int i = 0; i < D * V; i++) {
        s = s * 1664525u + 1013904223u;
        E[i] = ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    for (int i = 0; i < D; i++) {
        x[i] = (float)((i * 7) % 11) - 5.0f;
        w[i] = 1.0f + 0.01f * (float)i;
    }
    for (int cap_i = 0; cap_i < 2; cap_i++) {
        float cap = cap_i ? 0.5f : 0.0f; /* a tight cap makes near-ties */
        run_head(x, w, E, D, V, cap, 1, logits, NULL);
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best])
                best = i;
        /* Copies of the best row, one below it: that lower index must win. */
        int lower = best / 2;
        memcpy(E + (size_t)(V - 1) * D, E + (size_t)best * D, sizeof(float) * D);
        memcpy(E + (size_t)lower * D, E + (size_t)best * D, sizeof(float) * D);
        run_head(x, w, E, D, V, cap, 1, logits, NULL);
        int32_t want = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[want])
                want = i;
        ck_assert_int_eq(want, lower);
        for (int nth = 1; nth <= 3; nth++) {
            int32_t id = -1;
            run_head(x, w, E, D, V, cap, nth, scratch, &id);
            ck_assert_msg(id == want, "cap %g, %d threads: id %d, want %d", (double)cap, nth,
                          id, want);
        }
    }
    free(E);
    free(logits);
    free(scratch);
}
END_TEST

/* ------------------------------------------------------------ qkv */

enum { QD = 32, QNH = 3, QNKV = 2, QHD = 8, QNT = 5, QSLOTS = 4, QPOS = 6 };

/* The inputs of one qkv test, and the outputs of one way of computing it. */
typedef struct qkv_io {
    float x[QNT * QD], w[3][QNH * QHD * QD], qn[QHD], kn[QHD], inv[QHD / 2];
} qkv_io;

typedef struct qkv_out {
    float q[QNT * QNH * QHD], k[QNT * QNKV * QHD], v[QNT * QNKV * QHD];
    float kc[QSLOTS * QNKV * QHD], vc[QSLOTS * QNKV * QHD];
} qkv_out;

/* The unfused ops as the lowering orders them (graph.c lower_attention):
 * projections (V a copy of K for K = V), QK-norm, RoPE, value norm, store. */
static void qkv_unfused(const qkv_io *in, bool own, bool k_eq_v, bool v_norm, qkv_out *o)
{
    const int kvd = QNKV * QHD;
    gmk_matmul(o->q, QNH * QHD, in->w[0], GMK_DTYPE_F32, in->x, QNT, QNH * QHD, QD, 0, 1);
    gmk_head_rmsnorm(o->q, in->qn, QNT, QNH, QHD, 1e-6f, 0, 1);
    gmk_rope(o->q, QNT, QNH, QHD, QPOS, in->inv, 0.25f, 0, 1);
    if (!own)
        return;
    gmk_matmul(o->k, kvd, in->w[1], GMK_DTYPE_F32, in->x, QNT, kvd, QD, 0, 1);
    if (k_eq_v)
        memcpy(o->v, o->k, sizeof o->v);
    else
        gmk_matmul(o->v, kvd, in->w[2], GMK_DTYPE_F32, in->x, QNT, kvd, QD, 0, 1);
    gmk_head_rmsnorm(o->k, in->kn, QNT, QNKV, QHD, 1e-6f, 0, 1);
    gmk_rope(o->k, QNT, QNKV, QHD, QPOS, in->inv, 1.0f, 0, 1);
    if (v_norm)
        gmk_head_rmsnorm(o->v, NULL, QNT, QNKV, QHD, 1e-6f, 0, 1);
    gmk_kv_store(o->kc, o->vc, GMK_DTYPE_F32, o->k, o->v, QNT, QPOS, QSLOTS, kvd, 0, 1);
}

/* gmk_fused_qkv with the threads run one after the other (it has no
 * barrier inside). */
static void qkv_fused(const qkv_io *in, bool own, bool k_eq_v, bool v_norm, int nth,
                      qkv_out *o)
{
    const gmk_qkv a = {
        .x = {in->x, in->x, in->x}, .fmt = {GMK_ACT_F32, GMK_ACT_F32, GMK_ACT_F32},
        .w = {in->w[0], own ? in->w[1] : NULL, own && !k_eq_v ? in->w[2] : NULL},
        .wdtype = {GMK_DTYPE_F32, GMK_DTYPE_F32, GMK_DTYPE_F32},
        .q_norm = in->qn, .k_norm = own ? in->kn : NULL, .eps = 1e-6f, .v_norm = v_norm,
        .q = o->q, .k = own ? o->k : NULL, .v = own ? o->v : NULL,
        .kc = own ? o->kc : NULL, .vc = own ? o->vc : NULL, .kv_dtype = GMK_DTYPE_F32,
        .n_slots = own ? QSLOTS : 0, .inv_freq = in->inv, .q_scale = 0.25f,
        .n_heads = QNH, .n_kv = QNKV, .hd = QHD, .D = QD,
    };
    gmk_ctx c = {.n_tokens = QNT, .pos = QPOS};
    for (int ith = 0; ith < nth; ith++)
        gmk_fused_qkv(&a, &c, ith, nth);
}

/* The fused QKV with Gemma 4's features (value norm, K = V, a layer that
 * reads another's cache) gives the unfused ops' bits, for 1 to 3 threads;
 * 5 tokens into a 4-slot ring also checks which tokens are stored. */
START_TEST(test_fuse_qkv_gemma4)
{
    static qkv_io in;
    uint32_t s = 777;
    float *all[] = {in.x, in.w[0], in.w[1], in.w[2], in.qn, in.kn};
    size_t lens[] = {QNT * QD, QNH * QHD * QD, QNKV * QHD * QD, QNKV * QHD * QD, QHD, QHD};
    for (int a = 0; a < 6; a++)
        for (size_t i = 0; i < lens[a]; i++) {
            s = s * 1664525u + 1013904223u;
            all[a][i] = (float)(s >> 8) / 16777216.0f - 0.5f + (a >= 4 ? 1.0f : 0.0f);
        }
    for (int i = 0; i < QHD / 2; i++)
        in.inv[i] = i < QHD / 4 ? powf(10000.0f, -2.0f * (float)i / QHD) : 0.0f;
    static const bool cases[][3] = {/* own, k_eq_v, v_norm */
                                    {true, false, false}, {true, false, true},
                                    {true, true, true},   {false, false, false}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        static qkv_out want, got;
        memset(&want, 0, sizeof want);
        qkv_unfused(&in, cases[k][0], cases[k][1], cases[k][2], &want);
        for (int nth = 1; nth <= 3; nth++) {
            memset(&got, 0, sizeof got);
            qkv_fused(&in, cases[k][0], cases[k][1], cases[k][2], nth, &got);
            ck_assert_msg(memcmp(&want, &got, sizeof want) == 0,
                          "case %zu, %d threads: fused qkv differs", k, nth);
        }
    }
}
END_TEST

Suite *fuse_suite(void)
{
    Suite *s = suite_create("fuse");
    TCase *tc = tcase_create("fuse");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fuse_slot_table);
    tcase_add_test(tc, test_fuse_270m_sequence);
    tcase_add_test(tc, test_fuse_families);
    tcase_add_test(tc, test_fuse_act_formats);
    tcase_add_test(tc, test_fuse_two_formats);
    tcase_add_test(tc, test_fuse_every_graph_compiles);
    tcase_add_test(tc, test_fuse_head_argmax);
    tcase_add_test(tc, test_fuse_gemma4_blocks);
    tcase_add_test(tc, test_fuse_unknown_op_one_block);
    tcase_add_test(tc, test_fuse_qkv_gemma4);
    suite_add_tcase(s, tc);
    return s;
}
