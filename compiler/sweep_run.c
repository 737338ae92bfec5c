/*
 * sweep_run.c — `gemmac sweep`: build, initialise and benchmark every
 * variant of a sweep file, and tabulate (docs/experiments.md).
 *
 * The output directory holds variants/v<N>.yaml (each variant's graph),
 * variants.tsv (index, result key, name: what the tables list),
 * results/<key>.json (one per variant, written whole by rename), weights/
 * (random weights, removed once measured) and the reports: results.csv,
 * results.md and the plots.  A variant's key hashes its graph text, target,
 * batch, seed and bench settings, so a rerun skips what it finds measured
 * and a changed variant is measured again.
 *
 * A run has two phases.  Builds (validate, compile into the build cache
 * under sweep-<graph hash>, write random weights) run in forked children,
 * -j at a time, each writing its result with status "built", "invalid" or
 * "failed".  Benchmarks then run one at a time in this process, through
 * the runtime's own measurement (gmrt_bench_measure), so that they do not
 * compete with each other or with clang.  Ctrl-C stops after the variant
 * being measured; what finished is kept and tabulated.
 *
 * --one N does both phases for variant N alone (the job of build.ninja,
 * which --emit writes, or of a Slurm array task); --collect DIR tabulates
 * whatever results DIR holds.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "gmrt_tools.h"
#include "graph.h"
#include "model.h"
#include "plan.h"
#include "sweep.h"

#define MAX_OVR 64
#define MAX_PLOTS 8

/* ------------------------------------------------------------ results */

/* One variant's record: what results/<key>.json holds. */
typedef struct result {
    int index;
    char name[256];
    char key[17];
    char status[16];          /* ok, built, invalid, failed; "missing": no file */
    char error[1536];         /* the diagnostic, as printed */
    char target[32];
    int n_ovr;
    char ovr_path[MAX_OVR][128], ovr_value[MAX_OVR][128];
    uint64_t params, params_effective, params_active;
    uint64_t weight_bytes, arena_bytes, kv_per_token, kv_full;
    double compile_s;
    bool cached;              /* the build was in the cache already */
    bool has_costs;           /* costs: what a token costs, from the plan */
    gmrt_bench_costs costs;
    int prompt, gen;          /* the bench's pp<prompt> and tg<gen> */
    double ppl;               /* perplexity over the sweep's eval text; 0: none */
    int n_speed;
    gmrt_bench_speed speed[GMC_SWEEP_MAX_THREADS];
} result;

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* {"q4_0": v, ...} of the types with a positive value. */
static void write_by_type(FILE *f, const double *v)
{
    const char *sep = "";
    fprintf(f, "{");
    for (int d = 0; d < GMK_DTYPE_COUNT; d++)
        if (v[d] > 0 && gmrt_dtype_name(d)) {
            fprintf(f, "%s\"%s\": %.17g", sep, gmrt_dtype_name(d), v[d]);
            sep = ", ";
        }
    fprintf(f, "}");
}

/* Writes r to path through a temporary renamed over it, so that a reader
 * (a resumed run, --collect) never sees half a file. */
static bool write_result(const char *path, const result *r)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fprintf(f, "{\"index\": %d, \"name\": ", r->index);
    json_str(f, r->name);
    fprintf(f, ", \"key\": \"%s\", \"status\": \"%s\", \"target\": ", r->key, r->status);
    json_str(f, r->target);
    fprintf(f, ",\n \"error\": ");
    json_str(f, r->error);
    fprintf(f, ",\n \"overrides\": [");
    for (int i = 0; i < r->n_ovr; i++) {
        fprintf(f, "%s[", i ? ", " : "");
        json_str(f, r->ovr_path[i]);
        fprintf(f, ", ");
        json_str(f, r->ovr_value[i]);
        fprintf(f, "]");
    }
    fprintf(f, "],\n \"params\": %" PRIu64 ", \"params_effective\": %" PRIu64
            ", \"params_active\": %" PRIu64 ", \"weight_bytes\": %" PRIu64
            ", \"arena_bytes\": %" PRIu64 ", \"kv_bytes_per_token\": %" PRIu64
            ", \"kv_bytes_full\": %" PRIu64 ", \"compile_s\": %.3f, \"cached\": %s,\n"
            " \"speed\": [", r->params, r->params_effective, r->params_active,
            r->weight_bytes, r->arena_bytes, r->kv_per_token, r->kv_full, r->compile_s,
            r->cached ? "true" : "false");
    for (int i = 0; i < r->n_speed; i++) {
        const gmrt_bench_speed *s = &r->speed[i];
        fprintf(f, "%s\n  {\"threads\": %d, \"pp_tps_best\": %.4f, \"pp_tps_median\": %.4f, "
                "\"tg_tps_best\": %.4f, \"tg_tps_median\": %.4f}", i ? "," : "", s->threads,
                s->pp_best_tps, s->pp_median_tps, s->tg_best_tps, s->tg_median_tps);
    }
    fprintf(f, "],\n \"prompt\": %d, \"gen\": %d, \"ppl\": %.6f", r->prompt, r->gen,
            r->ppl);
    if (r->has_costs) {
        fprintf(f, ",\n \"costs\": {\"decode_weight_bytes\": %" PRIu64 ", \"kv_bytes_per_pos\": "
                "%" PRIu64 ", \"dense_macs\": %.17g, \"head_macs\": %.17g, "
                "\"attn_macs_per_key\": %.17g, \"peak\": %d, \"step_barriers\": %.0f, "
                "\"decode_expert_bytes\": %" PRIu64 ", \"expert_bytes\": %" PRIu64 ", "
                "\"type_macs\": ", r->costs.decode_weight_bytes, r->costs.kv_bytes_per_pos,
                r->costs.dense_macs, r->costs.head_macs, r->costs.attn_macs_per_key,
                (int)r->costs.peak, r->costs.step_barriers, r->costs.decode_expert_bytes,
                r->costs.expert_bytes);
        write_by_type(f, r->costs.type_macs);
        fprintf(f, ", \"type_bytes\": ");
        write_by_type(f, r->costs.type_bytes);
        fprintf(f, "}");
    }
    fprintf(f, "}\n");
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return false;
    }
    return true;
}

static double jnum(const gmrt_json_value *o, const char *key)
{
    double d = 0;
    return gmrt_json_number(gmrt_json_get(o, key), &d) ? d : 0;
}

/* The object write_by_type wrote (absent: all 0). */
static void read_by_type(const gmrt_json_value *o, double *v)
{
    for (int d = 0; o && d < GMK_DTYPE_COUNT; d++)
        if (gmrt_dtype_name(d))
            v[d] = jnum(o, gmrt_dtype_name(d));
}

static void jstr(const gmrt_json_value *o, const char *key, char *out, size_t cap)
{
    const gmrt_json_value *v = gmrt_json_get(o, key);
    snprintf(out, cap, "%s", v && v->kind == GMRT_JSON_STRING ? v->u.s.p : "");
}

static void read_speeds(const gmrt_json_value *a, result *r)
{
    for (size_t i = 0; a && a->kind == GMRT_JSON_ARRAY && i < a->u.c.n &&
                       r->n_speed < GMC_SWEEP_MAX_THREADS; i++) {
        const gmrt_json_value *s = &a->u.c.items[i];
        r->speed[r->n_speed++] = (gmrt_bench_speed){
            (int)jnum(s, "threads"), jnum(s, "pp_tps_best"), jnum(s, "pp_tps_median"),
            jnum(s, "tg_tps_best"), jnum(s, "tg_tps_median")};
    }
}

/* Reads results/<key>.json; false (status "missing") if absent or not a
 * result this program wrote. */
