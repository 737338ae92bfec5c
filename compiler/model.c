/*
 * model.c — the graph YAML schema: tree → validated, expanded gmc_model.
 *
 * The schema is data: one table of fields per YAML mapping (below), each
 * naming its key, its kind, whether it is required, its range and where
 * the value goes.  One walker applies a table to a mapping, so adding a key
 * is one table line, and every error says file:line:col, the key path,
 * what was expected and what was found.  Values that depend on the family
 * are filled in before the walk (the family is read first); checks that
 * involve several fields run after it, positioned at the key that fails.
 * Finally the layer pattern and the quantization settings are expanded
 * into one gmc_layer per layer.  Everything is allocated in the caller's
 * arena; nothing here touches libyaml (yaml_io.c does).
 */
#include "model.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gmk.h"
#include "gmrt.h"
#include "yaml_io.h"

/* ------------------------------------------------------------ types */

/*
 * The element types a graph may name, in the order error messages list
 * them.  Block sizes come from the runtime's type traits: a row must hold
 * whole blocks, so every input width must be a multiple of the block.
 */
typedef struct dtype_info {
    const char *name;
    int32_t id; /* gmk_dtype */
} dtype_info;

static const dtype_info dtypes[] = {
    {"f32", GMK_DTYPE_F32},   {"f16", GMK_DTYPE_F16},   {"bf16", GMK_DTYPE_BF16},
    {"q4_0", GMK_DTYPE_Q4_0}, {"q4_1", GMK_DTYPE_Q4_1}, {"q5_0", GMK_DTYPE_Q5_0},
    {"q5_1", GMK_DTYPE_Q5_1}, {"q8_0", GMK_DTYPE_Q8_0}, {"q4_k", GMK_DTYPE_Q4_K},
    {"q5_k", GMK_DTYPE_Q5_K}, {"q6_k", GMK_DTYPE_Q6_K},
};
#define DTYPE_COUNT (sizeof dtypes / sizeof dtypes[0])
#define DT_WEIGHTS ((1u << DTYPE_COUNT) - 1u) /* every entry above */
#define DT_KV_CACHE (1u << 0 | 1u << 1)        /* f32, f16 */

static const dtype_info *dtype_by_id(int32_t id)
{
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtypes[i].id == id)
            return &dtypes[i];
    return NULL;
}

/* Named values of an enum-valued key, in the order error messages list
 * them. */
typedef struct enum_item {
    const char *name;
    int value;
} enum_item;

typedef struct enum_list {
    const enum_item *items;
    size_t n;
} enum_list;

#define ENUM_LIST(a) {a, sizeof a / sizeof a[0]}

static const enum_item family_items[] = {
    {"gemma", GMC_FAMILY_GEMMA},
    {"gemma2", GMC_FAMILY_GEMMA2},
    {"gemma3", GMC_FAMILY_GEMMA3},
    {"gemma3n", GMC_FAMILY_GEMMA3N},
    {"gemma4", GMC_FAMILY_GEMMA4},
};
static const enum_item embed_scale_items[] = {
    {"bf16", GMC_EMBED_SCALE_BF16},
    {"exact", GMC_EMBED_SCALE_EXACT},
};
static const enum_item activation_items[] = {{"gelu_tanh", 0}};
static const enum_item kind_items[] = {
    {"local", GMC_ATTN_LOCAL},
    {"global", GMC_ATTN_GLOBAL},
};
/* In gmc_wclass order: wclass_items[c].name is the name of class c, the
 * same word as in GGUF tensor names (blk.N.attn_q.weight). */
static const enum_item wclass_items[] = {
    {"attn_q", GMC_W_ATTN_Q},     {"attn_k", GMC_W_ATTN_K},
    {"attn_v", GMC_W_ATTN_V},     {"attn_output", GMC_W_ATTN_OUTPUT},
    {"ffn_gate", GMC_W_FFN_GATE}, {"ffn_up", GMC_W_FFN_UP},
    {"ffn_down", GMC_W_FFN_DOWN},
    {"inp_gate", GMC_W_PLE_GATE}, {"proj", GMC_W_PLE_PROJ},
    {"ffn_gate_up_exps", GMC_W_EXP_GATE_UP}, {"ffn_down_exps", GMC_W_EXP_DOWN},
    {"laurel_l", GMC_W_LAUREL_L}, {"laurel_r", GMC_W_LAUREL_R},
};
static const enum_list families = ENUM_LIST(family_items);
static const enum_list embed_scales = ENUM_LIST(embed_scale_items);
static const enum_list activations = ENUM_LIST(activation_items);
static const enum_list attn_kinds = ENUM_LIST(kind_items);
static const enum_list wclasses = ENUM_LIST(wclass_items);
_Static_assert(sizeof wclass_items / sizeof wclass_items[0] == GMC_W_COUNT,
               "one name per weight class");

const char *gmc_wclass_name(gmc_wclass c)
{
    return (unsigned)c < GMC_W_COUNT ? wclass_items[c].name : "?";
}

/* Enum-valued fields are stored through an int lvalue; clang gives these
 * enums int size, and this keeps a future compiler from silently
 * disagreeing. */
_Static_assert(sizeof(gmc_family) == sizeof(int), "enum size");
_Static_assert(sizeof(gmc_embed_scale) == sizeof(int), "enum size");

/*
 * Nodes remembered by the walk for the checks that run after it: a
 * cross-field error must point at the key that has to change, but by then
 * the walk has returned.  A field's slot holds its value node, a section's
 * slot its key node (a missing key has no node of its own).
 */
enum slot {
    AT_NONE = 0,
    AT_TIED, AT_KV_HEADS, AT_HEAD_DIM, AT_WINDOW,
    AT_GLOBAL_KV_HEADS, AT_GLOBAL_HEAD_DIM, AT_KV_SHARED, AT_TOP_K,
    AT_PLE_Q, AT_PLE_PROJ_Q, AT_PLE_DIM, AT_EXPERT_DIM,
    AT_ALTUP_ACTIVE, AT_SPARSITY, AT_SPARSE_LAYERS,
    AT_FRACTION_LOCAL, AT_FRACTION_GLOBAL, AT_PLE_VOCAB,
    AT_ATTENTION,           /* the `attention` key (for a missing window) */
    AT_PATTERN,
    AT_EMBED_Q, AT_ATTN_Q, AT_FFN_Q,
    AT_TENSOR0,             /* quant.tensors.<class>, GMC_W_COUNT slots */
    AT_COUNT = AT_TENSOR0 + GMC_W_COUNT
};

/* quant: as written, before expansion into per-layer types; all are
 * gmk_dtype ids.  tensors[c] < 0 means "not overridden". */
typedef struct quant_spec {
    int32_t embed, kv, attn, ffn, ple, ple_proj, altup;
    int32_t tensors[GMC_W_COUNT];
} quant_spec;

/* One entry of quant.overrides.  Layer indices are range-checked only
 * after the walk, because quant: may come before model: in the file. */
typedef struct override_spec {
    int wclass;
    int32_t type;
    int32_t *layers;
    size_t n_layers;
    const gmc_ynode *map; /* for positioning errors found after the walk */
} override_spec;

/* State of one gmc_model_parse call.  The section tables address their
 * destinations as offsets from this struct, so everything the walk fills
 * (the model, quant settings, scratch) lives in it. */
typedef struct parser {
    const char *text;      /* the YAML bytes, for source lines in errors */
    size_t len;
    const char *file;
    gmc_arena *a;
    gmc_diag *diag;
    gmc_model m;           /* built here, copied into the arena at the end */
    quant_spec q;
    int activation;        /* validated, not stored: one value exists */
    override_spec *ovr;    /* quant.overrides, n_ovr entries, in order */
    size_t n_ovr;
    const gmc_ynode *at[AT_COUNT];
} parser;

/* ------------------------------------------------------------ errors */

