/*
 * st_bind.h — internal: binding a compiled model's weights from a Hugging
 * Face safetensors checkpoint (st_bind.c), used by session.c.
 */
#ifndef GMRT_ST_BIND_H
#define GMRT_ST_BIND_H

#include "gmrt.h"

/* Opens the checkpoint at path (file, index or directory), checks its
 * config.json against m->arch, and converts every manifest tensor into
 * m's dtypes: w[i] points into *out_buffer, which the caller frees with
 * free().  The one exception is Gemma 4's per-layer embedding table when
 * the checkpoint stores it in the compiled dtype: w[i] then points into the
 * checkpoint's mapping, and *out_st holds the open checkpoint, which the
 * caller closes with gmrt_safetensors_close after the last run.  Otherwise
 * *out_st is NULL and the mappings are released before returning. */
gmrt_status gmrt_st_bind(const gmk_model *m, const char *path, bool verbose,
                         const void **w, void **out_buffer, gmrt_safetensors **out_st,
                         gmrt_diag *diag) GMRT_MUST_CHECK;

#endif /* GMRT_ST_BIND_H */
