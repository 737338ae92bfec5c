/*
 * import.h — `gemmac import`: a graph YAML (docs/yaml.md) from a Hugging
 * Face config.json or from a GGUF file's metadata and tensor types.
 *
 * gmc_import reads the source, maps every field onto the graph schema
 * (fields it does not know are errors naming them), and writes the YAML
 * text into a strbuf; the caller writes it out.  The result loads with
 * gmc_model_load.
 */
#ifndef GMC_IMPORT_H
#define GMC_IMPORT_H

#include "diag.h"
#include "strbuf.h"

typedef struct gmc_import_opts {
    const char *quant;   /* config.json: weight type for every tensor (NULL = f32) */
    const char *name;    /* model.name (NULL = derived from the source) */
    long context;        /* model.context override; 0 = from the source */
} gmc_import_opts;

/* path is a config.json (anything not starting with the GGUF magic) or a
 * .gguf file.  Appends the YAML to out. */
gmc_status gmc_import(const char *path, const gmc_import_opts *opts,
                      gmc_strbuf *out, gmc_diag *diag) GMC_MUST_CHECK;

#endif /* GMC_IMPORT_H */
