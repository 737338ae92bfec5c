/* allocfail.c — see allocfail.h.  CMakeLists.txt links gemmac_tests with
 * --wrap for each function wrapped here. */
#include "allocfail.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <yaml.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **out, size_t align, size_t n);
void *__real_mmap(void *addr, size_t n, int prot, int flags, int fd, off_t off);
FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fdopen(int fd, const char *mode);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __real_yaml_parser_initialize(yaml_parser_t *p);
int __real_yaml_parser_parse(yaml_parser_t *p, yaml_event_t *e);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void *__wrap_aligned_alloc(size_t align, size_t n);
int __wrap_posix_memalign(void **out, size_t align, size_t n);
void *__wrap_mmap(void *addr, size_t n, int prot, int flags, int fd, off_t off);
FILE *__wrap_fopen(const char *path, const char *mode);
FILE *__wrap_fdopen(int fd, const char *mode);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_yaml_parser_initialize(yaml_parser_t *p);
int __wrap_yaml_parser_parse(yaml_parser_t *p, yaml_event_t *e);

/* Atomics: a session's worker threads may run while armed. */
static int armed, persist;
static long calls, fail_at;
static int failed;

void gmc_allocfail_arm(long n, bool after)
{
    __atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fail_at, n, __ATOMIC_SEQ_CST);
    __atomic_store_n(&persist, after, __ATOMIC_SEQ_CST);
    __atomic_store_n(&failed, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}

long gmc_allocfail_disarm(bool *out_failed)
{
    __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
    if (out_failed)
        *out_failed = __atomic_load_n(&failed, __ATOMIC_SEQ_CST) != 0;
    return __atomic_load_n(&calls, __ATOMIC_SEQ_CST);
}

/* Counts one call; true if it is the one to fail (errno is then ENOMEM). */
static bool fail_now(void)
{
    if (!__atomic_load_n(&armed, __ATOMIC_SEQ_CST))
        return false;
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    long f = __atomic_load_n(&fail_at, __ATOMIC_SEQ_CST);
    if (f == 0 || n < f || (n > f && !__atomic_load_n(&persist, __ATOMIC_SEQ_CST)))
        return false;
    __atomic_store_n(&failed, 1, __ATOMIC_SEQ_CST);
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

/* A failed realloc leaves the block as it was. */
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }

char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    return fail_now() ? NULL : __real_aligned_alloc(align, n);
}

int __wrap_posix_memalign(void **out, size_t align, size_t n)
{
    return fail_now() ? ENOMEM : __real_posix_memalign(out, align, n);
}

void *__wrap_mmap(void *addr, size_t n, int prot, int flags, int fd, off_t off)
{
    return fail_now() ? MAP_FAILED : __real_mmap(addr, n, prot, flags, fd, off);
}

/* fopen and fdopen allocate the FILE and its buffer. */
FILE *__wrap_fopen(const char *path, const char *mode)
{
    return fail_now() ? NULL : __real_fopen(path, mode);
}

FILE *__wrap_fdopen(int fd, const char *mode)
{
    return fail_now() ? NULL : __real_fdopen(fd, mode);
}

/* A thread's stack is memory too: EAGAIN, as when it cannot be had. */
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    return fail_now() ? EAGAIN : __real_pthread_create(t, attr, fn, arg);
}

/* libyaml's own failure: the parser zeroed, with a memory error. */
int __wrap_yaml_parser_initialize(yaml_parser_t *p)
{
    if (!fail_now())
        return __real_yaml_parser_initialize(p);
    memset(p, 0, sizeof *p);
    p->error = YAML_MEMORY_ERROR;
    return 0;
}

/* Any event may need memory (tokens queued, scalars copied); a failure
 * leaves the event empty and the error in the parser, as libyaml does. */
int __wrap_yaml_parser_parse(yaml_parser_t *p, yaml_event_t *e)
{
    if (!fail_now())
        return __real_yaml_parser_parse(p, e);
    memset(e, 0, sizeof *e);
    p->error = YAML_MEMORY_ERROR;
    return 0;
}