/* Diagnostic at node n, with its source line for the caret. */
static gmc_status fail_node(parser *p, gmc_status s, const gmc_ynode *n,
                            const char *path, const char *fmt, ...)
    GMC_PRINTF(5, 6);
static gmc_status fail_node(parser *p, gmc_status s, const gmc_ynode *n,
                            const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gmc_yaml_failv(p->diag, s, p->file, p->text, p->len, n->line, n->col, path, fmt, ap);
    va_end(ap);
    return s;
}

/* What was found, for "expected X, got Y": a mapping, a sequence, an empty
 * value, "text" or the quoted string "text" (escaped, cut at 48 bytes). */
static void describe(const gmc_ynode *n, char *out, size_t cap)
{
    if (n->kind == GMC_YNODE_MAP) {
        snprintf(out, cap, "a mapping");
        return;
    }
    if (n->kind == GMC_YNODE_SEQ) {
        snprintf(out, cap, n->n ? "a sequence" : "an empty sequence");
        return;
    }
    if (n->len == 0 && n->plain) {
        snprintf(out, cap, "an empty value");
        return;
    }
    size_t o = (size_t)snprintf(out, cap, "%s\"",
                                n->plain ? "" : "the quoted string ");
    for (size_t i = 0; i < n->len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (i == 48) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        if (c < 0x20 || c == 0x7F)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
        else if (c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
        else
            out[o++] = (char)c;
    }
    snprintf(out + o, cap - o, "\"");
}

static gmc_status fail_expected(parser *p, const gmc_ynode *n,
                                const char *path, const char *what)
{
    char got[128];
    describe(n, got, sizeof got);
    return fail_node(p, GMC_ERR_SCHEMA, n, path, "expected %s, got %s", what,
                     got);
}

static void join_path(char *out, size_t cap, const char *parent,
                      const char *key)
{
    snprintf(out, cap, "%s%s%s", parent, parent[0] ? "." : "", key);
}

/* ------------------------------------------------------------ scalars */

/*
 * Scalar rules are stricter than YAML 1.1 resolution on purpose: a graph
 * file must mean the same to gemmac, to PyYAML and to a person, so each
 * value has one spelling.  YAML 1.1 would read 010 as octal, yes/on as
 * true and .inf as infinity; here numbers are decimal, booleans are
 * true/false, and numbers and booleans must be plain (a quoted "4" is a
 * string).  Enum values and the name may be quoted: they are strings.
 */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Integers: plain scalars of decimal digits with an optional minus sign,
 * strtoll with errno and full consumption (so 99999999999999999999 and
 * "4x" fail), then the field's range.  Every range fits int32_t, which
 * keeps later size arithmetic on products of two fields in int64.  A
 * leading zero (010, -07) is refused: YAML 1.1 reads it as octal, 1.2 as
 * decimal, so it has no one meaning (docs/yaml.md, Value rules). */
static gmc_status parse_int(parser *p, const gmc_ynode *n, const char *path,
                            int64_t lo, int64_t hi, int64_t *out)
{
    bool neg = n->kind == GMC_YNODE_SCALAR && n->len > 1 && n->text[0] == '-';
    if (n->kind == GMC_YNODE_SCALAR && n->plain && n->len > (size_t)neg + 1 &&
        n->text[neg] == '0' && is_digit(n->text[neg + 1]))
        return fail_expected(p, n, path,
                             "an integer without a leading zero (YAML 1.1 reads 010 as "
                             "octal 8, YAML 1.2 as 10)");
    if (n->kind == GMC_YNODE_SCALAR && n->plain && n->len > 0 &&
        (is_digit(n->text[0]) ||
         (n->text[0] == '-' && n->len > 1 && is_digit(n->text[1])))) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(n->text, &end, 10);
        if (errno == 0 && end == n->text + n->len && v >= lo && v <= hi) {
            *out = v;
            return GMC_OK;
        }
    }
    char what[96];
    snprintf(what, sizeof what, "an integer in [%lld, %lld]", (long long)lo,
             (long long)hi);
    return fail_expected(p, n, path, what);
}

/* Floats: plain scalars of [0-9+-.eE] only (so no inf, nan or hex), strtod
 * with errno and full consumption, then > 0 or >= 0.  The generated code
 * and the kernels compute in f32, so the value must also be an f32: at most
 * FLT_MAX, and a positive one must not round to 0 (1e39 would become inff
 * in model.c, 1e-300 a zero). */
static gmc_status parse_float(parser *p, const gmc_ynode *n, const char *path,
                              bool positive, double *out)
{
    bool ok = n->kind == GMC_YNODE_SCALAR && n->plain && n->len > 0 &&
              strspn(n->text, "0123456789+-.eE") == n->len;
    if (ok) {
        char *end = NULL;
        errno = 0;
        double v = strtod(n->text, &end);
        ok = errno == 0 && end == n->text + n->len && isfinite(v) && v <= FLT_MAX &&
             (positive ? v > 0 && (float)v > 0 : v >= 0);
        if (ok) {
            *out = v;
            return GMC_OK;
        }
    }
    return fail_expected(p, n, path,
                         positive ? "a number > 0 that an f32 holds (at most 3.4e38, not "
                                    "rounding to 0)"
                                  : "a number >= 0 that an f32 holds (at most 3.4e38)");
}

static gmc_status parse_bool(parser *p, const gmc_ynode *n, const char *path,
                             bool *out)
{
    if (n->kind == GMC_YNODE_SCALAR && n->plain) {
        if (gmc_ynode_is(n, "true") || gmc_ynode_is(n, "false")) {
            *out = gmc_ynode_is(n, "true");
            return GMC_OK;
        }
    }
    return fail_expected(p, n, path, "true or false");
}

static gmc_status parse_enum(parser *p, const gmc_ynode *n, const char *path,
                             const enum_list *e, int *out)
{
    if (n->kind == GMC_YNODE_SCALAR) {
        for (size_t i = 0; i < e->n; i++) {
            if (gmc_ynode_is(n, e->items[i].name)) {
                *out = e->items[i].value;
                return GMC_OK;
            }
        }
    }
    char what[256] = "one of ";
    for (size_t i = 0; i < e->n; i++) {
        size_t o = strlen(what);
        snprintf(what + o, sizeof what - o, "%s%s", i ? ", " : "",
                 e->items[i].name);
    }
    return fail_expected(p, n, path, e->n == 1 ? what + 7 : what);
}

/* A type name from dtypes[] whose bit is set in mask; the message lists
 * exactly the names that mask allows. */
static gmc_status parse_dtype(parser *p, const gmc_ynode *n, const char *path,
                              unsigned mask, int32_t *out)
{
    char what[256] = "one of ";
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (!(mask & 1u << i))
            continue;
        if (gmc_ynode_is(n, dtypes[i].name)) {
            *out = dtypes[i].id;
            return GMC_OK;
        }
        size_t o = strlen(what);
        snprintf(what + o, sizeof what - o, "%s%s", o > 7 ? ", " : "",
                 dtypes[i].name);
    }
    return fail_expected(p, n, path, what);
}

/* model.name becomes part of C symbol names and file names, so it is a C
 * identifier of bounded length (docs/input-checks.md check 43); nothing else
 * from the YAML reaches generated code as text. */
static gmc_status parse_name(parser *p, const gmc_ynode *n, const char *path,
                             const char **out)
{
    bool ok = n->kind == GMC_YNODE_SCALAR && n->len > 0 &&
              n->len <= GMC_NAME_MAX && !is_digit(n->text[0]);
    for (size_t i = 0; ok && i < n->len; i++) {
        char c = n->text[i];
        ok = c == '_' || is_digit(c) || (c >= 'a' && c <= 'z') ||
             (c >= 'A' && c <= 'Z');
    }
    if (ok) {
        *out = n->text; /* the tree lives in the same arena */
        return GMC_OK;
    }
    return fail_expected(p, n, path,
                         "a C identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 "
                         "characters)");
}

/* ------------------------------------------------------------ schema */

