/*
 * eval.c — `gemmac eval`: how close a compiled model is to a reference, and
 * how well it predicts a text.
 *
 * Reference mode reads a reference GGUF (format in docs/conformance.md: the
 * token sequences as metadata, and either every position's full logits or
 * the top-K log-probabilities), runs the same sequences and reports
 * KL(ref || ours), top-1 agreement and logit NMSE per sequence and overall.
 * Text mode reports perplexity and bits per byte over a text file in chunks
 * of --ctx tokens, scored as llama.cpp's perplexity tool scores them.
 * `--save-ref` writes our own top-K reference, to compare two builds.
 * `--ids` with `--logits-out` writes every position's logits for given
 * token ids (raw or .npy), to compare with any other implementation.
 *
 * All statistics are accumulated in double.  Nothing here is on the decode
 * path, so it allocates freely, but every size taken from a file is checked
 * against the compiled model before it is used.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmrt_tools.h"

#define EVAL_TEXT_MAX (4u << 20)  /* the tokenizer's own cap */
#define EVAL_TOPK_MAX 4096

/* ------------------------------------------------------------ reference */

/* A reference file, validated: n_seq sequences of at most n_pos tokens
 * (shorter ones are padded with -1), and either full logits or top-K. */
typedef struct ref_file {
    gmrt_gguf *g;
    int32_t n_seq, n_pos, n_vocab, k;  /* k = 0: full logits */
    const int32_t *tokens;             /* [n_seq][n_pos] */
    const float *logits;               /* [n_seq][n_pos][n_vocab] or NULL */
    const int32_t *topk_ids;           /* [n_seq][n_pos][k] or NULL */
    const float *topk_lp;              /* [n_seq][n_pos][k] */
    const float *rest_lp;              /* [n_seq][n_pos] or NULL */
} ref_file;

/* The F32 tensor `name` with exactly the shape ne[0..n_dims), or an error
 * naming the tensor and both shapes.  *out is NULL if absent and optional. */
static gmrt_status ref_tensor(const ref_file *r, const char *path, const char *name,
                              int n_dims, const int64_t *ne, bool optional,
                              const float **out, gmrt_diag *diag)
{
    *out = NULL;
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(r->g, name);
    if (!t)
        return optional ? GMRT_OK
                        : gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: reference has no tensor \"%s\"",
                                    path, name);
    if (t->dtype != GMK_DTYPE_F32)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%s\" is %s, expected f32", path,
                         name, gmrt_dtype_name(t->dtype));
    bool same = t->n_dims == n_dims;
    for (int d = 0; d < n_dims && same; d++)
        same = t->ne[d] == ne[d];
    if (!same)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                         "%s: tensor \"%s\" has shape [%lld, %lld, %lld] but [%lld, %lld, %lld] "
                         "was expected ([n_vocab or K, n_pos, n_seq]; the model's vocabulary "
                         "is %d)", path, name, (long long)t->ne[0], (long long)t->ne[1],
                         (long long)t->ne[2], (long long)ne[0], (long long)ne[1],
                         (long long)(n_dims > 2 ? ne[2] : 1), r->n_vocab);
    *out = t->data;
    return GMRT_OK;
}

static gmrt_status ref_dims(ref_file *r, const char *path, const gmk_model *m, gmrt_diag *diag)
{
    int64_t n_seq, n_pos;
    if (gmrt_gguf_get_int(r->g, "gemmac.ref.n_seq", &n_seq, diag) != GMRT_OK ||
        gmrt_gguf_get_int(r->g, "gemmac.ref.n_pos", &n_pos, diag) != GMRT_OK) {
        char why[sizeof diag->msg];
        snprintf(why, sizeof why, "%s", diag->msg);
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: not a gemmac reference (%s)", path, why);
    }
    if (n_seq < 1 || n_seq > 65536 || n_pos < 1 || n_pos > m->n_ctx)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                         "%s: %lld sequences of %lld positions; need 1..65536 sequences of "
                         "1..%d positions (the compiled context)", path, (long long)n_seq,
                         (long long)n_pos, m->n_ctx);
    r->n_seq = (int32_t)n_seq;
    r->n_pos = (int32_t)n_pos;
    r->n_vocab = m->n_vocab;
    uint64_t n;
    if (gmrt_gguf_get_i32s(r->g, "gemmac.ref.tokens", &r->tokens, &n, diag) != GMRT_OK)
        return GMRT_ERR_FORMAT;
    if (n != (uint64_t)n_seq * (uint64_t)n_pos)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: gemmac.ref.tokens has %llu ids, not "
                         "n_seq x n_pos = %lld", path, (unsigned long long)n,
                         (long long)(n_seq * n_pos));
    for (uint64_t i = 0; i < n; i++) {
        int32_t id = r->tokens[i];
        bool pad_ok = id == -1 && i % (uint64_t)n_pos != 0;
        if ((id < 0 || id >= m->n_vocab) && !pad_ok)
            return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                             "%s: sequence %llu position %llu: token id %d is not in [0, %d) "
                             "(the model's vocabulary)", path,
                             (unsigned long long)(i / (uint64_t)n_pos),
                             (unsigned long long)(i % (uint64_t)n_pos), id, m->n_vocab);
        if (id >= 0 && i % (uint64_t)n_pos != 0 && r->tokens[i - 1] == -1)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: sequence %llu: a token follows the "
                             "-1 padding", path, (unsigned long long)(i / (uint64_t)n_pos));
    }
    return GMRT_OK;
}

