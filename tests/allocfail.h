/*
 * allocfail.h — allocation-failure injection for the `alloc` suite.
 *
 * gemmac_tests is linked with -Wl,--wrap for every call through which the
 * libraries get memory (malloc, calloc, realloc, strdup, aligned_alloc,
 * posix_memalign, mmap, fopen, fdopen, pthread_create, and libyaml's
 * yaml_parser_initialize and yaml_parser_parse, which allocate inside
 * libyaml), so each reaches a __wrap_ function in allocfail.c.  Disarmed,
 * these only pass the call on.  Armed, they count the calls, and the n-th
 * fails as the real call does when memory runs out (NULL or MAP_FAILED
 * with errno ENOMEM, EAGAIN from pthread_create, libyaml's
 * YAML_MEMORY_ERROR); the calls before it succeed, and those after it
 * too unless every later one is to fail as well.
 *
 * --wrap rewrites the references of the objects linked into this
 * executable (gemmac's static libraries, the tests, Check): what libc,
 * libyaml and LLVM allocate inside themselves is neither counted nor
 * failed, except through the two libyaml entry points above.
 */
#ifndef GMC_ALLOCFAIL_H
#define GMC_ALLOCFAIL_H

#include <stdbool.h>

/* Starts counting; the fail_at-th call from now fails (0: none does), and
 * with after every later one too. */
void gmc_allocfail_arm(long fail_at, bool after);
/* Stops counting; returns the calls counted since gmc_allocfail_arm and
 * sets *out_failed (if not NULL) to whether one was made to fail. */
long gmc_allocfail_disarm(bool *out_failed);

#endif /* GMC_ALLOCFAIL_H */