typedef enum field_kind {
    FK_INT,     /* int32_t in [lo, hi] */
    FK_FLOAT,   /* double, finite, > 0 (positive) or >= 0 */
    FK_BOOL,    /* bool */
    FK_ENUM,    /* int, one of names */
    FK_NAME,    /* const char *, C identifier */
    FK_DTYPE,   /* int32_t gmk_dtype, one of the types in dmask */
    FK_SECTION, /* a nested mapping described by sub */
    FK_CUSTOM   /* fn parses the value */
} field_kind;

typedef struct section section;
typedef gmc_status (*custom_fn)(parser *p, const gmc_ynode *v,
                                const char *path, void *base);

/* One key of a mapping.  Only the members its kind uses are set. */
typedef struct field {
    const char *key;
    field_kind kind;
    bool required;
    size_t off;            /* where the value goes, from the section base */
    int64_t lo, hi;        /* FK_INT */
    bool positive;         /* FK_FLOAT */
    const enum_list *names;/* FK_ENUM */
    unsigned dmask;        /* FK_DTYPE */
    const section *sub;    /* FK_SECTION */
    custom_fn fn;          /* FK_CUSTOM */
    int slot;              /* enum slot: remember the value (sections: key) */
} field;

/* The keys a mapping accepts, in the order error messages list them. */
struct section {
    const field *fields;
    size_t n;
};

#define SECTION(f) {f, sizeof f / sizeof f[0]}
#define M(member) (offsetof(parser, m) + offsetof(gmc_model, member))

static gmc_status parse_pattern(parser *p, const gmc_ynode *v,
                                const char *path, void *base);
static gmc_status parse_overrides(parser *p, const gmc_ynode *v,
                                  const char *path, void *base);
static gmc_status parse_layer_list(parser *p, const gmc_ynode *v,
                                   const char *path, void *base);

/* Offsets are from the base the walker gets: the parser itself for the
 * top-level sections (M, Q), the struct of a nested section otherwise. */
static const field model_fields[] = {
    {.key = "name", .kind = FK_NAME, .required = true, .off = M(name)},
    {.key = "family", .kind = FK_ENUM, .required = true, .names = &families,
     .off = M(family)},
    {.key = "vocab", .kind = FK_INT, .required = true, .lo = 256,
     .hi = 1048576, .off = M(vocab)},
    {.key = "d_model", .kind = FK_INT, .required = true, .lo = 1,
     .hi = 65536, .off = M(d_model)},
    {.key = "layers", .kind = FK_INT, .required = true, .lo = 1, .hi = 1024,
     .off = M(n_layers)},
    {.key = "context", .kind = FK_INT, .required = true, .lo = 1,
     .hi = 1048576, .off = M(context)},
    {.key = "norm_eps", .kind = FK_FLOAT, .positive = true,
     .off = M(norm_eps)},
    {.key = "tied_embeddings", .kind = FK_BOOL, .off = M(tied_embeddings),
     .slot = AT_TIED},
    {.key = "embed_scale", .kind = FK_ENUM, .names = &embed_scales,
     .off = M(embed_scale)},
};

/* attention.rope.local / .global: both default from the family, so an
 * absent key keeps what set_defaults wrote.  The fraction is checked to be
 * at most 1 after the walk (its slot says where). */
#define ROPE_PARAM_FIELDS(fraction_slot)                                     \
    {.key = "theta", .kind = FK_FLOAT, .positive = true,                     \
     .off = offsetof(gmc_rope, theta)},                                      \
    {.key = "scale", .kind = FK_FLOAT, .positive = true,                     \
     .off = offsetof(gmc_rope, scale)},                                      \
    {.key = "fraction", .kind = FK_FLOAT, .positive = true,                  \
     .off = offsetof(gmc_rope, fraction), .slot = fraction_slot}
static const field rope_local_fields[] = {ROPE_PARAM_FIELDS(AT_FRACTION_LOCAL)};
static const field rope_global_fields[] = {ROPE_PARAM_FIELDS(AT_FRACTION_GLOBAL)};
static const section rope_local_section = SECTION(rope_local_fields);
static const section rope_global_section = SECTION(rope_global_fields);

static const field rope_fields[] = {
    {.key = "local", .kind = FK_SECTION, .sub = &rope_local_section,
     .off = M(rope_local)},
    {.key = "global", .kind = FK_SECTION, .sub = &rope_global_section,
     .off = M(rope_global)},
};
static const section rope_section = SECTION(rope_fields);

/* attention.global: Gemma 4's global layers (wider heads, fewer KV heads,
 * K = V); absent keys keep the attention: values. */
static const field global_fields[] = {
    {.key = "head_dim", .kind = FK_INT, .lo = 2, .hi = 1024,
     .off = M(global.head_dim), .slot = AT_GLOBAL_HEAD_DIM},
    {.key = "kv_heads", .kind = FK_INT, .lo = 1, .hi = 1024,
     .off = M(global.n_kv_heads), .slot = AT_GLOBAL_KV_HEADS},
    {.key = "k_eq_v", .kind = FK_BOOL, .off = M(global.k_eq_v)},
};
static const section global_section = SECTION(global_fields);

static const field attention_fields[] = {
    {.key = "heads", .kind = FK_INT, .required = true, .lo = 1, .hi = 1024,
     .off = M(n_heads)},
    {.key = "kv_heads", .kind = FK_INT, .required = true, .lo = 1,
     .hi = 1024, .off = M(n_kv_heads), .slot = AT_KV_HEADS},
    {.key = "head_dim", .kind = FK_INT, .required = true, .lo = 2,
     .hi = 1024, .off = M(head_dim), .slot = AT_HEAD_DIM},
    {.key = "query_scale", .kind = FK_FLOAT, .positive = true,
     .off = M(query_scale)},
    {.key = "qk_norm", .kind = FK_BOOL, .off = M(qk_norm)},
    {.key = "softcap", .kind = FK_FLOAT, .off = M(attn_softcap)},
    /* Required only if a layer is local, and at most model.context: both
     * need other sections, so check_shape decides after the walk. */
    {.key = "window", .kind = FK_INT, .lo = 1, .hi = 1048576,
     .off = M(window), .slot = AT_WINDOW},
    {.key = "rope", .kind = FK_SECTION, .sub = &rope_section, .off = 0},
    {.key = "value_norm", .kind = FK_BOOL, .off = M(value_norm)},
    {.key = "global", .kind = FK_SECTION, .sub = &global_section, .off = 0},
    /* at most layers - 1, checked after the walk */
    {.key = "kv_shared_layers", .kind = FK_INT, .lo = 0, .hi = 1023,
     .off = M(kv_shared_layers), .slot = AT_KV_SHARED},
};

static const field layers_fields[] = {
    {.key = "pattern", .kind = FK_CUSTOM, .required = true,
     .fn = parse_pattern, .slot = AT_PATTERN},
    {.key = "output_scale", .kind = FK_BOOL, .off = M(layer_scale)},
};

static const field ffn_fields[] = {
    {.key = "dim", .kind = FK_INT, .required = true, .lo = 1, .hi = 1048576,
     .off = M(ffn_dim)},
    {.key = "activation", .kind = FK_ENUM, .names = &activations,
     .off = offsetof(parser, activation)},
    {.key = "shared_dim", .kind = FK_INT, .lo = 1, .hi = 1048576,
     .off = M(ffn_dim_shared)},
    /* Gemma 3n's Gaussian top-k on the gate of the first sparse_layers
     * layers; sparsity < 1 is checked after the walk */
    {.key = "sparsity", .kind = FK_FLOAT, .off = M(ffn_sparsity),
     .slot = AT_SPARSITY},
    {.key = "sparse_layers", .kind = FK_INT, .lo = 0, .hi = 1024,
     .off = M(ffn_sparse_layers), .slot = AT_SPARSE_LAYERS},
};

