/*
 * costmodel.c — machine profiles and the speed they predict
 * (docs/experiments.md#cost-model).
 *
 * A machine profile is a small text file of `key value` lines: what
 * `gemmac bench --calibrate` measured (read bandwidth and compute peaks per
 * thread count, and the fraction of them the compiled kernels reached), or
 * what a user wrote by hand for a machine they do not have.  A prediction
 * divides a model's planned bytes per decode step and operations per
 * prefill (gmrt_bench_costs, the formulas of docs/benchmarks.md) by those
 * ceilings times the fractions.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmrt_tools.h"

#define PROFILE_MAX_BYTES 65536
#define TRY(expr)                                                                          \
    do {                                                                                   \
        gmrt_status try_ = (expr);                                                         \
        if (try_ != GMRT_OK)                                                               \
            return try_;                                                                   \
    } while (0)

/* The keys of a `threads N` section, once: the parser, the writer and the
 * docs' table follow this order.  A hand-written profile may leave out the
 * optional ones: efficiencies then default to 1 (the bare roofline) and
 * barrier_us to 0 (a profile written before it existed predicts as it did). */
static const struct {
    const char *key;
    size_t off;
    bool required;
    double dflt; /* of an optional key */
} section_keys[] = {
    {"read_gbs", offsetof(gmrt_machine_threads, read_gbs), true, 0},
    {"int8_gops", offsetof(gmrt_machine_threads, int8_gops), true, 0},
    {"bf16_gflops", offsetof(gmrt_machine_threads, bf16_gflops), true, 0},
    {"f32_gflops", offsetof(gmrt_machine_threads, f32_gflops), true, 0},
    {"decode_efficiency", offsetof(gmrt_machine_threads, decode_efficiency), false, 1},
    {"prefill_efficiency", offsetof(gmrt_machine_threads, prefill_efficiency), false, 1},
    {"barrier_us", offsetof(gmrt_machine_threads, barrier_us), false, 0},
};
#define N_SECTION_KEYS (sizeof section_keys / sizeof section_keys[0])

static double *field(gmrt_machine_threads *t, size_t k)
{
    return (double *)((char *)t + section_keys[k].off);
}

/* ------------------------------------------------------------ parsing */

typedef struct parser {
    const char *path;
    int line;
    gmrt_machine *m;
    gmrt_machine_threads *cur;  /* the open section, or NULL */
    int cur_line;               /* its `threads` line */
    bool seen[N_SECTION_KEYS];
    gmrt_diag *diag;
} parser;

/* An error at the current line: "path:line: message". */
static gmrt_status GMRT_PRINTF(2, 3) perr(const parser *p, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gmrt_fail(p->diag, GMRT_ERR_FORMAT, "%s:%d: %s", p->path, p->line, msg);
}

/* A finished section must have every required key; fills the defaults. */
static gmrt_status close_section(parser *p)
{
    if (!p->cur)
        return GMRT_OK;
    for (size_t k = 0; k < N_SECTION_KEYS; k++) {
        if (p->seen[k])
            continue;
        if (section_keys[k].required)
            return gmrt_fail(p->diag, GMRT_ERR_FORMAT, "%s:%d: threads %d has no %s",
                             p->path, p->cur_line, p->cur->threads, section_keys[k].key);
        *field(p->cur, k) = section_keys[k].dflt;
    }
    p->cur = NULL;
    return GMRT_OK;
}

static gmrt_status open_section(parser *p, const char *value)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (*end || errno || n < 1 || n > GMRT_ROOF_MAX_THREADS)
        return perr(p, "threads needs a whole number in [1, %d], got \"%s\"",
                    GMRT_ROOF_MAX_THREADS, value);
    gmrt_machine *m = p->m;
    if (m->n > 0 && n <= m->t[m->n - 1].threads)
        return perr(p, "threads %ld: sections go in increasing thread counts, each once", n);
    if (m->n == GMRT_MACHINE_MAX_THREADS)
        return perr(p, "more than %d thread counts", GMRT_MACHINE_MAX_THREADS);
    TRY(close_section(p));
    p->cur = &m->t[m->n++];
    memset(p->cur, 0, sizeof *p->cur);
    p->cur->threads = (int)n;
    p->cur_line = p->line;
    memset(p->seen, 0, sizeof p->seen);
    return GMRT_OK;
}

/* The per-weight-type keys of a section, `<prefix><dtype> F`: one array a
 * prefix, 0 marking a type not given. */
static const struct {
    const char *prefix;
    size_t off;
} type_keys[] = {
    {"decode_efficiency_", offsetof(gmrt_machine_threads, type_decode_efficiency)},
    {"prefill_efficiency_", offsetof(gmrt_machine_threads, type_prefill_efficiency)},
};
#define N_TYPE_KEYS (sizeof type_keys / sizeof type_keys[0])

