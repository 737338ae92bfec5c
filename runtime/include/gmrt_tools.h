/*
 * gmrt_tools.h — the runtime's tools: what the command lines (gemmac run,
 * bench, eval, standalone executables) and the compiler use on top of the
 * core API of gmrt.h, and what an embedded model never needs: the GGUF
 * writer, the roofline, the benchmark and its cost model, the `run` command
 * line and the evaluation.  Their sources are runtime/tools/; the core (the .c files
 * of runtime/) never calls them (docs/export.md).
 */
#ifndef GMRT_TOOLS_H
#define GMRT_TOOLS_H

#include "gmrt.h"

/* ------------------------------------------------ GGUF writer (gguf_write.c)
 * Collects metadata and the tensor table, then writes the file in one pass,
 * asking fill() for each tensor's bytes in table order (so that a large
 * model never has to be held in memory at once). */

typedef struct gmrt_gguf_writer gmrt_gguf_writer;

/* Returns NULL only when out of memory. Free with gmrt_gguf_writer_destroy. */
gmrt_gguf_writer *gmrt_gguf_writer_create(void);
void gmrt_gguf_writer_destroy(gmrt_gguf_writer *w);

gmrt_status gmrt_gguf_writer_set_u32(gmrt_gguf_writer *w, const char *key,
                                     uint32_t v) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_i32(gmrt_gguf_writer *w, const char *key,
                                     int32_t v) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_f32(gmrt_gguf_writer *w, const char *key,
                                     float v) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_bool(gmrt_gguf_writer *w, const char *key,
                                      bool v) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_str(gmrt_gguf_writer *w, const char *key,
                                     const char *v) GMRT_MUST_CHECK;
/* lens may be NULL (then strlen is used). Strings are copied. */
gmrt_status gmrt_gguf_writer_set_strs(gmrt_gguf_writer *w, const char *key,
                                      const char *const *v,
                                      const uint32_t *lens,
                                      uint64_t n) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_f32s(gmrt_gguf_writer *w, const char *key,
                                      const float *v, uint64_t n) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_i32s(gmrt_gguf_writer *w, const char *key,
                                      const int32_t *v, uint64_t n) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_set_bools(gmrt_gguf_writer *w, const char *key,
                                       const bool *v, uint64_t n) GMRT_MUST_CHECK;
/* A value already encoded as GGUF stores it (gmrt_gguf_kv_raw of a file
 * the reader accepted), copied byte for byte. */
gmrt_status gmrt_gguf_writer_set_raw(gmrt_gguf_writer *w, const char *key,
                                     gmrt_gguf_type type, const void *val,
                                     size_t len) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_writer_add_tensor(gmrt_gguf_writer *w, const char *name,
                                        int32_t dtype, int32_t n_dims,
                                        const int64_t *ne) GMRT_MUST_CHECK;

/* Called once per tensor, in the order added, with a zeroed buffer of the
 * tensor's exact byte size; returns GMRT_OK or an error that aborts the
 * write (the partial file is removed). */
typedef gmrt_status gmrt_gguf_fill_fn(void *user, int64_t index,
                                      const char *name, void *dst,
                                      size_t nbytes, gmrt_diag *diag);

/* Writes GGUF v3 with alignment 32 to path (via a temporary file renamed
 * into place, so a failed write leaves nothing behind). */
gmrt_status gmrt_gguf_writer_write(gmrt_gguf_writer *w, const char *path,
                                   gmrt_gguf_fill_fn *fill, void *user,
                                   gmrt_diag *diag) GMRT_MUST_CHECK;

/* ------------------------------------------------ roofline (roofline.c) */

#define GMRT_ROOF_MAX_THREADS 256
#define GMRT_ROOF_MAX_PASSES 64
#define GMRT_CACHE_POINTS 24 /* buffer sizes of a read-bandwidth curve */

/* This machine's ceilings at one thread count.  GB/s are 1e9 bytes/s; ops
 * are 2 x multiply-adds.  The *_insn strings name what was measured (static
 * strings). */
typedef struct gmrt_roofline {
    int n_threads;
    double bw_best_gbs, bw_median_gbs; /* streaming read, over the passes */
    size_t bw_bytes;                   /* buffer size read per pass */
    int bw_passes;
    const char *bw_insn;
    double int8_gops, bf16_gflops, f32_gflops; /* best of three runs */
    const char *int8_insn, *bf16_insn, *f32_insn;
    double barrier_us; /* one barrier of the runtime's thread pool (pool.c)
                          with no work between: the best of 7 runs */
    /* gmrt_roofline_measure_cache: the read bandwidth of n_cache buffer
     * sizes (MiB, increasing); n_cache 0 where not measured */
    int n_cache;
    double cache_mib[GMRT_CACHE_POINTS], cache_gbs[GMRT_CACHE_POINTS];
} gmrt_roofline;