/* altup: Gemma 3n's residual streams. */
static const field altup_fields[] = {
    {.key = "streams", .kind = FK_INT, .required = true, .lo = 2, .hi = 16,
     .off = M(altup_streams)},
    {.key = "active", .kind = FK_INT, .lo = 0, .hi = 15,
     .off = M(altup_active), .slot = AT_ALTUP_ACTIVE},
    {.key = "coef_clip", .kind = FK_FLOAT, .off = M(altup_coef_clip)},
    {.key = "correct_scale", .kind = FK_BOOL, .off = M(altup_correct_scale)},
};

/* laurel: Gemma 3n's low-rank branch beside attention. */
static const field laurel_fields[] = {
    {.key = "rank", .kind = FK_INT, .required = true, .lo = 1, .hi = 65536,
     .off = M(laurel_rank)},
};

/* ple: per-layer embeddings (Gemma 3n/4 E-models). */
static const field ple_fields[] = {
    {.key = "dim", .kind = FK_INT, .required = true, .lo = 1, .hi = 65536,
     .off = M(ple_dim), .slot = AT_PLE_DIM},
    /* at least model.vocab, checked after the walk */
    {.key = "vocab", .kind = FK_INT, .lo = 256, .hi = 1048576,
     .off = M(ple_vocab), .slot = AT_PLE_VOCAB},
};

/* moe: experts beside the dense FFN (Gemma 4 26B-A4B). */
static const field moe_fields[] = {
    {.key = "experts", .kind = FK_INT, .required = true, .lo = 1,
     .hi = 4096, .off = M(n_experts)},
    {.key = "top_k", .kind = FK_INT, .required = true, .lo = 1, .hi = 4096,
     .off = M(n_experts_used), .slot = AT_TOP_K},
    {.key = "dim", .kind = FK_INT, .required = true, .lo = 1,
     .hi = 1048576, .off = M(expert_dim), .slot = AT_EXPERT_DIM},
};

static const field output_fields[] = {
    {.key = "post_norms", .kind = FK_BOOL, .off = M(post_norms)},
    {.key = "final_softcap", .kind = FK_FLOAT, .off = M(final_softcap)},
};

#define Q(member) (offsetof(parser, q) + offsetof(quant_spec, member))
#define T(c) (Q(tensors) + (c) * sizeof(int32_t))
#define TENSOR_FIELD(c, name)                                                \
    {.key = name, .kind = FK_DTYPE, .dmask = DT_WEIGHTS, .off = T(c),        \
     .slot = AT_TENSOR0 + (c)}

/* quant.tensors: per-class types that win over quant.attn / quant.ffn. */
static const field tensors_fields[] = {
    TENSOR_FIELD(GMC_W_ATTN_Q, "attn_q"),
    TENSOR_FIELD(GMC_W_ATTN_K, "attn_k"),
    TENSOR_FIELD(GMC_W_ATTN_V, "attn_v"),
    TENSOR_FIELD(GMC_W_ATTN_OUTPUT, "attn_output"),
    TENSOR_FIELD(GMC_W_FFN_GATE, "ffn_gate"),
    TENSOR_FIELD(GMC_W_FFN_UP, "ffn_up"),
    TENSOR_FIELD(GMC_W_FFN_DOWN, "ffn_down"),
    TENSOR_FIELD(GMC_W_PLE_GATE, "inp_gate"),
    TENSOR_FIELD(GMC_W_PLE_PROJ, "proj"),
    TENSOR_FIELD(GMC_W_EXP_GATE_UP, "ffn_gate_up_exps"),
    TENSOR_FIELD(GMC_W_EXP_DOWN, "ffn_down_exps"),
    TENSOR_FIELD(GMC_W_LAUREL_L, "laurel_l"),
    TENSOR_FIELD(GMC_W_LAUREL_R, "laurel_r"),
};
_Static_assert(sizeof tensors_fields / sizeof tensors_fields[0] ==
                   GMC_W_COUNT,
               "one quant.tensors key per weight class");
static const section tensors_section = SECTION(tensors_fields);

static const field quant_fields[] = {
    {.key = "embed", .kind = FK_DTYPE, .dmask = DT_WEIGHTS,
     .off = Q(embed), .slot = AT_EMBED_Q},
    {.key = "attn", .kind = FK_DTYPE, .dmask = DT_WEIGHTS, .off = Q(attn),
     .slot = AT_ATTN_Q},
    {.key = "ffn", .kind = FK_DTYPE, .dmask = DT_WEIGHTS, .off = Q(ffn),
     .slot = AT_FFN_Q},
    {.key = "kv_cache", .kind = FK_DTYPE, .dmask = DT_KV_CACHE,
     .off = Q(kv)},
    /* per_layer_token_embd; default: quant.embed */
    {.key = "ple", .kind = FK_DTYPE, .dmask = DT_WEIGHTS, .off = Q(ple),
     .slot = AT_PLE_Q},
    /* per_layer_model_proj; default: quant.attn */
    {.key = "ple_proj", .kind = FK_DTYPE, .dmask = DT_WEIGHTS,
     .off = Q(ple_proj), .slot = AT_PLE_PROJ_Q},
    /* altup_proj, altup_unembd_proj (Gemma 3n); default f32 */
    {.key = "altup", .kind = FK_DTYPE, .dmask = DT_WEIGHTS, .off = Q(altup)},
    {.key = "tensors", .kind = FK_SECTION, .sub = &tensors_section,
     .off = 0},
    {.key = "overrides", .kind = FK_CUSTOM, .fn = parse_overrides},
};

/* One entry of quant.overrides; offsets are into an override_spec. */
static const field override_fields[] = {
    {.key = "tensor", .kind = FK_ENUM, .required = true, .names = &wclasses,
     .off = offsetof(override_spec, wclass)},
    {.key = "layers", .kind = FK_CUSTOM, .required = true,
     .fn = parse_layer_list},
    {.key = "type", .kind = FK_DTYPE, .required = true, .dmask = DT_WEIGHTS,
     .off = offsetof(override_spec, type)},
};
static const section override_section = SECTION(override_fields);

static const section model_section = SECTION(model_fields);
static const section attention_section = SECTION(attention_fields);
static const section layers_section = SECTION(layers_fields);
static const section ffn_section = SECTION(ffn_fields);
static const section output_section = SECTION(output_fields);
static const section ple_section = SECTION(ple_fields);
static const section moe_section = SECTION(moe_fields);
static const section altup_section = SECTION(altup_fields);
static const section laurel_section = SECTION(laurel_fields);
static const section quant_section = SECTION(quant_fields);

/*
 * The top level.  Gemma 4's features are optional sections (ple:, moe:)
 * and optional keys of the others (attention.global, kv_shared_layers,
 * value_norm, ffn.shared_dim, layers.output_scale), so files written for
 * Gemma 1-3 stay valid.
 */
static const field root_fields[] = {
    {.key = "model", .kind = FK_SECTION, .required = true,
     .sub = &model_section},
    {.key = "attention", .kind = FK_SECTION, .required = true,
     .sub = &attention_section, .slot = AT_ATTENTION},
    {.key = "layers", .kind = FK_SECTION, .required = true,
     .sub = &layers_section},
    {.key = "ffn", .kind = FK_SECTION, .required = true,
     .sub = &ffn_section},
    {.key = "output", .kind = FK_SECTION, .sub = &output_section},
    {.key = "ple", .kind = FK_SECTION, .sub = &ple_section},
    {.key = "moe", .kind = FK_SECTION, .sub = &moe_section},
    {.key = "altup", .kind = FK_SECTION, .sub = &altup_section},
    {.key = "laurel", .kind = FK_SECTION, .sub = &laurel_section},
    {.key = "quant", .kind = FK_SECTION, .sub = &quant_section},
};
static const section root_section = SECTION(root_fields);

/* ------------------------------------------------------------ walker */

