/*
 * plan.c — liveness and best-fit offsets for the activation arena; KV layout.
 *
 * Free space is a list of blocks kept sorted by offset and coalesced.  An
 * in-place op keeps its first input alive (it is the same value), so no
 * special case is needed beyond recording each value's first and last node.
 * Fused ops read and write several values (slots); all are operands alike.
 */
#include "plan.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gmk.h"

#define ALIGN ((uint64_t)GMK_ARENA_ALIGN)

static uint64_t align_up(uint64_t n) { return (n + ALIGN - 1) & ~(ALIGN - 1); }

typedef struct block {
    uint64_t off, size;
} block;

typedef struct freelist {
    block *b;
    int n, cap;
    uint64_t end; /* high-water mark of the arena */
} freelist;

/* Best fit: the smallest free block that holds size; else grow the arena,
 * reusing a free block that ends at the current end. */
static uint64_t fl_alloc(freelist *f, uint64_t size)
{
    int best = -1;
    for (int i = 0; i < f->n; i++)
        if (f->b[i].size >= size && (best < 0 || f->b[i].size < f->b[best].size))
            best = i;
    if (best >= 0) {
        uint64_t off = f->b[best].off;
        f->b[best].off += size;
        f->b[best].size -= size;
        if (f->b[best].size == 0) {
            memmove(&f->b[best], &f->b[best + 1],
                    (size_t)(f->n - best - 1) * sizeof *f->b);
            f->n--;
        }
        return off;
    }
    if (f->n > 0 && f->b[f->n - 1].off + f->b[f->n - 1].size == f->end) {
        uint64_t off = f->b[f->n - 1].off;
        f->n--;
        f->end = off + size;
        return off;
    }
    uint64_t off = f->end;
    f->end += size;
    return off;
}

static void fl_free(freelist *f, uint64_t off, uint64_t size)
{
    int i = 0;
    while (i < f->n && f->b[i].off < off)
        i++;
    GMC_ASSERT(f->n < f->cap);
    memmove(&f->b[i + 1], &f->b[i], (size_t)(f->n - i) * sizeof *f->b);
    f->b[i] = (block){off, size};
    f->n++;
    /* Coalesce with the right neighbour, then with the left one. */
    if (i + 1 < f->n && f->b[i].off + f->b[i].size == f->b[i + 1].off) {
        f->b[i].size += f->b[i + 1].size;
        memmove(&f->b[i + 1], &f->b[i + 2], (size_t)(f->n - i - 2) * sizeof *f->b);
        f->n--;
    }
    if (i > 0 && f->b[i - 1].off + f->b[i - 1].size == f->b[i].off) {
        f->b[i - 1].size += f->b[i].size;
        memmove(&f->b[i], &f->b[i + 1], (size_t)(f->n - i - 1) * sizeof *f->b);
        f->n--;
    }
}

static void touch(gmc_graph *g, int v, int node)
{
    if (v < 0)
        return;
    gmc_value *x = &g->values[v];
    if (x->first < 0)
        x->first = node;
    x->last = node;
}

/* The distinct values a node reads or writes (inputs, then its output
 * unless it is an in-place op's first input). */
static int node_operands(const gmc_node *n, int ids[GMC_NODE_MAX_IN + 1])
{
    int cnt = 0;
    for (int k = 0; k <= gmc_op_n_in[n->op]; k++) {
        int id = k < gmc_op_n_in[n->op] ? n->in[k] : n->out;
        bool seen = id < 0;
        for (int j = 0; j < cnt && !seen; j++)
            seen = ids[j] == id;
        if (!seen)
            ids[cnt++] = id;
    }
    return cnt;
}

static void liveness(gmc_graph *g)
{
    for (int i = 0; i < g->n_values; i++)
        g->values[i].first = g->values[i].last = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        int ids[GMC_NODE_MAX_IN + 1], n_ids = node_operands(&g->nodes[i], ids);
        for (int k = 0; k < n_ids; k++)
            touch(g, ids[k], i);
    }
}