static gmrt_status ref_topk(ref_file *r, const char *path, gmrt_diag *diag)
{
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(r->g, "topk_logprobs");
    if (!t)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: reference has neither \"logits\" nor "
                         "\"topk_logprobs\"", path);
    if (t->ne[0] < 1 || t->ne[0] > EVAL_TOPK_MAX || t->ne[0] > r->n_vocab)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: top-K of %lld; need 1..%d and at most "
                         "the vocabulary", path, (long long)t->ne[0], EVAL_TOPK_MAX);
    r->k = (int32_t)t->ne[0];
    int64_t ne[3] = {r->k, r->n_pos, r->n_seq};
    gmrt_status st = ref_tensor(r, path, "topk_logprobs", 3, ne, false, &r->topk_lp, diag);
    if (st == GMRT_OK)
        st = ref_tensor(r, path, "rest_logprob", 2, ne + 1, true, &r->rest_lp, diag);
    uint64_t n;
    if (st == GMRT_OK)
        st = gmrt_gguf_get_i32s(r->g, "gemmac.ref.topk_ids", &r->topk_ids, &n, diag);
    if (st != GMRT_OK)
        return st;
    uint64_t want = (uint64_t)r->k * (uint64_t)r->n_pos * (uint64_t)r->n_seq;
    if (n != want)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: gemmac.ref.topk_ids has %llu ids, not "
                         "K x n_pos x n_seq = %llu", path, (unsigned long long)n,
                         (unsigned long long)want);
    for (uint64_t i = 0; i < n; i++)
        if (r->topk_ids[i] < 0 || r->topk_ids[i] >= r->n_vocab)
            return gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: top-K id %d (entry %llu) is not "
                             "in [0, %d)", path, r->topk_ids[i], (unsigned long long)i,
                             r->n_vocab);
    return GMRT_OK;
}

static gmrt_status ref_open(ref_file *r, const char *path, const gmk_model *m, gmrt_diag *diag)
{
    memset(r, 0, sizeof *r);
    gmrt_status st = gmrt_gguf_open(path, &r->g, diag);
    if (st == GMRT_OK)
        st = ref_dims(r, path, m, diag);
    if (st == GMRT_OK) {
        int64_t ne[3] = {r->n_vocab, r->n_pos, r->n_seq};
        if (gmrt_gguf_find_tensor(r->g, "logits"))
            st = ref_tensor(r, path, "logits", 3, ne, false, &r->logits, diag);
        else
            st = ref_topk(r, path, diag);
    }
    if (st != GMRT_OK) {
        gmrt_gguf_close(r->g);
        r->g = NULL;
    }
    return st;
}

/* ------------------------------------------------------------ metrics */

