/* arena.c — see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GMC_ARENA_BLOCK (256u * 1024u)
#define GMC_ARENA_MAX ((size_t)1 << 36) /* one request above 64 GiB is a bug */

struct gmc_arena_block {
    gmc_arena_block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

void gmc_arena_init(gmc_arena *a) { memset(a, 0, sizeof *a); }

void gmc_arena_deinit(gmc_arena *a)
{
    gmc_arena_block *b = a->head;
    while (b) {
        gmc_arena_block *next = b->next;
        free(b);
        b = next;
    }
    memset(a, 0, sizeof *a);
}

bool gmc_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool gmc_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}

void *gmc_arena_alloc(gmc_arena *a, size_t n)
{
    if (n > GMC_ARENA_MAX) {
        a->failed = true;
        return NULL;
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    gmc_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > GMC_ARENA_BLOCK ? n : GMC_ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void *gmc_arena_array(gmc_arena *a, size_t n, size_t size)
{
    size_t bytes;
    if (!gmc_mul_size(n, size, &bytes)) {
        a->failed = true;
        return NULL;
    }
    return gmc_arena_alloc(a, bytes);
}

char *gmc_arena_strndup(gmc_arena *a, const char *s, size_t len)
{
    char *p = gmc_arena_alloc(a, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

char *gmc_arena_strdup(gmc_arena *a, const char *s)
{
    return gmc_arena_strndup(a, s, strlen(s));
}

bool gmc_arena_failed(const gmc_arena *a) { return a->failed; }