static void plan_kv(gmc_graph *g)
{
    uint64_t off = 0, per_token = 0;
    for (int i = 0; i < g->n_values; i++) {
        gmc_value *v = &g->values[i];
        if (v->kind != GMC_V_KV)
            continue;
        v->offset = (int64_t)off;
        off = align_up(off + v->bytes);
        per_token += v->bytes / (uint64_t)v->n_slots;
    }
    g->kv_bytes = off;
    g->kv_bytes_per_token = per_token;
}

/* What a build may ask for at run time (nothing giant is allocated on a
 * graph's say-so): the KV cache at full context and the weights at 1 TiB,
 * the activation arena at 64 GiB.  The largest released Gemma asks for 22
 * GiB of KV (Gemma 4 31B, 262144 positions, f16). */
#define MAX_KV_BYTES (1ull << 40)
#define MAX_WEIGHT_BYTES (1ull << 40)
#define MAX_ARENA_BYTES (1ull << 36)

static gmc_status check_sizes(const gmc_graph *g, gmc_diag *diag)
{
    const gmc_model *m = g->model;
    const char *src = m->source ? m->source : m->name;
    double gib = 1024.0 * 1024.0 * 1024.0;
    if (g->kv_bytes > MAX_KV_BYTES)
        return gmc_fail(diag, GMC_ERR_LIMIT,
                        "%s: the KV cache at full context would be %.0f GiB (%d layers, "
                        "model.context %d), over the limit of %.0f GiB: lower model.context "
                        "or the KV heads x head_dim",
                        src, (double)g->kv_bytes / gib, m->n_layers, m->context,
                        (double)MAX_KV_BYTES / gib);
    if (g->weight_bytes > MAX_WEIGHT_BYTES)
        return gmc_fail(diag, GMC_ERR_LIMIT,
                        "%s: the weights would be %.0f GiB, over the limit of %.0f GiB "
                        "(model.d_model %d, model.layers %d, model.vocab %d, ffn.dim %d)",
                        src, (double)g->weight_bytes / gib, (double)MAX_WEIGHT_BYTES / gib,
                        m->d_model, m->n_layers, m->vocab, m->ffn_dim);
    if (g->arena_bytes > MAX_ARENA_BYTES)
        return gmc_fail(diag, GMC_ERR_LIMIT,
                        "%s: the activation arena would be %.0f GiB at batch %d, over the "
                        "limit of %.0f GiB: lower --batch or the widths",
                        src, (double)g->arena_bytes / gib, g->max_batch,
                        (double)MAX_ARENA_BYTES / gib);
    return GMC_OK;
}

gmc_status gmc_plan(gmc_graph *g, gmc_diag *diag)
{
    liveness(g);
    plan_kv(g);
    freelist f = {0};
    f.cap = g->n_values + 1;
    block storage[1024];
    gmc_arena scratch;
    gmc_arena_init(&scratch);
    f.b = f.cap <= 1024 ? storage : gmc_arena_array(&scratch, (size_t)f.cap, sizeof *f.b);
    if (!f.b) {
        gmc_arena_deinit(&scratch);
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory planning");
    }
    g->naive_bytes = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        int ids[GMC_NODE_MAX_IN + 1], n_ids = node_operands(&g->nodes[i], ids);
        /* Everything first touched here gets memory before anything that
         * dies here is freed: a node's operands never share memory. */
        for (int k = 0; k < n_ids; k++) {
            gmc_value *v = &g->values[ids[k]];
            if (v->kind == GMC_V_ACT && v->first == i && v->offset < 0) {
                v->offset = (int64_t)fl_alloc(&f, align_up(v->bytes));
                g->naive_bytes += align_up(v->bytes);
            }
        }
        for (int k = 0; k < n_ids; k++) {
            gmc_value *v = &g->values[ids[k]];
            if (v->kind == GMC_V_ACT && v->last == i && v->offset >= 0)
                fl_free(&f, (uint64_t)v->offset, align_up(v->bytes));
        }
    }
    g->arena_bytes = f.end;
    gmc_arena_deinit(&scratch);
    GMC_TRY(check_sizes(g, diag));
    return gmc_plan_check(g, diag);
}

