/*
 * scheduler.c — the model thread (scheduler.h; docs/server.md#scheduling).
 *
 * A slot is one sequence of the session.  It remembers the ids in its KV
 * cache, so that a request sharing a prefix with them (the next turn of a
 * conversation, the same system prompt) prefills only the rest: the
 * sequence is truncated to the common prefix, as far as the runtime can
 * keep it (gmrt_session_seq_keep).  Each iteration runs one forward step
 * for all busy slots, prompt chunks and decode tokens together.
 * Everything here runs on the model thread except submit and cancel, which
 * take the scheduler's mutex, and pick_row, which the model thread hands
 * to the session's threads and waits for.
 */
#include "scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum slot_state { SLOT_FREE = 0, SLOT_PREFILL, SLOT_GEN } slot_state;

typedef struct slot {
    gms_req *req;            /* NULL when free */
    slot_state state;
    int32_t *kv, n_kv;       /* the ids in this sequence's KV cache (n_ctx) */
    int32_t next;            /* GEN: the sampled id the next decode feeds */
    gmrt_sampler *smp;
    float *row;              /* n_vocab: the logits the sampler may modify */
    uint32_t *count;         /* n_vocab: times each id was generated */
    int32_t *gen, n_gen;     /* generated ids, most recent last (n_ctx) */
    int32_t *uniq, n_uniq;   /* the distinct ids of gen */
    gms_buf pend;            /* sampled text not yet released (stop strings) */
    /* A step's sampling, done on the pool's threads (pick_rows): the row,
     * the id drawn, and for logprobs the raw row's log-sum-exp and best ids. */
    const float *logits;
    int32_t pick;
    double lse;
    int32_t top[GMS_MAX_TOP_LOGPROBS], n_top;
} slot;

struct gms_sched {
    gmrt_session *s;
    const gmrt_vocab *v;
    int32_t n_vocab, n_ctx, chunk, eos, eot; /* chunk: tokens a step aims at */
    int32_t n_slots;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gms_req **queue;         /* a ring of q_cap */
    int32_t q_cap, q_head, q_len;
    bool stop, wake, started;
    pthread_t thread;
    char *piece;             /* GMRT_PIECE_MAX */
    gmrt_run *runs;          /* n_slots: one step's runs */
    int32_t *toks;           /* n_slots + chunk: their tokens */
    slot **batch;            /* n_slots: the slot of each run */
    slot **picks;            /* n_slots: the slots sampling this step */
    int32_t n_picks;
    gms_stats st;
};

double gms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

gms_req *gms_req_create(gms_request *p)
{
    gms_req *r = calloc(1, sizeof *r);
    if (!r) {
        gms_request_deinit(p);
        return NULL;
    }
    r->p = *p;
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    atomic_init(&r->cancelled, false);
    r->refs = 1;
    gms_buf_init(&r->text, 0);
    gms_buf_init(&r->lp, 0);
    return r;
}

void gms_req_unref(gms_req *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left)
        return;
    gms_request_deinit(&r->p);
    gms_buf_deinit(&r->text);
    gms_buf_deinit(&r->lp);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ------------------------------------------------------------ finishing */

/* Ends sl's request with reason ("stop", "length") or, with reason NULL,
 * the error err, and frees the slot.  Its KV keeps what was fed. */
static void finish(gms_sched *q, slot *sl, const char *reason, const char *err)
{
    gms_req *r = sl->req;
    pthread_mutex_lock(&r->mu);
    if (reason && sl->pend.len)
        gms_buf_add(&r->text, sl->pend.p, sl->pend.len);
    r->done = true;
    r->finish = reason;
    if (!reason)
        snprintf(r->error, sizeof r->error, "%s", err ? err : "failed");
    else if (r->text.failed || r->lp.failed)
        r->finish = NULL, snprintf(r->error, sizeof r->error, "out of memory for the answer");
    r->n_gen = sl->n_gen;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    gms_req_unref(r);
    gmrt_sampler_destroy(sl->smp);
    sl->smp = NULL;
    sl->req = NULL;
    sl->state = SLOT_FREE;
    gms_buf_clear(&sl->pend);
    atomic_fetch_sub(&q->st.slots_busy, 1);
}