static int32_t argmax_f(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* log Σ exp(x), in double. */
static double log_sum_exp(const float *x, int32_t n)
{
    double m = x[argmax_f(x, n)], s = 0;
    for (int32_t i = 0; i < n; i++)
        s += exp((double)x[i] - m);
    return m + log(s);
}

/* KL(p || q) with both given as full logit rows. */
static double kl_full(const float *ref, const float *ours, int32_t n)
{
    double lr = log_sum_exp(ref, n), lo = log_sum_exp(ours, n), kl = 0;
    for (int32_t i = 0; i < n; i++) {
        double lp = (double)ref[i] - lr;
        double p = exp(lp);
        if (p > 0)
            kl += p * (lp - ((double)ours[i] - lo));
    }
    return kl > 0 ? kl : 0;
}

/* KL over the partition {each of the K reference ids, all the rest}.  By the
 * data-processing inequality this is a lower bound of the full KL.  mark is
 * n bytes of scratch, all zero on entry and on return. */
static double kl_topk(const int32_t *ids, const float *lp, const float *rest_lp, int32_t k,
                      const float *ours, int32_t n, unsigned char *mark)
{
    double lo = log_sum_exp(ours, n), kl = 0, p_top = 0, q_rest = 0;
    for (int32_t j = 0; j < k; j++) {
        double p = exp((double)lp[j]);
        p_top += p;
        mark[ids[j]] = 1;
        if (p > 0)
            kl += p * ((double)lp[j] - ((double)ours[ids[j]] - lo));
    }
    for (int32_t i = 0; i < n; i++)
        if (!mark[i])
            q_rest += exp((double)ours[i] - lo);
    for (int32_t j = 0; j < k; j++)
        mark[ids[j]] = 0;
    double p_rest = rest_lp ? exp((double)*rest_lp) : 1.0 - p_top;
    if (p_rest > 0)
        kl += p_rest * (log(p_rest) - log(q_rest > DBL_MIN ? q_rest : DBL_MIN));
    return kl > 0 ? kl : 0;
}

static double nmse_row(const float *ref, const float *ours, int32_t n)
{
    double num = 0, den = 0;
    for (int32_t i = 0; i < n; i++) {
        double d = (double)ours[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

/* The larger of x and y, or NaN if either is: a NaN must not be dropped. */
static double max_nan(double x, double y)
{
    return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
}

/* Counts the values of x[0..n) that are NaN or infinite. */
static int64_t count_nonfinite(const float *x, int32_t n)
{
    int64_t c = 0;
    for (int32_t i = 0; i < n; i++)
        c += !isfinite(x[i]);
    return c;
}

static void stats_add(gmrt_eval_stats *a, const gmrt_eval_stats *b)
{
    int64_t n = a->n + b->n;
    a->n_nonfinite_ref += b->n_nonfinite_ref;
    a->n_nonfinite_ours += b->n_nonfinite_ours;
    if (n == 0)
        return;
    a->kl_mean = (a->kl_mean * (double)a->n + b->kl_mean * (double)b->n) / (double)n;
    a->top1 = (a->top1 * (double)a->n + b->top1 * (double)b->n) / (double)n;
    a->nmse_mean = (a->nmse_mean * (double)a->n + b->nmse_mean * (double)b->n) / (double)n;
    a->kl_max = max_nan(a->kl_max, b->kl_max);
    a->nmse_max = max_nan(a->nmse_max, b->nmse_max);
    a->nll_sum += b->nll_sum;
    a->n_nll += b->n_nll;
    a->n = n;
}


/* The report's shape from the reference; NMSE is -1 without full logits. */
static void report_shape(gmrt_eval_report *out, const ref_file *r)
{
    out->n_seq = r->n_seq;
    out->n_pos = r->n_pos;
    out->n_vocab = r->n_vocab;
    out->top_k = r->k;
    out->all.nmse_mean = out->all.nmse_max = r->logits ? 0 : -1;
    out->first_nonfinite_seq = out->first_nonfinite_pos = -1;
}

/* Counts the NaN/Inf values of row `row` on both sides into st; true if
 * there are any (the row then has no meaningful metric). */
static bool row_nonfinite(const ref_file *r, size_t row, const float *o, gmrt_eval_stats *st)
{
    const int32_t V = r->n_vocab, K = r->k;
    int64_t nr = r->logits ? count_nonfinite(r->logits + row * (size_t)V, V)
                           : count_nonfinite(r->topk_lp + row * (size_t)K, K) +
                                 (r->rest_lp ? count_nonfinite(r->rest_lp + row, 1) : 0);
    int64_t no = count_nonfinite(o, V);
    st->n_nonfinite_ref += nr;
    st->n_nonfinite_ours += no;
    return nr || no;
}

/* Compares one sequence's rows with the reference; returns the position of
 * the first row holding a NaN/Inf, or -1. */
static int32_t score_seq(const ref_file *r, int32_t seq, int32_t len, const float *ours,
                         unsigned char *mark, gmrt_eval_stats *st)
{
    const int32_t V = r->n_vocab, K = r->k;
    const int32_t *tok = r->tokens + (size_t)seq * (size_t)r->n_pos;
    int32_t first_bad = -1;
    memset(st, 0, sizeof *st);
    for (int32_t i = 0; i < len; i++) {
        const float *o = ours + (size_t)i * (size_t)V;
        size_t row = (size_t)seq * (size_t)r->n_pos + (size_t)i;
        if (i + 1 < len) { /* ours alone: NaN below if ours has a NaN */
            st->nll_sum += log_sum_exp(o, V) - (double)o[tok[i + 1]];
            st->n_nll++;
        }
        if (row_nonfinite(r, row, o, st)) {
            first_bad = first_bad < 0 ? i : first_bad;
            continue;  /* the metrics become NaN below */
        }
        double kl;
        int32_t ref_top;
        if (r->logits) {
            const float *ref = r->logits + row * (size_t)V;
            kl = kl_full(ref, o, V);
            ref_top = argmax_f(ref, V);
            double e = nmse_row(ref, o, V);
            st->nmse_mean += e;
            st->nmse_max = e > st->nmse_max ? e : st->nmse_max;
        } else {
            const int32_t *ids = r->topk_ids + row * (size_t)K;
            const float *lp = r->topk_lp + row * (size_t)K;
            kl = kl_topk(ids, lp, r->rest_lp ? r->rest_lp + row : NULL, K, o, V, mark);
            ref_top = ids[argmax_f(lp, K)];
        }
        st->kl_mean += kl;
        st->kl_max = kl > st->kl_max ? kl : st->kl_max;
        st->top1 += argmax_f(o, V) == ref_top;
    }
    st->n = len;
    st->kl_mean /= len;
    st->top1 /= len;
    st->nmse_mean /= len;
    if (first_bad >= 0) /* never a perfect match: no threshold passes NaN */
        st->kl_mean = st->kl_max = st->top1 = st->nmse_mean = st->nmse_max = NAN;
    if (st->n_nonfinite_ours)
        st->nll_sum = NAN;
    if (!r->logits)
        st->nmse_mean = st->nmse_max = -1;
    return first_bad;
}

/* Records the first row with a NaN/Inf in the report. */
static void note_nonfinite(gmrt_eval_report *out, int32_t seq, int32_t pos)
{
    if (pos >= 0 && out->first_nonfinite_seq < 0) {
        out->first_nonfinite_seq = seq;
        out->first_nonfinite_pos = pos;
    }
}

static int32_t seq_len(const ref_file *r, int32_t seq)
{
    const int32_t *tok = r->tokens + (size_t)seq * (size_t)r->n_pos;
    int32_t n = 0;
    while (n < r->n_pos && tok[n] >= 0)
        n++;
    return n;
}

gmrt_status gmrt_eval_reference(gmrt_session *s, const gmk_model *m, const char *ref_path,
                                gmrt_eval_report *out, gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    ref_file r;
    gmrt_status st = ref_open(&r, ref_path, m, diag);
    if (st != GMRT_OK)
        return st;
    out->seq = calloc((size_t)r.n_seq, sizeof *out->seq);
    unsigned char *mark = calloc((size_t)r.n_vocab, 1);
    if (!out->seq || !mark)
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    report_shape(out, &r);
    for (int32_t q = 0; st == GMRT_OK && q < r.n_seq; q++) {
        int32_t len = seq_len(&r, q);
        const float *ours;
        gmrt_session_reset(s);
        st = gmrt_session_eval(s, r.tokens + (size_t)q * (size_t)r.n_pos, (size_t)len, true,
                               &ours, diag);
        if (st == GMRT_OK) {
            note_nonfinite(out, q, score_seq(&r, q, len, ours, mark, &out->seq[q]));
            stats_add(&out->all, &out->seq[q]);
        }
    }
    free(mark);
    gmrt_gguf_close(r.g);
    if (st != GMRT_OK)
        gmrt_eval_report_free(out);
    return st;
}

void gmrt_eval_report_free(gmrt_eval_report *r)
{
    free(r->seq);
    r->seq = NULL;
    r->n_seq = 0;
}

/* Scores another file's logits as gmrt_eval_reference scores a session's.
 * The other file must hold full logits for exactly the same sequences: a
 * KL against a reference is only comparable with ours on the same tokens. */
gmrt_status gmrt_eval_compare(const gmk_model *m, const char *ref_path, const char *other_path,
                              gmrt_eval_report *out, gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    ref_file r, o;
    gmrt_status st = ref_open(&r, ref_path, m, diag);
    if (st != GMRT_OK)
        return st;
    if ((st = ref_open(&o, other_path, m, diag)) != GMRT_OK) {
        gmrt_gguf_close(r.g);
        return st;
    }
    size_t n_tok = (size_t)r.n_seq * (size_t)r.n_pos;
    if (!o.logits)
        st = gmrt_fail(diag, GMRT_ERR_ARG, "%s: holds top-K log-probabilities; comparing "
                       "needs full logits", other_path);
    else if (o.n_seq != r.n_seq || o.n_pos != r.n_pos ||
             memcmp(o.tokens, r.tokens, n_tok * sizeof *r.tokens) != 0)
        st = gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s and %s: different token sequences",
                       ref_path, other_path);
    unsigned char *mark = calloc((size_t)r.n_vocab, 1);
    out->seq = calloc((size_t)r.n_seq, sizeof *out->seq);
    if (st == GMRT_OK && (!mark || !out->seq))
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    report_shape(out, &r);
    for (int32_t q = 0; st == GMRT_OK && q < r.n_seq; q++) {
        const float *rows = o.logits + (size_t)q * (size_t)r.n_pos * (size_t)r.n_vocab;
        note_nonfinite(out, q, score_seq(&r, q, seq_len(&r, q), rows, mark, &out->seq[q]));
        stats_add(&out->all, &out->seq[q]);
    }
    free(mark);
    gmrt_gguf_close(o.g);
    gmrt_gguf_close(r.g);
    if (st != GMRT_OK)
        gmrt_eval_report_free(out);
    return st;
}

/* ------------------------------------------------------------ text */

/* Tokenizes text (BOS per the vocabulary, special tokens not parsed: a text
 * file is data).  *out is malloc'd. */
static gmrt_status tokenize_text(const gmrt_vocab *v, const char *text, size_t len,
                                 int32_t **out, size_t *out_n, gmrt_diag *diag)
{
    *out = NULL;
    if (len > EVAL_TEXT_MAX)
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "text of %zu bytes; at most %u", len,
                         EVAL_TEXT_MAX);
    size_t cap = len + 2;  /* byte fallback: at most one token per byte, + BOS */
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory for %zu token ids", cap);
    gmrt_status st = gmrt_tokenize(v, text, len, gmrt_vocab_add_bos(v), false, ids, cap,
                                   out_n, diag);
    if (st != GMRT_OK) {
        free(ids);
        return st;
    }
    *out = ids;
    return GMRT_OK;
}

/* The chunking of text mode: chunk c is ids[c*ctx .. c*ctx+len), its first
 * token replaced by BOS (as llama.cpp's perplexity does) when the vocabulary
 * adds one.  Returns the number of chunks. */
static size_t text_chunks(size_t n_ids, int32_t ctx)
{
    return n_ids < (size_t)ctx ? 1 : n_ids / (size_t)ctx;
}

static void chunk_ids(const gmrt_vocab *v, const int32_t *ids, size_t n_ids, int32_t ctx,
                      size_t c, int32_t *buf, int32_t *out_len)
{
    size_t len = n_ids < (size_t)ctx ? n_ids : (size_t)ctx;
    memcpy(buf, ids + c * (size_t)ctx, len * sizeof *buf);
    if (gmrt_vocab_add_bos(v))
        buf[0] = gmrt_vocab_bos(v);
    *out_len = (int32_t)len;
}

gmrt_status gmrt_eval_text(gmrt_session *s, const char *text, size_t len, int32_t ctx,
                           bool score_all, gmrt_ppl_stats *out, gmrt_diag *diag)
{
    memset(out, 0, sizeof *out);
    const gmrt_vocab *v = gmrt_session_vocab(s);
    const int32_t V = gmrt_vocab_size(v);
    if (ctx < 2)
        return gmrt_fail(diag, GMRT_ERR_ARG, "--ctx %d: a chunk needs at least 2 tokens", ctx);
    int32_t *ids, *buf = malloc((size_t)ctx * sizeof *buf);
    size_t n_ids = 0;
    char piece[256];
    gmrt_status st = buf ? tokenize_text(v, text, len, &ids, &n_ids, diag)
                         : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    if (st == GMRT_OK && n_ids < 2) {
        free(ids);
        st = gmrt_fail(diag, GMRT_ERR_ARG, "the text is %zu token(s); nothing to score", n_ids);
    }
    if (st != GMRT_OK) {
        free(buf);
        return st;
    }
    out->n_tokens = (int64_t)n_ids;
    out->n_chunks = (int64_t)text_chunks(n_ids, ctx);
    for (size_t c = 0; st == GMRT_OK && c < (size_t)out->n_chunks; c++) {
        int32_t n;
        chunk_ids(v, ids, n_ids, ctx, c, buf, &n);
        const float *lg;
        gmrt_session_reset(s);
        if ((st = gmrt_session_eval(s, buf, (size_t)n, true, &lg, diag)) != GMRT_OK)
            break;
        /* llama.cpp scores the second half only: those tokens all see at
         * least ctx/2 tokens of context. */
        for (int32_t j = score_all ? 0 : n / 2; j + 1 < n; j++) {
            const float *o = lg + (size_t)j * (size_t)V;
            out->nll_sum += log_sum_exp(o, V) - (double)o[buf[j + 1]];
            out->n_bytes += (int64_t)gmrt_token_to_piece(v, buf[j + 1], piece, sizeof piece);
            out->n_scored++;
        }
    }
    free(ids);
    free(buf);
    if (st == GMRT_OK && out->n_scored > 0) {
        out->ppl = exp(out->nll_sum / (double)out->n_scored);
        out->bits_per_token = out->nll_sum / (double)out->n_scored / log(2.0);
        out->bits_per_byte = out->n_bytes ? out->nll_sum / log(2.0) / (double)out->n_bytes : 0;
    }
    return st;
}

/* ------------------------------------------------------------ save-ref */

typedef struct topk_out {
    int32_t n_seq, n_pos, k;
    int32_t *ids;      /* [n_seq][n_pos][k] */
    float *lp, *rest;  /* [n_seq][n_pos][k], [n_seq][n_pos] */
} topk_out;

/* The k largest of row (ties to the lower id), as log-probabilities, and
 * the log-probability of everything else, summed directly (1 - Σ top would
 * cancel).  mark is V bytes of scratch, zero on entry and on return. */
static void topk_row(const float *row, int32_t V, int32_t k, int32_t *ids, float *lp,
                     float *rest, unsigned char *mark)
{
    double lse = log_sum_exp(row, V), p_rest = 0;
    for (int32_t j = 0; j < k; j++)
        ids[j] = -1;
    for (int32_t i = 0; i < V; i++) {
        if (ids[k - 1] >= 0 && !(row[i] > row[ids[k - 1]]))
            continue;
        int32_t j = k - 1;
        while (j > 0 && (ids[j - 1] < 0 || row[i] > row[ids[j - 1]])) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    for (int32_t j = 0; j < k; j++) {
        lp[j] = (float)((double)row[ids[j]] - lse);
        mark[ids[j]] = 1;
    }
    for (int32_t i = 0; i < V; i++)
        if (!mark[i])
            p_rest += exp((double)row[i] - lse);
    for (int32_t j = 0; j < k; j++)
        mark[ids[j]] = 0;
    *rest = p_rest > 0 ? (float)log(p_rest) : -INFINITY;
}

static gmrt_status fill_topk(void *user, int64_t index, const char *name, void *dst,
                             size_t nbytes, gmrt_diag *diag)
{
    (void)name;
    (void)diag;
    const topk_out *t = user;
    memcpy(dst, index == 0 ? (const void *)t->lp : (const void *)t->rest, nbytes);
    return GMRT_OK;
}

static gmrt_status write_topk(const topk_out *t, const int32_t *tokens, const gmk_model *m,
                              const char *path, gmrt_diag *diag)
{
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    if (!w)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    char src[512];
    snprintf(src, sizeof src, "gemmac runtime %s, model %s, target %s, graph %s",
             GMRT_VERSION, m->name, m->target, m->graph_hash);
    uint64_t n_tok = (uint64_t)t->n_seq * (uint64_t)t->n_pos;
    int64_t ne_lp[3] = {t->k, t->n_pos, t->n_seq}, ne_rest[2] = {t->n_pos, t->n_seq};
    gmrt_status st = gmrt_gguf_writer_set_str(w, "general.architecture", "gemmac-reference");
    if (!st) st = gmrt_gguf_writer_set_str(w, "gemmac.ref.kind", "topk");
    if (!st) st = gmrt_gguf_writer_set_str(w, "gemmac.ref.source", src);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_seq", (uint32_t)t->n_seq);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_pos", (uint32_t)t->n_pos);
    if (!st) st = gmrt_gguf_writer_set_u32(w, "gemmac.ref.n_vocab", (uint32_t)m->n_vocab);
    if (!st) st = gmrt_gguf_writer_set_i32s(w, "gemmac.ref.tokens", tokens, n_tok);
    if (!st) st = gmrt_gguf_writer_set_i32s(w, "gemmac.ref.topk_ids", t->ids, n_tok * (uint64_t)t->k);
    if (!st) st = gmrt_gguf_writer_add_tensor(w, "topk_logprobs", GMK_DTYPE_F32, 3, ne_lp);
    if (!st) st = gmrt_gguf_writer_add_tensor(w, "rest_logprob", GMK_DTYPE_F32, 2, ne_rest);
    if (st)
        st = gmrt_fail(diag, st, "%s: cannot describe the reference", path);
    else
        st = gmrt_gguf_writer_write(w, path, fill_topk, (void *)t, diag);
    gmrt_gguf_writer_destroy(w);
    return st;
}

gmrt_status gmrt_eval_save_topk(gmrt_session *s, const gmk_model *m, const int32_t *tokens,
                                int32_t n_seq, int32_t n_pos, int32_t k, const char *path,
                                gmrt_diag *diag)
{
    if (k < 1 || k > EVAL_TOPK_MAX || k > m->n_vocab)
        return gmrt_fail(diag, GMRT_ERR_ARG, "--top-k %d: need 1..%d and at most the "
                         "vocabulary (%d)", k, EVAL_TOPK_MAX, m->n_vocab);
    size_t rows = (size_t)n_seq * (size_t)n_pos;
    topk_out t = {.n_seq = n_seq, .n_pos = n_pos, .k = k};
    t.ids = malloc(rows * (size_t)k * sizeof *t.ids);
    t.lp = malloc(rows * (size_t)k * sizeof *t.lp);
    t.rest = malloc(rows * sizeof *t.rest);
    unsigned char *mark = calloc((size_t)m->n_vocab, 1);
    gmrt_status st = t.ids && t.lp && t.rest && mark ? GMRT_OK
                                            : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    for (int32_t q = 0; st == GMRT_OK && q < n_seq; q++) {
        const int32_t *tok = tokens + (size_t)q * (size_t)n_pos;
        int32_t len = 0;
        while (len < n_pos && tok[len] >= 0)
            len++;
        const float *lg;
        gmrt_session_reset(s);
        if (len && (st = gmrt_session_eval(s, tok, (size_t)len, true, &lg, diag)) != GMRT_OK)
            break;
        for (int32_t i = 0; i < n_pos; i++) {
            size_t row = (size_t)q * (size_t)n_pos + (size_t)i;
            if (i < len)
                topk_row(lg + (size_t)i * (size_t)m->n_vocab, m->n_vocab, k,
                         t.ids + row * (size_t)k, t.lp + row * (size_t)k, &t.rest[row], mark);
            else { /* padding: valid ids and log-probabilities never read */
                memset(t.ids + row * (size_t)k, 0, (size_t)k * sizeof *t.ids);
                memset(t.lp + row * (size_t)k, 0, (size_t)k * sizeof *t.lp);
                t.rest[row] = 0;
            }
        }
    }
    if (st == GMRT_OK)
        st = write_topk(&t, tokens, m, path, diag);
    free(t.ids);
    free(t.lp);
    free(t.rest);
    free(mark);
    return st;
}

/* ------------------------------------------------------------ logits out */

#define EVAL_IDS_FILE_MAX (16u << 20)

/* True when s is a list of ids written on the command line ("2,651 17"):
 * digits, signs, commas and blanks only.  Anything else names a file (a
 * file named only by digits is written "./123"). */
static bool ids_is_list(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr("0123456789+-, \t\n", *s))
            return false;
    return true;
}

/* Parses ids separated by commas and/or white space from text.  where names
 * the source in errors ("--ids" or the file); line numbers count '\n'. */
static gmrt_status ids_parse(const char *text, const char *where, bool is_file, int32_t n_vocab,
                             int32_t max_n, int32_t **out, size_t *out_n, gmrt_diag *diag)
{
    size_t cap = 64, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    int line = 1;
    gmrt_status st = ids ? GMRT_OK : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    for (const char *p = text; st == GMRT_OK && *p;) {
        if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            line += *p++ == '\n';
            continue;
        }
        char loc[64] = "";
        if (is_file)
            snprintf(loc, sizeof loc, ":%d", line);
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        size_t len = strcspn(p, ", \t\r\n");
        if (end != p + len || errno || v < 0 || v >= n_vocab) {
            st = gmrt_fail(diag, GMRT_ERR_ARG, "%s%s: \"%.*s\" (id %zu) is not a token id in "
                           "[0, %d) (the model's vocabulary)", where, loc,
                           (int)(len > 40 ? 40 : len), p, n, n_vocab);
            break;
        }
        if (n == (size_t)max_n) {
            st = gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: more than %d ids (the compiled context)",
                           where, max_n);
            break;
        }
        if (n == cap) {
            int32_t *g = realloc(ids, 2 * cap * sizeof *ids);
            if (!g) {
                st = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
                break;
            }
            ids = g;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    if (st == GMRT_OK && n == 0)
        st = gmrt_fail(diag, GMRT_ERR_ARG, "%s: no token ids", where);
    if (st != GMRT_OK) {
        free(ids);
        return st;
    }
    *out = ids;
    *out_n = n;
    return GMRT_OK;
}

gmrt_status gmrt_eval_read_ids(const char *arg, int32_t n_vocab, int32_t max_n, int32_t **out,
                               size_t *out_n, gmrt_diag *diag)
{
    *out = NULL;
    *out_n = 0;
    if (ids_is_list(arg))
        return ids_parse(arg, "--ids", false, n_vocab, max_n, out, out_n, diag);
    FILE *f;
    gmrt_status st = gmrt_file_fopen_read(arg, &f, diag);
    if (st != GMRT_OK) {
        char why[sizeof diag->msg];
        snprintf(why, sizeof why, "%s", diag->msg);
        return gmrt_fail(diag, st, "--ids: %s (a list of ids has only digits, commas and "
                         "blanks; anything else names a file)", why);
    }
    char *buf = malloc(EVAL_IDS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, EVAL_IDS_FILE_MAX + 1, f) : 0;
    int rerr = buf && ferror(f) ? errno : 0;
    fclose(f);
    if (!buf)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    if (rerr || n > EVAL_IDS_FILE_MAX || memchr(buf, '\0', n)) {
        st = rerr ? gmrt_fail(diag, GMRT_ERR_IO, "cannot read %s: %s", arg, strerror(rerr))
             : n > EVAL_IDS_FILE_MAX
                 ? gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: id files are limited to %u bytes", arg,
                             EVAL_IDS_FILE_MAX)
                 : gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: a NUL byte; expected token ids as "
                             "text", arg);
        free(buf);
        return st;
    }
    buf[n] = '\0';
    st = ids_parse(buf, arg, true, n_vocab, max_n, out, out_n, diag);
    free(buf);
    return st;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The .npy header (format version 1.0, docs/conformance.md#logits-out) of
 * a C-order float32 array of rows × cols: magic, version, a little-endian
 * u16 length, then a Python dict literal padded with spaces and ended by
 * '\n' so that the data starts at a multiple of 64 bytes.  Returns its
 * length (at most cap). */
static size_t npy_header(char *buf, size_t cap, size_t rows, size_t cols)
{
    /* The file holds floats as this machine stores them. */
    const char *descr = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? "<f4" : ">f4";
    char dict[128];
    int d = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, "
                     "'shape': (%zu, %zu), }", descr, rows, cols);
    size_t total = (10 + (size_t)d + 1 + 63) / 64 * 64, hlen = total - 10;
    if (total > cap)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)d);
    memset(buf + 10 + d, ' ', hlen - (size_t)d - 1);
    buf[total - 1] = '\n';
    return total;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