static bool read_result(const char *path, result *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->status, sizeof r->status, "missing");
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    gmrt_json *doc = NULL;
    gmrt_diag d = {0};
    if (!buf || n == 1 << 20 || gmrt_json_parse(buf, n, path, NULL, &doc, &d) != GMRT_OK) {
        free(buf);
        return false;
    }
    const gmrt_json_value *o = gmrt_json_root(doc);
    r->index = (int)jnum(o, "index");
    jstr(o, "name", r->name, sizeof r->name);
    jstr(o, "key", r->key, sizeof r->key);
    jstr(o, "status", r->status, sizeof r->status);
    jstr(o, "error", r->error, sizeof r->error);
    jstr(o, "target", r->target, sizeof r->target);
    const gmrt_json_value *ov = gmrt_json_get(o, "overrides");
    for (size_t i = 0; ov && ov->kind == GMRT_JSON_ARRAY && i < ov->u.c.n && i < MAX_OVR; i++) {
        const gmrt_json_value *p = &ov->u.c.items[i];
        if (p->kind != GMRT_JSON_ARRAY || p->u.c.n != 2 ||
            p->u.c.items[0].kind != GMRT_JSON_STRING || p->u.c.items[1].kind != GMRT_JSON_STRING)
            continue;
        snprintf(r->ovr_path[r->n_ovr], 128, "%s", p->u.c.items[0].u.s.p);
        snprintf(r->ovr_value[r->n_ovr++], 128, "%s", p->u.c.items[1].u.s.p);
    }
    r->params = (uint64_t)jnum(o, "params");
    r->params_effective = (uint64_t)jnum(o, "params_effective");
    r->params_active = (uint64_t)jnum(o, "params_active");
    r->weight_bytes = (uint64_t)jnum(o, "weight_bytes");
    r->arena_bytes = (uint64_t)jnum(o, "arena_bytes");
    r->kv_per_token = (uint64_t)jnum(o, "kv_bytes_per_token");
    r->kv_full = (uint64_t)jnum(o, "kv_bytes_full");
    r->compile_s = jnum(o, "compile_s");
    const gmrt_json_value *c = gmrt_json_get(o, "cached");
    r->cached = c && c->kind == GMRT_JSON_BOOL && c->u.b;
    read_speeds(gmrt_json_get(o, "speed"), r);
    r->prompt = (int)jnum(o, "prompt");
    r->gen = (int)jnum(o, "gen");
    r->ppl = jnum(o, "ppl");
    const gmrt_json_value *co = gmrt_json_get(o, "costs");
    if (co && co->kind == GMRT_JSON_OBJECT) {
        double peak = jnum(co, "peak");
        r->has_costs = peak >= 0 && peak <= GMRT_PEAK_F32;
        /* A key missing from a result written before it existed reads 0. */
        r->costs = (gmrt_bench_costs){
            .decode_weight_bytes = (uint64_t)jnum(co, "decode_weight_bytes"),
            .kv_bytes_per_pos = (uint64_t)jnum(co, "kv_bytes_per_pos"),
            .dense_macs = jnum(co, "dense_macs"),
            .head_macs = jnum(co, "head_macs"),
            .attn_macs_per_key = jnum(co, "attn_macs_per_key"),
            .peak = (gmrt_peak_kind)peak,
            .step_barriers = jnum(co, "step_barriers"),
            .decode_expert_bytes = (uint64_t)jnum(co, "decode_expert_bytes"),
            .expert_bytes = (uint64_t)jnum(co, "expert_bytes")};
        read_by_type(gmrt_json_get(co, "type_macs"), r->costs.type_macs);
        read_by_type(gmrt_json_get(co, "type_bytes"), r->costs.type_bytes);
    }
    gmrt_json_destroy(doc);
    free(buf);
    return true;
}

/* ------------------------------------------------------------ one variant */

/* What the runner knows: the sweep, the options, where things go. */
typedef struct ctx {
    const gmc_sweep *s;
    const char *out;          /* the output directory */
    int jobs;
    bool keep_weights;
    bool tty;                 /* progress line with ETA on stderr */
} ctx;

/* A variant's paths and keys. */
typedef struct job {
    const gmc_sweep_variant *v;
    char yaml[4200];          /* out/variants/v<N>.yaml */
    char res[4200];           /* out/results/<key>.json */
    char weights[4200];       /* out/weights/<graph hash>-s<seed>.gguf */
    char cache[32];           /* sweep-<graph hash>: the build cache's name */
    char key[17];
    const char *yaml_error;   /* the overrides could not be put in; NULL if fine */
} job;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops at once */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The diagnostic as gemmac prints it (with the source line and caret). */
static void diag_text(const gmc_diag *d, char *out, size_t cap)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (f) {
        gmc_diag_print(d, f);
        fclose(f);
    }
    snprintf(out, cap, "%s", buf ? buf : d->msg);
    free(buf);
    size_t len = strlen(out);
    while (len && out[len - 1] == '\n')
        out[--len] = '\0';
}

static void base_result(const ctx *c, const job *j, result *r)
{
    memset(r, 0, sizeof *r);
    r->index = j->v->index;
    snprintf(r->name, sizeof r->name, "%s", j->v->name);
    snprintf(r->key, sizeof r->key, "%s", j->key);
    snprintf(r->target, sizeof r->target, "%s", c->s->target);
    r->prompt = c->s->prompt;
    r->gen = c->s->gen;
    gmc_arena a;
    gmc_arena_init(&a);
    for (size_t i = 0; i < j->v->n_ovr && r->n_ovr < MAX_OVR; i++) {
        snprintf(r->ovr_path[r->n_ovr], 128, "%s", j->v->ovr[i].path);
        snprintf(r->ovr_value[r->n_ovr++], 128, "%s",
                 gmc_sweep_node_text(j->v->ovr[i].value, &a));
    }
    gmc_arena_deinit(&a);
}

static gmc_options build_options(const ctx *c, const job *j)
{
    return (gmc_options){.graph = j->yaml, .target = c->s->target, .max_batch = c->s->batch,
                         .cache_name = j->cache};
}

/* Validates and plans (the plan's numbers), compiles into the build cache
 * and writes the random weights: status "built", or "invalid" / "failed"
 * with the error. */
