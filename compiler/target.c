/* target.c — the target registry; see target.h. */
#include "target.h"
#include "gmk_act.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const gmc_target gmc_target_generic;
extern const gmc_target gmc_target_native;
extern const gmc_target gmc_target_x86_64, gmc_target_x86_64_v3, gmc_target_x86_64_v4,
    gmc_target_x86_64_vnni, gmc_target_x86_64_bf16;
extern const gmc_target gmc_target_aarch64, gmc_target_aarch64_dotprod,
    gmc_target_aarch64_i8mm;
extern const gmc_target gmc_target_riscv64;
extern const gmc_target gmc_target_wasm32;

const gmc_target *const gmc_targets[] = {
    &gmc_target_generic,
    &gmc_target_native,
    &gmc_target_x86_64,
    &gmc_target_x86_64_v3,
    &gmc_target_x86_64_v4,
    &gmc_target_x86_64_vnni,
    &gmc_target_x86_64_bf16,
    &gmc_target_aarch64,
    &gmc_target_aarch64_dotprod,
    &gmc_target_aarch64_i8mm,
    &gmc_target_riscv64,
    &gmc_target_wasm32,
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
                t->configure(t, h, &c, why, sizeof why) && c.runs == GMC_RUNS_NATIVE)
                best = t;
        }
        return best;
    }
    for (int i = 0; gmc_targets[i]; i++)
        if (strcmp(gmc_targets[i]->name, name) == 0)
            return gmc_targets[i];
    return NULL;
}

/* True if the comma-separated list has name as a whole item. */
static bool has_item(const char *list, const char *name, size_t len)
{
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len) {
        bool starts = p == list || p[-1] == ',';
        bool ends = p[len] == '\0' || p[len] == ',';
        if (starts && ends)
            return true;
    }
    return false;
}

bool gmc_host_missing(const char *want, const gmc_host *h, char *miss, int miss_len)
{
    for (const char *p = want; *p;) {
        int n = (int)strcspn(p, ",");
        char f[64];
        snprintf(f, sizeof f, "+%.*s", n, p);
        if (!has_item(h->features, f, strlen(f))) {
            snprintf(miss, (size_t)miss_len, "%s", f);
            return true;
        }
        p += n + (p[n] == ',');
    }
    return false;
}

bool gmc_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        int n = (int)strcspn(p, ":");
        char full[4096];
        snprintf(full, sizeof full, "%.*s/%s", n, p, prog);
        if (n > 0 && access(full, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

bool gmc_configure_linux(const gmc_target *t, const gmc_host *h, gmc_target_config *c,
                         char *why, int why_len)
{
    memset(c, 0, sizeof *c);
    c->target = t;
    char miss[64] = "", sysroot[160], crt[200], gcc[200], prog[64];
    snprintf(sysroot, sizeof sysroot, "/usr/%s", t->cross_triple);
    if (strcmp(h->arch, t->arch) == 0) {
        snprintf(c->triple, sizeof c->triple, "%s", h->triple);
        c->runs = gmc_host_missing(t->requires, h, miss, sizeof miss) ? GMC_RUNS_NO
                                                                       : GMC_RUNS_NATIVE;
    } else {
        /* crt1.o from libc6-dev-<arch>-cross, crtbeginS.o from
         * libgcc-12-dev-<arch>-cross (scripts/setup installs both) */
        snprintf(crt, sizeof crt, "%s/lib/crt1.o", sysroot);
        snprintf(gcc, sizeof gcc, "/usr/lib/gcc-cross/%s", t->cross_triple);
        if (access(crt, R_OK) != 0 || access(gcc, R_OK) != 0) {
            snprintf(why, (size_t)why_len, "no %s cross sysroot (%s and %s; scripts/setup "
                     "installs them)", t->arch, crt, gcc);
            return false;
        }
        snprintf(c->triple, sizeof c->triple, "%s", t->cross_triple);
        c->cross = true;
    }
    snprintf(prog, sizeof prog, "%.*s", (int)strcspn(t->emulator, " "), t->emulator);
    if (c->runs == GMC_RUNS_NO && gmc_on_path(prog)) {
        c->runs = GMC_RUNS_EMULATED;
        snprintf(c->emulator, sizeof c->emulator, "%s -L %s", t->emulator, sysroot);
    }
    snprintf(c->cpu, sizeof c->cpu, "%s", t->march);
    snprintf(c->features, sizeof c->features, "%s", t->requires);
    gmc_target_add_flag(c, "-march=%s", t->march);
    gmc_target_add_flag(c, "--target=%s", c->triple);
    if (c->cross)
        gmc_target_add_flag(c, "-fuse-ld=lld");
    return true;
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
