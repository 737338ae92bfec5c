/*
 * export.h — `gemmac export`: a compiled model as source an application
 * builds with its own compiler (docs/export.md).
 *
 * gmc_export runs the front half and the emitter of `gemmac compile` for
 * one graph and target, then writes into a directory: NAME.c (the model's
 * kernels and the runtime's core in one translation unit, needing only
 * libc, libm and pthreads), NAME.h (the runtime's public API, gmrt.h, and
 * the model's descriptor), NAME.gguf (the weights with every tensor already
 * in the target's layout, so loading maps the file and repacks nothing) and
 * README.md (how to build and call it).  clang is not run.
 */
#ifndef GMC_EXPORT_H
#define GMC_EXPORT_H

#include <stdint.h>

#include "diag.h"

typedef struct gmc_export_options {
    const char *graph;   /* YAML path */
    const char *weights; /* GGUF holding the graph's tensors in its dtypes */
    const char *target;  /* target name or "host" */
    const char *out_dir; /* created if absent */
    const char *name;    /* file names' stem; NULL: the model's name */
    int32_t max_batch;   /* prefill chunk; GMC_DEFAULT_BATCH if 0 */
} gmc_export_options;

typedef struct gmc_export_result {
    char name[65];       /* the stem used */
    char target[64];     /* the target resolved ("host" named) */
    uint64_t weight_bytes; /* bytes of tensor data written */
} gmc_export_result;

gmc_status gmc_export(const gmc_export_options *o, gmc_export_result *r,
                      gmc_diag *diag) GMC_MUST_CHECK;

#endif /* GMC_EXPORT_H */