/* Measures read bandwidth (bw_bytes, rounded down to a whole number of
 * vector blocks per thread, read `passes` times by n_threads threads after
 * one untimed pass), the int8 / bf16 / f32 peaks and the time of one pool
 * barrier on n_threads threads.
 * Allocates and frees the buffer itself; takes about 0.1 s per GiB-pass plus
 * 0.5 s for the peaks.  Fails with GMRT_ERR_ARG (counts out of range),
 * GMRT_ERR_NOMEM (buffer or threads).  Not reentrant. */
gmrt_status gmrt_roofline_measure(int n_threads, size_t bw_bytes, int passes,
                                  gmrt_roofline *out, gmrt_diag *diag) GMRT_MUST_CHECK;

/* The read bandwidth of buffers from 4 MiB a thread up to max_bytes (steps
 * of a factor sqrt 2, at most GMRT_CACHE_POINTS; each measured as the
 * roofline's, filled, read once untimed, then until 256 MiB have been read,
 * 3 to 64 times, the best time) on n_threads threads, into r's cache
 * curve: what data that comes back after that many bytes reads at.  About
 * 1.5 s a thread count (each size filled first); GMRT_ERR_NOMEM for the
 * buffer or the threads. */
gmrt_status gmrt_roofline_measure_cache(int n_threads, size_t max_bytes, gmrt_roofline *r,
                                        gmrt_diag *diag) GMRT_MUST_CHECK;

/* ------------------------------------------------ benchmark (bench.c) */

typedef enum gmrt_peak_kind {
    GMRT_PEAK_INT8, /* integer-quantized weights: int8 dot products */
    GMRT_PEAK_BF16,
    GMRT_PEAK_F32   /* f32 and f16 weights (widened to f32) */
} gmrt_peak_kind;

/* What one token costs, from a model's manifest (formulas in
 * docs/benchmarks.md). */
typedef struct gmrt_bench_costs {
    uint64_t decode_weight_bytes; /* bytes a decode step reads: all tensors,
                                     but an untied head's embedding table and
                                     the per-layer embedding table count one
                                     row, and MoE expert stacks only the
                                     n_experts_used experts a token runs */
    uint64_t kv_bytes_per_pos;    /* K and V, all layers, one position */
    double dense_macs;            /* per token: 2-D blk.* weights, ne0 x ne1,
                                     and the used experts' matrices */
    double head_macs;             /* LM head (output or tied token_embd) */
    double attn_macs_per_key;     /* per token and attended position: QK + PV,
                                     sum over layers of 2 x attn_q rows */
    gmrt_peak_kind peak;          /* type of most of the blk.* weight bytes */
    double step_barriers;         /* thread-pool barriers a forward step
                                     passes (gmc_plan_step_barriers, or
                                     counted by bench); 0 where unknown */
    double type_macs[GMK_DTYPE_COUNT]; /* dense_macs by the weights' dtype;
                                          all 0 where unknown */
    uint64_t decode_expert_bytes; /* of decode_weight_bytes, the n_experts_used
                                     experts' share (a step's choice varies) */
    uint64_t expert_bytes;        /* all experts of all MoE stacks: the set
                                     the choices range over */
    double type_bytes[GMK_DTYPE_COUNT]; /* decode_weight_bytes by the weights'
                                           dtype; all 0 where unknown */
} gmrt_bench_costs;

/* The peak a weight dtype's matmuls run at: int8 dot products for the
 * integer-quantized types, else f32 (f32, and f16 and bf16 widened). */
gmrt_peak_kind gmrt_bench_peak_of_dtype(int32_t dtype);

/* Fails with GMRT_ERR_MISMATCH if there is no token_embd.weight, or
 * GMRT_ERR_FORMAT / GMRT_ERR_LIMIT for a tensor whose size is invalid. */
gmrt_status gmrt_bench_costs_init(const gmk_model *m, gmrt_bench_costs *out,
                                  gmrt_diag *diag) GMRT_MUST_CHECK;
/* Mean bytes read per step of tg<n_gen> from an empty context: weights plus
 * the KV of the (n_gen + 1) / 2 positions a step attends on average. */
