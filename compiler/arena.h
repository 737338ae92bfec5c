/*
 * arena.h — bump allocation for one compilation (QBE freeall, ggml context).
 *
 * Everything the compiler builds for one graph (model description, IR,
 * plan, emitted text) is allocated from one gmc_arena and freed in one go by
 * gmc_arena_deinit.  An allocation that cannot be satisfied returns NULL and
 * sets a sticky flag, so a pass may check each call or only
 * gmc_arena_failed() at its end.
 */
#ifndef GMC_ARENA_H
#define GMC_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gmc_arena_block gmc_arena_block;

typedef struct gmc_arena {
    gmc_arena_block *head;
    size_t used;      /* bytes handed out, for statistics */
    bool failed;      /* sticky: an allocation could not be satisfied */
} gmc_arena;

void gmc_arena_init(gmc_arena *a);
void gmc_arena_deinit(gmc_arena *a);

/* Returns zeroed, 16-byte aligned memory of n bytes owned by the arena, or
 * NULL (and sets a->failed) if n is absurd or memory is exhausted. */
void *gmc_arena_alloc(gmc_arena *a, size_t n);
/* Checked n*size; NULL on overflow. */
void *gmc_arena_array(gmc_arena *a, size_t n, size_t size);
/* Copies s (len bytes) and adds a NUL. */
char *gmc_arena_strndup(gmc_arena *a, const char *s, size_t len);
char *gmc_arena_strdup(gmc_arena *a, const char *s);
bool gmc_arena_failed(const gmc_arena *a);

/* Overflow-checked size arithmetic: return false on overflow. */
bool gmc_mul_size(size_t a, size_t b, size_t *out);
bool gmc_add_size(size_t a, size_t b, size_t *out);

#endif /* GMC_ARENA_H */
