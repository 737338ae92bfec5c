/*
 * test_frontend.c — the YAML front end: yaml_io limits and refusals, the
 * model schema (model.c), the expansion of layers and quantization, and
 * gmc_diag printing.
 *
 * Error tests edit one line of a small valid graph (BASE) and compare the
 * whole first line that gmc_diag_print writes: file, line, column, key path
 * and message together, so a wrong position or path fails as loudly as a
 * wrong text.  Positive tests load every graph in graphs/ and check expanded
 * layers and parameter counts against numbers taken from the real files.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmk.h"
#include "model.h"
#include "testutil.h"
#include "yaml_io.h"

/* A valid tiny graph; the comments are its line numbers, which the error
 * tests below refer to. */
static const char BASE[] =
    "model:\n"                     /* 1 */
    "  name: t\n"                  /* 2 */
    "  family: gemma3\n"           /* 3 */
    "  vocab: 512\n"               /* 4 */
    "  d_model: 64\n"              /* 5 */
    "  layers: 2\n"                /* 6 */
    "  context: 64\n"              /* 7 */
    "attention:\n"                 /* 8 */
    "  heads: 2\n"                 /* 9 */
    "  kv_heads: 1\n"              /* 10 */
    "  head_dim: 32\n"             /* 11 */
    "  window: 8\n"                /* 12 */
    "layers:\n"                    /* 13 */
    "  pattern: [local, global]\n" /* 14 */
    "ffn:\n"                       /* 15 */
    "  dim: 128\n"                 /* 16 */
    "quant:\n"                     /* 17 */
    "  embed: f32\n"               /* 18 */
    "  attn: f32\n"                /* 19 */
    "  ffn: f32\n"                 /* 20 */
    "  kv_cache: f32\n";           /* 21 */

/* ------------------------------------------------------------ helpers */

/* Everything gmc_diag_print writes, in a static buffer. */
static const char *printed(const gmc_diag *d)
{
    static char buf[8192];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ck_assert_ptr_nonnull(f);
    gmc_diag_print(d, f);
    fclose(f);
    return buf;
}

/* The first line of gmc_diag_print's output, without the newline. */
static const char *first_line(const gmc_diag *d)
{
    static char line[4096];
    const char *all = printed(d);
    size_t n = strcspn(all, "\n");
    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, all, n);
    line[n] = '\0';
    return line;
}

static gmc_diag last; /* diagnostic of the latest parse_text call */

/* Parses text as "t.yaml"; returns the status and leaves the diagnostic
 * in `last`.  The arena is freed before returning (ASan checks leaks). */
static gmc_status parse_text(const char *text, size_t len)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m = (gmc_model *)1;
    gmc_status s = gmc_model_parse(text, len, "t.yaml", &a, &m, &last);
    if (s == GMC_OK)
        ck_assert_ptr_nonnull(m);
    else
        ck_assert_ptr_null(m);
    gmc_arena_deinit(&a);
    return s;
}

/* src with its one occurrence of `from` replaced by `to` (malloc'd). */
static char *edit_in(const char *src, const char *from, const char *to)
{
    const char *at = strstr(src, from);
    ck_assert_msg(at != NULL, "test bug: \"%s\" not found", from);
    ck_assert_msg(strstr(at + 1, from) == NULL, "test bug: \"%s\" twice",
                  from);
    size_t pre = (size_t)(at - src);
    size_t n = strlen(src) - strlen(from) + strlen(to);
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, src, pre);
    strcpy(s + pre, to);
    strcat(s, at + strlen(from));
    return s;
}

static char *edit(const char *from, const char *to)
{
    return edit_in(BASE, from, to);
}

/* Parses BASE with one edit and checks the status and the first printed
 * line of the diagnostic. */
#define EXPECT_EDIT(from, to, status, line)                                   \
    do {                                                                      \
        char *text_ = edit(from, to);                                         \
        gmc_status s_ = parse_text(text_, strlen(text_));                     \
        free(text_);                                                          \
        ck_assert_str_eq(first_line(&last), line);                            \
        ck_assert_int_eq(s_, status);                                         \
    } while (0)

#define EXPECT_EDIT_OK(from, to)                                              \
    do {                                                                      \
        char *text_ = edit(from, to);                                         \
        gmc_status s_ = parse_text(text_, strlen(text_));                     \
        free(text_);                                                          \
        ck_assert_msg(s_ == GMC_OK, "%s", first_line(&last));                 \
    } while (0)

#define EXPECT_TEXT(text, status, line)                                       \
    do {                                                                      \
        gmc_status s_ = parse_text(text, strlen(text));                       \
        ck_assert_str_eq(first_line(&last), line);                            \
        ck_assert_int_eq(s_, status);                                         \
    } while (0)

/* Runs gmc_yaml_parse alone (no schema) on text. */
static gmc_status yaml_only(const char *text, size_t len)
{
    gmc_arena a;
    gmc_arena_init(&a);
    const gmc_ynode *root = NULL;
    gmc_status s = gmc_yaml_parse(text, len, "t.yaml", &a, &root, &last);
    ck_assert(s == GMC_OK ? root != NULL : root == NULL);
    gmc_arena_deinit(&a);
    return s;
}

/* A string of n copies of unit followed by tail (malloc'd). */
static char *repeat(const char *head, const char *unit, size_t n,
                    const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + ul * n, tail, tl + 1);
    return s;
}

/* Loads a checked-in graph; the caller deinits the arena. */
static gmc_model *load_graph(const char *rel, gmc_arena *a)
{
    gmc_model *m = NULL;
    gmc_diag d;
    gmc_arena_init(a);
    gmc_status s = gmc_model_load(gmc_test_src(rel), a, &m, &d);
    ck_assert_msg(s == GMC_OK, "%s: %s", rel, printed(&d));
    return m;
}

/* ------------------------------------------------------------ yaml_io */

START_TEST(syntax_error)
{
    EXPECT_EDIT("  pattern: [local, global]", "  pattern: [local, global",
                GMC_ERR_SYNTAX,
                "t.yaml:15:4: error: syntax error: did not find expected "
                "',' or ']' (while parsing a flow sequence at line 14, "
                "column 12)");
    EXPECT_EDIT("  heads: 2", "  heads: 2: 3", GMC_ERR_SYNTAX,
                "t.yaml:9:11: error: syntax error: mapping values are not "
                "allowed in this context");
}
END_TEST

START_TEST(control_character)
{
    EXPECT_EDIT("  name: t", "  name: t\x01", GMC_ERR_SYNTAX,
                "t.yaml:2:10: error: invalid text: control characters are "
                "not allowed (byte 0x01)");
}
END_TEST

START_TEST(document_too_large)
{
    size_t n = GMC_YAML_MAX_BYTES + 1;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    gmc_status s = parse_text(big, n);
    free(big);
    ck_assert_int_eq(s, GMC_ERR_LIMIT);
    ck_assert_str_eq(first_line(&last),
                     "t.yaml: error: the file is 1048577 bytes; the limit "
                     "is 1048576 bytes");
}
END_TEST

