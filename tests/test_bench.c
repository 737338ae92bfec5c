/*
 * test_bench.c — suite "bench": runtime/tools/bench.c and `gemmac bench`.
 *
 * The cost model (bytes a decode step reads, ops a prefill does) on small
 * hand-made manifests whose sums are worked out here by hand; then the
 * command on tests/graphs/tiny.yaml with gemmac init weights: its JSON must
 * hold every test at every thread count, with rates, byte and op counts and
 * fractions that agree with the tiny model's dimensions (computed here from
 * tiny.yaml, not from the program) and with each other; CSV and table
 * outputs and bad options are checked too.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "driver.h"
#include "gmrt_tools.h"
#include "testutil.h"

/* d_model 32; Q has 64 rows (2 heads x 16), K 32 rows; FFN 64. */
static gmk_tensor toy[] = {
    {"token_embd.weight", GMK_DTYPE_F32, 2, {32, 100, 1, 1}, GMK_LAYOUT_PACKED},      /* 12800 B */
    {"blk.0.attn_norm.weight", GMK_DTYPE_F32, 1, {32, 1, 1, 1}, GMK_LAYOUT_PACKED},   /* 128 B */
    {"blk.0.attn_q.weight", GMK_DTYPE_Q8_0, 2, {32, 64, 1, 1}, GMK_LAYOUT_PACKED},    /* 64 x 34 B */
    {"blk.0.attn_k.weight", GMK_DTYPE_Q8_0, 2, {32, 32, 1, 1}, GMK_LAYOUT_PACKED},    /* 32 x 34 B */
    {"blk.0.ffn_down.weight", GMK_DTYPE_F32, 2, {64, 32, 1, 1}, GMK_LAYOUT_PACKED},   /* 8192 B */
    {"output.weight", GMK_DTYPE_Q8_0, 2, {32, 100, 1, 1}, GMK_LAYOUT_PACKED},         /* 100 x 34 B */
};

static gmk_model toy_model(int n_tensors)
{
    return (gmk_model){.name = "toy", .target = "generic", .n_vocab = 100, .d_model = 32,
                       .n_layers = 1, .n_ctx = 64, .max_batch = 4,
                       .kv_bytes_per_token = 256, .n_tensors = n_tensors, .tensors = toy};
}

START_TEST(costs_tied_head)
{
    gmk_model m = toy_model(5); /* without output.weight: the head is tied */
    gmrt_bench_costs c;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_bench_costs_init(&m, &c, &d), GMRT_OK);
    ck_assert_uint_eq(c.decode_weight_bytes, 12800 + 128 + 64 * 34 + 32 * 34 + 8192);
    ck_assert(c.type_bytes[GMK_DTYPE_F32] == 12800 + 128 + 8192 &&
              c.type_bytes[GMK_DTYPE_Q8_0] == 64 * 34 + 32 * 34);
    ck_assert_uint_eq(c.kv_bytes_per_pos, 256);
    ck_assert(c.dense_macs == 32.0 * 64 + 32 * 32 + 64 * 32);
    ck_assert(c.head_macs == 32.0 * 100);
    ck_assert(c.attn_macs_per_key == 2.0 * 64);
    ck_assert_int_eq(c.peak, GMRT_PEAK_F32); /* 8192 f32 bytes > 3264 q8_0 */
    /* tg3: steps attend 1, 2, 3 positions: 2 on average. */
    ck_assert(gmrt_bench_tg_bytes(&c, 3) == 24384.0 + 256 * 2);
    /* pp4: 4 tokens of dense work, one head row, 1+2+3+4 query-key pairs. */
    ck_assert(gmrt_bench_pp_ops(&c, 4) == 2.0 * (4 * 5120 + 3200 + 128 * 10));
}
END_TEST

START_TEST(costs_untied_head_and_int8)
{
    gmk_tensor saved = toy[4];
    toy[4].dtype = GMK_DTYPE_Q8_0; /* ffn_down 32 rows of 64: 32 x 68 B */
    gmk_model m = toy_model(6);
    gmrt_bench_costs c;
    gmrt_diag d = {0};
    gmrt_status st = gmrt_bench_costs_init(&m, &c, &d);
    toy[4] = saved;
    ck_assert_int_eq(st, GMRT_OK);
    /* The embedding table is read for one row (32 f32); the head whole. */
    ck_assert_uint_eq(c.decode_weight_bytes, 32 * 4 + 128 + 64 * 34 + 32 * 34 + 32 * 68 +
                                                 100 * 34);
    ck_assert(c.type_bytes[GMK_DTYPE_F32] == 32 * 4 + 128 &&
              c.type_bytes[GMK_DTYPE_Q8_0] == 64 * 34 + 32 * 34 + 32 * 68 + 100 * 34);
    ck_assert(c.head_macs == 32.0 * 100);
    ck_assert_int_eq(c.peak, GMRT_PEAK_INT8);
}
END_TEST

