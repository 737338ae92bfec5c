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
 * head.  Fusion is all or nothing: a graph whose op sequence or shapes do not
 * fit (see gmc_fuse) keeps its ops, with a note saying why; its matmuls
 * still get their inputs in the target's formats (a third input each, and
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
 * *out is the fused graph, or, when it cannot be fused, g or a copy with
 * converted matmul inputs (then *note, if note is non-NULL, says why;
 * otherwise it is NULL). */
gmc_status gmc_fuse(gmc_graph *g, int (*act_fmt)(int wdtype), gmc_arena *a,
                    gmc_graph **out, const char **note, gmc_diag *diag) GMC_MUST_CHECK;

#endif /* GMC_FUSE_H */