START_TEST(load_too_large)
{
    const char *dir = gmc_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (unsigned i = 0; i <= GMC_YAML_MAX_BYTES; i++)
        fputc('#', f);
    fclose(f);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m = NULL;
    gmc_diag d;
    ck_assert_int_eq(gmc_model_load(path, &a, &m, &d), GMC_ERR_LIMIT);
    char want[4400];
    snprintf(want, sizeof want,
             "%s: error: the file is 1048577 bytes; the limit is 1048576 "
             "bytes",
             path);
    ck_assert_str_eq(first_line(&d), want);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(load_missing_file)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m = NULL;
    gmc_diag d;
    ck_assert_int_eq(gmc_model_load("/nonexistent/x.yaml", &a, &m, &d),
                     GMC_ERR_IO);
    ck_assert_str_eq(first_line(&d), "/nonexistent/x.yaml: error: cannot "
                                     "open: No such file or directory");
    ck_assert_ptr_null(m);
    /* Check 37 where fstat cannot give the size: read one byte past the
     * cap, then refuse. */
    ck_assert_int_eq(gmc_model_load("/dev/zero", &a, &m, &d), GMC_ERR_LIMIT);
    ck_assert_str_eq(first_line(&d), "/dev/zero: error: the file is larger than "
                                     "the limit of 1048576 bytes");
    ck_assert_int_eq(gmc_model_load(gmc_test_tmpdir(), &a, &m, &d), GMC_ERR_IO);
    ck_assert_msg(strstr(first_line(&d), "error: cannot read: it is a directory"), "%s",
                  first_line(&d));
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(too_deep)
{
    /* The root mapping plus 31 sequences is 32 levels: allowed. */
    char *ok = repeat("a: ", "[", 31, "");
    char *okc = repeat(ok, "]", 31, "\n");
    ck_assert_int_eq(yaml_only(okc, strlen(okc)), GMC_OK);
    free(ok);
    free(okc);
    /* The 32nd bracket would open level 33: refused at column 3 + 32. */
    char *open = repeat("a: ", "[", 40, "");
    char *deep = repeat(open, "]", 40, "\n");
    char *path = repeat("a", "[0]", 31, "");
    char want[512];
    snprintf(want, sizeof want,
             "t.yaml:1:35: error: %s: nesting is deeper than 32 levels",
             path);
    EXPECT_TEXT(deep, GMC_ERR_LIMIT, want);
    free(open);
    free(deep);
    free(path);
}
END_TEST

START_TEST(deep_nesting_attack)
{
    /* 200,000 open brackets (CVE-2026-33532 style) stop at level 33. */
    char *deep = repeat("", "[", 200000, "");
    ck_assert_int_eq(yaml_only(deep, strlen(deep)), GMC_ERR_LIMIT);
    ck_assert_int_eq(last.line, 1);
    ck_assert_int_eq(last.col, 33);
    free(deep);
}
END_TEST

START_TEST(too_many_events)
{
    /* A flow sequence of n scalars is n + 6 events (stream, document and
     * sequence start and end). */
    char *ok = repeat("[", "0,", GMC_YAML_MAX_EVENTS - 7, "0]");
    ck_assert_int_eq(yaml_only(ok, strlen(ok)), GMC_OK);
    free(ok);
    /* Event 100001 is scalar index 99997, at column 2 + 2 * 99997. */
    char *many = repeat("[", "0,", GMC_YAML_MAX_EVENTS, "0]");
    ck_assert_int_eq(yaml_only(many, strlen(many)), GMC_ERR_LIMIT);
    ck_assert_str_eq(first_line(&last),
                     "t.yaml:1:199996: error: [99997]: more than 100000 YAML "
                     "events (nodes and collection ends); the document is "
                     "too complex");
    free(many);
}
END_TEST

START_TEST(scalar_too_long)
{
    char *ok = repeat("a: ", "x", GMC_YAML_MAX_SCALAR, "\n");
    ck_assert_int_eq(yaml_only(ok, strlen(ok)), GMC_OK);
    free(ok);
    char *big = repeat("a: ", "x", GMC_YAML_MAX_SCALAR + 1, "\n");
    ck_assert_int_eq(yaml_only(big, strlen(big)), GMC_ERR_LIMIT);
    ck_assert_str_eq(first_line(&last),
                     "t.yaml:1:4: error: a: scalar is 65537 bytes long; the "
                     "limit is 65536 bytes");
    free(big);
}
END_TEST

START_TEST(alias_refused)
{
    EXPECT_EDIT("  heads: 2", "  heads: *h", GMC_ERR_SYNTAX,
                "t.yaml:9:10: error: attention.heads: aliases are not "
                "allowed (found *h)");
}
END_TEST

START_TEST(anchor_refused)
{
    EXPECT_EDIT("  heads: 2", "  heads: &h 2", GMC_ERR_SYNTAX,
                "t.yaml:9:10: error: attention.heads: anchors are not "
                "allowed (found &h)");
    /* On a collection and on a key too. */
    EXPECT_EDIT("attention:\n", "attention: &a\n", GMC_ERR_SYNTAX,
                "t.yaml:8:12: error: attention: anchors are not allowed "
                "(found &a)");
    EXPECT_EDIT("  heads: 2", "  &k heads: 2", GMC_ERR_SYNTAX,
                "t.yaml:9:3: error: attention.heads: anchors are not "
                "allowed (found &k)");
}
END_TEST

START_TEST(tag_refused)
{
    EXPECT_EDIT("  heads: 2", "  heads: !!int 2", GMC_ERR_SYNTAX,
                "t.yaml:9:10: error: attention.heads: tags are not allowed "
                "(found tag:yaml.org,2002:int)");
    EXPECT_EDIT("  pattern: [local, global]", "  pattern: !seq [local]",
                GMC_ERR_SYNTAX,
                "t.yaml:14:12: error: layers.pattern: tags are not allowed "
                "(found !seq)");
}
END_TEST

START_TEST(two_documents)
{
    char *text = repeat(BASE, "", 0, "---\nmodel: {}\n");
    EXPECT_TEXT(text, GMC_ERR_SYNTAX,
                "t.yaml:22:1: error: a second YAML document starts here; a "
                "graph file holds exactly one");
    free(text);
}
END_TEST

START_TEST(no_document)
{
    EXPECT_TEXT("", GMC_ERR_SYNTAX,
                "t.yaml: error: the file holds no YAML document");
    EXPECT_TEXT("# only a comment\n", GMC_ERR_SYNTAX,
                "t.yaml: error: the file holds no YAML document");
}
END_TEST

START_TEST(non_scalar_key)
{
    EXPECT_EDIT("  heads: 2", "  [heads]: 2", GMC_ERR_SYNTAX,
                "t.yaml:9:3: error: attention: mapping keys must be "
                "scalars, found a sequence");
    EXPECT_EDIT("  heads: 2", "  ? {a: 1}\n  : 2", GMC_ERR_SYNTAX,
                "t.yaml:9:5: error: attention: mapping keys must be "
                "scalars, found a mapping");
}
END_TEST

START_TEST(duplicate_key)
{
    EXPECT_EDIT("  kv_heads: 1\n", "  kv_heads: 1\n  heads: 4\n",
                GMC_ERR_SCHEMA,
                "t.yaml:11:3: error: attention.heads: duplicate key "
                "\"heads\" (first defined at line 9)");
    /* Quoting does not make a key different; nor does the top level
     * escape the check. */
    EXPECT_EDIT("  heads: 2", "  heads: 2\n  \"heads\": 2", GMC_ERR_SCHEMA,
                "t.yaml:10:3: error: attention.heads: duplicate key "
                "\"heads\" (first defined at line 9)");
    char *text = repeat(BASE, "", 0, "ffn: {dim: 128}\n");
    EXPECT_TEXT(text, GMC_ERR_SCHEMA,
                "t.yaml:22:1: error: ffn: duplicate key \"ffn\" (first "
                "defined at line 15)");
    free(text);
}
END_TEST

/* ------------------------------------------------------------ schema */

START_TEST(base_is_valid)
{
    ck_assert_int_eq(parse_text(BASE, strlen(BASE)), GMC_OK);
}
END_TEST

START_TEST(unknown_keys)
{
    char *root = repeat(BASE, "", 0, "extra: 1\n");
    EXPECT_TEXT(root, GMC_ERR_SCHEMA,
                "t.yaml:22:1: error: extra: unknown key \"extra\"; allowed "
                "keys: model, attention, layers, ffn, output, ple, moe, altup, laurel, quant");
    free(root);
    /* Check 42: no key names a file (weights, tokenizer, includes). */
    root = repeat(BASE, "", 0, "weights: /etc/passwd\n");
    EXPECT_TEXT(root, GMC_ERR_SCHEMA,
                "t.yaml:22:1: error: weights: unknown key \"weights\"; allowed "
                "keys: model, attention, layers, ffn, output, ple, moe, altup, laurel, quant");
    free(root);
    EXPECT_EDIT("  name: t", "  nme: t", GMC_ERR_SCHEMA,
                "t.yaml:2:3: error: model.nme: unknown key \"nme\"; allowed "
                "keys: name, family, vocab, d_model, layers, context, "
                "norm_eps, tied_embeddings, embed_scale");
    EXPECT_EDIT("  heads: 2", "  heads: 2\n  sliding: 4", GMC_ERR_SCHEMA,
                "t.yaml:10:3: error: attention.sliding: unknown key "
                "\"sliding\"; allowed keys: heads, kv_heads, head_dim, "
                "query_scale, qk_norm, softcap, window, rope, value_norm, "
                "global, kv_shared_layers");
    EXPECT_EDIT("  window: 8", "  window: 8\n  rope: {local: {base: 1}}",
                GMC_ERR_SCHEMA,
                "t.yaml:13:18: error: attention.rope.local.base: unknown "
                "key \"base\"; allowed keys: theta, scale, fraction");
    EXPECT_EDIT("  window: 8", "  window: 8\n  rope: {middle: {}}",
                GMC_ERR_SCHEMA,
                "t.yaml:13:10: error: attention.rope.middle: unknown key "
                "\"middle\"; allowed keys: local, global");
    EXPECT_EDIT("  pattern: [local, global]",
                "  pattern: [local, global]\n  count: 2", GMC_ERR_SCHEMA,
                "t.yaml:15:3: error: layers.count: unknown key \"count\"; "
                "allowed keys: pattern, output_scale");
    EXPECT_EDIT("  dim: 128", "  dim: 128\n  act: gelu", GMC_ERR_SCHEMA,
                "t.yaml:17:3: error: ffn.act: unknown key \"act\"; allowed "
                "keys: dim, activation, shared_dim, sparsity, sparse_layers");
    char *out = repeat(BASE, "", 0, "output: {softcap: 3}\n");
    EXPECT_TEXT(out, GMC_ERR_SCHEMA,
                "t.yaml:22:10: error: output.softcap: unknown key "
                "\"softcap\"; allowed keys: post_norms, final_softcap");
    free(out);
    EXPECT_EDIT("  ffn: f32", "  mlp: f32", GMC_ERR_SCHEMA,
                "t.yaml:20:3: error: quant.mlp: unknown key \"mlp\"; "
                "allowed keys: embed, attn, ffn, kv_cache, ple, ple_proj, "
                "altup, tensors, overrides");
    EXPECT_EDIT("  kv_cache: f32", "  kv_cache: f32\n  tensors: {wq: f16}",
                GMC_ERR_SCHEMA,
                "t.yaml:22:13: error: quant.tensors.wq: unknown key \"wq\"; "
                "allowed keys: attn_q, attn_k, attn_v, attn_output, "
                "ffn_gate, ffn_up, ffn_down, inp_gate, proj, ffn_gate_up_exps, "
                "ffn_down_exps, laurel_l, laurel_r");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: attn_v, layers: [0], type: f16, why: x}",
                GMC_ERR_SCHEMA,
                "t.yaml:23:48: error: quant.overrides[0].why: unknown key "
                "\"why\"; allowed keys: tensor, layers, type");
}
END_TEST