START_TEST(costs_experts)
{
    /* 8 experts of 32 x 64 q8_0 (2 x 34 B a row), 2 used a token. */
    gmk_tensor t[] = {toy[0], {"blk.0.ffn_gate_exps.weight", GMK_DTYPE_Q8_0, 3, {64, 32, 8, 1},
                               GMK_LAYOUT_PACKED}};
    gmk_model m = toy_model(2);
    m.tensors = t;
    m.n_experts_used = 2;
    gmrt_bench_costs c;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_bench_costs_init(&m, &c, &d), GMRT_OK);
    ck_assert_uint_eq(c.expert_bytes, 8 * 32 * 68);
    ck_assert_uint_eq(c.decode_expert_bytes, 2 * 32 * 68);
    ck_assert_uint_eq(c.decode_weight_bytes, 12800 + 2 * 32 * 68);
    ck_assert(c.dense_macs == 2.0 * 64 * 32);
}
END_TEST

START_TEST(costs_refuse_bad_manifests)
{
    gmk_model m = toy_model(5);
    m.tensors = toy + 1; /* no token_embd */
    m.n_tensors = 4;
    gmrt_bench_costs c;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_bench_costs_init(&m, &c, &d), GMRT_ERR_MISMATCH);
    ck_assert(strstr(d.msg, "token_embd") != NULL);
    gmk_tensor bad[] = {{"token_embd.weight", GMK_DTYPE_Q8_0, 2, {33, 10, 1, 1}, GMK_LAYOUT_PACKED}};
    m.tensors = bad;
    m.n_tensors = 1;
    ck_assert_int_eq(gmrt_bench_costs_init(&m, &c, &d), GMRT_ERR_FORMAT);
    ck_assert(strstr(d.msg, "token_embd.weight") != NULL);
}
END_TEST

/* ------------------------------------------------------ the command line */

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": at or after from; NAN if absent. */
static double json_num(const char *from, const char *key, const char **out_at)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(from, pat);
    if (!at)
        return NAN;
    if (out_at)
        *out_at = at;
    return strtod(at + strlen(pat), NULL);
}

static bool near(double a, double b, double rel) { return fabs(a - b) <= rel * fabs(b); }

static const char *bench_cmd(char *buf, size_t n, const char *gguf, const char *args,
                             const char *out)
{
    snprintf(buf, n, "'%s' bench '%s' --target generic --build-dir '%s/bench-build' "
                     "--weights '%s' %s > '%s/%s' 2> '%s/%s.err'",
             GMC_GEMMAC, gmc_test_src("tests/graphs/tiny.yaml"), gmc_test_tmpdir(), gguf,
             args, gmc_test_tmpdir(), out, gmc_test_tmpdir(), out);
    return buf;
}

static char *read_out(const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", gmc_test_tmpdir(), name);
    char *s = gmc_test_read_file(path, NULL);
    ck_assert_msg(s != NULL, "no %s", path);
    return s;
}

/* One result object of the JSON: the test name, rates consistent with the
 * times, and the fraction recomputed from the reported bandwidth/peak. */
static const char *check_result(const char *at, int threads, const char *test, int n,
                                double work, double bw_gbs)
{
    char want[64];
    snprintf(want, sizeof want, "\"threads\": %d, \"test\": \"%s\"", threads, test);
    at = strstr(at, want);
    ck_assert_msg(at != NULL, "no result %s", want);
    double med = json_num(at, "median_s", NULL), mn = json_num(at, "min_s", NULL);
    ck_assert(mn > 0 && med >= mn);
    ck_assert(near(json_num(at, "tps_median", NULL), n / med, 1e-3));
    ck_assert(near(json_num(at, "tps_min_s", NULL), n / mn, 1e-3));
    double frac = json_num(at, "fraction", NULL);
    if (test[0] == 't') {
        ck_assert(near(json_num(at, "bytes_per_token", NULL), work, 1e-9));
        ck_assert(near(frac, work / (med / n) / (bw_gbs * 1e9), 2e-3));
    } else {
        ck_assert(near(json_num(at, "ops", NULL), work, 1e-9));
        /* tiny is all f32: the f32 peak is the one used, not int8. */
        ck_assert(strstr(at, "\"fraction_of\": \"f32\"") != NULL);
    }
    return at + 1;
}

