/*
 * sample.c — picks the next token from a row of logits.
 *
 * Order of operations: repetition penalty (llama.cpp's rule), then either
 * argmax (temperature 0) or top-k → softmax at the temperature → top-p →
 * min-p → one draw from a seeded xoshiro256** stream.  This is the order of
 * Hugging Face's samplers (temperature before the truncations), so top-p
 * and min-p see the distribution the draw uses.  gmrt_sampler_create
 * allocates every buffer once; gmrt_sampler_sample never allocates, and the
 * same seed gives the same tokens on every platform with the same logits.
 */
#include "gmrt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A candidate token: its (sanitized) logit, later its unnormalized
 * probability.  The probability is a double: summing 262144 floats would
 * lose the tail mass that top-p cuts against. */
typedef struct cand {
    float logit;
    int32_t id;
    double p;
} cand;

struct gmrt_sampler {
    gmrt_sampler_params p;
    int32_t n_vocab;
    uint64_t rng[4];         /* xoshiro256** state */
    cand *c;                 /* n_vocab candidates */
    uint8_t *seen;           /* n_vocab flags for the penalty window */
    uint64_t *keys;          /* 2 x n_vocab for sort_all, or NULL when unused */
};

/* Above this many candidates to order, sort_all replaces heap + qsort. */
#define SORT_HEAP_MAX 2048

/* top_k as sampling uses it: 0 (off) or above the vocabulary keeps all. */
static int32_t effective_k(const gmrt_sampler_params *p, int32_t n_vocab)
{
    return p->top_k == 0 || p->top_k > n_vocab ? n_vocab : p->top_k;
}

/* Whether select_top_k sorts more candidates than a heap and qsort do
 * well: then it sorts the whole vocabulary (sort_all) and keeps the first
 * k, the same k best in the same order. */
static bool sorts_all(const gmrt_sampler_params *p, int32_t k, int32_t n_vocab)
{
    return p->temperature != 0.0f && k > SORT_HEAP_MAX && (k < n_vocab || p->top_p < 1.0f);
}

void gmrt_sampler_params_default(gmrt_sampler_params *p)
{
    /* Gemma 3's recommended settings. */
    p->temperature = 1.0f;
    p->top_k = 64;
    p->top_p = 0.95f;
    p->min_p = 0.0f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0;
}

/* The checks are written so that NaN fails them (every comparison with NaN
 * is false), which also catches infinities via the upper bounds. */