gmrt_status gmrt_eval_write_logits(gmrt_session *s, const gmk_model *m, const int32_t *ids,
                                   size_t n, const char *path, gmrt_diag *diag)
{
    const float *lg;
    gmrt_session_reset(s);
    gmrt_status st = gmrt_session_eval(s, ids, n, true, &lg, diag);
    if (st != GMRT_OK)
        return st;
    char head[256];
    size_t hn = ends_with(path, ".npy") ? npy_header(head, sizeof head, n, (size_t)m->n_vocab)
                                        : 0;
    gmrt_file_replace w;
    if ((st = gmrt_file_replace_begin(&w, path, diag)) != GMRT_OK)
        return st;
    errno = 0;
    int err = write_all(w.fd, head, hn) &&
                      write_all(w.fd, lg, n * (size_t)m->n_vocab * sizeof *lg)
                  ? 0
                  : errno ? errno : EIO;
    if (close(w.fd) != 0 && !err)
        err = errno;  /* a full disk may show only here */
    w.fd = -1;
    if (err) {
        gmrt_file_replace_abort(&w);
        return gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: %s", path, strerror(err));
    }
    return gmrt_file_replace_commit(&w, diag);
}

/* ------------------------------------------------------------ command line */

typedef struct eval_opts {
    const char *weights, *text, *ref, *save_ref, *format, *ids, *logits_out;
    int32_t ctx, top_k;
    int threads;
    bool score_all, verbose, requant;
} eval_opts;