START_TEST(command_json)
{
    char gguf[4200], cmd[16000];
    snprintf(gguf, sizeof gguf, "%s/tiny-bench.gguf", gmc_test_tmpdir());
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_init_weights(gmc_test_src("tests/graphs/tiny.yaml"), gguf, 5, false,
                                   &d) == GMC_OK, "%s", d.msg);
    ck_assert_int_eq(run_cmd(bench_cmd(cmd, sizeof cmd, gguf,
                                       "-p 5 -n 4 -r 3 -t 1,2 -o json --bw-mib 8",
                                       "b.json")), 0);
    char *js = read_out("b.json");
    /* tiny.yaml, all f32: embedding 64 x 512, per layer norms 4 x 64 + 2 x 32,
     * q/o 64 x 64, k/v 64 x 32, gate/up/down 64 x 128; output norm 64.  KV:
     * 2 layers x (K + V) x 32 f32 = 512 B per position. */
    double per_layer = 4 * 64 + 2 * 32 + 2 * 4096 + 2 * 2048 + 3 * 8192;
    double weights = 4 * (64 * 512 + 2 * per_layer + 64);
    ck_assert(near(json_num(js, "decode_weight_bytes", NULL), weights, 1e-12));
    double dense = 2 * (2 * 4096 + 2 * 2048 + 3 * 8192), attn = 2 * (2 * 64);
    double pp5 = 2 * (5 * dense + 64 * 512 + attn * 15);
    double tg4 = weights + 512 * 2.5;
    const char *r1 = NULL, *r2 = NULL;
    double bw1 = json_num(strstr(js, "\"roofline\""), "bw_best_gbs", &r1);
    double bw2 = json_num(r1 + 1, "bw_best_gbs", &r2);
    ck_assert(bw1 > 0 && bw2 > 0);
    const char *at = strstr(js, "\"results\"");
    ck_assert_ptr_nonnull(at);
    at = check_result(at, 1, "pp5", 5, pp5, bw1);
    at = check_result(at, 1, "tg4", 4, tg4, bw1);
    at = check_result(at, 2, "pp5", 5, pp5, bw2);
    at = check_result(at, 2, "tg4", 4, tg4, bw2);
    ck_assert(strstr(js, "vpdpbusd") || strstr(js, "vpmaddubsw") || strstr(js, "scalar"));
    free(js);
}
END_TEST

START_TEST(command_csv_table_and_errors)
{
    char gguf[4200], cmd[16000];
    snprintf(gguf, sizeof gguf, "%s/tiny-bench2.gguf", gmc_test_tmpdir());
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_init_weights(gmc_test_src("tests/graphs/tiny.yaml"), gguf, 6, false,
                               &d) == GMC_OK);
    ck_assert_int_eq(run_cmd(bench_cmd(cmd, sizeof cmd, gguf,
                                       "-p 3,6 -n 0 -r 1 -t 1 -o csv --no-roofline",
                                       "b.csv")), 0);
    char *csv = read_out("b.csv");
    ck_assert(strncmp(csv, "model,target,threads,test,", 26) == 0);
    ck_assert(strstr(csv, "\ntiny,generic,1,pp3,1,") && strstr(csv, "\ntiny,generic,1,pp6,1,"));
    ck_assert(strstr(csv, ",tg") == NULL);
    free(csv);
    ck_assert_int_eq(run_cmd(bench_cmd(cmd, sizeof cmd, gguf,
                                       "-p 0 -n 2 -r 1 -t 1 --bw-mib 4", "b.txt")), 0);
    char *tab = read_out("b.txt");
    ck_assert(strstr(tab, "| tiny ") && strstr(tab, "tg2") && strstr(tab, "of bandwidth"));
    ck_assert(strstr(tab, "read bandwidth") != NULL);
    free(tab);
    static const char *const bad[] = {"-r 0", "-o xml", "-p 65", "-t 0", "-p 0 -n 0",
                                      "-p 1,,x", "--frobnicate 1", "--bw-mib 1048576",
                                      "--machine m.txt", "--calibrate --no-roofline"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(run_cmd(bench_cmd(cmd, sizeof cmd, gguf, bad[i], "bad.txt")) == 2,
                      "bench %s was not refused with status 2", bad[i]);
        char *err = read_out("bad.txt.err");
        ck_assert_msg(strstr(err, "error: ") != NULL, "bench %s said: %s", bad[i], err);
        free(err);
    }
}
END_TEST

/* ------------------------------------------------------------ cost model */