static const gmc_ynode *find_value(const gmc_ynode *map, const char *key)
{
    if (map->kind != GMC_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (gmc_ynode_is(map->pairs[i].key, key))
            return map->pairs[i].value;
    return NULL;
}

static const field *find_field(const section *sec, const gmc_ynode *key)
{
    for (size_t i = 0; i < sec->n; i++)
        if (gmc_ynode_is(key, sec->fields[i].key))
            return &sec->fields[i];
    return NULL;
}

static gmc_status walk_section(parser *p, const gmc_ynode *map,
                               const gmc_ynode *where, const section *sec,
                               unsigned char *base, const char *path);

/* Parses one value according to its field and stores it at base + off.
 * The store's type follows from the kind (see field_kind). */
static gmc_status parse_field(parser *p, const field *f,
                              const gmc_ynode *key, const gmc_ynode *v,
                              unsigned char *base, const char *path)
{
    void *dst = base + f->off;
    int64_t i64 = 0;
    int ival = 0;
    if (f->slot != AT_NONE)
        p->at[f->slot] = f->kind == FK_SECTION ? key : v;
    switch (f->kind) {
    case FK_INT:
        GMC_TRY(parse_int(p, v, path, f->lo, f->hi, &i64));
        *(int32_t *)dst = (int32_t)i64; /* every range fits int32 */
        return GMC_OK;
    case FK_FLOAT:
        return parse_float(p, v, path, f->positive, dst);
    case FK_BOOL:
        return parse_bool(p, v, path, dst);
    case FK_ENUM:
        GMC_TRY(parse_enum(p, v, path, f->names, &ival));
        *(int *)dst = ival;
        return GMC_OK;
    case FK_NAME:
        return parse_name(p, v, path, dst);
    case FK_DTYPE:
        return parse_dtype(p, v, path, f->dmask, dst);
    case FK_SECTION:
        return walk_section(p, v, key, f->sub, base + f->off, path);
    case FK_CUSTOM:
        return f->fn(p, v, path, base);
    }
    GMC_UNREACHABLE();
}

/* "unknown key" lists what the mapping accepts. */
static gmc_status fail_unknown_key(parser *p, const gmc_ynode *key,
                                   const section *sec, const char *path)
{
    char allowed[512] = "";
    for (size_t i = 0; i < sec->n; i++) {
        size_t o = strlen(allowed);
        snprintf(allowed + o, sizeof allowed - o, "%s%s", i ? ", " : "",
                 sec->fields[i].key);
    }
    char got[128];
    describe(key, got, sizeof got);
    return fail_node(p, GMC_ERR_SCHEMA, key, path,
                     "unknown key %s; allowed keys: %s", got, allowed);
}

/*
 * Applies a section table to a mapping: every key must be in the table
 * (duplicates were refused by yaml_io), every required key present.
 * `where` is the key that introduced the mapping (the mapping itself at
 * the root): a missing key has no position of its own, so it is reported
 * there.
 */
static gmc_status walk_section(parser *p, const gmc_ynode *map,
                               const gmc_ynode *where, const section *sec,
                               unsigned char *base, const char *path)
{
    if (map->kind != GMC_YNODE_MAP)
        return fail_expected(p, map, path, "a mapping");
    char child[GMC_DIAG_PATH];
    for (size_t i = 0; i < map->n; i++) {
        const gmc_ynode *key = map->pairs[i].key;
        const field *f = find_field(sec, key);
        if (!f) {
            char shown[80];
            size_t n = key->len < 64 ? key->len : 64;
            for (size_t j = 0; j < n; j++) /* the path shows no controls */
                shown[j] = (unsigned char)key->text[j] < 0x20 ? '?'
                                                              : key->text[j];
            shown[n] = '\0';
            join_path(child, sizeof child, path, shown);
            return fail_unknown_key(p, key, sec, child);
        }
        join_path(child, sizeof child, path, f->key);
        GMC_TRY(parse_field(p, f, key, map->pairs[i].value, base, child));
    }
    for (size_t i = 0; i < sec->n; i++) {
        const field *f = &sec->fields[i];
        if (f->required && !find_value(map, f->key))
            return fail_node(p, GMC_ERR_SCHEMA, where, path,
                             "missing required key \"%s\"", f->key);
    }
    return GMC_OK;
}

/* ------------------------------------------------------------ sequences */

/* Checks that v is a sequence of 1..max items; max bounds the arrays
 * built from it. */
static gmc_status expect_seq(parser *p, const gmc_ynode *v, const char *path,
                             const char *what, size_t max)
{
    if (v->kind != GMC_YNODE_SEQ || v->n == 0)
        return fail_expected(p, v, path, what);
    if (v->n > max)
        return fail_node(p, GMC_ERR_SCHEMA, v, path,
                         "expected at most %zu entries, got %zu", max, v->n);
    return GMC_OK;
}

/* layers.pattern: [local|global, ...], repeated over the layers. */
static gmc_status parse_pattern(parser *p, const gmc_ynode *v,
                                const char *path, void *base)
{
    (void)base;
    GMC_TRY(expect_seq(p, v, path,
                       "a non-empty sequence of local and global", 1024));
    gmc_attn_kind *kinds = gmc_arena_array(p->a, v->n, sizeof *kinds);
    if (!kinds)
        return gmc_fail(p->diag, GMC_ERR_NOMEM, "out of memory");
    char item[GMC_DIAG_PATH];
    for (size_t i = 0; i < v->n; i++) {
        int k = 0;
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        GMC_TRY(parse_enum(p, v->items[i], item, &attn_kinds, &k));
        kinds[i] = (gmc_attn_kind)k;
    }
    p->m.pattern = kinds;
    p->m.pattern_len = (int32_t)v->n;
    return GMC_OK;
}

/* quant.overrides[i].layers: layer indices; checked against model.layers
 * after the walk, because quant may come before model in the file. */
static gmc_status parse_layer_list(parser *p, const gmc_ynode *v,
                                   const char *path, void *base)
{
    override_spec *o = base;
    GMC_TRY(expect_seq(p, v, path, "a non-empty sequence of layer indices",
                       1024));
    o->layers = gmc_arena_array(p->a, v->n, sizeof *o->layers);
    if (!o->layers)
        return gmc_fail(p->diag, GMC_ERR_NOMEM, "out of memory");
    char item[GMC_DIAG_PATH];
    for (size_t i = 0; i < v->n; i++) {
        int64_t l = 0;
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        GMC_TRY(parse_int(p, v->items[i], item, 0, 1023, &l));
        o->layers[i] = (int32_t)l;
    }
    o->n_layers = v->n;
    return GMC_OK;
}

static gmc_status parse_overrides(parser *p, const gmc_ynode *v,
                                  const char *path, void *base)
{
    (void)base;
    if (v->kind != GMC_YNODE_SEQ)
        return fail_expected(p, v, path, "a sequence of mappings");
    p->ovr = gmc_arena_array(p->a, v->n + 1, sizeof *p->ovr);
    if (!p->ovr)
        return gmc_fail(p->diag, GMC_ERR_NOMEM, "out of memory");
    char item[GMC_DIAG_PATH];
    for (size_t i = 0; i < v->n; i++) {
        override_spec *o = &p->ovr[i];
        o->map = v->items[i];
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        GMC_TRY(walk_section(p, o->map, o->map, &override_section,
                             (unsigned char *)o, item));
    }
    p->n_ovr = v->n;
    return GMC_OK;
}

/* ------------------------------------------------------------ defaults */

/* Values a key takes when absent; the family decides several of them
 * (docs/models.md#gemma1 .. #gemma3): Gemma 2 has soft-caps 50/30, Gemma 2 and 3 have
 * post-norms, Gemma 3 has QK-norm and a global RoPE base of 1e6.  The
 * per-layer type defaults are f32: a graph without quant: is exact. */
static void set_defaults(parser *p, gmc_family family)
{
    gmc_model *m = &p->m;
    m->family = family;
    m->norm_eps = 1e-6;
    m->tied_embeddings = true;
    m->embed_scale = GMC_EMBED_SCALE_BF16;
    /* Gemma 3n and 4 share the norms without +1, the value norm and the
     * query scale 1 */
    bool g4 = family == GMC_FAMILY_GEMMA4, g3n4 = g4 || family == GMC_FAMILY_GEMMA3N;
    /* 0 = 1/sqrt(head_dim), set after the walk; Gemma 4's QK-norm weights
     * carry the scale */
    m->query_scale = g3n4 ? 1.0 : 0;
    m->qk_norm = family >= GMC_FAMILY_GEMMA3;
    m->value_norm = g3n4;
    m->attn_softcap = family == GMC_FAMILY_GEMMA2 ? 50.0 : 0.0;
    m->rope_local = (gmc_rope){10000.0, 1.0, 1.0};
    m->rope_global = (gmc_rope){
        family >= GMC_FAMILY_GEMMA3 ? 1000000.0 : 10000.0, 1.0, 1.0};
    m->post_norms = family != GMC_FAMILY_GEMMA;
    m->layer_scale = g4;
    m->norm_plus_one = !g3n4;
    m->final_softcap = family == GMC_FAMILY_GEMMA2 || g3n4 ? 30.0 : 0.0;
    m->altup_coef_clip = 120.0;
    m->altup_correct_scale = true;
    p->q.embed = p->q.kv = p->q.attn = p->q.ffn = GMK_DTYPE_F32;
    p->q.ple = p->q.ple_proj = -1; /* quant.embed's, quant.attn's */
    p->q.altup = GMK_DTYPE_F32;
    for (int c = 0; c < GMC_W_COUNT; c++)
        p->q.tensors[c] = -1;
}

/* Reads model.family ahead of the walk, so that the defaults above exist
 * before any key can override them.  A missing family (or model) is
 * left for the walk to report in document order. */
static gmc_status read_family(parser *p, const gmc_ynode *root,
                              gmc_family *out)
{
    *out = GMC_FAMILY_GEMMA3;
    const gmc_ynode *model = find_value(root, "model");
    const gmc_ynode *fam = model ? find_value(model, "family") : NULL;
    if (!fam)
        return GMC_OK;
    int v = 0;
    GMC_TRY(parse_enum(p, fam, "model.family", &families, &v));
    *out = (gmc_family)v;
    return GMC_OK;
}

/* ------------------------------------------------------------ checks */

/* Checks of the Gemma 4 keys (attention.global, kv_shared_layers, the
 * RoPE fractions, moe:), each positioned at the key that has to change. */
static gmc_status check_gemma4(parser *p)
{
    gmc_model *m = &p->m;
    const gmc_global_attn *g = &m->global;
    if (g->n_kv_heads && m->n_heads % g->n_kv_heads != 0)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_GLOBAL_KV_HEADS],
                         "attention.global.kv_heads",
                         "kv_heads (%d) must divide heads (%d)",
                         g->n_kv_heads, m->n_heads);
    if (g->head_dim % 2 != 0)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_GLOBAL_HEAD_DIM],
                         "attention.global.head_dim",
                         "head_dim must be even (RoPE rotates pairs), got %d",
                         g->head_dim);
    const gmc_rope *r[2] = {&m->rope_local, &m->rope_global};
    for (int i = 0; i < 2; i++)
        if (r[i]->fraction > 1.0)
            return fail_node(p, GMC_ERR_SEMANTIC,
                             p->at[i ? AT_FRACTION_GLOBAL : AT_FRACTION_LOCAL],
                             i ? "attention.rope.global.fraction"
                               : "attention.rope.local.fraction",
                             "the share of pairs that rotate must be in (0, 1], "
                             "got %g", r[i]->fraction);
    if (m->kv_shared_layers >= m->n_layers)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_KV_SHARED],
                         "attention.kv_shared_layers",
                         "%d KV-shared layers leave no layer to compute K/V "
                         "(the model has %d layers)",
                         m->kv_shared_layers, m->n_layers);
    if (m->n_experts && m->n_experts_used > m->n_experts)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_TOP_K], "moe.top_k",
                         "top_k (%d) must not exceed experts (%d)",
                         m->n_experts_used, m->n_experts);
    if (m->ple_vocab && m->ple_vocab < m->vocab)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_PLE_VOCAB], "ple.vocab",
                         "the per-layer table needs a row for every token: %d "
                         "rows but model.vocab is %d", m->ple_vocab, m->vocab);
    if (!m->ple_vocab)
        m->ple_vocab = m->vocab;
    if (m->altup_streams && m->altup_active >= m->altup_streams)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_ALTUP_ACTIVE],
                         "altup.active", "active (%d) must be a stream below "
                         "streams (%d)", m->altup_active, m->altup_streams);
    if (m->ffn_sparsity >= 1.0)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_SPARSITY], "ffn.sparsity",
                         "sparsity must be below 1, got %g", m->ffn_sparsity);
    if (m->ffn_sparse_layers > m->n_layers)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_SPARSE_LAYERS],
                         "ffn.sparse_layers", "%d sparse layers but the model "
                         "has %d", m->ffn_sparse_layers, m->n_layers);
    return GMC_OK;
}