gmrt_status gmrt_sampler_params_check(const gmrt_sampler_params *p,
                                      gmrt_diag *diag)
{
    if (!p)
        return gmrt_fail(diag, GMRT_ERR_ARG, "sampler parameters are NULL");
    if (!(p->temperature >= 0.0f && p->temperature <= 100.0f))
        return gmrt_fail(diag, GMRT_ERR_ARG,
                         "temperature = %g is outside [0, 100]",
                         (double)p->temperature);
    if (p->top_k < 0 || p->top_k > 1000000)
        return gmrt_fail(diag, GMRT_ERR_ARG, "top_k = %d is outside [0, 1000000]",
                         (int)p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return gmrt_fail(diag, GMRT_ERR_ARG, "top_p = %g is outside (0, 1]",
                         (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p < 1.0f))
        return gmrt_fail(diag, GMRT_ERR_ARG, "min_p = %g is outside [0, 1)",
                         (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f && p->repeat_penalty <= 10.0f))
        return gmrt_fail(diag, GMRT_ERR_ARG,
                         "repeat_penalty = %g is outside (0, 10]",
                         (double)p->repeat_penalty);
    if (p->repeat_last_n < 0 || p->repeat_last_n > (1 << 20))
        return gmrt_fail(diag, GMRT_ERR_ARG,
                         "repeat_last_n = %d is outside [0, 1048576]",
                         (int)p->repeat_last_n);
    return GMRT_OK;
}

/* ------------------------------------------------------------ random */

/* Expands the 64-bit seed into the 256-bit xoshiro state; recommended by
 * xoshiro's authors because it never yields the all-zero state. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna): fast, and the same on every platform
 * since it is plain 64-bit integer arithmetic. */
static uint64_t next_u64(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits: exactly representable doubles,
 * so the draw itself rounds the same way everywhere. */
static double next_unit(uint64_t s[4])
{
    return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------- lifetime */

/* All scratch is sized here for the whole vocabulary, so that sampling
 * (once per generated token) never allocates. */
gmrt_status gmrt_sampler_create(const gmrt_sampler_params *p, int32_t n_vocab,
                                gmrt_sampler **out, gmrt_diag *diag)
{
    if (!out)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_sampler_create: out is NULL");
    *out = NULL;
    gmrt_status st = gmrt_sampler_params_check(p, diag);
    if (st != GMRT_OK)
        return st;
    if (n_vocab < 1 || (uint32_t)n_vocab > GMRT_VOCAB_MAX)
        return gmrt_fail(diag, GMRT_ERR_ARG, "n_vocab = %d is outside [1, %u]",
                         (int)n_vocab, GMRT_VOCAB_MAX);
    gmrt_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->c = malloc((size_t)n_vocab * sizeof *s->c);
        s->seen = calloc((size_t)n_vocab, 1);
        if (sorts_all(p, effective_k(p, n_vocab), n_vocab))
            s->keys = malloc(2 * (size_t)n_vocab * sizeof *s->keys);
    }
    if (!s || !s->c || !s->seen || (sorts_all(p, effective_k(p, n_vocab), n_vocab) && !s->keys)) {
        gmrt_sampler_destroy(s);
        return gmrt_fail(diag, GMRT_ERR_NOMEM,
                         "out of memory for a sampler over %d tokens", (int)n_vocab);
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    *out = s;
    return GMRT_OK;
}

void gmrt_sampler_destroy(gmrt_sampler *s)
{
    if (!s)
        return;
    free(s->c);
    free(s->seen);
    free(s->keys);
    free(s);
}

/* ---------------------------------------------------------- sampling */

/* llama.cpp's repetition penalty: each distinct token of the last
 * repeat_last_n is made less likely once, whatever its count.  Ids outside
 * the vocabulary are ignored. */
static void apply_penalty(gmrt_sampler *s, float *logits,
                          const int32_t *history, size_t n_history)
{
    float pen = s->p.repeat_penalty;
    size_t window = (size_t)s->p.repeat_last_n;
    if (pen == 1.0f || window == 0 || !history || n_history == 0)
        return;
    size_t from = n_history > window ? n_history - window : 0;
    for (size_t i = from; i < n_history; i++) {
        int32_t id = history[i];
        if (id < 0 || id >= s->n_vocab || s->seen[id])
            continue;
        s->seen[id] = 1;
        logits[id] = logits[id] <= 0.0f ? logits[id] * pen : logits[id] / pen;
    }
    /* Clearing only what was set keeps this O(window), not O(n_vocab). */
    for (size_t i = from; i < n_history; i++) {
        if (history[i] >= 0 && history[i] < s->n_vocab)
            s->seen[history[i]] = 0;
    }
}

/* NaN would break every ordering below and +inf every softmax: NaN
 * becomes -inf (never chosen unless all are), +inf the largest float. */
static float sane(float x)
{
    if (isnan(x))
        return -INFINITY;
    return x > FLT_MAX ? FLT_MAX : x;
}

/* Candidate order: higher logit first, ties to the lower id. */
static bool better(const cand *a, const cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Greedy: the first (lowest) id among equal maxima, as llama.cpp, of the
 * sane() values.  Two passes written in lanes of 16 so that the compiler
 * vectorizes them (the server runs this on every row of a batched step):
 * the largest value (NaN never compares greater), then the first index that
 * reaches it.  sane() is monotone, so max(sane) = sane(max); a value above
 * the maximum's sane() can only be +inf when that is FLT_MAX, which sane()
 * makes FLT_MAX too.  With no value above -inf, every one ties: id 0. */
#define ARGMAX_LANES 16

static int32_t argmax(const float *logits, int32_t n)
{
    float lane[ARGMAX_LANES];
    for (int j = 0; j < ARGMAX_LANES; j++)
        lane[j] = -INFINITY;
    int32_t i = 0;
    for (; i + ARGMAX_LANES <= n; i += ARGMAX_LANES)
        for (int j = 0; j < ARGMAX_LANES; j++)
            lane[j] = logits[i + j] > lane[j] ? logits[i + j] : lane[j];
    float m = -INFINITY;
    for (int j = 0; j < ARGMAX_LANES; j++)
        m = lane[j] > m ? lane[j] : m;
    for (; i < n; i++)
        m = logits[i] > m ? logits[i] : m;
    m = sane(m);
    if (m == -INFINITY)
        return 0;
    for (i = 0; i + ARGMAX_LANES <= n; i += ARGMAX_LANES) {
        int hit = 0;
        for (int j = 0; j < ARGMAX_LANES; j++)
            hit |= logits[i + j] >= m;
        if (hit)
            break;
    }
    for (; i < n && !(logits[i] >= m); i++)
        ;
    return i < n ? i : 0;
}

/* Min-heap on `better` (worst candidate on top) for partial selection. */
static void worst_down(cand *h, int32_t n, int32_t pos)
{
    cand e = h[pos];
    for (;;) {
        int32_t c = 2 * pos + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(&h[c], &h[c + 1]))
            c++;
        if (!better(&e, &h[c]))
            break;
        h[pos] = h[c];
        pos = c;
    }
    h[pos] = e;
}

/* qsort order; `better` is a strict total order (ids are distinct), so
 * the result does not depend on the qsort implementation. */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

/* The ordering key of a logit: a radix sort on it ascending puts higher
 * logits first.  The float's bits made monotone as an unsigned integer
 * (negatives flipped whole, positives with the sign bit set), then
 * inverted; -0 is +0 first, since `better` ties them. */
static uint32_t desc_key(float l)
{
    uint32_t u;
    l = l == 0.0f ? 0.0f : l;
    memcpy(&u, &l, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

/*
 * Every candidate in s->c[0..n_vocab), best first: the order qsort on
 * `better` gives, in O(n) instead of 262144 comparisons through a function
 * pointer (tens of milliseconds a token for top-p without top-k).  An LSD
 * radix sort on the key in the upper half of (key << 32 | id), one byte a
 * pass; each pass is stable and the ids start ascending, so equal logits
 * stay ordered by id, as `better` orders them.  Four passes end in
 * s->keys[0..n), the other half being the ping-pong buffer.
 */
static void sort_all(gmrt_sampler *s, const float *logits)
{
    const int32_t n = s->n_vocab;
    uint64_t *a = s->keys, *b = s->keys + n;
    uint32_t count[4][256];
    memset(count, 0, sizeof count);
    for (int32_t i = 0; i < n; i++) {
        uint32_t k = desc_key(sane(logits[i]));
        a[i] = (uint64_t)k << 32 | (uint32_t)i;
        for (int d = 0; d < 4; d++)
            count[d][(k >> (8 * d)) & 255]++;
    }
    for (int d = 0; d < 4; d++) {
        uint32_t at = 0;
        for (int v = 0; v < 256; v++) {
            uint32_t c = count[d][v];
            count[d][v] = at;
            at += c;
        }
        for (int32_t i = 0; i < n; i++)
            b[count[d][(a[i] >> (32 + 8 * d)) & 255]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t id = (int32_t)(uint32_t)a[i];
        s->c[i] = (cand){sane(logits[id]), id, 0.0};
    }
}

/* Keeps the k best logits in s->c[0..k), best first, in O(n log k) (a
 * full sort of 262144 entries would cost more than the rest together),
 * or by sort_all when k is large. */
static int32_t select_top_k(gmrt_sampler *s, const float *logits, int32_t k,
                            bool need_order)
{
    cand *h = s->c;
    if (sorts_all(&s->p, k, s->n_vocab)) {
        sort_all(s, logits);
        return k;
    }
    for (int32_t i = 0; i < k; i++)
        h[i] = (cand){sane(logits[i]), i, 0.0};
    if (k < s->n_vocab) {
        for (int32_t pos = k / 2 - 1; pos >= 0; pos--)
            worst_down(h, k, pos);
        for (int32_t i = k; i < s->n_vocab; i++) {
            cand c = {sane(logits[i]), i, 0.0};
            if (better(&c, &h[0])) {
                h[0] = c;
                worst_down(h, k, 0);
            }
        }
        need_order = true;
    }
    if (need_order)
        qsort(h, (size_t)k, sizeof *h, cmp_cand);
    return k;
}

/* Softmax at temperature t over c[0..n); returns the index of the most
 * likely candidate.  The weights are left unnormalized (the sum is
 * returned in *out_sum) to keep the draw exact. */
static int32_t softmax(cand *c, int32_t n, float t, double *out_sum)
{
    int32_t top = 0;
    for (int32_t i = 1; i < n; i++) {
        if (better(&c[i], &c[top]))
            top = i;
    }
    double max = c[top].logit, sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = exp(((double)c[i].logit - max) / (double)t);
        sum += c[i].p;
    }
    *out_sum = sum;
    return top;
}

/* Smallest prefix (c is sorted) whose mass reaches top_p; at least one. */
static int32_t cut_top_p(const cand *c, int32_t n, double sum, float top_p)
{
    double target = (double)top_p * sum, acc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        acc += c[i].p;
        if (acc >= target)
            return i + 1;
    }
    return n;
}

/* Drops candidates below min_p times the best one's probability (the
 * order is kept, so a sorted prefix stays a prefix). */
static int32_t cut_min_p(cand *c, int32_t n, double p_top, float min_p,
                         double *sum)
{
    double floor_p = (double)min_p * p_top;
    int32_t k = 0;
    *sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].p >= floor_p) {
            c[k++] = c[i];
            *sum += c[i].p;
        }
    }
    return k;
}

/* One draw from c[0..n) in proportion to p (sum = their total).  Exactly
 * one random number is used per call, so a seed fixes the whole run. */
static int32_t draw(gmrt_sampler *s, const cand *c, int32_t n, double sum)
{
    double r = next_unit(s->rng) * sum, acc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc)
            return c[i].id;
    }
    /* Rounding can leave r a hair above the last partial sum. */
    for (int32_t i = n - 1; i > 0; i--) {
        if (c[i].p > 0.0)
            return c[i].id;
    }
    return c[0].id;
}

