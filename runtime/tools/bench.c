/*
 * bench.c — `gemmac bench`: prefill and decode speed of a compiled model in
 * the manner of llama-bench, set against this machine's measured roofline.
 *
 * pp<N> evaluates N prompt tokens from an empty context (the session splits
 * them into max_batch chunks); tg<N> runs N single-token steps from an empty
 * context.  Each test runs once untimed, then -r times; the session is reset
 * before every run.  Decode speed is reported as a fraction of the measured
 * read bandwidth and prefill speed as a fraction of the relevant compute peak
 * (formulas at gmrt_bench_costs_init and in docs/benchmarks.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gmrt_tools.h"

#define BENCH_MAX_LIST 16
#define BENCH_MAX_REPS 1000

typedef struct bench_opts {
    const char *weights;
    int pp[BENCH_MAX_LIST], n_pp;
    int tg[BENCH_MAX_LIST], n_tg;
    int threads[BENCH_MAX_LIST], n_threads;
    int reps;
    enum { OUT_TABLE, OUT_JSON, OUT_CSV } out;
    bool roofline;
    long bw_mib;
    bool quiet;  /* no progress on stderr (gmrt_bench_measure) */
    bool requant; /* convert weights of other types at load (gmrt_bench_measure) */
    bool calibrate;       /* write a machine profile (docs/experiments.md) */
    const char *machine;  /* its path; NULL: the target's default */
} bench_opts;

/* One test at one thread count. */
typedef struct bench_result {
    int threads;
    bool decode; /* tg, else pp */
    int n;
    double *times; /* reps wall-clock seconds, sorted */
    double min_s, median_s, tps_mean, tps_sd;
    double fraction, fraction_min; /* of bandwidth or peak, median / min time */
    double barriers; /* pool barriers per step (gmrt_pool_barriers), tg only */
} bench_result;

static const char *const peak_names[] = {"int8", "bf16", "f32"};

/* ------------------------------------------------------------- cost model */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static bool has_suffix(const char *s, const char *x)
{
    size_t n = strlen(s), m = strlen(x);
    return n >= m && strcmp(s + n - m, x) == 0;
}

/* Bytes of one tensor, overflow-checked. */
static gmrt_status tensor_bytes(const gmk_tensor *t, uint64_t *out, gmrt_diag *diag)
{
    size_t row;
    gmrt_diag why = {0};
    if (gmrt_dtype_row_bytes(t->dtype, t->ne[0], &row, &why) != GMRT_OK)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "tensor %s: %s", t->name, why.msg);
    uint64_t b = row;
    for (int d = 1; d < 4; d++)
        if (t->ne[d] < 1 || __builtin_mul_overflow(b, (uint64_t)t->ne[d], &b))
            return gmrt_fail(diag, GMRT_ERR_LIMIT, "tensor %s: size overflows", t->name);
    *out = b;
    return GMRT_OK;
}

gmrt_peak_kind gmrt_bench_peak_of_dtype(int32_t dtype)
{
    /* bf16 weights are widened to f32 on every profile: the vdpbf16ps
     * kernel measured slower (compiler/targets/x86.c) */
    if (dtype == GMK_DTYPE_F32 || dtype == GMK_DTYPE_F16 || dtype == GMK_DTYPE_BF16)
        return GMRT_PEAK_F32;
    return GMRT_PEAK_INT8;
}

static void add_type_macs(gmrt_bench_costs *c, int32_t dtype, double macs)
{
    if (dtype >= 0 && dtype < GMK_DTYPE_COUNT)
        c->type_macs[dtype] += macs;
}