double gmrt_bench_tg_bytes(const gmrt_bench_costs *c, int64_t n_gen);
/* Arithmetic ops (2 x MACs) of pp<n_prompt> from an empty context: dense
 * weights for every token, the head for the last, causal attention over
 * n(n+1)/2 query-key pairs (an upper bound past a sliding window). */
double gmrt_bench_pp_ops(const gmrt_bench_costs *c, int64_t n_prompt);

/* Tokens/s of one thread count: at the fastest and at the median of the
 * timed runs; 0 for a test not run. */
typedef struct gmrt_bench_speed {
    int threads;
    double pp_best_tps, pp_median_tps; /* prefill */
    double tg_best_tps, tg_median_tps; /* decode */
} gmrt_bench_speed;

/* The measurement of gmrt_bench_main without its output: pp<n_prompt> and
 * tg<n_gen> (0 = skip that test) on a session of `threads` threads over the
 * GGUF weights (converted at load where their types differ from the
 * compiled ones if requant), one warm-up and reps timed runs each, nothing
 * printed.  GMRT_ERR_ARG for counts out of range; the session's errors
 * otherwise. */
gmrt_status gmrt_bench_measure(const gmk_model *m, const char *weights, bool requant,
                               int threads, int n_prompt, int n_gen, int reps,
                               gmrt_bench_speed *out, gmrt_diag *diag) GMRT_MUST_CHECK;

/* The `bench` command line of a compiled model (see --help): runs pp/tg
 * tests with repetitions, measures the roofline, prints a table, JSON or
 * CSV to stdout and progress to stderr.  Returns a process exit status. */
int gmrt_bench_main(const gmk_model *model, int argc, char **argv);
/* The option list of gmrt_bench_main, for --help texts. */
void gmrt_bench_print_options(FILE *f);

/* ------------------------------------------------ cost model (costmodel.c) */

#define GMRT_MACHINE_MAX_THREADS 16

/* One thread count of a machine profile (docs/experiments.md#machine-profiles):
 * the roofline (GB/s are 1e9 bytes/s, ops 2 x multiply-adds) and the
 * fractions of it that decode (of read_gbs) and prefill (of the peak of the
 * weights' arithmetic) reached when calibrated; 1 where not given. */
typedef struct gmrt_machine_threads {
    int threads;
    double read_gbs, int8_gops, bf16_gflops, f32_gflops;
    double decode_efficiency, prefill_efficiency;
    double barrier_us; /* one thread-pool barrier, microseconds; 0 if not given */
    /* cache_curve: the read bandwidth of a buffer of cache_mib[i] MiB,
     * increasing sizes; n_cache 0 if not given (read_gbs at every size) */
    int n_cache;
    double cache_mib[GMRT_CACHE_POINTS], cache_gbs[GMRT_CACHE_POINTS];
    /* prefill_efficiency_<dtype>: the fraction of its peak that the matmuls
     * of one weight dtype reach in prefill; 0 where not given (then
     * prefill_efficiency) */
    double type_prefill_efficiency[GMK_DTYPE_COUNT];
    /* decode_efficiency_<dtype>: the fraction of the bandwidth that decode
     * reaches on weights of one dtype; 0 where not given */
    double type_decode_efficiency[GMK_DTYPE_COUNT];
} gmrt_machine_threads;

typedef struct gmrt_machine {
    char target[64];  /* the target whose kernels were calibrated; "" unknown */
    char cpu[128];
    int n;            /* sections, in increasing thread counts */
    gmrt_machine_threads t[GMRT_MACHINE_MAX_THREADS];
} gmrt_machine;

/* Parses a profile's text (`key value` lines; a line starting with `#` is
 * a comment); path names it in errors, which are GMRT_ERR_FORMAT
 * "path:line: what" (an unknown key, a value that is not a positive
 * number, a key outside or twice in its section, a section missing a
 * required key).  gmrt_machine_load reads the file first (regular files of
 * at most 64 KiB). */