/* An activation by the node that first writes it, for the sweep of
 * gmc_plan_check; ties keep value order. */
typedef struct act_ref {
    int first, index;
} act_ref;

static int by_first(const void *pa, const void *pb)
{
    const act_ref *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Every pair of activations whose live ranges intersect must not overlap
 * in memory.  Comparing all pairs is quadratic in the values, which a
 * 1024-layer graph makes seconds of work, so the activations are swept in
 * order of first use: each is compared only with those that start before
 * it ends. */
gmc_status gmc_plan_check(const gmc_graph *g, gmc_diag *diag)
{
    act_ref *order = malloc((size_t)(g->n_values > 0 ? g->n_values : 1) * sizeof *order);
    if (!order)
        return gmc_fail(diag, GMC_ERR_NOMEM, "plan: out of memory");
    int n = 0;
    gmc_status st = GMC_OK;
    for (int i = 0; i < g->n_values && st == GMC_OK; i++) {
        const gmc_value *a = &g->values[i];
        if (a->kind != GMC_V_ACT || a->first < 0)
            continue;
        if (a->offset < 0 || (uint64_t)a->offset % ALIGN != 0 ||
            (uint64_t)a->offset + a->bytes > g->arena_bytes)
            st = gmc_fail(diag, GMC_ERR_SEMANTIC,
                          "plan: %s at %" PRId64 " (+%" PRIu64
                          ") is misaligned or outside the arena of %" PRIu64,
                          a->name, a->offset, a->bytes, g->arena_bytes);
        order[n++] = (act_ref){a->first, i};
    }
    qsort(order, (size_t)n, sizeof *order, by_first);
    for (int i = 0; i < n && st == GMC_OK; i++) {
        const gmc_value *a = &g->values[order[i].index];
        for (int j = i + 1; j < n && order[j].first <= a->last; j++) {
            const gmc_value *b = &g->values[order[j].index];
            if ((uint64_t)a->offset < (uint64_t)b->offset + b->bytes &&
                (uint64_t)b->offset < (uint64_t)a->offset + a->bytes) {
                st = gmc_fail(diag, GMC_ERR_SEMANTIC,
                              "plan: %s and %s are live together and overlap",
                              a->name, b->name);
                break;
            }
        }
    }
    free(order);
    if (st == GMC_OK && g->arena_bytes > g->naive_bytes)
        st = gmc_fail(diag, GMC_ERR_SEMANTIC,
                      "plan: arena %" PRIu64 " exceeds the naive sum %" PRIu64,
                      g->arena_bytes, g->naive_bytes);
    return st;
}

static void bytes_line(gmc_strbuf *b, const char *what, uint64_t n)
{
    gmc_emitf(b, "  %-28s %14" PRIu64 " B  (%.2f MiB)\n", what, n,
              (double)n / (1024.0 * 1024.0));
}

void gmc_plan_report(const gmc_graph *g, const char *target, gmc_strbuf *b)
{
    const gmc_model *m = g->model;
    uint64_t logits = (uint64_t)m->vocab * sizeof(float);
    gmc_emitf(b, "plan for %s (%s) on %s: %d layers, max batch %d, context %d\n",
              m->name, m->source ? m->source : "?", target, m->n_layers, g->max_batch,
              m->context);
    gmc_params pc = gmc_model_param_counts(m);
    gmc_emitf(b, "  parameters                   %14" PRIu64 "\n", pc.total);
    if (pc.mapped)
        gmc_emitf(b, "    effective (no lookup tables) %12" PRIu64 "\n", pc.total - pc.mapped);
    if (pc.active != pc.total - pc.mapped)
        gmc_emitf(b, "    active per token (top-%d of %d experts) %" PRIu64 "\n",
                  m->n_experts_used, m->n_experts, pc.active);
    uint64_t looked_up = 0, repacked = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gmc_value *v = &g->values[i];
        if (v->kind == GMC_V_WEIGHT && v->mapped)
            looked_up += v->bytes;
        if (v->kind == GMC_V_WEIGHT && v->layout != GMK_LAYOUT_PACKED)
            repacked += v->bytes;
    }
    bytes_line(b, "weights", g->weight_bytes);
    if (looked_up) {
        bytes_line(b, "  resident (computed with)", g->weight_bytes - looked_up);
        bytes_line(b, "  looked up from the file", looked_up);
    }
    if (repacked)
        bytes_line(b, "  repacked at load", repacked);
    bytes_line(b, "activation arena", g->arena_bytes);
    bytes_line(b, "  naive sum of buffers", g->naive_bytes);
    gmc_emitf(b, "  %-28s %14.1f %%\n", "  arena / naive",
              g->naive_bytes ? 100.0 * (double)g->arena_bytes / (double)g->naive_bytes : 0.0);
    bytes_line(b, "KV cache per token", g->kv_bytes_per_token);
    bytes_line(b, "KV cache at full context", g->kv_bytes);
    gmc_emitf(b, "  %-28s %14" PRIu64 " B  (unbounded: every layer full-length)\n",
              "  without sliding rings", g->kv_bytes_per_token * (uint64_t)m->context);
    bytes_line(b, "logits (one row)", logits);
    bytes_line(b, "total resident (no weights)", g->arena_bytes + g->kv_bytes + logits);
}