/* Every malformed profile is refused naming the file and the line. */
START_TEST(profile_parse_errors)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"threads 1\nread_gbs 10\nint8_gops 1\nbf16_gflops 1\nf32_gflops 1\nfoo 2\n",
         "p.txt:6: unknown key \"foo\""},
        {"read_gbs 10\n", "p.txt:1: read_gbs comes before any \"threads N\" line"},
        {"# c\n\nthreads 1\nread_gbs -3\n", "p.txt:4: read_gbs needs a positive number"},
        {"threads 1\nread_gbs 1e999\n", "p.txt:2: read_gbs needs a positive number"},
        {"threads 1\nread_gbs 5\nread_gbs 6\n", "p.txt:3: read_gbs is given twice"},
        {"threads 2\nread_gbs 5\n", "p.txt:1: threads 2 has no int8_gops"},
        {"threads 1\nread_gbs 1\nint8_gops 1\nbf16_gflops 1\nf32_gflops 1\nthreads 1\n",
         "p.txt:6: threads 1: sections go in increasing thread counts"},
        {"threads x\n", "p.txt:1: threads needs a whole number"},
        {"threads 1\ntarget generic\n", "p.txt:2: target belongs before the first"},
        {"target\n", "p.txt:1: target has no value"},
        {"threads 1\nbarrier_us -1\n", "p.txt:2: barrier_us needs a non-negative number"},
        {"threads 1\ncache_curve 4\n", "p.txt:2: cache_curve needs MiB:GB/s pairs"},
        {"threads 1\ncache_curve 4:1 8:x\n", "p.txt:2: cache_curve needs MiB:GB/s pairs of "
         "positive numbers, got \"8:x\""},
        {"threads 1\ncache_curve 4:1 2:3\n", "p.txt:2: cache_curve: sizes go up (2 after 4)"},
        {"threads 1\ncache_curve 4:1\ncache_curve 8:1\n", "p.txt:3: cache_curve is given twice"},
        {"cache_curve 4:1\n", "p.txt:1: cache_curve comes before"},
        {"threads 1\ncach_gbs 3\n", "barrier_us, decode_efficiency_<type>, "
         "prefill_efficiency_<type>, cache_curve)"},
        {"threads 1\ndecode_efficiency_q9 1\n", "p.txt:2: unknown weight type in "
         "\"decode_efficiency_q9\" (decode_efficiency_ then"},
        {"threads 1\ndecode_efficiency_q8_0 1\ndecode_efficiency_q8_0 1\n",
         "p.txt:3: decode_efficiency_q8_0 is given twice"},
        {"threads 1\nprefill_efficiency_q9_9 0.2\n", "p.txt:2: unknown weight type in"},
        {"prefill_efficiency_q4_0 0.2\n", "p.txt:1: prefill_efficiency_q4_0 comes before"},
        {"threads 1\nprefill_efficiency_q4_0 0.2\nprefill_efficiency_q4_0 0.3\n",
         "p.txt:3: prefill_efficiency_q4_0 is given twice"},
        {"threads 1\nprefill_efficiency_bf16 0\n", "p.txt:2: prefill_efficiency_bf16 needs a "
         "positive"},
        {"threads 1\ndecode_efficiency 0\n", "p.txt:2: decode_efficiency needs a positive"},
        {"# nothing\n", "p.txt: no \"threads N\" section"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gmrt_machine m;
        gmrt_diag d = {0};
        ck_assert_int_eq(gmrt_machine_parse(bad[i].text, "p.txt", &m, &d), GMRT_ERR_FORMAT);
        ck_assert_msg(strstr(d.msg, bad[i].want), "case %zu: \"%s\" lacks \"%s\"", i, d.msg,
                      bad[i].want);
    }
}
END_TEST

/* A hand-written profile and hand-made costs: the predictions are the
 * formulas of docs/experiments.md worked out here, not by the program. */
