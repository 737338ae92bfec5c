/*
 * emit.c — planned graph → C source (see emit.h).
 *
 * The forward function reads like llama2.c's forward(): one block per layer,
 * one kernel call per op, each followed by a barrier so that the next op sees
 * every thread's rows.  Buffers are named after their graph values and sit at
 * the planner's constant offsets; weights are referred to through an enum in
 * manifest order.  Per-op emitters are small functions picked from a table
 * generated from ops.def.
 */
#include "emit.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmk_act.h"
#include "gmk_layout.h"
#include "gmrt.h"

#ifndef GMC_VERSION
#define GMC_VERSION "0.0.0"
#endif

typedef struct emitter {
    const gmc_graph *g;
    gmc_strbuf *b;
} emitter;

void gmc_emit_out_init(gmc_emit_out *o)
{
    gmc_strbuf_init(&o->model_c);
    gmc_strbuf_init(&o->model_h);
    gmc_strbuf_init(&o->main_c);
    gmc_strbuf_init(&o->manifest);
}

void gmc_emit_out_deinit(gmc_emit_out *o)
{
    gmc_strbuf_deinit(&o->model_c);
    gmc_strbuf_deinit(&o->model_h);
    gmc_strbuf_deinit(&o->main_c);
    gmc_strbuf_deinit(&o->manifest);
}

/* ------------------------------------------------------------ spelling */

/* A float as a C literal that round-trips ("8.0f", "0.0625f", "1e-06f"). */
static const char *flit(char buf[40], float v)
{
    snprintf(buf, 40, "%.9g", (double)v);
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    strcat(buf, "f");
    return buf;
}

static const char *dtype_const(char buf[32], int32_t dtype)
{
    const char *n = gmrt_dtype_name(dtype);
    int k = snprintf(buf, 32, "GMK_DTYPE_");
    for (size_t i = 0; n && n[i] && k < 31; i++)
        buf[k++] = (char)toupper((unsigned char)n[i]);
    buf[k] = '\0';
    return buf;
}

/* A weight's kernel argument: its dtype, with its layout when not packed. */
static const char *wdtype_const(char buf[48], const gmc_value *w)
{
    char d[32];
    if (w->layout == GMK_LAYOUT_PACKED)
        snprintf(buf, 48, "%s", dtype_const(d, w->dtype));
    else
        snprintf(buf, 48, "%s | %s", dtype_const(d, w->dtype), gmk_layout_const(w->layout));
    return buf;
}

/* Weight enum name: "blk.3.attn_q.weight" → "W_blk3_attn_q". */
static const char *wname(char buf[80], const gmc_value *v)
{
    int k = snprintf(buf, 80, "W_");
    const char *s = v->name;
    const char *end = strstr(s, ".weight");
    size_t len = end ? (size_t)(end - s) : strlen(s);
    for (size_t i = 0; i < len && k < 79; i++) {
        if (strncmp(s + i, "blk.", 4) == 0 && i == 0) {
            k += snprintf(buf + k, (size_t)(80 - k), "blk");
            i += 3;
            continue;
        }
        buf[k++] = s[i] == '.' ? '_' : s[i];
    }
    buf[k] = '\0';
    return buf;
}

/* Local name of an activation: "l3.attn_in" → "attn_in", "x" → "x". */
static const char *aname(const gmc_value *v)
{
    const char *dot = v->layer >= 0 ? strchr(v->name, '.') : NULL;
    return dot ? dot + 1 : v->name;
}

static const gmc_value *val(const emitter *e, int id) { return &e->g->values[id]; }

/* The C expression of a value as a kernel argument. */
static const char *ref(const emitter *e, int id, char buf[96])
{
    const gmc_value *v = val(e, id);
    char w[80];
    switch (v->kind) {
    case GMC_V_WEIGHT:
        if (v->dtype == GMK_DTYPE_F32)
            snprintf(buf, 96, "WF(%s)", wname(w, v));
        else
            snprintf(buf, 96, "W(%s)", wname(w, v));
        break;
    case GMC_V_TOKENS: snprintf(buf, 96, "c->tokens"); break;
    case GMC_V_ACT: snprintf(buf, 96, "%s", aname(v)); break;
    case GMC_V_KV: snprintf(buf, 96, "KV(%" PRId64 ")", v->offset); break;
    case GMC_V_LOGITS: snprintf(buf, 96, "c->logits"); break;
    }
    return buf;
}

/* ------------------------------------------------------------ wrapping
 *
 * Generated lines stay within WRAP_COLUMNS: a longer line of code is broken
 * after the commas of its first bracketed list, continuation lines aligned
 * under the list's first item (or 8 spaces in when the bracket sits right of
 * WRAP_ALIGN_MAX, with the list starting on the next line), as clang-format
 * would.
 */

#define WRAP_COLUMNS 100
#define WRAP_ALIGN_MAX 60

/* The first '(' or '{' of line that holds a comma at its own depth, and
 * its matching close; false if there is none (strings are skipped). */
static bool wrap_list(const char *line, size_t len, size_t *open, size_t *close)
{
    int depth = 0;
    size_t start = 0;
    bool comma = false;
    for (size_t i = 0; i < len; i++) {
        char ch = line[i];
        if (ch == '"') { /* no escaped quotes in generated names */
            while (++i < len && line[i] != '"')
                ;
            continue;
        }
        if (ch == '(' || ch == '{' || ch == '[') {
            if (depth++ == 0) {
                start = i;
                comma = false;
            }
        } else if (ch == ')' || ch == '}' || ch == ']') {
            if (--depth == 0 && comma && line[start] != '[') {
                *open = start;
                *close = i;
                return true;
            }
        } else if (ch == ',' && depth == 1)
            comma = true;
    }
    return false;
}

/* Emits one line of code (no '\n'), wrapped when it is too long. */
static void emit_code_line(gmc_strbuf *b, const char *line, size_t len)
{
    size_t col0 = (size_t)b->indent * 4, open, close;
    if (col0 + len <= WRAP_COLUMNS || !wrap_list(line, len, &open, &close)) {
        gmc_emitf(b, "%.*s\n", (int)len, line);
        return;
    }
    size_t width = WRAP_COLUMNS > col0 ? WRAP_COLUMNS - col0 : 1;
    size_t cont = open + 1 <= WRAP_ALIGN_MAX ? open + 1 : 8, col = open + 1;
    gmc_strbuf_append(b, line, open + 1);
    bool fresh = open + 1 > WRAP_ALIGN_MAX; /* the list starts on a new line */
    for (size_t i = open + 1, first = 1; i < close; first = 0) {
        /* the item [i, j), then its comma or the rest of the line */
        size_t j = i;
        int depth = 0;
        for (; j < close && !(depth == 0 && line[j] == ','); j++) {
            if (line[j] == '"')
                while (++j < close && line[j] != '"')
                    ;
            else if (line[j] == '(' || line[j] == '{' || line[j] == '[')
                depth++;
            else if (line[j] == ')' || line[j] == '}' || line[j] == ']')
                depth--;
        }
        size_t end = j < close ? j + 1 : len; /* with "," or with the tail */
        size_t n = end - i;
        if (fresh || (!first && col + 1 + n > width)) {
            gmc_emitf(b, "\n%*s", (int)cont, "");
            col = cont;
        } else if (!first) {
            gmc_strbuf_append(b, " ", 1);
            col++;
        }
        gmc_strbuf_append(b, line + i, n);
        col += n;
        fresh = false;
        i = end;
        while (i < close && line[i] == ' ')
            i++;
    }
    gmc_strbuf_append(b, "\n", 1);
}

/* Emits text line by line, wrapping the lines of code (not comments). */
static void emit_code(gmc_strbuf *b, const char *text)
{
    while (*text) {
        size_t n = strcspn(text, "\n");
        const char *p = text;
        while (p < text + n && *p == ' ')
            p++;
        if (strncmp(p, "/*", 2) == 0 || *p == '*')
            gmc_emitf(b, "%.*s\n", (int)n, text);
        else
            emit_code_line(b, text, n);
        text += n + (text[n] == '\n');
    }
}

/* Emits text as a block comment, broken at spaces into lines within
 * WRAP_COLUMNS when it does not fit on one. */
static void emit_comment(gmc_strbuf *b, const char *text)
{
    size_t col0 = (size_t)b->indent * 4, col = col0 + 2;
    if (col0 + strlen(text) + 6 <= WRAP_COLUMNS) {
        gmc_emitf(b, "/* %s */\n", text);
        return;
    }
    gmc_emitf(b, "/*");
    for (const char *w = text; *w;) {
        size_t n = strcspn(w, " ");
        if (n > 0) {
            if (col > col0 + 2 && col + 1 + n + 3 > WRAP_COLUMNS) {
                gmc_emitf(b, "\n *");
                col = col0 + 2;
            }
            gmc_emitf(b, " %.*s", (int)n, w);
            col += 1 + n;
        }
        w += n + (w[n] == ' ');
    }
    gmc_emitf(b, " */\n");
}

/* emit_code of printf-formatted text. */
static void emit_codef(gmc_strbuf *b, const char *fmt, ...) GMC_PRINTF(2, 3);
static void emit_codef(gmc_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!text) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    emit_code(b, text);
    free(text);
}

/* ------------------------------------------------------------ per-op
 *
 * Each op becomes a call to a small specialised kernel function, e.g.
 * matmul_q5_0_1024x640(), whose body calls the target's kernel with every
 * dimension and dtype as a constant.  Identical specialisations are emitted
 * once (a model has a handful of distinct shapes but hundreds of ops), which
 * keeps the generated file readable and clang's work proportional to the
 * number of shapes, not of layers.
 */