void gmrt_eval_print_options(FILE *f)
{
    fputs("  -m, --weights FILE     GGUF weights matching the compiled graph\n"
          "  -f, --file TEXT        perplexity and bits per byte over a text file\n"
          "      --ref REF.gguf     KL(ref || ours), top-1 agreement and logit NMSE\n"
          "                         against a reference (full logits or top-K)\n"
          "      --ctx N            text mode: tokens per chunk (default 512, at most\n"
          "                         the compiled context)\n"
          "      --score-all        text mode: score every position of a chunk, not\n"
          "                         only its second half (llama.cpp's choice)\n"
          "      --ids IDS          token ids: a list (\"2,651,17\") or a file of them\n"
          "      --logits-out OUT   with --ids: write the logits of every position, float32\n"
          "                         [ids][vocabulary], as .npy if OUT ends in .npy, else raw\n"
          "      --save-ref OUT     also write our top-K log-probs as a reference\n"
          "      --top-k K          K of --save-ref (default 32)\n"
          "  -o table|json          output format (default table)\n"
          "  -t, --threads N        threads (default: online CPUs, at most 8)\n"
          "      --requant          convert weights whose type in the file differs from\n"
          "                         the compiled one at load (a re-quantized model)\n"
          "  -v, --verbose          print loading details\n"
          "  -h, --help             this text\n", f);
}