gmrt_status gmrt_bench_costs_init(const gmk_model *m, gmrt_bench_costs *out,
                                  gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    const gmk_tensor *embd = NULL, *head = NULL;
    uint64_t embd_bytes = 0, by_peak[3] = {0};
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const gmk_tensor *t = &m->tensors[i];
        uint64_t b;
        if (tensor_bytes(t, &b, diag) != GMRT_OK)
            return diag->status;
        if (t->n_dims == 3 && m->n_experts_used > 0) {
            /* experts: a token reads and computes with n_experts_used of them */
            out->expert_bytes += b;
            b = b / (uint64_t)t->ne[2] * (uint64_t)m->n_experts_used;
            out->decode_expert_bytes += b;
            double macs = (double)t->ne[0] * (double)t->ne[1] * m->n_experts_used;
            out->dense_macs += macs;
            add_type_macs(out, t->dtype, macs);
            by_peak[gmrt_bench_peak_of_dtype(t->dtype)] += b;
        }
        if (strcmp(t->name, "per_layer_token_embd.weight") == 0)
            b /= (uint64_t)t->ne[1]; /* looked up: one row per token */
        out->decode_weight_bytes += b;
        if (t->dtype >= 0 && t->dtype < GMK_DTYPE_COUNT)
            out->type_bytes[t->dtype] += (double)b;
        if (strcmp(t->name, "token_embd.weight") == 0)
            embd = t, embd_bytes = b;
        else if (strcmp(t->name, "output.weight") == 0)
            head = t;
        else if (has_prefix(t->name, "blk.") && t->n_dims == 2) {
            out->dense_macs += (double)t->ne[0] * (double)t->ne[1];
            add_type_macs(out, t->dtype, (double)t->ne[0] * (double)t->ne[1]);
            by_peak[gmrt_bench_peak_of_dtype(t->dtype)] += b;
            if (has_suffix(t->name, ".attn_q.weight"))
                out->attn_macs_per_key += 2.0 * (double)t->ne[1];
        }
    }
    if (!embd)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH, "model %s has no token_embd.weight",
                         m->name);
    /* An untied head is read whole; the embedding table then only for the one
     * row a decode step looks up.  A tied head reads the whole table. */
    if (head) {
        size_t row = 0;
        if (gmrt_dtype_row_bytes(embd->dtype, embd->ne[0], &row, diag) != GMRT_OK)
            return diag->status;
        out->decode_weight_bytes -= embd_bytes - row;
        if (embd->dtype >= 0 && embd->dtype < GMK_DTYPE_COUNT)
            out->type_bytes[embd->dtype] -= (double)(embd_bytes - row);
    } else
        head = embd;
    out->head_macs = (double)head->ne[0] * (double)head->ne[1];
    out->kv_bytes_per_pos = m->kv_bytes_per_token;
    out->peak = GMRT_PEAK_INT8;
    for (int k = 0; k < 3; k++)
        if (by_peak[k] > by_peak[out->peak])
            out->peak = (gmrt_peak_kind)k;
    return GMRT_OK;
}

double gmrt_bench_tg_bytes(const gmrt_bench_costs *c, int64_t n_gen)
{
    /* Step i (from 0) attends positions 0..i: the mean is (n + 1) / 2. */
    return (double)c->decode_weight_bytes +
           (double)c->kv_bytes_per_pos * (double)(n_gen + 1) / 2.0;
}

double gmrt_bench_pp_ops(const gmrt_bench_costs *c, int64_t n_prompt)
{
    double n = (double)n_prompt;
    return 2.0 * (n * c->dense_macs + c->head_macs +
                  c->attn_macs_per_key * n * (n + 1) / 2.0);
}

/* ----------------------------------------------------------------- options */

void gmrt_bench_print_options(FILE *f)
{
    fputs("  -m, --weights FILE   GGUF weights matching the compiled graph\n"
          "  -p, --n-prompt LIST  prefill sizes, comma-separated; 0 = none (default 512)\n"
          "  -n, --n-gen LIST     decode lengths, comma-separated; 0 = none (default 128)\n"
          "  -r, --repetitions N  timed runs per test after one warm-up (default 5)\n"
          "  -t, --threads LIST   thread counts, comma-separated (default: online CPUs, <= 8)\n"
          "  -o, --output FMT     table, json or csv (default table)\n"
          "      --no-roofline    skip the bandwidth and peak measurement\n"
          "      --bw-mib N       bandwidth buffer in MiB (default 1024)\n"
          "      --requant        convert weights whose type differs from the compiled\n"
          "                       one at load, as gemmac run --requant does\n"
          "      --calibrate      write this machine's profile for gemmac plan --predict:\n"
          "                       the roofline, the read bandwidth of buffers from\n"
          "                       4 MiB a thread to half of --bw-mib, and the\n"
          "                       fractions reached, per thread count (default -t:\n"
          "                       1 .. online CPUs, <= 8)\n"
          "      --machine FILE   where --calibrate writes (default: the cache directory,\n"
          "                       machine-<target>.txt)\n"
          "  -h, --help           this text\n", f);
}

static bool parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    return gmrt_cli_parse_long("error", flag, s, lo, hi, out);
}

/* "1,2,4" into out[] (at most BENCH_MAX_LIST values in [lo, hi]). */
static bool parse_list(const char *flag, const char *s, long lo, long hi, int *out,
                       int *n)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) {
        fprintf(stderr, "error: %s: list too long\n", flag);
        return false;
    }
    strcpy(buf, s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (*n == BENCH_MAX_LIST) {
            fprintf(stderr, "error: %s takes at most %d values\n", flag, BENCH_MAX_LIST);
            return false;
        }
        if (!parse_long(flag, tok, lo, hi, &v))
            return false;
        out[(*n)++] = (int)v;
    }
    if (*n == 0) {
        fprintf(stderr, "error: %s expects a comma-separated list, got \"%s\"\n", flag, s);
        return false;
    }
    return true;
}

