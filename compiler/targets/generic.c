/*
 * generic.c — the portable target: scalar reference kernels, compiled for
 * the baseline of the host's architecture (x86-64 without AVX, armv8-a), so
 * the build runs on any machine of that architecture.  Every other target's
 * kernels are tested against this one.
 */
#include <stdio.h>
#include <string.h>

#include "target.h"

static bool configure_generic(const gmc_target *t, const gmc_host *h,
                              gmc_target_config *c, char *why, int why_len)
{
    (void)why;
    (void)why_len;
    memset(c, 0, sizeof *c);
    c->target = t;
    snprintf(c->triple, sizeof c->triple, "%s", h->triple);
    if (strcmp(h->arch, "x86_64") == 0) {
        snprintf(c->cpu, sizeof c->cpu, "x86-64");
        gmc_target_add_flag(c, "-march=x86-64");
    } else if (strcmp(h->arch, "aarch64") == 0) {
        snprintf(c->cpu, sizeof c->cpu, "generic");
        gmc_target_add_flag(c, "-march=armv8-a");
    } else {
        snprintf(c->cpu, sizeof c->cpu, "generic");
    }
    gmc_target_add_flag(c, "--target=%s", c->triple);
    c->runs = GMC_RUNS_NATIVE;
    return true;
}

const gmc_target gmc_target_generic = {
    .name = "generic",
    .description = "portable scalar kernels, baseline ISA of the host architecture",
    .kernel_header = "gmk_generic.h",
    .act_fmt = gmc_act_fmt_f32,
    .configure = configure_generic,
};