static void build_variant(const ctx *c, const job *j, result *r)
{
    base_result(c, j, r);
    if (j->yaml_error) {
        snprintf(r->status, sizeof r->status, "invalid");
        snprintf(r->error, sizeof r->error, "%s", j->yaml_error);
        return;
    }
    gmc_options o = build_options(c, j);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_graph *g;
    gmc_target_config tc;
    gmc_status st = gmc_front(&o, &a, &g, &tc, NULL, &d);
    if (st == GMC_OK) {
        gmc_params pc = gmc_model_param_counts(g->model);
        r->params = pc.total;
        r->params_effective = pc.total - pc.mapped;
        r->params_active = pc.active;
        r->weight_bytes = g->weight_bytes;
        r->arena_bytes = g->arena_bytes;
        r->kv_per_token = g->kv_bytes_per_token;
        r->kv_full = g->kv_bytes;
        snprintf(r->target, sizeof r->target, "%s", tc.target->name);
        st = gmc_plan_costs(g, &r->costs, &d);
        r->has_costs = st == GMC_OK;
    }
    gmc_arena_deinit(&a);
    if (st != GMC_OK) {
        snprintf(r->status, sizeof r->status, "invalid");
        diag_text(&d, r->error, sizeof r->error);
        return;
    }
    gmc_result br;
    double t0 = now_s();
    st = gmc_compile(&o, &br, &d);
    r->compile_s = now_s() - t0;
    r->cached = st == GMC_OK && br.cached;
    struct stat sb;
    if (st == GMC_OK && !c->s->weights && stat(j->weights, &sb) != 0) {
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", j->weights, (long)getpid());
        st = gmc_init_weights(j->yaml, tmp, c->s->seed, false, &d);
        if (st == GMC_OK && rename(tmp, j->weights) != 0)
            st = gmc_fail(&d, GMC_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
        if (st != GMC_OK)
            unlink(tmp);
    }
    snprintf(r->status, sizeof r->status, st == GMC_OK ? "built" : "failed");
    if (st != GMC_OK)
        diag_text(&d, r->error, sizeof r->error);
}

/* A whole text file (a regular file, at most 4 MiB: the tokenizer's cap),
 * malloc'd and NUL-terminated; NULL with the error in d. */
static char *read_text(const char *path, size_t *len, gmrt_diag *d)
{
    enum { MAX = 4 << 20 };
    FILE *f;
    if (gmrt_file_fopen_read(path, &f, d) != GMRT_OK)
        return NULL;
    char *buf = malloc(MAX + 1);
    *len = buf ? fread(buf, 1, MAX + 1, f) : 0;
    bool bad = !buf || ferror(f) || *len > MAX;
    fclose(f);
    if (bad) {
        gmrt_fail(d, GMRT_ERR_IO, "cannot read %s (or over 4 MiB)", path);
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/* The perplexity of the variant over the sweep's eval text (second half of
 * each chunk scored, as gemmac eval), at the sweep's largest thread count:
 * into r->ppl, or the error into err. */
static void eval_variant(const ctx *c, const gmk_model *m, const char *weights, result *r,
                         char *err, size_t cap)
{
    int threads = 1;
    for (int t = 0; t < c->s->n_threads; t++)
        threads = c->s->threads[t] > threads ? c->s->threads[t] : threads;
    gmrt_session_opts so = {.n_threads = threads, .requant = c->s->weights != NULL};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    gmrt_ppl_stats p;
    size_t len = 0;
    char *text = read_text(c->s->eval_text, &len, &d);
    if (!text)
        snprintf(err, cap, "eval: %s", d.msg);
    else if (gmrt_session_create(m, weights, &so, &s, &d) != GMRT_OK ||
             gmrt_eval_text(s, text, len, c->s->eval_ctx < m->n_ctx ? c->s->eval_ctx
                                                                     : m->n_ctx,
                            false, &p, &d) != GMRT_OK)
        snprintf(err, cap, "eval: %s", d.msg);
    else
        r->ppl = p.ppl;
    gmrt_session_destroy(s);
    free(text);
}

/* Loads the built model.so and measures every thread count: status "ok",
 * or "failed" with the error. */
static void bench_variant(const ctx *c, const job *j, result *r)
{
    gmc_options o = build_options(c, j);
    gmc_result br;
    gmc_diag d;
    gmc_diag_clear(&d);
    void *h = NULL;
    const gmk_model *const *entry = NULL;
    char err[1024] = "";
    struct stat sb;
    if (stat(j->weights, &sb) != 0) { /* measured before, or removed: write them again */
        build_variant(c, j, r);
        if (strcmp(r->status, "built") != 0)
            return;
    }
    if (gmc_compile(&o, &br, &d) != GMC_OK || gmc_verify_product(br.so_path, br.so_hash, &d))
        diag_text(&d, err, sizeof err);
    else if (br.runs != GMC_RUNS_NATIVE)
        snprintf(err, sizeof err, "target %s does not run natively here", r->target);
    else if (!(h = dlopen(br.so_path, RTLD_NOW | RTLD_LOCAL)))
        snprintf(err, sizeof err, "cannot load %s: %s", br.so_path, dlerror());
    else if (!(entry = dlsym(h, "gmk_model_entry")))
        snprintf(err, sizeof err, "%s has no gmk_model_entry", br.so_path);
    r->n_speed = 0;
    for (int t = 0; !err[0] && t < c->s->n_threads; t++) {
        gmrt_diag rd = {0};
        if (gmrt_bench_measure(*entry, j->weights, c->s->weights != NULL, c->s->threads[t],
                               c->s->prompt, c->s->gen, c->s->reps, &r->speed[t],
                               &rd) != GMRT_OK)
            snprintf(err, sizeof err, "bench at %d threads: %s", c->s->threads[t], rd.msg);
        else
            r->n_speed = t + 1;
    }
    if (!err[0] && c->s->eval_text)
        eval_variant(c, *entry, j->weights, r, err, sizeof err);
    if (h)
        dlclose(h);
    snprintf(r->status, sizeof r->status, err[0] ? "failed" : "ok");
    snprintf(r->error, sizeof r->error, "%s", err);
    if (!c->keep_weights && !c->s->weights) /* the random ones only */
        unlink(j->weights);
}

/* ------------------------------------------------------------ jobs */

static bool make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* Writes text to path unless it holds exactly that already. */
static bool write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (f) {
        char *old = malloc(len + 1);
        size_t n = old ? fread(old, 1, len + 1, f) : 0;
        fclose(f);
        bool same = old && n == len && memcmp(old, text, len) == 0;
        free(old);
        if (same)
            return true;
    }
    f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Each variant's graph text, written to variants/v<N>.yaml, and its keys. */
static gmc_status make_jobs(const ctx *c, gmc_arena *a, job *jobs, size_t only,
                            gmc_diag *diag)
{
    const gmc_sweep *s = c->s;
    for (size_t i = 0; i < s->n_variants; i++) {
        job *j = &jobs[i];
        j->v = &s->variants[i];
        if (only && j->v->index != (int)only)
            continue;
        gmc_strbuf b, plain;
        gmc_strbuf_init(&b);
        gmc_strbuf_init(&plain);
        gmc_diag d;
        if (gmc_sweep_variant_yaml(s, j->v, a, true, &b, &d) != GMC_OK ||
            gmc_sweep_variant_yaml(s, j->v, a, false, &plain, &d) != GMC_OK) {
            char *e = gmc_arena_alloc(a, 1536);
            if (e)
                diag_text(&d, e, 1536);
            j->yaml_error = e ? e : "out of memory";
        }
        const char *text = gmc_strbuf_str(&b);
        /* the key: the graph without comments, which name the sweep file */
        uint64_t gh = gmc_hash_bytes(GMC_HASH_INIT, gmc_strbuf_str(&plain), plain.len);
        gmc_strbuf_deinit(&plain);
        if (j->yaml_error) /* no text: keyed by what failed */
            gh = gmc_hash_bytes(gmc_hash_bytes(gh, j->v->name, strlen(j->v->name)),
                                j->yaml_error, strlen(j->yaml_error));
        gh = gmc_hash_bytes(gh, s->target, strlen(s->target));
        gh = gmc_hash_bytes(gh, &s->batch, sizeof s->batch);
        uint64_t rk = gmc_hash_bytes(gh, &s->seed, sizeof s->seed);
        rk = gmc_hash_bytes(rk, s->threads, sizeof s->threads);
        int32_t bench[3] = {s->prompt, s->gen, s->reps};
        rk = gmc_hash_bytes(rk, bench, sizeof bench);
        /* real weights and the eval text are part of what is measured (and
         * leave the keys of sweeps without them as they were) */
        if (s->weights)
            rk = gmc_hash_bytes(rk, s->weights, strlen(s->weights) + 1);
        if (s->eval_text)
            rk = gmc_hash_bytes(gmc_hash_bytes(rk, s->eval_text, strlen(s->eval_text) + 1),
                                &s->eval_ctx, sizeof s->eval_ctx);
        snprintf(j->key, sizeof j->key, "%016" PRIx64, rk);
        snprintf(j->cache, sizeof j->cache, "sweep-%016" PRIx64, gh);
        snprintf(j->yaml, sizeof j->yaml, "%s/variants/v%d.yaml", c->out, j->v->index);
        snprintf(j->res, sizeof j->res, "%s/results/%s.json", c->out, j->key);
        if (s->weights)
            snprintf(j->weights, sizeof j->weights, "%s", s->weights);
        else
            snprintf(j->weights, sizeof j->weights, "%s/weights/%016" PRIx64 "-s%" PRIu64
                     ".gguf", c->out, gh, s->seed);
        bool ok = !gmc_strbuf_failed(&b) && write_text(j->yaml, text, b.len);
        gmc_strbuf_deinit(&b);
        if (!ok)
            return gmc_fail(diag, GMC_ERR_IO, "cannot write %s: %s", j->yaml, strerror(errno));
    }
    return GMC_OK;
}

static gmc_status make_out_dirs(const char *out, gmc_diag *diag)
{
    static const char *const sub[] = {"", "/variants", "/results", "/weights"};
    char p[4200];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", out, sub[i]);
        if (!make_dir(p))
            return gmc_fail(diag, GMC_ERR_IO, "cannot create %s: %s", p, strerror(errno));
    }
    return GMC_OK;
}

/* variants.tsv: what the tables list, in order (read by report). */
static gmc_status write_index(const ctx *c, const job *jobs, gmc_diag *diag)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/variants.tsv", c->out);
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_emitf(&b, "# sweep\t%s\t%s\n", c->s->name, c->s->file);
    for (size_t i = 0; i < c->s->n_variants; i++)
        gmc_emitf(&b, "%d\t%s\t%s\n", jobs[i].v->index, jobs[i].key, jobs[i].v->name);
    bool ok = !gmc_strbuf_failed(&b) && write_text(path, gmc_strbuf_str(&b), b.len);
    gmc_strbuf_deinit(&b);
    return ok ? GMC_OK : gmc_fail(diag, GMC_ERR_IO, "cannot write %s", path);
}

/* ------------------------------------------------------------ progress */

typedef struct progress {
    const ctx *c;
    const char *phase;
    size_t done, total;
    double t0;
} progress;

static void progress_line(progress *p, const char *name, const char *what)
{
    char eta[32] = "";
    double el = now_s() - p->t0;
    if (p->done > 0 && p->done < p->total) {
        double left = el / (double)p->done * (double)(p->total - p->done);
        snprintf(eta, sizeof eta, ", ETA %dm%02ds", (int)left / 60, (int)left % 60);
    }
    if (p->c->tty)
        fprintf(stderr, "\r\033[K[%s %zu/%zu%s] %s: %s", p->phase, p->done, p->total, eta,
                name, what);
    else
        fprintf(stderr, "sweep: [%s %zu/%zu] %s: %s\n", p->phase, p->done, p->total, name,
                what);
}

static void progress_end(const progress *p)
{
    if (p->c->tty && p->total)
        fputc('\n', stderr);
}

/* One line about a finished result. */
static void describe(const result *r, char *out, size_t cap)
{
    if (strcmp(r->status, "ok") == 0 && r->n_speed) {
        const gmrt_bench_speed *s = &r->speed[r->n_speed - 1];
        snprintf(out, cap, "pp %.1f t/s, tg %.1f t/s at %d thread%s", s->pp_median_tps,
                 s->tg_median_tps, s->threads, s->threads == 1 ? "" : "s");
    } else if (strcmp(r->status, "built") == 0)
        snprintf(out, cap, "built (%.1f s%s)", r->compile_s, r->cached ? ", cached" : "");
    else
        snprintf(out, cap, "%s: %.*s", r->status, (int)strcspn(r->error, "\n"), r->error);
}

/* ------------------------------------------------------------ phases */

static bool needs_build(const result *r)
{
    return strcmp(r->status, "ok") != 0 && strcmp(r->status, "invalid") != 0 &&
           strcmp(r->status, "built") != 0;
}

/* Builds every variant without a usable result, c->jobs at a time, each in
 * a child process that writes its result file. */
static void build_all(const ctx *c, const job *jobs)
{
    size_t n = c->s->n_variants, todo = 0;
    pid_t *pid = calloc(n, sizeof *pid);
    result *r = malloc(sizeof *r);
    if (!pid || !r) {
        free(pid), free(r);
        return;
    }
    bool *want = calloc(n, sizeof *want);
    for (size_t i = 0; want && i < n; i++)
        todo += want[i] = (!read_result(jobs[i].res, r) || needs_build(r));
    progress p = {c, "build", 0, todo, now_s()};
    int running = 0;
    for (size_t i = 0; want && (i < n || running) && !interrupted;) {
        if (i < n && !want[i]) {
            i++;
            continue;
        }
        if (i < n && running < c->jobs) {
            progress_line(&p, jobs[i].v->name, "building");
            fflush(NULL); /* nothing buffered is written twice */
            pid[i] = fork();
            if (pid[i] == 0) {
                signal(SIGINT, SIG_DFL);
                build_variant(c, &jobs[i], r);
                _exit(write_result(jobs[i].res, r) ? 0 : 1);
            }
            if (pid[i] < 0) { /* cannot fork: build here */
                build_variant(c, &jobs[i], r);
                (void)write_result(jobs[i].res, r);
                pid[i] = 0;
                p.done++;
            } else
                running++;
            i++;
            continue;
        }
        int status;
        pid_t w = wait(&status);
        if (w < 0)
            continue; /* EINTR: interrupted is checked above */
        for (size_t k = 0; k < n; k++) {
            if (pid[k] != w)
                continue;
            pid[k] = 0;
            running--;
            p.done++;
            if (!read_result(jobs[k].res, r) || !WIFEXITED(status)) {
                base_result(c, &jobs[k], r);
                snprintf(r->status, sizeof r->status, "failed");
                snprintf(r->error, sizeof r->error, "the build process %s %d",
                         WIFSIGNALED(status) ? "died of signal" : "exited with",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                (void)write_result(jobs[k].res, r);
            }
            char line[256];
            describe(r, line, sizeof line);
            progress_line(&p, jobs[k].v->name, line);
        }
    }
    while (running > 0 && wait(NULL) > 0) /* interrupted: the children got SIGINT too */
        running--;
    progress_end(&p);
    free(want);
    free(pid);
    free(r);
}

/* Benchmarks every built variant, one at a time. */
static void bench_all(const ctx *c, const job *jobs)
{
    size_t n = c->s->n_variants, todo = 0;
    result *r = malloc(sizeof *r);
    for (size_t i = 0; r && i < n; i++)
        todo += read_result(jobs[i].res, r) && strcmp(r->status, "built") == 0;
    progress p = {c, "bench", 0, todo, now_s()};
    for (size_t i = 0; r && i < n && !interrupted; i++) {
        if (!read_result(jobs[i].res, r) || strcmp(r->status, "built") != 0)
            continue;
        progress_line(&p, jobs[i].v->name, "measuring");
        bench_variant(c, &jobs[i], r);
        (void)write_result(jobs[i].res, r);
        p.done++;
        char line[256];
        describe(r, line, sizeof line);
        progress_line(&p, jobs[i].v->name, line);
    }
    progress_end(&p);
    free(r);
}

/* ------------------------------------------------------------ reports */

/* The tables' rows: one per variant and thread count (one for a variant
 * without speeds). */
typedef struct row {
    const result *r;
    const gmrt_bench_speed *sp; /* NULL: not measured */
    bool front;                 /* on the Pareto front of its thread count */
    bool has_pred;              /* the machine profile has this thread count */
    gmrt_prediction pred;
} row;

typedef struct table {
    result *res;
    size_t n_res;
    row *rows;
    size_t n_rows;
    char name[128];
    const char *cols[MAX_OVR * 4];  /* override paths, first use first */
    size_t n_cols;
    char machine[4200];             /* the profile predicted with; "" none */
} table;

static const char *const metric_cols[] = {
    "params", "params_effective", "params_active", "weight_bytes", "arena_bytes",
    "kv_bytes_per_token", "kv_bytes_full", "memory_bytes", "compile_s", "threads",
    "pp_tps_best", "pp_tps_median", "tg_tps_best", "tg_tps_median",
    "pp_tps_predicted", "pp_ratio", "tg_tps_predicted", "tg_ratio", "ppl"};
#define FIRST_SPEED 9      /* metric_cols[FIRST_SPEED..]: measured speeds */
#define FIRST_PREDICTED 14 /* metric_cols[FIRST_PREDICTED..]: the cost model's */
#define PPL_COL 18         /* perplexity over the eval text */
#define N_METRICS (sizeof metric_cols / sizeof metric_cols[0])

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* A column's value in a row; false if it has none (not numeric, not
 * measured). */
static bool value_of(const row *w, const char *col, double *out)
{
    const result *r = w->r;
    const gmrt_bench_speed *s = w->sp;
    const gmrt_prediction *p = &w->pred;
    double v[N_METRICS] = {
        (double)r->params, (double)r->params_effective, (double)r->params_active,
        (double)r->weight_bytes, (double)r->arena_bytes, (double)r->kv_per_token,
        (double)r->kv_full, (double)(r->weight_bytes + r->kv_full), r->compile_s,
        s ? s->threads : 0, s ? s->pp_best_tps : 0, s ? s->pp_median_tps : 0,
        s ? s->tg_best_tps : 0, s ? s->tg_median_tps : 0,
        p->pp_tps, s && p->pp_tps > 0 ? s->pp_median_tps / p->pp_tps : 0,
        p->tg_tps, s && p->tg_tps > 0 ? s->tg_median_tps / p->tg_tps : 0, r->ppl};
    _Static_assert(N_METRICS == PPL_COL + 1, "metric_cols and v[] differ");
    for (size_t i = 0; i < N_METRICS; i++)
        if (strcmp(col, metric_cols[i]) == 0) {
            *out = v[i];
            if (i == PPL_COL)
                return strcmp(r->status, "ok") == 0 && v[i] > 0;
            if (i >= FIRST_PREDICTED)
                return w->has_pred && v[i] > 0;
            return strcmp(r->status, "ok") == 0 && (i < FIRST_SPEED || s);
        }
    for (int i = 0; i < r->n_ovr; i++)
        if (strcmp(col, r->ovr_path[i]) == 0) {
            char *end;
            *out = strtod(r->ovr_value[i], &end);
            return end != r->ovr_value[i] && *end == '\0' && strcmp(r->status, "ok") == 0;
        }
    return false;
}

/* Marks the rows no other row of the same thread count beats on both
 * (x no larger and y no smaller, one of them strictly); into front[] if
 * given, else row.front. */
static void pareto(table *t, const char *x, const char *y, bool *front)
{
    for (size_t i = 0; i < t->n_rows; i++) {
        double xi, yi, xj, yj;
        bool on = value_of(&t->rows[i], x, &xi) && value_of(&t->rows[i], y, &yi);
        for (size_t j = 0; on && j < t->n_rows; j++) {
            const row *a = &t->rows[i], *b = &t->rows[j];
            if (j == i || !value_of(b, x, &xj) || !value_of(b, y, &yj) ||
                (a->sp && b->sp && a->sp->threads != b->sp->threads))
                continue;
            if (xj <= xi && yj >= yi && (xj < xi || yj > yi))
                on = false;
        }
        if (front)
            front[i] = on;
        else
            t->rows[i].front = on;
    }
}

/* A CSV field, quoted when it must be (RFC 4180). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static const char *ovr_of(const result *r, const char *path)
{
    for (int i = 0; i < r->n_ovr; i++)
        if (strcmp(r->ovr_path[i], path) == 0)
            return r->ovr_value[i];
    return "";
}

static bool write_csv(const table *t, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "index,variant,status");
    for (size_t c = 0; c < t->n_cols; c++) {
        fputc(',', f);
        csv_field(f, t->cols[c]);
    }
    for (size_t m = 0; m < N_METRICS; m++)
        fprintf(f, ",%s", metric_cols[m]);
    fprintf(f, ",pareto,error\n");
    for (size_t i = 0; i < t->n_rows; i++) {
        const row *w = &t->rows[i];
        fprintf(f, "%d,", w->r->index);
        csv_field(f, w->r->name);
        fprintf(f, ",%s", w->r->status);
        for (size_t c = 0; c < t->n_cols; c++) {
            fputc(',', f);
            csv_field(f, ovr_of(w->r, t->cols[c]));
        }
        for (size_t m = 0; m < N_METRICS; m++) {
            double v;
            if (value_of(w, metric_cols[m], &v))
                fprintf(f, m == PPL_COL ? ",%.4f"
                           : m == 8 || m == FIRST_PREDICTED + 1 || m == FIRST_PREDICTED + 3
                               ? ",%.3f"
                           : m > FIRST_SPEED ? ",%.2f" : ",%.0f", v);
            else
                fputc(',', f);
        }
        fprintf(f, ",%d,", w->front);
        char first[512];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(w->r->error, "\n"), w->r->error);
        csv_field(f, first);
        fputc('\n', f);
    }
    bool ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

/* A Markdown cell: '|' escaped, one line. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s && *s != '\n'; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

/* "predicted | ratio | " cells, or dashes without a prediction. */
static void md_predicted(FILE *f, const row *w, const char *pred, const char *ratio)
{
    double p, q;
    if (value_of(w, pred, &p) && value_of(w, ratio, &q))
        fprintf(f, "%.1f | %.2f | ", p, q);
    else if (value_of(w, pred, &p))
        fprintf(f, "%.1f | – | ", p);
    else
        fprintf(f, "– | – | ");
}

static bool write_md(const table *t, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "Sweep `%s`: %zu variants.  Memory = weights + KV cache at full context; "
            "t/s best = at the fastest run, median = at the median run; "
            "★ = on the Pareto front of decode speed against memory at that thread "
            "count.\n\n", t->name, t->n_res);
    if (t->machine[0])
        fprintf(f, "Predicted: the cost model with the machine profile `%s` "
                "(docs/experiments.md#cost-model); ratio = measured median / predicted.\n\n",
                t->machine);
    fprintf(f, "| # | variant | params (M) | weights (MiB) | KV/token (KiB) | KV full (MiB) | "
            "arena (MiB) | memory (MiB) | compile (s) | threads | pp t/s best | pp t/s median "
            "| pp predicted | ratio | tg t/s best | tg t/s median | tg predicted | ratio | ppl "
            "| |\n");
    fprintf(f, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:"
            "|:-:|\n");
    for (size_t i = 0; i < t->n_rows; i++) {
        const row *w = &t->rows[i];
        const result *r = w->r;
        if (strcmp(r->status, "ok") != 0 || !w->sp)
            continue;
        fprintf(f, "| %d | ", r->index);
        md_cell(f, r->name);
        fprintf(f, " | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %.1f | %.1f | ",
                (double)r->params / 1e6, mib(r->weight_bytes),
                (double)r->kv_per_token / 1024.0, mib(r->kv_full), mib(r->arena_bytes),
                mib(r->weight_bytes + r->kv_full), r->compile_s, w->sp->threads,
                w->sp->pp_best_tps, w->sp->pp_median_tps);
        md_predicted(f, w, "pp_tps_predicted", "pp_ratio");
        fprintf(f, "%.1f | %.1f | ", w->sp->tg_best_tps, w->sp->tg_median_tps);
        md_predicted(f, w, "tg_tps_predicted", "tg_ratio");
        double ppl;
        if (value_of(w, "ppl", &ppl))
            fprintf(f, "%.3f | ", ppl);
        else
            fprintf(f, "– | ");
        fprintf(f, "%s |\n", w->front ? "★" : "");
    }
    bool head = false;
    for (size_t i = 0; i < t->n_res; i++) {
        const result *r = &t->res[i];
        if (strcmp(r->status, "ok") == 0)
            continue;
        if (!head)
            fprintf(f, "\nNot measured:\n\n");
        head = true;
        fprintf(f, "- %d `", r->index);
        md_cell(f, r->name);
        fprintf(f, "`: %s%s", r->status, r->error[0] ? ": " : "");
        md_cell(f, r->error);
        fputc('\n', f);
    }
    bool ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

/* ------------------------------------------------------------ plots */

static bool have_gnuplot(void)
{
    const char *path = getenv("PATH");
    char buf[4200];
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)n, p);
        if (access(buf, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* Runs gnuplot on script in dir; false if it failed. */
static bool run_gnuplot(const char *dir, const char *script)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(127);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* "attention.kv_heads:tg_tps_median" → "attention_kv_heads-tg_tps_median" */
static void file_stem(const char *x, const char *y, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%s", x, y);
    for (char *c = out; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            *c = '_';
}

static bool is_speed(const char *col)
{
    return strncmp(col, "pp_", 3) == 0 || strncmp(col, "tg_", 3) == 0;
}

/* plot-<stem>.{png,svg}: y against x, one series per thread count (one
 * series when neither is a speed), the Pareto front (smaller x, larger y)
 * joined by a line, each point labelled with its variant's index. */
static bool plot(const table *t, const char *dir, const char *x, const char *y,
                 const char *stem, const char *xlabel, const char *ylabel, double xscale)
{
    char path[4300];
    bool *front = calloc(t->n_rows + 1, sizeof *front);
    if (!front)
        return false;
    pareto((table *)t, x, y, front);
    snprintf(path, sizeof path, "%s/plots/%s.tsv", dir, stem);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(front);
        return false;
    }
    /* per series (thread count; one series when neither column is a
     * speed): the points, then the front sorted by x, as two data sets
     * (gnuplot's index 2k and 2k+1) */
    int series[GMC_SWEEP_MAX_THREADS], n_series = 0;
    bool per_thread = is_speed(x) || is_speed(y);
    size_t points = 0, *order = calloc(t->n_rows + 1, sizeof *order);
    double xv, yv, lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (size_t i = 0; order && i < t->n_rows; i++) {
        const row *w = &t->rows[i];
        if (!value_of(w, x, &xv) || !value_of(w, y, &yv))
            continue;
        bool seen = false;
        for (int k = 0; k < n_series; k++)
            seen |= series[k] == w->sp->threads;
        if (!seen && n_series < GMC_SWEEP_MAX_THREADS && (per_thread || n_series == 0))
            series[n_series++] = w->sp->threads;
    }
    for (int k = 0; order && k < n_series; k++) {
        size_t n_front = 0;
        for (size_t i = 0; i < t->n_rows; i++) {
            const row *w = &t->rows[i];
            if (!value_of(w, x, &xv) || !value_of(w, y, &yv) || w->sp->threads != series[k])
                continue;
            fprintf(f, "%.6g\t%.6g\t%d\n", xv * xscale, yv, w->r->index);
            points++;
            const double v[2] = {xv * xscale, yv};
            for (int a = 0; a < 2; a++)
                lo[a] = fmin(lo[a], v[a]), hi[a] = fmax(hi[a], v[a]);
            if (!front[i])
                continue;
            size_t at = n_front++; /* insertion sort by x */
            double xa;
            while (at > 0 && value_of(&t->rows[order[at - 1]], x, &xa) && xa > xv) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = i;
        }
        fprintf(f, "\n\n");
        for (size_t i = 0; i < n_front; i++) {
            const row *w = &t->rows[order[i]];
            (void)value_of(w, x, &xv);
            (void)value_of(w, y, &yv);
            fprintf(f, "%.6g\t%.6g\t%d\n", xv * xscale, yv, w->r->index);
        }
        fprintf(f, "\n\n");
    }
    free(order);
    fclose(f);
    free(front);
    if (!points)
        return false;
    snprintf(path, sizeof path, "%s/plots/%s.gp", dir, stem);
    f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "# generated by gemmac sweep (docs/experiments.md): gnuplot %s.gp\n"
            "set datafile separator '\\t'\nset key outside right top\nset grid\n"
            "set xlabel '%s'\nset ylabel '%s'\nset title \"%s\" noenhanced\n", stem, xlabel,
            ylabel, t->name);
    for (int a = 0; a < 2; a++) /* one value: a range around it, not gnuplot's warning */
        if (lo[a] == hi[a]) {
            double d = lo[a] ? fabs(lo[a]) / 20 : 1;
            fprintf(f, "set %crange [%.6g:%.6g]\n", a ? 'y' : 'x', lo[a] - d, hi[a] + d);
        }
    for (int fmt = 0; fmt < 2; fmt++) {
        fprintf(f, "set terminal %s size %s\nset output '%s.%s'\nplot ",
                fmt ? "svg dynamic" : "pngcairo", fmt ? "900,560" : "900,560", stem,
                fmt ? "svg" : "png");
        for (int k = 0; k < n_series; k++) {
            char title[32] = "variants";
            if (per_thread)
                snprintf(title, sizeof title, "%d thread%s", series[k], series[k] > 1 ? "s" : "");
            fprintf(f, "%s'%s.tsv' index %d using 1:2 with points pt 7 ps 1.2 lc %d "
                    "title '%s', '' index %d using 1:2:3 with labels offset 0.8,0.6 "
                    "notitle, '' index %d using 1:2 with linespoints pt 6 ps 2.2 dt 2 lc %d title "
                    "'Pareto front%s%s'", k ? ", " : "", stem, 2 * k, k + 1, title, 2 * k,
                    2 * k + 1, k + 1, per_thread ? ", " : "", per_thread ? title : "");
        }
        fprintf(f, "\n");
    }
    fclose(f);
    char script[300];
    snprintf(script, sizeof script, "%s.gp", stem);
    snprintf(path, sizeof path, "%s/plots", dir);
    return run_gnuplot(path, script);
}

static const char *column_label(const char *col)
{
    static const struct { const char *col, *label; } l[] = {
        {"memory_bytes", "weights + KV cache at full context (MiB)"},
        {"tg_tps_median", "decode tokens/s (median)"},
        {"tg_tps_best", "decode tokens/s (best)"},
        {"pp_tps_median", "prefill tokens/s (median)"},
        {"pp_tps_best", "prefill tokens/s (best)"},
        {"tg_tps_predicted", "decode tokens/s (predicted)"},
        {"pp_tps_predicted", "prefill tokens/s (predicted)"},
        {"tg_ratio", "decode: measured / predicted"},
        {"pp_ratio", "prefill: measured / predicted"},
        {"ppl", "perplexity"},
    };
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (strcmp(col, l[i].col) == 0)
            return l[i].label;
    return col;
}

static bool known_column(const table *t, const char *col)
{
    for (size_t i = 0; i < N_METRICS; i++)
        if (strcmp(col, metric_cols[i]) == 0)
            return true;
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(col, t->cols[i]) == 0)
            return true;
    return false;
}

