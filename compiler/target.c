/* target.c — the target registry; see target.h. */
#include "target.h"
#include "gmk_act.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const gmc_target gmc_target_generic;
extern const gmc_target gmc_target_native;
extern const gmc_target gmc_target_x86_64, gmc_target_x86_64_v3, gmc_target_x86_64_v4,
    gmc_target_x86_64_vnni;

const gmc_target *const gmc_targets[] = {
    &gmc_target_generic,
    &gmc_target_native,
    &gmc_target_x86_64,
    &gmc_target_x86_64_v3,
    &gmc_target_x86_64_v4,
    &gmc_target_x86_64_vnni,
    NULL,
};

int gmc_act_fmt_f32(int wdtype)
{
    (void)wdtype;
    return GMK_ACT_F32;
}

const gmc_target *gmc_target_find(const char *name, const gmc_host *h)
{
    if (strcmp(name, "host") == 0) {
        const gmc_target *best = NULL;
        for (int i = 0; gmc_targets[i]; i++) {
            const gmc_target *t = gmc_targets[i];
            gmc_target_config c;
            char why[256];
            if (t->rank > 0 && (!best || t->rank > best->rank) &&
                t->configure(t, h, &c, why, sizeof why))
                best = t;
        }
        return best;
    }
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