/* Checks between fields of model: and attention:, each positioned at the
 * key that has to change. */
static gmc_status check_shape(parser *p)
{
    gmc_model *m = &p->m;
    if (!m->tied_embeddings)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_TIED],
                         "model.tied_embeddings",
                         "untied output head is not supported yet");
    if (m->n_heads % m->n_kv_heads != 0)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_KV_HEADS],
                         "attention.kv_heads",
                         "kv_heads (%d) must divide heads (%d)",
                         m->n_kv_heads, m->n_heads);
    if (m->head_dim % 2 != 0)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_HEAD_DIM],
                         "attention.head_dim",
                         "head_dim must be even (RoPE rotates pairs), got %d",
                         m->head_dim);
    if (m->pattern_len > m->n_layers)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_PATTERN],
                         "layers.pattern",
                         "the pattern has %d entries but the model has only "
                         "%d layers",
                         m->pattern_len, m->n_layers);
    bool any_local = false;
    for (int32_t i = 0; i < m->pattern_len; i++)
        any_local |= m->pattern[i] == GMC_ATTN_LOCAL;
    if (any_local && m->window == 0)
        return fail_node(p, GMC_ERR_SCHEMA, p->at[AT_ATTENTION], "attention",
                         "missing required key \"window\" (layers.pattern "
                         "has local layers)");
    if (m->window > m->context)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_WINDOW],
                         "attention.window",
                         "window (%d) must not exceed model.context (%d)",
                         m->window, m->context);
    if (m->query_scale == 0)
        m->query_scale = 1.0 / sqrt((double)m->head_dim);
    return check_gemma4(p);
}

/* Checks the layer indices of every override (in range, and no layer
 * overridden twice for one class) and applies them. */
static gmc_status apply_overrides(parser *p)
{
    gmc_model *m = &p->m;
    const gmc_ynode **first =
        gmc_arena_array(p->a, (size_t)m->n_layers * GMC_W_COUNT,
                        sizeof *first);
    if (!first)
        return gmc_fail(p->diag, GMC_ERR_NOMEM, "out of memory");
    char path[GMC_DIAG_PATH];
    for (size_t k = 0; k < p->n_ovr; k++) {
        const override_spec *o = &p->ovr[k];
        const gmc_ynode *list = find_value(o->map, "layers");
        for (size_t j = 0; j < o->n_layers; j++) {
            int32_t l = o->layers[j];
            const gmc_ynode *at = list->items[j];
            snprintf(path, sizeof path, "quant.overrides[%zu].layers[%zu]",
                     k, j);
            if (l >= m->n_layers)
                return fail_node(p, GMC_ERR_SEMANTIC, at, path,
                                 "layer %d does not exist: the model has %d "
                                 "layers (0..%d)",
                                 l, m->n_layers, m->n_layers - 1);
            const gmc_ynode **seen = &first[(size_t)l * GMC_W_COUNT +
                                            (size_t)o->wclass];
            if (*seen)
                return fail_node(p, GMC_ERR_SEMANTIC, at, path,
                                 "layer %d already has an override for %s "
                                 "(line %d)",
                                 l, wclass_items[o->wclass].name, (*seen)->line);
            *seen = at;
            m->layers[l].wtype[o->wclass] = o->type;
        }
    }
    return GMC_OK;
}