/* Drops zeros ("-p 0" means no prefill test). */
static void drop_zeros(int *v, int *n)
{
    int k = 0;
    for (int i = 0; i < *n; i++)
        if (v[i] > 0)
            v[k++] = v[i];
    *n = k;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

/* Returns 0 to run, 1 for --help, 2 for a usage error. */
static int parse_args(const gmk_model *m, int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.pp = {512}, .n_pp = 1, .tg = {128}, .n_tg = 1,
                      .threads = {default_threads()}, .n_threads = 1, .reps = 5,
                      .out = OUT_TABLE, .roofline = true, .bw_mib = 1024};
    bool threads_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        bool ok = true;
#define IS(s1, s2) (strcmp(a, s1) == 0 || (s2 && strcmp(a, s2) == 0))
        if (IS("-h", "--help")) {
            printf("usage: %s --weights FILE.gguf [options]\n\n"
                   "Measures prefill (pp<N>) and decode (tg<N>) speed of model %s\n"
                   "(target %s) and this machine's read bandwidth and compute peaks.\n\n",
                   argv[0], m->name, m->target);
            gmrt_bench_print_options(stdout);
            return 1;
        }
        if (IS("--no-roofline", NULL)) {
            o->roofline = false;
            continue;
        }
        if (IS("--calibrate", NULL)) {
            o->calibrate = true;
            continue;
        }
        if (IS("--requant", NULL)) {
            o->requant = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "error: %s needs a value (or is unknown; see --help)\n", a);
            return 2;
        }
        i++;
        if (IS("-m", "--weights"))
            o->weights = v;
        else if (IS("-p", "--n-prompt"))
            ok = parse_list(a, v, 0, m->n_ctx, o->pp, &o->n_pp);
        else if (IS("-n", "--n-gen"))
            ok = parse_list(a, v, 0, m->n_ctx, o->tg, &o->n_tg);
        else if (IS("-t", "--threads"))
            ok = parse_list(a, v, 1, GMRT_ROOF_MAX_THREADS, o->threads, &o->n_threads) &&
                 (threads_given = true);
        else if (IS("-r", "--repetitions"))
            ok = parse_long(a, v, 1, BENCH_MAX_REPS, &l) && (o->reps = (int)l, true);
        else if (IS("--machine", NULL))
            o->machine = v;
        else if (IS("--bw-mib", NULL))
            ok = parse_long(a, v, 1, 1L << 20, &l) && (o->bw_mib = l, true);
        else if (IS("-o", "--output")) {
            if (strcmp(v, "table") == 0) o->out = OUT_TABLE;
            else if (strcmp(v, "json") == 0) o->out = OUT_JSON;
            else if (strcmp(v, "csv") == 0) o->out = OUT_CSV;
            else {
                fprintf(stderr, "error: %s expects table, json or csv, got \"%s\"\n", a, v);
                return 2;
            }
        } else {
            fprintf(stderr, "error: unknown option \"%s\" (see --help)\n", a);
            return 2;
        }
        if (!ok)
            return 2;