START_TEST(profile_prediction_arithmetic)
{
    const char *text = "# written by hand\ntarget generic\ncpu Example CPU 3000\n\n"
                       "threads 1\nread_gbs 10\nint8_gops 100\nbf16_gflops 50\n"
                       "f32_gflops 25\ndecode_efficiency 0.5\nprefill_efficiency 0.25\n"
                       "threads 4\n  read_gbs 20   \nint8_gops 400\nbf16_gflops 200\n"
                       "f32_gflops 100\nbarrier_us 2.5\nprefill_efficiency_q4_0 0.5\n";
    gmrt_machine m;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_machine_parse(text, "hand.txt", &m, &d) == GMRT_OK, "%s", d.msg);
    ck_assert(m.n == 2 && !strcmp(m.target, "generic") && !strcmp(m.cpu, "Example CPU 3000"));
    ck_assert(gmrt_machine_find(&m, 2) == NULL && gmrt_machine_find(&m, 4) == &m.t[1]);
    ck_assert(m.t[1].decode_efficiency == 1.0 && m.t[1].prefill_efficiency == 1.0);
    /* A profile without barrier_us (written before the key) counts none. */
    ck_assert(m.t[0].barrier_us == 0 && m.t[1].barrier_us == 2.5);
    gmrt_bench_costs c = {.decode_weight_bytes = 100000000, .kv_bytes_per_pos = 1000,
                          .dense_macs = 1e8, .head_macs = 1e7, .attn_macs_per_key = 1000,
                          .peak = GMRT_PEAK_INT8};
    gmrt_prediction p;
    /* tg9 reads 1e8 + 1000 x (9 + 1) / 2 bytes a step at 10 GB/s x 0.5;
     * pp10 does 2 x (10 x 1e8 + 1e7 + 1000 x 10 x 11 / 2) ops at 100 GOPS x 0.25. */
    gmrt_machine_predict(&m.t[0], &c, 10, 9, &p);
    ck_assert(p.threads == 1);
    ck_assert_msg(fabs(p.tg_tps - 5e9 / 100005000.0) < 1e-9, "tg %.12g", p.tg_tps);
    ck_assert_msg(fabs(p.pp_tps - 10 * 25e9 / 2020110000.0) < 1e-9, "pp %.12g", p.pp_tps);
    c.peak = GMRT_PEAK_BF16; /* 200 GFLOPS at 4 threads, efficiency 1 */
    gmrt_machine_predict(&m.t[1], &c, 10, 0, &p);
    ck_assert(p.tg_tps == 0 && fabs(p.pp_tps - 10 * 200e9 / 2020110000.0) < 1e-9);
    /* 400 barriers a step at 2.5 us add 1 ms to tg9's 100005000 B at 20 GB/s;
     * at one thread (barrier_us 0) they cost nothing. */
    c.step_barriers = 400;
    gmrt_machine_predict(&m.t[1], &c, 0, 9, &p);
    ck_assert_msg(fabs(p.tg_tps - 1 / (100005000.0 / 20e9 + 1e-3)) < 1e-9, "tg %.12g",
                  p.tg_tps);
    gmrt_machine_predict(&m.t[0], &c, 0, 9, &p);
    ck_assert(fabs(p.tg_tps - 5e9 / 100005000.0) < 1e-9);
    /* Split by type, pp10: 6e7 q4_0 MACs a token at 400 GOPS x 0.5 (its own
     * efficiency), 4e7 f16 at 100 GFLOPS x 1, the head and the attention
     * (2 x (1e7 + 55000) ops) at the bf16 peak of c.peak, 200 x 1. */
    c.type_macs[GMK_DTYPE_Q4_0] = 6e7;
    c.type_macs[GMK_DTYPE_F16] = 4e7;
    gmrt_machine_predict(&m.t[1], &c, 10, 0, &p);
    double pp_s = 2 * 10 * 6e7 / 200e9 + 2 * 10 * 4e7 / 100e9 + 2 * (1e7 + 55000) / 200e9;
    ck_assert_msg(fabs(p.pp_tps - 10 / pp_s) < 1e-6, "pp %.12g, by hand %.12g", p.pp_tps,
                  10 / pp_s);
    /* What gmrt_machine_save writes reads back the same. */
    char path[4200];
    snprintf(path, sizeof path, "%s/hand-profile.txt", gmc_test_tmpdir());
    ck_assert(gmrt_machine_save(path, &m, "a note", &d) == GMRT_OK);
    gmrt_machine back;
    ck_assert_msg(gmrt_machine_load(path, &back, &d) == GMRT_OK, "%s", d.msg);
    ck_assert(back.n == 2 && !strcmp(back.cpu, m.cpu) && back.t[0].read_gbs == 10 &&
              back.t[0].prefill_efficiency == 0.25 && back.t[1].f32_gflops == 100 &&
              back.t[0].barrier_us == 0 && back.t[1].barrier_us == 2.5 &&
              back.t[1].type_prefill_efficiency[GMK_DTYPE_Q4_0] == 0.5 &&
              back.t[0].type_prefill_efficiency[GMK_DTYPE_Q4_0] == 0);
}
END_TEST

/* The cache curve of gmrt_machine_read_s, worked out by hand: memory at
 * 10 GB/s, caches at 40 GB/s up to 64 MiB, falling to 20 at 256 MiB. */