static int write_plots(const table *t, const char *dir, const char *const *plots, int n_plots)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/plots", dir);
    if (!have_gnuplot()) {
        fprintf(stderr, "sweep: gnuplot is not installed (Debian: gnuplot-nox; scripts/setup "
                "installs it): no plots\n");
        return 0;
    }
    if (!make_dir(path)) {
        fprintf(stderr, "sweep: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = 0;
    if (!plot(t, dir, "memory_bytes", "tg_tps_median", "speed-memory",
              column_label("memory_bytes"), column_label("tg_tps_median"), 1.0 / 1048576))
        fprintf(stderr, "sweep: no speed-memory plot (nothing measured, or gnuplot failed)\n");
    for (int i = 0; i < n_plots; i++) {
        char x[128], stem[300];
        const char *y = strchr(plots[i], ':');
        snprintf(x, sizeof x, "%.*s", y ? (int)(y - plots[i]) : 0, plots[i]);
        if (!y || !known_column(t, x) || !known_column(t, y + 1)) {
            fprintf(stderr, "sweep: --plot %s: expected X:Y, two columns of results.csv\n",
                    plots[i]);
            rc = 2;
            continue;
        }
        file_stem(x, y + 1, stem, sizeof stem);
        char pstem[320];
        snprintf(pstem, sizeof pstem, "plot-%s", stem);
        double scale = strcmp(x, "memory_bytes") == 0 ? 1.0 / 1048576 : 1.0;
        if (!plot(t, dir, x, y + 1, pstem, column_label(x), column_label(y + 1), scale))
            fprintf(stderr, "sweep: --plot %s: no numeric values to plot, or gnuplot "
                    "failed\n", plots[i]);
    }
    return rc;
}

/* Reads variants.tsv and the results it names, and writes results.csv,
 * results.md and the plots into dir. */
/* The machine profile of the predictions: the one named (an error if it
 * cannot be read), else the default of the results' target if there is
 * one.  t->machine stays "" without a profile. */
static int load_machine(table *t, const char *named, gmrt_machine *m, bool quiet)
{
    const char *target = t->n_res ? t->res[0].target : "";
    char path[4200];
    if (named)
        snprintf(path, sizeof path, "%s", named);
    else if (!target[0] || !gmrt_machine_default_path(target, path, sizeof path))
        return 0;
    if (!named && access(path, F_OK) != 0) {
        if (!quiet)
            fprintf(stderr, "sweep: no machine profile at %s: no predictions (gemmac bench "
                    "--calibrate writes it; docs/experiments.md#cost-model)\n", path);
        return 0;
    }
    gmrt_diag d = {0};
    if (gmrt_machine_load(path, m, &d) != GMRT_OK) {
        fprintf(stderr, "gemmac sweep: %s\n", d.msg);
        return 1;
    }
    snprintf(t->machine, sizeof t->machine, "%s", path);
    return 0;
}

/* Each measured row's prediction at its thread count. */
static void predict_rows(table *t, const gmrt_machine *m)
{
    for (size_t i = 0; t->machine[0] && i < t->n_rows; i++) {
        row *w = &t->rows[i];
        const gmrt_machine_threads *mt = w->sp ? gmrt_machine_find(m, w->sp->threads) : NULL;
        if (!mt || !w->r->has_costs)
            continue;
        gmrt_machine_predict(mt, &w->r->costs, w->r->prompt, w->r->gen, &w->pred);
        w->has_pred = true;
    }
}

static int report(const char *dir, const char *machine, const char *const *plots,
                  int n_plots, bool quiet)
{
    char path[4200], line[2048];
    snprintf(path, sizeof path, "%s/variants.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "gemmac sweep: cannot read %s: %s (gemmac sweep --emit or a sweep "
                "run writes it)\n", path, strerror(errno));
        return 1;
    }
    table t = {0};
    size_t cap = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "# sweep\t", 8) == 0) {
            snprintf(t.name, sizeof t.name, "%.*s", (int)strcspn(line + 8, "\t"), line + 8);
            continue;
        }
        char *k = strchr(line, '\t'), *nm = k ? strchr(k + 1, '\t') : NULL;
        if (!nm || nm - k != 17)
            continue;
        if (t.n_res == cap) {
            cap = cap ? 2 * cap : 16;
            result *nr = realloc(t.res, cap * sizeof *nr);
            if (!nr) {
                rc = 1;
                break;
            }
            t.res = nr;
        }
        result *r = &t.res[t.n_res++];
        char rp[4300];
        snprintf(rp, sizeof rp, "%s/results/%.16s.json", dir, k + 1);
        if (!read_result(rp, r)) {
            r->index = atoi(line);
            snprintf(r->name, sizeof r->name, "%s", nm + 1);
        }
    }
    fclose(f);
    t.rows = rc ? NULL : calloc(t.n_res * GMC_SWEEP_MAX_THREADS + 1, sizeof *t.rows);
    for (size_t i = 0; t.rows && i < t.n_res; i++) {
        result *r = &t.res[i];
        for (int k = 0; k < r->n_ovr; k++) {
            bool seen = false;
            for (size_t c = 0; c < t.n_cols; c++)
                seen |= strcmp(t.cols[c], r->ovr_path[k]) == 0;
            if (!seen && t.n_cols < sizeof t.cols / sizeof t.cols[0])
                t.cols[t.n_cols++] = r->ovr_path[k];
        }
        for (int k = 0; k < r->n_speed; k++)
            t.rows[t.n_rows++] = (row){.r = r, .sp = &r->speed[k]};
        if (!r->n_speed)
            t.rows[t.n_rows++] = (row){.r = r};
    }
    if (!t.rows && !rc)
        rc = 1;
    gmrt_machine mach;
    if (!rc && !(rc = load_machine(&t, machine, &mach, quiet)))
        predict_rows(&t, &mach);
    if (!rc) {
        pareto(&t, "memory_bytes", "tg_tps_median", NULL);
        snprintf(path, sizeof path, "%s/results.csv", dir);
        if (!write_csv(&t, path))
            rc = 1, fprintf(stderr, "gemmac sweep: cannot write %s\n", path);
        snprintf(path, sizeof path, "%s/results.md", dir);
        if (!rc && !write_md(&t, path))
            rc = 1, fprintf(stderr, "gemmac sweep: cannot write %s\n", path);
        if (!rc)
            rc = write_plots(&t, dir, plots, n_plots);
        size_t ok = 0;
        for (size_t i = 0; i < t.n_res; i++)
            ok += strcmp(t.res[i].status, "ok") == 0;
        if (!quiet)
            fprintf(stderr, "sweep: %zu of %zu variants measured; %s/results.{csv,md}%s\n", ok,
                    t.n_res, dir, have_gnuplot() ? ", plots/" : "");
    }
    free(t.rows);
    free(t.res);
    return rc;
}

