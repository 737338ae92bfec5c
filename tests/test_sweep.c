/*
 * test_sweep.c — suite "sweep": the sweep file and `gemmac sweep`
 * (compiler/sweep.c, compiler/sweep_run.c, docs/experiments.md).
 *
 * The sweep file's refusals (each names its line), the expansion of a list
 * × grid into variants in order, and a variant's graph YAML (the base with
 * the overrides put in, read back by the graph front end).  Then the
 * command on tests/graphs/tiny.yaml for the generic target: three variants,
 * one invalid, tabulated as CSV and Markdown (and plotted when gnuplot is
 * installed); a second run measures nothing again; --emit writes a
 * build.ninja whose jobs (run by ninja when present, else one by one) and
 * --collect give the same table.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmk.h"
#include "model.h"
#include "driver.h"
#include "sweep.h"
#include "testutil.h"

/* ------------------------------------------------------------ the file */

static const char *const tiny = GMC_SOURCE_DIR "/tests/graphs/tiny.yaml";

/* Each bad sweep file, the line its error must name and a word of it. */
static const struct {
    const char *text;
    int line;
    const char *says;
} bad_files[] = {
    {"base: x.yaml\nbogus: 1\n", 2, "unknown key \"bogus\""},
    {"grid:\n  attention.kv_heads: [1, 2]\n", 1, "missing required key \"base\""},
    {"base: x.yaml\ngrid:\n  attention.kv_heads: 2\n", 3, "non-empty list"},
    {"base: x.yaml\ngrid:\n  attention..kv_heads: [1]\n", 3, "dotted path"},
    {"base: x.yaml\nset:\n  ffn.dim: 64\ngrid:\n  ffn.dim: [1]\n", 5, "already set by set"},
    {"base: x.yaml\nlist:\n  - {ffn.dim: 64}\n  - {name: a, \"a b\": 1}\n", 4, "dotted path"},
    {"base: x.yaml\nbench:\n  threads: [0]\n", 3, "integer in [1, 256]"},
    {"base: x.yaml\nbench:\n  gen: 0\n  prompt: 0\n", 3, "nothing to measure"},
    {"base: x.yaml\nbench:\n  warmup: 1\n", 3, "allowed keys: threads"},
    {"base: x.yaml\nseed: 010\n", 2, "integer"},
    {"base: x.yaml\nlist: []\n", 2, "non-empty list"},
    {"base: x.yaml\n  bad: [\n", 2, "syntax error"},
};

START_TEST(file_errors)
{
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        gmc_arena a;
        gmc_arena_init(&a);
        gmc_sweep *s;
        gmc_diag d;
        const char *t = bad_files[i].text;
        gmc_status st = gmc_sweep_parse(t, strlen(t), "s.yaml", &a, &s, &d);
        ck_assert_msg(st != GMC_OK, "case %zu was accepted", i);
        ck_assert_msg(strcmp(d.file, "s.yaml") == 0 && d.line == bad_files[i].line,
                      "case %zu: %s:%d: %s", i, d.file, d.line, d.msg);
        ck_assert_msg(strstr(d.msg, bad_files[i].says), "case %zu: %s", i, d.msg);
        gmc_arena_deinit(&a);
    }
}
END_TEST

/* Writes text to dir/name; returns the path (static, until the next call). */
static const char *put_file(const char *name, const char *text)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", gmc_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* list (2) × grid (2 × 3): twelve variants, the list slowest, then the
 * grid's first key; each variant's YAML reads back with its values. */
