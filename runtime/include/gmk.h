/*
 * gmk.h — the kernel interface between generated model code and the runtime.
 *
 * Generated C includes only this header and the kernel headers of its target
 * (gmk_generic.h for the portable scalar kernels).  It exports one gmk_model
 * descriptor; the runtime reads the descriptor (after dlopen or static link),
 * maps the weights in manifest order, allocates the arena and the KV cache the
 * descriptor asks for, and calls forward() on every thread of its pool.
 *
 * Bump GMK_ABI_VERSION whenever a struct below changes layout or meaning.
 */
#ifndef GMK_H
#define GMK_H

#include <stddef.h>
#include <stdint.h>

#define GMK_ABI_VERSION 5u

/* Generated kernels are one function per distinct shape, called from many
 * places: keeping them out of line keeps compile time proportional to the
 * number of shapes. */
#if defined(__GNUC__) || defined(__clang__)
#define GMK_NOINLINE __attribute__((noinline))
#else
#define GMK_NOINLINE
#endif

/* Most threads a forward step may run on (the fused head keeps one argmax
 * slot per thread in the arena; threads past it still take part, see
 * gmk_fused_head). */
#define GMK_MAX_THREADS 256

/* Alignment of the arena base and of every offset the planner hands out. */
#define GMK_ARENA_ALIGN 64

/*
 * Element types.  The values are the GGUF/ggml type ids so that a tensor's
 * type can be compared with a GGUF file's without translation.
 */
typedef enum gmk_dtype {
    GMK_DTYPE_F32 = 0,
    GMK_DTYPE_F16 = 1,
    GMK_DTYPE_Q4_0 = 2,
    GMK_DTYPE_Q4_1 = 3,
    GMK_DTYPE_Q5_0 = 6,
    GMK_DTYPE_Q5_1 = 7,
    GMK_DTYPE_Q8_0 = 8,
    GMK_DTYPE_Q8_1 = 9,
    GMK_DTYPE_Q2_K = 10,
    GMK_DTYPE_Q3_K = 11,
    GMK_DTYPE_Q4_K = 12,
    GMK_DTYPE_Q5_K = 13,
    GMK_DTYPE_Q6_K = 14,
    GMK_DTYPE_Q8_K = 15,
    GMK_DTYPE_BF16 = 30,
    GMK_DTYPE_COUNT = 40 /* one past the largest ggml id we know of */
} gmk_dtype;

/* Weight layouts (gmk_layout.h).  Kernels take wdtype = dtype | layout. */
#define GMK_LAYOUT_SHIFT 8
#define GMK_LAYOUT_PACKED 0                    /* the file's packed rows */
#define GMK_LAYOUT_P16 (1 << GMK_LAYOUT_SHIFT) /* b32 formats, 16-row panels */
#define GMK_LAYOUT_P8 (2 << GMK_LAYOUT_SHIFT)  /* q4/5/8_0, k-quants: 8-row panels (AVX2) */
#define GMK_LAYOUT_P4 (3 << GMK_LAYOUT_SHIFT)  /* q4_0, q8_0: 4-row panels (AArch64) */
#define GMK_DTYPE_MASK ((1 << GMK_LAYOUT_SHIFT) - 1)

/* One weight tensor the compiled model expects, in ggml dim order (ne[0] is
 * the contiguous input dimension).  layout: the byte order the kernels read
 * (GMK_LAYOUT_* of gmk_layout.h; 0 = the file's packed rows), into which the
 * runtime repacks the tensor once at load. */
typedef struct gmk_tensor {
    const char *name;
    int32_t dtype;
    int32_t n_dims;
    int64_t ne[4];
    int32_t layout;
} gmk_tensor;

/*
 * One sequence's tokens in a batch of several (gmk_ctx.seqs): tokens t0 ..
 * t0 + n - 1 sit at positions pos .. pos + n - 1 of the KV cache that starts
 * kv_off bytes into gmk_ctx.kv (a multiple of GMK_ARENA_ALIGN; each sequence
 * has a cache of kv_bytes of its own).
 */
typedef struct gmk_seq {
    int32_t t0, n, pos;
    uint64_t kv_off;
} gmk_seq;

/*
 * Everything one forward step needs.  The runtime fills it; forward() reads it
 * on every thread and must not write it.  Positions pos .. pos+n_tokens-1 are
 * computed; K/V for them are written into kv; logits for the last n_logits
 * tokens (0 .. n_tokens; 0 while prefilling all but the last chunk) are
 * written row by row into logits.  With n_seqs > 0 the batch instead holds
 * tokens of several sequences, seqs[0 .. n_seqs) in token order covering
 * every token once, each attending to its own cache only (pos is then
 * unused): a batched decode step reads the weights once for all of them.
 */
typedef struct gmk_ctx {
    const void *const *w;   /* weight pointers, manifest order */
    unsigned char *arena;   /* activation arena, arena_bytes, GMK_ARENA_ALIGN */
    unsigned char *kv;      /* KV cache, kv_bytes, GMK_ARENA_ALIGN */
    const int32_t *tokens;  /* n_tokens ids, each < n_vocab (checked by caller) */
    int32_t n_tokens;       /* 1 .. max_batch */
    int32_t pos;            /* position of tokens[0]; pos + n_tokens <= n_ctx */
    int32_t n_logits;       /* 0 .. n_tokens, counted from the last token */
    float *logits;          /* [n_logits][n_vocab] */
    void (*barrier)(void *sync); /* every thread waits until all arrive */
    void *sync;
    /* Greedy decoding: when non-NULL and n_logits == 1, a model that fuses
     * argmax into its head writes the id of the largest logit here (first
     * on ties, NaN never) and may leave logits unwritten; NULL: write
     * logits.  Models without the fusion ignore it, so set it to -1 first. */
    int32_t *argmax_out;
    int32_t n_seqs;         /* 0: one sequence at pos in kv */
    const gmk_seq *seqs;
} gmk_ctx;

/* The batch's sequence runs: gmk_ctx.seqs, or the one implied by pos. */
static inline int32_t gmk_n_seqs(const gmk_ctx *c) { return c->n_seqs > 0 ? c->n_seqs : 1; }

static inline gmk_seq gmk_seq_at(const gmk_ctx *c, int32_t r)
{
    if (c->n_seqs > 0)
        return c->seqs[r];
    gmk_seq one = {0, c->n_tokens, c->pos, 0};
    return one;
}

typedef void gmk_forward_fn(const gmk_ctx *ctx, int ith, int nth);

/* The descriptor a generated model exports as <model>_model and through the
 * fixed alias gmk_model_entry. */
typedef struct gmk_model {
    uint32_t abi_version;       /* GMK_ABI_VERSION at generation time */
    const char *name;           /* C identifier of the model */
    const char *tool_version;   /* gemmac version that generated it */
    const char *graph_hash;     /* hex content hash of the graph */
    const char *target;         /* target profile name */
    const char *arch;           /* GGUF general.architecture expected */
    int32_t n_vocab, d_model, n_layers, n_ctx, max_batch;
    uint64_t arena_bytes;       /* activation arena for one step */
    uint64_t kv_bytes;          /* KV cache, all layers, full context */
    uint64_t kv_bytes_per_token;
    uint64_t weight_bytes;      /* sum of manifest tensor sizes */
    int32_t n_tensors;
    const gmk_tensor *tensors;
    gmk_forward_fn *forward;
    int32_t n_experts_used;     /* MoE: experts a token computes with, of
                                 * the ne[2] of each *_exps tensor; 0: dense */
} gmk_model;

#endif /* GMK_H */
