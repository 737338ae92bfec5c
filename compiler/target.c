/* target.c — the target registry; see target.h. */
#include "target.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const gmc_target gmc_target_generic;
extern const gmc_target gmc_target_native;

const gmc_target *const gmc_targets[] = {
    &gmc_target_generic,
    &gmc_target_native,
    NULL,
};

const gmc_target *gmc_target_find(const char *name)
{
    if (strcmp(name, "host") == 0)
        return &gmc_target_native;
    for (int i = 0; gmc_targets[i]; i++)
        if (strcmp(gmc_targets[i]->name, name) == 0)
            return gmc_targets[i];
    return NULL;
}

void gmc_target_add_flag(gmc_target_config *c, const char *fmt, ...)
{
    if (c->n_flags >= GMC_MAX_FLAGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->flags[c->n_flags++], sizeof c->flags[0], fmt, ap);
    va_end(ap);
}

void gmc_target_flags_str(const gmc_target_config *c, char *buf, int len)
{
    int n = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->n_flags && n < len; i++)
        n += snprintf(buf + n, (size_t)(len - n), "%s%s", i ? " " : "", c->flags[i]);
}
