/*
 * main.c — the one Check runner for every suite.
 *
 * Each module's tests live in tests/test_<module>.c and export
 * `Suite *<module>_suite(void)`; tests/suites.def lists them.  Set
 * GMC_TEST_SUITE=<name> to run one suite, CK_RUN_CASE to run one case.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GMC_SUITES_DEF
#define GMC_SUITES_DEF "suites.def"
#endif

#define GMC_SUITE(name) Suite *name##_suite(void);
#include GMC_SUITES_DEF
#undef GMC_SUITE

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
#define GMC_SUITE(name) {#name, name##_suite},
#include GMC_SUITES_DEF
#undef GMC_SUITE
};

int main(void)
{
    const char *only = getenv("GMC_TEST_SUITE");
    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (only && strcmp(only, suites[i].name) != 0)
            continue;
        Suite *s = suites[i].make();
        if (!sr)
            sr = srunner_create(s);
        else
            srunner_add_suite(sr, s);
    }
    if (!sr) {
        fprintf(stderr, "no suite named %s\n", only ? only : "(none)");
        return 2;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