/* ------------------------------------------------------------ emit */

/* A ninja variable value: $ and newlines escaped away. */
static void ninja_value(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '$' || *s == ' ' || *s == ':')
            fputc('$', f);
        if (*s == '\n')
            continue;
        fputc(*s, f);
    }
}

static gmc_status emit_ninja(const ctx *c, const job *jobs, gmc_diag *diag)
{
    char self[4096], sweep[PATH_MAX], out[PATH_MAX], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || !realpath(c->s->file, sweep) || !realpath(c->out, out))
        return gmc_fail(diag, GMC_ERR_IO, "cannot resolve the paths of gemmac, %s or %s",
                        c->s->file, c->out);
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/build.ninja", c->out);
    FILE *f = fopen(path, "w");
    if (!f)
        return gmc_fail(diag, GMC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# generated by gemmac sweep --emit from %s: one independent job per variant\n"
            "# (docs/experiments.md).  ninja -C DIR runs them all, then collects.\n\n"
            "gemmac = ", c->s->file);
    ninja_value(f, self);
    fprintf(f, "\nsweep = ");
    ninja_value(f, sweep);
    fprintf(f, "\ndir = ");
    ninja_value(f, out);
    fprintf(f, "\n\nrule variant\n  command = $gemmac sweep $sweep --one $index -o $dir\n"
            "  description = variant $index: $name\n\n"
            "rule collect\n  command = $gemmac sweep --collect $dir\n"
            "  description = collect results\n\n");
    for (size_t i = 0; i < c->s->n_variants; i++) {
        fprintf(f, "build results/%s.json: variant\n  index = %d\n  name = ", jobs[i].key,
                jobs[i].v->index);
        ninja_value(f, jobs[i].v->name);
        fprintf(f, "\n");
    }
    fprintf(f, "\nbuild results.csv results.md: collect");
    for (size_t i = 0; i < c->s->n_variants; i++)
        fprintf(f, " results/%s.json", jobs[i].key);
    fprintf(f, "\n\ndefault results.csv\n");
    bool ok = !ferror(f);
    if (fclose(f) != 0 || !ok)
        return gmc_fail(diag, GMC_ERR_IO, "cannot write %s", path);
    return GMC_OK;
}