/* Where the type of (layer, class) was set, for a width error: the last
 * override naming it, else quant.tensors.<class>, else quant.attn/ffn. */
static const gmc_ynode *type_source(const parser *p, int32_t layer,
                                    gmc_wclass c, char *path, size_t cap)
{
    for (size_t k = p->n_ovr; k-- > 0;) {
        const override_spec *o = &p->ovr[k];
        for (size_t j = 0; o->wclass == (int)c && j < o->n_layers; j++) {
            if (o->layers[j] == layer) {
                snprintf(path, cap, "quant.overrides[%zu].type", k);
                return find_value(o->map, "type");
            }
        }
    }
    if (p->q.tensors[c] >= 0) {
        snprintf(path, cap, "quant.tensors.%s", wclass_items[c].name);
        return p->at[AT_TENSOR0 + c];
    }
    bool attn = c <= GMC_W_ATTN_OUTPUT;
    snprintf(path, cap, "quant.%s", attn ? "attn" : "ffn");
    return p->at[attn ? AT_ATTN_Q : AT_FFN_Q];
}

bool gmc_layer_has(const gmc_model *m, int32_t l, gmc_wclass c)
{
    const gmc_layer *ly = &m->layers[l];
    switch (c) {
    case GMC_W_ATTN_K: return ly->kv_source == l;
    case GMC_W_ATTN_V: return ly->kv_source == l && !ly->k_eq_v;
    case GMC_W_PLE_GATE:
    case GMC_W_PLE_PROJ: return m->ple_dim > 0;
    case GMC_W_EXP_GATE_UP:
    case GMC_W_EXP_DOWN: return m->n_experts > 0;
    case GMC_W_LAUREL_L:
    case GMC_W_LAUREL_R: return m->laurel_rank > 0;
    default: return true;
    }
}

void gmc_wclass_shape(const gmc_model *m, int32_t l, gmc_wclass c, int64_t ne[3])
{
    const gmc_layer *ly = &m->layers[l];
    int64_t D = m->d_model, q = (int64_t)ly->n_heads * ly->head_dim;
    int64_t kv = (int64_t)ly->n_kv_heads * ly->head_dim;
    ne[0] = D;
    ne[2] = 1;
    switch (c) {
    case GMC_W_ATTN_Q: ne[1] = q; break;
    case GMC_W_ATTN_K:
    case GMC_W_ATTN_V: ne[1] = kv; break;
    case GMC_W_ATTN_OUTPUT: ne[0] = q; ne[1] = D; break;
    case GMC_W_FFN_GATE:
    case GMC_W_FFN_UP: ne[1] = ly->ffn_dim; break;
    case GMC_W_FFN_DOWN: ne[0] = ly->ffn_dim; ne[1] = D; break;
    case GMC_W_PLE_GATE: ne[1] = m->ple_dim; break;
    case GMC_W_PLE_PROJ: ne[0] = m->ple_dim; ne[1] = D; break;
    case GMC_W_EXP_GATE_UP: /* gate rows, then up rows, per expert */
        ne[1] = 2 * (int64_t)m->expert_dim; ne[2] = m->n_experts; break;
    case GMC_W_EXP_DOWN:
        ne[0] = m->expert_dim; ne[1] = D; ne[2] = m->n_experts; break;
    case GMC_W_LAUREL_L: ne[1] = m->laurel_rank; break;
    case GMC_W_LAUREL_R: ne[0] = m->laurel_rank; ne[1] = D; break;
    default: ne[1] = 0; break;
    }
}

/* The contiguous input dimension (ne0) of a weight: what its rows are
 * quantized along. */
static int32_t input_width(const gmc_model *m, int32_t l, gmc_wclass c)
{
    int64_t ne[3];
    gmc_wclass_shape(m, l, c, ne);
    return (int32_t)ne[0];
}

/* Every quantized row must hold whole blocks (docs/models.md#quant-weights). */
static gmc_status check_widths(parser *p)
{
    const gmc_model *m = &p->m;
    const dtype_info *e = dtype_by_id(m->embed_type);
    GMC_ASSERT(e); /* parse_dtype only stores ids from the table */
    int32_t eblock = (int32_t)gmrt_dtype_block(e->id);
    if (m->d_model % eblock != 0)
        return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_EMBED_Q],
                         "quant.embed",
                         "token_embd has input width %d, not a multiple of "
                         "the %s block size %d",
                         m->d_model, e->name, eblock);
    char path[GMC_DIAG_PATH];
    if (m->ple_dim) {
        const dtype_info *t = dtype_by_id(m->ple_type);
        int32_t block = (int32_t)gmrt_dtype_block(t->id);
        if (m->ple_dim % block != 0)
            return fail_node(p, GMC_ERR_SEMANTIC,
                             p->at[p->q.ple >= 0 ? AT_PLE_Q : AT_EMBED_Q],
                             p->q.ple >= 0 ? "quant.ple" : "quant.embed",
                             "per_layer_token_embd rows are %d-wide "
                             "layer slices, not a multiple of the %s block "
                             "size %d",
                             m->ple_dim, t->name, block);
        t = dtype_by_id(m->ple_proj_type);
        block = (int32_t)gmrt_dtype_block(t->id);
        if (m->d_model % block != 0)
            return fail_node(p, GMC_ERR_SEMANTIC,
                             p->at[p->q.ple_proj >= 0 ? AT_PLE_PROJ_Q : AT_ATTN_Q],
                             p->q.ple_proj >= 0 ? "quant.ple_proj" : "quant.attn",
                             "per_layer_model_proj has input width %d, not a "
                             "multiple of the %s block size %d",
                             m->d_model, t->name, block);
    }
    for (int32_t i = 0; i < m->n_layers; i++) {
        const gmc_layer *l = &m->layers[i];
        for (int c = 0; c < GMC_W_COUNT; c++) {
            if (!gmc_layer_has(m, i, (gmc_wclass)c))
                continue;
            const dtype_info *t = dtype_by_id(l->wtype[c]);
            int32_t w = input_width(m, i, (gmc_wclass)c);
            GMC_ASSERT(t);
            int32_t block = (int32_t)gmrt_dtype_block(t->id);
            if (w % block == 0)
                continue;
            const gmc_ynode *at =
                type_source(p, i, (gmc_wclass)c, path, sizeof path);
            GMC_ASSERT(at); /* an f32 default never fails */
            return fail_node(p, GMC_ERR_SEMANTIC, at, path,
                             "%s in layer %d has input width %d, not a "
                             "multiple of the %s block size %d",
                             wclass_items[c].name, i, w, t->name, block);
        }
    }
    return GMC_OK;
}

/* ------------------------------------------------------------ expansion */

/* One gmc_layer per layer: kind from the pattern, dimensions copied, the
 * window and RoPE chosen by kind, types from class defaults, then
 * quant.tensors, then quant.overrides. */