/* Barriers inside one op's kernel, as runtime/include/gmk_fused.h calls
 * c->barrier (a step that computes logits, not the greedy id alone). */
static int kernel_barriers(const gmc_node *n)
{
    switch (n->op) {
    case GMC_OP_ATTN_ACT:      /* gmk_fused_attention */
    case GMC_OP_PROJ_NORM_ADD: /* gmk_fused_proj_norm_add */
    case GMC_OP_DOWN_NORM_ADD:
    case GMC_OP_GATE_UP:       /* gmk_fused_gate_up */
    case GMC_OP_PLE_GATE:      /* gmk_fused_ple_gate */
    case GMC_OP_HEAD:          /* gmk_fused_head: the norm before the rows */
        return 1;
    case GMC_OP_MATMUL:        /* gmk_matmul_act: the input converted first */
    case GMC_OP_LOGITS:
        return n->in[2] >= 0;
    case GMC_OP_MOE_FFN:       /* gmk_moe_ffn */
        return 5;
    case GMC_OP_ALTUP_UNEMBED: /* gmk_altup_unembed: two per other stream */
        return 2 * (n->n_heads - 1);
    default:
        return 0;
    }
}

int gmc_plan_step_barriers(const gmc_graph *g)
{
    /* The SYNC() after every node but the last, the pool's barrier at the
     * end of the step, and those inside the kernels. */
    int n = g->n_nodes;
    for (int i = 0; i < g->n_nodes; i++)
        n += kernel_barriers(&g->nodes[i]);
    return n;
}

gmc_status gmc_plan_costs(const gmc_graph *g, gmrt_bench_costs *out, gmc_diag *diag)
{
    gmk_tensor *t = malloc((size_t)(g->n_values > 0 ? g->n_values : 1) * sizeof *t);
    if (!t)
        return gmc_fail(diag, GMC_ERR_NOMEM, "plan: out of memory");
    int32_t n = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gmc_value *v = &g->values[i];
        if (v->kind == GMC_V_WEIGHT)
            t[n++] = (gmk_tensor){.name = v->name, .dtype = v->dtype, .n_dims = v->n_dims,
                                  .ne = {v->ne[0], v->ne[1], v->ne[2], v->ne[3]},
                                  .layout = v->layout};
    }
    /* Only the fields the cost formulas read. */
    gmk_model m = {.name = g->model->name, .n_tensors = n, .tensors = t,
                   .n_experts_used = g->model->n_experts_used,
                   .kv_bytes_per_token = g->kv_bytes_per_token};
    gmrt_diag rd = {0};
    gmrt_status st = gmrt_bench_costs_init(&m, out, &rd);
    out->step_barriers = gmc_plan_step_barriers(g);
    free(t);
    return st == GMRT_OK ? GMC_OK : gmc_fail(diag, GMC_ERR_SEMANTIC, "plan: %s", rd.msg);
}