int32_t gmrt_sampler_pick(gmrt_sampler *s, const float *logits)
{
    if (!s || !logits)
        return -1;
    if (s->p.temperature == 0.0f)
        return argmax(logits, s->n_vocab);
    int32_t k = effective_k(&s->p, s->n_vocab);
    bool use_top_p = s->p.top_p < 1.0f;
    int32_t n = select_top_k(s, logits, k, use_top_p);
    double sum;
    int32_t top = softmax(s->c, n, s->p.temperature, &sum);
    double p_top = s->c[top].p;
    if (!(sum > 0.0) || !isfinite(sum))
        return s->c[top].id;     /* every logit was -inf */
    /* top-p needs the candidates sorted (select_top_k did it); min-p only
     * compares with the best, so it keeps whatever order it is given. */
    if (use_top_p) {
        n = cut_top_p(s->c, n, sum, s->p.top_p);
        sum = 0.0;
        for (int32_t i = 0; i < n; i++)
            sum += s->c[i].p;
    }
    if (s->p.min_p > 0.0f)
        n = cut_min_p(s->c, n, p_top, s->p.min_p, &sum);
    return draw(s, s->c, n, sum);
}

int32_t gmrt_sampler_sample(gmrt_sampler *s, float *logits,
                            const int32_t *history, size_t n_history)
{
    if (!s || !logits)
        return -1;
    apply_penalty(s, logits, history, n_history);
    return gmrt_sampler_pick(s, logits);
}