static double *type_field(gmrt_machine_threads *t, size_t k)
{
    return (double *)((char *)t + type_keys[k].off);
}

/* The type key k's value: a positive number, once a section. */
static gmrt_status type_value(parser *p, size_t k, const char *key, const char *value)
{
    int32_t dt = gmrt_dtype_from_name(key + strlen(type_keys[k].prefix));
    if (dt < 0 || dt >= GMK_DTYPE_COUNT)
        return perr(p, "unknown weight type in \"%s\" (%s then a type as gemmac names it: "
                    "q4_0, q8_0, q4_k, f16, bf16, ...)", key, type_keys[k].prefix);
    if (!p->cur)
        return perr(p, "%s comes before any \"threads N\" line", key);
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (*end || errno || !isfinite(v) || v <= 0)
        return perr(p, "%s needs a positive number, got \"%s\"", key, value);
    double *a = type_field(p->cur, k);
    if (a[dt] > 0)
        return perr(p, "%s is given twice for threads %d", key, p->cur->threads);
    a[dt] = v;
    return GMRT_OK;
}

#define CURVE_KEY "cache_curve"

/* `cache_curve MiB:GB/s ...`: positive numbers, sizes increasing, at most
 * GMRT_CACHE_POINTS pairs, once a section. */
static gmrt_status curve_value(parser *p, const char *value)
{
    if (!p->cur)
        return perr(p, CURVE_KEY " comes before any \"threads N\" line");
    gmrt_machine_threads *t = p->cur;
    if (t->n_cache)
        return perr(p, CURVE_KEY " is given twice for threads %d", t->threads);
    for (const char *s = value; *s;) {
        char *end;
        errno = 0;
        double mib = strtod(s, &end);
        bool ok = end != s && *end == ':' && !errno && isfinite(mib) && mib > 0;
        const char *g = end + 1;
        double gbs = ok ? strtod(g, &end) : 0;
        ok = ok && end != g && (*end == ' ' || *end == '\t' || !*end) && !errno &&
             isfinite(gbs) && gbs > 0;
        if (!ok)
            return perr(p, CURVE_KEY " needs MiB:GB/s pairs of positive numbers, got \"%.40s\"",
                        s);
        if (t->n_cache == GMRT_CACHE_POINTS)
            return perr(p, CURVE_KEY " has more than %d points", GMRT_CACHE_POINTS);
        if (t->n_cache && mib <= t->cache_mib[t->n_cache - 1])
            return perr(p, CURVE_KEY ": sizes go up (%g after %g)", mib,
                        t->cache_mib[t->n_cache - 1]);
        t->cache_mib[t->n_cache] = mib;
        t->cache_gbs[t->n_cache++] = gbs;
        for (s = end; *s == ' ' || *s == '\t'; s++)
            ;
    }
    return GMRT_OK;
}

static gmrt_status section_value(parser *p, const char *key, const char *value)
{
    for (size_t k = 0; k < N_TYPE_KEYS; k++)
        if (!strncmp(key, type_keys[k].prefix, strlen(type_keys[k].prefix)))
            return type_value(p, k, key, value);
    if (!strcmp(key, CURVE_KEY))
        return curve_value(p, value);
    size_t k = 0;
    while (k < N_SECTION_KEYS && strcmp(section_keys[k].key, key) != 0)
        k++;
    if (k == N_SECTION_KEYS) {
        char known[400] = "";
        for (size_t i = 0; i < N_SECTION_KEYS; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), ", %s",
                     section_keys[i].key);
        for (size_t i = 0; i < N_TYPE_KEYS; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), ", %s<type>",
                     type_keys[i].prefix);
        return perr(p, "unknown key \"%s\" (known: target, cpu, threads%s, " CURVE_KEY ")",
                    key, known);
    }
    if (!p->cur)
        return perr(p, "%s comes before any \"threads N\" line", key);
    if (p->seen[k])
        return perr(p, "%s is given twice for threads %d", key, p->cur->threads);
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    /* A time may be 0 (none); a bandwidth, peak or fraction may not. */
    bool zero_ok = !section_keys[k].required && section_keys[k].dflt == 0;
    if (*end || errno || !isfinite(v) || v < 0 || (v == 0 && !zero_ok))
        return perr(p, "%s needs a %s number, got \"%s\"", key,
                    zero_ok ? "non-negative" : "positive", value);
    p->seen[k] = true;
    *field(p->cur, k) = v;
    return GMRT_OK;
}