START_TEST(missing_keys)
{
    EXPECT_EDIT("  heads: 2\n", "", GMC_ERR_SCHEMA,
                "t.yaml:8:1: error: attention: missing required key "
                "\"heads\"");
    EXPECT_EDIT("ffn:\n  dim: 128\n", "", GMC_ERR_SCHEMA,
                "t.yaml:1:1: error: missing required key \"ffn\"");
    EXPECT_EDIT("  family: gemma3\n", "", GMC_ERR_SCHEMA,
                "t.yaml:1:1: error: model: missing required key \"family\"");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n    - {tensor: attn_v, "
                "type: f16}",
                GMC_ERR_SCHEMA,
                "t.yaml:23:7: error: quant.overrides[0]: missing required "
                "key \"layers\"");
    /* window is required only when a layer is local. */
    EXPECT_EDIT("  window: 8\n", "", GMC_ERR_SCHEMA,
                "t.yaml:8:1: error: attention: missing required key "
                "\"window\" (layers.pattern has local layers)");
}
END_TEST

START_TEST(window_optional_for_global_only)
{
    char *w = edit("  window: 8\n", "");
    char *a = edit_in(w, "[local, global]", "[global]");
    free(w);
    gmc_arena ar;
    gmc_arena_init(&ar);
    gmc_model *m = NULL;
    ck_assert_int_eq(gmc_model_parse(a, strlen(a), "t.yaml", &ar, &m, &last),
                     GMC_OK);
    ck_assert_int_eq(m->window, 0);
    ck_assert_int_eq(m->layers[0].kind, GMC_ATTN_GLOBAL);
    ck_assert_int_eq(m->layers[1].window, 0);
    gmc_arena_deinit(&ar);
    free(a);
}
END_TEST