START_TEST(expansion)
{
    char text[1024];
    snprintf(text, sizeof text,
             "base: %s\nname: x\nset:\n  model.context: 128\n"
             "list:\n  - {name: f32}\n  - {quant.attn: q8_0, quant.tensors.attn_q: f32}\n"
             "grid:\n  attention.kv_heads: [1, 2]\n  ffn.dim: [64, 128, 256]\n", tiny);
    const char *path = put_file("expand.yaml", text);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_sweep *s;
    gmc_diag d;
    ck_assert_msg(gmc_sweep_load(path, &a, &s, &d) == GMC_OK, "%s", d.msg);
    ck_assert_uint_eq(s->n_variants, 12);
    ck_assert_str_eq(s->variants[0].name, "f32 kv_heads=1 dim=64");
    ck_assert_str_eq(s->variants[1].name, "f32 kv_heads=1 dim=128");
    ck_assert_str_eq(s->variants[3].name, "f32 kv_heads=2 dim=64");
    ck_assert_str_eq(s->variants[6].name, "attn=q8_0 attn_q=f32 kv_heads=1 dim=64");
    ck_assert_uint_eq(s->n_columns, 5); /* context, attn, attn_q, kv_heads, dim */
    ck_assert_int_eq(s->n_threads, 1);
    for (size_t i = 0; i < s->n_variants; i++) {
        gmc_strbuf b;
        gmc_strbuf_init(&b);
        ck_assert_int_eq(s->variants[i].index, (int)i + 1);
        ck_assert_msg(gmc_sweep_variant_yaml(s, &s->variants[i], &a, true, &b, &d) == GMC_OK,
                      "%s", d.msg);
        gmc_model *m;
        ck_assert_msg(gmc_model_parse(gmc_strbuf_str(&b), b.len, "v.yaml", &a, &m, &d) ==
                          GMC_OK, "variant %zu: %s\n%s", i, d.msg, gmc_strbuf_str(&b));
        ck_assert_int_eq(m->context, 128);
        ck_assert_int_eq(m->n_kv_heads, i % 6 < 3 ? 1 : 2);
        ck_assert_int_eq(m->ffn_dim, 64 << (i % 3));
        /* the second list entry: Q stays f32, K and V become q8_0 */
        ck_assert_int_eq(m->layers[0].wtype[GMC_W_ATTN_K], i < 6 ? GMK_DTYPE_F32
                                                                  : GMK_DTYPE_Q8_0);
        ck_assert_int_eq(m->layers[0].wtype[GMC_W_ATTN_Q], GMK_DTYPE_F32);
        /* the override's line in the sweep file is named beside it */
        ck_assert(strstr(gmc_strbuf_str(&b), "kv_heads: ") &&
                  strstr(gmc_strbuf_str(&b), "expand.yaml:9"));
        gmc_strbuf_deinit(&b);
    }
    gmc_arena_deinit(&a);
}
END_TEST

/* A path through a value that is not a mapping fails at the sweep line;
 * a bad value fails in the front end at the variant's line. */
START_TEST(variant_errors)
{
    char text[512];
    snprintf(text, sizeof text, "base: %s\ngrid:\n  model.name.x: [1]\n", tiny);
    const char *path = put_file("scalar.yaml", text);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_sweep *s;
    gmc_diag d;
    ck_assert_int_eq(gmc_sweep_load(path, &a, &s, &d), GMC_OK);
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    ck_assert_int_eq(gmc_sweep_variant_yaml(s, &s->variants[0], &a, false, &b, &d),
                     GMC_ERR_SCHEMA);
    ck_assert_int_eq(d.line, 3);
    ck_assert_msg(strstr(d.msg, "model.name is not a mapping"), "%s", d.msg);
    gmc_strbuf_reset(&b);
    snprintf(text, sizeof text, "base: %s\nlist:\n  - {attention.kv_heads: \"2\"}\n", tiny);
    path = put_file("quoted.yaml", text);
    ck_assert_int_eq(gmc_sweep_load(path, &a, &s, &d), GMC_OK);
    ck_assert_int_eq(gmc_sweep_variant_yaml(s, &s->variants[0], &a, false, &b, &d), GMC_OK);
    gmc_model *m;
    ck_assert_int_eq(gmc_model_parse(gmc_strbuf_str(&b), b.len, "v.yaml", &a, &m, &d),
                     GMC_ERR_SCHEMA); /* a quoted number is a string, as in a graph */
    ck_assert_msg(strstr(d.path, "attention.kv_heads"), "%s", d.path);
    gmc_strbuf_deinit(&b);
    gmc_arena_deinit(&a);
}
END_TEST

/* ------------------------------------------------------------ the command */

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool exists(const char *dir, const char *name)
{
    char p[4300];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && st.st_size > 0;
}

static char *read_in(const char *dir, const char *name)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *t = gmc_test_read_file(p, NULL);
    ck_assert_msg(t != NULL, "cannot read %s", p);
    return t;
}

static bool have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return run_cmd(cmd) == 0;
}

/* The CSV without its speed columns (they differ run to run): index,
 * variant, status, overrides and sizes of each row. */
static void csv_sizes(const char *csv, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *l = csv; *l;) {
        size_t n = strcspn(l, "\n"), o = strlen(out);
        const char *c = l;
        for (int k = 0; k < 12 && c < l + n; k++) /* index .. memory_bytes */
            c += strcspn(c, ",") + 1;
        snprintf(out + o, cap - o, "%.*s\n", (int)(c - l), l);
        l += n + (l[n] == '\n');
    }
}

