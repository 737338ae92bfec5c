/*
 * native.c — the generic kernels compiled for exactly this machine's CPU
 * (the LLVM host CPU name and features), so clang may use every vector
 * extension the CPU has.  `--target host` picks it until ISA-specific
 * kernel sets exist.
 */
#include <stdio.h>
#include <string.h>

#include "target.h"

static bool configure_native(const gmc_target *t, const gmc_host *h,
                             gmc_target_config *c, char *why, int why_len)
{
    memset(c, 0, sizeof *c);
    c->target = t;
    snprintf(c->triple, sizeof c->triple, "%s", h->triple);
    snprintf(c->cpu, sizeof c->cpu, "%s", h->cpu);
    snprintf(c->features, sizeof c->features, "%s", h->features);
    if (!h->cpu[0] || strcmp(h->cpu, "generic") == 0) {
        snprintf(why, (size_t)why_len, "LLVM does not know this host's CPU");
        return false;
    }
    gmc_target_add_flag(c, "--target=%s", c->triple);
    if (strcmp(h->arch, "x86_64") == 0)
        gmc_target_add_flag(c, "-march=%s", h->cpu);
    else
        gmc_target_add_flag(c, "-mcpu=%s", h->cpu);
    c->runs = GMC_RUNS_NATIVE;
    return true;
}

const gmc_target gmc_target_native = {
    .name = "native",
    .description = "generic kernels compiled for this machine's CPU and features",
    .kernel_header = "gmk_generic.h",
    .rank = 1, /* below every x86 profile: "host" where none fits */
    .act_fmt = gmc_act_fmt_f32,
    .configure = configure_native,
};
