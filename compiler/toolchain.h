/*
 * toolchain.h — LLVM and clang at the boundary.
 *
 * gmc_host_detect asks the LLVM C API what machine this is (triple, CPU,
 * features).  gmc_toolchain_build runs clang-19 on a directory of emitted C:
 * model.c → model.o → model.so (for dlopen by `gemmac run`; not on a target
 * without shared libraries, where model.o is the library) and, when asked,
 * main.c + model.o + libgemmart → a standalone executable.  clang's exit
 * status and stderr are captured into the gmc_diag.  Nothing outside this
 * file includes LLVM headers or spawns processes.
 */
#ifndef GMC_TOOLCHAIN_H
#define GMC_TOOLCHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "target.h"

gmc_status gmc_host_detect(gmc_host *out, gmc_diag *diag) GMC_MUST_CHECK;

/* Path of the pinned clang (clang-19). */
const char *gmc_toolchain_clang(void);

/* The complete flag string used to compile model.c for tc (common flags
 * plus the target's), for banners and cache keys. */
void gmc_toolchain_flags(const gmc_target_config *tc, char *buf, size_t len);

/* Compiles dir/model.c (and links dir/<exe_name> from dir/main.c when
 * exe_name is not NULL).  verbose echoes each clang command to stderr. */
gmc_status gmc_toolchain_build(const gmc_target_config *tc, const char *dir,
                               const char *exe_name, bool verbose,
                               gmc_diag *diag) GMC_MUST_CHECK;

/* FNV-1a over the files a build reads besides model.c: the kernel headers
 * of the runtime include directory (by name order) and the runtime library,
 * so that a changed kernel or runtime invalidates the build cache. */
uint64_t gmc_toolchain_inputs_hash(uint64_t h);

#endif /* GMC_TOOLCHAIN_H */