/* The first occurrence of needle (n > 0 bytes) in hay, or NULL. */
static const char *find(const char *hay, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* The longest proper prefix of a stop string that ends pend. */
static size_t stop_prefix_held(const gms_request *p, const gms_buf *pend)
{
    size_t hold = 0;
    for (int i = 0; i < p->n_stop; i++) {
        size_t max = p->stop_len[i] - 1 < pend->len ? p->stop_len[i] - 1 : pend->len;
        for (size_t k = max; k > hold; k--)
            if (memcmp(pend->p + pend->len - k, p->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* Moves the text of sl->pend that can no longer be part of a stop string to
 * the request; on a stop string, releases what comes before it and ends the
 * request.  Returns false when the request ended. */
static bool release(gms_sched *q, slot *sl)
{
    gms_req *r = sl->req;
    const gms_request *p = &r->p;
    size_t out = sl->pend.len;
    const char *hit = NULL;
    for (int i = 0; i < p->n_stop; i++) {
        const char *m = find(sl->pend.p, sl->pend.len, p->stop[i], p->stop_len[i]);
        if (m && (!hit || m < hit))
            hit = m;
    }
    if (hit)
        out = (size_t)(hit - sl->pend.p);
    else /* hold back a possible stop prefix and an unfinished UTF-8 character */
        out = gms_utf8_complete(sl->pend.p, out - stop_prefix_held(p, &sl->pend));
    if (out) {
        pthread_mutex_lock(&r->mu);
        gms_buf_add(&r->text, sl->pend.p, out);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    if (hit) {
        gms_buf_clear(&sl->pend);
        finish(q, sl, "stop", NULL);
        return false;
    }
    gms_buf_consume(&sl->pend, out);
    return true;
}

/* ------------------------------------------------------------ sampling */

/* What a logprobs entry needs from the raw logits (the model's
 * distribution): their log-sum-exp and the top_logprobs best ids, best
 * first.  Runs on a pool thread (pick_rows): only sl is written. */
static void logprob_stats(const gms_sched *q, slot *sl, const float *logits)
{
    float mx = -INFINITY;
    for (int32_t i = 0; i < q->n_vocab; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int32_t i = 0; i < q->n_vocab; i++)
        sum += exp((double)(logits[i] - mx));
    sl->lse = (double)mx + log(sum);
    int32_t *top = sl->top;
    int k = 0, want = sl->req->p.top_logprobs;
    for (int32_t i = 0; i < q->n_vocab && want; i++) { /* insertion into the top */
        if (k == want && logits[i] <= logits[top[k - 1]])
            continue;
        int j = k < want ? k++ : k - 1;
        for (; j > 0 && logits[top[j - 1]] < logits[i]; j--)
            top[j] = top[j - 1];
        top[j] = i;
    }
    sl->n_top = k;
}

/* One logprobs entry (OpenAI's chat format) for id, from logprob_stats. */
static void logprob_entry(gms_sched *q, slot *sl, const float *logits, int32_t id)
{
    gms_req *r = sl->req;
    double lse = sl->lse;
    int k = sl->n_top;
    const int32_t *top = sl->top;
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_jw w;
    gms_jw_init(&w, &b);
    for (int t = -1; t < k; t++) {
        int32_t tid = t < 0 ? id : top[t];
        size_t n = gmrt_token_to_piece(q->v, tid, q->piece, GMRT_PIECE_MAX);
        n = n < GMRT_PIECE_MAX ? n : GMRT_PIECE_MAX;
        gms_jw_obj(&w);
        gms_jw_key(&w, "token");
        gms_jw_str(&w, q->piece, n);
        gms_jw_key(&w, "logprob");
        gms_jw_num(&w, (double)logits[tid] - lse);
        gms_jw_key(&w, "bytes");
        gms_jw_arr(&w);
        for (size_t i = 0; i < n; i++)
            gms_jw_int(&w, (unsigned char)q->piece[i]);
        gms_jw_end(&w);
        if (t < 0) {
            gms_jw_key(&w, "top_logprobs");
            gms_jw_arr(&w);
        } else
            gms_jw_end(&w);
    }
    gms_jw_end(&w); /* top_logprobs */
    gms_jw_end(&w); /* the entry */
    pthread_mutex_lock(&r->mu);
    if (r->n_lp++)
        gms_buf_add(&r->lp, ",", 1);
    gms_buf_add(&r->lp, b.p, b.len);
    if (b.failed)
        r->lp.failed = true;
    pthread_mutex_unlock(&r->mu);
    gms_buf_deinit(&b);
}

/* Draws sl's next token from its row (sl->logits) into sl->pick, with the
 * presence and frequency penalties on a copy of it, and the logprobs
 * statistics when asked.  Each slot has its own sampler and buffers, so
 * the rows of a step are drawn on several threads at once; nothing shared
 * is written (the text and the request come after, in on_pick). */
static void pick_row(const gms_sched *q, slot *sl)
{
    const gms_request *p = &sl->req->p;
    const float *row = sl->logits;
    if (sl->n_uniq && (p->presence != 0 || p->frequency != 0)) {
        memcpy(sl->row, row, (size_t)q->n_vocab * sizeof *sl->row);
        for (int32_t i = 0; i < sl->n_uniq; i++) {
            int32_t id = sl->uniq[i];
            sl->row[id] -= p->presence + p->frequency * (float)sl->count[id];
        }
        row = sl->row;
    }
    sl->pick = gmrt_sampler_pick(sl->smp, row);
    if (p->logprobs)
        logprob_stats(q, sl, sl->logits);
}

/* gmrt_pool_run_task: thread ith draws rows ith, ith + nth, ... */
static void pick_rows(void *user, int ith, int nth)
{
    gms_sched *q = user;
    for (int32_t k = ith; k < q->n_picks; k += nth)
        pick_row(q, q->picks[k]);
}

/* Takes sl's drawn token (pick_row): releases its text and decides whether
 * the slot goes on. */
static void on_pick(gms_sched *q, slot *sl)
{
    gms_req *r = sl->req;
    const gms_request *p = &r->p;
    int32_t id = sl->pick;
    if (sl->n_gen == 0) {
        double now = gms_now();
        pthread_mutex_lock(&r->mu);
        r->t_first = now;
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_add(&q->st.ttft_us_sum, (long long)((now - r->t_submit) * 1e6));
        atomic_fetch_add(&q->st.ttft_count, 1);
    }
    if (p->logprobs)
        logprob_entry(q, sl, sl->logits, id);
    if (!sl->count[id]++)
        sl->uniq[sl->n_uniq++] = id;
    sl->gen[sl->n_gen++] = id;
    atomic_fetch_add(&q->st.tokens_out, 1);
    if (id == q->eos || id == q->eot) {
        if (release(q, sl))
            finish(q, sl, "stop", NULL);
        return;
    }
    size_t n = gmrt_token_to_piece(q->v, id, q->piece, GMRT_PIECE_MAX);
    gms_buf_add(&sl->pend, q->piece, n < GMRT_PIECE_MAX ? n : GMRT_PIECE_MAX);
    if (!release(q, sl))
        return;
    if ((p->max_tokens && sl->n_gen >= p->max_tokens) || sl->n_kv >= q->n_ctx ||
        sl->n_gen >= q->n_ctx) {
        finish(q, sl, "length", NULL);
        return;
    }
    sl->next = id;
    sl->state = SLOT_GEN;
}

/* ------------------------------------------------------------ admission */

/* How many of slot i's KV ids r can keep: their common prefix with r's
 * prompt, less one id at least (its last id is fed for the logits), as far
 * as the runtime can truncate to it. */
static int32_t reusable(const gms_sched *q, int32_t i, const gms_req *r)
{
    const slot *sl = &q->slots[i];
    int32_t n = 0, max = (int32_t)r->p.n_ids - 1 < sl->n_kv ? (int32_t)r->p.n_ids - 1
                                                           : sl->n_kv;
    while (n < max && sl->kv[n] == r->p.ids[n])
        n++;
    return gmrt_session_seq_keep(q->s, i, n);
}

/* Puts r into the free slot with the longest reusable prefix; among equals
 * the one with the fewest ids to lose, so that other slots keep theirs. */
static void admit(gms_sched *q, gms_req *r)
{
    slot *best = NULL;
    int32_t best_len = -1;
    for (int32_t i = 0; i < q->n_slots; i++) {
        slot *sl = &q->slots[i];
        int32_t len = sl->req ? -1 : reusable(q, i, r);
        if (len > best_len || (len >= 0 && len == best_len && sl->n_kv < best->n_kv))
            best = sl, best_len = len;
    }
    best->n_kv = gmrt_session_seq_truncate(q->s, (int32_t)(best - q->slots), best_len);
    for (int32_t i = 0; i < best->n_uniq; i++)
        best->count[best->uniq[i]] = 0;
    best->n_uniq = best->n_gen = 0;
    gms_buf_clear(&best->pend);
    best->req = r;
    best->state = SLOT_PREFILL;
    atomic_fetch_add(&q->st.slots_busy, 1);
    atomic_fetch_add(&q->st.tokens_in, (long long)r->p.n_ids);
    atomic_fetch_add(&q->st.tokens_cached, best_len);
    pthread_mutex_lock(&r->mu);
    r->n_prompt = (int64_t)r->p.n_ids;
    r->n_cached = best_len;
    pthread_mutex_unlock(&r->mu);
    gmrt_diag d = {0};
    if (gmrt_sampler_create(&r->p.sp, q->n_vocab, &best->smp, &d) != GMRT_OK)
        finish(q, best, NULL, d.msg);
}

/* Drops the queued requests whose clients went away, keeping the order of
 * the others: their places take new requests at once, not only when a slot
 * frees.  Under mu. */
static void drop_cancelled(gms_sched *q)
{
    int32_t kept = 0;
    for (int32_t i = 0; i < q->q_len; i++) {
        gms_req *r = q->queue[(q->q_head + i) % q->q_cap];
        if (atomic_load(&r->cancelled)) {
            gms_req_unref(r);
            atomic_fetch_sub(&q->st.queue_depth, 1);
        } else
            q->queue[(q->q_head + kept++) % q->q_cap] = r;
    }
    q->q_len = kept;
}

/* Takes queued requests into free slots.  Under mu. */
static void admit_queued(gms_sched *q)
{
    while (q->q_len && atomic_load(&q->st.slots_busy) < q->n_slots) {
        gms_req *r = q->queue[q->q_head];
        q->q_head = (q->q_head + 1) % q->q_cap;
        q->q_len--;
        atomic_fetch_sub(&q->st.queue_depth, 1);
        admit(q, r);
    }
}

/* ------------------------------------------------------------ the loop */

/* The runs of the next step: one token for each generating slot, then
 * prompt ids of the prefilling slots in order, up to chunk tokens in all
 * (at least chunk / 4 prompt ids and one, so that prompts go on however
 * many slots generate).  Returns the number of runs. */
static size_t plan_step(gms_sched *q)
{
    size_t n = 0, t = 0;
    for (int32_t i = 0; i < q->n_slots; i++) {
        slot *sl = &q->slots[i];
        if (sl->state != SLOT_GEN)
            continue;
        q->runs[n] = (gmrt_run){.seq = i, .n = 1, .logits = true};
        q->toks[t++] = sl->next;
        q->batch[n++] = sl;
    }
    int32_t least = q->chunk / 4 > 1 ? q->chunk / 4 : 1;
    int32_t budget = q->chunk - (int32_t)t > least ? q->chunk - (int32_t)t : least;
    for (int32_t i = 0; i < q->n_slots && budget > 0; i++) {
        slot *sl = &q->slots[i];
        if (sl->state != SLOT_PREFILL)
            continue;
        const gms_request *p = &sl->req->p;
        int32_t left = (int32_t)p->n_ids - sl->n_kv, k = left < budget ? left : budget;
        q->runs[n] = (gmrt_run){.seq = i, .n = k, .logits = k == left};
        memcpy(q->toks + t, p->ids + sl->n_kv, (size_t)k * sizeof *q->toks);
        t += (size_t)k;
        q->batch[n++] = sl;
        budget -= k;
    }
    return n;
}

/* One forward step for every busy slot (gmrt_session_batch): the decode
 * tokens and a chunk of prompt ids share a pass over the weights, so a new
 * request's prompt costs the others no pass of their own.  Then the rows
 * are drawn on the session's threads (pick_rows) and the text released in
 * slot order. */
static void step(gms_sched *q)
{
    size_t n = plan_step(q);
    if (!n)
        return;
    const float *logits = NULL;
    gmrt_diag d = {0};
    double t0 = gms_now();
    bool decodes = q->batch[0]->state == SLOT_GEN; /* plan_step puts them first */
    gmrt_status st = gmrt_session_batch(q->s, q->runs, n, q->toks, &logits, &d);
    if (decodes) {
        atomic_fetch_add(&q->st.decode_steps, 1);
        atomic_fetch_add(&q->st.decode_us, (long long)((gms_now() - t0) * 1e6));
    }
    q->n_picks = 0;
    const int32_t *tok = q->toks;
    for (size_t k = 0; k < n; k++) {
        slot *sl = q->batch[k];
        if (st != GMRT_OK) {
            if (sl->state == SLOT_PREFILL) {
                gmrt_session_seq_reset(q->s, (int32_t)(sl - q->slots));
                sl->n_kv = 0;
            }
            finish(q, sl, NULL, d.msg);
            continue;
        }
        memcpy(sl->kv + sl->n_kv, tok, (size_t)q->runs[k].n * sizeof *tok);
        sl->n_kv += q->runs[k].n;
        tok += q->runs[k].n;
        if (q->runs[k].logits) {
            sl->logits = logits + (size_t)q->n_picks * (size_t)q->n_vocab;
            q->picks[q->n_picks++] = sl;
        }
    }
    if (q->n_picks > 1)
        gmrt_pool_run_task(gmrt_session_pool(q->s), pick_rows, q);
    else if (q->n_picks) /* one row: no hand-out to wait for */
        pick_row(q, q->picks[0]);
    for (int32_t k = 0; k < q->n_picks; k++)
        on_pick(q, q->picks[k]);
}

static void *model_thread(void *arg)
{
    gms_sched *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->stop && !q->wake && !q->q_len && !atomic_load(&q->st.slots_busy))
            pthread_cond_wait(&q->cv, &q->mu);
        q->wake = false;
        if (q->stop) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        for (int32_t i = 0; i < q->n_slots; i++) /* clients gone: free their slots */
            if (q->slots[i].req && atomic_load(&q->slots[i].req->cancelled))
                finish(q, &q->slots[i], NULL, "cancelled");
        drop_cancelled(q);
        admit_queued(q);
        pthread_mutex_unlock(&q->mu);
        step(q);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

gmrt_status gms_sched_create(gmrt_session *s, int32_t n_slots, int32_t queue_cap,
                             int32_t n_ctx, gms_sched **out, gmrt_diag *diag)
{
    *out = NULL;
    const gmrt_vocab *v = gmrt_session_vocab(s);
    if (!v)
        return gmrt_fail(diag, GMRT_ERR_ARG, "the weights carry no vocabulary");
    if (n_slots < 1 || n_slots > gmrt_session_n_seqs(s) || queue_cap < 1 || n_ctx < 2)
        return gmrt_fail(diag, GMRT_ERR_ARG, "bad scheduler sizes");
    gms_sched *q = calloc(1, sizeof *q);
    if (!q)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    q->s = s;
    q->v = v;
    q->n_vocab = gmrt_vocab_size(v);
    q->n_ctx = n_ctx;
    q->chunk = gmrt_session_max_batch(s) < 64 ? gmrt_session_max_batch(s) : 64;
    q->eos = gmrt_vocab_eos(v);
    q->eot = gmrt_vocab_eot(v);
    q->n_slots = n_slots;
    q->q_cap = queue_cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    bool ok = (q->slots = calloc((size_t)n_slots, sizeof *q->slots)) &&
              (q->queue = calloc((size_t)queue_cap, sizeof *q->queue)) &&
              (q->piece = malloc(GMRT_PIECE_MAX)) &&
              (q->runs = calloc((size_t)n_slots, sizeof *q->runs)) &&
              (q->toks = calloc((size_t)n_slots + (size_t)q->chunk, sizeof *q->toks)) &&
              (q->batch = calloc((size_t)n_slots, sizeof *q->batch)) &&
              (q->picks = calloc((size_t)n_slots, sizeof *q->picks));
    for (int32_t i = 0; ok && i < n_slots; i++) {
        slot *sl = &q->slots[i];
        gms_buf_init(&sl->pend, 0);
        ok = (sl->kv = calloc((size_t)n_ctx, sizeof *sl->kv)) &&
             (sl->gen = calloc((size_t)n_ctx, sizeof *sl->gen)) &&
             (sl->uniq = calloc((size_t)n_ctx, sizeof *sl->uniq)) &&
             (sl->row = calloc((size_t)q->n_vocab, sizeof *sl->row)) &&
             (sl->count = calloc((size_t)q->n_vocab, sizeof *sl->count));
        gmrt_session_seq_reset(s, i);
    }
    /* the model thread is thread 0 of the session's pool: it runs a step's
     * kernels itself and needs their stack (gmrt.h GMRT_THREAD_STACK) */
    pthread_attr_t attr;
    if (ok && pthread_attr_init(&attr) == 0) {
        ok = pthread_attr_setstacksize(&attr, GMRT_THREAD_STACK) == 0 &&
             pthread_create(&q->thread, &attr, model_thread, q) == 0;
        pthread_attr_destroy(&attr);
    } else {
        ok = false;
    }
    q->started = ok;
    if (!ok) {
        gms_sched_destroy(q);
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory starting the scheduler");
    }
    *out = q;
    return GMRT_OK;
}

void gms_sched_stop(gms_sched *q)
{
    pthread_mutex_lock(&q->mu);
    bool was = q->stop;
    q->stop = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (was)
        return;
    if (q->started)
        pthread_join(q->thread, NULL);
    for (int32_t i = 0; q->slots && i < q->n_slots; i++)
        if (q->slots[i].req)
            finish(q, &q->slots[i], NULL, "the server is shutting down");
    pthread_mutex_lock(&q->mu);
    for (; q->queue && q->q_len; q->q_len--) {
        gms_req *r = q->queue[q->q_head];
        q->q_head = (q->q_head + 1) % q->q_cap;
        pthread_mutex_lock(&r->mu);
        r->done = true;
        snprintf(r->error, sizeof r->error, "the server is shutting down");
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        gms_req_unref(r);
    }
    pthread_mutex_unlock(&q->mu);
}

void gms_sched_destroy(gms_sched *q)
{
    if (!q)
        return;
    gms_sched_stop(q);
    for (int32_t i = 0; q->slots && i < q->n_slots; i++) {
        slot *sl = &q->slots[i];
        free(sl->kv);
        free(sl->gen);
        free(sl->uniq);
        free(sl->row);
        free(sl->count);
        gms_buf_deinit(&sl->pend);
    }
    free(q->slots);
    free(q->queue);
    free(q->piece);
    free(q->runs);
    free(q->toks);
    free(q->batch);
    free(q->picks);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

bool gms_sched_submit(gms_sched *q, gms_req *r)
{
    pthread_mutex_lock(&q->mu);
    bool ok = !q->stop && q->q_len < q->q_cap;
    if (ok) {
        pthread_mutex_lock(&r->mu);
        r->refs++;
        r->t_submit = gms_now();
        pthread_mutex_unlock(&r->mu);
        q->queue[(q->q_head + q->q_len) % q->q_cap] = r;
        q->q_len++;
        atomic_fetch_add(&q->st.queue_depth, 1);
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

void gms_sched_cancel(gms_sched *q, gms_req *r)
{
    atomic_store(&r->cancelled, true);
    pthread_mutex_lock(&q->mu);
    q->wake = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

gms_stats *gms_sched_stats(gms_sched *q) { return &q->st; }
int32_t gms_sched_slots(const gms_sched *q) { return q->n_slots; }