/* One line without its newline: blank, a comment, or `key value`. */
static gmrt_status parse_line(parser *p, char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    if (!*s || *s == '#')
        return GMRT_OK;
    char *value = s + strcspn(s, " \t");
    if (*value)
        *value++ = '\0';
    while (*value == ' ' || *value == '\t')
        value++;
    if (!*value)
        return perr(p, "%s has no value", s);
    if (!strcmp(s, "threads"))
        return open_section(p, value);
    if (!strcmp(s, "target") || !strcmp(s, "cpu")) {
        if (p->cur)
            return perr(p, "%s belongs before the first \"threads N\" line", s);
        char *dst = !strcmp(s, "target") ? p->m->target : p->m->cpu;
        size_t cap = !strcmp(s, "target") ? sizeof p->m->target : sizeof p->m->cpu;
        if (strlen(value) >= cap)
            return perr(p, "%s is too long: \"%.60s\"", s, value);
        memcpy(dst, value, strlen(value) + 1);
        return GMRT_OK;
    }
    return section_value(p, s, value);
}

gmrt_status gmrt_machine_parse(const char *text, const char *path, gmrt_machine *out,
                               gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    parser p = {.path = path, .m = out, .diag = diag};
    char line[512];
    for (const char *s = text; *s;) {
        size_t n = strcspn(s, "\n");
        p.line++;
        if (n >= sizeof line)
            return perr(&p, "line longer than %zu bytes", sizeof line - 1);
        memcpy(line, s, n);
        line[n] = '\0';
        TRY(parse_line(&p, line));
        s += n + (s[n] == '\n');
    }
    TRY(close_section(&p));
    if (out->n == 0)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: no \"threads N\" section: a profile "
                         "needs at least one (docs/experiments.md#machine-profiles)", path);
    return GMRT_OK;
}

gmrt_status gmrt_machine_load(const char *path, gmrt_machine *out, gmrt_diag *diag)
{
    FILE *f;
    TRY(gmrt_file_fopen_read(path, &f, diag));
    char *buf = malloc(PROFILE_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, PROFILE_MAX_BYTES + 1, f) : 0;
    int rerr = buf && ferror(f) ? errno : 0;
    fclose(f);
    gmrt_status st = GMRT_OK;
    if (!buf)
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    else if (rerr)
        st = gmrt_fail(diag, GMRT_ERR_IO, "cannot read %s: %s", path, strerror(rerr));
    else if (n > PROFILE_MAX_BYTES || memchr(buf, '\0', n))
        st = gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: not a machine profile (%s)", path,
                       n > PROFILE_MAX_BYTES ? "over 64 KiB" : "a NUL byte");
    if (st == GMRT_OK) {
        buf[n] = '\0';
        st = gmrt_machine_parse(buf, path, out, diag);
    }
    free(buf);
    return st;
}

/* ------------------------------------------------------------ writing */

gmrt_status gmrt_machine_save(const char *path, const gmrt_machine *m, const char *note,
                              gmrt_diag *diag)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    fprintf(f, "# gemmac machine profile (docs/experiments.md#machine-profiles)\n");
    if (note && *note)
        fprintf(f, "# %s\n", note);
    if (m->target[0])
        fprintf(f, "target %s\n", m->target);
    if (m->cpu[0])
        fprintf(f, "cpu %s\n", m->cpu);
    for (int i = 0; i < m->n; i++) {
        gmrt_machine_threads t = m->t[i];
        fprintf(f, "\nthreads %d\n", t.threads);
        for (size_t k = 0; k < N_SECTION_KEYS; k++)
            fprintf(f, "%-19s %.6g\n", section_keys[k].key, *field(&t, k));
        for (size_t k = 0; k < N_TYPE_KEYS; k++)
            for (int d = 0; d < GMK_DTYPE_COUNT; d++)
                if (type_field(&t, k)[d] > 0)
                    fprintf(f, "%s%s %.6g\n", type_keys[k].prefix, gmrt_dtype_name(d),
                            type_field(&t, k)[d]);
        if (t.n_cache) {
            fprintf(f, "%-19s", CURVE_KEY);
            for (int i = 0; i < t.n_cache; i++)
                fprintf(f, " %.6g:%.6g", t.cache_mib[i], t.cache_gbs[i]);
            fprintf(f, "\n");
        }
    }
    fclose(f);
    gmrt_file_replace w;
    gmrt_status st = text ? gmrt_file_replace_begin(&w, path, diag)
                          : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    if (st == GMRT_OK) {
        bool ok = write(w.fd, text, len) == (ssize_t)len;
        int err = ok ? 0 : errno ? errno : EIO;
        if (close(w.fd) != 0 && !err)
            err = errno;
        w.fd = -1;
        if (err) {
            gmrt_file_replace_abort(&w);
            st = gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: %s", path, strerror(err));
        } else
            st = gmrt_file_replace_commit(&w, diag);
    }
    free(text);
    return st;
}

