/*
 * scheduler.h — the model thread: slots, the request queue, batched decoding
 * (docs/server.md#scheduling).
 *
 * One thread owns the gmrt_session.  A request is submitted into a bounded
 * queue; each iteration the thread admits queued requests into free slots
 * (one sequence of the session each), prefills at most one chunk of prompt
 * tokens, then runs ONE gmrt_session_decode step for every slot that is
 * generating and samples each slot's next token with its own sampler.
 * Text reaches the HTTP side through the request's buffer under its mutex
 * and condition variable; the HTTP side cancels a request whose client went
 * away, and the slot is freed at the next iteration.
 */
#ifndef GMS_SCHED_H
#define GMS_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "gmrt.h"
#include "jsonw.h"

typedef struct gms_req {
    gms_request p;               /* the parsed request (ids owned) */
    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t cv;           /* signalled on new text and at the end */
    int refs;                    /* the HTTP side and the scheduler */
    atomic_bool cancelled;       /* the client went away */
    gms_buf text;                /* the answer so far, stop strings cut */
    gms_buf lp;                  /* logprobs entries as JSON, comma-separated */
    size_t n_lp;
    bool done;
    const char *finish;          /* "stop", "length" or NULL (an error) */
    char error[256];             /* when done without finish */
    int64_t n_prompt, n_cached, n_gen;
    double t_submit, t_first;    /* seconds (gms_now) */
} gms_req;

/* A new request owning p's ids (p is cleared); refs = 1 (the caller's).
 * NULL when out of memory (p is then deinit'd). */
gms_req *gms_req_create(gms_request *p);
/* Drops one reference; the last one frees the request. */
void gms_req_unref(gms_req *r);

typedef struct gms_stats {
    atomic_llong tokens_in, tokens_cached, tokens_out;
    atomic_llong ttft_us_sum, ttft_count;
    atomic_llong decode_steps, decode_us;  /* batched steps and their time */
    atomic_int queue_depth, slots_busy;
} gms_stats;

typedef struct gms_sched gms_sched;

/* Starts the model thread over s with n_slots slots (the session's
 * sequences), a queue of queue_cap requests and at most n_ctx positions per
 * slot.  Free with gms_sched_destroy. */
gmrt_status gms_sched_create(gmrt_session *s, int32_t n_slots, int32_t queue_cap,
                             int32_t n_ctx, gms_sched **out, gmrt_diag *diag);
/* Stops the thread; requests still open end with an error, later submits
 * fail.  Idempotent; the scheduler stays valid for cancel and stats. */
void gms_sched_stop(gms_sched *q);
/* Stops (if not yet) and frees. */
void gms_sched_destroy(gms_sched *q);
/* Queues r (taking a reference).  False when the queue is full (429) or the
 * scheduler stops. */
bool gms_sched_submit(gms_sched *q, gms_req *r);
/* Marks r cancelled and wakes the model thread (any thread, not holding
 * r->mu: the scheduler's mutex is taken before a request's). */
void gms_sched_cancel(gms_sched *q, gms_req *r);
gms_stats *gms_sched_stats(gms_sched *q);
int32_t gms_sched_slots(const gms_sched *q);

/* Monotonic seconds. */
double gms_now(void);

#endif /* GMS_SCHED_H */