START_TEST(profile_cache_curve)
{
    const char *text = "threads 1\nread_gbs 10\nint8_gops 100\nbf16_gflops 50\n"
                       "f32_gflops 25\ndecode_efficiency 0.5\n"
                       "cache_curve 16:40 64:40\t256:20 512:5\n";
    gmrt_machine m;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_machine_parse(text, "cache.txt", &m, &d) == GMRT_OK, "%s", d.msg);
    const gmrt_machine_threads *t = &m.t[0];
    const double mib = 1048576.0;
    ck_assert(t->n_cache == 4 && t->cache_mib[2] == 256 && t->cache_gbs[2] == 20);
    /* Below the first size, its bandwidth; between two, linear in the
     * logarithm of the size (128 MiB: halfway); a point below memory's
     * bandwidth counts as memory; past the last, memory. */
    ck_assert(gmrt_machine_gbs_at(t, 4 * mib) == 40 && gmrt_machine_gbs_at(t, 64 * mib) == 40);
    ck_assert(fabs(gmrt_machine_gbs_at(t, 128 * mib) - 30) < 1e-12);
    ck_assert(gmrt_machine_gbs_at(t, 512 * mib) == 10 && gmrt_machine_gbs_at(t, 600 * mib) == 10);
    /* Dense: 64 MiB a step come back after 64 MiB, at 40 GB/s; 256 MiB at 20. */
    gmrt_bench_costs c = {.decode_weight_bytes = 64 << 20};
    gmrt_prediction p;
    gmrt_machine_predict(t, &c, 0, 9, &p);
    ck_assert_msg(fabs(p.tg_tps - 0.5 / (64 * mib / 40e9)) < 1e-9, "tg %.12g", p.tg_tps);
    c.decode_weight_bytes = 256 << 20;
    gmrt_machine_predict(t, &c, 0, 9, &p);
    ck_assert_msg(fabs(p.tg_tps - 0.5 / (256 * mib / 20e9)) < 1e-9, "tg %.12g", p.tg_tps);
    /* A MoE step of 64 MiB, 16 of them the experts chosen from 64 MiB: the
     * 48 MiB read every step come back after 64 MiB (40 GB/s), an expert
     * after 64 x 64 / 16 = 256 MiB (20 GB/s). */
    c = (gmrt_bench_costs){.decode_weight_bytes = 64 << 20, .decode_expert_bytes = 16 << 20,
                           .expert_bytes = 64 << 20};
    gmrt_machine_predict(t, &c, 0, 9, &p);
    double want = 0.5 / (48 * mib / 40e9 + 16 * mib / 20e9);
    ck_assert_msg(fabs(p.tg_tps - want) < 1e-9 * want, "tg %.12g, by hand %.12g", p.tg_tps, want);
    /* Without a curve, memory's bandwidth for all of it. */
    m.t[0].n_cache = 0;
    gmrt_machine_predict(t, &c, 0, 9, &p);
    ck_assert_msg(fabs(p.tg_tps - 0.5 / (64 * mib / 10e9)) < 1e-9, "tg %.12g", p.tg_tps);
    /* Half of the bytes q4_0 at decode_efficiency_q4_0 0.25, the rest at
     * 0.5: the step's efficiency 64 / (32 / 0.25 + 32 / 0.5) = 1 / 3. */
    m.t[0].type_decode_efficiency[GMK_DTYPE_Q4_0] = 0.25;
    c.type_bytes[GMK_DTYPE_Q4_0] = 32 << 20;
    ck_assert(fabs(gmrt_machine_decode_efficiency(t, &c) - 1.0 / 3) < 1e-12);
    gmrt_machine_predict(t, &c, 0, 9, &p);
    ck_assert_msg(fabs(p.tg_tps - (1.0 / 3) / (64 * mib / 10e9)) < 1e-9, "tg %.12g", p.tg_tps);
    /* The curve reads back as written. */
    char path[4200];
    snprintf(path, sizeof path, "%s/cache-profile.txt", gmc_test_tmpdir());
    m.t[0].n_cache = 4;
    ck_assert(gmrt_machine_save(path, &m, NULL, &d) == GMRT_OK);
    gmrt_machine back;
    ck_assert_msg(gmrt_machine_load(path, &back, &d) == GMRT_OK, "%s", d.msg);
    ck_assert(back.t[0].n_cache == 4 && back.t[0].cache_mib[3] == 512 &&
              back.t[0].cache_gbs[0] == 40 && back.t[0].cache_gbs[3] == 5 &&
              back.t[0].type_decode_efficiency[GMK_DTYPE_Q4_0] == 0.25);
}
END_TEST