#undef IS
    }
    drop_zeros(o->pp, &o->n_pp);
    drop_zeros(o->tg, &o->n_tg);
    if (o->calibrate && !threads_given)
        for (o->n_threads = 0; o->n_threads < default_threads(); o->n_threads++)
            o->threads[o->n_threads] = o->n_threads + 1;
    if (o->calibrate && o->n_threads > GMRT_MACHINE_MAX_THREADS) {
        fprintf(stderr, "error: a profile holds at most %d thread counts\n",
                GMRT_MACHINE_MAX_THREADS);
        return 2;
    }
    if (o->calibrate && !o->roofline) {
        fprintf(stderr, "error: --calibrate measures the roofline: drop --no-roofline\n");
        return 2;
    }
    if (o->machine && !o->calibrate) {
        fprintf(stderr, "error: --machine FILE is where --calibrate writes; add "
                "--calibrate\n");
        return 2;
    }
    if (!o->weights) {
        fprintf(stderr, "error: no weights given (--weights FILE.gguf)\n");
        return 2;
    }
    /* The buffer is touched in full: keep it to half of the physical memory
     * rather than let the kernel kill the process. */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double half_mib = pages > 0 && page > 0 ? (double)pages * page / 2 / (1 << 20) : 1e9;
    if (o->roofline && (double)o->bw_mib > half_mib) {
        fprintf(stderr, "error: --bw-mib %ld is more than half of this machine's memory "
                        "(%.0f MiB)\n", o->bw_mib, half_mib * 2);
        return 2;
    }
    if (o->n_pp + o->n_tg == 0) {
        fprintf(stderr, "error: nothing to measure (-p and -n are both 0)\n");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ timing */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One run of a test from an empty context; *out_s is its wall time and
 * *barriers the pool barriers it passed. */
static gmrt_status run_once(gmrt_session *s, const int32_t *toks, bool decode, int n,
                            double *out_s, uint64_t *barriers, gmrt_diag *diag)
{
    const float *logits;
    gmrt_session_reset(s);
    uint64_t b0 = gmrt_pool_barriers();
    double t0 = now_s();
    if (!decode) {
        if (gmrt_session_eval(s, toks, (size_t)n, false, &logits, diag) != GMRT_OK)
            return diag->status;
    } else {
        for (int i = 0; i < n; i++)
            if (gmrt_session_eval(s, toks + i, 1, false, &logits, diag) != GMRT_OK)
                return diag->status;
    }
    *out_s = now_s() - t0;
    *barriers = gmrt_pool_barriers() - b0;
    return GMRT_OK;
}

static void summarise(bench_result *r, int reps)
{
    qsort(r->times, (size_t)reps, sizeof *r->times, cmp_double);
    r->min_s = r->times[0];
    r->median_s = reps % 2 ? r->times[reps / 2]
                           : 0.5 * (r->times[reps / 2 - 1] + r->times[reps / 2]);
    double sum = 0, sq = 0;
    for (int i = 0; i < reps; i++)
        sum += r->n / r->times[i];
    r->tps_mean = sum / reps;
    for (int i = 0; i < reps; i++) {
        double d = r->n / r->times[i] - r->tps_mean;
        sq += d * d;
    }
    r->tps_sd = reps > 1 ? sqrt(sq / (reps - 1)) : 0;
}

/* Fraction of the roofline reached at time t: decode against bandwidth,
 * prefill against the peak of the weights' arithmetic. */
static double roof_fraction(const bench_result *r, double t, const gmrt_bench_costs *c,
                            const gmrt_roofline *roof)
{
    if (!roof)
        return 0;
    if (r->decode)
        return gmrt_bench_tg_bytes(c, r->n) / (t / r->n) / (roof->bw_best_gbs * 1e9);
    double peak = c->peak == GMRT_PEAK_INT8   ? roof->int8_gops
                  : c->peak == GMRT_PEAK_BF16 ? roof->bf16_gflops
                                              : roof->f32_gflops;
    return gmrt_bench_pp_ops(c, r->n) / t / (peak * 1e9);
}

static gmrt_status run_test(gmrt_session *s, const int32_t *toks, const bench_opts *o,
                            bench_result *r, gmrt_diag *diag)
{
    double t;
    uint64_t barriers;
    if (!o->quiet)
        fprintf(stderr, "[bench] t%d %s%d: warm-up", r->threads, r->decode ? "tg" : "pp",
                r->n);
    if (run_once(s, toks, r->decode, r->n, &t, &barriers, diag) != GMRT_OK)
        return diag->status;
    r->barriers = r->decode ? (double)barriers / r->n : 0;
    for (int i = 0; i < o->reps; i++) {
        if (run_once(s, toks, r->decode, r->n, &r->times[i], &barriers, diag) != GMRT_OK)
            return diag->status;
        if (!o->quiet)
            fprintf(stderr, " %.3fs", r->times[i]);
    }
    if (!o->quiet)
        fputc('\n', stderr);
    summarise(r, o->reps);
    return GMRT_OK;
}

/* Pseudo-random but fixed ids in [0, n_vocab): the same for every run, so
 * every repetition does identical work. */
static int32_t *bench_tokens(int32_t n_vocab, int n)
{
    int32_t *t = malloc((size_t)n * sizeof *t);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; t && i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t[i] = (int32_t)(x % (uint64_t)n_vocab);
    }
    return t;
}

/* ------------------------------------------------------------------ output */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const gmrt_roofline *roof_for(const gmrt_roofline *roofs, const bench_opts *o,
                                     int threads)
{
    for (int i = 0; roofs && i < o->n_threads; i++)
        if (roofs[i].n_threads == threads)
            return &roofs[i];
    return NULL;
}

static void print_roof_line(FILE *f, const char *lead, const gmrt_roofline *r)
{
    fprintf(f,
            "%sthreads %d: read bandwidth %.2f GB/s best, %.2f median (%d x %zu MiB, %s); "
            "int8 %.1f GOPS (%s); bf16 %.1f GFLOPS (%s); f32 %.1f GFLOPS (%s); "
            "barrier %.3f us\n",
            lead, r->n_threads, r->bw_best_gbs, r->bw_median_gbs, r->bw_passes,
            r->bw_bytes >> 20, r->bw_insn, r->int8_gops, r->int8_insn, r->bf16_gflops,
            r->bf16_insn, r->f32_gflops, r->f32_insn, r->barrier_us);
    if (r->n_cache) {
        fprintf(f, "%sthreads %d: read GB/s by buffer MiB:", lead, r->n_threads);
        for (int i = 0; i < r->n_cache; i++)
            fprintf(f, " %.3g:%.1f", r->cache_mib[i], r->cache_gbs[i]);
        fprintf(f, "\n");
    }
}

