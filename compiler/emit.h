/*
 * emit.h — the C emitter: one planned graph → readable C for one target.
 *
 * gmc_emit writes four texts: model.c (kernel calls in execution order, every
 * dimension a constant, buffers at planned offsets, a banner naming the tool
 * version, graph hash, target and flags, and no timestamp), model.h (the
 * descriptor and sizes for embedders), main.c (a standalone executable's
 * entry point, calling the runtime CLI) and manifest.tsv (the weights).
 * Output is a pure function of its inputs, so generated/ diffs are stable.
 */
#ifndef GMC_EMIT_H
#define GMC_EMIT_H

#include "diag.h"
#include "graph.h"
#include "strbuf.h"
#include "target.h"

typedef struct gmc_emit_out {
    gmc_strbuf model_c, model_h, main_c, manifest;
} gmc_emit_out;

void gmc_emit_out_init(gmc_emit_out *o);
void gmc_emit_out_deinit(gmc_emit_out *o);

/* flags: the complete clang command-line flags, for the banner. */
gmc_status gmc_emit(const gmc_graph *g, const gmc_target_config *tc,
                    const char *flags, gmc_emit_out *out,
                    gmc_diag *diag) GMC_MUST_CHECK;

#endif /* GMC_EMIT_H */