START_TEST(wrong_types)
{
    EXPECT_EDIT("  heads: 2", "  heads: {a: 1}", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got a mapping");
    EXPECT_EDIT("  heads: 2", "  heads: [2]", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got a sequence");
    EXPECT_EDIT("  heads: 2", "  heads:", GMC_ERR_SCHEMA,
                "t.yaml:9:9: error: attention.heads: expected an integer "
                "in [1, 1024], got an empty value");
    EXPECT_EDIT("layers:\n  pattern: [local, global]\n", "layers: 3\n",
                GMC_ERR_SCHEMA,
                "t.yaml:13:9: error: layers: expected a mapping, got \"3\"");
    EXPECT_EDIT("  pattern: [local, global]", "  pattern: local",
                GMC_ERR_SCHEMA,
                "t.yaml:14:12: error: layers.pattern: expected a non-empty "
                "sequence of local and global, got \"local\"");
    EXPECT_EDIT("  pattern: [local, global]", "  pattern: []",
                GMC_ERR_SCHEMA,
                "t.yaml:14:12: error: layers.pattern: expected a non-empty "
                "sequence of local and global, got an empty sequence");
    EXPECT_EDIT("  heads: 2", "  heads: \"2\"", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got the quoted string \"2\"");
}
END_TEST

START_TEST(integer_errors)
{
    EXPECT_EDIT("  heads: 2", "  heads: two", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got \"two\"");
    EXPECT_EDIT("  heads: 2", "  heads: 2.0", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got \"2.0\"");
    EXPECT_EDIT("  heads: 2", "  heads: 0x2", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got \"0x2\"");
    EXPECT_EDIT("  vocab: 512", "  vocab: 99999999999999999999",
                GMC_ERR_SCHEMA,
                "t.yaml:4:10: error: model.vocab: expected an integer in "
                "[256, 1048576], got \"99999999999999999999\"");
    EXPECT_EDIT("  layers: 2", "  layers: 2000", GMC_ERR_SCHEMA,
                "t.yaml:6:11: error: model.layers: expected an integer in "
                "[1, 1024], got \"2000\"");
    EXPECT_EDIT("  vocab: 512", "  vocab: 255", GMC_ERR_SCHEMA,
                "t.yaml:4:10: error: model.vocab: expected an integer in "
                "[256, 1048576], got \"255\"");
    EXPECT_EDIT("  heads: 2", "  heads: -2", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer "
                "in [1, 1024], got \"-2\"");
    EXPECT_EDIT("  head_dim: 32", "  head_dim: 1026", GMC_ERR_SCHEMA,
                "t.yaml:11:13: error: attention.head_dim: expected an "
                "integer in [2, 1024], got \"1026\"");
    EXPECT_EDIT("  context: 64", "  context: 1048577", GMC_ERR_SCHEMA,
                "t.yaml:7:12: error: model.context: expected an integer in "
                "[1, 1048576], got \"1048577\"");
    EXPECT_EDIT("  d_model: 64", "  d_model: 65537", GMC_ERR_SCHEMA,
                "t.yaml:5:12: error: model.d_model: expected an integer in "
                "[1, 65536], got \"65537\"");
}
END_TEST

START_TEST(float_errors)
{
    EXPECT_EDIT("  context: 64", "  context: 64\n  norm_eps: 1e999",
                GMC_ERR_SCHEMA,
                "t.yaml:8:13: error: model.norm_eps: expected "
                "a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \"1e999\"");
    EXPECT_EDIT("  context: 64", "  context: 64\n  norm_eps: .inf",
                GMC_ERR_SCHEMA,
                "t.yaml:8:13: error: model.norm_eps: expected "
                "a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \".inf\"");
    EXPECT_EDIT("  context: 64", "  context: 64\n  norm_eps: nan",
                GMC_ERR_SCHEMA,
                "t.yaml:8:13: error: model.norm_eps: expected "
                "a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \"nan\"");
    EXPECT_EDIT("  context: 64", "  context: 64\n  norm_eps: 0",
                GMC_ERR_SCHEMA,
                "t.yaml:8:13: error: model.norm_eps: expected "
                "a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \"0\"");
    EXPECT_EDIT("  window: 8", "  window: 8\n  softcap: -1", GMC_ERR_SCHEMA,
                "t.yaml:13:12: error: attention.softcap: expected "
                "a number >= 0 that an f32 holds (at most 3.4e38), got \"-1\"");
    /* a leading zero: octal to YAML 1.1, decimal to 1.2 */
    EXPECT_EDIT("  heads: 2", "  heads: 010", GMC_ERR_SCHEMA,
                "t.yaml:9:10: error: attention.heads: expected an integer without a leading zero (YAML 1.1 reads 010 as octal 8, YAML 1.2 as 10), got \"010\"");
    EXPECT_EDIT("  layers: 2", "  layers: 02", GMC_ERR_SCHEMA,
                "t.yaml:6:11: error: model.layers: expected an integer without a leading zero (YAML 1.1 reads 010 as octal 8, YAML 1.2 as 10), got \"02\"");
    /* in range for a double, not for the f32 the kernels use */
    EXPECT_EDIT("  context: 64", "  context: 64\n  norm_eps: 1e39", GMC_ERR_SCHEMA,
                "t.yaml:8:13: error: model.norm_eps: expected a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \"1e39\"");
    EXPECT_EDIT("  window: 8", "  window: 8\n  rope: {global: {theta: 1e-300}}",
                GMC_ERR_SCHEMA,
                "t.yaml:13:26: error: attention.rope.global.theta: expected "
                "a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \"1e-300\"");
    EXPECT_EDIT("  window: 8", "  window: 8\n  query_scale: 1e308", GMC_ERR_SCHEMA,
                "t.yaml:13:16: error: attention.query_scale: expected a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), got \"1e308\"");
    EXPECT_EDIT("  window: 8", "  window: 8\n  rope: {global: {theta: 1e6x}}",
                GMC_ERR_SCHEMA,
                "t.yaml:13:26: error: attention.rope.global.theta: expected "
                "a number > 0 that an f32 holds (at most 3.4e38, not rounding to 0), "
                "got \"1e6x\"");
}
END_TEST

START_TEST(bool_enum_name_errors)
{
    EXPECT_EDIT("  window: 8", "  window: 8\n  qk_norm: yes", GMC_ERR_SCHEMA,
                "t.yaml:13:12: error: attention.qk_norm: expected true or "
                "false, got \"yes\"");
    EXPECT_EDIT("  family: gemma3", "  family: gemma5", GMC_ERR_SCHEMA,
                "t.yaml:3:11: error: model.family: expected one of gemma, "
                "gemma2, gemma3, gemma3n, gemma4, got \"gemma5\"");
    EXPECT_EDIT("  pattern: [local, global]", "  pattern: [local, glob]",
                GMC_ERR_SCHEMA,
                "t.yaml:14:20: error: layers.pattern[1]: expected one of "
                "local, global, got \"glob\"");
    EXPECT_EDIT("  dim: 128", "  dim: 128\n  activation: relu",
                GMC_ERR_SCHEMA,
                "t.yaml:17:15: error: ffn.activation: expected gelu_tanh, "
                "got \"relu\"");
    EXPECT_EDIT("  name: t", "  name: 3x", GMC_ERR_SCHEMA,
                "t.yaml:2:9: error: model.name: expected a C identifier "
                "([A-Za-z_][A-Za-z0-9_]*, at most 64 characters), got "
                "\"3x\"");
    EXPECT_EDIT("  name: t", "  name: \"a;b\"", GMC_ERR_SCHEMA,
                "t.yaml:2:9: error: model.name: expected a C identifier "
                "([A-Za-z_][A-Za-z0-9_]*, at most 64 characters), got the "
                "quoted string \"a;b\"");
    /* 64 characters are fine, 65 are not. */
    char *n64 = repeat("  name: ", "a", 64, "");
    char *t64 = edit("  name: t", n64);
    ck_assert_int_eq(parse_text(t64, strlen(t64)), GMC_OK);
    char *n65 = repeat("  name: ", "a", 65, "");
    char *t65 = edit("  name: t", n65);
    ck_assert_int_eq(parse_text(t65, strlen(t65)), GMC_ERR_SCHEMA);
    ck_assert_str_eq(last.path, "model.name");
    ck_assert_int_eq(last.line, 2);
    free(n64);
    free(t64);
    free(n65);
    free(t65);
}
END_TEST

START_TEST(dtype_errors)
{
    EXPECT_EDIT("  kv_cache: f32", "  kv_cache: q8_0", GMC_ERR_SCHEMA,
                "t.yaml:21:13: error: quant.kv_cache: expected one of f32, "
                "f16, got \"q8_0\"");
    EXPECT_EDIT("  attn: f32", "  attn: q3_k", GMC_ERR_SCHEMA,
                "t.yaml:19:9: error: quant.attn: expected one of f32, f16, "
                "bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, got "
                "\"q3_k\"");
    EXPECT_EDIT("  embed: f32", "  embed: int8", GMC_ERR_SCHEMA,
                "t.yaml:18:10: error: quant.embed: expected one of f32, "
                "f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, "
                "got \"int8\"");
}
END_TEST

/* ------------------------------------------------------------ cross-field */

START_TEST(kv_heads_must_divide)
{
    EXPECT_EDIT("  heads: 2\n  kv_heads: 1", "  heads: 4\n  kv_heads: 3",
                GMC_ERR_SEMANTIC,
                "t.yaml:10:13: error: attention.kv_heads: kv_heads (3) must "
                "divide heads (4)");
}
END_TEST

START_TEST(head_dim_even)
{
    EXPECT_EDIT("  head_dim: 32", "  head_dim: 31", GMC_ERR_SEMANTIC,
                "t.yaml:11:13: error: attention.head_dim: head_dim must be "
                "even (RoPE rotates pairs), got 31");
}
END_TEST

START_TEST(window_within_context)
{
    EXPECT_EDIT("  window: 8", "  window: 65", GMC_ERR_SEMANTIC,
                "t.yaml:12:11: error: attention.window: window (65) must "
                "not exceed model.context (64)");
    EXPECT_EDIT_OK("  window: 8", "  window: 64");
}
END_TEST

START_TEST(untied_refused)
{
    EXPECT_EDIT("  context: 64", "  context: 64\n  tied_embeddings: false",
                GMC_ERR_SEMANTIC,
                "t.yaml:8:20: error: model.tied_embeddings: untied output "
                "head is not supported yet");
}
END_TEST

START_TEST(pattern_longer_than_layers)
{
    EXPECT_EDIT("  pattern: [local, global]",
                "  pattern: [local, global, local]", GMC_ERR_SEMANTIC,
                "t.yaml:14:12: error: layers.pattern: the pattern has 3 "
                "entries but the model has only 2 layers");
    /* Check 41: a list is bounded before the arrays built from it. */
    char *pat = repeat("  pattern: [", "local, ", 1024, "local]");
    EXPECT_EDIT("  pattern: [local, global]", pat, GMC_ERR_SCHEMA,
                "t.yaml:14:12: error: layers.pattern: expected at most 1024 "
                "entries, got 1025");
    free(pat);
}
END_TEST

START_TEST(quant_block_widths)
{
    /* q4_k on d_model 640: the Gemma 3 270M case llama.cpp falls back on. */
    EXPECT_EDIT_OK("  d_model: 64\n", "  d_model: 640\n");
    char *d640 = edit("  d_model: 64\n", "  d_model: 640\n");
    char *t = edit_in(d640, "  attn: f32", "  attn: q4_k");
    free(d640);
    EXPECT_TEXT(t, GMC_ERR_SEMANTIC,
                "t.yaml:19:9: error: quant.attn: attn_q in layer 0 has "
                "input width 640, not a multiple of the q4_k block size 256");
    free(t);
    EXPECT_EDIT("  embed: f32", "  embed: q4_k", GMC_ERR_SEMANTIC,
                "t.yaml:18:10: error: quant.embed: token_embd has input "
                "width 64, not a multiple of the q4_k block size 256");
    /* attn_output is as wide as heads * head_dim (64), ffn_down as ffn. */
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  tensors: {attn_output: q6_k}",
                GMC_ERR_SEMANTIC,
                "t.yaml:22:26: error: quant.tensors.attn_output: "
                "attn_output in layer 0 has input width 64, not a multiple "
                "of the q6_k block size 256");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: ffn_down, layers: [1], type: q5_k}",
                GMC_ERR_SEMANTIC,
                "t.yaml:23:45: error: quant.overrides[0].type: ffn_down in "
                "layer 1 has input width 128, not a multiple of the q5_k "
                "block size 256");
    EXPECT_EDIT_OK("  ffn: f32", "  ffn: q4_0");
}
END_TEST