static const char *const peak_units[] = {"int8 GOPS", "bf16 GFLOPS", "f32 GFLOPS"};

void gmc_plan_predict_report(const gmrt_bench_costs *c, const char *target,
                             const gmrt_machine *mach, const char *mach_path, int n_prompt,
                             int n_gen, gmc_strbuf *b)
{
    gmc_emitf(b, "cost per token (docs/benchmarks.md)\n");
    gmc_emitf(b, "  decode reads                 %14.1f MB of weights + %.1f kB of KV per "
              "attended position\n", (double)c->decode_weight_bytes * 1e-6,
              (double)c->kv_bytes_per_pos * 1e-3);
    if (c->expert_bytes > 0)
        gmc_emitf(b, "    of which experts           %14.1f MB, chosen from %.1f MB of them\n",
                  (double)c->decode_expert_bytes * 1e-6, (double)c->expert_bytes * 1e-6);
    gmc_emitf(b, "  a step passes                %14.0f thread-pool barriers\n",
              c->step_barriers);
    gmc_emitf(b, "  dense ops by weight type    ");
    for (int d = 0; d < GMK_DTYPE_COUNT; d++)
        if (c->type_macs[d] > 0 && gmrt_dtype_name(d))
            gmc_emitf(b, " %s %.1f%%", gmrt_dtype_name(d), 100 * c->type_macs[d] / c->dense_macs);
    gmc_emitf(b, "\n");
    gmc_emitf(b, "  prefill computes             %14.4f G ops dense + %.1f k per attended "
              "position, + %.4f G for the head once (%s peak)\n", 2 * c->dense_macs * 1e-9,
              2 * c->attn_macs_per_key * 1e-3, 2 * c->head_macs * 1e-9,
              peak_units[c->peak]);
    if (!mach) {
        gmc_emitf(b, "no prediction: no machine profile at %s; measure this machine with "
                  "`gemmac bench GRAPH --weights W.gguf --calibrate` (any model built for "
                  "%s), write one by hand (docs/experiments.md#machine-profiles), or name "
                  "one with --machine FILE\n", mach_path, target);
        return;
    }
    gmc_emitf(b, "predicted with %s (target %s%s%s)\n", mach_path,
              mach->target[0] ? mach->target : "not given", mach->cpu[0] ? ", " : "",
              mach->cpu);
    if (mach->target[0] && strcmp(mach->target, target) != 0)
        gmc_emitf(b, "  note: the profile's efficiencies were measured with %s kernels, this "
                  "plan is for %s\n", mach->target, target);
    gmc_emitf(b, "  %7s %11s %11s %9s %9s %11s %8s %8s %10s\n", "threads", "pp t/s", "tg t/s",
              "read GB/s", "step GB/s", "peak", "dec eff", "pre eff", "barrier us");
    for (int i = 0; i < mach->n; i++) {
        const gmrt_machine_threads *t = &mach->t[i];
        gmrt_prediction p;
        gmrt_machine_predict(t, c, n_prompt, n_gen, &p);
        /* the mean rate a step's bytes read at, the cache curve's share */
        double step_gbs = gmrt_bench_tg_bytes(c, n_gen) / gmrt_machine_read_s(t, c, n_gen);
        step_gbs *= 1e-9;
        gmc_emitf(b, "  %7d %11.1f %11.2f %9.2f %9.2f %11.1f %8.3f %8.3f %10.3f\n", t->threads,
                  p.pp_tps, p.tg_tps, t->read_gbs, step_gbs, gmrt_machine_peak(t, c->peak),
                  gmrt_machine_decode_efficiency(t, c), t->prefill_efficiency, t->barrier_us);
    }
    gmc_emitf(b, "  (pp%d: prefill of %d tokens from an empty context; tg%d: %d decode "
              "steps, as gemmac bench -p %d -n %d runs them)\n", n_prompt, n_prompt, n_gen,
              n_gen, n_prompt, n_gen);
}