/* The number in column `col` of the CSV row starting with `row` whose
 * threads column is `threads`; NAN if there is none or the cell is empty. */
static double csv_cell(const char *csv, const char *row, const char *col, int threads)
{
    int want = -1, thr = -1, k = 0;
    for (const char *c = csv; *c && *c != '\n'; k++) {
        size_t n = strcspn(c, ",\n");
        if (n == strlen(col) && !strncmp(c, col, n))
            want = k;
        if (n == 7 && !strncmp(c, "threads", 7))
            thr = k;
        c += n + (c[n] == ',');
    }
    ck_assert(want >= 0 && thr >= 0);
    for (const char *l = strstr(csv, row); l; l = strstr(l + 1, row)) {
        const char *c = l + 1;
        double v = NAN, t = -1;
        for (k = 0; *c && *c != '\n'; k++) {
            size_t n = strcspn(c, ",\n");
            if (k == thr)
                t = atof(c);
            if (k == want && n > 0)
                v = atof(c);
            c += n + (c[n] == ',');
        }
        if (t == threads)
            return v;
    }
    return NAN;
}

/* Three variants of tiny (kv_heads 1, 2, 3 of 2 heads: the last invalid),
 * two thread counts; a rerun; --emit and --collect. */
START_TEST(command_round_trip)
{
    const char *dir = gmc_test_tmpdir();
    char text[1024], cmd[8192], out[4200], emit[4200];
    snprintf(text, sizeof text,
             "base: %s\nname: tiny-kv\ntarget: generic\n"
             "grid:\n  attention.kv_heads: [1, 2, 3]\n"
             "bench:\n  threads: [1, 2]\n  prompt: 8\n  gen: 4\n  reps: 1\n", tiny);
    const char *sweep = put_file("tiny-kv.yaml", text);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(emit, sizeof emit, "%s/emit", dir);
    const char *env = "XDG_CACHE_HOME";
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    ck_assert_int_eq(setenv(env, cache, 1), 0);
    /* spelled otherwise than --emit's build.ninja does: the keys are the same */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sweep ./tiny-kv.yaml -o '%s' -j 2 --plot "
             "attention.kv_heads:kv_bytes_per_token 2>'%s/first.log'", dir, GMC_GEMMAC, out,
             dir);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *csv = read_in(out, "results.csv"), *md = read_in(out, "results.md");
    /* header, 2 variants x 2 thread counts, the invalid one once */
    ck_assert_msg(strncmp(csv, "index,variant,status,attention.kv_heads,params,", 46) == 0,
                  "%s", csv);
    ck_assert_ptr_nonnull(strstr(csv, "\n1,kv_heads=1,ok,1,"));
    ck_assert_ptr_nonnull(strstr(csv, "\n2,kv_heads=2,ok,2,"));
    ck_assert_msg(strstr(csv, "\n3,kv_heads=3,invalid,3,") &&
                  strstr(csv, "variants/v3.yaml:15:13: error: attention.kv_heads: kv_heads "
                         "(3) must divide heads (2)"), "%s", csv);
    int lines = 0;
    for (const char *p = csv; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 6);
    /* tiny: KV per token = 2 layers x (K + V) x kv_heads x 32 x 4 B */
    ck_assert_ptr_nonnull(strstr(csv, ",512,32768,"));
    ck_assert_ptr_nonnull(strstr(csv, ",1024,65536,"));
    ck_assert_msg(strstr(md, "| 1 | kv_heads=1 | 0.11 | 0.41 | 0.50 | 0.03 |") &&
                  strstr(md, "- 3 `kv_heads=3`: invalid: "), "%s", md);
    if (have("gnuplot")) {
        ck_assert(exists(out, "plots/speed-memory.png") && exists(out, "plots/speed-memory.svg"));
        ck_assert(exists(out, "plots/plot-attention_kv_heads-kv_bytes_per_token.png"));
        ck_assert(exists(out, "plots/plot-attention_kv_heads-kv_bytes_per_token.svg"));
    }
    /* the random weights go once measured */
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s/weights')\"", out);
    ck_assert_int_eq(run_cmd(cmd), 0);

    /* a rerun resumes: nothing is built or measured again */
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' 2>'%s/second.log'", GMC_GEMMAC, sweep,
             out, dir);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *log = read_in(dir, "second.log"), *csv2 = read_in(out, "results.csv");
    ck_assert_msg(!strstr(log, "[build") && !strstr(log, "[bench") &&
                  strstr(log, "2 of 3 variants measured"), "%s", log);
    ck_assert_str_eq(csv, csv2);

    /* --collect with a hand-written machine profile: each measured row gets
     * the prediction worked out here from tiny.yaml (as in the bench suite:
     * kv_heads=1 decode reads 4 x (64 x 512 + 2 x per layer + 64) bytes of
     * f32 weights and 512 B of KV per position; tg4 attends 2.5 on average)
     * and the ratio measured / predicted. */
    char prof[4200]; /* put_file's buffer still holds the sweep's path */
    snprintf(prof, sizeof prof, "%s/hand-machine.txt", dir);
    FILE *pf = fopen(prof, "w");
    ck_assert_ptr_nonnull(pf);
    fputs("target generic\nthreads 1\nread_gbs 8\nint8_gops 50\nbf16_gflops 20\n"
          "f32_gflops 10\ndecode_efficiency 0.5\nprefill_efficiency 0.25\n", pf);
    ck_assert_int_eq(fclose(pf), 0);
    snprintf(cmd, sizeof cmd, "'%s' sweep --collect '%s' --machine '%s' 2>/dev/null",
             GMC_GEMMAC, out, prof);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *csvp = read_in(out, "results.csv"), *mdp = read_in(out, "results.md");
    double per_layer = 4 * 64 + 2 * 32 + 2 * 4096 + 2 * 2048 + 3 * 8192;
    double tg_pred = 8e9 * 0.5 / (4 * (64 * 512 + 2 * per_layer + 64) + 512 * 2.5);
    double pred = csv_cell(csvp, "\n1,kv_heads=1,ok,1,", "tg_tps_predicted", 1);
    ck_assert_msg(fabs(pred - tg_pred) < 0.006, "predicted %.3f, by hand %.3f", pred, tg_pred);
    double ratio = csv_cell(csvp, "\n1,kv_heads=1,ok,1,", "tg_ratio", 1);
    double tg = csv_cell(csvp, "\n1,kv_heads=1,ok,1,", "tg_tps_median", 1);
    ck_assert_msg(fabs(ratio - tg / pred) < 2e-3 * ratio + 1e-3, "ratio %g", ratio);
    /* the profile has no 2-thread section: no prediction there */
    ck_assert(isnan(csv_cell(csvp, "\n1,kv_heads=1,ok,1,", "tg_tps_predicted", 2)));
    ck_assert_msg(strstr(mdp, "hand-machine.txt") && strstr(mdp, "| tg predicted | ratio |"),
                  "%s", mdp);
    free(csvp), free(mdp);
    snprintf(cmd, sizeof cmd, "printf 'threads 1\\nread_gbs\\n' > '%s/broken.txt' && "
             "'%s' sweep --collect '%s' --machine '%s/broken.txt' 2>'%s/broken.log'", dir,
             GMC_GEMMAC, out, dir, dir);
    ck_assert_int_eq(run_cmd(cmd), 1);
    char *blog = read_in(dir, "broken.log");
    ck_assert_msg(strstr(blog, "broken.txt:2: read_gbs has no value"), "%s", blog);
    free(blog);

    /* --emit: one job per variant; run by ninja, or by hand */
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --emit '%s' 2>/dev/null", GMC_GEMMAC, sweep,
             emit);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *ninja = read_in(emit, "build.ninja");
    ck_assert_ptr_nonnull(strstr(ninja, "--one $index"));
    if (have("ninja"))
        snprintf(cmd, sizeof cmd, "ninja -C '%s' >'%s/ninja.log' 2>&1", emit, dir);
    else
        snprintf(cmd, sizeof cmd, "for i in 1 2 3; do '%s' sweep '%s' --one $i -o '%s' || "
                 "exit 1; done 2>/dev/null && '%s' sweep --collect '%s' 2>/dev/null",
                 GMC_GEMMAC, sweep, emit, GMC_GEMMAC, emit);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *csv3 = read_in(emit, "results.csv");
    char a[4096], b[4096];
    csv_sizes(csv, a, sizeof a);
    csv_sizes(csv3, b, sizeof b);
    ck_assert_str_eq(a, b);
    /* --collect again on its own gives the same file */
    snprintf(cmd, sizeof cmd, "'%s' sweep --collect '%s' 2>/dev/null", GMC_GEMMAC, emit);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *csv4 = read_in(emit, "results.csv");
    ck_assert_str_eq(csv3, csv4);
    free(csv), free(md), free(log), free(csv2), free(ninja), free(csv3), free(csv4);
}
END_TEST