START_TEST(override_layers)
{
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: attn_v, layers: [0, 1], type: q8_0}\n"
                "    - {tensor: attn_q, layers: [1, 2], type: q8_0}",
                GMC_ERR_SEMANTIC,
                "t.yaml:24:36: error: quant.overrides[1].layers[1]: layer 2 "
                "does not exist: the model has 2 layers (0..1)");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: attn_v, layers: [0, 1], type: q8_0}\n"
                "    - {tensor: attn_v, layers: [1], type: f16}",
                GMC_ERR_SEMANTIC,
                "t.yaml:24:33: error: quant.overrides[1].layers[0]: layer 1 "
                "already has an override for attn_v (line 23)");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: attn_v, layers: [0, 0], type: q8_0}",
                GMC_ERR_SEMANTIC,
                "t.yaml:23:36: error: quant.overrides[0].layers[1]: layer 0 "
                "already has an override for attn_v (line 23)");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: attn_v, layers: [-1], type: q8_0}",
                GMC_ERR_SCHEMA,
                "t.yaml:23:33: error: quant.overrides[0].layers[0]: expected "
                "an integer in [0, 1023], got \"-1\"");
    EXPECT_EDIT("  kv_cache: f32",
                "  kv_cache: f32\n  overrides:\n"
                "    - {tensor: attn_w, layers: [0], type: q8_0}",
                GMC_ERR_SCHEMA,
                "t.yaml:23:16: error: quant.overrides[0].tensor: expected "
                "one of attn_q, attn_k, attn_v, attn_output, ffn_gate, "
                "ffn_up, ffn_down, inp_gate, proj, ffn_gate_up_exps, "
                "ffn_down_exps, laurel_l, laurel_r, got \"attn_w\"");
}
END_TEST

/* ------------------------------------------------------------ results */

START_TEST(defaults_gemma3)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m = NULL;
    ck_assert_int_eq(gmc_model_parse(BASE, strlen(BASE), "t.yaml", &a, &m,
                                     &last),
                     GMC_OK);
    ck_assert_str_eq(m->name, "t");
    ck_assert_str_eq(m->source, "t.yaml");
    ck_assert_int_eq(m->family, GMC_FAMILY_GEMMA3);
    ck_assert(m->norm_eps == 1e-6);
    ck_assert(m->tied_embeddings);
    ck_assert_int_eq(m->embed_scale, GMC_EMBED_SCALE_BF16);
    ck_assert(m->query_scale == 1.0 / sqrt(32.0));
    ck_assert(m->qk_norm);
    ck_assert(m->post_norms);
    ck_assert(m->attn_softcap == 0 && m->final_softcap == 0);
    ck_assert(m->rope_local.theta == 1e4 && m->rope_local.scale == 1);
    ck_assert(m->rope_global.theta == 1e6 && m->rope_global.scale == 1);
    ck_assert_int_eq(m->embed_type, GMK_DTYPE_F32);
    ck_assert_int_eq(m->kv_type, GMK_DTYPE_F32);
    ck_assert_int_eq(m->pattern_len, 2);
    ck_assert_int_eq(m->layers[0].kind, GMC_ATTN_LOCAL);
    ck_assert_int_eq(m->layers[0].window, 8);
    ck_assert(m->layers[0].rope.theta == 1e4);
    ck_assert_int_eq(m->layers[1].kind, GMC_ATTN_GLOBAL);
    ck_assert_int_eq(m->layers[1].window, 0);
    ck_assert(m->layers[1].rope.theta == 1e6);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(defaults_by_family)
{
    char *g2 = edit("  family: gemma3", "  family: gemma2");
    char *g1 = edit("  family: gemma3", "  family: gemma");
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m2 = NULL, *m1 = NULL;
    ck_assert_int_eq(gmc_model_parse(g2, strlen(g2), "t", &a, &m2, &last),
                     GMC_OK);
    ck_assert_int_eq(gmc_model_parse(g1, strlen(g1), "t", &a, &m1, &last),
                     GMC_OK);
    ck_assert(!m2->qk_norm && m2->post_norms);
    ck_assert(m2->attn_softcap == 50 && m2->final_softcap == 30);
    ck_assert(m2->rope_global.theta == 1e4);
    ck_assert(!m1->qk_norm && !m1->post_norms);
    ck_assert(m1->attn_softcap == 0 && m1->final_softcap == 0);
    gmc_arena_deinit(&a);
    free(g2);
    free(g1);
}
END_TEST

