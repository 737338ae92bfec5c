/*
 * driver.h — the whole pipeline in one place (QBE's func()):
 *
 *   load_yaml → lower → plan_memory → emit_c → compile
 *
 * gmc_compile runs it for one graph and target into an output directory and
 * skips clang when the emitted C, flags and toolchain are unchanged (the
 * build cache).  --dump=<stage> prints the IR after a stage instead of
 * stopping there.  Everything that plans or builds (compile, plan, init, the
 * tests) runs the same front half, gmc_front, so what `plan` prints is what
 * the build does.
 */
#ifndef GMC_DRIVER_H
#define GMC_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "target.h"

#define GMC_DEFAULT_BATCH 64

typedef struct gmc_options {
    const char *graph;     /* YAML path */
    const char *target;    /* target name or "host" */
    /* NULL: $XDG_CACHE_HOME/gemmac/<name>-<target>, else under ~/.cache,
     * else under /tmp/gemmac-<uid>.  Refused unless it is the user's own
     * directory and writable by nobody else (driver.c). */
    const char *out_dir;
    const char *cache_name;/* the default directory's <name> (NULL: the model's):
                            * gemmac sweep caches each variant apart */
    int32_t max_batch;     /* prefill chunk; GMC_DEFAULT_BATCH if 0 */
    const char *dump;      /* "graph", "plan", "c", or NULL */
    FILE *dump_out;        /* where dumps go (stdout if NULL) */
    bool exe;              /* also link the standalone executable */
    bool force;            /* rebuild even if cached */
    bool verbose;          /* echo clang commands and timings */
    bool packed;           /* weights stay in the file's packed rows: no target
                            * layout, nothing repacked at load */
    bool no_contract;      /* -ffp-contract=off: a·b + c stays two roundings
                            * unless the source asks for fma, as on targets
                            * without it (wasm32): docs/targets.md */
    const struct gmc_host *host; /* the machine to configure the target for;
                                  * NULL: this one (tests fix it) */
} gmc_options;

typedef struct gmc_result {
    char name[65];          /* model name */
    char out_dir[4096];
    char so_path[4200];     /* model.so, for dlopen (model.o: target.h static_only) */
    char exe_path[4200];    /* "" unless options.exe */
    uint64_t so_hash;       /* of model.so as built (gmc_verify_product) */
    uint64_t exe_hash;      /* of the executable, if built */
    bool cached;            /* clang was skipped */
    bool tampered;          /* rebuilt because a product no longer matched the stamp */
    double frontend_s;      /* YAML → C */
    double clang_s;         /* C → .so (+ executable) */
    gmc_runs runs;          /* whether this machine runs the build (target.h) */
    char emulator[512];     /* the command that runs it here, if emulated */
} gmc_result;

gmc_status gmc_compile(const gmc_options *o, gmc_result *out,
                       gmc_diag *diag) GMC_MUST_CHECK;

/* The hash of a file the build wrote (not followed if a link); false with
 * errno if it cannot be read (EINVAL: not a regular file). */
bool gmc_hash_product(const char *path, uint64_t *out);
/* Fails naming path unless it still hashes to want: called just before
 * dlopen, so that a model.so changed after the build is never loaded. */
gmc_status gmc_verify_product(const char *path, uint64_t want,
                              gmc_diag *diag) GMC_MUST_CHECK;

/* The front half of the pipeline: YAML → lowered graph → fused for the
 * target → weight layouts → memory plan, printing the stage o->dump names.
 * Everything lives in a; *tc is the resolved target; *unfused (if not NULL)
 * says what fusion left alone, NULL if nothing. */
struct gmc_graph;
struct gmc_arena;
struct gmc_target_config;
gmc_status gmc_front(const gmc_options *o, struct gmc_arena *a, struct gmc_graph **out,
                     struct gmc_target_config *tc, const char **unfused,
                     gmc_diag *diag) GMC_MUST_CHECK;

/* `gemmac plan --predict`: which machine profile, and the tests predicted. */
typedef struct gmc_predict_opts {
    const char *machine;  /* profile path; NULL: the target's default (a missing
                           * default is reported, not an error) */
    int n_prompt, n_gen;  /* pp<n_prompt>, tg<n_gen> */
} gmc_predict_opts;

/* Prints the plan of the build gmc_compile would make with options o (the
 * graph, target, batch and layouts; nothing built) to out, and with
 * predict the cost per token and the predicted speeds.  A profile named
 * in predict->machine that cannot be read or parsed is an error (file:line). */
gmc_status gmc_plan_graph(const gmc_options *o, const gmc_predict_opts *predict, FILE *out,
                          gmc_diag *diag) GMC_MUST_CHECK;

/* Writes seeded random weights for a graph as a GGUF file, with a synthetic
 * vocabulary, so any variant runs without a checkpoint (init.c). */
gmc_status gmc_init_weights(const char *graph, const char *path, uint64_t seed,
                            bool verbose, gmc_diag *diag) GMC_MUST_CHECK;

#endif /* GMC_DRIVER_H */