static void print_table(const gmk_model *m, const bench_opts *o, const gmrt_bench_costs *c,
                        const gmrt_roofline *roofs, const bench_result *res, int n_res)
{
    printf("model %s, target %s, weights %s\n", m->name, m->target, o->weights);
    printf("decode bytes/token = %.1f MB weights read + %.1f kB KV per attended position",
           c->decode_weight_bytes * 1e-6, c->kv_bytes_per_pos * 1e-3);
    if (c->step_barriers > 0)
        printf(", %.0f thread-pool barriers a step", c->step_barriers);
    printf("; prefill ops/token = %.3f G dense + attention (peak used: %s)\n",
           2 * c->dense_macs * 1e-9, peak_names[c->peak]);
    for (int i = 0; roofs && i < o->n_threads; i++)
        print_roof_line(stdout, "", &roofs[i]);
    printf("\n| %-14s | %-16s | %7s | %6s | %10s | %10s | %16s | %-22s |\n", "model", "target",
           "threads", "test", "t/s @min", "t/s median", "t/s mean ± sd", "fraction (median)");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------", "------------------",
           "--------:", "-------:", "-----------:", "-----------:", "-----------------:",
           "------------------------");
    for (int i = 0; i < n_res; i++) {
        const bench_result *r = &res[i];
        char test[32], frac[48] = "-";
        snprintf(test, sizeof test, "%s%d", r->decode ? "tg" : "pp", r->n);
        if (roof_for(roofs, o, r->threads))
            snprintf(frac, sizeof frac, "%.3f of %s", r->fraction,
                     r->decode ? "bandwidth" : peak_names[c->peak]);
        printf("| %-14s | %-16s | %7d | %6s | %10.2f | %10.2f | %8.2f ± %5.2f | %-22s |\n",
               m->name, m->target, r->threads, test, r->n / r->min_s, r->n / r->median_s,
               r->tps_mean, r->tps_sd, frac);
    }
}

static void print_json_roof(const gmrt_roofline *r)
{
    printf("    {\"threads\": %d, \"bw_best_gbs\": %.4f, \"bw_median_gbs\": %.4f, "
           "\"bw_bytes\": %zu, \"bw_passes\": %d, \"bw_insn\": ",
           r->n_threads, r->bw_best_gbs, r->bw_median_gbs, r->bw_bytes, r->bw_passes);
    json_str(stdout, r->bw_insn);
    printf(", \"int8_gops\": %.3f, \"int8_insn\": ", r->int8_gops);
    json_str(stdout, r->int8_insn);
    printf(", \"bf16_gflops\": %.3f, \"bf16_insn\": ", r->bf16_gflops);
    json_str(stdout, r->bf16_insn);
    printf(", \"f32_gflops\": %.3f, \"f32_insn\": ", r->f32_gflops);
    json_str(stdout, r->f32_insn);
    printf("}");
}

static void print_json_result(const bench_result *r, int reps, const gmrt_bench_costs *c,
                              bool has_roof)
{
    printf("    {\"threads\": %d, \"test\": \"%s%d\", \"kind\": \"%s\", \"n_tokens\": %d, "
           "\"reps\": %d, \"times_s\": [",
           r->threads, r->decode ? "tg" : "pp", r->n, r->decode ? "tg" : "pp", r->n, reps);
    for (int i = 0; i < reps; i++)
        printf("%s%.9g", i ? ", " : "", r->times[i]);
    printf("], \"min_s\": %.9g, \"median_s\": %.9g, \"tps_min_s\": %.9g, "
           "\"tps_median\": %.9g, \"tps_mean\": %.9g, \"tps_sd\": %.9g, ",
           r->min_s, r->median_s, r->n / r->min_s, r->n / r->median_s, r->tps_mean,
           r->tps_sd);
    if (r->decode)
        printf("\"bytes_per_token\": %.0f, \"barriers_per_step\": %.6g, ",
               gmrt_bench_tg_bytes(c, r->n), r->barriers);
    else
        printf("\"ops\": %.0f, ", gmrt_bench_pp_ops(c, r->n));
    if (has_roof)
        printf("\"fraction\": %.6g, \"fraction_min_s\": %.6g, \"fraction_of\": \"%s\"}",
               r->fraction, r->fraction_min, r->decode ? "bandwidth" : peak_names[c->peak]);
    else
        printf("\"fraction\": null, \"fraction_min_s\": null, \"fraction_of\": null}");
}