/* The number printed in column col (0-based, after "threads") of the
 * prediction table row for `threads`. */
static double predicted(const char *out, int threads, int col)
{
    const char *at = strstr(out, "dec eff");
    ck_assert_ptr_nonnull(at);
    for (at = strchr(at, '\n'); at; at = strchr(at + 1, '\n')) {
        char *end;
        if (strtol(at + 1, &end, 10) != threads)
            continue;
        double v = 0;
        for (int i = 0; i <= col; i++)
            v = strtod(end, &end);
        return v;
    }
    ck_abort_msg("no prediction row for %d threads in:\n%s", threads, out);
    return 0;
}

/* bench --calibrate writes a profile whose efficiencies are the fractions
 * it measured, so plan --predict gives back, for the model calibrated on,
 * the median rates bench measured; without a profile plan --predict still
 * prints the costs and names the profile it needs; a broken one is an
 * error naming file:line. */
START_TEST(calibrate_then_predict)
{
    char gguf[4200], cmd[16000], prof[4200];
    snprintf(gguf, sizeof gguf, "%s/tiny-calib.gguf", gmc_test_tmpdir());
    snprintf(prof, sizeof prof, "%s/calib-profile.txt", gmc_test_tmpdir());
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_init_weights(gmc_test_src("tests/graphs/tiny.yaml"), gguf, 7, false,
                               &d) == GMC_OK);
    char args[4400];
    snprintf(args, sizeof args, "-p 6 -n 5 -r 3 -t 1,2 --bw-mib 8 -o json --calibrate "
             "--machine '%s'", prof);
    ck_assert_int_eq(run_cmd(bench_cmd(cmd, sizeof cmd, gguf, args, "cal.json")), 0);
    char *js = read_out("cal.json");
    gmrt_machine m;
    gmrt_diag rd = {0};
    ck_assert_msg(gmrt_machine_load(prof, &m, &rd) == GMRT_OK, "%s", rd.msg);
    ck_assert(m.n == 2 && m.t[0].threads == 1 && m.t[1].threads == 2);
    ck_assert(!strcmp(m.target, "generic"));
    snprintf(cmd, sizeof cmd, "'%s' plan '%s' --target generic --predict --machine '%s' "
             "-p 6 -n 5 > '%s/pred.txt' 2>&1", GMC_GEMMAC,
             gmc_test_src("tests/graphs/tiny.yaml"), prof, gmc_test_tmpdir());
    ck_assert_int_eq(run_cmd(cmd), 0);
    char *out = read_out("pred.txt");
    for (int t = 1; t <= 2; t++) {
        char want[64];
        const char *at = js;
        snprintf(want, sizeof want, "\"threads\": %d, \"test\": \"pp6\"", t);
        at = strstr(js, want);
        ck_assert_ptr_nonnull(at);
        double pp = json_num(at, "tps_median", NULL);
        snprintf(want, sizeof want, "\"threads\": %d, \"test\": \"tg5\"", t);
        at = strstr(js, want);
        ck_assert_ptr_nonnull(at);
        double tg = json_num(at, "tps_median", NULL);
        /* the profile keeps 6 digits, the table 1 or 2 decimals */
        ck_assert_msg(near(predicted(out, t, 0), pp, 1e-4) || fabs(predicted(out, t, 0) - pp)
                      < 0.06, "t%d: pp predicted %g, measured %g", t, predicted(out, t, 0), pp);
        ck_assert_msg(near(predicted(out, t, 1), tg, 1e-4) || fabs(predicted(out, t, 1) - tg)
                      < 0.006, "t%d: tg predicted %g, measured %g", t, predicted(out, t, 1), tg);
    }
    free(out);
    free(js);
    /* No profile: the costs, and which profile would be read. */
    snprintf(cmd, sizeof cmd, "XDG_CACHE_HOME='%s/no-cache' '%s' plan '%s' --target generic "
             "--predict > '%s/pred0.txt' 2>&1", gmc_test_tmpdir(), GMC_GEMMAC,
             gmc_test_src("tests/graphs/tiny.yaml"), gmc_test_tmpdir());
    ck_assert_int_eq(run_cmd(cmd), 0);
    out = read_out("pred0.txt");
    ck_assert_msg(strstr(out, "decode reads") && strstr(out, "no prediction: no machine "
                  "profile at ") && strstr(out, "/no-cache/gemmac/machine-generic.txt"),
                  "%s", out);
    free(out);
    /* A broken profile named with --machine is an error with its line. */
    char *text = gmc_test_read_file(prof, NULL);
    int line = 2; /* the new section's second line */
    for (const char *q = text; *q; q++)
        line += *q == '\n';
    free(text);
    FILE *f = fopen(prof, "a");
    ck_assert_ptr_nonnull(f);
    fputs("threads 3\nread_gbs fast\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' plan '%s' --target generic --predict --machine '%s' "
             "> '%s/pred1.txt' 2>&1", GMC_GEMMAC, gmc_test_src("tests/graphs/tiny.yaml"), prof,
             gmc_test_tmpdir());
    ck_assert_int_eq(run_cmd(cmd), 1);
    out = read_out("pred1.txt");
    char want[4400];
    snprintf(want, sizeof want, "%s:%d: read_gbs", prof, line);
    ck_assert_msg(strstr(out, want) && strstr(out, "\"fast\""), "%s", out);
    free(out);
}
END_TEST