typedef struct kcall {
    gmc_strbuf name;   /* function name, from op, dtype and shape */
    gmc_strbuf doc;    /* one-line comment: what it computes, shapes */
    gmc_strbuf params; /* its pointer parameters */
    gmc_strbuf body;   /* the kernel call, using params and c-> */
    gmc_strbuf args;   /* the call site's arguments for params */
    gmc_strbuf vary;   /* "key\tvalue\n" per constant the name leaves out */
} kcall;

/* KSET(field, fmt, ...) sets one text of the kcall k in scope (printf
 * format, checked); an allocation failure sticks to the field and is
 * reported by collect_kernels. */
#define KSET(field, ...) (gmc_strbuf_reset(&k->field), gmc_emitf(&k->field, __VA_ARGS__))

/* KVARY(key, fmt, ...) records a constant of the body that the name leaves
 * out (eps, a scale, a soft-cap, a second weight's dtype).  If two kernels
 * get the same name, the later one is named after the constants that
 * differ: rmsnorm_add_640 and rmsnorm_add_640_eps1em05 (see vary_suffix). */
#define KVARY(key, ...)                                                                    \
    (gmc_emitf(&k->vary, "%s\t", key), gmc_emitf(&k->vary, __VA_ARGS__),                   \
     gmc_emitf(&k->vary, "\n"))

#define KCALL_FIELDS(X) X(name) X(doc) X(params) X(body) X(args) X(vary)

static void kcall_init(kcall *k)
{
#define X(f) gmc_strbuf_init(&k->f);
    KCALL_FIELDS(X)
#undef X
}

static void kcall_deinit(kcall *k)
{
#define X(f) gmc_strbuf_deinit(&k->f);
    KCALL_FIELDS(X)
#undef X
}

static void kcall_reset(kcall *k)
{
#define X(f) gmc_strbuf_reset(&k->f);
    KCALL_FIELDS(X)
#undef X
}

static bool kcall_failed(const kcall *k)
{
    bool failed = false;
#define X(f) failed |= gmc_strbuf_failed(&k->f);
    KCALL_FIELDS(X)
#undef X
    return failed;
}

static void k_embed(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], d[48], s[40];
    const gmc_value *x = val(e, n->out), *t = val(e, n->in[1]);
    int64_t D = x->ne[0];
    KSET(name, "embed_%s_%" PRId64, gmrt_dtype_name(t->dtype), D);
    KVARY("scale", "%g", (double)n->scale);
    KSET(doc, "x (n, %" PRId64 ") = table[tokens] * %s; table %s (%" PRId64 ", %" PRId64 ")",
         D, flit(s, n->scale), gmrt_dtype_name(t->dtype), t->ne[1], t->ne[0]);
    KSET(params, "float *x, const void *table");
    KSET(body, "gmk_embed(x, table, %s, c->tokens, c->n_tokens, %" PRId64 ", %s, ith, nth);",
         wdtype_const(d, t), D, s);
    KSET(args, "%s, %s", ref(e, n->out, a), ref(e, n->in[1], b));
}

static void k_rmsnorm(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], s[40];
    int64_t D = val(e, n->out)->ne[0];
    KSET(name, "rmsnorm_%" PRId64, D);
    KVARY("eps", "%g", (double)n->eps);
    KSET(doc, "y (n, %" PRId64 ") = x * rsqrt(mean(x^2) + eps) * w", D);
    KSET(params, "float *y, const float *x, const float *w");
    KSET(body, "gmk_rmsnorm(y, x, w, c->n_tokens, %" PRId64 ", %s, ith, nth);", D,
         flit(s, n->eps));
    KSET(args, "%s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c));
}

/* y = x . W^T for `rows` rows of x: the step's tokens, or for the tied head
 * only the rows whose logits are wanted. */
static const char *fmt_const(const emitter *e, int id);

static void matmul_kcall(emitter *e, const gmc_node *n, kcall *k, const char *kind,
                         const char *label, const char *rows)
{
    char a[96], b[96], c[96], d[48];
    gmc_value wv = *val(e, n->in[1]);
    const gmc_value *w = &wv;
    if (wv.n_dims == 3) /* a stack of matrices, one after the other: one matrix */
        wv.ne[1] *= wv.ne[2];
    const char *dt = gmrt_dtype_name(w->dtype);
    KSET(name, "%s_%s_%" PRId64 "x%" PRId64, kind, dt, w->ne[1], w->ne[0]);
    KSET(doc, "y (%s, %" PRId64 ") = x (%s, %" PRId64 ") . W^T; W %s (%" PRId64 ", %" PRId64 ")",
         label, w->ne[1], label, w->ne[0], dt, w->ne[1], w->ne[0]);
    if (n->in[2] >= 0) { /* x converted into the target's format first */
        char q[96];
        KSET(name, "%s_%s_%" PRId64 "x%" PRId64 "_%s", kind, dt, w->ne[1], w->ne[0],
             gmc_act_fmt_name(val(e, n->in[2])->act_fmt));
        KSET(params, "float *y, const void *w, const float *x, void *xq");
        KSET(body, "gmk_matmul_act(y, %" PRId64 ", w, %s, x, xq, %s, %s, %" PRId64 ", %" PRId64
                   ", c, ith, nth);", w->ne[1], wdtype_const(d, w), fmt_const(e, n->in[2]),
             rows, w->ne[1], w->ne[0]);
        KSET(args, "%s, %s, %s, %s", ref(e, n->out, a), ref(e, n->in[1], b),
             ref(e, n->in[0], c), ref(e, n->in[2], q));
        return;
    }
    KSET(params, "float *y, const void *w, const float *x");
    KSET(body, "gmk_matmul(y, %" PRId64 ", w, %s, x, %s, %" PRId64 ", %" PRId64
               ", ith, nth);", w->ne[1], wdtype_const(d, w), rows, w->ne[1], w->ne[0]);
    KSET(args, "%s, %s, %s", ref(e, n->out, a), ref(e, n->in[1], b), ref(e, n->in[0], c));
}

static void k_matmul(emitter *e, const gmc_node *n, kcall *k)
{
    matmul_kcall(e, n, k, "matmul", "n", "c->n_tokens");
}

static void k_head_norm(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], s[40];
    if (n->in[1] < 0) { /* the value norm: no weight */
        KSET(name, "head_norm_%dx%d_noweight", n->n_heads, n->head_dim);
        KSET(doc, "value norm in place: x (n, %d, %d), one RMSNorm per head, no weight",
             n->n_heads, n->head_dim);
        KSET(params, "float *x");
        KSET(body, "gmk_head_rmsnorm(x, NULL, c->n_tokens, %d, %d, %s, ith, nth);", n->n_heads,
             n->head_dim, flit(s, n->eps));
        KSET(args, "%s", ref(e, n->in[0], a));
        return;
    }
    KSET(name, "head_norm_%dx%d", n->n_heads, n->head_dim);
    KVARY("eps", "%g", (double)n->eps);
    KSET(doc, "QK-norm in place: x (n, %d, %d), one RMSNorm per head, w (%d)", n->n_heads,
         n->head_dim, n->head_dim);
    KSET(params, "float *x, const float *w");
    KSET(body, "gmk_head_rmsnorm(x, w, c->n_tokens, %d, %d, %s, ith, nth);", n->n_heads,
         n->head_dim, flit(s, n->eps));
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_rope(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], s[40];
    const char *table = n->rope ? "rope_global" : "rope_local";
    bool scaled = n->scale != 1.0f;
    KSET(name, "%s_%dx%d%s", table, n->n_heads, n->head_dim, scaled ? "_scaled" : "");
    KVARY("scale", "%g", (double)n->scale);
    KSET(doc, "RoPE (half-split) in place on x (n, %d, %d)%s%s", n->n_heads, n->head_dim,
         scaled ? ", then x *= " : "", scaled ? flit(s, n->scale) : "");
    KSET(params, "float *x");
    KSET(body, "gmk_seq_rope(x, %d, %d, %s, %s, c, ith, nth);", n->n_heads, n->head_dim,
         table, flit(s, n->scale));
    KSET(args, "%s", ref(e, n->in[0], a));
}

static void k_kv_store(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], t[32];
    const gmc_value *kc = val(e, n->in[0]);
    const char *dt = gmrt_dtype_name(kc->dtype);
    KSET(name, "kv_store_%s_%dx%" PRId64, dt, kc->n_slots, kc->ne[0]);
    KSET(doc, "K, V (n, %" PRId64 ") -> %s caches (%d slots, ring when full)", kc->ne[0],
         dt, kc->n_slots);
    KSET(params, "void *kc, void *vc, const float *k, const float *v");
    KSET(body, "gmk_seq_kv_store(kc, vc, %s, k, v, %d, %" PRId64 ", c, ith, nth);",
         dtype_const(t, kc->dtype), kc->n_slots, kc->ne[0]);
    KSET(args, "%s, %s, %s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b), ref(e, n->in[2], c),
         ref(e, n->in[3], d));
}

static void k_attention(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], t[32], s[40];
    const gmc_value *kc = val(e, n->in[1]);
    KSET(name, "attention_%dx%d_kv%d_w%d_s%d", n->n_heads, n->head_dim, n->n_kv_heads,
         n->window, kc->n_slots);
    KVARY("cap", "%g", (double)n->softcap);
    KSET(doc, "o (n, %d, %d) = softmax(q . K^T%s) . V over %s; %d kv heads", n->n_heads,
         n->head_dim, n->softcap > 0 ? ", soft-capped" : "",
         n->window ? "a sliding window" : "all positions", n->n_kv_heads);
    KSET(params, "float *o, const float *q, const void *kc, const void *vc");
    KSET(body, "gmk_seq_attention(o, q, kc, vc, %s, %d, %d, %d, %d, %d, %s, c, ith, nth);",
         dtype_const(t, kc->dtype), n->n_heads, n->n_kv_heads, n->head_dim, n->window,
         kc->n_slots, flit(s, n->softcap));
    KSET(args, "%s, %s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c),
         ref(e, n->in[2], d));
}