static gmc_status expand_layers(parser *p)
{
    gmc_model *m = &p->m;
    m->embed_type = p->q.embed;
    m->kv_type = p->q.kv;
    m->layers = gmc_arena_array(p->a, (size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers)
        return gmc_fail(p->diag, GMC_ERR_NOMEM, "out of memory");
    m->ple_type = p->q.ple >= 0 ? p->q.ple : p->q.embed;
    m->ple_proj_type = p->q.ple_proj >= 0 ? p->q.ple_proj : p->q.attn;
    m->altup_type = p->q.altup;
    int32_t first_shared = m->n_layers - m->kv_shared_layers;
    for (int32_t i = 0; i < m->n_layers; i++) {
        gmc_layer *l = &m->layers[i];
        l->kind = m->pattern[i % m->pattern_len];
        bool local = l->kind == GMC_ATTN_LOCAL;
        l->n_heads = m->n_heads;
        l->n_kv_heads = local || !m->global.n_kv_heads ? m->n_kv_heads
                                                       : m->global.n_kv_heads;
        l->head_dim = local || !m->global.head_dim ? m->head_dim
                                                   : m->global.head_dim;
        l->k_eq_v = !local && m->global.k_eq_v;
        l->ffn_dim = i >= first_shared && m->ffn_dim_shared
                         ? m->ffn_dim_shared : m->ffn_dim;
        l->window = local ? m->window : 0;
        l->rope = local ? m->rope_local : m->rope_global;
        /* A shared layer reads the cache of the last layer of its kind
         * before the shared ones (docs/models.md, KV sharing). */
        l->kv_source = i;
        if (i >= first_shared) {
            l->kv_source = -1;
            for (int32_t j = first_shared - 1; j >= 0 && l->kv_source < 0; j--)
                if (m->layers[j].kind == l->kind)
                    l->kv_source = j;
            if (l->kv_source < 0)
                return fail_node(p, GMC_ERR_SEMANTIC, p->at[AT_KV_SHARED],
                                 "attention.kv_shared_layers",
                                 "layer %d shares K/V but no earlier layer "
                                 "of its kind (%s) computes them",
                                 i, local ? "local" : "global");
        }
        for (int c = 0; c < GMC_W_COUNT; c++) {
            int32_t t = c <= GMC_W_ATTN_OUTPUT ? p->q.attn : p->q.ffn;
            l->wtype[c] = p->q.tensors[c] >= 0 ? p->q.tensors[c] : t;
        }
    }
    GMC_TRY(apply_overrides(p));
    return check_widths(p);
}

/* ------------------------------------------------------------ public */

static uint64_t fnv1a64(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

gmc_status gmc_model_parse(const char *text, size_t len, const char *filename,
                           gmc_arena *a, gmc_model **out, gmc_diag *diag)
{
    *out = NULL;
    gmc_diag_clear(diag);
    if (!text) { /* treat as empty input rather than crash */
        text = "";
        len = 0;
    }
    const char *file = filename ? filename : "<input>";
    const gmc_ynode *root = NULL;
    GMC_TRY(gmc_yaml_parse(text, len, file, a, &root, diag));
    parser *p = gmc_arena_alloc(a, sizeof *p);
    if (!p)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    *p = (parser){.text = text, .len = len, .file = file, .a = a,
                  .diag = diag};
    gmc_family family;
    GMC_TRY(read_family(p, root, &family));
    set_defaults(p, family);
    GMC_TRY(walk_section(p, root, root, &root_section, (unsigned char *)p,
                         ""));
    GMC_TRY(check_shape(p));
    GMC_TRY(expand_layers(p));
    gmc_model *m = gmc_arena_alloc(a, sizeof *m);
    char *source = gmc_arena_strdup(a, file);
    if (!m || !source)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    *m = p->m;
    m->source = source;
    m->content_hash = fnv1a64(text, len);
    *out = m;
    return GMC_OK;
}

/* Reads at most GMC_YAML_MAX_BYTES + 1 bytes into the arena: one byte more
 * than allowed is enough to know that the file is too large, even when
 * fstat cannot tell (a pipe) or the file grows while being read. */
static gmc_status read_limited(const char *path, FILE *f, gmc_arena *a,
                               char **out, size_t *out_len, gmc_diag *diag)
{
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
        return gmc_fail_at(diag, GMC_ERR_IO, path, 0, 0, "",
                           "cannot read: it is a directory");
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
        (uintmax_t)st.st_size > GMC_YAML_MAX_BYTES)
        return gmc_fail_at(diag, GMC_ERR_LIMIT, path, 0, 0, "",
                           "the file is %jd bytes; the limit is %u bytes",
                           (intmax_t)st.st_size,
                           (unsigned)GMC_YAML_MAX_BYTES);
    size_t cap = (size_t)GMC_YAML_MAX_BYTES + 1;
    char *buf = gmc_arena_alloc(a, cap);
    if (!buf)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    size_t n = fread(buf, 1, cap, f);
    if (ferror(f))
        return gmc_fail_at(diag, GMC_ERR_IO, path, 0, 0, "",
                           "read error: %s", strerror(errno));
    if (n > GMC_YAML_MAX_BYTES)
        return gmc_fail_at(diag, GMC_ERR_LIMIT, path, 0, 0, "",
                           "the file is larger than the limit of %u bytes",
                           (unsigned)GMC_YAML_MAX_BYTES);
    *out = buf;
    *out_len = n;
    return GMC_OK;
}

gmc_status gmc_model_load(const char *path, gmc_arena *a, gmc_model **out,
                          gmc_diag *diag)
{
    *out = NULL;
    gmc_diag_clear(diag);
    FILE *f = fopen(path, "rb");
    if (!f)
        return gmc_fail_at(diag, GMC_ERR_IO, path, 0, 0, "",
                           "cannot open: %s", strerror(errno));
    char *text = NULL;
    size_t len = 0;
    gmc_status s = read_limited(path, f, a, &text, &len, diag);
    fclose(f);
    GMC_TRY(s);
    return gmc_model_parse(text, len, path, a, out, diag);
}

gmc_params gmc_model_param_counts(const gmc_model *m)
{
    uint64_t d = (uint64_t)m->d_model;
    gmc_params p = {0, 0, 0};
    p.total = (uint64_t)m->vocab * d; /* token_embd, also the LM head */
    p.total += d;                     /* output_norm */
    if (m->ple_dim) {
        uint64_t lp = (uint64_t)m->n_layers * (uint64_t)m->ple_dim;
        p.mapped = (uint64_t)m->ple_vocab * lp; /* per_layer_token_embd */
        p.total += lp * d + (uint64_t)m->ple_dim; /* model proj, its norm */
    }
    uint64_t inactive = 0;
    for (int32_t i = 0; i < m->n_layers; i++) {
        const gmc_layer *l = &m->layers[i];
        for (int c = 0; c < GMC_W_COUNT; c++) {
            if (!gmc_layer_has(m, i, (gmc_wclass)c))
                continue;
            int64_t ne[3];
            gmc_wclass_shape(m, i, (gmc_wclass)c, ne);
            uint64_t n = (uint64_t)ne[0] * (uint64_t)ne[1] * (uint64_t)ne[2];
            p.total += n;
            if (ne[2] > 1)
                inactive += n / (uint64_t)ne[2] *
                            (uint64_t)(m->n_experts - m->n_experts_used);
        }
        p.total += 2 * d;                        /* attn_norm, ffn_norm */
        if (m->post_norms)
            p.total += 2 * d; /* post_attention_norm, post_ffw_norm */
        if (m->qk_norm)
            p.total += (uint64_t)l->head_dim * (l->kv_source == i ? 2 : 1);
        if (m->layer_scale)
            p.total += 1;
        if (m->ple_dim)
            p.total += d; /* post_norm */
        if (m->n_experts) /* router, its scale, expert scales, 3 norms */
            p.total += d * (uint64_t)m->n_experts + d +
                       (uint64_t)m->n_experts + 3 * d;
        if (m->laurel_rank)
            p.total += d; /* laurel_post_norm */
        if (m->altup_streams) { /* router, its norm, coefficients, scale */
            uint64_t n = (uint64_t)m->altup_streams;
            p.total += d * n + d + n * n * n + n * n + d;
        }
    }
    if (m->altup_streams) /* altup_proj, altup_unembd_proj */
        p.total += 2 * (uint64_t)(m->altup_streams - 1) * d * d;
    p.total += p.mapped;
    p.active = p.total - p.mapped - inactive;
    return p;
}

uint64_t gmc_model_params(const gmc_model *m)
{
    return gmc_model_param_counts(m).total;
}