static void print_json(const gmk_model *m, const bench_opts *o, const gmrt_bench_costs *c,
                       const gmrt_roofline *roofs, const bench_result *res, int n_res)
{
    printf("{\n  \"model\": ");
    json_str(stdout, m->name);
    printf(", \"target\": ");
    json_str(stdout, m->target);
    printf(", \"weights\": ");
    json_str(stdout, o->weights);
    printf(",\n  \"decode_weight_bytes\": %llu, \"kv_bytes_per_pos\": %llu, "
           "\"dense_macs_per_token\": %.0f, \"head_macs\": %.0f, "
           "\"attn_macs_per_key\": %.0f, \"peak\": \"%s\",\n  \"roofline\": [\n",
           (unsigned long long)c->decode_weight_bytes,
           (unsigned long long)c->kv_bytes_per_pos, c->dense_macs, c->head_macs,
           c->attn_macs_per_key, peak_names[c->peak]);
    for (int i = 0; roofs && i < o->n_threads; i++) {
        print_json_roof(&roofs[i]);
        printf("%s\n", i + 1 < o->n_threads ? "," : "");
    }
    printf("  ],\n  \"results\": [\n");
    for (int i = 0; i < n_res; i++) {
        print_json_result(&res[i], o->reps, c, roofs != NULL);
        printf("%s\n", i + 1 < n_res ? "," : "");
    }
    printf("  ]\n}\n");
}

static void print_csv(const gmk_model *m, const bench_opts *o, const gmrt_bench_costs *c,
                      const gmrt_roofline *roofs, const bench_result *res, int n_res)
{
    printf("model,target,threads,test,reps,min_s,median_s,tps_min_s,tps_median,tps_mean,"
           "tps_sd,fraction,fraction_of,bw_best_gbs,peak_gops\n");
    for (int i = 0; i < n_res; i++) {
        const bench_result *r = &res[i];
        const gmrt_roofline *rf = roof_for(roofs, o, r->threads);
        double peak = !rf ? 0 : c->peak == GMRT_PEAK_INT8 ? rf->int8_gops
                              : c->peak == GMRT_PEAK_BF16 ? rf->bf16_gflops
                                                          : rf->f32_gflops;
        printf("%s,%s,%d,%s%d,%d,%.9g,%.9g,%.4f,%.4f,%.4f,%.4f,", m->name, m->target,
               r->threads, r->decode ? "tg" : "pp", r->n, o->reps, r->min_s, r->median_s,
               r->n / r->min_s, r->n / r->median_s, r->tps_mean, r->tps_sd);
        if (rf)
            printf("%.5f,%s,%.4f,%.3f\n", r->fraction,
                   r->decode ? "bandwidth" : peak_names[c->peak], rf->bw_best_gbs, peak);
        else
            printf(",,,\n");
    }
}

/* --------------------------------------------------------------------- main */

/* Runs every test at one thread count into res[*n_res...]. */
static gmrt_status bench_threads(const gmk_model *m, const bench_opts *o, int threads,
                                 const int32_t *toks, bench_result *res, int *n_res,
                                 gmrt_diag *diag)
{
    gmrt_session_opts so = {.n_threads = threads, .requant = o->requant};
    gmrt_session *s = NULL;
    if (gmrt_session_create(m, o->weights, &so, &s, diag) != GMRT_OK)
        return diag->status;
    gmrt_status st = GMRT_OK;
    for (int k = 0; st == GMRT_OK && k < o->n_pp + o->n_tg; k++) {
        bench_result *r = &res[(*n_res)++];
        r->threads = threads;
        r->decode = k >= o->n_pp;
        r->n = r->decode ? o->tg[k - o->n_pp] : o->pp[k];
        st = run_test(s, toks, o, r, diag);
    }
    gmrt_session_destroy(s);
    return st;
}

static gmrt_status bench_all(const gmk_model *m, const bench_opts *o,
                             gmrt_roofline *roofs, bench_result *res, int *n_res,
                             gmrt_diag *diag)
{
    int max_n = 1;
    for (int i = 0; i < o->n_pp; i++)
        max_n = o->pp[i] > max_n ? o->pp[i] : max_n;
    for (int i = 0; i < o->n_tg; i++)
        max_n = o->tg[i] > max_n ? o->tg[i] : max_n;
    int32_t *toks = bench_tokens(m->n_vocab, max_n);
    if (!toks)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory for %d tokens", max_n);
    gmrt_status st = GMRT_OK;
    for (int t = 0; st == GMRT_OK && t < o->n_threads; t++) {
        if (roofs) {
            fprintf(stderr, "[bench] t%d: measuring the roofline\n", o->threads[t]);
            st = gmrt_roofline_measure(o->threads[t], (size_t)o->bw_mib << 20, 7,
                                       &roofs[t], diag);
            /* what a profile's cache term needs (gmrt_machine_read_s) */
            if (st == GMRT_OK && o->calibrate)
                st = gmrt_roofline_measure_cache(o->threads[t], (size_t)o->bw_mib << 19,
                                                 &roofs[t], diag);
            if (st == GMRT_OK)
                print_roof_line(stderr, "[bench] ", &roofs[t]);
        }
        if (st == GMRT_OK)
            st = bench_threads(m, o, o->threads[t], toks, res, n_res, diag);
    }
    free(toks);
    return st;
}

