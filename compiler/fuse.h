/*
 * fuse.h — the fusion pass: the lowered graph of one forward step rewritten
 * into fused ops (ops.def, second part) for one target.
 *
 * Runs after lowering and before planning.  The result is a new graph that
 * shares the model and weights with its input and adds the buffers fused ops
 * need: matmul inputs in the formats the target's kernels want (act_fmt),
 * one per distinct format, and the argmax slots of the head.  Per layer:
 * qkv, attn_act, proj_norm_add, gate_up, down_norm_add (which also applies
 * the next layer's attention norm); before the layers norm_act, after them
 * head; Gemma 4's per-layer embedding block is ple_gate and proj_norm_add.
 * Fusion is per block: a block whose op sequence the pass does not know
 * (Gemma 4's experts, Gemma 3n's sparse gate) keeps its ops, as do the ops
 * between blocks (the per-layer inputs, AltUp), and a fused block after
 * them opens with its own norm_act; the note says which.  Every unfused
 * matmul gets its input in the target's format (a third input each, and
 * the MoE scratch rows take the formats of the experts' weights).  The
 * graph hash stays the one of the unfused graph: the fused graph is a pure
 * function of it and the target, which the banner and cache key name too.
 */
#ifndef GMC_FUSE_H
#define GMC_FUSE_H

#include "arena.h"
#include "diag.h"
#include "graph.h"

/* Fuses g for a target whose matmuls want inputs in act_fmt(weight dtype).
 * *out is the fused graph (a copy: g is not changed), or g itself when an
 * input width does not fit its format.  *note, if note is non-NULL, says
 * what stayed unfused and why (each reason a block was not fused, with its
 * count and layers, then the unfused ops by op), or is NULL when every op
 * but the embedding was fused; it lives in a. */
gmc_status gmc_fuse(gmc_graph *g, int (*act_fmt)(int wdtype), gmc_arena *a,
                    gmc_graph **out, const char **note, gmc_diag *diag) GMC_MUST_CHECK;

#endif /* GMC_FUSE_H */