bool gmrt_machine_default_path(const char *target, char *buf, size_t cap)
{
    char root[4096];
    bool shared;
    gmrt_cache_root(root, sizeof root, &shared);
    return snprintf(buf, cap, "%s/machine-%s.txt", root, target) < (int)cap;
}

/* ------------------------------------------------------------ prediction */

const gmrt_machine_threads *gmrt_machine_find(const gmrt_machine *m, int threads)
{
    for (int i = 0; i < m->n; i++)
        if (m->t[i].threads == threads)
            return &m->t[i];
    return NULL;
}

double gmrt_machine_peak(const gmrt_machine_threads *t, gmrt_peak_kind kind)
{
    return kind == GMRT_PEAK_INT8 ? t->int8_gops
           : kind == GMRT_PEAK_BF16 ? t->bf16_gflops
                                    : t->f32_gflops;
}

double gmrt_machine_gbs_at(const gmrt_machine_threads *t, double bytes)
{
    double mib = bytes / 1048576.0, g = t->read_gbs;
    int n = t->n_cache;
    if (n == 0 || mib > t->cache_mib[n - 1])
        return g;
    if (mib <= t->cache_mib[0])
        g = t->cache_gbs[0];
    else
        for (int i = 1; i < n; i++)
            if (mib <= t->cache_mib[i]) {
                double f = log(mib / t->cache_mib[i - 1]) /
                           log(t->cache_mib[i] / t->cache_mib[i - 1]);
                g = t->cache_gbs[i - 1] + f * (t->cache_gbs[i] - t->cache_gbs[i - 1]);
                break;
            }
    return g > t->read_gbs ? g : t->read_gbs;
}

double gmrt_machine_read_s(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                           int n_gen)
{
    double bytes = gmrt_bench_tg_bytes(c, n_gen), e = (double)c->decode_expert_bytes;
    double s = (bytes - e) / (gmrt_machine_gbs_at(t, bytes) * 1e9);
    if (e > 0)
        s += e / (gmrt_machine_gbs_at(t, bytes * (double)c->expert_bytes / e) * 1e9);
    return s;
}

double gmrt_machine_decode_efficiency(const gmrt_machine_threads *t,
                                      const gmrt_bench_costs *c)
{
    double typed = 0, s = 0;
    for (int d = 0; d < GMK_DTYPE_COUNT; d++)
        if (c->type_bytes[d] > 0 && t->type_decode_efficiency[d] > 0) {
            typed += c->type_bytes[d];
            s += c->type_bytes[d] / t->type_decode_efficiency[d];
        }
    double all = (double)c->decode_weight_bytes;
    if (typed <= 0 || all <= 0)
        return t->decode_efficiency;
    double rest = all > typed ? all - typed : 0;
    return all / (s + rest / t->decode_efficiency);
}

double gmrt_machine_step_s(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                           int n_gen)
{
    return gmrt_machine_read_s(t, c, n_gen) / gmrt_machine_decode_efficiency(t, c) +
           c->step_barriers * t->barrier_us * 1e-6;
}

double gmrt_machine_prefill_s(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                              int n_prompt)
{
    double n = n_prompt, typed = 0, s = 0;
    for (int d = 0; d < GMK_DTYPE_COUNT; d++) {
        if (c->type_macs[d] <= 0)
            continue;
        double eff = t->type_prefill_efficiency[d] > 0 ? t->type_prefill_efficiency[d]
                                                       : t->prefill_efficiency;
        double peak = gmrt_machine_peak(t, gmrt_bench_peak_of_dtype(d)) * 1e9;
        s += 2.0 * n * c->type_macs[d] / (peak * eff);
        typed += 2.0 * n * c->type_macs[d];
    }
    /* The head, the attention, and dense ops of no known type (none where
     * type_macs is filled) at the main peak. */
    double rest = gmrt_bench_pp_ops(c, n_prompt) - typed;
    return s + rest / (gmrt_machine_peak(t, c->peak) * 1e9 * t->prefill_efficiency);
}

void gmrt_machine_predict(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                          int n_prompt, int n_gen, gmrt_prediction *out)
{
    memset(out, 0, sizeof *out);
    out->threads = t->threads;
    if (n_gen > 0)
        out->tg_tps = 1.0 / gmrt_machine_step_s(t, c, n_gen);
    if (n_prompt > 0)
        out->pp_tps = n_prompt / gmrt_machine_prefill_s(t, c, n_prompt);
}