/* ------------------------------------------------------------ command */

static void help(void)
{
    printf("usage: gemmac sweep SWEEP.yaml [-o DIR] [-j N] [--plot X:Y]... [--keep-weights]\n"
           "       gemmac sweep SWEEP.yaml --emit DIR     write DIR/build.ninja: one job a "
           "variant\n"
           "       gemmac sweep SWEEP.yaml --one N -o DIR build and measure variant N only\n"
           "       gemmac sweep --collect DIR [--plot X:Y]... [--machine FILE]\n"
           "                                   tabulate DIR's results\n\n"
           "Builds every variant of a base graph that the sweep file describes\n"
           "(docs/experiments.md), with seeded random weights, measures prefill and\n"
           "decode speed, and writes results.csv, results.md and plots (gnuplot) of\n"
           "decode speed against memory with the Pareto front marked.  Results are\n"
           "kept per variant: a rerun measures only what is missing.\n\n"
           "  -o DIR          output directory (default: <sweep name>-results next to\n"
           "                  the sweep file)\n"
           "  -j N            build N variants at a time (benchmarks run one at a time)\n"
           "  --plot X:Y      also plot column Y against column X of results.csv\n"
           "  --machine FILE  predict with this machine profile (default: the one\n"
           "                  gemmac bench --calibrate wrote for the target, if any)\n"
           "  --keep-weights  keep each variant's random weights under DIR/weights\n");
}