static void k_add(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "add_%" PRId64, D);
    KSET(doc, "x (n, %" PRId64 ") += y", D);
    KSET(params, "float *x, const float *y");
    KSET(body, "gmk_add(x, y, c->n_tokens, %" PRId64 ", ith, nth);", D);
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_rmsnorm_add(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], s[40];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "rmsnorm_add_%" PRId64, D);
    KVARY("eps", "%g", (double)n->eps);
    KSET(doc, "x (n, %" PRId64 ") += rmsnorm(y) * w  (post-norm + residual)", D);
    KSET(params, "float *x, const float *y, const float *w");
    KSET(body, "gmk_rmsnorm_add(x, y, w, c->n_tokens, %" PRId64 ", %s, ith, nth);", D,
         flit(s, n->eps));
    KSET(args, "%s, %s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b), ref(e, n->in[2], c));
}

static void k_geglu(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t F = val(e, n->in[0])->ne[0];
    KSET(name, "geglu_%" PRId64, F);
    KSET(doc, "g (n, %" PRId64 ") = gelu_tanh(g) * u", F);
    KSET(params, "float *g, const float *u");
    KSET(body, "gmk_geglu(g, u, c->n_tokens, %" PRId64 ", ith, nth);", F);
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_final_norm(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], s[40];
    int64_t D = val(e, n->out)->ne[0];
    KSET(name, "final_norm_%" PRId64, D);
    KVARY("eps", "%g", (double)n->eps);
    KSET(doc, "y (n_logits, %" PRId64 ") = rmsnorm of the last n_logits rows of x", D);
    KSET(params, "float *y, const float *x, const float *w");
    KSET(body, "gmk_rmsnorm(y, x + (size_t)(c->n_tokens - c->n_logits) * %" PRId64
               ", w, c->n_logits, %" PRId64 ", %s, ith, nth);", D, D, flit(s, n->eps));
    KSET(args, "%s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c));
}

/* The tied head: the embedding table as the output matrix. */
static void k_logits(emitter *e, const gmc_node *n, kcall *k)
{
    matmul_kcall(e, n, k, "logits", "n_logits", "c->n_logits");
}

static void k_softcap(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], s[40];
    int64_t V = val(e, n->in[0])->ne[0];
    KSET(name, "softcap_%" PRId64, V);
    KVARY("cap", "%g", (double)n->softcap);
    KSET(doc, "logits (n_logits, %" PRId64 ") = %s * tanh(logits / %s)", V,
         flit(s, n->softcap), s);
    KSET(params, "float *x");
    KSET(body, "gmk_softcap(x, (int64_t)c->n_logits * %" PRId64 ", %s, ith, nth);", V, s);
    KSET(args, "%s", ref(e, n->in[0], a));
}

static void k_scale(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], s[40];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "scale_%" PRId64, D);
    KVARY("s", "%g", (double)n->scale);
    KSET(doc, "x (n, %" PRId64 ") *= %s", D, flit(s, n->scale));
    KSET(params, "float *x");
    KSET(body, "gmk_scale(x, c->n_tokens, %" PRId64 ", %s, ith, nth);", D, s);
    KSET(args, "%s", ref(e, n->in[0], a));
}

static void k_scale_w(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "scale_w_%" PRId64, D);
    KSET(doc, "x (n, %" PRId64 ") *= w[0] (the layer's output scale)", D);
    KSET(params, "float *x, const float *w");
    KSET(body, "gmk_scale(x, c->n_tokens, %" PRId64 ", w[0], ith, nth);", D);
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_copy(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t D = val(e, n->out)->ne[0];
    KSET(name, "copy_%" PRId64, D);
    KSET(doc, "y (n, %" PRId64 ") = x", D);
    KSET(params, "float *y, const float *x");
    KSET(body, "gmk_copy(y, x, c->n_tokens, %" PRId64 ", ith, nth);", D);
    KSET(args, "%s, %s", ref(e, n->out, a), ref(e, n->in[0], b));
}

static void k_gelu_slice(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t P = val(e, n->in[0])->ne[0], LP = val(e, n->in[1])->ne[0];
    KSET(name, "gelu_slice_%" PRId64 "_at%d", P, n->col);
    KSET(doc, "g (n, %" PRId64 ") = gelu_tanh(g) * p[:, %d..%" PRId64 "); p (n, %" PRId64 ")",
         P, n->col, n->col + P, LP);
    KSET(params, "float *g, const float *p");
    KSET(body, "gmk_gelu_slice(g, p + %d, %" PRId64 ", c->n_tokens, %" PRId64 ", ith, nth);",
         n->col, LP, P);
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_moe_route(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], f[96], s[40];
    const gmc_value *w = val(e, n->in[1]);
    KSET(name, "moe_route_%" PRId64 "x%" PRId64 "_top%d", w->ne[1], w->ne[0], n->col);
    KSET(doc, "route (n, 3 x %d) = top-%d of softmax(W . rmsnorm(x) / sqrt(%" PRId64
              ") * s): ids, weights, rows", n->col, n->col, w->ne[0]);
    KSET(params, "float *route, const float *x, const float *w, const float *s, "
                 "const float *es");
    KSET(body, "gmk_moe_route(route, x, w, s, es, c->n_tokens, %" PRId64 ", %" PRId64
               ", %d, %s, ith, nth);", w->ne[0], w->ne[1], n->col, flit(s, n->eps));
    KSET(args, "%s, %s, %s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b),
         ref(e, n->in[1], c), ref(e, n->in[2], d), ref(e, n->in[3], f));
}

static void k_moe_ffn(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], f[96], g[96], h[96], i[96], j[96], tg[48], td[48];
    const gmc_value *wgu = val(e, n->in[2]), *wd = val(e, n->in[3]);
    int64_t D = wgu->ne[0], F = wgu->ne[1] / 2, E = wgu->ne[2];
    KSET(name, "moe_ffn_%s_%s_%" PRId64 "x%" PRId64 "x%" PRId64 "_top%d",
         gmrt_dtype_name(wgu->dtype), gmrt_dtype_name(wd->dtype), E, F, D, n->col);
    KSET(doc, "y (n, %" PRId64 ") = sum over the top %d of %" PRId64 " experts of w_e . "
              "down_e(gelu(gate_e h) * up_e h); tokens grouped by expert", D, n->col, E);
    KSET(params, "float *y, const float *h, float *route, const void *wgu, const void *wd, "
                 "void *sx, float *sh, void *sq, float *sy");
    KSET(body, "gmk_moe_ffn(y, h, route, wgu, %s, %s, wd, %s, %s, sx, sh, sq, sy, c->n_tokens, "
               "%" PRId64 ", %" PRId64 ", %" PRId64 ", %d, c, ith, nth);",
         wdtype_const(tg, wgu), fmt_const(e, n->in[4]), wdtype_const(td, wd),
         fmt_const(e, n->in[6]), D, F, E, n->col);
    KSET(args, "%s, %s, %s, %s, %s, %s, %s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b),
         ref(e, n->in[1], c), ref(e, n->in[2], d), ref(e, n->in[3], f), ref(e, n->in[4], g),
         ref(e, n->in[5], h), ref(e, n->in[6], i), ref(e, n->in[7], j));
}

/* Gemma 3n's ops on the AltUp streams (xs: [n][streams * D]). */

static void k_tanh(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "tanh_%" PRId64, D);
    KSET(doc, "x (n, %" PRId64 ") = tanh(x)", D);
    KSET(params, "float *x");
    KSET(body, "gmk_tanh(x, c->n_tokens, %" PRId64 ", ith, nth);", D);
    KSET(args, "%s", ref(e, n->in[0], a));
}

static void k_div(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], s[40];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "div_%" PRId64, D);
    KVARY("s", "%g", (double)n->scale);
    KSET(doc, "x (n, %" PRId64 ") /= %s", D, flit(s, n->scale));
    KSET(params, "float *x");
    KSET(body, "gmk_div(x, c->n_tokens, %" PRId64 ", %s, ith, nth);", D, s);
    KSET(args, "%s", ref(e, n->in[0], a));
}

static void k_mul_w(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "mul_w_%" PRId64, D);
    KSET(doc, "x (n, %" PRId64 ") *= w, per column", D);
    KSET(params, "float *x, const float *w");
    KSET(body, "gmk_mul_w(x, w, c->n_tokens, %" PRId64 ", ith, nth);", D);
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_slice(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t W = val(e, n->out)->ne[0], X = val(e, n->in[0])->ne[0];
    KSET(name, "slice_%" PRId64 "_of_%" PRId64 "_at%d", W, X, n->col);
    KSET(doc, "y (n, %" PRId64 ") = x[:, %d..%" PRId64 "); x (n, %" PRId64 ")", W, n->col,
         n->col + W, X);
    KSET(params, "float *y, const float *x");
    KSET(body, "gmk_slice(y, x + %d, %" PRId64 ", c->n_tokens, %" PRId64 ", ith, nth);", n->col,
         X, W);
    KSET(args, "%s, %s", ref(e, n->out, a), ref(e, n->in[0], b));
}

