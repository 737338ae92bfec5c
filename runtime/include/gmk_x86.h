/*
 * gmk_x86.h — kernels of the x86-64 targets (x86-64, -v3, -v4, -v4-vnni).
 *
 * Placeholder until the int8/bf16 kernels land: the portable kernels,
 * compiled with the profile's -march flags.
 */
#ifndef GMK_X86_H
#define GMK_X86_H

#include "gmk_generic.h"

#endif /* GMK_X86_H */