/* weights: and eval: — every variant runs the same GGUF (converted at load
 * where its types differ) and is scored on a text: the f32 variant's
 * perplexity is what `gemmac eval -f` reports for those weights, and the
 * q8_0 one (converted) is close to it but not equal; the weights are kept. */
START_TEST(command_real_weights_and_eval)
{
    const char *dir = gmc_test_tmpdir();
    char w[4200], txt[4200], text[2048], cmd[16000], out[4200];
    snprintf(w, sizeof w, "%s/tiny-real.gguf", dir);
    snprintf(out, sizeof out, "%s/real-out", dir);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_init_weights(tiny, w, 11, false, &d) == GMC_OK);
    snprintf(txt, sizeof txt, "%s", put_file("ppl.txt", "the cat sat on the mat and the dog "
                                             "sat on the log; the cat and the dog sat.\n"));
    snprintf(text, sizeof text,
             "base: %s\nname: tiny-real\ntarget: generic\nweights: %s\n"
             "eval: {text: ppl.txt, ctx: 16}\ngrid:\n  quant.ffn: [f32, q8_0]\n"
             "bench:\n  threads: [1]\n  prompt: 4\n  gen: 2\n  reps: 1\n", tiny, w);
    const char *sweep = put_file("tiny-real.yaml", text);
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    ck_assert_int_eq(setenv("XDG_CACHE_HOME", cache, 1), 0);
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' 2>'%s/real.log'", GMC_GEMMAC, sweep,
             out, dir);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *csv = read_in(out, "results.csv");
    double p32 = csv_cell(csv, "\n1,ffn=f32,ok,", "ppl", 1);
    double p8 = csv_cell(csv, "\n2,ffn=q8_0,ok,", "ppl", 1);
    snprintf(cmd, sizeof cmd, "'%s' eval '%s' --target generic --weights '%s' -f '%s' "
             "--ctx 16 -t 1 -o json > '%s/ppl.json' 2>/dev/null", GMC_GEMMAC, tiny, w, txt,
             dir);
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *js = read_in(dir, "ppl.json");
    const char *at = strstr(js, "\"ppl\": ");
    ck_assert_ptr_nonnull(at);
    double want = atof(at + 7);
    ck_assert_msg(fabs(p32 - want) < 1e-4 * want, "sweep ppl %.6f, eval %.6f\n%s", p32, want,
                  csv);
    ck_assert_msg(p8 > 0 && p8 != p32 && fabs(p8 - p32) < 0.05 * p32, "q8_0 ppl %.6f", p8);
    struct stat sb;
    ck_assert_int_eq(stat(w, &sb), 0);
    free(csv), free(js);
}
END_TEST

