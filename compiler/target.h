/*
 * target.h — hardware targets as data (QBE T_amd64_sysv).
 *
 * A gmc_target names a kernel set (the header the generated code includes)
 * and knows how to turn the host description into clang flags.  A target
 * resolved for a host is a gmc_target_config: triple, CPU, features and the
 * exact flags, which go into the generated banner and the build cache key.
 * Passes never test which target they have: what differs lives here and in
 * compiler/targets/<name>.c.
 */
#ifndef GMC_TARGET_H
#define GMC_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"

#define GMC_MAX_FLAGS 32

/* What LLVM says about the machine gemmac runs on. */
typedef struct gmc_host {
    char triple[128];    /* e.g. x86_64-pc-linux-gnu */
    char arch[32];       /* first triple component: x86_64, aarch64, ... */
    char cpu[64];        /* e.g. znver4 */
    char features[4096]; /* enabled features, "+avx2,+fma,..." */
} gmc_host;

typedef struct gmc_target_config gmc_target_config;

typedef struct gmc_target {
    const char *name;
    const char *description;
    const char *kernel_header;  /* included by generated code */
    /* How good a choice for "host" it is: of the targets a host can build,
     * the highest rank wins; 0: never chosen for "host" (generic). */
    int rank;
    /* The matmul input format (gmk_act.h) its kernels want for weights of
     * dtype wdtype: GMK_ACT_F32 for kernels that take plain floats. */
    int (*act_fmt)(int wdtype);
    /* The layout (GMK_LAYOUT_*) its kernels read a 2-D weight of dtype in;
     * NULL: every weight stays in the file's packed rows. */
    int (*weight_layout)(int dtype);
    /* The layout it asks for a 3-D stack of matrices (MoE experts) of
     * dtype; NULL: weight_layout's.  gmk_layout_for then decides whether
     * the stack can take it. */
    int (*stack_layout)(int dtype);
    /* Data for table-driven configure functions (NULL where unused): the
     * -march value, further clang flags (space-separated) and the host
     * features the target needs (comma-separated, without '+'). */
    const char *march, *extra_flags, *requires;
    /* Libraries model.so and the executable link, or linker flags (wasm32's
     * stack and memory); NULL: none. */
    const char *link_libs;
    /* Targets of another architecture (gmc_configure_linux): the host arch
     * that builds them natively, the Debian triple of the cross sysroot
     * (/usr/<triple>) and the emulator command that runs them elsewhere
     * (wasm.c: the runner's interpreter). */
    const char *arch, *cross_triple, *emulator;
    /* Appended to the executable's name (".wasm"); NULL: none. */
    const char *exe_suffix;
    /* No shared libraries (WASI): model.so is not linked, and the library
     * an embedding program takes is the relocatable model.o. */
    bool static_only;
    /* The memory a program can address, where it bounds what a model may
     * need (4 GiB for wasm32, which also reads the weights into it); 0: no
     * bound (64-bit). */
    uint64_t max_memory;
    /* Fills triple/cpu/features/flags for host h; false if the target cannot
     * be built for that host (the reason goes into why). */
    bool (*configure)(const struct gmc_target *t, const gmc_host *h,
                      gmc_target_config *out, char *why, int why_len);
} gmc_target;

/* Whether this machine runs what a target builds. */
typedef enum gmc_runs {
    GMC_RUNS_NO = 0,   /* built only: run it on the device */
    GMC_RUNS_NATIVE,   /* on this CPU */
    GMC_RUNS_EMULATED, /* under the emulator command of gmc_target_config */
} gmc_runs;

struct gmc_target_config {
    const gmc_target *target;
    char triple[128];
    char cpu[64];
    char features[4096];
    int n_flags;
    char flags[GMC_MAX_FLAGS][160]; /* clang flags specific to the target */
    bool cross;         /* another architecture: the runtime is built from source */
    gmc_runs runs;
    char emulator[512]; /* the command that runs it here (GMC_RUNS_EMULATED) */
};

/* All targets, NULL-terminated, in the order `gemmac targets` lists them. */
extern const gmc_target *const gmc_targets[];
/* "host" resolves to the target of highest rank that builds for host h and
 * runs on it natively (the most capable x86 profile whose features h has;
 * else native).  NULL if the name is unknown. */
const gmc_target *gmc_target_find(const char *name, const gmc_host *h);

/* The first of the comma-separated features want (without '+') that h
 * lacks, as "+name" into miss; false if it has them all. */
bool gmc_host_missing(const char *want, const gmc_host *h, char *miss, int miss_len);
/* True if an executable named prog is on PATH. */
bool gmc_on_path(const char *prog);

/* configure for a Linux target of architecture t->arch (march, requires,
 * cross_triple, emulator as data): native on such a host, else
 * cross-compiled against Debian's sysroot and run under the emulator where
 * it is on PATH. */
bool gmc_configure_linux(const gmc_target *t, const gmc_host *h, gmc_target_config *c,
                         char *why, int why_len);

/* act_fmt of targets whose kernels take f32 activations for every dtype. */
int gmc_act_fmt_f32(int wdtype);

/* Adds one flag to a config (ignored past GMC_MAX_FLAGS). */
void gmc_target_add_flag(gmc_target_config *c, const char *fmt, ...) GMC_PRINTF(2, 3);
/* Space-joined flags into buf. */
void gmc_target_flags_str(const gmc_target_config *c, char *buf, int len);

#endif /* GMC_TARGET_H */