START_TEST(explicit_values_win)
{
    char *t = edit("  window: 8", "  window: 8\n  query_scale: 0.125\n"
                                  "  qk_norm: false\n  softcap: 20\n"
                                  "  rope:\n    global: {theta: 5e5, "
                                  "scale: 8}");
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m = NULL;
    ck_assert_int_eq(gmc_model_parse(t, strlen(t), "t", &a, &m, &last),
                     GMC_OK);
    ck_assert(m->query_scale == 0.125);
    ck_assert(!m->qk_norm);
    ck_assert(m->attn_softcap == 20);
    ck_assert(m->rope_global.theta == 5e5 && m->rope_global.scale == 8);
    ck_assert(m->layers[1].rope.scale == 8);
    ck_assert(m->rope_local.theta == 1e4); /* untouched default */
    gmc_arena_deinit(&a);
    free(t);
}
END_TEST

/* The real gemma-3-270m-q4_k_m.gguf, tensor by tensor (read once with the
 * gguf Python package): the types of attn_q, attn_k, attn_v, attn_output,
 * ffn_gate, ffn_up and ffn_down in each of the 18 layers. */
START_TEST(graph_gemma3_270m)
{
    static const int special[18] = {1, 1, 0, 0, 1, 0, 0, 1, 0,
                                    0, 1, 0, 0, 1, 0, 1, 1, 1};
    gmc_arena a;
    gmc_model *m = load_graph("graphs/gemma3-270m.yaml", &a);
    ck_assert_str_eq(m->name, "gemma3_270m");
    ck_assert_int_eq(m->n_layers, 18);
    ck_assert_int_eq(m->embed_type, GMK_DTYPE_Q8_0);
    ck_assert_int_eq(m->kv_type, GMK_DTYPE_F16);
    ck_assert_int_eq(m->embed_scale, GMC_EMBED_SCALE_BF16);
    for (int l = 0; l < 18; l++) {
        const gmc_layer *y = &m->layers[l];
        bool global = (l + 1) % 6 == 0;
        ck_assert_int_eq(y->kind, global ? GMC_ATTN_GLOBAL : GMC_ATTN_LOCAL);
        ck_assert_int_eq(y->window, global ? 0 : 512);
        ck_assert(y->rope.theta == (global ? 1e6 : 1e4));
        ck_assert_int_eq(y->wtype[GMC_W_ATTN_Q], GMK_DTYPE_Q5_0);
        ck_assert_int_eq(y->wtype[GMC_W_ATTN_K], GMK_DTYPE_Q5_0);
        ck_assert_int_eq(y->wtype[GMC_W_ATTN_V],
                         special[l] ? GMK_DTYPE_Q8_0 : GMK_DTYPE_Q5_0);
        ck_assert_int_eq(y->wtype[GMC_W_ATTN_OUTPUT], GMK_DTYPE_Q4_K);
        ck_assert_int_eq(y->wtype[GMC_W_FFN_GATE], GMK_DTYPE_Q5_0);
        ck_assert_int_eq(y->wtype[GMC_W_FFN_UP], GMK_DTYPE_Q5_0);
        ck_assert_int_eq(y->wtype[GMC_W_FFN_DOWN],
                         special[l] ? GMK_DTYPE_Q6_K : GMK_DTYPE_Q4_K);
        ck_assert_int_eq(y->n_heads, 4);
        ck_assert_int_eq(y->n_kv_heads, 1);
        ck_assert_int_eq(y->head_dim, 256);
        ck_assert_int_eq(y->ffn_dim, 2048);
    }
    /*
     * From the GGUF's 236 tensor shapes: token_embd 262144*640 =
     * 167,772,160; per layer attn_q 640*1024 + attn_k 640*256 + attn_v
     * 640*256 + attn_output 1024*640 + 3 FFN 640*2048 = 5,570,560, plus
     * norms 4*640 + 2*256 = 3,072, so 5,573,632 * 18 = 100,325,376;
     * output_norm 640.  Total 268,098,176, the sum of the file's tensors.
     */
    ck_assert_uint_eq(gmc_model_params(m), 268098176u);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(graph_gemma_2b_7b)
{
    gmc_arena a;
    gmc_model *m = load_graph("graphs/gemma-2b.yaml", &a);
    ck_assert_int_eq(m->family, GMC_FAMILY_GEMMA);
    ck_assert(!m->qk_norm && !m->post_norms);
    ck_assert_int_eq(m->window, 0);
    for (int l = 0; l < m->n_layers; l++)
        ck_assert_int_eq(m->layers[l].kind, GMC_ATTN_GLOBAL);
    ck_assert_int_eq(m->layers[17].wtype[GMC_W_FFN_DOWN], GMK_DTYPE_F16);
    /*
     * token_embd 256000*2048 = 524,288,000; per layer attn_q 2048*2048 +
     * attn_k/v 2*2048*256 + attn_output 2048*2048 + FFN 3*2048*16384 =
     * 110,100,480, plus attn_norm and ffn_norm 4,096: 110,104,576 * 18 =
     * 1,981,882,368; output_norm 2048.  Total 2,506,172,416 (spec: 2.51 B).
     */
    ck_assert_uint_eq(gmc_model_params(m), 2506172416u);
    gmc_arena_deinit(&a);
    m = load_graph("graphs/gemma-7b.yaml", &a);
    ck_assert_int_eq(m->n_kv_heads, 16);
    ck_assert_int_eq(m->layers[27].n_kv_heads, 16);
    ck_assert_int_eq(m->n_heads * m->head_dim, 4096);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(graph_gemma2)
{
    gmc_arena a;
    gmc_model *m = load_graph("graphs/gemma2-2b.yaml", &a);
    ck_assert_int_eq(m->layers[0].kind, GMC_ATTN_LOCAL);
    ck_assert_int_eq(m->layers[0].window, 4096);
    ck_assert_int_eq(m->layers[1].kind, GMC_ATTN_GLOBAL);
    ck_assert_int_eq(m->layers[25].kind, GMC_ATTN_GLOBAL);
    ck_assert(m->attn_softcap == 50 && m->final_softcap == 30);
    ck_assert(m->layers[0].rope.theta == 1e4);
    ck_assert(m->layers[1].rope.theta == 1e4);
    ck_assert_int_eq(m->n_kv_heads, 4);
    gmc_arena_deinit(&a);
    m = load_graph("graphs/gemma2-9b.yaml", &a);
    ck_assert_int_eq(m->n_layers, 42);
    ck_assert_int_eq(m->d_model, 3584);
    ck_assert_int_eq(m->layers[40].kind, GMC_ATTN_LOCAL);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(graph_gemma3_1b_and_tiny)
{
    gmc_arena a;
    gmc_model *m = load_graph("graphs/gemma3-1b.yaml", &a);
    ck_assert_int_eq(m->d_model, 1152);
    ck_assert_int_eq(m->ffn_dim, 6912);
    ck_assert_int_eq(m->layers[23].kind, GMC_ATTN_GLOBAL);
    ck_assert_int_eq(m->layers[25].kind, GMC_ATTN_LOCAL);
    gmc_arena_deinit(&a);
    m = load_graph("tests/graphs/tiny.yaml", &a);
    ck_assert_str_eq(m->name, "tiny");
    ck_assert_int_eq(m->layers[0].wtype[GMC_W_FFN_UP], GMK_DTYPE_F32);
    ck_assert_int_eq(m->kv_type, GMK_DTYPE_F32);
    gmc_arena_deinit(&a);
    m = load_graph("tests/graphs/tiny-q.yaml", &a);
    ck_assert_str_eq(m->name, "tiny_q");
    ck_assert_int_eq(m->embed_type, GMK_DTYPE_Q8_0);
    for (int c = 0; c < GMC_W_COUNT; c++)
        ck_assert_int_eq(m->layers[1].wtype[c], GMK_DTYPE_Q8_0);
    ck_assert_int_eq(m->kv_type, GMK_DTYPE_F16);
    gmc_arena_deinit(&a);
}
END_TEST

/* The Gemma 3n / 4 keys: each cross-field error at the key to change. */
START_TEST(gemma4_key_errors)
{
    EXPECT_EDIT("  window: 8", "  window: 8\n  global: {kv_heads: 3}", GMC_ERR_SEMANTIC,
                "t.yaml:13:22: error: attention.global.kv_heads: kv_heads (3) must divide heads (2)");
    EXPECT_EDIT("  window: 8", "  window: 8\n  kv_shared_layers: 2", GMC_ERR_SEMANTIC,
                "t.yaml:13:21: error: attention.kv_shared_layers: 2 KV-shared layers leave no layer to compute K/V (the model has 2 layers)");
    EXPECT_EDIT("  window: 8", "  window: 8\n  kv_shared_layers: 1", GMC_ERR_SEMANTIC,
                "t.yaml:13:21: error: attention.kv_shared_layers: layer 1 shares K/V but no earlier layer of its kind (global) computes them");
    EXPECT_EDIT("  dim: 128", "  dim: 128\nmoe: {experts: 2, top_k: 3, dim: 8}",
                GMC_ERR_SEMANTIC, "t.yaml:17:26: error: moe.top_k: top_k (3) must not exceed experts (2)");
    EXPECT_EDIT("  dim: 128", "  dim: 128\naltup: {streams: 4, active: 4}", GMC_ERR_SEMANTIC,
                "t.yaml:17:29: error: altup.active: active (4) must be a stream below streams (4)");
    EXPECT_EDIT("  dim: 128", "  dim: 128\n  sparsity: 1.5\n  sparse_layers: 1",
                GMC_ERR_SEMANTIC, "t.yaml:17:13: error: ffn.sparsity: sparsity must be below 1, got 1.5");
    EXPECT_EDIT("  window: 8", "  window: 8\n  rope: {global: {fraction: 1.5}}",
                GMC_ERR_SEMANTIC, "t.yaml:13:29: error: attention.rope.global.fraction: the share of pairs that rotate must be in (0, 1], got 1.5");
    EXPECT_EDIT("  dim: 128", "  dim: 128\nple: {dim: 0}", GMC_ERR_SCHEMA, "t.yaml:17:12: error: ple.dim: expected an integer in [1, 65536], got \"0\"");
}
END_TEST

/* A Gemma 4 graph expands into per-layer shapes: global layers' head_dim,
 * KV heads and K = V, the KV-shared layers' sources and wider FFN, and the
 * family's defaults. */
START_TEST(gemma4_expansion)
{
    gmc_arena a;
    gmc_model *m = load_graph("tests/graphs/gemma4-tiny.yaml", &a);
    ck_assert_int_eq(m->family, GMC_FAMILY_GEMMA4);
    ck_assert(m->value_norm && m->layer_scale && !m->norm_plus_one);
    ck_assert(m->query_scale == 1.0 && m->final_softcap == 5.0);
    /* pattern local x3, global; 6 layers; the last 2 share K/V */
    ck_assert_int_eq(m->layers[3].kind, GMC_ATTN_GLOBAL);
    ck_assert_int_eq(m->layers[3].head_dim, 32);
    ck_assert_int_eq(m->layers[3].n_kv_heads, 1);
    ck_assert(m->layers[3].k_eq_v && !m->layers[2].k_eq_v);
    ck_assert_int_eq(m->layers[2].head_dim, 16);
    ck_assert_int_eq(m->layers[2].n_kv_heads, 3);
    ck_assert_int_eq(m->layers[3].kv_source, 3);
    ck_assert_int_eq(m->layers[4].kv_source, 2); /* local: layer 2 */
    ck_assert_int_eq(m->layers[5].kv_source, 2);
    ck_assert_int_eq(m->layers[3].ffn_dim, 96);
    ck_assert_int_eq(m->layers[4].ffn_dim, 192);
    ck_assert(m->layers[3].rope.fraction == 0.25 && m->layers[0].rope.fraction == 1.0);
    ck_assert(!gmc_layer_has(m, 4, GMC_W_ATTN_K) && !gmc_layer_has(m, 3, GMC_W_ATTN_V));
    ck_assert(gmc_layer_has(m, 3, GMC_W_ATTN_K) && gmc_layer_has(m, 0, GMC_W_ATTN_V));
    gmc_params pc = gmc_model_param_counts(m);
    ck_assert_uint_eq(pc.mapped, 512u * 6u * 16u); /* the per-layer table */
    ck_assert(pc.active < pc.total - pc.mapped);   /* 2 of 6 experts */
    gmc_arena_deinit(&a);
    m = load_graph("tests/graphs/gemma3n-tiny.yaml", &a);
    ck_assert_int_eq(m->family, GMC_FAMILY_GEMMA3N);
    ck_assert(m->value_norm && !m->layer_scale && !m->norm_plus_one);
    ck_assert_int_eq(m->altup_streams, 4);
    ck_assert(m->altup_coef_clip == 120.0 && m->altup_correct_scale);
    ck_assert_int_eq(m->laurel_rank, 8);
    ck_assert_int_eq(m->ffn_sparse_layers, 2);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(content_hash)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m1 = NULL, *m2 = NULL;
    ck_assert_int_eq(gmc_model_parse(BASE, strlen(BASE), "t", &a, &m1, &last),
                     GMC_OK);
    /* FNV-1a 64 of BASE, computed independently in Python. */
    ck_assert_uint_eq(m1->content_hash, 0xd17314693809d1b6ull);
    char *t = edit("  dim: 128", "  dim: 129");
    ck_assert_int_eq(gmc_model_parse(t, strlen(t), "t", &a, &m2, &last),
                     GMC_OK);
    ck_assert_uint_ne(m1->content_hash, m2->content_hash);
    free(t);
    gmc_arena_deinit(&a);
}
END_TEST

START_TEST(wclass_names)
{
    ck_assert_str_eq(gmc_wclass_name(GMC_W_ATTN_Q), "attn_q");
    ck_assert_str_eq(gmc_wclass_name(GMC_W_ATTN_OUTPUT), "attn_output");
    ck_assert_str_eq(gmc_wclass_name(GMC_W_FFN_DOWN), "ffn_down");
    ck_assert_str_eq(gmc_wclass_name(GMC_W_COUNT), "?");
}
END_TEST

/* ------------------------------------------------------------ printing */

START_TEST(diag_print_caret)
{
    char *t = edit("  kv_heads: 1", "  kv_heads: 0");
    ck_assert_int_eq(parse_text(t, strlen(t)), GMC_ERR_SCHEMA);
    free(t);
    ck_assert_str_eq(printed(&last),
                     "t.yaml:10:13: error: attention.kv_heads: expected an "
                     "integer in [1, 1024], got \"0\"\n"
                     "   10 |   kv_heads: 0\n"
                     "      |             ^\n");
    /* A tab before the column is echoed so the caret stays aligned. */
    gmc_diag d;
    gmc_fail_at(&d, GMC_ERR_SCHEMA, "f", 3, 3, "", "bad");
    snprintf(d.src, sizeof d.src, "\tx");
    ck_assert_str_eq(printed(&d), "f:3:3: error: bad\n"
                                  "    3 | \tx\n"
                                  "      | \t ^\n");
    gmc_fail(&d, GMC_ERR_ARG, "no file here %d", 7);
    ck_assert_str_eq(printed(&d), "error: no file here 7\n");
}
END_TEST

START_TEST(source_line)
{
    char out[8];
    const char *text = "ab\r\ncd\ref\nlong line here";
    gmc_yaml_source_line(text, strlen(text), 1, out, sizeof out);
    ck_assert_str_eq(out, "ab");
    gmc_yaml_source_line(text, strlen(text), 2, out, sizeof out);
    ck_assert_str_eq(out, "cd");
    gmc_yaml_source_line(text, strlen(text), 3, out, sizeof out);
    ck_assert_str_eq(out, "ef");
    gmc_yaml_source_line(text, strlen(text), 4, out, sizeof out);
    ck_assert_str_eq(out, "long li"); /* cut to the buffer */
    gmc_yaml_source_line(text, strlen(text), 5, out, sizeof out);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ------------------------------------------------------------ robustness */

/* Every prefix of a real graph parses or fails cleanly with a message. */
START_TEST(truncated_inputs)
{
    size_t len = 0;
    char *text = gmc_test_read_file(gmc_test_src("graphs/gemma3-270m.yaml"),
                                    &len);
    ck_assert_ptr_nonnull(text);
    for (size_t n = 0; n < len; n++) {
        gmc_status s = parse_text(text, n);
        if (s == GMC_OK)
            continue; /* e.g. a cut after a complete optional section */
        ck_assert_int_eq(last.status, s);
        ck_assert_msg(last.msg[0] != '\0', "empty message at %zu", n);
        ck_assert_int_ge(last.line, 0);
    }
    ck_assert_int_eq(parse_text(text, len), GMC_OK);
    free(text);
}
END_TEST

/* Random bytes and random YAML-ish tokens never crash the front end. */
START_TEST(garbage_inputs)
{
    static const char *const tokens[] = {
        "model:", "  ", "\n", "- ", "[", "]", "{", "}", ",", ":", "&a ",
        "*a", "!!str ", "\"", "'", "#", "heads: ", "4", "-1", "? ", "---\n",
        "|\n", ">\n", "\t", "\xff", "\xc3\xa9", "%YAML 1.1\n", "layers:",
    };
    uint64_t x = 0x9e3779b97f4a7c15ull; /* fixed seed: reproducible */
    char buf[512];
    for (int round = 0; round < 600; round++) {
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t want = (size_t)(x % 400);
        while (n < want) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (round % 2 == 0) {
                buf[n++] = (char)(x & 0xFF);
            } else {
                const char *t = tokens[x % (sizeof tokens / sizeof *tokens)];
                size_t tl = strlen(t);
                if (n + tl > sizeof buf)
                    break;
                memcpy(buf + n, t, tl);
                n += tl;
            }
        }
        gmc_status s = parse_text(buf, n);
        ck_assert_int_ne(s, GMC_OK);
        ck_assert_msg(last.msg[0] != '\0', "round %d: no message", round);
        ck_assert_int_ge(last.line, 0);
    }
}
END_TEST

Suite *frontend_suite(void)
{
    Suite *s = suite_create("frontend");
    TCase *y = tcase_create("yaml_io");
    tcase_add_test(y, syntax_error);
    tcase_add_test(y, control_character);
    tcase_add_test(y, document_too_large);
    tcase_add_test(y, load_too_large);
    tcase_add_test(y, load_missing_file);
    tcase_add_test(y, too_deep);
    tcase_add_test(y, deep_nesting_attack);
    tcase_add_test(y, too_many_events);
    tcase_add_test(y, scalar_too_long);
    tcase_add_test(y, alias_refused);
    tcase_add_test(y, anchor_refused);
    tcase_add_test(y, tag_refused);
    tcase_add_test(y, two_documents);
    tcase_add_test(y, no_document);
    tcase_add_test(y, non_scalar_key);
    tcase_add_test(y, duplicate_key);
    tcase_add_test(y, source_line);
    suite_add_tcase(s, y);

    TCase *c = tcase_create("schema");
    tcase_add_test(c, base_is_valid);
    tcase_add_test(c, unknown_keys);
    tcase_add_test(c, missing_keys);
    tcase_add_test(c, window_optional_for_global_only);
    tcase_add_test(c, wrong_types);
    tcase_add_test(c, integer_errors);
    tcase_add_test(c, float_errors);
    tcase_add_test(c, bool_enum_name_errors);
    tcase_add_test(c, dtype_errors);
    tcase_add_test(c, kv_heads_must_divide);
    tcase_add_test(c, head_dim_even);
    tcase_add_test(c, window_within_context);
    tcase_add_test(c, untied_refused);
    tcase_add_test(c, pattern_longer_than_layers);
    tcase_add_test(c, quant_block_widths);
    tcase_add_test(c, override_layers);
    suite_add_tcase(s, c);

    TCase *r = tcase_create("results");
    tcase_add_test(r, defaults_gemma3);
    tcase_add_test(r, defaults_by_family);
    tcase_add_test(r, explicit_values_win);
    tcase_add_test(r, graph_gemma3_270m);
    tcase_add_test(r, graph_gemma_2b_7b);
    tcase_add_test(r, graph_gemma2);
    tcase_add_test(r, graph_gemma3_1b_and_tiny);
    tcase_add_test(r, gemma4_key_errors);
    tcase_add_test(r, gemma4_expansion);
    tcase_add_test(r, content_hash);
    tcase_add_test(r, wclass_names);
    tcase_add_test(r, diag_print_caret);
    suite_add_tcase(s, r);

    TCase *g = tcase_create("robustness");
    tcase_set_timeout(g, 60);
    tcase_add_test(g, truncated_inputs);
    tcase_add_test(g, garbage_inputs);
    suite_add_tcase(s, g);
    return s;
}