static void k_gauss_topk(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], s[40];
    int64_t F = val(e, n->in[0])->ne[0];
    KSET(name, "gauss_topk_%" PRId64, F);
    KVARY("s", "%g", (double)n->scale);
    KSET(doc, "g (n, %" PRId64 ") = relu(g - (mean(g) + %s * std(g))), per row", F,
         flit(s, n->scale));
    KSET(params, "float *g");
    KSET(body, "gmk_gauss_topk(g, c->n_tokens, %" PRId64 ", %s, ith, nth);", F, s);
    KSET(args, "%s", ref(e, n->in[0], a));
}

static void k_altup_init(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], s[40];
    int64_t D = val(e, n->in[0])->ne[0];
    KSET(name, "altup_init_%dx%" PRId64, n->n_heads, D);
    KSET(doc, "xs (n, %d x %" PRId64 ") = x, then the other streams' projections rescaled "
              "to rms(x)", n->n_heads, D);
    KSET(params, "float *xs, const float *x, const float *y");
    KSET(body, "gmk_altup_init(xs, x, y, c->n_tokens, %" PRId64 ", %d, %s, ith, nth);", D,
         n->n_heads, flit(s, n->eps));
    KSET(args, "%s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c));
}

static void k_altup_predict(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], s[40];
    int64_t D = val(e, n->in[0])->ne[0] / n->n_heads;
    KSET(name, "altup_predict_%dx%" PRId64, n->n_heads, D);
    KVARY("clip", "%g", (double)n->scale);
    KSET(doc, "p_i = x_i + sum_j C[i][j] x_j, C = clip(W . r) (%d streams of %" PRId64 ")",
         n->n_heads, D);
    KSET(params, "float *p, const float *xs, const float *r, const float *w");
    KSET(body, "gmk_altup_predict(p, xs, r, w, c->n_tokens, %" PRId64 ", %d, %s, ith, nth);", D,
         n->n_heads, flit(s, n->scale));
    KSET(args, "%s, %s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c),
         ref(e, n->in[2], d));
}

static void k_altup_correct(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], f[96], s[40];
    int64_t D = val(e, n->in[0])->ne[0] / n->n_heads;
    KSET(name, "altup_correct_%dx%" PRId64 "_active%d", n->n_heads, D, n->col);
    KVARY("clip", "%g", (double)n->scale);
    KSET(doc, "xs_i = p_i + (clip(W . r)_i + 1) (y - p_%d) (%d streams of %" PRId64 ")", n->col,
         n->n_heads, D);
    KSET(params, "float *xs, const float *p, const float *y, const float *r, const float *w");
    KSET(body, "gmk_altup_correct(xs, p, y, r, w, c->n_tokens, %" PRId64 ", %d, %d, %s, ith, "
               "nth);", D, n->n_heads, n->col, flit(s, n->scale));
    KSET(args, "%s, %s, %s, %s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b),
         ref(e, n->in[2], c), ref(e, n->in[3], d), ref(e, n->in[4], f));
}

static void k_streams_add(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96];
    int64_t D = val(e, n->in[1])->ne[0];
    KSET(name, "streams_add_%dx%" PRId64 "_but%d", n->n_heads, D, n->col);
    KSET(doc, "xs_i (n, %" PRId64 ") += p for every stream i but %d", D, n->col);
    KSET(params, "float *xs, const float *p");
    KSET(body, "gmk_streams_add(xs, p, c->n_tokens, %" PRId64 ", %d, %d, ith, nth);", D,
         n->n_heads, n->col);
    KSET(args, "%s, %s", ref(e, n->in[0], a), ref(e, n->in[1], b));
}

static void k_altup_unembed(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], d[96], t[48];
    const gmc_value *w = val(e, n->in[1]);
    int64_t D = w->ne[0];
    KSET(name, "altup_unembed_%s_%dx%" PRId64, gmrt_dtype_name(w->dtype), n->n_heads, D);
    KSET(doc, "u_i (n, %" PRId64 ") = W_i . xs_(i+1) for the %d other streams", D,
         n->n_heads - 1);
    KSET(params, "float *u, const float *xs, const void *w, void *xq");
    KSET(body, "gmk_altup_unembed(u, xs, w, %s, xq, %s, c->n_tokens, %" PRId64 ", %d, c, ith, "
               "nth);", wdtype_const(t, w), fmt_const(e, n->in[2]), D, n->n_heads);
    KSET(args, "%s, %s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c),
         ref(e, n->in[2], d));
}

static void k_altup_final(emitter *e, const gmc_node *n, kcall *k)
{
    char a[96], b[96], c[96], s[40];
    int64_t D = val(e, n->out)->ne[0];
    KSET(name, "altup_final_%dx%" PRId64, n->n_heads, D);
    KSET(doc, "x (n, %" PRId64 ") = mean of stream 0 and the projections rescaled to its rms",
         D);
    KSET(params, "float *x, const float *xs, const float *u");
    KSET(body, "gmk_altup_final(x, xs, u, c->n_tokens, %" PRId64 ", %d, %s, ith, nth);", D,
         n->n_heads, flit(s, n->eps));
    KSET(args, "%s, %s, %s", ref(e, n->out, a), ref(e, n->in[0], b), ref(e, n->in[1], c));
}

/* ------------------------------------------------------------ fused ops
 *
 * Fused kernels (gmk_fused.h) take their operands by slot (fused.def);
 * absent slots become NULL or are left out.  Matmul input buffers pass as
 * void * with their format as a constant.
 */

static const char *const act_consts[GMK_ACT_COUNT] = {"GMK_ACT_F32", "GMK_ACT_Q8_0",
                                                     "GMK_ACT_Q8_K", "GMK_ACT_BF16"};

static const char *fmt_const(const emitter *e, int id)
{
    int f = id >= 0 ? val(e, id)->act_fmt : -1;
    return f >= 0 && f < GMK_ACT_COUNT ? act_consts[f] : "GMK_ACT_F32";
}

/* Appends one parameter and its argument (the value of slot id). */
static void add_param(emitter *e, kcall *k, const char *decl, int id)
{
    char r[96];
    gmc_emitf(&k->params, "%s%s", k->params.len ? ", " : "", decl);
    gmc_emitf(&k->args, "%s%s", k->args.len ? ", " : "", ref(e, id, r));
}

/* The gmk_acts of slots first..first+2 as a declaration of `out`, adding
 * their parameters a0.. ; and their formats for the kernel's name. */
static void acts_decl(emitter *e, const gmc_node *n, int first, kcall *k, char *decl,
                      size_t cap, char *tag, size_t tcap)
{
    char ps[64] = "", fs[96] = "";
    int cnt = 0;
    tag[0] = '\0';
    for (int i = 0; i < 3; i++) {
        int id = n->in[first + i];
        if (id < 0)
            continue;
        char pname[16];
        snprintf(pname, sizeof pname, "void *a%d", cnt);
        add_param(e, k, pname, id);
        size_t lp = strlen(ps), lf = strlen(fs), lt = strlen(tag);
        snprintf(ps + lp, sizeof ps - lp, "%sa%d", cnt ? ", " : "", cnt);
        snprintf(fs + lf, sizeof fs - lf, "%s%s", cnt ? ", " : "", fmt_const(e, id));
        snprintf(tag + lt, tcap - lt, "_%s", gmc_act_fmt_name(val(e, id)->act_fmt));
        cnt++;
    }
    if (cnt)
        snprintf(decl, cap, "gmk_acts out = {{%s}, {%s}, %d};", ps, fs, cnt);
    else
        snprintf(decl, cap, "gmk_acts out = {{NULL}, {GMK_ACT_F32}, 0};");
}

static void k_norm_act(emitter *e, const gmc_node *n, kcall *k)
{
    char decl[160], tag[48], s[40];
    int64_t D = val(e, n->in[GMC_NORM_ACT_X])->ne[0];
    bool scale = n->in[GMC_NORM_ACT_SCALE] >= 0;
    add_param(e, k, scale ? "float *x" : "const float *x", n->in[GMC_NORM_ACT_X]);
    if (scale)
        add_param(e, k, "const float *scale", n->in[GMC_NORM_ACT_SCALE]);
    add_param(e, k, "const float *w", n->in[GMC_NORM_ACT_W]);
    add_param(e, k, "float *tmp", n->in[GMC_NORM_ACT_TMP]);
    acts_decl(e, n, GMC_NORM_ACT_A0, k, decl, sizeof decl, tag, sizeof tag);
    KSET(name, "%snorm_act_%" PRId64 "%s", scale ? "scale_" : "", D, tag);
    KVARY("eps", "%g", (double)n->eps);
    KSET(doc, "a (n, %" PRId64 ") = rmsnorm(x%s) * w as matmul input rows (%s)", D,
         scale ? " *= scale[0]" : "", tag + 1);
    KSET(body, "%s\ngmk_fused_%snorm_act(x, %sw, tmp, &out, c->n_tokens, %" PRId64 ", %s, ith, "
               "nth);", decl, scale ? "scale_" : "", scale ? "scale, " : "", D, flit(s, n->eps));
}

/* Adds slot `slot` of n as parameter decl named name when it is present;
 * returns the name the body uses for it: name, or NULL when absent. */
static const char *opt_param(emitter *e, const gmc_node *n, kcall *k, int slot,
                             const char *decl, const char *name)
{
    if (n->in[slot] < 0)
        return "NULL";
    add_param(e, k, decl, n->in[slot]);
    return name;
}

/* The dtype constant (or 0) and name ("none") of an optional weight slot. */
static const char *opt_wdtype(const emitter *e, int id, char buf[48])
{
    return id >= 0 ? wdtype_const(buf, val(e, id)) : "0";
}