gmrt_status gmrt_machine_parse(const char *text, const char *path, gmrt_machine *out,
                               gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_machine_load(const char *path, gmrt_machine *out,
                              gmrt_diag *diag) GMRT_MUST_CHECK;
/* Writes m to path (replaced atomically), with note as a comment line. */
gmrt_status gmrt_machine_save(const char *path, const gmrt_machine *m, const char *note,
                              gmrt_diag *diag) GMRT_MUST_CHECK;
/* The default profile of a target: <cache root>/machine-<target>.txt
 * (gmrt_cache_root).  False if it does not fit in cap. */
bool gmrt_machine_default_path(const char *target, char *buf, size_t cap);
/* The section for exactly `threads`, or NULL. */
const gmrt_machine_threads *gmrt_machine_find(const gmrt_machine *m, int threads);
/* The peak of one kind of arithmetic (int8 GOPS, bf16 or f32 GFLOPS). */
double gmrt_machine_peak(const gmrt_machine_threads *t, gmrt_peak_kind kind);

typedef struct gmrt_prediction {
    int threads;
    double pp_tps, tg_tps; /* 0 for a test of 0 tokens */
} gmrt_prediction;

/* The read bandwidth (1e9 bytes/s) of data that comes back after `bytes`
 * other bytes were read: t's cache curve at that size (interpolated in the
 * logarithm of the size, the first point's below it), never below
 * read_gbs, and read_gbs past the curve's last point. */
double gmrt_machine_gbs_at(const gmrt_machine_threads *t, double bytes);
/* Seconds a mean decode step of tg<n_gen> takes to read its bytes B
 * (gmrt_bench_tg_bytes) at t's ceilings: what every step reads (all but
 * the experts' share E) comes back after B bytes, at gmrt_machine_gbs_at
 * B; an expert after the steps between two choices of it, at
 * gmrt_machine_gbs_at B x (all experts' bytes / E). */
double gmrt_machine_read_s(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                           int n_gen);
/* The decode efficiency of c's weights at t: the byte-weighted harmonic
 * mean of their types' decode_efficiency_<dtype> (c->type_bytes), types
 * without one and bytes of no known type at decode_efficiency. */
double gmrt_machine_decode_efficiency(const gmrt_machine_threads *t,
                                      const gmrt_bench_costs *c);
/* Seconds of a mean decode step of tg<n_gen> at t's thread count:
 * gmrt_machine_read_s / gmrt_machine_decode_efficiency, plus
 * c->step_barriers x barrier_us. */
double gmrt_machine_step_s(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                           int n_gen);
/* Seconds of the prefill pp<n_prompt> at t's thread count: each weight
 * dtype's dense ops (c->type_macs) at its peak times its efficiency
 * (prefill_efficiency_<dtype>, else prefill_efficiency), the head and the
 * attention at the peak of c->peak times prefill_efficiency.  Without
 * c->type_macs, all of gmrt_bench_pp_ops at that peak. */
double gmrt_machine_prefill_s(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                              int n_prompt);
/* Predicted tokens/s of pp<n_prompt> and tg<n_gen> (as gemmac bench runs
 * them) at t's thread count: decode = 1 / gmrt_machine_step_s, prefill =
 * n_prompt / gmrt_machine_prefill_s. */
void gmrt_machine_predict(const gmrt_machine_threads *t, const gmrt_bench_costs *c,
                          int n_prompt, int n_gen, gmrt_prediction *out);

/* ------------------------------------------------------ command line (cli.c) */

/* The `run` command line of a compiled model: parses argv (see --help),
 * loads the weights, and streams a completion or chat answer to stdout with
 * a speed summary on stderr.  Used by standalone executables (generated
 * main.c) and by `gemmac run`.  Returns a process exit status. */
int gmrt_cli_main(const gmk_model *model, int argc, char **argv);

/* Parses s as a decimal integer in [lo, hi] into *out; otherwise prints
 * "<who>: <flag> expects an integer in [lo, hi], got ..." to stderr and
 * returns false.  The one integer-option parser of the command lines. */
bool gmrt_cli_parse_long(const char *who, const char *flag, const char *s, long lo, long hi,
                         long *out);

/* The option list of gmrt_cli_main, for --help texts. */
void gmrt_cli_print_options(FILE *f);

/* ------------------------------------------------------ evaluation (eval.c) */

/* Agreement of one or more sequences with a reference (docs/conformance.md).
 * KL is KL(ref || ours) in nats; for a top-K reference it is taken over the
 * partition {the K reference ids, the rest}, a lower bound of the full KL. */
typedef struct gmrt_eval_stats {
    int64_t n;                  /* positions compared */
    double kl_mean, kl_max;
    double top1;                /* fraction of positions with the same argmax */
    double nmse_mean, nmse_max; /* logits, per position; -1 for a top-K reference */
    double nll_sum;             /* ours: -log p(next reference token), nats */
    int64_t n_nll;              /* positions in nll_sum (each sequence's last has none) */
    /* NaN/Inf values in the rows compared (the reference's logits or top-K
     * log-probs, and ours).  Any of them makes KL, top-1 and NMSE NaN, so
     * that no threshold passes; ppl too when ours has one. */
    int64_t n_nonfinite_ref, n_nonfinite_ours;
} gmrt_eval_stats;

typedef struct gmrt_eval_report {
    int32_t n_seq, n_pos, n_vocab;
    int32_t top_k;              /* 0: the reference holds full logits */
    gmrt_eval_stats all;        /* over every position of every sequence */
    gmrt_eval_stats *seq;       /* n_seq entries, freed by gmrt_eval_report_free */
    int32_t first_nonfinite_seq, first_nonfinite_pos; /* first row with NaN/Inf; -1: none */
} gmrt_eval_report;

/* Runs every sequence of the reference GGUF at ref_path (from position 0,
 * one after the other) on session s of model m and compares.  Errors name
 * the file and what does not fit (vocabulary, shape, context, token ids).
 * NaN/Inf on either side is not an error here but is counted in the report
 * (see gmrt_eval_stats); `gemmac eval` fails on it. */
gmrt_status gmrt_eval_reference(gmrt_session *s, const gmk_model *m, const char *ref_path,
                                gmrt_eval_report *out, gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_eval_report_free(gmrt_eval_report *r);
/* Compares the full logits stored in a second reference-format file (another
 * implementation's output on the same sequences) with the reference at
 * ref_path, as gmrt_eval_reference compares a session's: the same metrics,
 * computed the same way, with the other file in the place of "ours".  m
 * only bounds the vocabulary and context.  GMRT_ERR_MISMATCH if the token
 * sequences differ, GMRT_ERR_ARG if other_path holds top-K only.  Free *out
 * with gmrt_eval_report_free. */
gmrt_status gmrt_eval_compare(const gmk_model *m, const char *ref_path, const char *other_path,
                              gmrt_eval_report *out, gmrt_diag *diag) GMRT_MUST_CHECK;

typedef struct gmrt_ppl_stats {
    int64_t n_tokens, n_chunks, n_scored, n_bytes; /* bytes of the scored tokens */
    double nll_sum;             /* nats */
    double ppl, bits_per_token, bits_per_byte;
} gmrt_ppl_stats;

/* Perplexity over text (BOS per the vocabulary, special tokens not parsed)
 * in chunks of ctx tokens, each starting with BOS from position 0; scores
 * the second half of each chunk (as llama.cpp's perplexity) or, with
 * score_all, every position. */
gmrt_status gmrt_eval_text(gmrt_session *s, const char *text, size_t len, int32_t ctx,
                           bool score_all, gmrt_ppl_stats *out,
                           gmrt_diag *diag) GMRT_MUST_CHECK;

/* Runs n_seq sequences of n_pos ids (shorter ones padded with -1) and writes
 * our top-k log-probabilities as a reference GGUF to path. */
gmrt_status gmrt_eval_save_topk(gmrt_session *s, const gmk_model *m, const int32_t *tokens,
                                int32_t n_seq, int32_t n_pos, int32_t k, const char *path,
                                gmrt_diag *diag) GMRT_MUST_CHECK;

/* Token ids from arg: a list written on the command line ("2,651 17": only
 * digits, commas and blanks) or else the name of a text file of ids
 * separated by commas or white space.  Each must be in [0, n_vocab), and
 * 1..max_n of them; errors name the file and line (or --ids) and the
 * offending text.  *out is malloc'd, the caller frees it. */
gmrt_status gmrt_eval_read_ids(const char *arg, int32_t n_vocab, int32_t max_n, int32_t **out,
                               size_t *out_n, gmrt_diag *diag) GMRT_MUST_CHECK;
/* Runs ids[0..n) from an empty context and writes the logits of every
 * position, n rows of n_vocab float32 in this machine's byte order, to path
 * (replaced atomically): as a .npy array of shape (n, n_vocab) when path
 * ends in ".npy", else raw.  docs/conformance.md#logits-out. */
gmrt_status gmrt_eval_write_logits(gmrt_session *s, const gmk_model *m, const int32_t *ids,
                                   size_t n, const char *path, gmrt_diag *diag) GMRT_MUST_CHECK;

/* The `eval` command line (see --help); returns a process exit status. */
int gmrt_eval_main(const gmk_model *model, int argc, char **argv);
void gmrt_eval_print_options(FILE *f);

#endif /* GMRT_TOOLS_H */
