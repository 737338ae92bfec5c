/*
 * sweep.h — `gemmac sweep`: many variants of one graph, built, benchmarked
 * and tabulated (docs/experiments.md).
 *
 * A sweep file names a base graph and overrides on any of its fields by
 * dotted path (attention.kv_heads), as a grid (cartesian product), a list,
 * or both.  gmc_sweep_load reads and checks the sweep file (sweep.c);
 * gmc_sweep_variant_yaml writes one variant as graph YAML: the base's
 * document with the overrides put in, so that the ordinary front end
 * validates it and its errors name the variant's file and line.
 * gmc_sweep_main is the command (sweep_run.c): it builds, initialises and
 * benchmarks each variant through the same pipeline as compile, init and
 * bench, caches one result per variant, and writes CSV, Markdown and plots.
 */
#ifndef GMC_SWEEP_H
#define GMC_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"
#include "strbuf.h"
#include "yaml_io.h"

#define GMC_SWEEP_MAX_VARIANTS 4096
#define GMC_SWEEP_MAX_THREADS 16 /* entries of bench.threads */

/* One override: the value node (in the sweep file's tree) put at path. */
typedef struct gmc_sweep_override {
    const char *path;          /* "attention.kv_heads" */
    const gmc_ynode *value;
} gmc_sweep_override;

typedef struct gmc_sweep_variant {
    int index;                 /* 1-based, in expansion order */
    const char *name;          /* "kv_heads=2 window=512" */
    const gmc_sweep_override *ovr; /* set, then the list entry, then the grid */
    size_t n_ovr;
} gmc_sweep_variant;

typedef struct gmc_sweep {
    const char *file;          /* the sweep file as given */
    const char *text;          /* its bytes (for source lines in errors) */
    size_t len;
    const char *name;          /* name: or the file's stem */
    const char *base;          /* the base graph, relative to the sweep file */
    const char *base_text;     /* its bytes; NULL until gmc_sweep_load reads them */
    size_t base_len;
    const gmc_ynode *base_root;
    const char *target;        /* default "host" */
    int32_t batch;             /* 0: the compiler's default */
    uint64_t seed;             /* of the random weights */
    int threads[GMC_SWEEP_MAX_THREADS], n_threads;
    int32_t prompt, gen, reps; /* bench: pp<prompt>, tg<gen>, timed runs */
    const char *weights;       /* a GGUF every variant runs (converted at load
                                * where its types differ); NULL: random weights */
    const char *eval_text;     /* eval: perplexity over this text; NULL: none */
    int32_t eval_ctx;          /* ... in chunks of this many tokens */
    const char **columns;      /* every override path, first use first */
    size_t n_columns;
    gmc_sweep_variant *variants;
    size_t n_variants;
} gmc_sweep;

/* Parses and checks sweep text (docs/experiments.md; unknown keys, bad
 * values and paths are GMC_ERR_SCHEMA naming file:line:col) and expands its
 * variants.  Does not read the base graph.  Everything lives in a. */
gmc_status gmc_sweep_parse(const char *text, size_t len, const char *filename,
                           gmc_arena *a, gmc_sweep **out, gmc_diag *diag) GMC_MUST_CHECK;

/* Reads path, gmc_sweep_parse, then reads and parses the base graph's
 * YAML (syntax only: the schema is checked per variant). */
gmc_status gmc_sweep_load(const char *path, gmc_arena *a, gmc_sweep **out,
                          gmc_diag *diag) GMC_MUST_CHECK;

/* Appends variant v as graph YAML to out: the base document with v's
 * overrides in place; with comments, a first comment naming the sweep and
 * the variant, and each override marked with the sweep file's line
 * (without: the text a variant's key hashes, the same wherever the sweep
 * file lies).  Fails (GMC_ERR_SCHEMA, at the
 * override's line) when a path crosses a value of the base that is not a
 * mapping. */
gmc_status gmc_sweep_variant_yaml(const gmc_sweep *s, const gmc_sweep_variant *v,
                                  gmc_arena *a, bool comments, gmc_strbuf *out,
                                  gmc_diag *diag) GMC_MUST_CHECK;

/* A YAML node on one line, flow style ("2", "[local, global]"), for
 * variant names and table cells; lives in a. */
const char *gmc_sweep_node_text(const gmc_ynode *n, gmc_arena *a);

/* The command: gemmac sweep SWEEP.yaml [options] (see --help).  Returns a
 * process exit status: 0, 1 (a failure), 2 (usage), 130 (interrupted). */
int gmc_sweep_main(int argc, char **argv);

#endif /* GMC_SWEEP_H */