static bool opt_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "error: %s expects an integer in [%ld, %ld], got \"%s\"\n", flag, lo,
                hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* Returns 0 to run, 1 for --help, 2 for a usage error. */
static int eval_parse(const gmk_model *m, int argc, char **argv, eval_opts *o)
{
    long n_cpu = sysconf(_SC_NPROCESSORS_ONLN), l;
    *o = (eval_opts){.format = "table", .ctx = m->n_ctx < 512 ? m->n_ctx : 512, .top_k = 32,
                     .threads = n_cpu < 1 ? 1 : n_cpu > 8 ? 8 : (int)n_cpu};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "-m") || !strcmp(a, "--weights") || !strcmp(a, "-f") ||
                     !strcmp(a, "--file") || !strcmp(a, "--ref") || !strcmp(a, "--ctx") ||
                     !strcmp(a, "--save-ref") || !strcmp(a, "--top-k") || !strcmp(a, "-o") ||
                     !strcmp(a, "-t") || !strcmp(a, "--threads") || !strcmp(a, "--ids") ||
                     !strcmp(a, "--logits-out");
        if (takes && !v) {
            fprintf(stderr, "error: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: %s --weights FILE.gguf (-f TEXT | --ref REF.gguf | --ids IDS "
                   "--logits-out OUT) [options]\n\n"
                   "Evaluates the compiled model %s (target %s).\n\n", argv[0], m->name,
                   m->target);
            gmrt_eval_print_options(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--weights")) o->weights = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->text = v;
        else if (!strcmp(a, "--ref")) o->ref = v;
        else if (!strcmp(a, "--save-ref")) o->save_ref = v;
        else if (!strcmp(a, "--ids")) o->ids = v;
        else if (!strcmp(a, "--logits-out")) o->logits_out = v;
        else if (!strcmp(a, "-o")) o->format = v;
        else if (!strcmp(a, "--score-all")) o->score_all = true;
        else if (!strcmp(a, "--requant")) o->requant = true;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = true;
        else if (!strcmp(a, "--ctx")) {
            if (!opt_long(a, v, 2, m->n_ctx, &l)) return 2;
            o->ctx = (int32_t)l;
        } else if (!strcmp(a, "--top-k")) {
            if (!opt_long(a, v, 1, m->n_vocab < EVAL_TOPK_MAX ? m->n_vocab : EVAL_TOPK_MAX, &l))
                return 2;
            o->top_k = (int32_t)l;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!opt_long(a, v, 1, 256, &l)) return 2;
            o->threads = (int)l;
        } else {
            fprintf(stderr, "error: unknown option \"%s\" (see --help)\n", a);
            return 2;
        }
        i += takes;
    }
    if (strcmp(o->format, "table") && strcmp(o->format, "json")) {
        fprintf(stderr, "error: -o expects table or json, got \"%s\"\n", o->format);
        return 2;
    }
    if (!o->weights || !!o->text + !!o->ref + !!o->ids != 1) {
        fprintf(stderr, "error: need --weights and exactly one of -f TEXT, --ref REF and "
                "--ids IDS\n");
        return 2;
    }
    if (!o->ids != !o->logits_out || (o->ids && o->save_ref)) {
        fprintf(stderr, "error: --ids and --logits-out go together, without --save-ref\n");
        return 2;
    }
    return 0;
}