typedef struct sweep_args {
    const char *file, *out, *emit, *collect, *machine;
    long one, jobs;
    bool keep;
    const char *plots[MAX_PLOTS];
    int n_plots;
} sweep_args;

static bool parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    return gmrt_cli_parse_long("gemmac sweep", flag, s, lo, hi, out);
}

/* Returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, sweep_args *a)
{
    *a = (sweep_args){.jobs = 1};
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(s, "-o") || !strcmp(s, "-j") || !strcmp(s, "--plot") ||
                     !strcmp(s, "--emit") || !strcmp(s, "--collect") || !strcmp(s, "--one") ||
                     !strcmp(s, "--machine");
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            help();
            return 0;
        }
        if (takes && !v) {
            fprintf(stderr, "gemmac sweep: %s needs a value\n", s);
            return 2;
        }
        if (!strcmp(s, "-o"))
            a->out = v;
        else if (!strcmp(s, "--emit"))
            a->emit = v;
        else if (!strcmp(s, "--collect"))
            a->collect = v;
        else if (!strcmp(s, "--machine"))
            a->machine = v;
        else if (!strcmp(s, "-j") && !parse_long("-j", v, 1, 256, &a->jobs))
            return 2;
        else if (!strcmp(s, "--one") && !parse_long("--one", v, 1, GMC_SWEEP_MAX_VARIANTS, &a->one))
            return 2;
        else if (!strcmp(s, "--plot")) {
            if (a->n_plots == MAX_PLOTS) {
                fprintf(stderr, "gemmac sweep: at most %d --plot\n", MAX_PLOTS);
                return 2;
            }
            a->plots[a->n_plots++] = v;
        } else if (!strcmp(s, "--keep-weights"))
            a->keep = true;
        else if (!takes && s[0] != '-' && !a->file)
            a->file = s;
        else if (!takes) {
            fprintf(stderr, "gemmac sweep: unknown argument \"%s\" (see --help)\n", s);
            return 2;
        }
        i += takes;
    }
    if (!a->file && !a->collect) {
        fprintf(stderr, "gemmac sweep: no sweep file given (gemmac sweep SWEEP.yaml)\n");
        return 2;
    }
    if ((a->emit != NULL) + (a->collect != NULL) + (a->one != 0) > 1 ||
        (a->collect && a->file)) {
        fprintf(stderr, "gemmac sweep: --emit, --collect and --one go alone (--collect takes "
                "no sweep file)\n");
        return 2;
    }
    return -1;
}

/* The default output directory: <name>-results beside the sweep file. */
static const char *default_out(const gmc_sweep *s, gmc_arena *a)
{
    const char *slash = strrchr(s->file, '/');
    size_t dir = slash ? (size_t)(slash - s->file) + 1 : 0;
    char *p = gmc_arena_alloc(a, dir + strlen(s->name) + 16);
    if (p)
        sprintf(p, "%.*s%s-results", (int)dir, s->file, s->name);
    return p;
}