/* The barriers the plan counts for a step (gmc_plan_step_barriers: the
 * SYNC()s and the kernels' own) are those the pool passes in a decode step
 * of the build, on graphs whose fused kernels have barriers inside: MoE
 * (gemma4-tiny), AltUp (gemma3n-tiny), converted matmul inputs (tiny-qmix
 * for the host's x86 or Arm kernels). */
START_TEST(step_barriers_counted)
{
    static const struct {
        const char *graph, *target;
    } cases[] = {{"tests/graphs/tiny.yaml", "generic"},
                 {"tests/graphs/gemma4-tiny.yaml", "generic"},
                 {"tests/graphs/gemma3n-tiny.yaml", "generic"},
                 {"tests/graphs/tiny-qmix.yaml", "host"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char graph[4200], gguf[4200], cmd[16000];
        snprintf(graph, sizeof graph, "%s", gmc_test_src(cases[i].graph));
        snprintf(gguf, sizeof gguf, "%s/barriers-%zu.gguf", gmc_test_tmpdir(), i);
        gmc_diag d;
        gmc_diag_clear(&d);
        ck_assert_msg(gmc_init_weights(graph, gguf, 3, false, &d) == GMC_OK, "%s", d.msg);
        snprintf(cmd, sizeof cmd, "'%s' bench '%s' --target %s --build-dir '%s/barriers-%zu' "
                 "--weights '%s' -p 0 -n 3 -r 1 -t 1,2 --no-roofline -o json > '%s/b%zu.json' "
                 "2> '%s/b%zu.err' && XDG_CACHE_HOME='%s/no-cache' '%s' plan '%s' --target %s "
                 "--predict > '%s/b%zu.txt' 2>&1", GMC_GEMMAC, graph, cases[i].target,
                 gmc_test_tmpdir(), i, gguf, gmc_test_tmpdir(), i, gmc_test_tmpdir(), i,
                 gmc_test_tmpdir(), GMC_GEMMAC, graph, cases[i].target, gmc_test_tmpdir(), i);
        ck_assert_int_eq(run_cmd(cmd), 0);
        char name[64];
        snprintf(name, sizeof name, "b%zu.json", i);
        char *js = read_out(name);
        snprintf(name, sizeof name, "b%zu.txt", i);
        char *plan = read_out(name);
        const char *at = strstr(plan, "a step passes");
        ck_assert_msg(at, "%s: %s", cases[i].graph, plan);
        double want = strtod(at + strlen("a step passes"), NULL);
        const char *from = js;
        for (int t = 0; t < 2; t++) {
            double got = json_num(from, "barriers_per_step", &from);
            ck_assert_msg(got == want, "%s, %d thread(s): the pool passed %g barriers a step, "
                          "the plan counts %g", cases[i].graph, t + 1, got, want);
            from++;
        }
        free(js);
        free(plan);
    }
}
END_TEST

Suite *bench_suite(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("bench");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, costs_tied_head);
    tcase_add_test(tc, costs_untied_head_and_int8);
    tcase_add_test(tc, costs_experts);
    tcase_add_test(tc, costs_refuse_bad_manifests);
    tcase_add_test(tc, command_json);
    tcase_add_test(tc, command_csv_table_and_errors);
    suite_add_tcase(s, tc);
    /* CK_RUN_CASE=costmodel runs these alone. */
    TCase *cm = tcase_create("costmodel");
    tcase_set_timeout(cm, 300);
    tcase_add_test(cm, profile_parse_errors);
    tcase_add_test(cm, profile_prediction_arithmetic);
    tcase_add_test(cm, profile_cache_curve);
    tcase_add_test(cm, calibrate_then_predict);
    tcase_add_test(cm, step_barriers_counted);
    suite_add_tcase(s, cm);
    return s;
}
