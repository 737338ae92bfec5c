/*
 * plan.h — the static memory plan of one forward step.
 *
 * gmc_plan assigns every activation an offset in one arena (ggml gallocr
 * style: liveness over the node order, allocate at first use, free after the
 * last use, best fit among free blocks, GMK_ARENA_ALIGN-aligned), and every
 * layer's K/V cache an offset in the KV buffer.  It fills graph->arena_bytes,
 * naive_bytes (the sum of all activations, what a plan-less engine would
 * hold), kv_bytes and kv_bytes_per_token.  gmc_plan_check re-verifies the
 * result independently (used by tests and in debug runs).
 */
#ifndef GMC_PLAN_H
#define GMC_PLAN_H

#include "diag.h"
#include "gmrt_tools.h"
#include "graph.h"

gmc_status gmc_plan(gmc_graph *g, gmc_diag *diag) GMC_MUST_CHECK;

/* Checks: offsets aligned, every buffer inside the arena, no two activations
 * whose live ranges intersect overlap in memory, arena <= naive sum. */
gmc_status gmc_plan_check(const gmc_graph *g, gmc_diag *diag) GMC_MUST_CHECK;

/* Appends the human summary `gemmac plan` prints. */
void gmc_plan_report(const gmc_graph *g, const char *target, gmc_strbuf *b);

/* What a token of the planned build costs: the runtime's own formulas
 * (gmrt_bench_costs_init, docs/benchmarks.md) over the graph's weights, so
 * that a prediction from the plan and a measurement of the build count
 * alike.  Errors as gmrt_bench_costs_init's, as GMC_ERR_SEMANTIC. */
gmc_status gmc_plan_costs(const gmc_graph *g, gmrt_bench_costs *out,
                          gmc_diag *diag) GMC_MUST_CHECK;

/* Barriers one forward step passes (the generated SYNC()s, those inside
 * the kernels, the pool's at the end): what gmrt_pool_barriers counts over
 * a decode step of the build. */
int gmc_plan_step_barriers(const gmc_graph *g);

/* Appends the cost per token and, if mach is not NULL, the predicted
 * prefill (pp<n_prompt>) and decode (tg<n_gen>) tokens/s at each of its
 * thread counts (`gemmac plan --predict`; docs/experiments.md). */
void gmc_plan_predict_report(const gmrt_bench_costs *c, const char *target,
                             const gmrt_machine *mach, const char *mach_path, int n_prompt,
                             int n_gen, gmc_strbuf *b);

#endif /* GMC_PLAN_H */