/* Runs the sweep (all, or variant `one`) into c->out. */
static int run(ctx *c, const job *jobs, size_t one, const sweep_args *a)
{
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;
    if (one) {
        const job *j = &jobs[one - 1];
        result *r = malloc(sizeof *r);
        int rc = 1;
        if (r && (!read_result(j->res, r) || strcmp(r->status, "ok") != 0)) {
            if (!read_result(j->res, r) || needs_build(r))
                build_variant(c, j, r);
            if (strcmp(r->status, "built") == 0)
                bench_variant(c, j, r);
            rc = write_result(j->res, r) ? 0 : 1;
        } else if (r)
            rc = 0;
        if (r) {
            char line[256];
            describe(r, line, sizeof line);
            fprintf(stderr, "sweep: variant %zu (%s): %s\n", one, j->v->name, line);
        }
        free(r);
        sigaction(SIGINT, &old, NULL);
        return rc;
    }
    build_all(c, jobs);
    if (!interrupted)
        bench_all(c, jobs);
    sigaction(SIGINT, &old, NULL);
    int rc = report(c->out, a->machine, a->plots, a->n_plots, false);
    if (interrupted) {
        fprintf(stderr, "sweep: interrupted; what finished is kept: run the same command "
                "again to resume\n");
        return 130;
    }
    return rc;
}

int gmc_sweep_main(int argc, char **argv)
{
    sweep_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.collect)
        return report(a.collect, a.machine, a.plots, a.n_plots, false);
    gmc_arena ar;
    gmc_arena_init(&ar);
    gmc_sweep *s;
    gmc_diag d;
    gmc_diag_clear(&d);
    job *jobs = NULL;
    ctx c = {.jobs = (int)a.jobs, .keep_weights = a.keep, .tty = isatty(2)};
    if (gmc_sweep_load(a.file, &ar, &s, &d) != GMC_OK)
        rc = 1;
    else if (a.one && (size_t)a.one > s->n_variants) {
        fprintf(stderr, "gemmac sweep: --one %ld: %s has %zu variants\n", a.one, a.file,
                s->n_variants);
        rc = 2;
    } else {
        c.s = s;
        c.out = a.emit ? a.emit : a.out ? a.out : default_out(s, &ar);
        jobs = calloc(s->n_variants, sizeof *jobs);
        if (!c.out || !jobs)
            rc = 1, gmc_fail(&d, GMC_ERR_NOMEM, "out of memory");
        else if (make_out_dirs(c.out, &d) != GMC_OK ||
                 make_jobs(&c, &ar, jobs, (size_t)a.one, &d) != GMC_OK ||
                 (!a.one && write_index(&c, jobs, &d) != GMC_OK) ||
                 (a.emit && emit_ninja(&c, jobs, &d) != GMC_OK))
            rc = 1;
        else if (a.emit) {
            fprintf(stderr, "sweep: %zu variants; ninja -C %s runs them (one job each) and "
                    "collects; or run gemmac sweep %s --one N -o %s for N = 1..%zu, then "
                    "gemmac sweep --collect %s\n", s->n_variants, c.out, a.file, c.out,
                    s->n_variants, c.out);
            rc = 0;
        } else {
            fprintf(stderr, "sweep %s: %zu variant%s of %s into %s\n", s->name,
                    s->n_variants, s->n_variants == 1 ? "" : "s", s->base, c.out);
            rc = run(&c, jobs, (size_t)a.one, &a);
        }
    }
    if (rc == 1 && d.status != GMC_OK)
        gmc_diag_print(&d, stderr);
    free(jobs);
    gmc_arena_deinit(&ar);
    return rc;
}