/* One JSON number, or null for NaN/Inf (which JSON cannot hold). */
static void print_num_json(FILE *f, const char *key, const char *fmt, double v)
{
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

static void print_stats_json(FILE *f, const gmrt_eval_stats *s)
{
    fprintf(f, "{\"positions\": %lld", (long long)s->n);
    print_num_json(f, "kl_mean", "%.6e", s->kl_mean);
    print_num_json(f, "kl_max", "%.6e", s->kl_max);
    print_num_json(f, "top1", "%.6f", s->top1);
    print_num_json(f, "nmse_mean", "%.6e", s->nmse_mean);
    print_num_json(f, "nmse_max", "%.6e", s->nmse_max);
    print_num_json(f, "ppl", "%.6f", s->n_nll ? exp(s->nll_sum / (double)s->n_nll) : 0.0);
    fprintf(f, ", \"nonfinite_ref\": %lld, \"nonfinite_ours\": %lld}",
            (long long)s->n_nonfinite_ref, (long long)s->n_nonfinite_ours);
}

static void print_report(const eval_opts *o, const gmrt_eval_report *r)
{
    if (!strcmp(o->format, "json")) {
        printf("{\"reference\": \"%s\", \"top_k\": %d, \"kl_kind\": \"%s\", \"sequences\": [",
               o->ref, r->top_k, r->top_k ? "partition lower bound" : "full");
        for (int32_t q = 0; q < r->n_seq; q++) {
            printf(q ? ", " : "");
            print_stats_json(stdout, &r->seq[q]);
        }
        printf("], \"all\": ");
        print_stats_json(stdout, &r->all);
        printf("}\n");
        return;
    }
    if (r->top_k)
        printf("reference %s: top-%d log-probs; KL is over {the %d reference ids, the rest},\n"
               "a lower bound of the full KL (data-processing inequality); no logit NMSE\n",
               o->ref, r->top_k, r->top_k);
    else
        printf("reference %s: full logits over %d tokens\n", o->ref, r->n_vocab);
    printf("%-6s %9s %12s %12s %9s %12s %12s %10s\n", "seq", "positions", "KL mean", "KL max",
           "top-1 %", "NMSE mean", "NMSE max", "ppl");
    for (int32_t q = 0; q <= r->n_seq; q++) {
        const gmrt_eval_stats *s = q < r->n_seq ? &r->seq[q] : &r->all;
        char name[16];
        snprintf(name, sizeof name, q < r->n_seq ? "%d" : "all", q);
        printf("%-6s %9lld %12.4e %12.4e %9.3f %12.4e %12.4e %10.4f\n", name, (long long)s->n,
               s->kl_mean, s->kl_max, 100 * s->top1, s->nmse_mean, s->nmse_max,
               s->n_nll ? exp(s->nll_sum / (double)s->n_nll) : 0.0);
    }
}

static void print_ppl(const eval_opts *o, const gmrt_ppl_stats *p)
{
    if (!strcmp(o->format, "json")) {
        printf("{\"text\": \"%s\", \"tokens\": %lld, \"chunks\": %lld, \"ctx\": %d, "
               "\"scored\": %lld, \"scored_half\": %s, \"ppl\": %.6f, \"bits_per_token\": %.6f, "
               "\"bits_per_byte\": %.6f}\n", o->text, (long long)p->n_tokens,
               (long long)p->n_chunks, o->ctx, (long long)p->n_scored,
               o->score_all ? "false" : "true", p->ppl, p->bits_per_token, p->bits_per_byte);
        return;
    }
    printf("%s: %lld tokens, %lld chunk(s) of at most %d, %lld scored (%s)\n"
           "perplexity %.4f, %.4f bits/token, %.4f bits/byte\n", o->text,
           (long long)p->n_tokens, (long long)p->n_chunks, o->ctx, (long long)p->n_scored,
           o->score_all ? "every position" : "second half of each chunk",
           p->ppl, p->bits_per_token, p->bits_per_byte);
}

/* The text file at path (a regular file: a FIFO would block) into *out,
 * malloc'd; errors name the file and the cause. */
static gmrt_status read_text(const char *path, char **out, size_t *out_len, gmrt_diag *diag)
{
    *out = NULL;
    FILE *f;
    gmrt_status st = gmrt_file_fopen_read(path, &f, diag);
    if (st != GMRT_OK)
        return st;
    char *buf = malloc(EVAL_TEXT_MAX + 1);
    size_t n = buf ? fread(buf, 1, EVAL_TEXT_MAX + 1, f) : 0;
    int rerr = buf && ferror(f) ? errno : 0;
    fclose(f);
    if (!buf)
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    else if (rerr)
        st = gmrt_fail(diag, GMRT_ERR_IO, "cannot read %s: %s", path, strerror(rerr));
    else if (n > EVAL_TEXT_MAX)
        st = gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: text files are limited to %u bytes", path,
                       EVAL_TEXT_MAX);
    if (st != GMRT_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return GMRT_OK;
}

/* Text mode, with --save-ref writing the chunks as sequences. */
static gmrt_status run_text(const gmk_model *m, gmrt_session *s, const eval_opts *o,
                            gmrt_diag *diag)
{
    size_t len = 0;
    char *text;
    gmrt_status rs = read_text(o->text, &text, &len, diag);
    if (rs != GMRT_OK)
        return rs;
    gmrt_ppl_stats p;
    gmrt_status st = gmrt_eval_text(s, text, len, o->ctx, o->score_all, &p, diag);
    if (st == GMRT_OK)
        print_ppl(o, &p);
    if (st == GMRT_OK && o->save_ref) {
        const gmrt_vocab *v = gmrt_session_vocab(s);
        int32_t *ids, n, *seqs = NULL;
        size_t n_ids, n_chunks;
        st = tokenize_text(v, text, len, &ids, &n_ids, diag);
        if (st == GMRT_OK) {
            n_chunks = text_chunks(n_ids, o->ctx);
            int32_t n_pos = n_ids < (size_t)o->ctx ? (int32_t)n_ids : o->ctx;
            seqs = malloc(n_chunks * (size_t)n_pos * sizeof *seqs);
            for (size_t c = 0; seqs && c < n_chunks; c++)
                chunk_ids(v, ids, n_ids, o->ctx, c, seqs + c * (size_t)n_pos, &n);
            st = seqs ? gmrt_eval_save_topk(s, m, seqs, (int32_t)n_chunks, n_pos, o->top_k,
                                            o->save_ref, diag)
                      : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
            free(ids);
            free(seqs);
        }
    }
    free(text);
    return st;
}

static gmrt_status run_ref(const gmk_model *m, gmrt_session *s, const eval_opts *o,
                           gmrt_diag *diag)
{
    gmrt_eval_report r;
    gmrt_status st = gmrt_eval_reference(s, m, o->ref, &r, diag);
    if (st != GMRT_OK)
        return st;
    print_report(o, &r);
    /* A NaN scores as no match at all: the comparison fails. */
    if (r.all.n_nonfinite_ref || r.all.n_nonfinite_ours)
        st = gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: %lld NaN/Inf value(s) in the reference "
                       "and %lld in our logits, the first at sequence %d position %d; the "
                       "comparison fails", o->ref, (long long)r.all.n_nonfinite_ref,
                       (long long)r.all.n_nonfinite_ours, r.first_nonfinite_seq,
                       r.first_nonfinite_pos);
    gmrt_eval_report_free(&r);
    if (st != GMRT_OK)
        return st;
    if (o->save_ref) {
        ref_file f;
        if ((st = ref_open(&f, o->ref, m, diag)) != GMRT_OK)
            return st;
        st = gmrt_eval_save_topk(s, m, f.tokens, f.n_seq, f.n_pos, o->top_k, o->save_ref, diag);
        gmrt_gguf_close(f.g);
    }
    return st;
}