/* A single thread count, for gemmac sweep (gmrt.h). */
gmrt_status gmrt_bench_measure(const gmk_model *m, const char *weights, bool requant,
                               int threads, int n_prompt, int n_gen, int reps,
                               gmrt_bench_speed *out, gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    out->threads = threads;
    if (threads < 1 || threads > GMRT_ROOF_MAX_THREADS || reps < 1 || reps > BENCH_MAX_REPS ||
        n_prompt < 0 || n_gen < 0 || n_prompt > m->n_ctx || n_gen > m->n_ctx)
        return gmrt_fail(diag, GMRT_ERR_ARG, "bench: threads %d, prompt %d, gen %d or reps %d "
                         "out of range (context %d)", threads, n_prompt, n_gen, reps, m->n_ctx);
    bench_opts o = {.weights = weights, .pp = {n_prompt}, .n_pp = n_prompt > 0,
                    .tg = {n_gen}, .n_tg = n_gen > 0, .reps = reps, .quiet = true,
                    .requant = requant};
    bench_result res[2] = {{0}};
    double *times = calloc(2 * (size_t)reps, sizeof *times);
    int max_n = n_prompt > n_gen ? n_prompt : n_gen > 0 ? n_gen : 1;
    int32_t *toks = bench_tokens(m->n_vocab, max_n);
    int n_res = 0;
    gmrt_status st = GMRT_OK;
    if (!times || !toks)
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "bench: out of memory");
    res[0].times = times;
    res[1].times = times ? times + reps : NULL;
    if (st == GMRT_OK)
        st = bench_threads(m, &o, threads, toks, res, &n_res, diag);
    for (int i = 0; st == GMRT_OK && i < n_res; i++) {
        double best = res[i].n / res[i].min_s, median = res[i].n / res[i].median_s;
        if (res[i].decode)
            out->tg_best_tps = best, out->tg_median_tps = median;
        else
            out->pp_best_tps = best, out->pp_median_tps = median;
    }
    free(toks);
    free(times);
    return st;
}

/* ------------------------------------------------------------- calibration */