/* Bad command lines are usage errors (2); a bad sweep file is 1 with the
 * file and line. */
START_TEST(command_errors)
{
    const char *dir = gmc_test_tmpdir();
    char cmd[4600];
    static const char *const bad[] = {"", "s.yaml --one 0", "s.yaml -j x", "--collect",
                                      "s.yaml --emit a --one 1", "s.yaml --frob"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' sweep %s 2>/dev/null", GMC_GEMMAC, bad[i]);
        ck_assert_msg(run_cmd(cmd) == 2, "%s", bad[i]);
    }
    const char *path = put_file("bad.yaml", "base: x.yaml\ngrid: {a.b: 1}\n");
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' 2>'%s/bad.log'", GMC_GEMMAC, path, dir);
    ck_assert_int_eq(run_cmd(cmd), 1);
    char *log = read_in(dir, "bad.log");
    ck_assert_msg(strstr(log, "bad.yaml:2:") && strstr(log, "non-empty list"), "%s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "'%s' sweep --collect '%s/nowhere' 2>/dev/null", GMC_GEMMAC, dir);
    ck_assert_int_eq(run_cmd(cmd), 1);
}
END_TEST

Suite *sweep_suite(void)
{
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("sweep");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, expansion);
    tcase_add_test(tc, variant_errors);
    tcase_add_test(tc, command_errors);
    tcase_add_test(tc, command_round_trip);
    tcase_add_test(tc, command_real_weights_and_eval);
    suite_add_tcase(s, tc);
    return s;
}