static const char *opt_dtype_name(const emitter *e, int id)
{
    return id >= 0 ? gmrt_dtype_name(val(e, id)->dtype) : "none";
}

/* A layer that shares another's cache has no K, V, K-norm or caches; one
 * with K = V no V weight (fused.def).  Absent operands are NULL. */
static void k_qkv(emitter *e, const gmc_node *n, kcall *k)
{
    char d0[48], d1[48], d2[48], kd[32], s[40], qs[40], vn[16] = "", tail[48];
    const char *xk, *xv, *wk, *wv, *qn, *kn, *kv, *vv, *kcp, *vcp;
    add_param(e, k, "const void *xq", n->in[GMC_QKV_XQ]);
    xk = opt_param(e, n, k, GMC_QKV_XK, "const void *xk", "xk");
    xv = opt_param(e, n, k, GMC_QKV_XV, "const void *xv", "xv");
    add_param(e, k, "const void *wq", n->in[GMC_QKV_WQ]);
    wk = opt_param(e, n, k, GMC_QKV_WK, "const void *wk", "wk");
    wv = opt_param(e, n, k, GMC_QKV_WV, "const void *wv", "wv");
    qn = opt_param(e, n, k, GMC_QKV_QN, "const float *qn", "qn");
    kn = opt_param(e, n, k, GMC_QKV_KN, "const float *kn", "kn");
    add_param(e, k, "float *q", n->in[GMC_QKV_Q]);
    kv = opt_param(e, n, k, GMC_QKV_K, "float *k", "k");
    vv = opt_param(e, n, k, GMC_QKV_V, "float *v", "v");
    kcp = opt_param(e, n, k, GMC_QKV_KC, "void *kc", "kc");
    vcp = opt_param(e, n, k, GMC_QKV_VC, "void *vc", "vc");
    bool qkn = n->in[GMC_QKV_QN] >= 0, own = n->in[GMC_QKV_KC] >= 0;
    const gmc_value *kc = own ? val(e, n->in[GMC_QKV_KC]) : NULL, *wq = val(e, n->in[GMC_QKV_WQ]);
    int slots = kc ? kc->n_slots : 0;
    const char *table = n->rope ? "rope_global" : "rope_local";
    KSET(name, "qkv_%s_%dx%d_kv%d_%s_s%d", gmrt_dtype_name(wq->dtype), n->n_heads, n->head_dim,
         n->n_kv_heads, n->rope ? "global" : "local", slots);
    KVARY("eps", "%g", (double)n->eps);
    KVARY("qscale", "%g", (double)n->scale);
    KVARY("qknorm", "%d", qkn);
    KVARY("wk", "%s", opt_dtype_name(e, n->in[GMC_QKV_WK]));
    KVARY("wv", "%s", opt_dtype_name(e, n->in[GMC_QKV_WV]));
    KVARY("vnorm", "%d", n->v_norm);
    if (n->v_norm)
        snprintf(vn, sizeof vn, " .v_norm = 1,");
    if (own)
        snprintf(tail, sizeof tail, "%sK/V -> cache (%d slots)",
                 n->in[GMC_QKV_WV] < 0 ? "V = K, " : "", slots);
    else
        snprintf(tail, sizeof tail, "K/V: another layer's cache");
    KSET(doc, "q, k, v = x . W^T by heads%s%s, RoPE, q *= %s, %s", qkn ? ", QK-norm" : "",
         n->v_norm ? ", V-norm" : "", flit(qs, n->scale), tail);
    KSET(body,
         "const gmk_qkv a = {\n"
         "    .x = {xq, %s, %s}, .fmt = {%s, %s, %s},\n"
         "    .w = {wq, %s, %s},\n"
         "    .wdtype = {%s, %s, %s},\n"
         "    .q_norm = %s, .k_norm = %s, .eps = %s,%s\n"
         "    .q = q, .k = %s, .v = %s, .kc = %s, .vc = %s, .kv_dtype = %s, .n_slots = %d,\n"
         "    .inv_freq = %s, .q_scale = %s,\n"
         "    .n_heads = %d, .n_kv = %d, .hd = %d, .D = %" PRId64 ",\n"
         "};\n"
         "gmk_fused_qkv(&a, c, ith, nth);",
         xk, xv, fmt_const(e, n->in[GMC_QKV_XQ]), fmt_const(e, n->in[GMC_QKV_XK]),
         fmt_const(e, n->in[GMC_QKV_XV]), wk, wv, wdtype_const(d0, wq),
         opt_wdtype(e, n->in[GMC_QKV_WK], d1), opt_wdtype(e, n->in[GMC_QKV_WV], d2), qn, kn,
         flit(s, n->eps), vn, kv, vv, kcp, vcp, kc ? dtype_const(kd, kc->dtype) : "0", slots,
         table, qs, n->n_heads, n->n_kv_heads, n->head_dim, wq->ne[0]);
}

static void k_attn_act(emitter *e, const gmc_node *n, kcall *k)
{
    char decl[160], tag[48], t[32], s[40];
    add_param(e, k, "const float *q", n->in[GMC_ATTN_ACT_Q]);
    add_param(e, k, "const void *kc", n->in[GMC_ATTN_ACT_KC]);
    add_param(e, k, "const void *vc", n->in[GMC_ATTN_ACT_VC]);
    add_param(e, k, "float *o", n->in[GMC_ATTN_ACT_O]);
    acts_decl(e, n, GMC_ATTN_ACT_A, k, decl, sizeof decl, tag, sizeof tag);
    const gmc_value *kc = val(e, n->in[GMC_ATTN_ACT_KC]);
    KSET(name, "attention_%dx%d_kv%d_w%d_s%d%s", n->n_heads, n->head_dim, n->n_kv_heads,
         n->window, kc->n_slots, tag);
    KVARY("cap", "%g", (double)n->softcap);
    KSET(doc, "o (n, %d, %d) = softmax(q . K^T%s) . V over %s; %d kv heads; as %s rows",
         n->n_heads, n->head_dim, n->softcap > 0 ? ", soft-capped" : "",
         n->window ? "a sliding window" : "all positions", n->n_kv_heads, tag + 1);
    KSET(body, "%s\ngmk_fused_attention(o, q, kc, vc, %s, %d, %d, %d, %d, %d, %s, &out, c, "
               "ith, nth);", decl, dtype_const(t, kc->dtype), n->n_heads, n->n_kv_heads,
         n->head_dim, n->window, kc->n_slots, flit(s, n->softcap));
}

/* proj_norm_add and down_norm_add: one kernel, two places in a layer, the
 * same slots (read here by proj_norm_add's names). */
#define SAME_SLOT(NAME) ((int)GMC_PROJ_NORM_ADD_##NAME == (int)GMC_DOWN_NORM_ADD_##NAME)
_Static_assert(SAME_SLOT(XQ) && SAME_SLOT(W) && SAME_SLOT(Y) && SAME_SLOT(X) &&
                   SAME_SLOT(POST) && SAME_SLOT(NORM) && SAME_SLOT(A0) && SAME_SLOT(A1) &&
                   SAME_SLOT(A2) && SAME_SLOT(N_SLOTS),
               "fused.def: down_norm_add's slots are proj_norm_add's");
#undef SAME_SLOT

static void norm_add_kcall(emitter *e, const gmc_node *n, kcall *k, const char *kind,
                           const char *next)
{
    char decl[160], tag[48], d[48], s[40];
    const int *in = n->in;
    const gmc_value *w = val(e, in[GMC_PROJ_NORM_ADD_W]);
    bool post = in[GMC_PROJ_NORM_ADD_POST] >= 0, norm = in[GMC_PROJ_NORM_ADD_NORM] >= 0;
    add_param(e, k, "const void *xq", in[GMC_PROJ_NORM_ADD_XQ]);
    add_param(e, k, "const void *w", in[GMC_PROJ_NORM_ADD_W]);
    add_param(e, k, "float *y", in[GMC_PROJ_NORM_ADD_Y]);
    add_param(e, k, "float *x", in[GMC_PROJ_NORM_ADD_X]);
    if (post)
        add_param(e, k, "const float *post", in[GMC_PROJ_NORM_ADD_POST]);
    if (norm)
        add_param(e, k, "const float *norm", in[GMC_PROJ_NORM_ADD_NORM]);
    acts_decl(e, n, GMC_PROJ_NORM_ADD_A0, k, decl, sizeof decl, tag, sizeof tag);
    KSET(name, "%s_%s_%" PRId64 "x%" PRId64 "%s", kind, gmrt_dtype_name(w->dtype), w->ne[1],
         w->ne[0], tag);
    KVARY("eps", "%g", (double)n->eps);
    KVARY("post", "%d", post);
    bool raw = !norm && in[GMC_PROJ_NORM_ADD_A0] >= 0; /* x itself converted */
    KSET(doc, "x (n, %" PRId64 ") += %s(xq . W^T)%s", w->ne[1], post ? "rmsnorm" : "",
         norm ? next : raw ? "; x as matmul input rows" : "");
    KSET(body, "%s\ngmk_fused_proj_norm_add(xq, %s, w, %s, %" PRId64 ", y, x, %s, %s, &out, "
               "%" PRId64 ", %s, c, ith, nth);", decl, fmt_const(e, in[GMC_PROJ_NORM_ADD_XQ]),
         wdtype_const(d, w), w->ne[0], post ? "post" : "NULL", norm ? "norm" : "NULL",
         w->ne[1], flit(s, n->eps));
}