/* --ids mode: the logits of the given ids to --logits-out. */
static gmrt_status run_ids(const gmk_model *m, gmrt_session *s, const eval_opts *o,
                           gmrt_diag *diag)
{
    int32_t *ids;
    size_t n;
    gmrt_status st = gmrt_eval_read_ids(o->ids, m->n_vocab, m->n_ctx, &ids, &n, diag);
    if (st != GMRT_OK)
        return st;
    st = gmrt_eval_write_logits(s, m, ids, n, o->logits_out, diag);
    if (st == GMRT_OK)
        fprintf(stderr, "wrote %s: %zu x %d float32 logits%s\n", o->logits_out, n,
                m->n_vocab, ends_with(o->logits_out, ".npy") ? " (.npy)" : " (raw)");
    free(ids);
    return st;
}

int gmrt_eval_main(const gmk_model *m, int argc, char **argv)
{
    eval_opts o;
    int rc = eval_parse(m, argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    gmrt_session_opts so = {.n_threads = o.threads, .verbose = o.verbose,
                           .requant = o.requant};
    gmrt_session *s = NULL;
    gmrt_diag diag = {0};
    gmrt_status st = gmrt_session_create(m, o.weights, &so, &s, &diag);
    if (st == GMRT_OK)
        st = o.ref ? run_ref(m, s, &o, &diag)
             : o.ids ? run_ids(m, s, &o, &diag)
                     : run_text(m, s, &o, &diag);
    if (st == GMRT_OK && o.save_ref)
        fprintf(stderr, "wrote %s (top-%d)\n", o.save_ref, o.top_k);
    if (st != GMRT_OK)
        fprintf(stderr, "error: %s\n", diag.msg);
    gmrt_session_destroy(s);
    /* The report went to stdout: a failed write (a full disk) fails eval. */
    if (st == GMRT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "error: cannot write stdout: %s\n", strerror(errno ? errno : EIO));
        return 1;
    }
    return st == GMRT_OK ? 0 : 1;
}