/* This CPU's model name (Linux /proc/cpuinfo), or "" where unknown. */
static void cpu_name(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (has_prefix(line, "model name") && colon) {
            snprintf(out, cap, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

/* The decode terms of a thread count's section from its tg result r (the
 * cost model's step, gmrt_machine_step_s, solved for them, so that the
 * calibrating model is predicted as measured): the barrier as the pool's
 * microbenchmark measured it (capped at half the step) and the efficiency
 * that the rest of the step gives, at every thread count.  (Putting what a
 * second thread loses on the barriers instead, 3.6 µs on each of the
 * 270M's 166, predicted a MoE of 154 barriers a step and a fifth of the
 * bytes at 0.59-0.76 of what it measured at two threads: the loss is in
 * the streaming, not the waiting; docs/experiments.md#cost-model.) */
static void fit_decode(gmrt_machine_threads *t, const bench_result *r, const gmrt_bench_costs *c)
{
    double read = gmrt_machine_read_s(t, c, r->n); /* at efficiency 1 */
    double step = r->median_s / r->n;
    if (r->barriers * t->barrier_us * 1e-6 > 0.5 * step)
        t->barrier_us = 0.5 * step / r->barriers * 1e6;
    t->decode_efficiency = read / (step - r->barriers * t->barrier_us * 1e-6);
}

/* The profile of what was measured: each thread count's roofline and pool
 * barrier, the fraction of the peak its first pp test reached and the
 * decode terms of its first tg test (fit_decode), at the median time,
 * written to o->machine or the target's default path. */
static gmrt_status write_profile(const gmk_model *m, const bench_opts *o,
                                 const gmrt_bench_costs *c, const gmrt_roofline *roofs,
                                 const bench_result *res, int n_res, gmrt_diag *diag)
{
    gmrt_machine p = {.n = o->n_threads};
    snprintf(p.target, sizeof p.target, "%s", m->target);
    cpu_name(p.cpu, sizeof p.cpu);
    /* In increasing thread counts, as a profile keeps them. */
    int order[BENCH_MAX_LIST];
    for (int t = 0; t < o->n_threads; t++) {
        int k = t;
        while (k > 0 && roofs[order[k - 1]].n_threads > roofs[t].n_threads) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = t;
    }
    for (int j = 0; j < o->n_threads; j++) {
        const gmrt_roofline *r = &roofs[order[j]];
        gmrt_machine_threads *t = &p.t[j];
        *t = (gmrt_machine_threads){.threads = r->n_threads, .read_gbs = r->bw_best_gbs,
                                    .int8_gops = r->int8_gops, .bf16_gflops = r->bf16_gflops,
                                    .f32_gflops = r->f32_gflops, .decode_efficiency = 1.0,
                                    .prefill_efficiency = 1.0, .barrier_us = r->barrier_us,
                                    .n_cache = r->n_cache};
        memcpy(t->cache_mib, r->cache_mib, sizeof t->cache_mib);
        memcpy(t->cache_gbs, r->cache_gbs, sizeof t->cache_gbs);
        const bench_result *pp = NULL, *tg = NULL;
        for (int i = n_res - 1; i >= 0; i--)
            if (res[i].threads == r->n_threads && res[i].decode)
                tg = &res[i];
            else if (res[i].threads == r->n_threads)
                pp = &res[i];
        if (pp)
            t->prefill_efficiency = pp->fraction;
        if (tg)
            fit_decode(t, tg, c);
    }
    char path[4200], note[512];
    if (o->machine)
        snprintf(path, sizeof path, "%s", o->machine);
    else if (!gmrt_machine_default_path(m->target, path, sizeof path))
        return gmrt_fail(diag, GMRT_ERR_ARG, "the cache directory's path is too long");
    if (!o->machine) {
        /* The cache root may not exist yet; 0700 as for build directories. */
        char root[4096];
        bool shared;
        gmrt_cache_root(root, sizeof root, &shared);
        for (char *q = root + 1; ; q++) {
            char c = *q;
            if (c != '/' && c != '\0')
                continue;
            *q = '\0';
            if (mkdir(root, 0700) != 0 && errno != EEXIST)
                return gmrt_fail(diag, GMRT_ERR_IO, "cannot create %s: %s", root,
                                 strerror(errno));
            *q = c;
            if (!c)
                break;
        }
    }
    snprintf(note, sizeof note, "gemmac bench --calibrate: model %s, target %s, pp%d tg%d, "
             "%d timed runs (efficiencies at the median)", m->name, m->target,
             o->n_pp ? o->pp[0] : 0, o->n_tg ? o->tg[0] : 0, o->reps);
    gmrt_status st = gmrt_machine_save(path, &p, note, diag);
    if (st == GMRT_OK)
        fprintf(stderr, "[bench] wrote machine profile %s\n", path);
    return st;
}

int gmrt_bench_main(const gmk_model *m, int argc, char **argv)
{
    bench_opts o;
    int rc = parse_args(m, argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    gmrt_diag diag = {0};
    gmrt_bench_costs c;
    if (gmrt_bench_costs_init(m, &c, &diag) != GMRT_OK) {
        fprintf(stderr, "error: %s\n", diag.msg);
        return 1;
    }
    int n_tests = o.n_threads * (o.n_pp + o.n_tg), n_res = 0;
    bench_result *res = calloc((size_t)n_tests, sizeof *res);
    double *times = calloc((size_t)n_tests * (size_t)o.reps, sizeof *times);
    gmrt_roofline *roofs = o.roofline ? calloc((size_t)o.n_threads, sizeof *roofs) : NULL;
    if (!res || !times || (o.roofline && !roofs)) {
        fprintf(stderr, "error: out of memory\n");
        rc = 1;
    } else {
        for (int i = 0; i < n_tests; i++)
            res[i].times = times + (size_t)i * (size_t)o.reps;
        if (bench_all(m, &o, roofs, res, &n_res, &diag) != GMRT_OK) {
            fprintf(stderr, "\nerror: %s\n", diag.msg);
            rc = 1;
        }
    }
    for (int i = n_res - 1; rc == 0 && i >= 0; i--)
        if (res[i].decode)
            c.step_barriers = res[i].barriers; /* counted: the same at any thread count */
    for (int i = 0; rc == 0 && i < n_res; i++) {
        const gmrt_roofline *rf = roof_for(roofs, &o, res[i].threads);
        res[i].fraction = roof_fraction(&res[i], res[i].median_s, &c, rf);
        res[i].fraction_min = roof_fraction(&res[i], res[i].min_s, &c, rf);
    }
    if (rc == 0 && o.calibrate) {
        if (write_profile(m, &o, &c, roofs, res, n_res, &diag) != GMRT_OK) {
            fprintf(stderr, "error: %s\n", diag.msg);
            rc = 1;
        }
    }
    if (rc == 0 && o.out == OUT_TABLE)
        print_table(m, &o, &c, roofs, res, n_res);
    else if (rc == 0 && o.out == OUT_JSON)
        print_json(m, &o, &c, roofs, res, n_res);
    else if (rc == 0)
        print_csv(m, &o, &c, roofs, res, n_res);
    free(roofs);
    free(times);
    free(res);
    return rc;
}