static void k_proj_norm_add(emitter *e, const gmc_node *n, kcall *k)
{
    norm_add_kcall(e, n, k, "proj_norm_add", "; FFN input = rmsnorm(x)");
}

static void k_down_norm_add(emitter *e, const gmc_node *n, kcall *k)
{
    norm_add_kcall(e, n, k, "down_norm_add", "; next layer's input = rmsnorm(x)");
}

static void k_gate_up(emitter *e, const gmc_node *n, kcall *k)
{
    char decl[160], tag[48], dg[48], du[48];
    const gmc_value *wg = val(e, n->in[GMC_GATE_UP_WG]);
    add_param(e, k, "const void *xg", n->in[GMC_GATE_UP_XG]);
    add_param(e, k, "const void *xu", n->in[GMC_GATE_UP_XU]);
    add_param(e, k, "const void *wg", n->in[GMC_GATE_UP_WG]);
    add_param(e, k, "const void *wu", n->in[GMC_GATE_UP_WU]);
    add_param(e, k, "float *g", n->in[GMC_GATE_UP_G]);
    add_param(e, k, "float *u", n->in[GMC_GATE_UP_U]);
    acts_decl(e, n, GMC_GATE_UP_A, k, decl, sizeof decl, tag, sizeof tag);
    KSET(name, "gate_up_%s_%" PRId64 "x%" PRId64 "%s", gmrt_dtype_name(wg->dtype), wg->ne[1],
         wg->ne[0], tag);
    KVARY("wu", "%s", gmrt_dtype_name(val(e, n->in[GMC_GATE_UP_WU])->dtype));
    KSET(doc, "g (n, %" PRId64 ") = gelu_tanh(x . Wg^T) * (x . Wu^T), as %s rows", wg->ne[1],
         tag + 1);
    KSET(body, "%s\ngmk_fused_gate_up(xg, %s, xu, %s, wg, %s, wu, %s, g, u, &out, %" PRId64
               ", %" PRId64 ", c, ith, nth);", decl, fmt_const(e, n->in[GMC_GATE_UP_XG]),
         fmt_const(e, n->in[GMC_GATE_UP_XU]), wdtype_const(dg, wg),
         wdtype_const(du, val(e, n->in[GMC_GATE_UP_WU])), wg->ne[0], wg->ne[1]);
}

static void k_ple_gate(emitter *e, const gmc_node *n, kcall *k)
{
    char decl[160], tag[48], d[48];
    const gmc_value *w = val(e, n->in[GMC_PLE_GATE_W]);
    int64_t LP = val(e, n->in[GMC_PLE_GATE_P])->ne[0];
    add_param(e, k, "const void *xq", n->in[GMC_PLE_GATE_XQ]);
    add_param(e, k, "const void *w", n->in[GMC_PLE_GATE_W]);
    add_param(e, k, "float *g", n->in[GMC_PLE_GATE_G]);
    add_param(e, k, "const float *p", n->in[GMC_PLE_GATE_P]);
    acts_decl(e, n, GMC_PLE_GATE_A, k, decl, sizeof decl, tag, sizeof tag);
    KSET(name, "ple_gate_%s_%" PRId64 "x%" PRId64 "_at%d%s", gmrt_dtype_name(w->dtype),
         w->ne[1], w->ne[0], n->col, tag);
    KSET(doc, "g (n, %" PRId64 ") = gelu_tanh(x . W^T) * p[:, %d..%" PRId64 "), as %s rows",
         w->ne[1], n->col, n->col + w->ne[1], tag + 1);
    KSET(body, "%s\ngmk_fused_ple_gate(xq, %s, w, %s, g, p + %d, %" PRId64 ", &out, %" PRId64
               ", %" PRId64 ", c, ith, nth);", decl, fmt_const(e, n->in[GMC_PLE_GATE_XQ]),
         wdtype_const(d, w), n->col, LP, w->ne[0], w->ne[1]);
}

static void k_head(emitter *e, const gmc_node *n, kcall *k)
{
    char d[48], s[40], cap[40];
    const gmc_value *t = val(e, n->in[GMC_HEAD_TABLE]);
    add_param(e, k, "const float *x", n->in[GMC_HEAD_X]);
    add_param(e, k, "const float *w", n->in[GMC_HEAD_W]);
    add_param(e, k, "float *tmp", n->in[GMC_HEAD_TMP]);
    add_param(e, k, "void *hq", n->in[GMC_HEAD_HQ]);
    add_param(e, k, "const void *table", n->in[GMC_HEAD_TABLE]);
    add_param(e, k, "void *slots", n->in[GMC_HEAD_SLOTS]);
    KSET(name, "head_%s_%" PRId64 "x%" PRId64 "_%s", gmrt_dtype_name(t->dtype), t->ne[1],
         t->ne[0], gmc_act_fmt_name(val(e, n->in[GMC_HEAD_HQ])->act_fmt));
    KVARY("eps", "%g", (double)n->eps);
    KVARY("cap", "%g", (double)n->softcap);
    KSET(doc, "logits (n_logits, %" PRId64 ") = rmsnorm(x) . table^T%s; or greedy argmax",
         t->ne[1], n->softcap > 0 ? ", soft-capped" : "");
    KSET(body, "gmk_fused_head(x, w, tmp, hq, %s, table, %s, (gmk_argmax_slot *)slots, %" PRId64
               ", %" PRId64 ", %s, %s, c, ith, nth);", fmt_const(e, n->in[GMC_HEAD_HQ]),
         wdtype_const(d, t), t->ne[0], t->ne[1], flit(s, n->eps), flit(cap, n->softcap));
}

static void (*const kernels[GMC_OP_COUNT])(emitter *, const gmc_node *, kcall *) = {
#define GMC_OP(NAME, name, n_in, inplace) k_##name,
#include "ops.def"
};

/* A kernel as emitted: kcall's texts, copied into the emitter's arena. */
typedef struct kernel {
    const char *name, *doc, *params, *body, *vary;
} kernel;

/* The distinct specialisations of a graph, in order of first use. */
typedef struct kset {
    kernel *k;
    int n;
    int *of_node;      /* node → index in k */
    const char **args; /* node → its call's arguments */
} kset;

static const kernel *find_name(const kset *ks, const char *name)
{
    for (int j = 0; j < ks->n; j++)
        if (strcmp(ks->k[j].name, name) == 0)
            return &ks->k[j];
    return NULL;
}

/* The value of key in a KVARY list, as a pointer into it and a length. */
static const char *vary_value(const char *vary, const char *key, size_t klen, size_t *len)
{
    for (const char *p = vary; *p;) {
        const char *tab = strchr(p, '\t'), *nl = strchr(p, '\n');
        if (!tab || !nl || tab > nl)
            break;
        if ((size_t)(tab - p) == klen && strncmp(p, key, klen) == 0) {
            *len = (size_t)(nl - tab - 1);
            return tab + 1;
        }
        p = nl + 1;
    }
    return NULL;
}

/* Appends "_<key><value>" to b for each constant of vary that other has
 * not or has with another value, spelt as an identifier: '.' becomes 'p',
 * '-' 'm', other characters outside [A-Za-z0-9_] are dropped (eps 1e-05
 * gives "_eps1em05", a wv of q5_0 "_wvq5_0"). */
static void vary_suffix(gmc_strbuf *b, const char *vary, const char *other)
{
    for (const char *p = vary; *p;) {
        const char *tab = strchr(p, '\t'), *nl = strchr(p, '\n');
        if (!tab || !nl || tab > nl)
            break;
        size_t klen = (size_t)(tab - p), vlen = (size_t)(nl - tab - 1), olen = 0;
        const char *ov = vary_value(other, p, klen, &olen);
        if (!ov || olen != vlen || strncmp(ov, tab + 1, vlen) != 0) {
            gmc_emitf(b, "_%.*s", (int)klen, p);
            for (const char *c = tab + 1; c < nl; c++) {
                if (isalnum((unsigned char)*c) || *c == '_')
                    gmc_strbuf_append(b, c, 1);
                else if (*c == '.' || *c == '-')
                    gmc_strbuf_append(b, *c == '.' ? "p" : "m", 1);
            }
        }
        p = nl + 1;
    }
}

/* The name of a new kernel: kc's, unless a kernel of ks already has it;
 * then that name plus what differs (vary_suffix), or if nothing recorded
 * differs or the result is taken too, plus a hash of params and body. */
static const char *kernel_name(const kset *ks, const kcall *kc, gmc_arena *a)
{
    const char *name = gmc_strbuf_str(&kc->name);
    const kernel *same = find_name(ks, name);
    if (!same)
        return gmc_arena_strdup(a, name);
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_emitf(&b, "%s", name);
    vary_suffix(&b, gmc_strbuf_str(&kc->vary), same->vary);
    if (b.len == kc->name.len || find_name(ks, gmc_strbuf_str(&b))) {
        uint64_t h = gmc_hash_bytes(GMC_HASH_INIT, kc->params.data, kc->params.len);
        h = gmc_hash_bytes(h, kc->body.data, kc->body.len);
        gmc_emitf(&b, "_h%08" PRIx32, (uint32_t)(h ^ (h >> 32)));
    }
    for (int i = 2; find_name(ks, gmc_strbuf_str(&b)) && !gmc_strbuf_failed(&b); i++)
        gmc_emitf(&b, "_%d", i); /* two hashes alike: not expected */
    const char *s = gmc_strbuf_failed(&b) ? NULL : gmc_arena_strdup(a, gmc_strbuf_str(&b));
    gmc_strbuf_deinit(&b);
    return s;
}

/* Adds kc to ks unless a kernel with the same params and body is there;
 * returns its index, or -1 when out of memory. */
static int add_kernel(kset *ks, const kcall *kc, gmc_arena *a)
{
    const char *params = gmc_strbuf_str(&kc->params), *body = gmc_strbuf_str(&kc->body);
    for (int j = 0; j < ks->n; j++)
        if (strcmp(ks->k[j].body, body) == 0 && strcmp(ks->k[j].params, params) == 0)
            return j;
    kernel *k = &ks->k[ks->n];
    k->name = kernel_name(ks, kc, a);
    k->doc = gmc_arena_strdup(a, gmc_strbuf_str(&kc->doc));
    k->params = gmc_arena_strdup(a, params);
    k->body = gmc_arena_strdup(a, body);
    k->vary = gmc_arena_strdup(a, gmc_strbuf_str(&kc->vary));
    if (!k->name || !k->doc || !k->params || !k->body || !k->vary)
        return -1;
    return ks->n++;
}

static gmc_status collect_kernels(emitter *e, gmc_arena *a, kset *ks, gmc_diag *diag)
{
    const gmc_graph *g = e->g;
    ks->k = gmc_arena_array(a, (size_t)g->n_nodes, sizeof *ks->k);
    ks->of_node = gmc_arena_array(a, (size_t)g->n_nodes, sizeof *ks->of_node);
    ks->args = gmc_arena_array(a, (size_t)g->n_nodes, sizeof *ks->args);
    if (!ks->k || !ks->of_node || !ks->args)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory emitting C");
    ks->n = 0;
    kcall kc;
    kcall_init(&kc);
    bool failed = false;
    for (int i = 0; i < g->n_nodes && !failed; i++) {
        kcall_reset(&kc);
        kernels[g->nodes[i].op](e, &g->nodes[i], &kc);
        failed = kcall_failed(&kc);
        if (!failed) {
            ks->of_node[i] = add_kernel(ks, &kc, a);
            ks->args[i] = gmc_arena_strdup(a, gmc_strbuf_str(&kc.args));
            failed = ks->of_node[i] < 0 || !ks->args[i];
        }
    }
    kcall_deinit(&kc);
    if (failed)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory emitting C");
    return GMC_OK;
}

static void emit_kernels(emitter *e, const kset *ks)
{
    gmc_emitf(e->b, "/* The model's kernels: one per distinct op, dtype and shape. */\n\n");
    for (int i = 0; i < ks->n; i++) {
        const kernel *k = &ks->k[i];
        emit_comment(e->b, k->doc);
        emit_codef(e->b, "static GMK_NOINLINE void %s(%s, const gmk_ctx *c, int ith, int nth)",
                   k->name, k->params);
        gmc_emitf(e->b, "{\n");
        gmc_emit_indent(e->b);
        emit_code(e->b, k->body);
        gmc_emit_dedent(e->b);
        gmc_emitf(e->b, "}\n\n");
    }
}

/* What each fused op does, above its call in forward(). */
static const char *const fused_comment[GMC_OP_COUNT] = {
    [GMC_OP_NORM_ACT] = "the block's input: rmsnorm(x) as matmul input rows",
    [GMC_OP_QKV] = "q, k, v by heads; QK-norm, RoPE, K/V into the cache",
    [GMC_OP_ATTN_ACT] = "attention; its output as o-projection input rows",
    [GMC_OP_PROJ_NORM_ADD] = "x += (post-norm of) o . Wo; FFN input rows = rmsnorm(x)",
    [GMC_OP_GATE_UP] = "gelu(gate) * up as down-projection input rows",
    [GMC_OP_DOWN_NORM_ADD] = "x += (post-norm of) down; the next layer's input rows",
    [GMC_OP_HEAD] = "final norm, tied head (soft-cap), or the greedy id",
    [GMC_OP_PLE_GATE] = "the per-layer embedding's gate as projection input rows",
};

static void emit_call(emitter *e, const kset *ks, int node)
{
    const char *what = fused_comment[e->g->nodes[node].op];
    if (what)
        gmc_emitf(e->b, "/* %s */\n", what);
    emit_codef(e->b, "%s(%s, c, ith, nth);", ks->k[ks->of_node[node]].name, ks->args[node]);
}

/* ------------------------------------------------------------ sections */

static void emit_banner(gmc_strbuf *b, const gmc_graph *g,
                        const gmc_target_config *tc, const char *flags,
                        const char *what)
{
    const gmc_model *m = g->model;
    /* The file name without its directory: the same graph gives the same
     * code (and build cache key) wherever it is compiled from. */
    const char *src = m->source ? m->source : "?";
    const char *slash = strrchr(src, '/');
    gmc_emitf(b, "/*\n * %s — generated by gemmac %s — do not edit\n", what,
              GMC_VERSION);
    gmc_emitf(b, " * model:    %s (%s, content fnv1a64 %016" PRIx64 ")\n",
              m->name, slash ? slash + 1 : src, m->content_hash);
    gmc_emitf(b, " * graph:    fnv1a64 %016" PRIx64 ", %d nodes, max batch %d\n",
              g->hash, g->n_nodes, g->max_batch);
    gmc_emitf(b, " * target:   %s (%s, cpu %s)\n", tc->target->name, tc->triple,
              tc->cpu);
    gmc_emitf(b, " * features: %s\n", tc->features[0] ? tc->features : "(baseline)");
    gmc_emitf(b, " * flags:   ");
    /* wrapped at spaces, continuation lines under the first flag */
    size_t col = 11;
    for (const char *f = flags; *f;) {
        size_t n = strcspn(f, " ");
        if (n > 0) {
            if (col > 11 && col + 1 + n > WRAP_COLUMNS) {
                gmc_emitf(b, "\n *          ");
                col = 11;
            }
            gmc_emitf(b, " %.*s", (int)n, f);
            col += 1 + n;
        }
        f += n + (f[n] == ' ');
    }
    gmc_emitf(b, "\n");
    gmc_emitf(b, " * plan:     arena %" PRIu64 " B (naive %" PRIu64 " B), KV %" PRIu64
                 " B, weights %" PRIu64 " B\n */\n",
              g->arena_bytes, g->naive_bytes, g->kv_bytes, g->weight_bytes);
}

static void emit_manifest_table(emitter *e)
{
    const gmc_graph *g = e->g;
    gmc_strbuf *b = e->b;
    char w[80], d[32];
    gmc_emitf(b, "/* Weights in manifest (GGUF) order. */\nenum {\n");
    gmc_emit_indent(b);
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].kind == GMC_V_WEIGHT)
            gmc_emitf(b, "%s = %d,\n", wname(w, &g->values[i]), g->values[i].index);
    gmc_emitf(b, "N_WEIGHTS = %d\n", g->n_weights);
    gmc_emit_dedent(b);
    gmc_emitf(b, "};\n\nstatic const gmk_tensor %s_tensors[N_WEIGHTS] = {\n",
              g->model->name);
    gmc_emit_indent(b);
    for (int i = 0; i < g->n_values; i++) {
        const gmc_value *v = &g->values[i];
        if (v->kind != GMC_V_WEIGHT)
            continue;
        emit_codef(b, "[%s] = {\"%s\", %s, %d, {%" PRId64 ", %" PRId64 ", %" PRId64 ", 1}, %s},",
                   wname(w, v), v->name, dtype_const(d, v->dtype), v->n_dims, v->ne[0], v->ne[1],
                   v->ne[2], gmk_layout_const(v->layout));
    }
    gmc_emit_dedent(b);
    gmc_emitf(b, "};\n\n");
}

/* inv_freq[i] = theta^(-2i/hd) / scale, rounded once from double; with a
 * fraction < 1 (proportional RoPE) only the first fraction * hd/2 pairs
 * rotate and the others get 0, which leaves them as they are. */
static void emit_rope_table(gmc_strbuf *b, const char *name, gmc_rope r, int hd)
{
    char s[40];
    int rotated = (int)(r.fraction * (hd / 2));
    gmc_emitf(b, "/* RoPE inverse frequencies: %.17g^(-2i/%d) / %.17g", r.theta, hd, r.scale);
    if (rotated < hd / 2)
        gmc_emitf(b, " for i < %d, 0 after (proportional RoPE)", rotated);
    gmc_emitf(b, " */\n");
    gmc_emitf(b, "static const float %s[%d] = {", name, hd / 2);
    size_t col = WRAP_COLUMNS; /* as many per line as fit */
    for (int i = 0; i < hd / 2; i++) {
        double f = i < rotated ? pow(r.theta, -2.0 * i / hd) / r.scale : 0.0;
        size_t n = strlen(flit(s, (float)f)) + (i + 1 < hd / 2);
        if (col + 1 + n > WRAP_COLUMNS) {
            gmc_emitf(b, "\n   ");
            col = 3;
        }
        gmc_emitf(b, " %s%s", s, i + 1 < hd / 2 ? "," : "");
        col += 1 + n;
    }
    gmc_emitf(b, "\n};\n\n");
}

static void emit_buffers(emitter *e, int layer)
{
    const gmc_graph *g = e->g;
    for (int i = 0; i < g->n_values; i++) {
        const gmc_value *v = &g->values[i];
        if (v->kind != GMC_V_ACT || v->layer != layer || v->first < 0)
            continue;
        if (v->act_fmt >= 0) /* matmul input rows in a kernel format */
            gmc_emitf(e->b, "void *const %s = A(%" PRId64 "); /* [n] %s rows of %zu B */\n",
                      aname(v), v->offset, gmc_act_fmt_name(v->act_fmt),
                      gmk_act_row_bytes(v->act_fmt, v->ne[0]));
        else if (v->ne[1] == 1) /* not per token (the argmax slots) */
            gmc_emitf(e->b, "float *const %s = A(%" PRId64 "); /* [%" PRId64 "] */\n",
                      aname(v), v->offset, v->ne[0]);
        else
            gmc_emitf(e->b, "float *const %s = A(%" PRId64 "); /* [n][%" PRId64 "] */\n",
                      aname(v), v->offset, v->ne[0]);
    }
}

static void emit_layer_comment(emitter *e, int l)
{
    const gmc_layer *ly = &e->g->model->layers[l];
    const gmc_rope *r = &ly->rope;
    if (ly->kind == GMC_ATTN_LOCAL)
        gmc_emitf(e->b, "/* layer %d: sliding window %d, rope theta %g", l,
                  ly->window, r->theta);
    else
        gmc_emitf(e->b, "/* layer %d: global attention, rope theta %g", l, r->theta);
    if (r->scale != 1.0)
        gmc_emitf(e->b, " / %g", r->scale);
    gmc_emitf(e->b, ", %d heads x %d (kv %d), ffn %d */\n", ly->n_heads,
              ly->head_dim, ly->n_kv_heads, ly->ffn_dim);
}

static void emit_forward(emitter *e, const kset *ks)
{
    const gmc_graph *g = e->g;
    gmc_strbuf *b = e->b;
    gmc_emitf(b, "static void %s_forward(const gmk_ctx *c, int ith, int nth)\n{\n",
              g->model->name);
    gmc_emit_indent(b);
    emit_buffers(e, -1);
    int layer = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const gmc_node *n = &g->nodes[i];
        if (n->layer != layer) {
            if (layer >= 0) {
                gmc_emit_dedent(b);
                gmc_emitf(b, "}\n");
            }
            layer = n->layer;
            gmc_emitf(b, "\n");
            if (layer >= 0) {
                emit_layer_comment(e, layer);
                gmc_emitf(b, "{\n");
                gmc_emit_indent(b);
                emit_buffers(e, layer);
            } else if (i > 0) {
                /* Chunks of a long prompt before the last want no logits. */
                gmc_emitf(b, "/* output: final norm, tied head */\n"
                             "if (c->n_logits == 0)\n    return;\n");
            }
        }
        emit_call(e, ks, i);
        if (i + 1 < g->n_nodes)
            gmc_emitf(b, "SYNC();\n");
    }
    if (layer >= 0) {
        gmc_emit_dedent(b);
        gmc_emitf(b, "}\n");
    }
    gmc_emit_dedent(b);
    gmc_emitf(b, "}\n\n");
}

static void emit_descriptor(emitter *e, const gmc_target_config *tc)
{
    const gmc_graph *g = e->g;
    const gmc_model *m = g->model;
    static const char *const arch[] = {"", "gemma", "gemma2", "gemma3", "gemma3n", "gemma4"};
    char moe[64] = "";
    if (m->n_experts)
        snprintf(moe, sizeof moe, "    .n_experts_used = %d,\n", m->n_experts_used);
    gmc_emitf(e->b,
              "const gmk_model %s_model = {\n"
              "    .abi_version = GMK_ABI_VERSION,\n"
              "    .name = \"%s\",\n"
              "    .tool_version = \"%s\",\n"
              "    .graph_hash = \"%016" PRIx64 "\",\n"
              "    .target = \"%s\",\n"
              "    .arch = \"%s\",\n"
              "    .n_vocab = %d, .d_model = %d, .n_layers = %d,\n"
              "    .n_ctx = %d, .max_batch = %d,\n"
              "    .arena_bytes = %" PRIu64 "u,\n"
              "    .kv_bytes = %" PRIu64 "u,\n"
              "    .kv_bytes_per_token = %" PRIu64 "u,\n"
              "    .weight_bytes = %" PRIu64 "u,\n"
              "    .n_tensors = N_WEIGHTS,\n"
              "    .tensors = %s_tensors,\n"
              "    .forward = %s_forward,\n"
              "%s"
              "};\n\n"
              "/* The fixed name the runtime looks up after dlopen. */\n"
              "const gmk_model *const gmk_model_entry = &%s_model;\n",
              m->name, m->name, GMC_VERSION, g->hash, tc->target->name,
              arch[m->family], m->vocab, m->d_model, m->n_layers, m->context,
              g->max_batch, g->arena_bytes, g->kv_bytes, g->kv_bytes_per_token,
              g->weight_bytes, m->name, m->name, moe, m->name);
}

static gmc_status emit_model_c(emitter *e, const gmc_target_config *tc,
                               const char *flags, gmc_diag *diag)
{
    const gmc_graph *g = e->g;
    const gmc_model *m = g->model;
    gmc_strbuf *b = e->b;
    emit_banner(b, g, tc, flags, "model.c");
    gmc_emitf(b, "#include \"gmk.h\"\n#include \"%s\"\n#include \"gmk_fused.h\"\n\n",
              tc->target->kernel_header);
    emit_manifest_table(e);
    /* One table per layer kind, at that kind's head_dim. */
    int hd[2] = {0, 0}; /* local, global */
    for (int l = 0; l < m->n_layers; l++)
        hd[m->layers[l].kind == GMC_ATTN_GLOBAL] = m->layers[l].head_dim;
    if (hd[0])
        emit_rope_table(b, "rope_local", m->rope_local, hd[0]);
    if (hd[1])
        emit_rope_table(b, "rope_global", m->rope_global, hd[1]);
    gmc_emitf(b,
              "#define A(off) ((float *)(c->arena + (off)))  /* activation */\n"
              "#define KV(off) ((void *)(c->kv + (off)))     /* K/V cache */\n"
              "#define W(i) (c->w[i])                        /* weight */\n"
              "#define WF(i) ((const float *)c->w[i])        /* f32 weight */\n"
              "#define SYNC() c->barrier(c->sync)\n\n");
    gmc_arena a;
    gmc_arena_init(&a);
    kset ks;
    gmc_status st = collect_kernels(e, &a, &ks, diag);
    if (st == GMC_OK) {
        emit_kernels(e, &ks);
        emit_forward(e, &ks);
        emit_descriptor(e, tc);
    }
    gmc_arena_deinit(&a);
    return st;
}

static void emit_model_h(const gmc_graph *g, const gmc_target_config *tc,
                         const char *flags, gmc_strbuf *b)
{
    const gmc_model *m = g->model;
    char up[GMC_NAME_MAX + 1];
    size_t k = 0;
    for (; m->name[k] && k < GMC_NAME_MAX; k++)
        up[k] = (char)toupper((unsigned char)m->name[k]);
    up[k] = '\0';
    emit_banner(b, g, tc, flags, "model.h");
    gmc_emitf(b, "#ifndef %s_MODEL_H\n#define %s_MODEL_H\n\n#include \"gmk.h\"\n\n",
              up, up);
    gmc_emitf(b, "#define %s_N_VOCAB %d\n#define %s_N_CTX %d\n#define %s_MAX_BATCH %d\n",
              up, m->vocab, up, m->context, up, g->max_batch);
    gmc_emitf(b, "#define %s_ARENA_BYTES %" PRIu64 "u\n#define %s_KV_BYTES %" PRIu64
                 "u\n#define %s_WEIGHT_BYTES %" PRIu64 "u\n\n",
              up, g->arena_bytes, up, g->kv_bytes, up, g->weight_bytes);
    gmc_emitf(b, "extern const gmk_model %s_model;\n\n#endif\n", m->name);
}

static void emit_main_c(const gmc_graph *g, const gmc_target_config *tc, gmc_strbuf *b)
{
    gmc_emitf(b, "/* main.c — generated by gemmac %s — do not edit.\n"
                 " * The standalone executable: the runtime's command line around "
                 "the model. */\n"
                 "#include \"gmrt_tools.h\"\n#include \"model.h\"\n\n"
                 "int main(int argc, char **argv)\n{\n"
                 "    /* the CPU features the kernels were compiled for */\n"
                 "    static const char features[] =\n        \"%s\";\n"
                 "    if (!gmrt_cpu_check(features, \"%s\"))\n"
                 "        return 1;\n"
                 "    return gmrt_cli_main(&%s_model, argc, argv);\n}\n",
              GMC_VERSION, tc->features, tc->target->name, g->model->name);
}

static void emit_manifest(const gmc_graph *g, gmc_strbuf *b)
{
    gmc_emitf(b, "# index\tname\tdtype\tne0\tne1\tbytes\tlayout\n");
    for (int i = 0; i < g->n_values; i++) {
        const gmc_value *v = &g->values[i];
        if (v->kind == GMC_V_WEIGHT)
            gmc_emitf(b, "%d\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRIu64 "\t%s\n",
                      v->index, v->name, gmrt_dtype_name(v->dtype), v->ne[0],
                      v->ne[1], v->bytes, gmk_layout_name(v->layout));
    }
}

gmc_status gmc_emit(const gmc_graph *g, const gmc_target_config *tc,
                    const char *flags, gmc_emit_out *out, gmc_diag *diag)
{
    emitter e = {g, &out->model_c};
    GMC_TRY(emit_model_c(&e, tc, flags, diag));
    emit_model_h(g, tc, flags, &out->model_h);
    emit_main_c(g, tc, &out->main_c);
    emit_manifest(g, &out->manifest);
    if (gmc_strbuf_failed(&out->model_c) || gmc_strbuf_failed(&out->model_h) ||
        gmc_strbuf_failed(&out->main_c) || gmc_strbuf_failed(&out->manifest))
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory emitting C for %s",
                        g->model->name);
    return GMC_OK;
}
